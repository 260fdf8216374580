"""Exact values of SymPy size expressions and conditions at integer points, without SymPy.

Trying a guard at many points (:mod:`symflops.tracing._branches` looks for sizes on its
other side; the 0/1-specialization tests of :mod:`symflops.tracing._assembly` try sizes
1..5; :class:`symflops.domain.Domain` reads a periodic condition at each remainder)
substitutes integers into the same expression again and again; ``xreplace`` rebuilds every
node with SymPy's evaluation on the way (~0.1 ms a guard). :func:`exact_value` compiles the
expression once into Python functions over ints and Fractions (exact), and answers None for
what it does not know, where the caller substitutes with SymPy as before: the answer is the
one ``xreplace`` gives.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import sympy as sp
from sympy.logic.boolalg import Boolean

__all__ = ["exact_value", "at_point", "Number"]


class _Undecided(Exception):
    """:func:`_compiled` met a node it does not evaluate, or a point lacks a symbol."""


Number = int | Fraction
#: symbols to their values: SymPy Integers or Python ints
Point = Mapping[sp.Symbol, Any]
#: ``(numerator at a point, denominator)``: a value ``numerator(point) / denominator``
#: in integer arithmetic (the denominator positive, fixed by the expression)
_Scaled = tuple[Callable[[Point], int], int]

_RELATIONS: dict[type, Callable[[Any, Any], bool]] = {
    sp.Eq: operator.eq, sp.Ne: operator.ne, sp.Lt: operator.lt, sp.Le: operator.le,
    sp.Gt: operator.gt, sp.Ge: operator.ge}


def exact_value(expr: sp.Basic, point: Point) -> Number | bool | None:
    """``expr`` at ``point`` (every free symbol an integer there: a SymPy Integer or an
    int) in exact rational arithmetic: a number (int or Fraction), or a bool for a
    condition; None where it cannot say (a node other than +, *, powers to a non-negative
    integer, floor, ceiling, Mod, Min, Max, comparisons, And, Or, Not; a division by zero),
    and the caller then substitutes with SymPy. The value ``expr.xreplace(point)``
    evaluates to, without building SymPy objects on the way: a branch guard is tried at a
    few hundred points near the example sizes. Rational coefficients are carried as one
    denominator per node, so every step is integer arithmetic."""
    f = _compiled(expr)
    if f is None:
        return None
    try:
        return f(point)
    except (_Undecided, ZeroDivisionError):
        return None


@functools.lru_cache(maxsize=1024)
def _compiled(expr: sp.Basic) -> Callable[[Point], Any] | None:
    try:
        if isinstance(expr, Boolean) and not expr.is_Symbol:  # a Symbol is a Boolean too
            return _compile_bool(expr)
        num, den = _scaled(expr)
    except _Undecided:
        return None
    if den == 1:
        return num
    return lambda p: Fraction(num(p), den)


def _constant(v: Any) -> Callable[[Point], Any]:
    return lambda _p: v


def _scaled(e: sp.Basic) -> _Scaled:
    """``e`` as an integer function of the point over a fixed positive denominator."""
    if e.is_Symbol:
        def symbol(p: Point, s: sp.Basic = e) -> int:
            v = p.get(s)
            if type(v) is int:
                return v
            if v is None or not getattr(v, "is_Integer", False):
                raise _Undecided
            return int(v)
        return symbol, 1
    if isinstance(e, Boolean) or not isinstance(e, sp.Expr):
        raise _Undecided
    if e.is_Rational:
        return _constant(int(e.p)), int(e.q)
    if e.is_Add or isinstance(e, (sp.Min, sp.Max)):
        parts = [_scaled(a) for a in e.args]
        den = math.lcm(*(d for _f, d in parts))
        terms = [(f, den // d) for f, d in parts]
        if e.is_Add:
            return (lambda p: sum(f(p) * k for f, k in terms)), den
        pick = min if isinstance(e, sp.Min) else max
        return (lambda p: pick(f(p) * k for f, k in terms)), den
    if e.is_Mul:
        parts = [_scaled(a) for a in e.args]

        def product(p: Point) -> int:
            out = 1
            for f, _d in parts:
                out *= f(p)
            return out
        return product, math.prod(d for _f, d in parts)
    if e.is_Pow:
        if not (e.exp.is_Integer and e.exp >= 0):
            raise _Undecided
        (base, d), k = _scaled(e.base), int(e.exp)
        return (lambda p: base(p) ** k), d ** k
    if isinstance(e, sp.floor):
        arg, d = _scaled(e.args[0])
        return (lambda p: arg(p) // d), 1
    if isinstance(e, sp.ceiling):
        arg, d = _scaled(e.args[0])
        return (lambda p: -(-arg(p) // d)), 1
    if isinstance(e, sp.Mod):  # a - m*floor(a/m), Python's % on a common denominator
        (a, da), (m, dm) = _scaled(e.args[0]), _scaled(e.args[1])
        return (lambda p: (a(p) * dm) % (m(p) * da)), da * dm
    raise _Undecided


def _compile_bool(e: sp.Basic) -> Callable[[Point], bool]:
    """A function of a point giving condition ``e``'s truth."""
    if e is sp.true or e is sp.false:
        return _constant(e is sp.true)
    if type(e) in _RELATIONS:
        rel = _RELATIONS[type(e)]
        (lhs, dl), (rhs, dr) = _scaled(e.args[0]), _scaled(e.args[1])
        return lambda p: rel(lhs(p) * dr, rhs(p) * dl)
    if isinstance(e, (sp.And, sp.Or)):
        parts = [_compile_bool(a) for a in e.args]
        if isinstance(e, sp.And):
            return lambda p: all(f(p) for f in parts)
        return lambda p: any(f(p) for f in parts)
    if isinstance(e, sp.Not):
        inner = _compile_bool(e.args[0])
        return lambda p: not inner(p)
    raise _Undecided


def at_point(g: sp.Basic, point: Mapping[sp.Symbol, sp.Expr]) -> Any:
    """``g.xreplace(point)`` where ``g`` is a condition that :func:`exact_value` decides
    there (``sp.true`` or ``sp.false``); otherwise SymPy's substitution itself (which may
    raise, as before)."""
    v = exact_value(g, point)
    if isinstance(v, bool):
        return sp.true if v else sp.false
    return g.xreplace(dict(point))
