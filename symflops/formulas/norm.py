"""Normalization layers.

Statistics of one row of ``n`` values, in the exact convention (hand count):
mean ``n - 1`` adds + 1 divide = ``n``; variance ``n`` subtracts + ``n`` squares +
``n - 1`` adds + 1 divide = ``3n``; ``+ eps`` and ``rsqrt`` = 2; normalize ``n``
multiplies. Together ``5n + 2`` per row (kind ``norm_stats``).
The affine part is one multiply and one add per element (kind ``norm_affine``).

BatchNorm at inference folds running statistics and affine into one multiply
and one add per element: ``2 * numel`` (the seed article's ``2 C H W``).
"""

from __future__ import annotations

from symflops.formulas._arith import Size, Work, exact_div, work

__all__ = ["row_stats", "batch_norm_work", "layer_norm_work", "group_norm_work",
           "rms_norm_work", "norm_params"]


def row_stats(rows: Size, n: Size) -> Size:
    """``rows * (5 n + 2)``: mean, variance, rsqrt and normalize of each row of ``n``."""
    return rows * (5 * n + 2)


def batch_norm_work(numel: Size, channels: Size, *, training: bool = False,
                    affine: bool = True) -> Work:
    """BatchNorm over ``numel`` elements in ``channels`` channels.

    Inference (default): statistics are constants, folded with the affine into a
    per-channel ``a * x + b``: ``2 * numel``. Training: per-channel statistics over
    ``numel / channels`` values, then the affine if present.
    """
    if not training:
        return work(norm_affine=2 * numel)
    return work(norm_stats=row_stats(channels, exact_div(numel, channels)),
                norm_affine=2 * numel if affine else 0)


def layer_norm_work(rows: Size, n: Size, *, affine: bool = True, bias: bool = True) -> Work:
    """LayerNorm of ``rows`` rows of ``n``: statistics, then ``x * w (+ b)`` if affine."""
    per_element = (2 if bias else 1) if affine else 0
    return work(norm_stats=row_stats(rows, n), norm_affine=per_element * rows * n)


def group_norm_work(batch: Size, num_groups: Size, channels: Size, spatial: Size, *,
                    affine: bool = True) -> Work:
    """GroupNorm: statistics over each of ``batch * num_groups`` groups, per-channel affine."""
    numel = batch * channels * spatial
    return work(norm_stats=row_stats(batch * num_groups,
                                               exact_div(channels, num_groups) * spatial),
                norm_affine=2 * numel if affine else 0)


def rms_norm_work(rows: Size, n: Size, *, affine: bool = True) -> Work:
    """RMSNorm of ``rows`` rows of ``n``: ``n`` squares, ``n - 1`` adds, divide, ``+ eps``,
    rsqrt, ``n`` multiplies = ``3n + 2`` per row; the weight is ``n`` more multiplies."""
    return work(norm_stats=rows * (3 * n + 2), norm_affine=rows * n if affine else 0)


def norm_params(features: Size, *, affine: bool = True, bias: bool = True) -> Size:
    """``2 * features`` (weight and bias), ``features`` without bias, 0 without affine.

    The seed article writes LayerNorm's parameters as ``N * 2``; they do not depend on
    the number of tokens: a LayerNorm over ``dim`` has ``2 * dim``.
    """
    if not affine:
        return 0
    return features * (2 if bias else 1)
