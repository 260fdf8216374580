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
from symflops.formulas._arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["embedding_derivation", "embedding_backward_work", "embedding_backward_derivation"]


def embedding_derivation(num_embeddings: Size, embedding_dim: Size) -> Derivation:
    """The derivation of a lookup in a ``V x dim`` table: ``V * dim`` parameters, no work.

    >>> embedding_derivation(10, 4).params
    40
    """
    return Derivation({}, sym.V * sym.dim, {sym.V: num_embeddings, sym.dim: embedding_dim},
                      "a table lookup: no arithmetic")


def embedding_backward_work(indices: Size, embedding_dim: Size, *,
                            scale_grad_by_freq: bool = False) -> Work:
    """Work of the weight gradient of ``indices`` lookups of width ``embedding_dim``:
    one add per gradient value; with ``scale_grad_by_freq`` the index counts first (one
    add per index) and each gradient value divided by its index's count.

    >>> embedding_backward_work(6, 4), embedding_backward_work(6, 4, scale_grad_by_freq=True)
    ({'elementwise': 24}, {'elementwise': 54})
    """
    values = indices * embedding_dim
    return work(elementwise=values + (indices + values if scale_grad_by_freq else 0))


@cache
def _backward_general(scale_grad_by_freq: bool) -> Work:
    return embedding_backward_work(sym.M, sym.dim, scale_grad_by_freq=scale_grad_by_freq)


def embedding_backward_derivation(indices: Size, embedding_dim: Size, *,
                                  scale_grad_by_freq: bool = False) -> Derivation:
    """The derivation of ``aten.embedding_dense_backward`` for ``M = indices`` lookups.

    >>> embedding_backward_derivation(6, 4).work
    {'elementwise': 24}
    """
    return Derivation(dict(_backward_general(bool(scale_grad_by_freq))), sp.Integer(0),
                      {sym.M: indices, sym.dim: embedding_dim},
                      "embedding gradient: each of the M gradient rows of dim values added "
                      "into its index's row of a zero table (M*dim adds; rows of padding_idx "
                      "are skipped at run time, so with a padding_idx this is the most)"
                      + ("; first the index counts (M adds) and each row divided by its "
                         "index's count (M*dim)" if scale_grad_by_freq else ""))
