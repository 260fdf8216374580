"""Fully connected layers and matrix products.

Hand derivation: an output of ``x @ W.T + b`` with ``I`` inputs is a length-``I``
dot product (``I`` multiplies, ``I - 1`` adds) plus one bias add, so each of the
``rows * O`` outputs costs ``2 I`` in the exact convention: the seed article's
``[I + (I - 1) + 1] * O = 2 I O`` per row. Parameters: ``(I + 1) * O``.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation
from symflops.formulas.resize import reduction_derivation

__all__ = ["linear_params", "linear_work", "matmul_work", "linear_derivation",
           "matmul_derivation", "linear_grad_derivations", "matmul_grad_derivations"]


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


def _role(d: Derivation, text: str) -> Derivation:
    """``d`` as a gradient op: its role in the explanation, and no parameters of its own."""
    return dataclasses.replace(d, general_params=sp.Integer(0),
                               explanation=f"{text}: {d.explanation}")


def linear_grad_derivations(rows: Size, in_features: Size, out_features: Size,
                                bias: bool = True, *, input_grad: bool = True,
                                weight_grad: bool = True) -> dict[str, Derivation]:
    """The gradient ops of a linear layer (torch's ``AddmmBackward``/``MmBackward``): the
    two ``aten.mm`` products and the ``aten.sum`` of the bias gradient; ``input_grad``
    false for an input that needs no gradient (the model's input), ``weight_grad``
    false for a frozen layer.

    Hand count for a linear layer (``M`` rows, ``I`` inputs, ``O`` outputs): the forward is
    ``M O`` dot products of length ``I``; the backward is two products of the same size,
    ``grad_input = grad_output (M x O) @ W (O x I)`` (``M I`` dot products of length ``O``)
    and ``grad_weight = grad_output^T (O x M) @ x (M x I)`` (``O I`` dot products of length
    ``M``), and ``grad_bias``: ``grad_output`` summed over the ``M`` rows (``(M - 1) O`` adds).
    Each product has as many multiplies as the forward: the "backward = 2 x forward" rule,
    exact for the multiplies, off by the adds of the different dot-product lengths.

    >>> d = linear_grad_derivations(4, 3, 2)
    >>> {k: v.work for k, v in d.items()}
    {'grad_input': {'matmul_mul': 24, 'matmul_add': 12}, \
    'grad_weight': {'matmul_mul': 24, 'matmul_add': 18}, 'grad_bias': {'elementwise': 6}}
    """
    out: dict[str, Derivation] = {}
    if input_grad:
        out["grad_input"] = _role(linear_derivation(rows, out_features, in_features, False),
                                  "grad_input = grad_output @ W")
    if weight_grad:
        out["grad_weight"] = _role(linear_derivation(out_features, rows, in_features, False),
                                   "grad_weight = grad_output^T @ x")
        if bias:
            out["grad_bias"] = _role(reduction_derivation("sum", rows * out_features,
                                                          out_features),
                                     "grad_bias = grad_output summed over rows")
    return out


def matmul_grad_derivations(batch: Size, m: Size, k: Size, n: Size, *, a_grad: bool = True,
                                b_grad: bool = True, names: tuple[str, str] = ("grad_a",
                                                                               "grad_b")
                                ) -> dict[str, Derivation]:
    """The two ``aten.bmm`` of ``C = A (m x k) @ B (k x n)`` (``batch`` of them):
    ``grad_A = grad_C @ B^T`` (``m x n`` by ``n x k``) and ``grad_B = A^T @ grad_C``
    (``k x m`` by ``m x n``).

    >>> {k: v.work for k, v in matmul_grad_derivations(1, 2, 3, 4).items()}
    {'grad_a': {'matmul_mul': 24, 'matmul_add': 18}, 'grad_b': {'matmul_mul': 24, \
'matmul_add': 12}}
    """
    out: dict[str, Derivation] = {}
    if a_grad:
        out[names[0]] = matmul_derivation(batch, m, n, k)
    if b_grad:
        out[names[1]] = matmul_derivation(batch, k, m, n)
    return out
