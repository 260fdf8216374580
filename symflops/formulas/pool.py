"""Pooling: window reductions, no parameters.

Max pooling compares ``window - 1`` times per output; average pooling adds
``window - 1`` times and divides once: ``window`` per output. Padding positions
count as elements of the window (``-inf`` for max, ``0`` for average), which is
how the padded formulation computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, ceildiv, floordiv, is_int, prod, smin, work
from symflops.formulas.derivation import Derivation

__all__ = ["pool_output_size", "pool_window_total", "max_pool_work", "avg_pool_work",
           "adaptive_window_total", "adaptive_avg_pool_work", "adaptive_max_pool_work",
           "pool_derivation", "adaptive_pool_derivation", "POOL_KINDS", "scatter_grad_derivation",
           "avg_pool_grad_derivation", "adaptive_avg_pool_grad_derivation",
           "avg_pool_grad_window_total"]

#: what one output of each pooling kind costs
POOL_KINDS = {"max": "window - 1 compares per output",
              "avg": "window - 1 adds and one divide per output"}


def pool_output_size(size: Size, kernel: Size, stride: Size, padding: Size = 0,
                     dilation: Size = 1, ceil_mode: bool = False) -> Size:
    """torch's pooling output size; with ``ceil_mode`` the last window must start
    inside the input or the left padding.

    >>> pool_output_size(112, 3, 2, 1)
    56
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return floordiv(span, stride) + 1
    out = ceildiv(span, stride) + 1
    if is_int(out) and is_int(size) and is_int(padding) and (int(out) - 1) * int(stride) >= \
            int(size) + int(padding):
        return int(out) - 1
    if not is_int(out):
        return sp.Piecewise((out - 1, (out - 1) * stride >= size + padding), (out, True))
    return out


def pool_window_total(size: Size, kernel: Size, stride: Size, padding: Size = 0,
                      dilation: Size = 1, ceil_mode: bool = False, out: Size | None = None
                      ) -> Size:
    """Window elements summed over the outputs along one dim (inside the padded input).

    Every window holds ``kernel`` elements, except that with ``ceil_mode`` the last
    window may stick out past the padded input and hold only the
    ``ceil((size + 2 padding - start) / dilation)`` elements before its end. ``out``: the
    output size when it is known already (a traced shape), else it is computed.

    >>> pool_window_total(5, 2, 2), pool_window_total(5, 2, 2, ceil_mode=True)
    (4, 5)
    """
    args = (size, kernel, stride, padding, dilation, ceil_mode, out)
    try:  # each value with its type: 2 and Integer(2) are equal but give different types
        return _window_total(*((type(a), a) for a in args))
    except TypeError:  # an argument without a hash
        return _window_total_of(*args)


@lru_cache(maxsize=2048)
def _window_total(*typed: tuple[type, Any]) -> Size:
    """:func:`_window_total_of`, remembered: a traced model repeats the same pool on the
    same symbolic sizes, and the ``Min`` of a ceil-mode window is slow to build."""
    return _window_total_of(*(a for _t, a in typed))


def _window_total_of(size: Size, kernel: Size, stride: Size, padding: Size, dilation: Size,
                     ceil_mode: bool, out: Size | None) -> Size:
    if out is None:
        out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    if not ceil_mode:
        return out * kernel
    room = size + 2 * padding - (out - 1) * stride  # padded elements from the last start on
    last = ceildiv(room, dilation)  # taps of the last window before the padded input's end
    if all(is_int(v) for v in (kernel, stride, padding, dilation)):
        bound = _last_window_bounds(int(kernel), int(stride), int(padding), int(dilation))
        if bound == "whole":
            return out * kernel
        if bound == "cut":
            return (out - 1) * kernel + last
    return (out - 1) * kernel + smin(kernel, last)


def _last_window_bounds(k: int, s: int, p: int, d: int) -> str:
    """Whether a ceil-mode pool's last window always holds all ``k`` taps (``"whole"``),
    never more than the taps before the padded input's end (``"cut"``: ``min(k, last)`` is
    ``last``), or either, depending on the size (``""``): decided once from the constants,
    so the window total needs no ``Min`` (SymPy spends milliseconds failing to prove
    either side of ``Min(3, ...)`` on floor expressions, and a rendered formula reads
    better without it).

    Hand derivation, with ``L`` the size, ``n = L + 2p - d(k - 1) - 1``, torch's output
    ``o = ceil(n / s) + 1``, less one when ``(o - 1) s >= L + p``, and ``room = L + 2p -
    (o - 1) s`` (``last = ceil(room / d)``):
    - kept (no drop): ``(o - 1) s >= n``, so ``room <= d(k - 1) + 1`` and ``last <= k``;
    - dropped: the kept last start is ``(ceil(n / s) - 1) s`` with ``ceil(n / s) s >= L + p``,
      so ``room <= p + s`` and ``last <= ceil((p + s) / d)``; a drop needs ``s + p > d(k -
      1) + 1``, and then ``ceil((p + s) / d) >= k``: so ``last <= k`` at every size when
      ``ceil((p + s) / d) <= k`` (without a drop, ``ceil((p + s) / d) <= k`` holds too);
    - the last window starts before ``L + p`` (kept: or it would be dropped; dropped:
      ``(ceil(n / s) - 1) s < n <= L`` as torch requires ``2p <= d(k - 1) + 1``), so ``room
      >= p + 1`` and ``last >= ceil((p + 1) / d)``: at least ``k`` taps when that is ``>= k``.
    tests/test_properties.py counts the taps of every window at every size to check this.
    """
    if -(-(p + 1) // d) >= k:
        return "whole"
    if -(-(p + s) // d) <= k:
        return "cut"
    return ""


def max_pool_work(outputs: Size, window: Size) -> Work:
    """``outputs * (window - 1)`` compares."""
    return work(pooling=outputs * (window - 1))


def avg_pool_work(outputs: Size, window: Size) -> Work:
    """``outputs * window``: ``window - 1`` adds and a divide per output."""
    return work(pooling=outputs * window)


def adaptive_window_total(in_size: Size, out_size: Size) -> Size:
    """Sum of adaptive window lengths along one dim: windows run from
    ``floor(i * in / out)`` to ``ceil((i + 1) * in / out)``; equals ``in_size`` when
    ``out_size`` divides it."""
    if not is_int(out_size):
        raise SymflopsError("adaptive pooling needs a concrete output size",
                            layer="AdaptivePool", values={"output_size": out_size},
                            fix="pass an int output size")
    o = int(out_size)
    return sum((ceildiv((i + 1) * in_size, o) - floordiv(i * in_size, o) for i in range(o)), 0)


def adaptive_avg_pool_work(planes: Size, in_spatial: Sequence[Size],
                           out_spatial: Sequence[Size]) -> Work:
    """Adaptive average pooling over ``planes`` (batch x channels) planes."""
    totals = prod(adaptive_window_total(i, o)
                  for i, o in zip(in_spatial, out_spatial, strict=True))
    return work(pooling=planes * totals)


def adaptive_max_pool_work(planes: Size, in_spatial: Sequence[Size],
                           out_spatial: Sequence[Size]) -> Work:
    """Adaptive max pooling: ``window - 1`` compares per output."""
    totals = prod(adaptive_window_total(i, o)
                  for i, o in zip(in_spatial, out_spatial, strict=True))
    return work(pooling=planes * (totals - prod(out_spatial)))


def _pool_kind(kind: str) -> str:
    if kind not in POOL_KINDS:
        raise SymflopsError("unknown pooling kind", layer="pooling", values={"kind": kind},
                            fix="use " + " or ".join(POOL_KINDS))
    return kind


@cache
def _pool_general(kind: str, n: int, square: bool, ceil_mode: bool) -> Work:
    outputs = sym.M * prod(sym.spatial_out(n))
    if ceil_mode:
        elements = sym.M * prod(_window_symbols(n))
        return work(pooling=elements - outputs if kind == "max" else elements)
    fn = max_pool_work if kind == "max" else avg_pool_work
    return fn(outputs, prod(sym.kernel_symbols(n, square)))


def _window_symbols(n: int) -> tuple[sp.Symbol, ...]:
    """``E_H, E_W``: the elements of all windows along one dim (ceil_mode)."""
    return tuple(sym.symbol(f"E_{s}") for s in sym.spatial_in(n))


def pool_derivation(kind: str, planes: Size, in_spatial: Sequence[Size],
                    out_spatial: Sequence[Size], kernel: Sequence[Size], stride: Sequence[Size],
                    padding: Sequence[Size], dilation: Sequence[Size],
                    ceil_mode: bool = False) -> Derivation:
    """The derivation of max (``kind="max"``) or average (``"avg"``) pooling of ``M =
    planes`` planes (batch x channels): per output, ``window - 1`` compares, or ``window
    - 1`` adds and a divide. With ``ceil_mode`` a last window that sticks out past the
    padded input counts only its elements (``E`` = elements of all windows along a dim).

    >>> pool_derivation("max", 2, (4, 4), (2, 2), (2, 2), (2, 2), (0, 0), (1, 1)).work
    {'pooling': 24}
    >>> pool_derivation("avg", 1, (5,), (3,), (2,), (2,), (0,), (1,), ceil_mode=True).work
    {'pooling': 5}
    """
    n = len(kernel)
    _pool_kind(kind)
    square = len(set(kernel)) == 1
    bindings: dict[sp.Symbol, Any] = {sym.M: planes}
    bindings.update(zip(sym.spatial_out(n), out_spatial, strict=True))
    explanation = POOL_KINDS[kind]
    if ceil_mode:
        bindings.update(zip(_window_symbols(n), (
            pool_window_total(s, k, st, p, d, True, o) for s, o, k, st, p, d in
            zip(in_spatial, out_spatial, kernel, stride, padding, dilation, strict=True)),
            strict=True))
        explanation += "; ceil_mode: a last window past the padded input counts only its " \
                       "elements"
    else:
        bindings.update(zip(sym.kernel_symbols(n, square), kernel, strict=True))
    return Derivation(dict(_pool_general(kind, n, square, bool(ceil_mode))), sp.Integer(0),
                      bindings, explanation + "; M = batch*channels planes")


def adaptive_pool_derivation(kind: str, planes: Size, in_spatial: Sequence[Size],
                             out_spatial: Sequence[int]) -> Derivation:
    """The derivation of adaptive max or average pooling of ``M = planes`` planes to the
    concrete ``out_spatial``. A ``1 x 1`` output is one window over the whole plane (a
    general formula in ``H, W``); other outputs sum the varying window lengths exactly,
    which is a formula in this layer's sizes.

    >>> adaptive_pool_derivation("avg", 2, (4, 4), (1, 1)).general
    {'pooling': H*M*W}
    >>> adaptive_pool_derivation("max", 1, (5,), (2,)).work
    {'pooling': 4}
    """
    n = len(in_spatial)
    fn = adaptive_max_pool_work if _pool_kind(kind) == "max" else adaptive_avg_pool_work
    outs = [int(o) for o in out_spatial]
    if all(o == 1 for o in outs):
        general = fn(sym.M, sym.spatial_in(n), outs)
        bindings: dict[sp.Symbol, Any] = {sym.M: planes}
        bindings.update(zip(sym.spatial_in(n), in_spatial, strict=True))
        explanation = "one window over the whole plane per output"
    else:
        general, bindings = fn(planes, in_spatial, outs), {}
        explanation = "windows from floor(i*in/out) to ceil((i+1)*in/out), summed exactly"
    explanation += "; window - 1 adds and a divide per output" if kind == "avg" else \
        "; window - 1 compares per output"
    return Derivation(general, sp.Integer(0), bindings, explanation)


@cache
def _scatter_general() -> Work:
    return work(elementwise=sym.M)


def scatter_grad_derivation(grad_outputs: Size, what: str) -> Derivation:
    """The gradient of an op whose every output copies one input (max pooling at its
    argmax, nearest resizing): each of the ``M = grad_outputs`` gradient values is added
    into its input's place (the zero-filled gradient is allocation, not arithmetic).

    >>> scatter_grad_derivation(12, "max pooling").work
    {'elementwise': 12}
    """
    return Derivation(dict(_scatter_general()), sp.Integer(0), {sym.M: grad_outputs},
                      f"{what} gradient: each of the M output gradients added where its "
                      "value came from")


@cache
def _avg_grad_general() -> Work:
    return work(elementwise=sym.M * (1 + sym.symbol("window")))


def _if_window(out: Size, index: int, term: Size) -> Size:
    """``term`` if window ``index`` exists (``index < out``), else 0."""
    if index == 0 or (is_int(out) and int(out) > index):
        return term
    if is_int(out):
        return 0
    return sp.Piecewise((term, sp.sympify(out) > index), (0, True))


def _pos(x: Size) -> Size:
    return max(int(x), 0) if is_int(x) else sp.Max(0, x)


def avg_pool_grad_window_total(size: Size, out: Size, kernel: int, stride: int,
                               padding: int) -> Size:
    """Input elements (padding excluded) summed over the ``out`` windows along one dim,
    which is what the average-pooling gradient adds into.

    Hand derivation: window ``o`` covers ``[a, a + k)`` with ``a = o s - p``; it holds
    ``min(a + k, size) - max(a, 0) = k - max(0, -a) - max(0, a + k - size)`` input
    elements (torch never lets a window lie wholly in the padding). The windows that
    start in the left padding are the first ``ceil(p / s)``; those that end past the input
    are among the last ``ceil(k / s)`` (the last one ends less than ``k`` past it), the
    ``j``-th from the end by ``e - j s`` with ``e = (out - 1) s - p + k - size``. Each term
    counts only when its window exists (``o < out``).

    >>> avg_pool_grad_window_total(4, 4, 3, 1, 1), avg_pool_grad_window_total(5, 3, 2, 2, 0)
    (10, 5)
    """
    total: Size = out * kernel
    for o in range(-(-padding // stride)):
        total = total - _if_window(out, o, min(kernel, padding - o * stride))
    end = (out - 1) * stride - padding + kernel - size
    for j in range(-(-kernel // stride)):
        total = total - _if_window(out, j, _pos(smin(kernel, end - j * stride)))
    return total


@cache
def _avg_grad_clipped_general(n: int) -> Work:
    planes, outs = sym.M, sym.spatial_out(n)
    return work(elementwise=planes * prod(outs) + planes * prod(_window_symbols(n)))


def avg_pool_grad_derivation(grad_outputs: Size, window: Size, *, planes: Size | None = None,
                             in_spatial: Sequence[Size] = (), out_spatial: Sequence[Size] = (),
                             kernel: Sequence[int] = (), stride: Sequence[int] = (),
                             padding: Sequence[int] = ()) -> Derivation:
    """The gradient of average pooling: each of the ``M = grad_outputs`` output gradients
    divided once by its divisor and added into each input element of its window.

    Without padding and ceil_mode every window lies inside the input: ``M (1 + window)``.
    With them (give ``planes`` and the per-dim sizes), torch's kernel adds only into the
    input elements of each window, so the adds are ``planes * prod(E)``, ``E`` per dim the
    clipped window total of :func:`avg_pool_grad_window_total`.

    >>> avg_pool_grad_derivation(4, 9).work
    {'elementwise': 40}
    >>> avg_pool_grad_derivation(16, 9, planes=1, in_spatial=(4, 4), out_spatial=(4, 4),
    ...                          kernel=(3, 3), stride=(1, 1), padding=(1, 1)).work
    {'elementwise': 116}
    """
    explanation = ("average pooling gradient: per output gradient one divide and one add "
                   "into each window element")
    if planes is None:
        return Derivation(dict(_avg_grad_general()), sp.Integer(0),
                          {sym.M: grad_outputs, sym.symbol("window"): window}, explanation)
    n = len(kernel)
    bindings: dict[sp.Symbol, Any] = {sym.M: planes}
    bindings.update(zip(sym.spatial_out(n), out_spatial, strict=True))
    bindings.update(zip(_window_symbols(n), (
        avg_pool_grad_window_total(s, o, k, st, p) for s, o, k, st, p in
        zip(in_spatial, out_spatial, kernel, stride, padding, strict=True)), strict=True))
    return Derivation(dict(_avg_grad_clipped_general(n)), sp.Integer(0), bindings,
                      explanation + " inside the input (E = the windows' input elements "
                      "along a dim, padding excluded; M = batch*channels planes)")


def adaptive_avg_pool_grad_derivation(planes: Size, in_spatial: Sequence[Size],
                                      out_spatial: Sequence[int]) -> Derivation:
    """The gradient of adaptive average pooling: per output gradient one divide by its
    window's size and one add into each element of its window (the forward's windows,
    summed exactly).

    >>> adaptive_avg_pool_grad_derivation(2, (4, 4), (1, 1)).work
    {'elementwise': 34}
    """
    n = len(in_spatial)
    outs = [int(o) for o in out_spatial]
    forward = adaptive_pool_derivation("avg", planes, in_spatial, outs)
    general = {"elementwise": forward.general["pooling"] +
               (sym.M if forward.bindings else planes) * prod(outs)}
    return Derivation(general, sp.Integer(0), dict(forward.bindings),
                      "adaptive average pooling gradient: per output gradient one divide and "
                      "one add into each element of its window"
                      + ("" if n and all(o == 1 for o in outs) else
                         " (windows from floor(i*in/out) to ceil((i+1)*in/out))"))
