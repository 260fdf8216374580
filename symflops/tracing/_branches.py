"""Guards that chose a branch: every one is accounted for.

A trace follows the model's code at the example sizes; where the code branched on a size
(``if (out - 1) * s >= L + p``, a kernel heuristic's ``B*N < 2**31``), torch recorded a
guard that holds at the example and maybe not elsewhere. For each such guard,
:func:`settle` traces the model again at sizes on the other side of it and compares the two
formulas there: the same counts -> the guard does not change the cost (dropped, and the
notes say where it was checked); different counts, or no trace there -> the guard joins the
formula's validity, so a point on the other side is refused rather than answered wrongly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import random
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import sympy as sp
from sympy.logic.boolalg import Boolean

from symflops.errors import SymflopsError, TimeBudgetSpent
from symflops.tracing._assembly import TracedCost
from symflops.tracing._inputs import TraceContext

__all__ = ["settle", "MAX_BRANCH_TRACES"]

#: at most this many extra traces settle a trace's branch guards; the rest join the validity
MAX_BRANCH_TRACES = 4

#: sizes compared on the other side of a guard (besides the traced point itself)
_SAMPLES = 24


def settle(ctx: TraceContext, result: TracedCost,
           run_once: Callable[[TraceContext], TracedCost]) -> TracedCost:
    """``result`` with each branch guard of its report dropped (checked not to change the
    cost) or added to its validity (it does, or its other side could not be traced)."""
    report = result.report
    if not report.branches or ctx.real:
        return result
    symbols = report.symbols
    keep: list[sp.Basic] = []
    traces = 0
    for guard in dict.fromkeys(report.branches):
        if traces >= MAX_BRANCH_TRACES:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (no trace budget left "
                                f"to check its other side)")
            continue
        other = _other_side(guard, ctx.hint_of, symbols, result)
        if other is None:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (no size on its other "
                                f"side near the example sizes)")
            continue
        traces += 1
        hints = {**ctx.hint_of, **other}
        try:
            again = run_once(dataclasses.replace(ctx, hint_of=hints,
                                                 resize=report.resize_mode or ctx.resize))
        except TimeBudgetSpent:
            raise
        except SymflopsError as e:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (the trace at "
                                f"{_say(other)} failed: {e.message[:120]})")
            continue
        nested = [g for g in dict.fromkeys(again.report.branches)
                  if g not in report.branches and not _negation(g, guard)]
        if nested:  # ``(h, w) == (4, 4)``: past ``h != 4`` the code tests ``w`` too
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition: on its other side the "
                                f"model branches again ({'; '.join(map(str, nested))}), "
                                f"so one trace there does not cover it")
            continue
        where = _mismatch(result, again, guard, symbols, other)
        if where is None:
            report.notes.append(f"guard {guard} dropped: a trace at {_say(other)}, on its "
                                f"other side, gives the same counts at {_SAMPLES + 1} sizes "
                                f"there")
        else:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition: on its other side the "
                                f"cost differs (at {_say(where)})")
    # the notes say which guards were dropped or kept, and why (Cost.notes is a snapshot)
    validity = [*result.validity, *(g for g in keep if g not in result.validity)]
    settled = result.replace(validity=validity, notes=tuple(report.notes))
    assert isinstance(settled, TracedCost)
    return settled


def _negation(g: sp.Basic, guard: sp.Basic) -> bool:
    """``g`` is ``guard``'s other side (``Mod(N, 16) > 0`` of ``Mod(N, 16) <= 0``): the trace
    there took the other branch of the same test, not a new one."""
    negated = getattr(guard, "negated", None)
    return g == negated or g == sp.Not(guard) or sp.Not(g) == guard


def _say(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items()))


def _other_side(guard: sp.Basic, hints: Mapping[str, int], symbols: Mapping[str, sp.Symbol],
                result: TracedCost) -> dict[str, int] | None:
    """Example sizes near the traced ones where ``guard`` is false and the formula's
    conditions (lower bounds, lattices) hold: one symbol moved at a time, then all."""
    names = sorted(s.name for s in guard.free_symbols if s.name in hints)
    if not names:
        return None
    base = {symbols[n]: sp.Integer(hints[n]) for n in hints if n in symbols}
    domain = result.domain

    def ok(point: dict[sp.Symbol, sp.Integer]) -> bool:
        return _false_at(guard, point) and domain.failing(point) is None

    def moves(h: int) -> list[int]:  # near the example first, then by factors of two
        return [*(h + d for d in range(1, 65)), *(h - d for d in range(1, 65)),
                *(h * 2**k + d for k in range(1, 12) for d in (0, 1)),
                *(h // 2**k for k in range(1, 8))]

    moved = {n: moves(hints[n]) for n in names}  # the candidates of each size, made once
    groups = [[n] for n in names] + ([names] if len(names) > 1 else [])
    for i in range(len(moves(2))):
        for group in groups:
            point = dict(base)
            for n in group:
                v = moved[n][i]
                if v < 2:
                    break
                point[symbols[n]] = sp.Integer(v)
            else:
                if ok(point):
                    return {n: int(point[symbols[n]]) for n in group}
    return None


def _false_at(guard: sp.Basic, point: Mapping[sp.Symbol, sp.Expr]) -> bool:
    fast = _exact_value(guard, point)
    if isinstance(fast, bool):
        return not fast
    try:
        return guard.xreplace(dict(point)) is sp.false
    except (TypeError, ValueError, ZeroDivisionError):
        return False


class _Undecided(Exception):
    """:func:`_compile` met a node it does not evaluate, or a point lacks a symbol."""


Number = int | Fraction
Point = Mapping[sp.Symbol, sp.Expr]

_RELATIONS: dict[type, Callable[[Any, Any], bool]] = {
    sp.Eq: operator.eq, sp.Ne: operator.ne, sp.Lt: operator.lt, sp.Le: operator.le,
    sp.Gt: operator.gt, sp.Ge: operator.ge}


def _exact_value(expr: sp.Basic, point: Point) -> Number | bool | None:
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


def _mismatch(first: TracedCost, again: TracedCost, guard: sp.Basic,
              symbols: Mapping[str, sp.Symbol], other: Mapping[str, int]
              ) -> dict[str, int] | None:
    """A point on the other side of ``guard`` (where ``again`` holds) at which the two
    traces' parameters, work per kind or output shape differ; None when they agree at the
    traced point and at :data:`_SAMPLES` more sizes there."""
    names = sorted(s.name for s in guard.free_symbols)
    free = sorted(first.free_symbols | again.free_symbols, key=lambda s: s.name)
    base = {s: sp.Integer(again.report.hints.get(s.name, 2)) for s in free}
    for n, v in other.items():
        if n in symbols:
            base[symbols[n]] = sp.Integer(v)
    rng = random.Random(0)  # never the global RNG: a trace leaves it as it was
    points = [base]
    tries = 0
    while len(points) <= _SAMPLES and tries < 40 * _SAMPLES:
        tries += 1
        point = dict(base)
        for n in names:
            s = symbols[n]
            point[s] = sp.Integer(max(2, int(base[s]) + rng.randint(-int(base[s]) // 2,
                                                                     4 * int(base[s]))))
        if _false_at(guard, point) and again.domain.failing(point) is None:
            points.append(point)
    kinds = set(first.work) | set(again.work)
    for point in points:
        a = [first.params, *(first.work.get(k, 0) for k in sorted(kinds)),
             *first.output_shape]
        b = [again.params, *(again.work.get(k, 0) for k in sorted(kinds)),
             *again.output_shape]
        if len(a) != len(b) or any(_differ(sp.sympify(x), sp.sympify(y), point)
                                   for x, y in zip(a, b, strict=True)):
            return {s.name: int(v) for s, v in point.items() if s.name in names}
    return None


def _differ(x: sp.Basic, y: sp.Basic, point: Mapping[sp.Symbol, sp.Expr]) -> bool:
    """``x`` and ``y`` differ at ``point``: compared as exact rationals where both evaluate
    to numbers (:func:`_exact_value`), else as SymPy substitutes them."""
    fx, fy = _exact_value(x, point), _exact_value(y, point)
    if isinstance(fx, (int, Fraction)) and isinstance(fy, (int, Fraction)) and \
            not isinstance(fx, bool) and not isinstance(fy, bool):
        return fx != fy
    return bool(x.xreplace(dict(point)) != y.xreplace(dict(point)))
