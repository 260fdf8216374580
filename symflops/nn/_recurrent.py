"""Recurrent layers (``LSTM``, ``GRU``) and cells (``LSTMCell``, ``GRUCell``), counted from
the gate equations (:mod:`symflops.formulas.recurrent`): one step's work times the ``T``
steps, per layer and direction.

>>> from symflops.symbols import B, T
>>> LSTM(4, 8).cost((T, B, 4)).params
448
>>> LSTM(4, 8).cost((T, B, 4), convention="macs").flops
384*B*T
"""

from __future__ import annotations

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_grad_derivations, matmul_derivation
from symflops.formulas.pointwise import activation_grad_derivation, elementwise_derivation
from symflops.formulas.recurrent import hidden_size, recurrent_derivation
from symflops.formulas.resize import reduction_derivation
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    SizeLike,
    numel,
    to_size,
)
from symflops.nn._train import Ref, Step, Train, leaf_step, no_grad
from symflops.symbols import (
    B,
    I,
    T,
)

__all__ = ["LSTM", "GRU", "LSTMCell", "GRUCell"]


class _Recurrent(Layer):
    cell = "lstm"

    def __init__(self, input_size: SizeLike, hidden_size: SizeLike, num_layers: SizeLike = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0) -> None:
        name = type(self).__name__
        self.input_size = to_size(input_size, name, "input_size")
        self.hidden_size = to_size(hidden_size, name, "hidden_size")
        self.num_layers = to_size(num_layers, name, "num_layers")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.proj_size = None if proj_size == 0 else to_size(proj_size, name, "proj_size")
        if self.proj_size is not None and self.cell != "lstm":
            raise SymflopsError("proj_size is an LSTM option", layer=name,
                                values={"proj_size": proj_size}, fix="use LSTM or proj_size=0")
        if self.proj_size is not None and self.proj_size.is_number and \
                self.hidden_size.is_number and self.proj_size >= self.hidden_size:
            raise SymflopsError("proj_size must be smaller than hidden_size (as in torch)",
                                layer=name, values={"proj_size": proj_size,
                                                    "hidden_size": hidden_size},
                                fix="use a proj_size below hidden_size, or 0")

    def spec(self) -> str:
        parts = [str(self.input_size), str(self.hidden_size)]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        for flag, default in (("bias", True), ("batch_first", False), ("bidirectional", False)):
            if getattr(self, flag) != default:
                parts.append(f"{flag}={getattr(self, flag)}")
        if self.proj_size is not None:
            parts.append(f"proj_size={self.proj_size}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        self._check_rank(shape, (2, 3), f"{layout} or (T, I)")
        self._check_channels(shape, shape[-1], self.input_size, "features")
        if len(shape) == 2:
            steps, batch = shape[0], sp.Integer(1)
        elif self.batch_first:
            batch, steps = shape[0], shape[1]
        else:
            steps, batch = shape[0], shape[1]
        dirs = 2 if self.bidirectional else 1
        out_width = self.hidden_size if self.proj_size is None else self.proj_size
        children = []
        for layer, width in (("l0", self.input_size), ("l1", dirs * out_width)):
            if layer == "l1" and self.num_layers == 1:
                break
            d = recurrent_derivation(self.cell, batch, steps, width, self.hidden_size,
                                     self.bias, self.proj_size)
            for suffix in ("", "_reverse")[:dirs]:
                leaf = Cost.from_derivation(
                    layer + suffix, type(self).__name__ + "Layer", d,
                    spec=f"{self.cell} layer {layer[1:]}{' reverse' if suffix else ''}",
                    input_shape=shape, output_shape=shape[:-1] + (out_width,))
                children.append(leaf if layer == "l0" else leaf.replace(
                    name=f"l1..{self.num_layers - 1}{suffix}" if self.num_layers != 2
                    else f"l1{suffix}", count=self.num_layers - 1))
        return Cost(name, type(self).__name__, spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape[:-1] + (dirs * out_width,))


class LSTM(_Recurrent):
    """``torch.nn.LSTM`` on ``(T, B, I)`` (``batch_first``: ``(B, T, I)``; unbatched ``(T,
    I)``); the output ``(T, B, D h)`` (``h`` is ``proj_size`` when given). Per step and
    row: ``4h (I + h)`` MACs, 8h bias adds, 8h elementwise, 11h activation (see
    :mod:`symflops.formulas.recurrent`); layer ``l > 0`` reads ``D h`` features.
    Parameters as torch: ``4h (I + h) + 8h`` per layer and direction.
    """


    example = Example(
        "LSTM(I, h)", lambda: LSTM(I, hidden_size), (T, B, I),
        "T steps; num_layers, bidirectional, proj_size multiply or widen it")

    cell = "lstm"

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """A one-layer LSTM as torch runs it op by op (its reference path; CPU with oneDNN
        runs one fused ``mkldnn_rnn_layer_backward`` instead, which the tracer does not
        count): the input's projection for all ``T`` steps at once, then per step the
        state's ``addmm`` and the cell's ops (:class:`LSTMCell`), from zero ``h`` and ``c``.
        Backward from the outputs, ``n = B h``:

        * every step: the cell's ``20 n`` elementwise gradients, ``n`` more after the first
          (``f c_{t-1}``'s gradient to ``c_{t-1}``), its own ``W_hh``/``b_hh`` gradients,
          added over the steps;
        * every step after the first: the state's gradient through ``W_hh``, and ``h_{t-1}``
          and ``c_{t-1}`` each adding their two gradients (``2n``);
        * the input projection's weight gradient over ``T B`` rows (and its input gradient).

        Saved: the input, the zero ``h`` and ``c``, per step the gate tensor and
        ``tanh(c_t)``, and ``h_{t-1}``, ``c_{t-1}`` after the first step."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, fwd)
        if not trainable or self.num_layers != 1 or self.bidirectional or self.proj_size:
            raise SymflopsError("mode='train' is derived for a one-layer, one-direction, "
                                "trainable LSTM without proj_size only", layer=self.spec(),
                                fix="trace the torch module with sf.trace(..., mode='train')")
        steps, batch = _steps_batch(self, shape)
        hid, width = self.hidden_size, 4 * self.hidden_size
        n, later = batch * hid, steps - 1
        grads: dict[str, Derivation] = {}
        if x.grad:
            grads["grad_input"] = linear_grad_derivations(
                steps * batch, self.input_size, width, False, weight_grad=False)["grad_input"]
        grads.update(
            grad_state=elementwise_derivation(
                5 * steps * n + later * n, 1, "the state's muls' gradients: o tanh(c) and "
                "i g 2 each, f c_{t-1} 1 (2 after the first step)"),
            grad_tanh_cell=activation_grad_derivation("tanh", steps * n),
            grad_sigmoid_gates=activation_grad_derivation("sigmoid", 3 * steps * n),
            grad_tanh_gate=activation_grad_derivation("tanh", steps * n),
            grad_hidden=linear_grad_derivations(later * batch, hid, width, False,
                                                weight_grad=False)["grad_input"],
            grad_state_accumulate=elementwise_derivation(
                later * n, 2, "h_{t-1} and c_{t-1} each add their two gradients"),
            grad_weight_hh=matmul_derivation(steps, width, batch, hid))
        if self.bias:
            grads["grad_bias_hh"] = reduction_derivation("sum", steps * batch * width,
                                                         steps * width)
        grads["grad_accumulate_hh"] = elementwise_derivation(
            later * (width * hid + (width if self.bias else 0)), 1,
            "the steps' W_hh (and b_hh) gradients added")
        ih = linear_grad_derivations(steps * batch, self.input_size, width, self.bias,
                                     input_grad=False)
        grads.update({f"{k}_ih": d for k, d in ih.items()})
        saved = [tr.saved(path, "input", x), tr.saved(path, "zero h and c", 2 * n),
                 tr.saved(path, "gates, tanh(c)", 5 * steps * n),
                 tr.saved(path, "states h, c", 2 * later * n)]
        weights = [(width, self.input_size), (width, hid)] + \
            ([(width,), (width,)] if self.bias else [])
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                         out=tr.new(steps * n, True), trainable=True, weights=weights)


class GRU(_Recurrent):
    """``torch.nn.GRU``, shapes as :class:`LSTM`. Per step and row: ``3h (I + h)`` MACs,
    6h bias adds, 7h elementwise, 7h activation; parameters ``3h (I + h) + 6h`` per layer
    and direction.

    >>> GRU(4, 8, batch_first=True).cost(("B", "T", 4)).params
    336
    """

    example = Example(
        "GRU(I, h)", lambda: GRU(I, hidden_size), (T, B, I),
        "T steps; h' = n + z (h - n) as torch computes it")

    cell = "gru"
    no_train = ""

    def __init__(self, input_size: SizeLike, hidden_size: SizeLike, num_layers: SizeLike = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """torch runs a one-layer GRU op by op: the input's projection for all ``T`` steps
        at once (one ``addmm``), then per step the state's ``addmm`` and the cell's ops
        (:class:`GRUCell`), from a zero state. Backward from the outputs, ``n = B h``:

        * every step: the cell's ``15 n`` elementwise gradients, and its own ``W_hh`` and
          ``b_hh`` gradients (one product of length ``B`` per weight, a sum over ``B``),
          added over the steps (``(T - 1)(3h h + 3h)``);
        * every step after the first (its state needs a gradient): the state's gradient
          through ``W_hh`` (a product of length ``3h`` per element) and the three
          gradients of ``h_{t-1}`` (the output, ``h - n`` and the product) added: ``2n``;
        * the input projection's weight gradient over ``T B`` rows, and its input
          gradient when the input needs one.

        Saved: the input, the zero state, per step the hidden gates, the copy of ``gh_n``,
        ``n_t`` and ``h - n_t``, and each state ``h_{t-1}`` after the first step."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, fwd)
        if not trainable or self.num_layers != 1 or self.bidirectional:
            raise SymflopsError("mode='train' is derived for a one-layer, one-direction, "
                                "trainable GRU only", layer=self.spec(),
                                fix="trace the torch module with sf.trace(..., mode='train')")
        steps, batch = _steps_batch(self, shape)
        hid, width = self.hidden_size, 3 * self.hidden_size
        n, later = batch * hid, steps - 1
        grads: dict[str, Derivation] = {}
        if x.grad:
            grads["grad_input"] = linear_grad_derivations(
                steps * batch, self.input_size, width, False, weight_grad=False)["grad_input"]
        grads.update(
            grad_state=elementwise_derivation(steps * n, 4, "h' = n + z (h - n): the mul's "
                                                            "two gradients, the negation, "
                                                            "n's two gradients added"),
            grad_tanh_new=activation_grad_derivation("tanh", steps * n),
            grad_reset_mul=elementwise_derivation(steps * n, 2, "r gh_n: its two gradients"),
            grad_sigmoid_gates=activation_grad_derivation("sigmoid", 2 * steps * n),
            grad_hidden=linear_grad_derivations(later * batch, hid, width, False,
                                                weight_grad=False)["grad_input"],
            grad_hidden_accumulate=elementwise_derivation(
                later * n, 2, "each state after the first feeds the output, h - n and the "
                              "next product: its three gradients added"),
            grad_weight_hh=matmul_derivation(steps, width, batch, hid))
        if self.bias:
            grads["grad_bias_hh"] = reduction_derivation("sum", steps * batch * width,
                                                         steps * width)
        grads["grad_accumulate_hh"] = elementwise_derivation(
            later * (width * hid + (width if self.bias else 0)), 1,
            "the steps' W_hh (and b_hh) gradients added")
        ih = linear_grad_derivations(steps * batch, self.input_size, width, self.bias,
                                     input_grad=False)
        grads.update({f"{k}_ih": d for k, d in ih.items()})
        saved = [tr.saved(path, "input", x), tr.saved(path, "zero state", n),
                 tr.saved(path, "gates, gh_n copy, n, h - n", 6 * steps * n),
                 tr.saved(path, "states", later * n)]
        weights = [(width, self.input_size), (width, hid)] + \
            ([(width,), (width,)] if self.bias else [])
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                         out=tr.new(steps * n, True), trainable=True, weights=weights)


def _steps_batch(layer: _Recurrent, shape: Shape) -> tuple[sp.Expr, sp.Expr]:
    """``(T, B)`` of a recurrent layer's input (an unbatched ``(T, I)`` has ``B = 1``)."""
    if len(shape) == 2:
        return shape[0], sp.Integer(1)
    return (shape[1], shape[0]) if layer.batch_first else (shape[0], shape[1])


class _Cell(Layer):
    cell = "lstm"

    def __init__(self, input_size: SizeLike, hidden_size: SizeLike, bias: bool = True) -> None:
        name = type(self).__name__
        self.input_size = to_size(input_size, name, "input_size")
        self.hidden_size = to_size(hidden_size, name, "hidden_size")
        self.bias = bool(bias)

    def spec(self) -> str:
        extra = "" if self.bias else ", bias=False"
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (1, 2), "(B, I) or (I,)")
        self._check_channels(shape, shape[-1], self.input_size, "features")
        batch = shape[0] if len(shape) == 2 else sp.Integer(1)
        d = recurrent_derivation(self.cell, batch, 1, self.input_size, self.hidden_size,
                                 self.bias)
        return self._leaf(name, shape, shape[:-1] + (self.hidden_size,), d)

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """torch runs the cell op by op from a zero state (``hx`` omitted: one zeros tensor
        serves as ``h`` and ``c``): ``gi = x W_ih^T + b_ih``, ``gh = 0 W_hh^T + b_hh``, the
        gate activations in place, then the state's muls and adds. Backward from ``h'``,
        with ``n = B h`` hidden elements:

        * LSTM (``c' = f c + i g``, ``h' = o tanh(c')``): the muls' gradients, 2 each for
          ``o tanh(c')`` and ``i g`` and 1 for ``f c`` (the zero state needs none): ``5n``;
          ``tanh(c')``'s gradient ``3n``; the gates' (three sigmoids and a tanh, 3 each):
          ``12n``. Saved: ``x`` and the zero state (the weights' gradients), the gate
          tensor (the in-place activations' outputs), ``tanh(c')``.
        * GRU (``n_t = tanh(gi_n + r gh_n)``, ``h' = n_t + z (h - n_t)``): the mul by ``z``
          (2n), the negation in ``h - n_t`` (n), ``n_t``'s two gradients added (n),
          ``tanh``'s (3n), the mul ``r gh_n`` (2n), the two sigmoids (6n). Saved: ``x``,
          the zero state, the hidden gates (which hold ``r`` and ``z``), the copy of
          ``gh_n`` the in-place mul keeps, ``n_t`` and ``h - n_t``.

        The weights' gradients are two linear layers' (the state's side takes no input
        gradient: the zero state needs none)."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, fwd)
        rows, hid, lstm = numel(shape[:-1]), self.hidden_size, self.cell == "lstm"
        width, n = (4 if lstm else 3) * hid, numel(shape[:-1]) * hid
        ih = linear_grad_derivations(rows, self.input_size, width, self.bias,
                                     input_grad=x.grad)
        hh = linear_grad_derivations(rows, hid, width, self.bias, input_grad=False)
        grads = {"grad_input": ih["grad_input"]} if "grad_input" in ih else {}
        if lstm:
            grads.update(
                grad_state=elementwise_derivation(n, 5, "the state's muls: o tanh(c') (2), "
                                                        "i g (2), f c (1)"),
                grad_tanh_cell=activation_grad_derivation("tanh", n),
                grad_sigmoid_gates=activation_grad_derivation("sigmoid", 3 * n),
                grad_tanh_gate=activation_grad_derivation("tanh", n))
        else:
            grads.update(
                grad_state=elementwise_derivation(n, 4, "h' = n + z (h - n): the mul's two "
                                                        "gradients, the negation, n's two "
                                                        "gradients added"),
                grad_tanh_new=activation_grad_derivation("tanh", n),
                grad_reset_mul=elementwise_derivation(n, 2, "r gh_n: its two gradients")
                if trainable else elementwise_derivation(
                    n, 1, "r gh_n: r's gradient (gh_n is made of frozen weights and the "
                          "zero state: it needs none)"),
                grad_sigmoid_gates=activation_grad_derivation("sigmoid", 2 * n))
        zeros = tr.new(n, False)
        gates = tr.saved(path, "gates", tr.new(width * rows, True))
        if trainable:  # the weights' gradients keep x and the zero state (h)
            grads.update({f"{k}_ih": d for k, d in ih.items() if k != "grad_input"})
            grads.update({f"{k}_hh": d for k, d in hh.items()})
            saved = [tr.saved(path, "input", x), tr.saved(path, "zero state", zeros), gates]
        else:  # frozen, x's gradient only: the LSTM's f c still keeps the zero state (c)
            saved = [tr.saved(path, "zero state", zeros), gates] if lstm else [gates]
        if lstm:
            saved.append(tr.saved(path, "tanh(c')", n))
        else:
            saved += [tr.saved(path, "gh_n copy", n), tr.saved(path, "n", n),
                      tr.saved(path, "h - n", n)]
        weights = [(width, self.input_size), (width, hid)] + \
            ([(width,), (width,)] if self.bias else [])
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                         out=tr.new(n, True), trainable=trainable, weights=weights)


class LSTMCell(_Cell):
    """``torch.nn.LSTMCell`` on ``(B, I)``: one step; the output is ``h'`` ``(B, h)``.

    >>> LSTMCell(4, 8).cost(("B", 4)).flops
    920*B
    """


    example = Example(
        "LSTMCell(I, h)", lambda: LSTMCell(I, hidden_size), (B, I), "one step of LSTM")

    cell = "lstm"


class GRUCell(_Cell):
    """``torch.nn.GRUCell`` on ``(B, I)``: one step; the output ``h'`` ``(B, h)``.

    >>> GRUCell(4, 8).cost(("B", 4)).flops
    688*B
    """

    example = Example("GRUCell(I, h)", lambda: GRUCell(I, hidden_size), (B, I), "one step of GRU")

    cell = "gru"
