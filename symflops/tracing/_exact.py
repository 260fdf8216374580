"""Exact values of SymPy size expressions and conditions at integer points, without SymPy.

Trying a guard at many points (:mod:`._branches` looks for sizes on its other side; the
0/1-specialization tests of :mod:`._assembly` try sizes 1..5) substitutes integers into the
same expression again and again; ``xreplace`` rebuilds every node with SymPy's evaluation
on the way (~0.1 ms a guard). :func:`exact_value` compiles the expression once into Python
functions over ints and Fractions (exact), and answers None for what it does not know, where
the caller substitutes with SymPy as before: the answer is the one ``xreplace`` gives.
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
    """:func:`_compile` met a node it does not evaluate, or a point lacks a symbol."""


Number = int | Fraction
Point = Mapping[sp.Symbol, sp.Expr]

_RELATIONS: dict[type, Callable[[Any, Any], bool]] = {
    sp.Eq: operator.eq, sp.Ne: operator.ne, sp.Lt: operator.lt, sp.Le: operator.le,
    sp.Gt: operator.gt, sp.Ge: operator.ge}


def exact_value(expr: sp.Basic, point: Point) -> Number | bool | None:
    """``expr`` at ``point`` (every free symbol an Integer there) in exact rational
    arithmetic (Python ints and Fractions): a number, or a bool for a condition; None where
    it cannot say (a node other than +, *, integer powers, floor, ceiling, Mod, Min, Max,
    comparisons, And, Or, Not; a division by zero), and the caller then substitutes with
    SymPy. The value ``expr.xreplace(point)`` evaluates to, without building SymPy objects
    on the way: a branch guard is tried at a few hundred points near the example sizes."""
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
        return _compile_num(expr)
    except _Undecided:
        return None


def _constant(v: Any) -> Callable[[Point], Any]:
    return lambda _p: v


def _compile_num(e: sp.Basic) -> Callable[[Point], Number]:
    """A function of a point giving ``e``'s exact value (int or Fraction)."""
    if e.is_Symbol:
        def symbol(p: Point, s: sp.Basic = e) -> Number:
            v = p.get(s)
            if v is None or not v.is_Integer:
                raise _Undecided
            return int(v)
        return symbol
    if isinstance(e, Boolean) or not isinstance(e, sp.Expr):
        raise _Undecided
    if e.is_Rational:
        q = int(e.q)
        return _constant(int(e.p) if q == 1 else Fraction(int(e.p), q))
    if e.is_Add or e.is_Mul or isinstance(e, (sp.Min, sp.Max)):
        parts = [_compile_num(a) for a in e.args]
        if e.is_Add:
            return lambda p: sum(f(p) for f in parts)
        if e.is_Mul:
            def product(p: Point) -> Number:
                out: Number = 1
                for f in parts:
                    out *= f(p)
                return out
            return product
        pick = min if isinstance(e, sp.Min) else max
        return lambda p: pick(f(p) for f in parts)
    if e.is_Pow:
        if not e.exp.is_Integer:
            raise _Undecided
        base, k = _compile_num(e.base), int(e.exp)
        if k < 0:
            return lambda p: Fraction(base(p)) ** k
        return lambda p: base(p) ** k
    if isinstance(e, (sp.floor, sp.ceiling)):
        arg = _compile_num(e.args[0])
        rounding = math.floor if isinstance(e, sp.floor) else math.ceil
        return lambda p: rounding(arg(p))
    if isinstance(e, sp.Mod):
        a, m = _compile_num(e.args[0]), _compile_num(e.args[1])
        return lambda p: a(p) % m(p)
    raise _Undecided


def _compile_bool(e: sp.Basic) -> Callable[[Point], bool]:
    """A function of a point giving condition ``e``'s truth."""
    if e is sp.true or e is sp.false:
        return _constant(e is sp.true)
    if type(e) in _RELATIONS:
        rel = _RELATIONS[type(e)]
        lhs, rhs = _compile_num(e.args[0]), _compile_num(e.args[1])
        return lambda p: rel(lhs(p), rhs(p))
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
