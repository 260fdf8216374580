"""Fully connected layers and matrix products.

Hand derivation: an output of ``x @ W.T + b`` with ``I`` inputs is a length-``I``
dot product (``I`` multiplies, ``I - 1`` adds) plus one bias add, so each of the
``rows * O`` outputs costs ``2 I`` in the exact convention: the seed article's
``[I + (I - 1) + 1] * O = 2 I O`` per row. Parameters: ``(I + 1) * O``.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas._arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["linear_params", "linear_work", "matmul_work", "linear_derivation",
           "matmul_derivation"]


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


@cache
def _linear_general(bias: bool) -> tuple[Work, sp.Expr]:
    return (linear_work(sym.M, sym.I, sym.O, bias),
            sp.sympify(linear_params(sym.I, sym.O, bias)))


def linear_derivation(rows: Size, in_features: Size, out_features: Size,
                      bias: bool = True) -> Derivation:
    """The derivation of a fully connected layer (``sf.nn.Linear``, ``aten.addmm``, and
    ``aten.mm``, a linear layer without bias): ``M`` rows, ``I`` inputs, ``O`` outputs.

    >>> linear_derivation(2, 4, 3).work
    {'matmul_mul': 24, 'matmul_add': 18, 'bias': 6}
    """
    general, params = _linear_general(bool(bias))
    return Derivation(dict(general), params,
                      {sym.M: rows, sym.I: in_features, sym.O: out_features},
                      "each of the M*O outputs: a length-I dot product"
                      + (" and one bias add" if bias else ""))


@cache
def _matmul_general(add_input: bool) -> Work:
    general = matmul_work(sym.B, sym.M, sym.I, sym.O)
    if add_input:
        general = {**general, "bias": sym.B * sym.M * sym.O}
    return general


def matmul_derivation(batch: Size, m: Size, k: Size, n: Size, *,
                      add_input: bool = False) -> Derivation:
    """The derivation of ``batch`` products ``(m x k) @ (k x n)`` (``aten.bmm``); with
    ``add_input`` one more add per output (``aten.baddbmm``: ``input + b1 @ b2``).

    >>> matmul_derivation(2, 3, 4, 5, add_input=True).work
    {'matmul_mul': 120, 'matmul_add': 90, 'bias': 30}
    """
    return Derivation(dict(_matmul_general(bool(add_input))), sp.Integer(0),
                      {sym.B: batch, sym.M: m, sym.I: k, sym.O: n},
                      "B*M*O dot products of length I"
                      + (", then one add of the input per output" if add_input else ""))
