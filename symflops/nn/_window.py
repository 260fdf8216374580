"""Swin's window attention and patch merging on channels-last maps ``(B, H, W, C)``,
counted as torchvision's ``swin_transformer`` computes them (see
:mod:`symflops.formulas.window`).

>>> from symflops.symbols import B
>>> c = WindowAttention(96, 3, 7).cost((B, 56, 56, 96), convention="macs")
>>> c.flops == B * (4 * 56 * 56 * 96**2 + 2 * 7**2 * 56 * 56 * 96)   # Omega(W-MSA)
True
"""

from __future__ import annotations

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.window import (
    patch_merging_size,
    relative_bias_params,
    window,
    window_attention_derivations,
    window_attention_grad_derivations,
    window_padded,
)
from symflops.memory import factored_size
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    nonneg_size,
    numel,
    to_size,
)
from symflops.nn._linear import Linear
from symflops.nn._norm import LayerNorm
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    composite,
    grad_leaves,
    join,
    no_grad,
    train_layer,
)
from symflops.nn._views import moved
from symflops.symbols import (
    B,
    H,
    W,
    dim,
    heads,
)

__all__ = ["WindowAttention", "PatchMerging"]


class WindowAttention(Layer):
    """torchvision's ``ShiftedWindowAttention(dim, window_size, shift_size, num_heads)``
    on ``(B, H, W, dim)``: pad ``H, W`` to multiples of ``window``, (roll by ``shift``),
    attention inside each ``window x window`` window with a learned relative position bias
    (``(2 window - 1)^2 heads`` parameters), project back, crop.

    Children: ``qkv``, ``q_scale``, ``scores``, ``bias``, ``mask`` (shifted windows only),
    ``softmax``, ``context``, ``proj``. As in torchvision, a window that covers the whole
    padded map is not shifted: decided now for concrete sizes; for symbolic ones the
    ``mask`` child's count is ``Piecewise((1, shifted), (0, True))``.
    """

    example = Example(
        "WindowAttention(dim, heads, window)", lambda: WindowAttention(dim, heads, window),
        (B, H, W, dim), "Swin: H, W padded to multiples of window; shift= shifts")

    def __init__(self, dim: SizeLike, heads: SizeLike, window: SizeLike, shift: SizeLike = 0,
                 qkv_bias: bool = True, proj_bias: bool = True) -> None:
        self.dim = to_size(dim, "WindowAttention", "dim")
        self.heads = to_size(heads, "WindowAttention", "heads")
        self.window = to_size(window, "WindowAttention", "window")
        self.shift = nonneg_size(shift, "WindowAttention", "shift")
        self.qkv_bias, self.proj_bias = bool(qkv_bias), bool(proj_bias)
        if self.dim.is_number and self.heads.is_number and self.dim % self.heads != 0:
            raise SymflopsError("heads must divide dim", layer="WindowAttention",
                                values={"dim": dim, "heads": heads},
                                fix="choose heads among the divisors of dim")
        if self.shift.is_number and self.window.is_number and self.shift >= self.window:
            raise SymflopsError("shift must be smaller than the window",
                                layer="WindowAttention",
                                values={"window": window, "shift": shift},
                                fix="use shift=window // 2 (Swin) or 0")

    def spec(self) -> str:
        extra = f", shift={self.shift}" if self.shift != 0 else ""
        return f"WindowAttention({self.dim}, {self.heads}, window={self.window}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (4,), f"(B, H, W, {self.dim})")
        self._check_channels(shape, shape[3], self.dim, "features")
        batch, height, width = shape[:3]
        m = self.window
        hp, wp = (sp.sympify(window_padded(s, m)) for s in (height, width))
        shifted: sp.Basic = sp.false if self.shift == 0 else \
            sp.Or(sp.Gt(hp, m), sp.Gt(wp, m))
        padded = (batch, hp, wp, self.dim)
        children = [Linear(self.dim, 3 * self.dim, self.qkv_bias)._cost(padded, "qkv")]
        parts = window_attention_derivations(batch, hp, wp, self.dim, self.heads, m,
                                             shifted=shifted is not sp.false)
        for part, d in parts.items():
            leaf = Cost.from_derivation(part, "WindowAttention" + part.capitalize(), d,
                                        spec=f"window_attention.{part}", input_shape=padded,
                                        output_shape=padded)
            if part == "mask" and shifted is not sp.true:
                leaf = leaf.replace(count=sp.Piecewise((1, shifted), (0, True)))
            children.append(leaf)
        children.append(Linear(self.dim, self.dim, self.proj_bias)._cost(padded, "proj"))
        return Cost(name, "WindowAttention", spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape,
                    validity=divides_condition(self.heads, self.dim))

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """As autograd runs torchvision's ``shifted_window_attention``: the padded,
        (rolled,) partitioned input is a copy the ``qkv`` linear keeps; the core's
        gradients are :func:`symflops.formulas.window.window_attention_grad_derivations`
        (two bmm backward pairs, the softmax's, the bias's sum over the windows, the query
        scale's, the q/k/v slices' adds), and the core keeps the scaled ``q``, ``k``, the
        softmax output and ``v``; ``proj`` keeps its input. Crop and roll back are free.
        Frozen (``x`` needing a gradient): the linear layers take no weight gradients, the
        bias table none, and what the core keeps is the same (x's gradient needs it)."""
        eval_cost = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, eval_cost)
        batch, hp, wp = eval_cost["qkv"].input_shape[:3]
        padded = (batch, hp, wp, self.dim)
        tokens = batch * hp * wp
        windows = tr.new(tokens * self.dim, x.grad)
        qkv = train_layer(Linear(self.dim, 3 * self.dim, self.qkv_bias), padded, "qkv",
                          join(path, "qkv"), windows, tr)
        parts = [c for c in eval_cost.children if c.name not in ("qkv", "proj")]
        fwd = Cost("forward", "WindowAttention", spec="window attention", children=parts,
                   input_shape=padded, output_shape=padded)
        grads = window_attention_grad_derivations(batch, hp, wp, self.dim, self.heads,
                                                  self.window)
        if not trainable:  # frozen: the bias table takes no gradient (x's still flows)
            grads.pop("grad_bias")
        n = self.window ** 2
        saved = [tr.saved(path, "q", tokens * self.dim), tr.saved(path, "k", tokens * self.dim),
                 tr.saved(path, "softmax output", tokens * self.heads * n),
                 tr.saved(path, "v", tokens * self.dim)]
        table = relative_bias_params(self.window, self.heads)
        core = Cost("attention", "WindowAttention", spec="window attention",
                    children=[fwd, *grad_leaves(grads, "WindowAttention", "window attention",
                                                padded)],
                    input_shape=padded, output_shape=padded,
                    memory=tr.mem(table, table if trainable else 0, saved, factored_size(
                        [((2 * self.window - 1) ** 2, self.heads)]) if trainable else 0))
        proj = train_layer(Linear(self.dim, self.dim, self.proj_bias), padded, "proj",
                           join(path, "proj"), tr.new(tokens * self.dim, True), tr)
        cost = composite(self, shape, name, tr, [qkv.cost, core, proj.cost], shape).replace(
            validity=eval_cost.validity)
        return Step(cost, tr.new(numel(shape), True))


class PatchMerging(Layer):
    """torchvision's Swin ``PatchMerging(dim)`` on ``(B, H, W, dim)``: pad ``H, W`` to
    even, concatenate each 2 x 2 neighbourhood (``merge``, a copy), ``norm`` (LayerNorm
    over ``4 dim``) and ``reduction`` (Linear ``4 dim -> 2 dim``, no bias): ``(B,
    ceil(H/2), ceil(W/2), 2 dim)``.

    >>> PatchMerging(96).cost(("B", 56, 56, 96)).params
    74496
    """

    example = Example(
        "PatchMerging(dim)", lambda: PatchMerging(dim), (B, H, W, dim),
        "Swin: 2 x 2 neighbours concatenated, LayerNorm, 4 dim -> 2 dim")

    def __init__(self, dim: SizeLike) -> None:
        self.dim = to_size(dim, "PatchMerging", "dim")

    def spec(self) -> str:
        return f"PatchMerging({self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (4,), f"(B, H, W, {self.dim})")
        self._check_channels(shape, shape[3], self.dim, "features")
        merged = (shape[0], sp.sympify(patch_merging_size(shape[1])),
                  sp.sympify(patch_merging_size(shape[2])), 4 * self.dim)
        merge = moved(self, "merge", shape, merged).replace(layer="PatchMergingConcat",
                                                            spec="merge 2x2 patches")
        norm = LayerNorm(4 * self.dim)._cost(merged, "norm")
        reduction = Linear(4 * self.dim, 2 * self.dim, bias=False)._cost(merged, "reduction")
        return Cost(name, "PatchMerging", spec=self.spec(), children=[merge, norm, reduction],
                    input_shape=shape, output_shape=reduction.output_shape)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                       tr: Train) -> Step:
        """torchvision's ``x0..x3 = x[..., 0::2, 0::2, :], ...``, ``cat``, norm, reduction:
        the cat's gradient is four views; each strided slice's gradient is written into a
        zero tensor of the (padded) input's size and autograd adds the four: ``3 numel(x)``
        adds (the pad's gradient is a slice, free). Nothing saved by the merge."""
        eval_cost = self._cost(shape, name)
        merge = eval_cost["merge"]
        merged = merge.output_shape
        kids = [merge.replace(memory=tr.mem(0, 0, ()))]
        if x.grad:
            padded = numel(merged)  # the padded input: as many elements as the merged tensor
            kids.append(Cost.from_derivation(
                "grad_accumulate", "AddBackward", F.pointwise.elementwise_derivation(
                    padded, 3, "the four strided slices' gradients added: 3 per input element"),
                spec="the 2x2 slices' gradients", input_shape=shape, output_shape=shape))
        m = tr.new(numel(merged), x.grad)
        norm = train_layer(LayerNorm(4 * self.dim), merged, "norm", join(path, "norm"), m, tr)
        red = train_layer(Linear(4 * self.dim, 2 * self.dim, bias=False), merged, "reduction",
                          join(path, "reduction"), norm.out, tr)
        kids += [norm.cost, red.cost]
        return Step(composite(self, shape, name, tr, kids, red.cost.output_shape), red.out)
