"""Pooling: window reductions, no parameters.

Max pooling compares ``window - 1`` times per output; average pooling adds
``window - 1`` times and divides once: ``window`` per output. Padding positions
count as elements of the window (``-inf`` for max, ``0`` for average), which is
how the padded formulation computes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from symflops.errors import SymflopsError
from symflops.formulas._arith import Size, Work, ceildiv, floordiv, is_int, prod, smin, work

__all__ = ["pool_output_size", "pool_window_total", "max_pool_work", "avg_pool_work",
           "adaptive_window_total", "adaptive_avg_pool_work", "adaptive_max_pool_work"]


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
        import sympy as sp

        return sp.Piecewise((out - 1, (out - 1) * stride >= size + padding), (out, True))
    return out


def pool_window_total(size: Size, kernel: Size, stride: Size, padding: Size = 0,
                      dilation: Size = 1, ceil_mode: bool = False) -> Size:
    """Window elements summed over the outputs along one dim (inside the padded input).

    Every window holds ``kernel`` elements, except that with ``ceil_mode`` the last
    window may stick out past the padded input and hold only the
    ``ceil((size + 2 padding - start) / dilation)`` elements before its end.

    >>> pool_window_total(5, 2, 2), pool_window_total(5, 2, 2, ceil_mode=True)
    (4, 5)
    """
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    if not ceil_mode:
        return out * kernel
    room = size + 2 * padding - (out - 1) * stride  # padded elements from the last start on
    return (out - 1) * kernel + smin(kernel, ceildiv(room, dilation))


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
