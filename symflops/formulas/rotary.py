"""Rotary position embeddings (RoPE): the rotation applied to queries and keys, and the
cos/sin table it reads.

Hand count, per rotated element (``x`` of width ``head_dim``, as transformers' LLaMA
writes it, ``x * cos + rotate_half(x) * sin``): one multiply by ``cos``, one by ``sin``,
one add, and ``rotate_half`` negates half of the elements: ``3 + 1/2`` per element, so
``M * 7 * head_dim / 2`` for ``M`` rotated vectors (``head_dim`` is even).

The table, per position: the angles ``position * inv_freq`` (``head_dim / 2``
multiplies), ``cos`` and ``sin`` of the angles duplicated to ``head_dim`` (``2 head_dim``
transcendentals), and both times the attention scaling (``2 head_dim`` multiplies; 1 for
the default rope, multiplied all the same): ``9 head_dim / 2`` per position.
"""

from __future__ import annotations

from functools import cache

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, exact_div, work
from symflops.formulas.derivation import Derivation

__all__ = ["ROTARY_RATE", "ROTARY_TABLE_RATE", "rotary_work", "rotary_derivation",
           "rotary_table_work", "rotary_table_derivation"]

#: per rotated element, in halves: (7 / 2, why)
ROTARY_RATE: tuple[int, str] = (7, "x*cos (1), rotate_half(x)*sin (1), their sum (1), and "
                                   "rotate_half negates half the elements (1/2): 7/2 per element")
#: per table entry of one position, in halves: (9 / 2 per position and head_dim, why)
ROTARY_TABLE_RATE: tuple[int, str] = (9, "angles position*inv_freq (head_dim/2), cos and sin "
                                         "(2 head_dim), both times the attention scaling "
                                         "(2 head_dim): 9 head_dim/2 per position")


def rotary_work(vectors: Size, head_dim: Size) -> Work:
    """Work of rotating ``vectors`` vectors of width ``head_dim``: ``7/2`` per element.

    >>> rotary_work(3, 8)
    {'elementwise': 84}
    """
    return work(elementwise=vectors * exact_div(ROTARY_RATE[0] * head_dim, 2))


def rotary_table_work(positions: Size, head_dim: Size) -> Work:
    """Work of the cos/sin table for ``positions`` positions: ``9 head_dim / 2`` each.

    >>> rotary_table_work(4, 8)
    {'elementwise': 144}
    """
    return work(elementwise=positions * exact_div(ROTARY_TABLE_RATE[0] * head_dim, 2))


@cache
def _general() -> tuple[Work, Work]:
    return rotary_work(sym.M, sym.head_dim), rotary_table_work(sym.N, sym.head_dim)


def rotary_derivation(vectors: Size, head_dim: Size) -> Derivation:
    """The derivation of RoPE applied to ``M = vectors`` query or key vectors.

    >>> rotary_derivation(2, 4).work
    {'elementwise': 28}
    """
    return Derivation(dict(_general()[0]), 0, {sym.M: vectors, sym.head_dim: head_dim},
                      "rotary embedding: each element times cos, its rotated pair times sin, "
                      "summed", {"elementwise": ROTARY_RATE[1]})


def rotary_table_derivation(positions: Size, head_dim: Size) -> Derivation:
    """The derivation of RoPE's cos/sin table for ``N = positions`` positions (once per
    forward, shared by every layer and sequence of the batch).

    >>> rotary_table_derivation(3, 4).work
    {'elementwise': 54}
    """
    return Derivation(dict(_general()[1]), 0, {sym.N: positions, sym.head_dim: head_dim},
                      "rotary table: angles, cos, sin and scaling for N positions",
                      {"elementwise": ROTARY_TABLE_RATE[1]})
