"""Learned tokens of vision transformers: the class token and the position embedding.

Hand count: a class token is ``dim`` learned values prepended to each sequence (a copy,
no arithmetic); a learned position embedding is an ``N x dim`` table added to the
``B`` sequences of ``N`` tokens: ``N dim`` parameters and ``B N dim`` adds.
"""

from __future__ import annotations

from functools import cache

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["class_token_derivation", "position_embedding_work",
           "position_embedding_derivation"]


def class_token_derivation(dim: Size) -> Derivation:
    """A learned class token of ``dim`` values: ``dim`` parameters, no arithmetic.

    >>> class_token_derivation(768).params
    768
    """
    return Derivation({}, sym.dim, {sym.dim: dim},
                      "a learned token prepended to each sequence: a copy, no arithmetic")


def position_embedding_work(batch: Size, tokens: Size, dim: Size) -> Work:
    """One add per element of the ``B x N x dim`` input.

    >>> position_embedding_work(2, 197, 768)
    {'elementwise': 302592}
    """
    return work(elementwise=batch * tokens * dim)


@cache
def _position_general() -> Work:
    return position_embedding_work(sym.B, sym.N, sym.dim)


def position_embedding_derivation(batch: Size, tokens: Size, dim: Size) -> Derivation:
    """Position vectors added to ``B`` sequences of ``N`` tokens of width ``dim``: one add
    per element (the table's parameters belong to its lookup, an ``Embedding``).

    >>> d = position_embedding_derivation(1, 197, 768)
    >>> d.general_params, d.params, d.work
    (0, 0, {'elementwise': 151296})
    """
    return Derivation(dict(_position_general()), 0,
                      {sym.B: batch, sym.N: tokens, sym.dim: dim},
                      "token plus position embedding: one add per element")


