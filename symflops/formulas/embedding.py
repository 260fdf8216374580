"""Embedding tables: a lookup forward, a scatter-add backward.

Hand count: the forward copies ``dim`` values per index, no arithmetic; the table has
``V * dim`` parameters. The weight gradient (``aten.embedding_dense_backward``) starts
from a zero table (allocation, not arithmetic) and adds each of the ``M`` gradient rows of
``dim`` values into the row of its index: ``M * dim`` adds, however large ``V`` is.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["embedding_derivation", "embedding_grad_work", "embedding_grad_derivation"]


def embedding_derivation(num_embeddings: Size, embedding_dim: Size) -> Derivation:
    """The derivation of a lookup in a ``V x dim`` table: ``V * dim`` parameters, no work.

    >>> embedding_derivation(10, 4).params
    40
    """
    return Derivation({}, sym.V * sym.dim, {sym.V: num_embeddings, sym.dim: embedding_dim},
                      "a table lookup: no arithmetic")


def embedding_grad_work(indices: Size, embedding_dim: Size, *,
                            scale_grad_by_freq: bool = False) -> Work:
    """Work of the weight gradient of ``indices`` lookups of width ``embedding_dim``:
    one add per gradient value; with ``scale_grad_by_freq`` the index counts first (one
    add per index) and each gradient value divided by its index's count.

    >>> embedding_grad_work(6, 4), embedding_grad_work(6, 4, scale_grad_by_freq=True)
    ({'elementwise': 24}, {'elementwise': 54})
    """
    values = indices * embedding_dim
    return work(elementwise=values + (indices + values if scale_grad_by_freq else 0))


@cache
def _backward_general(scale_grad_by_freq: bool) -> Work:
    return embedding_grad_work(sym.M, sym.dim, scale_grad_by_freq=scale_grad_by_freq)


def embedding_grad_derivation(indices: Size, embedding_dim: Size, *,
                                  scale_grad_by_freq: bool = False,
                                  padding_idx: bool = False) -> Derivation:
    """The derivation of ``aten.embedding_dense_backward`` for ``M = indices`` lookups.

    With a ``padding_idx`` (``padding_idx=True``) torch's CPU kernel skips every gradient
    row whose index is the padding index: ``dim`` adds fewer per such row, a number that
    depends on the data, which a trace does not see. The count is then the bound ``M dim``
    (reached when no index is the padding index; torch's decomposition, which zeroes those
    rows and adds all ``M``, does exactly this), and the explanation and the rate say so.

    >>> embedding_grad_derivation(6, 4).work
    {'elementwise': 24}
    >>> embedding_grad_derivation(6, 4, padding_idx=True).rates["elementwise"]
    'data-dependent: at most one add per gradient value (rows of padding_idx are skipped)'
    """
    explanation = ("embedding gradient: each of the M gradient rows of dim values added "
                   "into its index's row of a zero table (M*dim adds)")
    if scale_grad_by_freq:
        explanation += ("; first the index counts (M adds) and each row divided by its "
                        "index's count (M*dim)")
    rates: dict[str, str] = {}
    if padding_idx:
        explanation += ("; DATA-DEPENDENT BOUND: rows whose index is padding_idx are "
                        "skipped at run time (dim adds fewer each), so this is the most")
        rates["elementwise"] = ("data-dependent: at most one add per gradient value (rows "
                                "of padding_idx are skipped)")
    return Derivation(dict(_backward_general(bool(scale_grad_by_freq))), sp.Integer(0),
                      {sym.M: indices, sym.dim: embedding_dim}, explanation, rates)
