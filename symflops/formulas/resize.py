"""Resizing (interpolate/upsample) and reductions.

Hand count, per output element, in the exact convention:

* nearest: an index lookup, no arithmetic (0);
* linear / bilinear / trilinear (``d`` interpolated dims): a weighted sum of the
  ``2^d`` neighbours: ``2^d`` multiplies and ``2^d - 1`` adds (the per-row/column
  weights are computed once per output row/column and are not counted);
* bicubic (2-d): a weighted sum of 16 neighbours: 16 multiplies and 15 adds.

>>> interpolate_work(10, "bilinear")
{'elementwise': 70}
>>> interpolate_work(10, "nearest")
{}
"""

from __future__ import annotations

from symflops.errors import SymflopsError
from symflops.formulas._arith import Size, Work, work

__all__ = ["INTERPOLATE_RATES", "interpolate_work", "reduction_work"]

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
