"""The domain a formula was proven on, read from a Cost's conditions.

A derivation proves its formula under conditions: lower bounds (a kernel fits: ``H >= 7``),
lattices (a patch divides the image: ``H`` a multiple of 16), upper bounds (where a fit or a
factory stopped looking: ``C <= 65536``), pinned values (a model that fixes ``B = 2``) and
anything else torch's guards required. :class:`Domain` sorts them, says them in words,
answers ``contains`` and refuses a point outside with one
:class:`~symflops.errors.OutsideDomain` that names the condition and the fix.

>>> import sympy as sp
>>> from symflops.symbols import H, B
>>> d = Domain([("trace", sp.Eq(sp.Mod(H, 32), 0)), ("trace", H >= 64),
...             ("fit", sp.Le(H, 8192)), ("trace", sp.Eq(B, 2))])
>>> print(d)
B = 2 (pinned); H a multiple of 32, 64 <= H <= 8192 (verified up to 8192)
>>> d.contains(H=224, B=2), d.contains(H=200, B=2), d.contains(H=9000, B=2)
(True, False, False)
>>> d.range_of(H)
(64, 8192, 32, 0)
>>> d.points(H, 100, 200)
[128, 160, 192]
>>> d.check({H: 200, B: 2})
Traceback (most recent call last):
...
symflops.errors.OutsideDomain: trace: ... fix: choose H a multiple of 32, e.g. 192 or 224
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.errors import OutsideDomain
from symflops.exact import exact_value

__all__ = ["Domain", "Clause"]


@dataclass
class _Axis:
    """What the domain says about one symbol alone."""

    lower: int = 1
    upper: int | None = None
    step: int = 1
    offset: int = 0
    pinned: int | None = None
    #: ``(period, residues)``: the values are those whose remainder by ``period`` is one of
    #: ``residues`` (periodic conditions that are not one lattice: ``ceil(H/8)`` even)
    residues: tuple[int, frozenset[int]] | None = None
    #: the guard an upper bound was read from (another code path past it), when it was
    guarded: sp.Basic | None = None


@dataclass(frozen=True)
class Clause:
    """One clause of a domain as a render prints it: ``kind`` (``pinned``, ``lattice``,
    ``range``, ``lower`` or ``other``), ``text``, ``latex`` (math mode) and, for ``other``,
    the ``condition`` itself (a render may print it in its own form)."""

    kind: str
    text: str
    latex: str
    condition: sp.Basic | None = None
    #: the one symbol the clause is about (None for ``other``)
    symbol: sp.Symbol | None = None


@dataclass
class Domain:
    """The conditions a formula holds under, each with where it came from, sorted by kind.

    Built by :attr:`symflops.cost.Cost.domain`; ``conditions`` is ``(where, condition)``
    pairs. The kinds: ``axes`` (per symbol: lower and upper bound, lattice step and offset,
    pinned value) and ``other`` (conditions over several symbols, or of a shape not sorted).
    """

    conditions: list[tuple[str, sp.Basic]]
    #: lower bounds that are tests in a traced model's code, not an op's size (no op's
    #: output is empty below them): their fix says so (``TraceReport.tested``)
    tested: frozenset[sp.Basic] = field(default_factory=frozenset)
    #: bounds that are a branch a traced model took at its example sizes, kept because a
    #: trace on its other side took another code path (``TraceReport.other_paths``): an
    #: upper bound among them is where that path starts, not the end of a verified range
    branched: frozenset[sp.Basic] = field(default_factory=frozenset)
    #: the example sizes a traced model pinned (a path that holds only there), when the
    #: trace moved away from them (``TraceReport.moved_from``): a point back at them that
    #: fails a condition on them gets a fix that says so
    moved_from: Mapping[sp.Symbol, int] = field(default_factory=dict)
    #: for a pinned size of a traced model: the line of the model's code that pinned it
    #: (``TraceReport.pin_sites``), named by the fix of a point elsewhere
    pin_sites: Mapping[sp.Symbol, str] = field(default_factory=dict)
    axes: dict[sp.Symbol, _Axis] = field(default_factory=dict, init=False)
    other: list[tuple[str, sp.Basic]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        seen: set[sp.Basic] = set()
        unique = []
        for where, cond in self.conditions:
            if cond is sp.true or cond in seen:
                continue
            seen.add(cond)
            unique.append((where, cond))
            if not self._sort(cond):
                self.other.append((where, cond))
        self.conditions = unique
        # conditions on one size first: the residues they leave decide the others
        single = [(w, c) for w, c in self.other if len(c.free_symbols) == 1]
        single = [(w, c) for w, c in single
                  if not self._implied(c) and not self._read_as_bound(w, c)]
        single = [(w, c) for w, c in single if not self._implied_on_own_residues(c)]
        several = [(w, c) for w, c in self.other if len(c.free_symbols) != 1]
        self.other = [*single, *((w, c) for w, c in several if not self._implied(c)
                                 and not self._implied_on_residues(c)
                                 and not self._signed_on_residues(c))]
        self.other.sort(key=lambda wc: unique.index(wc))

    def implies(self, cond: sp.Basic) -> bool:
        """Whether ``cond`` holds at every point of this domain, as far as its sizes'
        lattices and bounds prove it (False: not proven, maybe false).

        >>> from symflops.symbols import H
        >>> d = Domain([("t", sp.Eq(sp.Mod(H, 224), 0)), ("t", H >= 448)])
        >>> d.implies(sp.Ne(7*sp.Max(1, 8*sp.floor(H/224)), 8*sp.floor(H/224)))
        True
        >>> d.implies(H >= 672)
        False
        """
        if cond is sp.true or any(cond == c for _, c in self.conditions):
            return True
        if self._implied(cond, bounds=True):
            return True
        if len(cond.free_symbols) != 1:
            return False
        (s,) = cond.free_symbols
        ax = self.axes.get(s) or _Axis(lower=_least(s))
        return _periodic_reading(cond, s, ax.lower, ax.step, ax.offset % ax.step) == \
            ("implied", 0)

    def _read_as_bound(self, where: str, cond: sp.Basic) -> bool:
        """Sort a condition on one size whose floors repeat with a period (a window that
        must still fit, ``7*floor(H/224 + 55/56) <= 7``) as what it is at this axis's sizes:
        true at all of them (dropped from print), or exactly a lower or an upper bound
        (recorded on the axis, and checked as that bound)."""
        if len(cond.free_symbols) != 1:
            return False
        (s,) = cond.free_symbols
        ax = self._axis(s)
        if ax.pinned is not None:
            return False
        if isinstance(cond, sp.Ne) and {cond.lhs, cond.rhs} == {s, sp.Integer(ax.lower)}:
            ax.lower += 1  # N != 1 with N >= 1: N >= 2 (checked as written: its fix says why)
            return True
        reading = _periodic_reading(cond, s, ax.lower, ax.step, ax.offset % ax.step)
        if reading is None:
            if _ratio_reading(cond, s, ax.lower, ax.upper) == "implied":
                return True
            return self._read_as_residues(cond, s)
        kind, value = reading
        if kind == "lower":
            ax.lower = max(ax.lower, value)
            simple: sp.Basic = sp.Ge(s, value)
        elif kind == "upper":
            if ax.upper is None or value < ax.upper:
                ax.upper, ax.guarded = value, cond
            simple = sp.Le(s, value)
        else:
            return True
        self.conditions = [(w, simple if (w, c) == (where, cond) else c)
                           for w, c in self.conditions]
        return True

    def _read_as_residues(self, cond: sp.Basic, s: sp.Symbol) -> bool:
        """Sort a condition on ``s`` alone that repeats with a period (its sides' difference
        is the same at ``s`` and ``s + P``: ``Eq(2*ceiling(floor(H/8 - 1/8)/2 + 1/2),
        floor(H/8 - 1/8) + 1)``, i.e. ``ceil(H/8)`` even) as the remainders by ``P`` where it
        holds, joined with the axis's own (its lattice, earlier residues). The condition is
        still checked as written; only its reading is printed."""
        ax = self._axis(s)
        read = _residue_set(cond, s, ax.lower)
        if read is None:
            return False
        period, holds = read
        old = ax.residues or (1, frozenset({0}))
        joint = math.lcm(period, old[0], ax.step)
        if joint > _RESIDUE_BUDGET:
            return False
        keep = frozenset(r for r in range(joint) if r % ax.step == ax.offset % ax.step
                         and r % old[0] in old[1] and r % period in holds)
        ax.residues = _fewest(joint, keep)
        return True

    def _implied_on_own_residues(self, cond: sp.Basic) -> bool:
        """``cond`` on one size ``s`` whose axis has remainders ``r`` by ``P``: for each,
        ``s = P*k + r`` (``k`` a whole number, ``s`` at or above its lower bound) turns
        ``cond`` into one in ``k`` that SymPy settles as true, or that
        :func:`_periodic_reading` or :func:`_ratio_reading` prove for every ``k`` (MobileViT's
        ``floor(ceil(H/8) / ceil(H/16)) == 2`` where ``ceil(H/8)`` is even)."""
        if len(cond.free_symbols) != 1:
            return False
        (s,) = cond.free_symbols
        ax = self.axes.get(s)
        if ax is None or ax.residues is None or ax.pinned is not None:
            return False
        return _holds_per_residue(cond, s, ax.residues[0], ax.residues[1], ax.lower)

    def _constants_in(self, cond: sp.Basic) -> sp.Basic:
        """``cond`` with each rounding (floor, ceiling, Max, Min, Mod) of one size that is one
        number on the domain put in as that number (proven per remainder)."""
        atoms = sorted((a for a in cond.atoms(sp.floor, sp.ceiling, sp.Max, sp.Min, sp.Mod)
                        if len(a.free_symbols) == 1), key=sp.count_ops, reverse=True)
        done: dict[sp.Basic, sp.Basic] = {}
        for a in atoms:  # (one inside another is put in too: it may stand alone as well)
            (s,) = a.free_symbols
            ax = self.axes.get(s)
            if ax is None or ax.residues is None:
                continue
            period, residues = ax.residues
            first = period * max(1, -(-ax.lower // period)) + min(residues)
            value = a.xreplace({s: sp.Integer(first)})
            if value.is_Integer and _holds_per_residue(sp.Eq(a, value), s, period,
                                                       residues, ax.lower):
                done[a] = value
        return cond.xreplace(done) if done else cond

    def _implied_on_residues(self, cond: sp.Basic) -> bool:
        """``cond``, an equality over several sizes, holds wherever their axes' remainders
        allow (``(floor(H/8 - 1/8) + 1)*(floor(W/8 - 1/8) + 1) == 4*ceiling(...)*ceiling(...)``
        where ``ceil(H/8)`` and ``ceil(W/8)`` are even): implied, so not printed (still
        checked as written). Positive factors free of the read sizes are taken out first
        (``B*X == B*Y`` is ``X == Y``).

        Proof (:func:`_zero_on_residues`): written ``s = L*k + r`` for a remainder ``r``
        the axis allows and ``L`` a multiple of every denominator its floors nest, each
        floor is linear in ``k``, so the two sides' difference is a polynomial in the
        ``k``'s of degree at most ``d`` in each; zero at ``d + 1`` values of each ``k`` it
        is zero for every ``k``."""
        if not isinstance(cond, sp.Eq) or not cond.free_symbols:
            return False
        cond = self._constants_in(cond)
        if cond is sp.true or not isinstance(cond, sp.Eq):
            return cond is sp.true
        periodic = tuple(sorted((s for s in cond.free_symbols if s in self.axes
                                 and self.axes[s].residues is not None),
                                key=lambda x: x.name))
        if not periodic:
            return False
        rest = _without_positive_factors(cond, periodic)
        if rest is None or rest is sp.true:
            return rest is sp.true
        if any(not m.args[1].is_Integer for m in rest.atoms(sp.Mod)):
            return False  # a remainder by a size: not a polynomial in k, the proof fails
        specs = []
        for s in sorted(rest.free_symbols, key=lambda x: x.name):
            ax = self.axes.get(s) or _Axis(lower=_least(s))
            linear = _linearizing_period(rest, s)
            if linear is None or ax.pinned is not None:
                return False
            cycle, allowed = ax.residues or (1, frozenset({0}))
            joint = math.lcm(cycle, linear, ax.step)
            if joint > _RESIDUE_BUDGET:
                return False
            residues = tuple(r for r in range(joint) if r % cycle in allowed
                             and r % ax.step == ax.offset % ax.step)
            base = joint * max(1, -(-ax.lower // joint))
            specs.append((s, joint, residues, base))
        return _zero_on_residues(rest, tuple(specs))

    def _signed_on_residues(self, cond: sp.Basic) -> bool:
        """``cond``, an inequality or ``Ne`` over sizes of which one at least has
        remainders, holds at every point of their axes (MobileViT's
        ``64*B*ceil(ceil(H/8)/2)*... >= 2`` where ``ceil(H/8)`` is even): implied, so not
        printed (still checked as written).

        Proof: each size written ``s = L*k + r`` (``k >= 0`` whole, ``r`` a remainder its
        axis allows, ``L`` from :func:`_linearizing_period`; a size without remainders
        ``lower + step*k``), so every rounding is a polynomial in the ``k``'s
        (:func:`_polynomial_roundings`); the condition then holds for every ``k`` when the
        difference of its sides has no negative coefficient (and, strict or ``Ne``, a
        positive constant), or the mirror of that."""
        if not isinstance(cond, (sp.Ne, sp.Gt, sp.Ge, sp.Lt, sp.Le)) or not any(
                s in self.axes and self.axes[s].residues for s in cond.free_symbols):
            return False
        specs: list[tuple[sp.Symbol, int, tuple[int, ...], int]] = []
        for s in sorted(cond.free_symbols, key=lambda x: x.name):
            ax = self.axes.get(s) or _Axis(lower=_least(s))
            if ax.pinned is not None:
                return False
            if ax.residues is None:
                specs.append((s, ax.step, (ax.offset % ax.step,), ax.lower))
                continue
            linear = _linearizing_period(cond, s)
            if linear is None:
                return False
            cycle, allowed = ax.residues
            joint = math.lcm(cycle, linear, ax.step)
            specs.append((s, joint, tuple(r for r in range(joint) if r % cycle in allowed
                                          and r % ax.step == ax.offset % ax.step), ax.lower))
        return _signed_at_every_k(cond, tuple(specs))

    def _implied(self, cond: sp.Basic, bounds: bool = False) -> bool:
        """Whether ``cond`` holds at every point of its symbols' lattices: with each such
        size written ``step*k + offset`` (``k`` a whole number, the size at or above its lower
        bound), it simplifies to true, or its two sides differ by a product of known sign.
        Such a condition is still checked, only not printed beside the lattice. With
        ``bounds``, a size with a lower bound and no lattice is written ``lower + k`` too, and
        an inequality holds when its sides differ by a product of known sign
        (``floor(H/8)*Max(1, floor(H/8)) >= Max(1, floor(H/8))`` from ``H >= 8``).

        >>> from symflops.symbols import H
        >>> d = Domain([("t", sp.Eq(sp.Mod(H, 8), 0)),
        ...             ("t", sp.Eq(sp.floor(H/8), sp.floor(H/8 - sp.Rational(1, 8)) + 1))])
        >>> d.describe()
        'H a multiple of 8'
        """
        steps = {s: self.axes[s] for s in cond.free_symbols
                 if s in self.axes and self.axes[s].pinned is None and
                 (self.axes[s].step > 1 or bounds and self.axes[s].lower > 1)}
        if not steps and not bounds:
            return False
        whole = {}
        for s, ax in steps.items():  # s = step*(first + k) + offset, k >= 0, at or above lower
            offset = ax.offset % ax.step
            first = max(0, -(-(ax.lower - offset) // ax.step))
            k = sp.Symbol(f"_{s}_k", integer=True, nonnegative=True)
            whole[s] = ax.step * (first + k) + offset
        try:
            settled = cond.xreplace(whole)
            if isinstance(settled, (sp.Eq, sp.Ne)):  # sides that differ by a signed product
                zero = sp.factor(settled.lhs - settled.rhs).is_zero
                return zero is True if isinstance(settled, sp.Eq) else zero is False
            if bounds and isinstance(settled, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
                above = settled.lhs - settled.rhs if isinstance(settled, (sp.Ge, sp.Gt)) \
                    else settled.rhs - settled.lhs
                above = sp.factor(above)
                return bool((above.is_positive if isinstance(settled, (sp.Gt, sp.Lt))
                             else above.is_nonnegative) is True)
            return bool(settled is sp.true)
        except (TypeError, ValueError, ZeroDivisionError):
            return False

    # -- sorting ---------------------------------------------------------------------
    def _axis(self, s: sp.Symbol) -> _Axis:
        return self.axes.setdefault(s, _Axis(lower=_least(s)))

    def _sort(self, cond: sp.Basic) -> bool:
        """Record ``cond`` on its symbol's axis when it is a bound, a lattice or a pin."""
        syms = cond.free_symbols
        if len(syms) != 1:
            return False
        (s,) = syms
        if isinstance(cond, sp.Eq):
            lattice = _lattice(cond, s)
            if lattice is not None:
                ax = self._axis(s)
                step, offset = lattice
                ax.step, ax.offset = _combine(ax.step, ax.offset, step, offset)
                return True
            if cond.lhs == s and cond.rhs.is_Integer or cond.rhs == s and cond.lhs.is_Integer:
                self._axis(s).pinned = int(cond.rhs if cond.lhs == s else cond.lhs)
                return True
            return False
        bound = _bound(cond, s)
        if bound is None:
            return False
        kind, value = bound
        ax = self._axis(s)
        if kind == "lower":
            ax.lower = max(ax.lower, value)
        elif ax.upper is None or value < ax.upper:
            ax.upper = value
            ax.guarded = cond if cond in self.branched else None
        return True

    # -- questions -------------------------------------------------------------------
    @property
    def symbols(self) -> set[sp.Symbol]:
        """Every symbol a condition mentions."""
        return {s for _, c in self.conditions for s in c.free_symbols}

    def failing(self, mapping: Mapping[sp.Symbol, Any]) -> tuple[str, sp.Basic] | None:
        """The first condition that ``mapping`` (symbols to numbers or expressions) settles
        as false, with where it came from; None when none fails."""
        for where, cond in self.conditions:
            if not cond.free_symbols & set(mapping):
                continue
            try:
                settled = cond.xreplace({s: sp.sympify(v) for s, v in mapping.items()})
            except (TypeError, ValueError, ZeroDivisionError):
                return where, cond  # undefined at this point (a size divided by zero)
            if settled is sp.false:
                return where, cond
        return None

    def contains(self, values: Mapping[Any, Any] | None = None, /, **named: Any) -> bool:
        """Whether the point (symbols or names to ints) meets every condition it settles."""
        return self.failing(self._mapping(values, named)) is None

    def check(self, mapping: Mapping[sp.Symbol, Any], layer: str | None = None) -> None:
        """Raise :class:`OutsideDomain` naming the first failing condition and the fix."""
        bad = self.failing(mapping)
        if bad is None:
            return
        where, cond = bad
        raise OutsideDomain(f"the formula's condition {cond} fails", layer=layer or where,
                            values={str(k): v for k, v in mapping.items()},
                            fix=self.fix_for(cond, mapping),
                            options=self.options_for(cond, mapping))

    def fix_for(self, cond: sp.Basic, mapping: Mapping[sp.Symbol, Any] | None = None) -> str:
        """What to change so that ``cond`` holds (valid neighbours for a lattice)."""
        moved = self._at_the_moved_example(cond, mapping or {})
        if moved is not None:
            return (f"{moved} (the example) the model takes a path that holds only there "
                    f"(torch fixed the size), so the trace moved away from it: give those "
                    f"sizes as ints in the input spec (the others stay symbolic) for the "
                    f"formula at that point")
        syms = cond.free_symbols
        if len(syms) == 1:
            (s,) = syms
            ax = self.axes.get(s)
            value = (mapping or {}).get(s)
            if ax is not None and isinstance(cond, sp.Eq) and _lattice(cond, s) is not None:
                text = f"choose {s} {_lattice_words(ax.step, ax.offset, s)}"
                if value is not None and sp.sympify(value).is_Integer:
                    near = self._neighbours(s, int(value))
                    if near:
                        text += ", e.g. " + " or ".join(str(v) for v in near)
                return text
            if ax is not None and isinstance(cond, sp.Eq):
                site = self.pin_sites.get(s)
                return (f"the model fixes {s} = {ax.pinned}" + (f" (at {site})" if site else "")
                        + ": the formula holds only there")
            bound = _bound(cond, s)
            if bound is not None and bound[0] == "upper" and ax is not None and \
                    ax.guarded is not None and ax.upper == bound[1]:
                return (f"torch takes another code path past {s} = {bound[1]} (its guard "
                        f"{ax.guarded}): trace the model at such a size ({{hints}}) for the "
                        f"formula there")
            if bound is not None and bound[0] == "upper":
                return (f"the formula was verified up to {s} = {bound[1]}, or the model "
                        f"stops there (the notes say which); past it, derive it again over "
                        f"a larger range (trace_factory's verify_up_to=, a fit over larger "
                        f"sizes) or use a model that reaches it")
            if bound is not None and cond in self.tested:
                return (f"below {s} = {bound[1]} the model's code tests the size (no op's "
                        f"output is empty there): it takes another code path or stops at a "
                        f"check; trace at {s} = {bound[1] - 1} ({{hints}}) to see which, "
                        f"or with {{paths}} for one formula across both; or use "
                        f"{s} >= {bound[1]}")
            if bound is not None:
                return f"use a larger {s}: {s} >= {bound[1]}"
            first = _first_meeting(cond, s)
            if first is not None:
                return f"use a larger {s}: {s} >= {first}" if value is None or \
                    not sp.sympify(value).is_Integer or int(value) < first else \
                    f"choose {s} so that {cond} holds"
        if isinstance(cond, sp.Eq) and isinstance(cond.lhs, sp.Mod):
            n, d = cond.lhs.args
            return f"choose {n} a multiple of {d}"
        if isinstance(cond, sp.Ne) and isinstance(cond.lhs, sp.Mod) and cond.rhs == 0:
            n, d = cond.lhs.args
            return (f"the model takes another branch where {d} divides {n}: trace it at such "
                    f"a size ({{hints}}) for that branch's formula, or choose {n} not a "
                    f"multiple of {d}")
        multiples = _multiples_fix(cond, mapping or {})
        if multiples:
            return multiples
        if isinstance(cond, sp.Ne) and cond.rhs == 1 and cond.lhs.is_Symbol:
            return (f"the model takes another code path at {cond.lhs} = 1, where torch "
                    f"assumed {cond.lhs} != 1 (a trace there gives other counts): trace it "
                    f"with {cond.lhs} given as the number 1 in the input spec (a hint of 1 "
                    f"is traced at 2)")
        if isinstance(cond, sp.Ne) and cond.lhs.is_Symbol and _least(cond.lhs) == 0:
            n = cond.lhs  # a count read from the data: its branches were decided at an example
            return (f"the model takes another code path where {n} = {cond.rhs} (a branch "
                    f"torch decided at {n}'s example value): trace it with that example, "
                    f"data_dependent={{{str(n)!r}: (its source, {cond.rhs})}} (its source: "
                    f"the module path or default name it was given), for that path's formula")
        if isinstance(cond, sp.Ne):
            return (f"the model takes another code path where {cond.lhs} = {cond.rhs} (a "
                    f"guard torch recorded, and the cost differs there): trace it with {{hints}} "
                    f"at such a point for the formula of that path")
        return "use larger sizes, more padding or smaller kernels/strides/dilations"

    def _at_the_moved_example(self, cond: sp.Basic, mapping: Mapping[sp.Symbol, Any]
                              ) -> str | None:
        """``"at H = 32"`` when ``mapping`` puts every size in :attr:`moved_from` back at
        its example and ``cond`` is on one of them; else None (another size is why)."""
        moved = self.moved_from
        if not moved or not cond.free_symbols & set(moved):
            return None
        for s, v in moved.items():
            try:  # an int, NumPy's or SymPy's (values are never parsed here)
                same = operator.index(mapping.get(s)) == v  # type: ignore[arg-type]
            except TypeError:
                same = False
            if not same:
                return None
        return "at " + ", ".join(f"{s} = {v}" for s, v in moved.items())

    def options_for(self, cond: sp.Basic, mapping: Mapping[sp.Symbol, Any] | None = None
                    ) -> dict[str, Any]:
        """The options :meth:`fix_for`'s text names, as data: ``hints`` where to trace for
        the other side (past a bound: the size just past it; a branch the model takes
        elsewhere: the point), and ``paths`` to join the paths into one formula.

        >>> from symflops.symbols import H
        >>> d = Domain([("trace", H >= 116)], tested=frozenset({H >= 116}))
        >>> d.options_for(H >= 116, {H: 100})
        {'paths': 'all', 'hints': {'H': 115}}
        """
        text = self.fix_for(cond, mapping)
        options: dict[str, Any] = {"paths": "all"} if "{paths}" in text else {}
        if "{hints}" not in text:
            return options
        if len(cond.free_symbols) == 1:
            (s,) = cond.free_symbols
            bound = _bound(cond, s)
            if bound is not None:  # trace just past the bound: the model's other side
                options["hints"] = {str(s): bound[1] + (1 if bound[0] == "upper" else -1)}
                return options
        point = {str(k): int(v) for k, v in (mapping or {}).items()
                 if sp.sympify(v).is_Integer}
        if point:
            options["hints"] = point
        return options

    def _neighbours(self, s: sp.Symbol, value: int) -> list[int]:
        ax = self.axes[s]
        below = value - (value - ax.offset) % ax.step
        above = below + ax.step
        return [v for v in (below, above) if v >= max(ax.lower, 1) and
                (ax.upper is None or v <= ax.upper) and self._meets(s, v)]

    def _meets(self, s: sp.Symbol, v: int) -> bool:
        return all(c.xreplace({s: sp.Integer(v)}) is not sp.false
                   for _, c in self.conditions if c.free_symbols == {s})

    def range_of(self, symbol: sp.Symbol | str) -> tuple[int, int | None, int, int]:
        """``(lower, upper or None, step, offset)`` of one symbol's values on its own: the
        valid values are ``lower <= v <= upper`` with ``v % step == offset % step``."""
        s = self._symbol(symbol)
        ax = self.axes.get(s) or _Axis(lower=_least(s))
        if ax.pinned is not None:
            return ax.pinned, ax.pinned, 1, 0
        lower = ax.lower
        for _, c in self.other:  # a floor condition on s alone: its first valid value
            if c.free_symbols == {s}:
                first = _first_meeting(c, s)
                if first is not None:
                    lower = max(lower, first)
        lower += (ax.offset - lower) % ax.step
        return lower, ax.upper, ax.step, ax.offset % ax.step

    def points(self, symbol: sp.Symbol | str, lo: int, hi: int) -> list[int]:
        """The values of ``symbol`` in ``[lo, hi]`` that its own conditions allow."""
        s = self._symbol(symbol)
        first, upper, step, _ = self.range_of(s)
        start = max(lo, first)
        start += (first - start) % step
        stop = hi if upper is None else min(hi, upper)
        return [v for v in range(start, stop + 1, step) if self._meets(s, v)]

    def __iter__(self) -> Iterator[sp.Basic]:
        return (c for _, c in self.conditions)

    def __len__(self) -> int:
        return len(self.conditions)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    # -- words -----------------------------------------------------------------------
    def clauses(self) -> list[Clause]:
        r"""The domain as clauses a render prints (in words and in LaTeX), per symbol in
        name order (pinned; lattice; range or lower bound), then the other conditions.

        >>> from symflops.symbols import H, B
        >>> d = Domain([("t", sp.Eq(sp.Mod(H, 32), 0)), ("fit", sp.Le(H, 8192)),
        ...             ("t", sp.Eq(B, 2))])
        >>> [(c.text, c.latex) for c in d.clauses()]  # doctest: +NORMALIZE_WHITESPACE
        [('B = 2 (pinned)', 'B = 2 \\text{ (pinned)}'),
         ('H a multiple of 32', 'H \\equiv 0 \\pmod{32}'),
         ('32 <= H <= 8192 (verified up to 8192)',
          '32 \\leq H \\leq 8192 \\text{ (verified up to 8192)}')]
        """
        from symflops.notation import latex_expr

        out = []
        for s in sorted(self.axes, key=lambda x: x.name):
            ax = self.axes[s]
            name = latex_expr(s)
            if ax.pinned is not None:
                out.append(Clause("pinned", f"{s} = {ax.pinned} (pinned)",
                                  rf"{name} = {ax.pinned} \text{{ (pinned)}}", symbol=s))
                continue
            if ax.step > 1:
                out.append(Clause("lattice", f"{s} {_lattice_words(ax.step, ax.offset, s)}",
                                  rf"{name} \equiv {ax.offset % ax.step} \pmod{{{ax.step}}}",
                                  symbol=s))
            if ax.residues is not None and len(ax.residues[1]) < ax.residues[0]:
                text, tex = _residue_words(s, *ax.residues)
                out.append(Clause("residues", text, tex, symbol=s))
            lo, _, _, _ = self.range_of(s)
            if ax.upper is not None:
                why = "another code path above" if ax.guarded is not None else "verified up to"
                out.append(Clause("range", f"{lo} <= {s} <= {ax.upper} ({why} {ax.upper})",
                                  rf"{lo} \leq {name} \leq {ax.upper} \text{{ ({why} "
                                  rf"{ax.upper})}}", symbol=s))
            elif ax.lower > _least(s) and lo > _least(s) + (ax.offset - _least(s)) % ax.step:
                # at or above the bound, when that is not the lattice's first size anyway
                out.append(Clause("lower", f"{s} >= {lo}", rf"{name} \geq {lo}", symbol=s))
        out += [Clause("other", str(c), latex_expr(c), c) for _, c in self.other]
        return out

    def lattices(self) -> dict[sp.Symbol, tuple[int, int]]:
        """``symbol -> (step, offset)`` of every symbol on a lattice (step > 1) and not
        pinned: what a render may use to print ``floor(H/2)`` as ``H/2``."""
        return {s: (ax.step, ax.offset % ax.step) for s, ax in self.axes.items()
                if ax.step > 1 and ax.pinned is None}

    def describe(self) -> str:
        """The domain in words, one clause per symbol, then the other conditions."""
        parts: list[list[str]] = []
        last: sp.Symbol | None = None
        for clause in self.clauses():  # a symbol's lattice and range in one part
            if clause.symbol is not None and clause.symbol == last:
                parts[-1].append(clause.text)
            else:
                parts.append([clause.text])
            last = clause.symbol
        return "; ".join(", ".join(p) for p in parts) if parts else "every size"

    def __str__(self) -> str:
        return self.describe()

    # -- helpers -----------------------------------------------------------------------
    def _symbol(self, key: sp.Symbol | str) -> sp.Symbol:
        if isinstance(key, sp.Symbol):
            return key
        for s in self.symbols:
            if s.name == key:
                return s
        return sp.Symbol(str(key))

    def _mapping(self, values: Mapping[Any, Any] | None, named: Mapping[str, Any]
                 ) -> dict[sp.Symbol, Any]:
        out: dict[sp.Symbol, Any] = {}
        for key, v in [*(values or {}).items(), *named.items()]:
            out[self._symbol(key)] = sp.Integer(v) if isinstance(v, int) else v
        return out


def as_lattice(cond: sp.Basic) -> sp.Basic:
    """``cond`` in the lattice form :class:`Domain` reads, ``Eq(Mod(s, step), offset)``, when
    it is an equality of sizes with roundings that holds exactly on one lattice of one size
    ``s`` (after dividing out factors that are never 0); else ``cond`` itself. torch writes
    "N is a multiple of 16" as ``Eq(N, 16*floor(N/16 + 15/16))`` (N equals itself padded up).

    Exact, not sampled: both sides are linear in ``s`` and in roundings of linear functions
    of ``s``, so shifting ``s`` by the roundings' common period ``P`` adds a constant to their
    difference; when that constant is 0 the equality is periodic in ``s`` with period ``P``
    and one period of values decides it.

    >>> N, B = sp.symbols("N B", positive=True, integer=True)
    >>> as_lattice(sp.Eq(2048*B*sp.floor(N/16 + sp.Rational(15, 16)), 128*B*N))
    Eq(Mod(N, 16), 0)
    >>> as_lattice(sp.Eq(N, 2*sp.floor(N/2)))
    Eq(Mod(N, 2), 0)
    >>> as_lattice(sp.Eq(N, 3*sp.floor(N/2)))     # holds at N = 0 only: not a lattice
    Eq(N, 3*floor(N/2))
    """
    if not isinstance(cond, sp.Eq) or not cond.has(sp.floor, sp.ceiling):
        return cond
    diff = sp.factor(cond.lhs - cond.rhs)
    keep = [f for f in sp.Mul.make_args(diff)
            if not (f.is_Number and f != 0) and not (f.is_positive and f.free_symbols and
                                                    not f.has(sp.floor, sp.ceiling))]
    e = sp.Mul(*keep)
    if len(e.free_symbols) != 1 or e.has(sp.Mod, sp.Min, sp.Max, sp.Piecewise):
        return cond
    (s,) = e.free_symbols
    period = 1
    for r in e.atoms(sp.floor, sp.ceiling):
        arg = r.args[0]
        if not arg.is_polynomial(s) or sp.Poly(arg, s).degree() > 1:
            return cond
        a = sp.Poly(arg, s).coeff_monomial(s)
        if not a.is_Rational:
            return cond
        period = int(sp.ilcm(period, sp.Rational(a).q))
    rest = e.xreplace({r: sp.Integer(0) for r in e.atoms(sp.floor, sp.ceiling)})
    if not rest.is_polynomial(s) or sp.Poly(sp.expand(rest), s).degree() > 1:
        return cond
    base = period * 4  # past any small-size irregularity: e is exactly periodic above 0
    if e.xreplace({s: base + period}) - e.xreplace({s: base}) != 0:
        return cond
    hits = [v for v in range(period) if e.xreplace({s: base + v}) == 0]
    if not hits or len(hits) == period:
        return cond
    step = hits[1] - hits[0] if len(hits) > 1 else period
    if hits != list(range(hits[0], period, step)) or period % step:
        return cond
    return sp.Eq(sp.Mod(s, step), hits[0])


def _whole_parts_out(e: sp.Basic) -> sp.Basic:
    """``e`` with each floor's and ceiling's whole constant taken out (``floor(x + 111/56)``
    is ``floor(x + 55/56) + 1``), inner first; SymPy takes out only integer constants."""

    def out(r: sp.Basic) -> sp.Basic:
        c = sp.expand(r.args[0]).as_coeff_Add()[0]
        k = sp.floor(c) if c.is_Rational else sp.Integer(0)
        return type(r)(sp.expand(r.args[0] - k)) + k if k else r

    return e.replace(lambda r: isinstance(r, (sp.floor, sp.ceiling)), out)


@functools.lru_cache(maxsize=4096)
def _signed_at_every_k(cond: sp.Rel, specs: tuple[tuple[sp.Symbol, int, tuple[int, ...], int],
                                                  ...]) -> bool:
    """:meth:`Domain._signed_on_residues`'s proof, per remainder combination of ``specs``
    (per size: the size, its step ``L``, the remainders ``r``, its lower bound)."""
    if math.prod(len(r) for _, _, r, _ in specs) > _SIGN_BUDGET:
        return False
    ks = {s: sp.Symbol(f"_{s}_k", integer=True, nonnegative=True) for s, *_ in specs}
    for combo in itertools.product(*(r for _, _, r, _ in specs)):
        at = _polynomial_roundings(cond.xreplace({
            s: step * (ks[s] + max(0, -(-(lower - r) // step))) + r
            for (s, step, _, lower), r in zip(specs, combo, strict=True)}))
        if at is sp.true:
            continue
        if not isinstance(at, sp.Rel) or at.has(sp.floor, sp.ceiling, sp.Mod, sp.Max, sp.Min):
            return False
        d = sp.expand(at.rhs - at.lhs if isinstance(at, (sp.Lt, sp.Le)) else at.lhs - at.rhs)
        if isinstance(at, sp.Ne) and _nonnegative_polynomial(-d):
            d = -d
        strict = not isinstance(at, (sp.Ge, sp.Le))
        constant = d.xreplace({k: 0 for k in ks.values()})
        if not (_nonnegative_polynomial(d) and (constant > 0 if strict else True)):
            return False
    return True


def _polynomial_roundings(e: sp.Basic) -> sp.Basic:
    """``e``, sizes written as polynomials in whole ``k >= 0``, with each rounding that is
    one put as that polynomial, inner first: whole parts out of floors and ceilings
    (:func:`_whole_parts_out`), ratios that cancel (``floor((8k + 4)/(4k + 2))``: 2), and
    ``Mod(n, d)`` as ``n`` where ``0 <= n < d`` for every ``k``."""
    def small_mod(m: sp.Basic) -> sp.Basic:
        n, d = m.args
        return n if _nonnegative_polynomial(n) and \
            _nonnegative_polynomial(sp.expand(d - n - 1)) else m

    def cancels(r: sp.Basic) -> bool:
        return isinstance(r, (sp.floor, sp.ceiling)) and len(r.args[0].free_symbols) == 1 \
            and _no_pole(r.args[0], next(iter(r.args[0].free_symbols)))

    for _ in range(16):  # one nesting level a round
        before = e
        e = _whole_parts_out(e)
        e = e.replace(cancels, lambda r: type(r)(sp.cancel(r.args[0])))
        e = e.replace(lambda m: isinstance(m, sp.Mod), small_mod)
        if e == before:
            break
    return e


def _nonnegative_polynomial(p: sp.Basic) -> bool:
    """``p`` a polynomial in whole ``k >= 0``'s with no negative coefficient (so it is
    never negative); False when not such a polynomial."""
    p = sp.expand(p)
    if p.is_number:
        return bool(p.is_nonnegative)
    try:
        return all(c >= 0 for c in sp.Poly(p, *sorted(p.free_symbols, key=str)).coeffs())
    except sp.PolynomialError:
        return False


#: the most remainder combinations :meth:`Domain._signed_on_residues` reads a condition at
_SIGN_BUDGET = 1024
#: the longest period :meth:`Domain._read_as_residues` reads a condition over
_RESIDUE_BUDGET = 4096
#: the most points :meth:`Domain._implied_on_residues` evaluates a condition at
_GRID_BUDGET = 20000


def _rise(g: sp.Basic, s: sp.Symbol, step: int = 1, budget: int = _RESIDUE_BUDGET
          ) -> tuple[int, sp.Basic] | None:
    """``(P, g(s + P) - g(s))`` for a period ``P`` of ``s`` (a multiple of ``step``) over
    which ``g`` moves by a number (floors and ceilings of ``s/a + b``, ``Mod`` by numbers,
    linear terms; any other sizes held), or None (no such period within ``budget`` steps).

    The candidates are the least common multiple of the denominators, then for floors
    inside floors (``floor(floor(H/8)/2)``) their product: a period, not always the
    shortest (what is read over it says the same).

    >>> from symflops.symbols import H
    >>> _rise(sp.floor(H/4) - 2*sp.floor(H/8), H)
    (8, 0)
    """
    qs = [r.q for r in g.atoms(sp.Rational)] + [m.args[1] for m in g.atoms(sp.Mod)]
    if not all(sp.sympify(q).is_Integer and q > 0 for q in qs):
        return None
    for period in dict.fromkeys((math.lcm(step, *map(int, qs)),
                                 math.lcm(step, math.prod(map(int, qs))))):
        if period // step > budget:
            return None
        try:
            rise = sp.expand(_whole_parts_out(g.xreplace({s: s + period}))
                             - _whole_parts_out(g))
        except (TypeError, ValueError):
            return None
        if rise.is_Number:
            return period, rise
    return None


@functools.lru_cache(maxsize=4096)
def _period_of(cond: sp.Basic, s: sp.Symbol) -> int | None:
    """A period ``P`` of ``cond`` in ``s`` (an integer): its sides' difference is the same
    at ``s + P`` as at ``s`` (:func:`_rise` of 0), or None."""
    if not isinstance(cond, (sp.Eq, sp.Ne, sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return None
    if not cond.has(sp.floor, sp.ceiling, sp.Mod):
        return None
    found = _rise(cond.lhs - cond.rhs, s)
    return found[0] if found is not None and found[1] == 0 else None


@functools.lru_cache(maxsize=4096)
def _residue_set(cond: sp.Basic, s: sp.Symbol, lower: int
                 ) -> tuple[int, frozenset[int]] | None:
    """``(P, remainders by P where cond holds)`` for a condition on ``s`` alone with a period
    ``P`` (:func:`_period_of`), each read at a size of that remainder at or above
    ``lower``; None when it has none or a value is not settled."""
    period = _period_of(cond, s)
    if period is None:
        return None
    base = period * max(1, -(-lower // period))
    holds = set()
    for r in range(period):
        t = exact_value(cond, {s: base + r})
        if not isinstance(t, bool):
            t2 = cond.xreplace({s: sp.Integer(base + r)})
            if not isinstance(t2, sp.logic.boolalg.BooleanAtom):
                return None
            t = t2 is sp.true
        if t:
            holds.add(r)
    return period, frozenset(holds)


@functools.lru_cache(maxsize=4096)
def _without_positive_factors(cond: sp.Basic, periodic: tuple[sp.Symbol, ...]
                              ) -> sp.Basic | None:
    """``cond`` (``Eq``/``Ne`` of two sides) as ``Eq(g, 0)``/``Ne(g, 0)`` without the
    factors of its difference free of ``periodic`` (positive sizes: ``B*X == B*Y`` is
    ``X == Y``); None when such a factor is not positive."""
    g = sp.factor_terms(cond.lhs - cond.rhs)
    factor, g = g.as_independent(*periodic, as_Add=False)
    if factor.is_positive is not True:
        return None
    return sp.Eq(g, 0) if isinstance(cond, sp.Eq) else sp.Ne(g, 0)


@functools.lru_cache(maxsize=4096)
def _holds_per_residue(cond: sp.Basic, s: sp.Symbol, period: int, residues: frozenset[int],
                       lower: int) -> bool:
    """``cond`` (on ``s`` alone) true at every ``s = period*k + r`` at or above ``lower``,
    for each ``r`` in ``residues``: per remainder, the condition in ``k`` (its roundings
    read by :func:`_polynomial_roundings`) settles as true or is proven for every whole
    ``k`` by :func:`_periodic_reading` or :func:`_ratio_reading`."""
    if len(residues) > 64:
        return False
    k = sp.Symbol("_k", integer=True, nonnegative=True)
    for r in sorted(residues):
        first = max(0, -(-(lower - r) // period))
        at = _polynomial_roundings(cond.xreplace({s: period * (k + first) + r}))
        if at is sp.true:
            continue
        if at is sp.false or not isinstance(at, sp.Rel) or at.free_symbols != {k}:
            return False
        if _periodic_reading(at, k, 0, 1, 0) == ("implied", 0):
            continue
        if _ratio_reading(at, k, 0, None) == "implied":
            continue
        return False
    return True


def _no_pole(e: sp.Basic, k: sp.Symbol) -> bool:
    """``e``, a ratio of polynomials in ``k``, has a denominator without a root at any
    whole ``k >= 0`` (so cancelling a common factor changes no value there)."""
    if not e.is_rational_function(k):
        return False
    _, den = sp.fraction(sp.together(e))
    if den.is_number:
        return den != 0
    try:
        roots = sp.Poly(den, k).real_roots()
    except (sp.PolynomialError, NotImplementedError):
        return False
    return all(r < 0 for r in roots)


def _linearizing_period(cond: sp.Basic, s: sp.Symbol) -> int | None:
    """A step ``L`` of ``s`` that moves every floor, ceiling and ``Mod`` containing it by a
    whole number: along each nesting the denominators multiply (``floor(floor(H/8)/2)``
    takes 16), side by side their least common multiple (``floor(H/8) + floor(H/16)``: 16);
    None where ``s`` sits in something else (``Max``, a power of a floor). A rounding of a
    ratio of sizes (``floor(a/b)``, ``b`` not a number) adds nothing: it is not linear in
    ``k`` over any step, and is read per remainder (cancelled) or not at all.

    >>> from symflops.symbols import H
    >>> _linearizing_period(sp.floor(sp.floor(H/8)/2) + sp.ceiling(H/12), H)
    48
    """
    if cond.has(sp.Max, sp.Min):
        return None
    period = 1
    for a in _outermost_roundings(cond, s):
        period = math.lcm(period, _rounding_period(a, s))
        if period > _RESIDUE_BUDGET:
            return None
    return period


def _outermost_roundings(e: sp.Basic, s: sp.Symbol) -> list[sp.Basic]:
    """The floors, ceilings and ``Mod``s of ``e`` containing ``s`` that no other encloses."""
    if isinstance(e, (sp.floor, sp.ceiling, sp.Mod)) and s in e.free_symbols:
        return [e]
    return [r for arg in e.args for r in _outermost_roundings(arg, s)]


def _rounding_period(a: sp.Basic, s: sp.Symbol) -> int:
    """:func:`_linearizing_period` of one rounding: its nested roundings' period times the
    denominators its argument puts on ``s`` and on them (and a ``Mod``'s number)."""
    nested = _outermost_roundings(a.args[0], s)
    if isinstance(a, sp.Mod):
        nested += _outermost_roundings(a.args[1], s)
    period = math.lcm(1, *(_rounding_period(b, s) for b in nested))
    held = {b: sp.Dummy() for b in nested}
    try:
        poly = sp.Poly(sp.expand(a.args[0].xreplace(held)), s, *held.values())
    except sp.PolynomialError:
        return period  # a ratio of sizes
    qs = [int(c.q) for c in poly.coeffs() if c.is_Rational]
    if isinstance(a, sp.Mod):
        if not a.args[1].is_Integer:
            return period
        qs.append(int(a.args[1]))
    return period * math.lcm(1, *qs)


@functools.lru_cache(maxsize=4096)
def _zero_on_residues(cond: sp.Eq, specs: tuple[tuple[sp.Symbol, int, tuple[int, ...], int],
                                                ...]) -> bool:
    """``cond`` (``Eq(g, 0)``) true at every ``s = L*k + r`` of ``specs`` (per symbol: ``s``,
    ``L``, the remainders ``r``, a first size of remainder 0): ``g`` is a polynomial in each
    ``k`` of degree at most the count of ``s``'s factors (a floor counts as one: linear in
    ``k``), so ``g`` zero at that many plus one ``k`` per size, for each remainder, is zero
    for every ``k``. False when not shown (too many points, a value not settled)."""
    g = cond.lhs - cond.rhs
    degrees = []
    for s, _, _, _ in specs:
        # each outermost rounding of s a variable of its own (linear in k: no cancelling
        # between two of them), the degree in s and those together bounds the one in k
        # (xreplace takes the outermost match whole: a floor inside a ceiling goes with it)
        rounded = [a for a in g.atoms(sp.floor, sp.ceiling, sp.Mod) if s in a.free_symbols]
        ts = [sp.Dummy() for _ in rounded]
        flat = sp.expand(g.xreplace(dict(zip(rounded, ts, strict=True))))
        try:
            degree = sp.Poly(flat, s, *ts).total_degree() if flat != 0 else 0
        except sp.PolynomialError:
            return False
        degrees.append(max(int(degree), 0))
    count = math.prod(len(r) for _, _, r, _ in specs) * math.prod(d + 1 for d in degrees)
    if count > _GRID_BUDGET:
        return False
    names = [s for s, _, _, _ in specs]
    axes = [[base + r + joint * j for r in residues for j in range(d + 1)]
            for (_, joint, residues, base), d in zip(specs, degrees, strict=True)]
    for combo in itertools.product(*axes):
        point = dict(zip(names, combo, strict=True))
        t = exact_value(cond, point)
        if t is True:
            continue
        if t is False or cond.xreplace({k: sp.Integer(v) for k, v in point.items()}) \
                is not sp.true:
            return False
    return True


def _fewest(period: int, residues: frozenset[int]) -> tuple[int, frozenset[int]]:
    """``(period, residues)`` with the shortest period that says the same."""
    for p in sorted(d for d in range(1, period + 1) if period % d == 0):
        small = frozenset(r % p for r in residues)
        if all((r % p in small) == (r in residues) for r in range(period)):
            return p, small
    return period, residues


def _residue_words(s: sp.Symbol, period: int, residues: frozenset[int]) -> tuple[str, str]:
    """``H mod 64 in 25..32`` (one run of remainders, 0 read as ``period``) or a list."""
    from symflops.notation import latex_expr

    name = latex_expr(s)
    values = sorted(residues)
    turned = sorted(r or period for r in residues)  # 0 read as ``period``: 57..64
    run = next((v for v in (values, turned) if len(v) > 2 and v[-1] - v[0] == len(v) - 1),
               None)
    if run is not None:
        text = f"{run[0]}..{run[-1]}"
        tex = rf"\{{{run[0]}, \dots, {run[-1]}\}}"
    else:
        text = "{" + ", ".join(map(str, values)) + "}"
        tex = r"\{" + ", ".join(map(str, values)) + r"\}"
    return (f"{s} mod {period} in {text}",
            rf"{name} \bmod {period} \in {tex}")


#: the most residue classes :func:`_periodic_reading` settles one by one
_READING_BUDGET = 20000


def holds_for_every_size(cond: sp.Basic) -> bool:
    """Whether a condition on one size made of floors of ``s/a + b`` and linear terms
    holds at every size ``s >= 1``, read off one period as :func:`_periodic_reading` does
    (False: not shown). Swin's padded window count, ``floor(H/4) <= 7*floor(H/28 +
    6/7)``, is no branch of the model: both sides rise by 7 every 28 sizes.

    >>> from symflops.symbols import H
    >>> holds_for_every_size(sp.floor(H/4) <= 7*sp.floor(H/28 + sp.Rational(6, 7)))
    True
    >>> holds_for_every_size(sp.floor(H/4) <= 7*sp.floor(H/28))
    False
    """
    if len(cond.free_symbols) != 1:
        return False
    (s,) = cond.free_symbols
    return _periodic_reading(cond, s, 1, 1, 0) == ("implied", 0)


@functools.lru_cache(maxsize=4096)
def _periodic_reading(cond: sp.Basic, s: sp.Symbol, lower: int, step: int, offset: int
                      ) -> tuple[str, int] | None:
    """What a condition on ``s`` alone says at the sizes ``v >= lower``, ``v = offset (mod
    step)``, when its two sides' difference ``g`` rises by a constant over a period ``P``
    (``g(s + P) - g(s)`` simplifies to a number: floors of ``s/a + b`` and linear terms):
    ``("implied", 0)`` when it holds at all of them, ``("lower", v)`` or ``("upper", v)``
    when it holds exactly from ``v`` on or up to ``v``; None otherwise.

    Proof: along each residue class modulo ``P`` (and the lattice), ``g`` moves by the same
    number every period, so an inequality's truth changes at most once per class; each
    class's turn is found by evaluating it exactly (integers, no floats), and the reading
    is a bound only when the classes' turns make one contiguous range.

    >>> from symflops.symbols import H
    >>> _periodic_reading(7*sp.floor(H/224 + sp.Rational(55, 56)) <= 7, H, 116, 1, 0)
    ('upper', 227)
    >>> _periodic_reading(sp.floor(H/4) <= 7*sp.floor(H/28 + sp.Rational(6, 7)), H, 1, 1, 0)
    ('implied', 0)
    """
    if not isinstance(cond, (sp.Ge, sp.Gt, sp.Le, sp.Lt, sp.Ne)):
        return None
    if not cond.has(sp.floor, sp.ceiling, sp.Mod):
        return None
    g = cond.lhs - cond.rhs if isinstance(cond, (sp.Ge, sp.Gt, sp.Ne)) else cond.rhs - cond.lhs
    found = _rise(g, s, step, _READING_BUDGET)
    if found is None:
        return None
    period, rise = found
    rising = bool(rise > 0)
    first = lower + (offset - lower) % step
    if isinstance(cond, sp.Ne) and rise != 0:  # g moves away from 0 once past it
        signs = [g.xreplace({s: sp.Integer(v)}) for v in range(first, first + period, step)]
        away = all(v.is_Number and (v > 0 if rising else v < 0) for v in signs)
        return ("implied", 0) if away else None

    def holds(v: int) -> bool | None:  # exact integer arithmetic, else SymPy's substitution
        t = exact_value(cond, {s: v})
        if isinstance(t, bool):
            return t
        t = cond.xreplace({s: sp.Integer(v)})
        return bool(t) if isinstance(t, sp.logic.boolalg.BooleanAtom) else None

    starts = range(first, first + period, step)
    if rise == 0:  # periodic: one period decides
        return ("implied", 0) if all(holds(v) for v in starts) else None
    # Along a class v0, v0 + P, ... an inequality that rises is false and then true for
    # good, one that falls is true and then false: find each class's turn (gallop, halve).
    turns = []
    for v0 in starts:
        at_start = holds(v0)
        if at_start is None:
            return None
        if at_start is rising:  # already past its turn: true (or false) for good
            turns.append(v0 if rising else v0 - period)
            continue
        lo, hi = 0, 1  # periods: holds(v0 + lo*P) is at_start; is hi past the turn?
        while holds(v0 + hi * period) is at_start:
            lo, hi = hi, hi * 2
            if hi > 2**48:
                return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if holds(v0 + mid * period) is at_start else (lo, mid)
        # rising: the class's first true point; falling: its last true point
        turns.append(v0 + hi * period if rising else v0 + lo * period)
    if rising:  # true exactly from the smallest turn on, when no class turns later
        start = min(turns)
        if any(t >= start + period for t in turns):
            return None
        return ("implied", 0) if start == first else ("lower", start)
    end = max(turns)  # true exactly up to the largest turn, when no class turns earlier
    if end < first or any(t <= end - period for t in turns):
        return None
    return ("upper", end)


#: the most whole values a floor of a ratio may take for :func:`_ratio_reading`
_RATIO_BUDGET = 2000


@functools.lru_cache(maxsize=1024)
def _ratio_reading(cond: sp.Basic, s: sp.Symbol, lower: int, upper: int | None) -> str | None:
    """``"implied"`` when ``cond`` holds at every whole ``s`` in ``[lower, upper]`` and ``s``
    appears in it only inside floors and ceilings of ratios ``(a*s + b)/(c*s + d)`` (torch's
    chunk count ``floor((3*B - 1)/B)``); None when that is not proven.

    Proof: on ``s >= lower`` such a ratio has no pole, so it is monotone and moves between
    its value at ``lower`` and ``a/c``: it crosses each whole number ``k`` in between once,
    at ``s = (k*d - b)/(a - k*c)``. Between those crossings every floor and ceiling, and
    so ``cond``, is constant; ``cond`` is evaluated exactly at the first whole size of
    each such stretch.

    >>> from symflops.symbols import B
    >>> _ratio_reading(sp.Eq(sp.floor((3*B - 1)/B), 2), B, 1, None)
    'implied'
    >>> _ratio_reading(sp.Eq(sp.floor((3*B - 5)/B), 2), B, 1, None) is None   # 0 at B = 2
    True
    """
    if not isinstance(cond, (sp.Eq, sp.Ne, sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return None
    rounded = [r for r in cond.atoms(sp.floor, sp.ceiling) if s in r.free_symbols]
    if not rounded or s in cond.xreplace({r: sp.Dummy() for r in rounded}).free_symbols:
        return None
    starts = {lower, *(() if upper is None else (upper,))}
    for r in rounded:
        if r.args[0].free_symbols != {s} or not r.args[0].is_rational_function(s):
            return None  # a floor inside it, or another size
        num, den = sp.fraction(sp.together(r.args[0]))
        pn, pd = sp.Poly(num, s), sp.Poly(den, s)
        if pn.degree() > 1 or pd.degree() != 1:
            return None
        (a, b), (c, d) = [p.all_coeffs() if p.degree() == 1 else [sp.Integer(0), *p.all_coeffs()]
                          for p in (pn, pd)]
        if not all(v.is_Rational for v in (a, b, c, d)) or -d / c >= lower:
            return None  # a pole at or past lower: not monotone there
        ends = sorted([(a * lower + b) / (c * lower + d), a / c])
        ks = range(int(sp.floor(ends[0])), int(sp.ceiling(ends[1])) + 1)
        if len(ks) > _RATIO_BUDGET:
            return None
        for k in ks:
            if a - k * c != 0:
                x = (k * d - b) / (a - k * c)
                starts.update(int(v) for v in (sp.floor(x), sp.floor(x) + 1) if v >= lower)
    for v in sorted(starts):
        if upper is not None and v > upper:
            continue
        if cond.xreplace({s: sp.Integer(v)}) is not sp.true:
            return None
    return "implied"


def _lattice(cond: sp.Eq, s: sp.Symbol) -> tuple[int, int] | None:
    """``Eq(Mod(a*s + b, m), r)`` with integer a, b, m, r as ``(step, offset)``: the values
    of ``s`` it allows form ``offset + step*k`` (None when it is not of that shape or allows
    no integer)."""
    lhs, rhs = cond.lhs, cond.rhs
    if rhs.has(sp.Mod):
        lhs, rhs = rhs, lhs
    k, mod = lhs.as_coeff_Mul()  # SymPy writes Mod(2*H, 6) as 2*Mod(H, 3)
    if not isinstance(mod, sp.Mod) or not rhs.is_Integer or not k.is_Integer or k == 0:
        return None
    if rhs % k != 0:
        return None
    rhs = rhs // k
    inner, m = mod.args
    if not m.is_Integer or m <= 0:
        return None
    poly = sp.Poly(inner, s) if inner.is_polynomial(s) else None
    if poly is None or poly.degree() != 1 or not all(c.is_Integer for c in poly.all_coeffs()):
        return None
    a, b = (int(c) for c in poly.all_coeffs())
    m_, r = int(m), int(rhs)
    hits = [v for v in range(m_) if (a * v + b - r) % m_ == 0]
    if not hits:
        return None
    step = hits[1] - hits[0] if len(hits) > 1 else m_
    return step, hits[0]


def _combine(step1: int, off1: int, step2: int, off2: int) -> tuple[int, int]:
    """Two lattices on one symbol as one (their intersection, when it is one lattice)."""
    from math import lcm

    step = lcm(step1, step2)
    for v in range(off1 % step1, step + off1 % step1, step1):
        if (v - off2) % step2 == 0:
            return step, v % step
    return step, off1  # empty intersection: kept as step; the conditions still refuse


def _bound(cond: sp.Basic, s: sp.Symbol) -> tuple[str, int] | None:
    """A linear bound on ``s`` (``s >= 7``, ``H - 6 >= 1``, ``2*s < 9``, ``H/8 >= 16``,
    either side) as ``("lower"|"upper", the inclusive integer bound)``."""
    if not isinstance(cond, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return None
    diff = sp.expand(cond.lhs - cond.rhs)  # diff (rel) 0
    if not diff.is_polynomial(s):
        return None
    poly = sp.Poly(diff, s)
    if poly.degree() != 1 or not all(c.is_Rational for c in poly.all_coeffs()):
        return None
    scale = math.lcm(*(int(sp.Rational(c).q) for c in poly.all_coeffs()))  # H/8 >= 16
    a, b = (int(c * scale) for c in poly.all_coeffs())
    greater = isinstance(cond, (sp.Ge, sp.Gt))  # a*s + b >= 0 (or >)
    strict = isinstance(cond, (sp.Gt, sp.Lt))
    if a < 0:
        a, b, greater = -a, -b, not greater
    # a*s >= -b (or > -b): s >= ceil(-b/a); a*s <= -b: s <= floor(-b/a)
    if greater:
        return "lower", (-b + (1 if strict else 0) + a - 1) // a
    return "upper", (-b - (1 if strict else 0)) // a


def _multiples_fix(cond: sp.Basic, mapping: Mapping[sp.Symbol, Any]) -> str:
    """For an equality over floors (``H*W == 16*floor(H/4)*floor(W/4)``, what a reshape
    into patches needs): each symbol a multiple of the divisors its floors use, when the
    given point rounded up to those multiples meets it (checked, never guessed)."""
    if not isinstance(cond, sp.Eq) or not cond.has(sp.floor):
        return ""
    steps: dict[sp.Symbol, int] = {}
    for f in cond.atoms(sp.floor):
        arg = f.args[0]
        for s in arg.free_symbols:
            coeff = sp.Poly(arg, s).coeff_monomial(s) if arg.is_polynomial(s) else None
            if coeff is None or not coeff.is_Rational or coeff.q == 1:
                return ""
            from math import lcm

            steps[s] = lcm(steps.get(s, 1), int(coeff.q))
    if not steps or set(steps) != cond.free_symbols:
        return ""
    rounded = {}
    for s, m in steps.items():
        v = sp.sympify(mapping.get(s, m))
        if not v.is_Integer:
            return ""
        rounded[s] = -(-int(v) // m) * m
    if cond.xreplace({s: sp.Integer(v) for s, v in rounded.items()}) is not sp.true:
        return ""
    names = sorted(steps, key=lambda x: x.name)
    words = ", ".join(f"{s} a multiple of {steps[s]}" for s in names)
    example = ", ".join(f"{s}={rounded[s]}" for s in names)
    return f"choose {words} (e.g. {example})"


def _first_meeting(cond: sp.Basic, s: sp.Symbol, limit: int = 4096) -> int | None:
    """The smallest ``s`` in ``1..limit`` meeting an inequality ``cond`` on ``s`` alone (a
    floor expression a strided layer's size condition has), or None."""
    if not isinstance(cond, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return None
    f = sp.lambdify(s, cond, modules=[{"floor": lambda v: v // 1, "ceiling": lambda v: -(-v // 1)},
                                      "math"])
    for v in range(1, limit + 1):
        try:
            if bool(f(sp.Rational(v))):
                return v
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    return None


def _least(s: sp.Symbol) -> int:
    """The least value of a symbol alone: 0 for a count (declared non-negative: a
    data-dependent size, a padding), 1 for a size."""
    return 0 if s.is_nonnegative and not s.is_positive else 1


def _lattice_words(step: int, offset: int, s: sp.Symbol) -> str:
    if offset % step == 0:
        return f"a multiple of {step}"
    return f"= {offset % step} mod {step}"

