"""Exact interpolation on a lattice: the degree of a sequence from its finite
differences, and the polynomial through a tensor grid (Newton's forward form).

A hyperparameter ``s`` is sampled on its lattice ``s = m*(k0 + i)``, ``i = 0, 1, ...``.
In the index ``t = s/m - k0`` a polynomial of degree ``d`` is
``sum_j Delta^j f(0) * binomial(t, j)`` (``j <= d``), with rational coefficients: no
linear solve, no float.

>>> from symflops.symbols import symbol
>>> s = symbol("s")
>>> degree_of([s0 ** 2 for s0 in (1, 2, 3, 4, 5)])
2
>>> newton({(0,): 1, (1,): 4, (2,): 9}, [(s, 1, 1, 2)])
s**2
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import sympy as sp

__all__ = ["differences", "degree_of", "newton", "CONFIRMATIONS"]

#: zero differences a degree needs before it is believed (the final check is the
#: verification at points never used in the solve)
CONFIRMATIONS = 2


def differences(seq: Sequence[sp.Expr]) -> list[sp.Expr]:
    """First forward differences, expanded (values may hold symbols such as ``B``)."""
    return [sp.expand(b - a) for a, b in zip(seq, seq[1:], strict=False)]


def degree_of(seq: Sequence[sp.Expr]) -> int | None:
    """The smallest ``d`` whose ``d+1``-th differences of ``seq`` are all zero, with at
    least :data:`CONFIRMATIONS` of them; ``None`` when ``seq`` is too short to tell.

    >>> degree_of([3, 3, 3]), degree_of([1, 2, 4, 8, 16])
    (0, None)
    """
    diff = list(seq)
    for d in range(len(seq)):
        diff = differences(diff)
        if len(diff) < CONFIRMATIONS:
            return None
        if all(x == 0 for x in diff):
            return d
    return None


def newton(values: Mapping[tuple[int, ...], sp.Expr],
           axes: Sequence[tuple[sp.Symbol, int, int, int]]) -> sp.Expr:
    """The polynomial through ``values`` on a tensor grid: ``values[(i_1, ..., i_n)]`` is
    the value at ``s_a = m_a*(k0_a + i_a)``, ``i_a <= d_a``; ``axes`` lists
    ``(s_a, m_a, k0_a, d_a)``. Exact (rational coefficients), expanded."""
    if not axes:
        return sp.expand(values[()])
    grid = dict(values)
    # forward differences along each axis in turn: grid[j] becomes Delta^j f(0)
    for a, (_, _, _, d) in enumerate(axes):
        for j in range(1, d + 1):
            for r in range(d, j - 1, -1):
                for idx in itertools.product(*[range(ax[3] + 1) for ax in axes]):
                    if idx[a] != r:
                        continue
                    prev = idx[:a] + (r - 1,) + idx[a + 1:]
                    grid[idx] = sp.expand(grid[idx] - grid[prev])
    total = sp.Integer(0)
    for idx in itertools.product(*[range(ax[3] + 1) for ax in axes]):
        term = grid[idx]
        if term == 0:
            continue
        for (s, m, k0, _), j in zip(axes, idx, strict=True):
            t = s / m - k0
            term = term * sp.Mul(*[(t - r) for r in range(j)]) / sp.factorial(j)
        total += term
    return sp.expand(total)
