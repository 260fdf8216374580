"""Resizing (interpolate/upsample, pixel shuffle) and reductions.

Hand count, per output element, in the exact convention:

* nearest: an index lookup, no arithmetic (0);
* linear / bilinear / trilinear (``d`` interpolated dims): a weighted sum of the
  ``2^d`` neighbours: ``2^d`` multiplies and ``2^d - 1`` adds (the per-row/column
  weights are computed once per output row/column and are not counted);
* bicubic (2-d): a weighted sum of 16 neighbours: 16 multiplies and 15 adds;
* pixel shuffle / unshuffle: ``(C r^2, H, W) <-> (C, H r, W r)`` is a reshape and a
  permute, moving values without arithmetic (0).

>>> interpolate_work(10, "bilinear")
{'elementwise': 70}
>>> interpolate_work(10, "nearest")
{}
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, exact_div, floordiv, work
from symflops.formulas.derivation import Derivation

__all__ = ["INTERPOLATE_RATES", "interpolate_work", "reduction_work", "interpolate_derivation",
           "reduction_derivation", "SPREAD_REDUCTIONS", "pixel_shuffle_shape",
           "pixel_shuffle_derivation", "interpolate_grad_derivation", "upsample_output_size",
           "INTERPOLATE_DIMS", "channel_shuffle_derivation", "fold_blocks", "fold_derivation"]

#: how many trailing dims each interpolation mode resizes (None: any of 1, 2, 3)
INTERPOLATE_DIMS: dict[str, int | None] = {
    "nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "trilinear": 3,
    "bicubic": 2,
}

#: reductions that subtract, square (or exp) and add each input: 3 per input element
SPREAD_REDUCTIONS = frozenset({"var", "std", "var_mean", "std_mean", "norm",
                               "linalg_vector_norm", "logsumexp"})
#: outputs of a reduction
M_out = sym.symbol("M_out")

#: exact-convention operations per output element of each interpolation mode
INTERPOLATE_RATES: dict[str, tuple[int, str]] = {
    "nearest": (0, "an index lookup"),
    "nearest-exact": (0, "an index lookup"),
    "linear": (3, "2 multiplies and 1 add (2 neighbours)"),
    "bilinear": (7, "4 multiplies and 3 adds (4 neighbours)"),
    "trilinear": (15, "8 multiplies and 7 adds (8 neighbours)"),
    "bicubic": (31, "16 multiplies and 15 adds (16 neighbours)"),
}


def interpolate_work(outputs: Size, mode: str) -> Work:
    """Work of resizing to ``outputs`` output elements with ``mode``."""
    try:
        rate = INTERPOLATE_RATES[mode][0]
    except KeyError:
        raise SymflopsError("unknown interpolation mode", values={"mode": mode},
                            fix="use one of " + ", ".join(INTERPOLATE_RATES)) from None
    return work(elementwise=rate * outputs)


def reduction_work(in_numel: Size, out_numel: Size, *, mean: bool = False) -> Work:
    """A sum/max/min reducing ``in_numel`` values to ``out_numel``: ``in - out`` adds or
    compares, plus one divide per output for a mean (so a mean costs ``in_numel``)."""
    return work(elementwise=in_numel - out_numel + (out_numel if mean else 0))


@cache
def _interpolate_general(mode: str) -> Work:
    return interpolate_work(sym.M, mode)


def interpolate_derivation(outputs: Size, mode: str) -> Derivation:
    """The derivation of resizing to ``M = outputs`` output elements with ``mode``.

    >>> interpolate_derivation(10, "bilinear").explanation
    'bilinear: 7 per output (4 multiplies and 3 adds (4 neighbours))'
    """
    general = _interpolate_general(mode)
    rate, why = INTERPOLATE_RATES[mode]
    return Derivation(dict(general), sp.Integer(0), {sym.M: outputs},
                      f"{mode}: {rate} per output ({why})")


@cache
def _reduction_general(name: str) -> Work:
    if name in SPREAD_REDUCTIONS:
        return work(elementwise=3 * sym.M)
    if name == "cumsum":
        return work(elementwise=sym.M)
    return reduction_work(sym.M, M_out, mean=name == "mean")


def reduction_derivation(name: str, in_numel: Size, out_numel: Size) -> Derivation:
    """The derivation of reduction ``name`` (``sum``, ``mean``, ``amax``, ``var``, ...) of
    ``M = in_numel`` values to ``M_out = out_numel``: ``M - M_out`` adds or compares
    (and ``M_out`` divides for a mean); variance-type reductions 3 per input (subtract,
    square, add); ``cumsum`` one add per element.

    >>> reduction_derivation("mean", 12, 3).work, reduction_derivation("var", 12, 3).work
    ({'elementwise': 12}, {'elementwise': 36})
    """
    general = _reduction_general(name)
    if name in SPREAD_REDUCTIONS:
        explanation = f"{name}: 3 per input element"
    elif name == "cumsum":
        explanation = "cumsum: one add per element"
    else:
        explanation = f"{name}: M - M_out adds/compares" + \
            (" and M_out divides" if name == "mean" else "")
    return Derivation(dict(general), sp.Integer(0), {sym.M: in_numel, M_out: out_numel},
                      explanation)


def pixel_shuffle_shape(channels: Size, height: Size, width: Size, factor: Size, *,
                        inverse: bool = False) -> tuple[Size, Size, Size]:
    """``(C, H, W) -> (C / r^2, H r, W r)`` (pixel shuffle) or, with ``inverse``,
    ``(C r^2, H / r, W / r)`` (pixel unshuffle); the divisions must be exact (the caller
    checks them).

    >>> pixel_shuffle_shape(8, 3, 3, 2), pixel_shuffle_shape(2, 4, 6, 2, inverse=True)
    ((2, 6, 6), (8, 2, 3))
    """
    if inverse:
        return channels * factor ** 2, exact_div(height, factor), exact_div(width, factor)
    return exact_div(channels, factor ** 2), height * factor, width * factor


def pixel_shuffle_derivation(inverse: bool = False) -> Derivation:
    """The derivation of pixel shuffle (``inverse``: unshuffle): no arithmetic.

    >>> pixel_shuffle_derivation().work
    {}
    """
    what = "(C r^2, H, W) -> (C, H r, W r)" if not inverse else "(C, H r, W r) -> (C r^2, H, W)"
    return Derivation({}, sp.Integer(0), {},
                      f"a reshape and a permute, {what}: values move, no arithmetic")


def channel_shuffle_derivation(groups: Size) -> Derivation:
    """The derivation of a channel shuffle into ``groups`` groups (ShuffleNet): the ``C``
    channels viewed as ``(g, C/g)``, transposed to ``(C/g, g)`` and flattened back, so
    channel ``i g + j`` of the output is channel ``j C/g + i`` of the input: every value
    moves, none is computed. Its gradient is the inverse shuffle (``C/g`` groups).

    >>> channel_shuffle_derivation(3).work, channel_shuffle_derivation(3).params
    ({}, 0)
    """
    return Derivation({}, sp.Integer(0), {},
                      f"channels viewed as ({groups}, C/{groups}), transposed and flattened: "
                      "values move, no arithmetic")


@cache
def _interpolate_grad_general(rate: int) -> Work:
    return work(elementwise=rate * sym.M)


def interpolate_grad_derivation(grad_outputs: Size, mode: str) -> Derivation:
    """The gradient of resizing with ``mode``: each of the ``M = grad_outputs`` output
    gradients is spread over the neighbours it was computed from, a multiply by the
    neighbour's weight and an add per neighbour (nearest: one add). Twice the forward's
    neighbour count: linear 4, bilinear 8, trilinear 16, bicubic 32.

    >>> interpolate_grad_derivation(10, "bilinear").work
    {'elementwise': 80}
    >>> interpolate_grad_derivation(10, "nearest").work
    {'elementwise': 10}
    """
    if mode not in INTERPOLATE_RATES:
        raise SymflopsError("unknown interpolation mode", values={"mode": mode},
                            fix="use one of " + ", ".join(INTERPOLATE_RATES))
    neighbours = (INTERPOLATE_RATES[mode][0] + 1) // 2  # 2^d (16 for bicubic); 0 nearest
    rate = 2 * neighbours if neighbours else 1
    what = "one add" if not neighbours else \
        f"{neighbours} multiplies by the weights and {neighbours} adds"
    return Derivation(dict(_interpolate_grad_general(rate)), sp.Integer(0),
                      {sym.M: grad_outputs},
                      f"{mode} resize gradient: per output gradient {what} ({rate})")


def upsample_output_size(size: Size, scale: Size) -> Size:
    """``floor(size * scale)`` for an exact (int or rational) ``scale``, as torch sizes
    ``interpolate(scale_factor=...)``.

    >>> from symflops.symbols import H
    >>> upsample_output_size(7, sp.Rational(3, 2)), upsample_output_size(H, 2)
    (10, 2*H)
    """
    return floordiv(size * sp.Rational(scale).p, sp.Rational(scale).q)


def fold_blocks(size: Size, kernel: int, dilation: int, padding: int, stride: int) -> Size:
    """Sliding blocks along one dim of ``size`` (``nn.Unfold``'s ``L`` factor):
    ``floor((size + 2p - d(k - 1) - 1) / s) + 1``.

    >>> fold_blocks(32, 4, 1, 0, 2)
    15
    """
    return floordiv(size + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1


def _fold_dim(n: Size, k: int, d: int, p: int, s: int) -> tuple[sp.Expr, sp.Expr]:
    """``(contributions, covered)`` along one dim of ``nn.Fold`` (col2im): the (block,
    kernel offset) pairs whose position ``l s - p + j d`` falls in ``[0, n)``, and the
    positions they reach (blocks overlapping only when ``d = 1``, so the reach is one
    contiguous run from 0)."""
    n = sp.sympify(n)
    blocks = fold_blocks(n, k, d, p, s)
    pairs = []
    for j in range(k):  # l from ceil((p - j d) / s) (at least 0) to floor((n - 1 + p - j d) / s)
        first = sp.Max(0, -sp.floor(sp.Rational(j * d - p, s)))
        last = sp.Min(blocks - 1, sp.floor((n - 1 + p - j * d) / s))
        pairs.append(sp.Max(0, last - first + 1))
    covered = sp.Min(n, (blocks - 1) * s - p + k)
    return sp.Add(*pairs), covered


def fold_derivation(channels: Size, sizes: tuple[Size, ...], kernel: tuple[int, ...],
                    dilation: tuple[int, ...], padding: tuple[int, ...],
                    stride: tuple[int, ...], batch: Size = 1) -> Derivation:
    """``nn.Fold`` (``aten.col2im``): the blocks' values summed into the output, ``n - 1``
    adds for an output position ``n`` values reach: ``B C (prod contributions - prod
    covered)`` over the dims (each dim's pairs and reach: :func:`_fold_dim`). Blocks that do
    not overlap (``s >= d (k - 1) + 1`` in every dim) add nothing. Overlapping blocks with a
    dilation are refused (their reach has gaps).

    >>> fold_derivation(3, (6,), (3,), (1,), (0,), (1,)).work      # 4 blocks of 3 over 6
    {'elementwise': 18}
    """
    overlap = any(st < di * (k - 1) + 1 for k, di, st in zip(kernel, dilation, stride,
                                                               strict=True))
    if not overlap:
        total: sp.Expr = sp.Integer(0)
    else:
        if any(di != 1 for di in dilation):
            raise SymflopsError("nn.Fold with overlapping dilated blocks is not counted",
                                layer="Fold", values={"kernel_size": kernel,
                                                      "dilation": dilation, "stride": stride},
                                fix="use dilation 1, or a stride >= d (k - 1) + 1 (blocks "
                                    "that do not overlap)")
        contributions, covered = sp.Integer(1), sp.Integer(1)
        for n, k, p, st in zip(sizes, kernel, padding, stride, strict=True):
            a, b = _fold_dim(n, k, 1, p, st)
            contributions, covered = contributions * a, covered * b
        total = sp.expand(sp.sympify(batch) * channels * (contributions - covered))
    return Derivation({"elementwise": total}, sp.Integer(0), {},
                      "fold: the values each output position receives from the blocks, "
                      "summed (n - 1 adds for n values)")
