"""Fully connected layers and matrix products.

Hand derivation: an output of ``x @ W.T + b`` with ``I`` inputs is a length-``I``
dot product (``I`` multiplies, ``I - 1`` adds) plus one bias add, so each of the
``rows * O`` outputs costs ``2 I`` in the exact convention: the seed article's
``[I + (I - 1) + 1] * O = 2 I O`` per row. Parameters: ``(I + 1) * O``.
"""

from __future__ import annotations

from symflops.formulas._arith import Size, Work, work

__all__ = ["linear_params", "linear_work", "matmul_work"]


def linear_params(in_features: Size, out_features: Size, bias: bool = True) -> Size:
    """``I * O + O`` with bias, ``I * O`` without."""
    return in_features * out_features + (out_features if bias else 0)


def linear_work(rows: Size, in_features: Size, out_features: Size, bias: bool = True) -> Work:
    """Work of ``rows`` vectors through an ``in_features -> out_features`` layer.

    >>> linear_work(1, 4, 3)
    {'matmul_mul': 12, 'matmul_add': 9, 'bias': 3}
    """
    outputs = rows * out_features
    return work(matmul_mul=outputs * in_features, matmul_add=outputs * (in_features - 1),
                bias=outputs if bias else 0)


def matmul_work(batch: Size, m: Size, k: Size, n: Size) -> Work:
    """Work of ``batch`` products of an ``m x k`` by a ``k x n`` matrix."""
    outputs = batch * m * n
    return work(matmul_mul=outputs * k, matmul_add=outputs * (k - 1))
