"""Mixture of experts: the grouped matrix product of routed tokens, top-k selection,
the renormalized routing weights and the weighted combination of the experts' outputs.

Hand counts (exact convention), for ``T`` tokens, ``E`` experts, top ``k``:

* grouped product: each of the ``M`` routed rows (``M = T k`` token-expert pairs, however
  they are spread over the experts) times its expert's ``I x O`` matrix: ``M O`` dot
  products of length ``I``, as a linear layer over ``M`` rows; ``E (I O)`` parameters;
* top-k of ``E`` router probabilities: ``k`` successive maxima over ``E, E - 1, ...``
  candidates: ``sum_{i<k} (E - 1 - i) = k (2E - k - 1) / 2`` compares per token;
* renormalizing the ``k`` weights (Mixtral): ``k - 1`` adds and ``k`` divides per token;
* combining: each of the ``dim`` outputs of a token is ``sum_k w_k y_k``: ``k``
  multiplies and ``k - 1`` adds.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, exact_div, work
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_work

__all__ = ["experts", "top_k", "groups_g", "grouped_matmul_derivation", "grouped_k_derivation",
           "topk_work", "topk_derivation", "moe_combine_work", "moe_combine_derivation",
           "renormalize_derivation"]

#: number of experts, experts used per token, and groups of a grouped product
experts = sym.symbol("E")
top_k = sym.symbol("k")
groups_g = sym.symbol("G")


@cache
def _grouped_general(bias: bool) -> tuple[Work, sp.Expr]:
    return (linear_work(sym.M, sym.I, sym.O, bias),
            experts * (sym.I * sym.O + (sym.O if bias else 0)))


def grouped_matmul_derivation(rows: Size, in_features: Size, out_features: Size,
                              num_experts: Size, bias: bool = False) -> Derivation:
    """``M = rows`` routed rows, each times its expert's ``I x O`` matrix (``aten._grouped_mm``,
    the experts of an MoE layer): a linear layer's work over ``M`` rows, ``E`` matrices.

    >>> d = grouped_matmul_derivation(6, 4, 3, 8)
    >>> d.work, d.params
    ({'matmul_mul': 72, 'matmul_add': 54}, 96)
    """
    general, params = _grouped_general(bool(bias))
    return Derivation(dict(general), params,
                      {sym.M: rows, sym.I: in_features, sym.O: out_features,
                       experts: num_experts},
                      "grouped product: each of the M routed rows times its expert's I x O "
                      "matrix (E experts)" + (", plus its bias" if bias else ""))


@cache
def _grouped_k_general() -> Work:
    return work(matmul_mul=sym.M * sym.I * sym.O, matmul_add=sym.M * sym.O * (sym.I - groups_g))


def grouped_k_derivation(m: Size, k: Size, n: Size, groups: Size) -> Derivation:
    """``(M x K) @ (K x N)`` with ``K`` split into ``G = groups`` slices, one product per
    slice (``aten._grouped_mm`` of two 2-d operands: the experts' weight gradient): every
    ``k`` belongs to one slice, so ``M K N`` multiplies and ``M N (K - G)`` adds.

    >>> grouped_k_derivation(2, 6, 3, 2).work
    {'matmul_mul': 36, 'matmul_add': 24}
    """
    return Derivation(dict(_grouped_k_general()), 0,
                      {sym.M: m, sym.I: k, sym.O: n, groups_g: groups},
                      "G products (M x K_g) @ (K_g x N) over slices of K: M*N*K multiplies")


def topk_work(rows: Size, n: Size, k: Size) -> Work:
    """Compares to pick the ``k`` largest of ``n`` values in each of ``rows`` rows.

    >>> topk_work(1, 8, 2)
    {'elementwise': 13}
    """
    return work(elementwise=rows * exact_div(k * (2 * n - k - 1), 2))


@cache
def _topk_general() -> Work:
    return topk_work(sym.M, experts, top_k)


def topk_derivation(rows: Size, n: Size, k: Size) -> Derivation:
    """Top-``k`` of ``E = n`` values in ``M = rows`` rows (``aten.topk``).

    >>> topk_derivation(3, 8, 2).work
    {'elementwise': 39}
    """
    return Derivation(dict(_topk_general()), 0, {sym.M: rows, experts: n, top_k: k},
                      "top-k: k successive maxima over E, E-1, ... candidates",
                      {"elementwise": "k (2E - k - 1) / 2 compares per row"})


@cache
def _renormalize_general() -> Work:
    return work(elementwise=sym.M * (2 * top_k - 1))


def renormalize_derivation(rows: Size, k: Size) -> Derivation:
    """The ``k`` routing weights of each of ``M = rows`` tokens divided by their sum.

    >>> renormalize_derivation(5, 2).work
    {'elementwise': 15}
    """
    return Derivation(dict(_renormalize_general()), 0, {sym.M: rows, top_k: k},
                      "routing weights over their sum: k - 1 adds and k divides per token")


def moe_combine_work(tokens: Size, dim: Size, k: Size) -> Work:
    """``sum_k w_k y_k`` for each of the ``dim`` outputs of ``tokens`` tokens.

    >>> moe_combine_work(2, 4, 2)
    {'elementwise': 24}
    """
    return work(elementwise=tokens * dim * (2 * k - 1))


@cache
def _combine_general() -> Work:
    return moe_combine_work(sym.M, sym.dim, top_k)


def moe_combine_derivation(tokens: Size, dim: Size, k: Size) -> Derivation:
    """The weighted sum of each token's ``k`` expert outputs (``M = tokens``).

    >>> moe_combine_derivation(2, 4, 2).work
    {'elementwise': 24}
    """
    return Derivation(dict(_combine_general()), 0, {sym.M: tokens, sym.dim: dim, top_k: k},
                      "each output: k expert outputs times their weights, summed")
