"""Recurrent layers: the fused ops torch runs for ``nn.LSTM`` / ``nn.GRU``.

What runs, measured on torch 2.13 CPU:

* ``nn.LSTM`` (no ``proj_size``) calls ``aten.mkldnn_rnn_layer`` once per layer and
  direction: counted here from the gate equations
  (:func:`symflops.formulas.recurrent.recurrent_derivation`, the count ``sf.nn.LSTM`` gives).
* ``nn.LSTM(proj_size=...)``, ``nn.GRU``, ``nn.LSTMCell`` and ``nn.GRUCell`` decompose into
  ``addmm``/``mm``, pointwise adds, multiplies, sigmoids and tanhs, one step at a time:
  counted op by op, the same totals (the cells kind by kind; ``nn.GRU`` adds its input
  bias outside the product, so ``b_ih`` counts as ``elementwise`` rather than ``bias``).
* Symbolic sizes: torch steps through ``T`` in C++ (``aten.lstm`` and ``aten.gru`` are
  composite ops that never reach a dispatch mode), so on fake tensors ``nn.LSTM`` fails
  ("Cannot call numel() on tensor with symbolic sizes") and ``nn.GRU`` pins ``T`` and ``B``
  to their hints. A symbolic trace in eval mode therefore takes the whole call one level
  up: :class:`FusedRecurrent`, a ``TorchFunctionMode`` active while the model runs (only
  when it has an ``nn.LSTM`` or ``nn.GRU``), answers ``torch._VF.lstm`` / ``torch._VF.gru``
  with outputs of the right symbolic shapes and records one op, ``symflops.lstm`` /
  ``symflops.gru``, counted per layer and direction by
  :func:`symflops.formulas.recurrent.recurrent_derivation` (the count ``sf.nn.LSTM``/``GRU``
  give, kind by kind): ``T`` and ``B`` stay symbolic. Concrete (real-tensor) runs, training
  traces and packed sequences call torch as before (``mkldnn_rnn_layer`` or the per-step
  ops, the same totals).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.tracing.handlers._common import aten, one
from symflops.tracing.handlers._fused import FusedOp, Note
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__ = ["FusedRecurrent", "FUSED_LSTM", "FUSED_GRU", "has_fused_recurrent"]

#: ideep's ``rnn_kind`` (the ``mode`` argument of ``mkldnn_rnn_layer``) -> cell
_MODES = {2: "lstm", 3: "gru"}


@register(aten.mkldnn_rnn_layer)
def _mkldnn_rnn_layer(call: OpCall) -> list[Part]:
    """``mkldnn_rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes, mode,
    hidden_size, num_layers, has_biases, bidirectional, batch_first, train)``: one layer,
    one direction, every step."""
    x = call.args[0].shape
    mode, hidden, has_bias = call.args[9], call.args[10], bool(call.args[12])
    batch_first = bool(call.args[14])
    if mode not in _MODES:
        raise SymflopsError("unknown recurrent mode in a fused RNN layer",
                            layer="aten.mkldnn_rnn_layer", values={"mode": mode},
                            fix="trace an LSTM or GRU, or report this model")
    steps, batch = (x[1], x[0]) if batch_first else (x[0], x[1])
    return one(formulas.recurrent.recurrent_derivation(_MODES[mode], batch, steps, x[2], hidden,
                                             has_bias))


FUSED_LSTM = FusedOp("lstm")
FUSED_GRU = FusedOp("gru")
_FUSED = {"lstm": FUSED_LSTM, "gru": FUSED_GRU}


def has_fused_recurrent(model: torch.nn.Module) -> bool:
    """Whether ``model`` has an ``nn.LSTM`` or ``nn.GRU`` (whose calls :class:`FusedRecurrent`
    takes over)."""
    return any(isinstance(m, (torch.nn.LSTM, torch.nn.GRU)) for m in model.modules())


class FusedRecurrent(TorchFunctionMode):
    """While active, ``torch._VF.lstm(input, (h0, c0), weights, ...)`` and
    ``torch._VF.gru(input, h0, weights, ...)`` (what ``nn.LSTM``/``nn.GRU`` call on padded
    input) return new tensors of the output shapes and call ``note(packet, args, outputs)``
    instead of running torch's C++ loop over the steps; everything else runs as usual."""

    def __init__(self, note: Note) -> None:
        super().__init__()
        self.note = note

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        packet = _FUSED.get(name)
        if packet is None or func is not getattr(torch._C._VariableFunctions, name) or \
                kwargs or len(args) != 9 or \
                not isinstance(args[0], torch.Tensor) or args[0].dim() != 3 or \
                (packet is FUSED_GRU and not isinstance(args[1], torch.Tensor)) or \
                (packet is FUSED_LSTM and not isinstance(args[1], (tuple, list))):
            return func(*args, **kwargs)  # packed sequences, cells and the rest: as torch
        x, hx, weights = args[0], args[1], list(args[2])
        bidirectional, batch_first = bool(args[7]), bool(args[8])
        h0 = hx[0] if packet is FUSED_LSTM else hx
        steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        out_width = h0.shape[-1] * (2 if bidirectional else 1)
        sizes = (batch, steps, out_width) if batch_first else (steps, batch, out_width)
        outs: tuple[torch.Tensor, ...] = (x.new_empty(sizes), torch.empty_like(h0))
        if packet is FUSED_LSTM:
            outs = (*outs, torch.empty_like(hx[1]))
        self.note(packet, (x, tuple(hx) if packet is FUSED_LSTM else hx, weights,
                           *args[3:]), outs)
        return outs


def _fused(call: OpCall, cell: str) -> list[Part]:
    """Per layer and direction, ``recurrent_derivation`` over the layer's input width; the
    weights tell the widths: ``w_ih`` is ``(G h, I_l)``, an LSTM's ``w_hr`` ``(p, h)``."""
    x, hx, weights = call.args[0], call.args[1], call.args[2]
    has_bias, layers = bool(call.args[3]), int(call.args[4])
    dirs = 2 if call.args[7] else 1
    batch_first = bool(call.args[8])
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    per = len(weights) // (layers * dirs)  # w_ih, w_hh[, b_ih, b_hh][, w_hr]
    hidden = (hx[1] if cell == "lstm" else hx).shape[-1]
    proj = per in (3, 5)
    if per not in ((2, 3) if not has_bias else (4, 5)) or any(
            not isinstance(w, TShape) for w in weights):
        raise SymflopsError("unexpected weights in a recurrent call", layer=f"symflops.{cell}",
                            values={"weights": len(weights), "layers": layers,
                                    "directions": dirs},
                            fix="report this model")
    parts = []
    for layer in range(layers):
        for d in range(dirs):
            w_ih = weights[(layer * dirs + d) * per]
            p = weights[(layer * dirs + d) * per + per - 1].shape[0] if proj else None
            derivation = formulas.recurrent.recurrent_derivation(
                cell, batch, steps, w_ih.shape[1], hidden, has_bias, p)
            parts.append(Part.of(derivation, name=f"l{layer}" + ("_reverse" if d else ""),
                                 layer=f"{cell.upper()}Layer"))
    return parts


@register(FUSED_LSTM)
def _fused_lstm(call: OpCall) -> list[Part]:
    """``nn.LSTM``'s whole call (``torch._VF.lstm``) on symbolic sizes: per layer and
    direction the gate equations over ``T`` steps of ``B`` rows."""
    return _fused(call, "lstm")


@register(FUSED_GRU)
def _fused_gru(call: OpCall) -> list[Part]:
    """``nn.GRU``'s whole call (``torch._VF.gru``) on symbolic sizes."""
    return _fused(call, "gru")
