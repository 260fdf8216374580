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
import random
from collections.abc import Callable, Mapping

import sympy as sp

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

    for i in range(len(moves(2))):
        for group in [[n] for n in names] + ([names] if len(names) > 1 else []):
            point = dict(base)
            for n in group:
                v = moves(hints[n])[i]
                if v < 2:
                    break
                point[symbols[n]] = sp.Integer(v)
            else:
                if ok(point):
                    return {n: int(point[symbols[n]]) for n in group}
    return None


def _false_at(guard: sp.Basic, point: Mapping[sp.Symbol, sp.Expr]) -> bool:
    try:
        return guard.xreplace(dict(point)) is sp.false
    except (TypeError, ValueError, ZeroDivisionError):
        return False


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
        if len(a) != len(b) or any(sp.sympify(x).xreplace(point) != sp.sympify(y).xreplace(point)
                                   for x, y in zip(a, b, strict=True)):
            return {s.name: int(v) for s, v in point.items() if s.name in names}
    return None
