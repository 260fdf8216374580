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
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import sympy as sp

from symflops.conventions import conventions
from symflops.cost import unsimplified
from symflops.domain import Domain
from symflops.errors import SymflopsError, TimeBudgetSpent
from symflops.exact import Number, at_point, exact_value
from symflops.tracing._assembly import TracedCost, TraceReport, zero_one_specialization
from symflops.tracing._inputs import TraceContext, with_sizes

__all__ = ["settle", "say_sizes", "MAX_BRANCH_TRACES"]

#: at most this many extra traces settle a trace's branch guards; the rest join the validity
MAX_BRANCH_TRACES = 4
#: at most this many extra traces check sizes torch assumed are not 1; the rest refuse 1
MAX_ONE_TRACES = 4

#: sizes compared on the other side of a guard (besides the traced point itself)
_SAMPLES = 24


def settle(ctx: TraceContext, result: TracedCost,
           run_once: Callable[[TraceContext], TracedCost], top: bool = True) -> TracedCost:
    """``result`` with each branch guard of its report dropped (checked not to change the
    cost) or added to its validity (it does, or its other side could not be traced); and
    each size torch assumed is not 1 (its 0/1 specialization) checked at 1 the same way.
    ``top``: this is the user's trace (a trace on a guard's other side settles its own
    branch guards once more, with ``top`` False, and checks no size at 1)."""
    report = result.report
    if ctx.real:
        return result
    ones = _assumed_not_one(result, ctx) if top else {}
    if not report.branches and not ones:
        return result
    symbols = report.symbols
    domain = _domain_once(result)
    keep: list[sp.Basic] = []
    traces = 0
    for guard in dict.fromkeys(report.branches):
        if traces >= MAX_BRANCH_TRACES:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (no trace budget left "
                                f"to check its other side)")
            continue
        other = _other_side(guard, ctx.hint_of, symbols, domain) or \
            (_at_one(guard, ctx.hint_of, symbols, domain) if ctx.past is None else None)
        if other is None:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (no size on its other "
                                f"side near the example sizes)")
            continue
        traces += 1
        ones = {g: why for g, why in ones.items()  # settled at 1 by this guard
                if any(other.get(n) != 1 for n in g)}
        fails = _fails_at_table(report, guard, {**ctx.hint_of, **other})
        if fails is not None:  # the trace there would stop at that lookup: not run
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition (the trace at "
                                f"{say_sizes(other)} failed: {fails[:120]})")
            continue
        why = _differs_there(ctx, result, guard, other, run_once, nested_settle=top)
        if why is None:
            as_int = " (as an int: torch fixes a size of 1)" if 1 in other.values() else ""
            report.notes.append(f"guard {guard} dropped: a trace at {say_sizes(other)}{as_int}, "
                                f"on its other side, gives the same counts at "
                                f"{_SAMPLES + 1} sizes there")
        else:
            keep.append(guard)
            report.notes.append(f"guard {guard} kept as a condition{why}")
            if why.startswith(": on its other side"):  # traced there: another code path
                report.other_paths.append(guard)
    checked: list[str] = []  # in the trace's report, not the Cost's notes a render prints
    refused: set[str] = set()
    for i, (group, named) in enumerate(sorted(ones.items(), key=lambda g: len(g[0]))):
        if len(group) > 1 and refused & set(group):  # a size refused at 1 alone: enough
            continue
        guard = sp.Or(*(sp.Ne(symbols[n], 1) for n in group))
        at = {n: 1 for n in group}
        n = " = ".join(group)  # B, or B = N (at once)
        assumed = "; ".join(map(str, named[:3])) + (f"; {len(named) - 3} more" if
                                                      len(named) > 3 else "")
        if i >= MAX_ONE_TRACES:
            keep.append(guard)
            report.notes.append(f"{n} = 1 not checked (no trace budget left): torch assumed "
                                f"otherwise ({assumed}), so it is refused")
            continue
        why = _differs_there(ctx, result, guard, at, run_once, branch=False,
                             notes=checked, nested_settle=True, kept=keep)
        if why is None:
            checked.append(f"{n} = 1 checked: torch assumed otherwise ({assumed}); a trace "
                           f"with {'it' if len(group) == 1 else 'them'} the int 1 gives the "
                           f"same counts at {_SAMPLES + 1} sizes")
        else:
            keep.append(guard)
            refused.update(group)
            report.notes.append(f"{n} = 1 refused: torch assumed otherwise ({assumed}), and "
                                f"there the model takes another path{why}")
    # the notes say which guards were dropped or kept, and why (Cost.notes is a snapshot)
    validity = [*result.validity, *(g for g in keep if g not in result.validity)]
    settled = result.replace(validity=validity, notes=tuple(report.notes))
    assert isinstance(settled, TracedCost)
    report.notes.extend(checked)
    return settled


def _differs_there(ctx: TraceContext, result: TracedCost, guard: sp.Basic,
                   other: Mapping[str, int], run_once: Callable[[TraceContext], TracedCost],
                   branch: bool = True, notes: list[str] | None = None,
                   nested_settle: bool = False, kept: Sequence[sp.Basic] = ()) -> str | None:
    """None when a trace at ``other`` (a size of 1 given as an int: torch fixes a symbolic
    size traced at 1), on ``guard``'s other side, gives the same counts as ``result`` at
    :data:`_SAMPLES` sizes there; else why the guard stays (a note's ending). A branch
    compares each kind of work; a size torch assumed is not 1 (``branch=False``) compares
    every convention's total, parameters and output shape: at 1 torch may run another
    kernel for the same work (``linear`` as ``addmm``, its bias a kind of its own)."""
    report = result.report
    hints = {**ctx.hint_of, **other}
    there = ctx
    ones = {n: 1 for n, v in other.items() if v == 1}
    ints = dict(ones)
    if ones and not branch:  # the sizes the model pins, as the ints they are: the formula
        # holds only there, and a symbolic size would be pinned again (a ViT's 224)
        ints.update({n: v for n, v in report.fixed.items()
                     if n in ctx.hint_of and n not in ones})
    if ints:
        pos, kw = with_sizes(ctx.positional, ctx.keyword, ints)
        there = dataclasses.replace(ctx, positional=tuple(pos), keyword=kw)
        hints = {n: v for n, v in hints.items() if n not in ints}
    there = dataclasses.replace(there, hint_of=hints, resize=report.resize_mode or ctx.resize)
    if branch:
        where = _differs_concretely(ctx, result, guard, other, run_once)
        if where is not None:
            return f": on its other side the cost differs (at {say_sizes(where)})"
    try:
        with unsimplified():  # only compared at points, never shown: formulas as built
            again = run_once(there)
            # a guard of the first trace, with the sizes of 1 put in, is the same test there
            same = {g.xreplace({report.symbols[n]: sp.Integer(v) for n, v in ints.items()})
                    for g in report.guards} if ints else set()
            nested = [g for g in dict.fromkeys(again.report.branches)
                      if g not in report.branches and g not in same
                      and not _negation(g, guard)
                      and not again.domain.implies(g)]  # a test that cannot fail there
            if nested and nested_settle:  # the other side's own branches, settled there once
                again = settle(there, again, run_once, top=False)
                nested = [g for g in nested if g in again.validity]
    except TimeBudgetSpent:
        raise
    except SymflopsError as e:
        return f" (the trace at {say_sizes(other)} failed: {e.message[:120]})"
    if nested:  # ``(h, w) == (4, 4)``: past ``h != 4`` the code tests ``w`` too
        return (f": on its other side the model branches again "
                f"({'; '.join(map(str, nested))}), so one trace there does not cover it")
    pinned = {n: v for n, v in again.report.fixed.items()
              if n in again.report.replaced and n not in report.fixed and n not in ints}
    if pinned:  # MPT's ALiBi table at N = 128: that path holds only there, so its formula
        # says nothing of the other sizes on that side (past 128 the model stops). Only a
        # dim torch replaced: a pin of symflops' reading of an equality over several sizes
        # may stand for a range (SSD's last cell at B = 1: H, W <= 512, read as H = W = 320)
        return (f": on its other side the model fixes {say_sizes(pinned)} (a path that "
                f"holds only there)")
    where = _mismatch(result, again, guard, report.symbols, other, totals=not branch,
                      kept=kept)
    if where is not None:
        return f": on its other side the cost differs (at {say_sizes(where)})"
    if not branch and _mismatch(result, again, guard, report.symbols, other,
                                kept=kept) is not None:
        at = {report.symbols[n]: sp.Integer(v) for n, v in other.items()}
        kinds = sorted(k for k in set(result.work) | set(again.work) if sp.expand(
            sp.sympify(result.work.get(k, 0)).xreplace(at) - again.work.get(k, 0)) != 0)
        (report.notes if notes is None else notes).append(
            f"at {say_sizes(other)} the same totals in every convention, with work moved "
            f"between kinds ({', '.join(kinds)}): torch runs another kernel there (e.g. "
            f"addmm for a matmul and an add)")
    return None


def _differs_concretely(ctx: TraceContext, result: TracedCost, guard: sp.Basic,
                        other: Mapping[str, int], run_once: Callable[[TraceContext], TracedCost]
                        ) -> dict[str, int] | None:
    """The point on ``guard``'s other side that :func:`_mismatch` compares first (``other``,
    the other sizes at their examples) when a trace there with every size an int already
    counts differently from ``result`` at it: parameters, work per kind or output shape.
    That trace costs what torch's concrete fake run costs (Swin: 0.3-0.5 s against 1.2-1.5
    s for a symbolic one), and a branch usually changes the cost (Swin's window shift past
    its last stage's window: every such guard of the torchvision zoo). None -- same counts
    there, that trace failed, or a size it cannot pin (a data-dependent one, a KV cache)
    -- leaves the question to the symbolic trace."""
    report = result.report
    names = set(ctx.hint_of)
    free = result.free_symbols
    if ctx.past is not None or ctx.data_dependent or any(s.name not in names for s in free):
        return None
    point = {**ctx.hint_of, **other}
    pos, kw = with_sizes(ctx.positional, ctx.keyword, point)
    concrete = dataclasses.replace(ctx, positional=tuple(pos), keyword=kw, hint_of={},
                                   resize=report.resize_mode or ctx.resize)
    try:
        with unsimplified():
            there = run_once(concrete)
    except TimeBudgetSpent:
        raise
    except SymflopsError:
        return None
    at = {s: sp.Integer(point[s.name]) for s in free}
    kinds = set(result.work) | set(there.work)
    ours, theirs = _figures(result, kinds), _figures(there, kinds)
    if len(ours) == len(theirs):
        for x, y in zip(ours, theirs, strict=True):
            fx, fy = exact_value(sp.sympify(x), at), exact_value(sp.sympify(y), {})
            if not (_number(fx) and _number(fy)):
                return None  # not a number there: the symbolic trace compares
            if fx != fy:
                break
        else:
            return None
    held = {n for n, v in other.items() if v == 1}  # as _mismatch names its point
    named = {s.name for s in free}
    shown = (named | {s.name for s in guard.free_symbols}) - held
    return {n: point[n] for n in sorted(shown & (named | set(other)))}


def _assumed_not_one(result: TracedCost, ctx: TraceContext
                     ) -> dict[tuple[str, ...], list[sp.Basic]]:
    """The input dims torch assumed are not 1, each with the 0/1-specialization guards
    that are false with it at 1 (the other sizes at their examples), and the formula's
    conditions allow there: each is checked at 1 by one more trace. A guard false only
    with several sizes at 1 at once (``B*N >= 2``) names that group. A guard that holds at
    1 (``Ne(64*B*H*W, 0)``: a numel that is not 0) names nothing."""
    report = result.report
    if ctx.past is not None:
        return {}
    names = {n: report.symbols[n] for n in ctx.hint_of
             if n in report.symbols and n not in report.fixed}
    base = {s: sp.Integer(ctx.hint_of[n]) for n, s in names.items()}
    out: dict[tuple[str, ...], list[sp.Basic]] = {}
    for g in dict.fromkeys(report.guards):
        mine = sorted(n for n, s in names.items() if s in g.free_symbols)
        if not mine or not zero_one_specialization(g):
            continue
        alone: list[tuple[str, ...]] = [(n,) for n in mine if _false_at(
            g, {**base, names[n]: sp.Integer(1)})]
        together = tuple(mine) if not alone and _false_at(
            g, {**base, **{names[n]: sp.Integer(1) for n in mine}}) else None
        for group in alone or ([together] if together else []):
            out.setdefault(group, []).append(g)
    domain = _domain_once(result)
    return {group: why for group, why in out.items() if domain.failing(
        {**base, **{names[n]: sp.Integer(1) for n in group}}) is None}


def _fails_at_table(report: TraceReport, guard: sp.Basic, hints: Mapping[str, int]
                    ) -> str | None:
    """The error a trace at ``hints`` raises, when ``guard`` is the bound a table lookup of
    positions recorded (``N <= 1024``: GPT-2's 1,024 positions) and every guard torch
    recorded before it holds at ``hints``: the trace there takes the same path up to that
    lookup, where the positions run past the table (:class:`IndexBounds` raises
    :class:`PositionsPastTable`). None otherwise (the trace is run)."""
    symbols = report.symbols
    if not report.table_checks or any(n not in symbols for n in hints):
        return None
    pins = {symbols[n]: sp.Integer(v) for n, v in report.fixed.items() if n in symbols}
    point = {symbols[n]: sp.Integer(v) for n, v in hints.items()}
    for check in report.table_checks:
        if check.guard >= len(report.guards) or \
                report.guards[check.guard].xreplace(pins) != guard:
            continue
        try:
            if at_point(guard, point) is sp.false and all(
                    at_point(g, point) is sp.true for g in report.guards[:check.guard]):
                return str(check.message(hints))
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    return None


def _negation(g: sp.Basic, guard: sp.Basic) -> bool:
    """``g`` is ``guard``'s other side (``Mod(N, 16) > 0`` of ``Mod(N, 16) <= 0``): the trace
    there took the other branch of the same test, not a new one."""
    negated = getattr(guard, "negated", None)
    return g == negated or g == sp.Not(guard) or sp.Not(g) == guard


def say_sizes(point: Mapping[str, int]) -> str:
    """``B=2, H=33``: sizes by name, as the notes write them."""
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items()))


def _other_side(guard: sp.Basic, hints: Mapping[str, int], symbols: Mapping[str, sp.Symbol],
                domain: Domain) -> dict[str, int] | None:
    """Example sizes near the traced ones where ``guard`` is false and the formula's
    conditions (lower bounds, lattices) hold: one symbol moved at a time, then all."""
    names = sorted(s.name for s in guard.free_symbols if s.name in hints)
    if not names:
        return None
    base = {symbols[n]: hints[n] for n in hints if n in symbols}  # ints: see _false_at

    def ok(point: dict[sp.Symbol, int]) -> bool:
        return _false_at(guard, point) and domain.failing(_integers(point)) is None

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
                point[symbols[n]] = v
            else:
                if ok(point):
                    return {n: int(point[symbols[n]]) for n in group}
    return None


def _at_one(guard: sp.Basic, hints: Mapping[str, int], symbols: Mapping[str, sp.Symbol],
            domain: Domain) -> dict[str, int] | None:
    """``{name: 1}`` when ``guard``'s other side is a size of 1 (``B > 1``: one image, where
    a model's code squeezes or broadcasts differently) and the formula's conditions allow
    it; :func:`settle` traces there with that size an int (torch would fix a symbolic size
    traced at 1), the other sizes symbolic."""
    base = {symbols[n]: sp.Integer(v) for n, v in hints.items() if n in symbols}
    for n in sorted(s.name for s in guard.free_symbols if s.name in hints):
        point = {**base, symbols[n]: sp.Integer(1)}
        if _false_at(guard, point) and domain.failing(point) is None:
            return {n: 1}
    return None


def _domain_once(result: TracedCost) -> Domain:
    """``result.domain``, built once where it is read many times: why, the property walks
    the whole Cost tree for its conditions each time (DenseNet: 3 guards x sizes tried),
    and ``result`` does not change while :func:`settle` reads it."""
    return result.domain


def _integers(point: Mapping[sp.Symbol, Any]) -> dict[sp.Symbol, sp.Expr]:
    return {s: sp.Integer(v) for s, v in point.items()}


def _false_at(guard: sp.Basic, point: Mapping[sp.Symbol, Any]) -> bool:
    """``guard`` is false at ``point`` (values: ints or SymPy Integers), as SymPy's
    substitution says (:func:`exact_value` first, without building SymPy objects)."""
    fast = exact_value(guard, point)
    if isinstance(fast, bool):
        return not fast
    try:
        return guard.xreplace(_integers(point)) is sp.false
    except (TypeError, ValueError, ZeroDivisionError):
        return False


def _mismatch(first: TracedCost, again: TracedCost, guard: sp.Basic,
              symbols: Mapping[str, sp.Symbol], other: Mapping[str, int],
              totals: bool = False, kept: Sequence[sp.Basic] = ()) -> dict[str, int] | None:
    """A point on the other side of ``guard`` at which the two traces' parameters, work
    per kind or output shape differ; None when they agree at the traced point and at
    :data:`_SAMPLES` more sizes there (:func:`_both_paths`)."""
    free = sorted(first.free_symbols | again.free_symbols, key=lambda s: s.name)
    held = {n for n, v in other.items() if v == 1}  # a size of 1 is the other side itself
    # every size varies (on the lattice it lives on), not only the guard's: two formulas
    # equal at the example W may differ at another W on the guard's other side in H
    names = sorted(({s.name for s in free} | {s.name for s in guard.free_symbols}) - held)
    within = _both_paths(first, again, symbols, held, kept)
    base = {s: sp.Integer(again.report.hints.get(s.name, 2)) for s in free}
    for n, v in other.items():
        if n in symbols:
            base[symbols[n]] = sp.Integer(v)
    rng = random.Random(0)  # never the global RNG: a trace leaves it as it was
    points = [base]
    ranges = {n: _sample_range(within, n, int(base[symbols.get(n) or _named(free, n)]))
              for n in names} if within is not None else {}
    tries = 0
    while within is not None and len(points) <= _SAMPLES and tries < 40 * _SAMPLES:
        tries += 1
        point = dict(base)
        for n in names:
            lo, hi, step, offset = ranges[n]
            v = rng.randint(lo, hi)
            v += (offset - v) % step
            if v > hi:
                v -= step
            point[symbols.get(n) or _named(free, n)] = sp.Integer(max(v, lo))
        if _false_at(guard, point) and within.failing(point) is None:
            points.append(point)
    kinds = set(first.work) | set(again.work)
    # once: each convention's total is built anew
    a, b = _figures(first, kinds, totals), _figures(again, kinds, totals)
    if len(a) != len(b):
        return {s.name: int(v) for s, v in base.items() if s.name in names}
    pairs = [(sp.sympify(x), sp.sympify(y)) for x, y in zip(a, b, strict=True)]
    for point in points:
        if any(_differ(x, y, point) for x, y in pairs):
            return {s.name: int(v) for s, v in point.items() if s.name in names}
    return None


def _figures(cost: TracedCost, kinds: set[str], totals: bool = False) -> list[Any]:
    """What two traces are compared on: parameters, the work of each of ``kinds`` (or,
    ``totals``, every convention's total: see :func:`_differs_there`), output shape."""
    if totals:
        work = [c.weigh(cost.work) for c in conventions().values()]
    else:
        work = [cost.work.get(k, 0) for k in sorted(kinds)]
    return [cost.params, *work, *cost.output_shape]


def _both_paths(first: TracedCost, again: TracedCost, symbols: Mapping[str, sp.Symbol],
                held: set[str], kept: Sequence[sp.Basic]) -> Domain | None:
    """Where both traces' formulas are claimed: each one's domain, and the first trace's
    branch guards ``kept`` as conditions (:func:`settle` checks sizes at 1 after its branch
    guards: the sizes held at 1 put in). A guard not kept is not a bound of the formula, and
    the other side of a branch guard is compared wherever ``again`` holds: a branch of its
    own that it kept is in its domain. None when they cannot hold together (a condition
    settles as false): then only the traced point is compared."""
    ones = {symbols[n]: sp.Integer(1) for n in held if n in symbols}
    mine = [*(("trace", c) for _, c in first.domain.conditions),
            *(("branch", g) for g in kept)]
    conditions = [(w, c.xreplace(ones) if ones else c) for w, c in mine]
    conditions += [(w, c) for w, c in again.domain.conditions]
    if any(c is sp.false for _, c in conditions):
        return None
    return Domain(conditions)


def _sample_range(within: Domain, name: str, at: int) -> tuple[int, int, int, int]:
    """``(lo, hi, step, offset)`` to draw one size from: half to five times ``at``, cut to
    its own bounds in ``within`` (its whole range when that leaves nothing)."""
    lower, upper, step, offset = within.range_of(name)
    lower = max(lower, 2)
    top = max(5 * at, lower + 4 * step) if upper is None else upper
    lo, hi = max(lower, at // 2), min(top, 5 * at)
    if lo > hi:
        lo, hi = lower, top
    return lo, max(hi, lo), step, offset


def _named(free: list[sp.Symbol], name: str) -> sp.Symbol:
    return next(f for f in free if f.name == name)


def _differ(x: sp.Basic, y: sp.Basic, point: Mapping[sp.Symbol, sp.Expr]) -> bool:
    """``x`` and ``y`` differ at ``point``: compared as exact rationals where both evaluate
    to numbers (:func:`_exact_value`), else as SymPy substitutes them."""
    fx, fy = exact_value(x, point), exact_value(y, point)
    if _number(fx) and _number(fy):
        return fx != fy
    return bool(x.xreplace(dict(point)) != y.xreplace(dict(point)))


def _number(v: Number | bool | None) -> bool:
    return isinstance(v, (int, Fraction)) and not isinstance(v, bool)
