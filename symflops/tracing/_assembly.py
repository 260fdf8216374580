"""Assembly: a :class:`Recording` becomes a Cost tree mirroring the module hierarchy.

Torch's guards become the formula's validity (``H >= 7``), dims torch pinned become
``report.fixed``; each recorded op goes through its handler into a leaf whose ``op``
field names the aten op. Every node is built once, bottom up.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp
import torch

from symflops import symbols as S
from symflops.conventions import Convention
from symflops.cost import Cost
from symflops.domain import Domain, as_lattice, holds_for_every_size
from symflops.errors import OutsideDomain, SymflopsError
from symflops.exact import at_point, exact_value
from symflops.formulas.derivation import Derivation
from symflops.tracing import _torch_compat as C
from symflops.tracing._data_dependent import (
    count_conditions,
    describe_counts,
    name_counts,
    refused_at_zero,
)
from symflops.tracing._inputs import TraceContext
from symflops.tracing._recording import ROOT, ModulePath, Record, Recording
from symflops.tracing._saved import saved_memory
from symflops.tracing._shape_rules import RawShape
from symflops.tracing.registry import HANDLERS, OpCall, Part, TShape, op_name

__all__ = ["TraceReport", "TracedCost", "assemble"]


@dataclass
class TraceReport:
    """What a trace saw besides the costs.

    ``unknown``: ops without a handler, by name and count (they add nothing to the
    totals: read the warning); ``zero_cost``: ops known to do no arithmetic;
    ``fixed``: dims the model pins to one value; ``constraints``: equalities torch
    needed to follow the model's code path; ``ranges``: each dim's valid range as torch
    inferred it; ``guards``: every guard torch recorded (user symbols); ``seconds``.
    """

    symbols: dict[str, sp.Symbol] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    unknown: Counter[str] = field(default_factory=Counter)
    unknown_at: dict[str, list[str]] = field(default_factory=dict)
    zero_cost: Counter[str] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)
    fixed: dict[str, int] = field(default_factory=dict)
    constraints: list[sp.Basic] = field(default_factory=list)
    ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    guards: list[sp.Basic] = field(default_factory=list)
    #: guards that chose a branch at the example sizes (settled by a trace of the other side)
    branches: list[sp.Basic] = field(default_factory=list)
    #: the branches kept because a trace on their other side took another code path (not
    #: because that trace failed, at a table's end say): an upper bound among them is where
    #: the model's code path changes
    other_paths: list[sp.Basic] = field(default_factory=list)
    mode: str = "eval"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: whether F.interpolate was rerouted to keep sizes symbolic (see SymbolicResize)
    resize_mode: bool = False
    #: data-dependent sizes (symbols of their own): name -> the op that made it, the module
    #: path, its upper bound, the example value torch decided branches at
    data_dependent: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: lookups of positions in a table that recorded a guard (``_recording.TableCheck``)
    table_checks: list[Any] = field(default_factory=list)
    #: lower bounds of the validity that are tests in the model's code (``if H > 16``),
    #: not an op's size: no op's output is empty just below them (:func:`_code_tests`)
    tested: list[sp.Basic] = field(default_factory=list)
    #: the example sizes the model pinned (a path that holds only there), when the trace
    #: moved away from them (``_run._off_the_pin``): a refused point there says so
    moved_from: dict[str, int] = field(default_factory=dict)
    #: for a dim in ``fixed``: the line of the model's code that fixed it, when torch
    #: replaced the dim by a constant there (``_assert(H == 224)``, ``int(x.shape[-1])``)
    pin_sites: dict[str, str] = field(default_factory=dict)
    #: the dims in ``fixed`` that torch itself replaced by a constant (an ``int()`` of a
    #: size, an equality with a number); the others an equality over several sizes pins
    #: here, which may hold on a range symflops does not read (``_pinned_by``)
    replaced: set[str] = field(default_factory=set)

    def summary(self) -> str:
        """A few readable lines."""
        lines = [f"traced in {self.seconds:.2f} s ({self.mode}); "
                 f"{sum(self.counted.values())} ops counted, "
                 f"{sum(self.zero_cost.values())} zero-cost"]
        if self.unknown:
            lines.append("NOT counted (no handler): " + ", ".join(
                f"{k} x{v}" for k, v in self.unknown.most_common()))
        lines += self.notes
        return "\n".join(lines)


class TracedCost(Cost):
    """The Cost :func:`trace` returns, with the :class:`TraceReport` as ``.report``
    (kept by ``subs``, ``simplify``, ``with_convention`` and ``replace``)."""

    __slots__ = ("report",)
    report: TraceReport

    def __init__(self, *args: Any, report: TraceReport, **fields: Any) -> None:
        super().__init__(*args, **fields)
        object.__setattr__(self, "report", report)  # a Cost's fields are set once, here

    def subs(self, values: Mapping[Any, Any] | None = None, /, **named: Any) -> Cost:
        """:meth:`Cost.subs`, refusing a dim the model fixed (a ViT's position embedding
        fixes ``H = W = 224``: the formula holds only there). Substituting the fixed
        value itself is fine (it changes nothing).

        >>> import torch, symflops as sf
        >>> class Pinned(torch.nn.Module):
        ...     def forward(self, x):
        ...         torch._assert(x.shape[1] == 8, "needs 8")
        ...         return x.relu()
        >>> c = sf.trace(Pinned(), "B H", hints={"H": 8}, warn=False)
        >>> c.subs(H=16)
        Traceback (most recent call last):
        ...
        symflops.errors.OutsideDomain: trace: the model fixes H = 8 (at ...): the traced ...
        """
        keep: dict[Any, Any] = {}
        for key, val in [*(values or {}).items(), *named.items()]:
            name = key if isinstance(key, str) else getattr(key, "name", None)
            if name in self.report.fixed:
                exact = isinstance(val, (int, np.integer, sp.Integer)) and \
                    not isinstance(val, bool)
                self._check_fixed(name, val, exact and int(val) == self.report.fixed[name])
            else:
                keep[key] = val
        return super().subs(keep)

    def evaluate(self, quantity: str = "flops", **values: Any) -> np.ndarray:
        """:meth:`Cost.evaluate`, refusing a dim the model fixed at any other value."""
        keep: dict[str, Any] = {}
        for name, val in values.items():
            if name in self.report.fixed:
                arr = np.asarray(val)
                ok = arr.dtype.kind in "iu" and bool(np.all(arr == self.report.fixed[name]))
                self._check_fixed(name, val, ok)
            else:
                keep[name] = val
        return super().evaluate(quantity, **keep)

    @property
    def domain(self) -> Domain:
        """:attr:`Cost.domain` with the dims the model fixes as pinned values (``B = 2
        (pinned)``): the formula holds only there; and the example the trace moved away
        from (``report.moved_from``), which a refusal there names."""
        pins = [("trace", sp.Eq(self.report.symbols.get(n, S.symbol(n)), v))
                for n, v in self.report.fixed.items()]
        moved = {self.report.symbols.get(n, S.symbol(n)): v
                 for n, v in self.report.moved_from.items()}
        sites = {self.report.symbols.get(n, S.symbol(n)): at
                 for n, at in self.report.pin_sites.items()}
        return Domain([*self._all_validity(), *pins], tested=frozenset(self.report.tested),
                      branched=frozenset(self.report.other_paths), moved_from=moved,
                      pin_sites=sites)

    def _check_fixed(self, name: str, val: Any, same: bool) -> None:
        if not same:
            at = self.report.fixed[name]
            site = self.report.pin_sites.get(name)
            raise OutsideDomain(
                f"the model fixes {name} = {at}" + (f" (at {site})" if site else "") +
                ": the traced formula holds only at that size",
                layer="trace", values={name: val},
                fix=f"trace a model built for that size (a hint is not enough when the model "
                    f"pins the size), or use {name}={at}")


# ----------------------------------------------------------------------------- guards
def _remembered(fn: Any) -> Any:
    """``fn`` (a pure function of SymPy guards, returning a bool) answering each guard once
    per process. Why: every trace classifies every guard torch recorded, and a model's
    guards repeat from one trace to the next (settle's checks, repeated traces) and from
    layer to layer; a classification substitutes, expands and tries points each time.
    Keyed by the guard itself (SymPy's structural equality, assumptions included), so the
    answer is the one ``fn`` gives. A plain function still (doctests are collected)."""
    cached = functools.lru_cache(maxsize=8192)(fn)

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        return cached(*args)

    return call


def _holds_widely(g: sp.Basic, hints: Mapping[str, int]) -> bool:
    """An equality guard torch could not solve: a divisibility-like condition (``H`` even)
    holds at twice and three times the example sizes; a pin (``floor(H/16)**2 == 196``)
    does not."""
    syms = [s for s in g.free_symbols if s.name in hints]
    if len(syms) != len(g.free_symbols):
        return False
    return all(_true_at(g, {s: sp.Integer(k * hints[s.name]) for s in syms}) for k in (2, 3, 5))


def _true_at(g: sp.Basic, point: Mapping[sp.Symbol, sp.Integer]) -> bool:
    """``g`` is true at ``point``; a guard with no value there (a ``Mod`` by a size that is
    0 there: SAM's window count) is not."""
    try:
        return g.xreplace(point) is sp.true
    except ZeroDivisionError:
        return False


def _rises_with(e: sp.Basic) -> bool:
    """Whether ``e`` is built of one size, numbers, sums, products by positive numbers and
    floors/ceilings of such (non-decreasing in the size)."""
    if e.is_Symbol or e.is_Number:
        return True
    if isinstance(e, (sp.floor, sp.ceiling)):
        return _rises_with(e.args[0])
    if e.is_Add:
        return all(_rises_with(a) for a in e.args)
    if e.is_Mul:
        coeff, rest = e.as_coeff_Mul()
        return bool(coeff > 0) and not rest.is_Mul and _rises_with(rest)
    return False


def _as_interval(g: sp.Eq, hints: Mapping[str, int], limit: int = 1 << 24
                 ) -> list[sp.Basic] | None:
    """An equality guard on one size whose side is non-decreasing in it and whose other
    side is a number (``ceiling(W/512) == 1``: SSD's last feature map a single cell) as
    the interval of sizes where it holds (``W <= 512``), found by searching from the
    example size, which satisfies it; None for any other guard.

    >>> W = sp.Symbol("W", positive=True, integer=True)
    >>> _as_interval(sp.Eq(sp.ceiling(W / 512), 1), {"W": 320})
    [W <= 512]
    >>> _as_interval(sp.Eq(sp.floor(W / 16), 14), {"W": 224})
    [W >= 224, W <= 239]
    """
    if len(g.free_symbols) != 1:
        return None
    (size,) = g.free_symbols
    if size.name not in hints:
        return None
    lhs, rhs = (g.lhs, g.rhs) if g.rhs.is_Number else (g.rhs, g.lhs)
    if not rhs.is_Number or not _rises_with(lhs) or lhs.is_Symbol:
        return None

    def holds(n: int) -> bool:
        return bool(lhs.xreplace({size: sp.Integer(n)}) == rhs)

    at = hints[size.name]
    if not holds(at):
        return None
    out: list[sp.Basic] = []
    for step in (-1, 1):  # the run of sizes around the example: gallop out, then bisect
        inside, jump = at, 1
        outside: int | None = None
        while outside is None:
            probe = inside + step * jump
            if probe < 1:
                outside = 0  # sizes are at least 1
            elif probe > limit:
                break  # holds as far as we look: no upper bound
            elif holds(probe):
                inside, jump = probe, 2 * jump
            else:
                outside = probe
        if outside is None:
            continue
        while abs(outside - inside) > 1:
            mid = (inside + outside) // 2
            inside, outside = (mid, outside) if holds(mid) else (inside, mid)
        if step < 0 and inside > 1:
            out.append(sp.Ge(size, inside))
        elif step > 0:
            out.append(sp.Le(size, inside))
    return out


def _one_size_terms(e: sp.Basic, size: sp.Symbol) -> list[sp.Basic] | None:
    """The largest parts of ``e`` in ``size`` alone that never decrease as it grows
    (:func:`_rises_with`) and are not the bare size (``floor(W/224 + 55/56)`` in
    ``Max(1, floor(W/224 + 55/56))``); None when ``size`` appears bare (no interval of
    it leaves that part constant)."""
    if e.free_symbols == {size} and _rises_with(e) and not e.is_Symbol:
        return [e]
    if e == size:
        return None
    out: list[sp.Basic] = []
    for a in e.args:
        if size in a.free_symbols:
            inner = _one_size_terms(a, size)
            if inner is None:
                return None
            out += inner
    return out


def _at_least(g: sp.Basic) -> sp.Basic:
    """``Max(a, x) == x`` as ``x >= a`` (exact for a number ``a``); else ``g``. What is
    left of a view check once the window columns are known: ``Max(1, n) == n``."""
    if not isinstance(g, sp.Eq):
        return g
    kept = _zero_factors(g)
    if len(kept) != 1:
        return g
    for sign in (1, -1):
        d = sp.expand(sign * kept[0])
        for m in d.atoms(sp.Max):
            numbers = [a for a in m.args if a.is_Number]
            if len(m.args) != 2 or len(numbers) != 1:
                continue
            (x,) = [a for a in m.args if not a.is_Number]
            if sp.expand(d - (m - x)) == 0:
                return sp.Ge(x, numbers[0])
    return g


def _in_words_of(term: sp.Basic, value: sp.Basic, bound: sp.Basic) -> sp.Basic:
    """``bound`` (``W <= 227``, where ``term`` keeps ``value``) as the guard it comes from,
    ``floor(W/224 + 55/56) <= 1``, when :class:`Domain` reads that as the same bound (and
    then says another code path lies past it); else ``bound``."""
    (size,) = bound.free_symbols
    upper = isinstance(bound, sp.Le)
    guard = sp.Le(term, value) if upper else sp.Ge(term, value)
    read = Domain([("guard", guard)]).range_of(size)
    return guard if read[1 if upper else 0] == int(bound.rhs) else bound


def _split_interval(g: sp.Eq, hints: Mapping[str, int]) -> list[sp.Basic] | None:
    """An equality in several sizes read as an interval of one size and what it leaves of
    the others, or None.

    torch's check that a permuted tensor can be viewed (Swin's windows: the view holds when
    the last stage has one window column) records
    ``Eq(37632*Max(1, nH)*Max(1, nW), 37632*nH)`` with ``nW = floor(W/224 + 55/56)``:
    it does not hold for every ``H`` with ``W`` alone pinned (``nH = 0`` below ``H = 4``),
    so :func:`_pinned_by` pins both. For each size ``s`` in turn: the largest parts of
    ``g`` in ``s`` alone that never decrease (:func:`_one_size_terms`) keep their example
    values on an interval of ``s`` (each part's :func:`_as_interval`, intersected), and
    there ``g`` is exactly ``g`` with those values put in (a proof, not a sample: a
    non-decreasing part equal at both ends is constant between). When that interval is
    :func:`_wide` or reaches down to half the example size (``4 <= W <= 115`` at 115: stage
    3's one window column) and what is left holds widely (:func:`_holds_widely`, kept as a
    condition) or is true, the conditions are the interval (as bounds of the parts,
    ``nW <= 1``, which :class:`Domain` reads as ``W <= 227``, another code path past it) and
    what is left.

    >>> H, W = sp.symbols("H W", positive=True, integer=True)
    >>> nH, nW = (sp.floor(s / 224 + sp.Rational(55, 56)) for s in (H, W))
    >>> _split_interval(sp.Eq(37632*sp.Max(1, nH)*sp.Max(1, nW), 37632*nH),
    ...                 {"H": 256, "W": 224})
    [floor(W/224 + 55/56) >= 1, floor(W/224 + 55/56) <= 1, floor(H/224 + 55/56) >= 1]
    >>> _split_interval(sp.Eq(H*W, 50176), {"H": 256, "W": 224}) is None   # a pin
    True
    >>> grid = sp.Eq(sp.floor(H/16)*sp.floor(W/16), 14*sp.floor(W/16))  # 224 <= H <= 239
    >>> _split_interval(grid, {"H": 224, "W": 224}) is None   # narrow: stays a pin
    True
    """
    if len(g.free_symbols) < 2 or any(s.name not in hints for s in g.free_symbols):
        return None
    for s in sorted(g.free_symbols, key=lambda x: x.name):
        terms = _one_size_terms(g, s)
        if not terms:
            continue
        at = {s: sp.Integer(hints[s.name])}
        lo, hi = 1, None
        values: dict[sp.Basic, sp.Basic] = {}
        said: list[sp.Basic] = []
        for t in dict.fromkeys(terms):
            values[t] = t.xreplace(at)
            interval = _as_interval(sp.Eq(t, values[t]), {s.name: hints[s.name]})
            if interval is None:
                break
            for c in interval:
                if isinstance(c, sp.Ge):
                    lo = max(lo, int(c.rhs))
                else:
                    hi = int(c.rhs) if hi is None else min(hi, int(c.rhs))
                said.append(_in_words_of(t, values[t], c))
        else:
            box = ([sp.Ge(s, lo)] if lo > 1 else []) + ([sp.Le(s, hi)] if hi is not None
                                                         else [])
            if not box or not (_wide(box, hints) or lo <= hints[s.name] // 2):
                continue  # narrow (a grid's 16 <= H <= 19) unless it reaches half the size
            box = list(dict.fromkeys(said))
            rest = g.xreplace(values)
            if s in rest.free_symbols:
                continue
            if rest is sp.true:
                return box
            if rest is sp.false:
                continue
            if _holds_widely(rest, hints):
                return [*box, _at_least(rest)]
            if isinstance(rest, sp.Eq):
                more = _split_interval(rest, hints)
                if more is not None:
                    return [*box, *more]
    return None


def _box(intervals: Any) -> dict[sp.Symbol, tuple[int, int]]:
    """The sizes' ranges from :func:`_as_interval`'s conditions (a size with no upper bound
    is left out)."""
    lo: dict[sp.Symbol, int] = {}
    hi: dict[sp.Symbol, int] = {}
    for interval in intervals:
        for c in interval:
            (size,) = c.free_symbols
            if isinstance(c, sp.Ge):
                lo[size] = max(lo.get(size, 1), int(c.rhs))
            else:
                hi[size] = min(hi.get(size, int(c.rhs)), int(c.rhs))
    return {s: (lo.get(s, 1), hi[s]) for s in hi}


def _holds_on_box(g: sp.Eq, box: Mapping[sp.Symbol, tuple[int, int]]) -> bool:
    """Whether an equality in several sizes holds on all of ``box``: its side is a product
    or sum of terms non-decreasing in each size (:func:`_rises_with`) and positive, so it
    holds at every point when it holds at the lowest and the highest corner."""
    kept = _zero_factors(g)  # 4 B x == 4 B is x == 1
    if len(kept) != 1:
        return False
    const, lhs = kept[0].as_coeff_Add()
    rhs = -const
    if not lhs.free_symbols or not lhs.free_symbols <= set(box):
        return False
    factors = lhs.args if lhs.is_Mul else (lhs,)
    if not all(f.is_Number and f > 0 or (_rises_with(f) and len(f.free_symbols) == 1)
               for f in factors):
        return False
    for corner in (0, 1):
        at = {s: sp.Integer(box[s][corner]) for s in lhs.free_symbols}
        if any(not (f.xreplace(at) > 0) for f in factors) or lhs.xreplace(at) != rhs:
            return False
    return True


def _wide(interval: list[sp.Basic], hints: Mapping[str, int]) -> bool:
    """Whether an interval from :func:`_as_interval` is at least as wide as the example
    size (SSD's ``W <= 512`` traced at 320), so that a formula on it is worth more than a
    trace elsewhere; a narrow one (a position grid's ``16 <= H <= 19``) stays a pin, which
    the trace then moves off (:func:`symflops.tracing._run._off_the_pin`)."""
    (size,) = set().union(*(c.free_symbols for c in interval))
    lo = max([int(c.rhs) for c in interval if isinstance(c, sp.Ge)], default=1)
    hi = min([int(c.rhs) for c in interval if isinstance(c, sp.Le)], default=None)
    return hi is None or hi - lo + 1 >= hints[size.name]


def _pinned_by(g: sp.Eq, hints: Mapping[str, int] | None = None) -> set[sp.Symbol]:
    """The sizes an equality guard really pins: its free symbols once the factors that
    cannot be 0 are divided out. A reshape that mentions the batch records
    ``128*B*X == 25088*B`` (LeViT: ``X`` the patch count), which is ``X == 196`` for every
    ``B >= 1``; the batch stays symbolic.

    With the example sizes ``hints``, a size is also left free when the guard holds at
    every value of it once the sizes that do move it are pinned at theirs: GCViT's global
    query (a 7 x 7 grid only at 224) repeated over the windows records
    ``B == floor(B*ceiling(H/32)*ceiling(W/32)/49)``, which is ``B == B`` at H = W = 224.

    >>> B, H = sp.symbols("B H", positive=True, integer=True)
    >>> sorted(_pinned_by(sp.Eq(128*B*H, 25088*B)), key=str)
    [H]
    >>> sorted(_pinned_by(sp.Eq(B*H, 392)), key=str)
    [B, H]
    >>> g = sp.Eq(B, sp.floor(B*sp.ceiling(H/32)**2/49))
    >>> sorted(_pinned_by(g), key=str), sorted(_pinned_by(g, {"B": 2, "H": 224}), key=str)
    ([B, H], [H])
    >>> sorted(_pinned_by(sp.Eq(B*H, 448), {"B": 2, "H": 224}), key=str)
    [B, H]
    """
    kept = _zero_factors(g)
    syms = set().union(*(f.free_symbols for f in kept)) if kept else set(g.free_symbols)
    if hints is None or len(syms) < 2 or any(s.name not in hints for s in syms):
        return syms
    at = {s: sp.Integer(hints[s.name]) for s in syms}

    def moves(s: sp.Symbol) -> bool:  # the guard fails with ``s`` alone moved
        for k in (2, 3, 5):
            try:
                if g.xreplace({**at, s: sp.Integer(k * hints[s.name])}) is not sp.true:
                    return True
            except (TypeError, ValueError, ZeroDivisionError):
                return True
        return False

    moving = {s for s in syms if moves(s)}
    # the fewest sizes that, pinned at their example values, make the guard hold at every
    # value of the others (those that move it first)
    order = sorted(syms, key=lambda s: (s not in moving, s.name))
    for n in range(1, len(syms)):
        for pinned in itertools.combinations(order, n):
            try:
                rest = g.xreplace({s: at[s] for s in pinned})
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if rest is sp.true:
                return set(pinned)
    return syms


def _zero_factors(g: sp.Eq) -> list[sp.Expr]:
    """The factors of ``lhs - rhs`` that can be 0, those that cannot (sizes, numbers)
    divided out."""
    _coeff, factors = sp.factor_terms(g.lhs - g.rhs).as_coeff_mul()
    return [f for f in factors if not _never_zero(f)]


def _never_zero(f: sp.Expr) -> bool:
    """A size symbol or a positive power of one (sizes are at least 1)."""
    base = f.base if f.is_Pow and f.exp.is_Integer and f.exp > 0 else f
    return bool(base.is_Symbol)


@_remembered
def _lower_bound(g: sp.Basic) -> bool:
    """``expr >= c`` with the dims in ``expr``: a size condition (kernel fits, output
    >= 1). Upper bounds come from backend heuristics (e.g. a batch-size cutoff for a
    kernel choice) and stay in ``report.guards``."""
    if g.has(sp.Mod):  # a residue test (``Mod(N, 16) > 0``: N off a lattice) is a branch
        return False
    if isinstance(g, (sp.Ge, sp.Gt)):
        side, other = g.lhs, g.rhs
    elif isinstance(g, (sp.Le, sp.Lt)):
        side, other = g.rhs, g.lhs
    else:
        return False
    if not side.free_symbols or other.free_symbols:
        return False
    # ``-N > -512`` (XLNet) is ``N < 512`` written the other way round: an upper bound,
    # a branch whose other side settle traces
    return not (isinstance(side, sp.Mul) and side.as_coeff_Mul()[0] < 0 or
                isinstance(side, sp.Add) and all(a.as_coeff_Mul()[0] < 0
                                                 for a in side.args if a.free_symbols))


@_remembered
def _always(g: sp.Basic) -> bool:
    """``g`` holds at every size: a comparison whose two sides differ by floors and
    ceilings of ``integer / q`` and a constant, with each rounding bounded by its argument
    (``floor(y) >= y - (q - 1)/q``, ``ceiling(y) <= y + (q - 1)/q``) on the side that
    matters: ``N <= 16*floor(N/16 + 15/16)`` (a size padded up to a multiple of 16).

    >>> N = sp.Symbol("N", positive=True, integer=True)
    >>> _always(sp.Le(N, 16*sp.floor(N/16 + sp.Rational(15, 16))))
    True
    >>> _always(sp.Le(N, 16*sp.floor(N/16)))
    False
    >>> _always(sp.Ge(-sp.ceiling(N/2) + 2*sp.ceiling(sp.ceiling(N/2)/2) + 3, 0))
    True
    """
    if not isinstance(g, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return False
    big, small = (g.lhs, g.rhs) if isinstance(g, (sp.Ge, sp.Gt)) else (g.rhs, g.lhs)
    least = sp.expand(big - small)  # g holds when it is >= 0 (> 0 if strict)
    for _ in range(8):  # nested roundings (a size halved twice) one level per pass
        if least.is_Number:
            break
        bounded: dict[sp.Basic, sp.Expr] = {}
        for term, coeff in least.as_coefficients_dict().items():
            if isinstance(term, (sp.floor, sp.ceiling)):
                y = term.args[0]
                num, den = sp.fraction(sp.together(y))
                if not (den.is_Integer and den > 0 and sp.expand(num).is_integer):
                    return False
                slack = sp.Rational(int(den) - 1, int(den))
                lower = isinstance(term, sp.floor) == bool(coeff > 0)  # bound from below?
                bounded[term] = (y - slack if isinstance(term, sp.floor) else y) if lower \
                    else (y if isinstance(term, sp.floor) else y + slack)
            elif term.has(sp.floor, sp.ceiling, sp.Mod):
                return False
        if not bounded:
            return False
        least = sp.expand(least.xreplace(bounded))  # never above the difference
    if not least.is_Number:
        return False
    return bool(least > 0) if isinstance(g, (sp.Gt, sp.Lt)) else bool(least >= 0)


@_remembered
def _size_not_one(g: sp.Basic) -> bool:
    """``B > 1`` or ``8*B*N > 8``: torch's 0/1-specialization checks on sizes (a size or
    numel is not 1), not a condition of the formula; also of derived sizes, each floor or
    ceiling taken as a size of its own (``B*ceiling(N/8) > 1``: the number of chunks)."""
    rounded = g.atoms(sp.floor, sp.ceiling)
    if rounded:
        sizes = {r: sp.Symbol(f"_size{i}", positive=True, integer=True)
                 for i, r in enumerate(rounded)}
        return any(_monomial_not_one(g.xreplace({r: a + shift for r, a in sizes.items()}))
                   for shift in (0, -1))
    return _monomial_not_one(g)


def _monomial_not_one(g: sp.Basic) -> bool:
    if not isinstance(g, (sp.Gt, sp.Ge, sp.Lt, sp.Le)):
        return False
    lhs, rhs = (g.lhs, g.rhs) if isinstance(g, (sp.Gt, sp.Ge)) else (g.rhs, g.lhs)
    coeff, mono = sp.sympify(lhs).as_coeff_Mul()
    if not (coeff.is_Integer and coeff > 0 and rhs.is_Integer):
        return False
    if not all(f.is_Symbol or (f.is_Pow and f.base.is_Symbol) for f in sp.Mul.make_args(mono)):
        return False
    strict = isinstance(g, (sp.Gt, sp.Lt))
    if g.xreplace({v: sp.Integer(1) for v in g.free_symbols}) is sp.true:
        return True  # a positive monomial that holds at all ones holds everywhere
    return bool(rhs == coeff) if strict else bool(rhs == 2 * coeff)


def _conditions(env: C.SymEnv, smap: C.SymbolMap, ctx: TraceContext,
                symbols: Mapping[str, sp.Symbol], report: TraceReport) -> list[sp.Basic]:
    """Torch's guards sorted into ``report`` (fixed dims, constraints, ranges, guards);
    returns the validity of the formula (lower bounds and conditions that hold widely)."""
    fixed = env.fixed()
    report.replaced = set(fixed)
    torch_guards = env.guards()
    guards = [smap(g) for g in torch_guards]
    report.guards = guards
    pin_sites = dict(env.pin_sites)  # and below, the line of an equality that pins a dim
    equality_sites = {g: env.equality_sites[t] for t, g in zip(torch_guards, guards, strict=True)
                      if t in env.equality_sites}
    constraints = [g for g in guards if isinstance(g, sp.Eq) and g.free_symbols]
    report.constraints = constraints
    conditions: list[sp.Basic] = []  # equalities that hold at many sizes (H even, say)
    intervals = {g: i for g in constraints
                 for i in [_as_interval(g, ctx.hint_of)] if i is not None and _wide(
                     i, ctx.hint_of)}
    box = _box(intervals.values())
    for g in constraints:
        if _holds_widely(g, ctx.hint_of):
            conditions.append(g)
            continue
        if g in intervals:  # a range of sizes takes this path, not one size
            conditions.extend(intervals[g])
            continue
        if _holds_on_box(g, box):  # implied by the intervals (SSD: H's times W's cells)
            continue
        split = _split_interval(g, ctx.hint_of)
        if split is not None:  # an interval of one size, and what it leaves (Swin's views)
            conditions.extend(split)
            continue
        # in the inputs' order: a set of Symbols iterates in their hashes' order, which
        # changes with the process's hash seed (the note said H, W or W, H by chance)
        for s in sorted(_pinned_by(g, ctx.hint_of), key=lambda s: (
                list(symbols).index(s.name) if s.name in symbols else len(symbols), s.name)):
            if s.name in ctx.hint_of and s.name not in fixed:
                fixed[s.name] = ctx.hint_of[s.name]
                if g in equality_sites:
                    pin_sites.setdefault(s.name, equality_sites[g])
    pins = _pins(fixed, symbols)
    # a condition on pinned sizes only holds there (LeViT's patch count a multiple of 14)
    conditions = list(dict.fromkeys(  # "N a multiple of 16" in the form Domain reads
        as_lattice(c) for c in (c.xreplace(pins) for c in conditions)
        if c is not sp.true and not _holds_at_every_size(c, {})))
    if conditions:
        report.notes.append("the traced code path needs " + "; ".join(
            str(c) for c in conditions) + " (kept as conditions of the formula)")
    report.fixed = fixed
    report.pin_sites = {n: pin_sites[n] for n in fixed if n in pin_sites}
    if fixed:
        msg = ("the model fixes " + ", ".join(f"{n} = {v}" for n, v in fixed.items()) +
               (" (it requires " + "; ".join(str(c) for c in constraints) + ")"
                if constraints else "") +
               ": the result holds only at that size; the other dims stay symbolic" +
               pinned_where(report.pin_sites))
        report.notes.append(msg)
        report.warnings.append(msg)
    report.ranges = ranges = env.ranges()
    validity: list[sp.Basic] = list(conditions)
    known = {**_facts(conditions), **pins}  # what a guard is read with
    for g in guards:  # the inequalities the traced code path needs, e.g. H >= 7
        if _lower_bound(g) and not _size_not_one(g):
            g = g.xreplace(pins)
            if g is not sp.true and g not in validity:
                validity.append(g)
        elif _branch(g, known, constraints):
            report.branches.append(g.xreplace(pins))
    for n, (lo, _hi) in ranges.items():  # torch's default lower bound for a size is 2
        if n in fixed:
            continue
        if lo > 2 and sp.Ge(symbols[n], lo) not in validity and \
                not _turns_at(report.branches, symbols[n], lo):
            validity.append(sp.Ge(symbols[n], lo))
    return _without_implied(validity)


def pinned_where(sites: Mapping[str, str]) -> str:
    """The sentence a pin's note ends with: where the model's code fixed each dim.

    >>> pinned_where({"H": "net.py:12: _assert(H == 224)", "W": "net.py:13: ..."})
    ' (H at net.py:12: _assert(H == 224); W at net.py:13: ...)'
    """
    return " (" + "; ".join(f"{n} at {at}" for n, at in sites.items()) + ")" if sites else ""


def _turns_at(branches: list[sp.Basic], s: sp.Symbol, lo: int) -> bool:
    """Whether a branch on ``s`` alone turns true at ``lo``: torch narrowed the size's
    range to ``s >= lo`` by that branch (Mistral's ``-N <= -15`` under a sliding window
    of 16), which :func:`symflops.tracing._branches.settle` checks on its other side; the
    range is no lower bound of its own, or it would keep settle from looking below ``lo``.

    >>> N = sp.Symbol("N", positive=True, integer=True)
    >>> _turns_at([sp.Le(-N, -15)], N, 15), _turns_at([sp.Le(-N, -15)], N, 16)
    (True, False)
    """
    return any(g.free_symbols == {s} and g.xreplace({s: sp.Integer(lo)}) is sp.true
               and g.xreplace({s: sp.Integer(lo - 1)}) is sp.false for g in branches)


def _code_tests(root: TracedCost, report: TraceReport, op_guards: set[int]
                ) -> list[sp.Basic]:
    """The lower bounds on one size in ``root``'s validity that a test in the model's code
    recorded (``if H > 16``, an ``assert``; a guard torch recorded between ops, not inside
    one) and below which no op's output loses its last element (every output size that is
    >= 1 at the example still is just below the bound, the other sizes at their examples).
    An op that needs the size (a kernel that must fit, a reflection pad) records its guard
    inside the op or empties its output below it. Domain's fix then says that below such a
    bound the model takes another code path or stops at a check of its own."""
    symbols = {s.name: s for s in report.symbols.values()}
    at = {symbols[n]: v for n, v in report.hints.items() if n in symbols}
    between = [g for i, g in enumerate(report.guards) if i not in op_guards
               and len(g.free_symbols) == 1 and _lower_bound(g)]
    bounds = [g for g in root.validity if _lower_bound(g) and len(g.free_symbols) == 1
              and next(iter(g.free_symbols)) in at]
    if not bounds or not between:
        return []
    dims = {d for _, leaf in root.leaves() for d in leaf.output_shape
            if isinstance(d, sp.Expr) and d.free_symbols}
    out = []
    for g in bounds:
        (s,) = g.free_symbols
        lower = Domain([("trace", g)]).range_of(s)[0]
        if lower <= 1 or at[s] < lower or not any(
                t.free_symbols == {s} and Domain([("trace", t)]).range_of(s)[0] == lower
                for t in between):
            continue
        below = {**at, s: lower - 1}
        emptied = False
        for d in dims:
            if s not in d.free_symbols:
                continue
            there, here = exact_value(d, below), exact_value(d, at)
            if isinstance(here, (int, Fraction)) and isinstance(there, (int, Fraction)) \
                    and here >= 1 > there:
                emptied = True
                break
        if not emptied:
            out.append(g)
    return out


def _without_implied(validity: list[sp.Basic]) -> list[sp.Basic]:
    """``validity`` without the lower bounds that its single-symbol bounds already imply:
    ``2048*B*ceiling(N/16) >= 2`` (torch's 0/1 check of a derived size) holds wherever
    ``B >= 1, N >= 4`` do, because its left side never decreases as a size grows
    (:func:`_nondecreasing`) and holds at the smallest sizes. A bound that fails at the
    smallest sizes (``floor(H/16) >= 1`` with only ``H >= 1`` known) is kept.

    >>> B, N = sp.symbols("B N", positive=True, integer=True)
    >>> _without_implied([sp.Ge(N, 4), sp.Ge(2048*B*sp.floor(N/16 + sp.Rational(15, 16)), 2),
    ...                   sp.Ge(B*sp.ceiling(N/16) + N, 6), sp.Ge(sp.floor(N/16), 1)])
    [N >= 4, B*ceiling(N/16) + N >= 6, floor(N/16) >= 1]
    """
    lows: dict[sp.Symbol, sp.Integer] = {}
    for c in validity:
        if isinstance(c, sp.Ge) and isinstance(c.lhs, sp.Symbol) and c.rhs.is_Integer:
            lows[c.lhs] = max(lows.get(c.lhs, sp.Integer(1)), c.rhs)
    kept = []
    for c in validity:
        if not (isinstance(c, sp.Ge) and isinstance(c.lhs, sp.Symbol)) and \
                (_holds_at_every_size(c, lows) or _always(c)):
            continue
        if not (isinstance(c, sp.Ge) and isinstance(c.lhs, sp.Symbol)) and _lower_bound(c):
            side = c.lhs if isinstance(c, (sp.Ge, sp.Gt)) else c.rhs
            corner = {s: lows.get(s, sp.Integer(1)) for s in side.free_symbols}
            if _nondecreasing(side, corner) and c.xreplace(corner) is sp.true:
                continue
        kept.append(c)
    return kept


def _holds_at_every_size(g: sp.Basic, lows: Mapping[sp.Symbol, sp.Integer]) -> bool:
    """``g`` is true for all integer sizes at or above ``lows`` (1 where not given), as SymPy
    decides it with every size a positive integer and every rounding of sizes that is >= 1
    at ``lows`` (and never decreases) a positive integer of its own: torch's
    ``Eq(4*Max(1, 8*ceiling(N/8)), 32*ceiling(N/8))`` or ``Ne(ceiling(N/8), 8*ceiling(N/8))``.

    >>> N = sp.Symbol("N", positive=True, integer=True)
    >>> c = sp.floor(N/8 + sp.Rational(7, 8))
    >>> _holds_at_every_size(sp.Eq(4*sp.Max(1, 8*c), 32*c), {})
    True
    >>> _holds_at_every_size(sp.Eq(4*sp.Max(1, 8*sp.floor(N/8)), 32*sp.floor(N/8)), {})
    False
    """
    return _holds_above(g, frozenset(lows.items()))


@_remembered
def _holds_above(g: sp.Basic, lows: frozenset[tuple[sp.Symbol, sp.Integer]]) -> bool:
    """:func:`_holds_at_every_size` with ``lows`` as a set of pairs (a key to remember)."""
    if not isinstance(g, (sp.Eq, sp.Ne, sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return False
    low = dict(lows)
    corner = {s: low.get(s, sp.Integer(1)) for s in g.free_symbols}
    sizes = {s: sp.Symbol(s.name, positive=True, integer=True) for s in g.free_symbols}
    rounded: dict[sp.Basic, sp.Symbol] = {}
    floors: dict[sp.Symbol, sp.Integer] = {}  # each rounding's symbol and its least value
    for i, r in enumerate(g.atoms(sp.floor, sp.ceiling)):
        if _nondecreasing(r, corner) and bool(r.xreplace(corner) >= 1):
            rounded[r] = sp.Symbol(f"_rounded{i}", positive=True, integer=True)
            floors[rounded[r]] = sp.Integer(r.xreplace(corner))
    try:
        flat = g.xreplace(rounded).xreplace(sizes)
        if flat is sp.true:
            return True
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    if not isinstance(flat, (sp.Ge, sp.Gt, sp.Le, sp.Lt)):
        return False
    least = {**{sizes[s]: corner[s] for s in sizes}, **floors}
    gap = flat.lhs - flat.rhs if isinstance(flat, (sp.Ge, sp.Gt)) else flat.rhs - flat.lhs
    return _positive_coefficients(gap, least, strict=isinstance(flat, (sp.Gt, sp.Lt)))


def _positive_coefficients(gap: sp.Expr, least: Mapping[sp.Symbol, sp.Integer],
                           strict: bool) -> bool:
    """``gap >= 0`` (``> 0`` when ``strict``) wherever each symbol is at or above its value
    in ``least``, shown as a polynomial whose coefficients are all >= 0 once each symbol
    is written as its least value plus a size ``t >= 0`` (a sufficient test: a polynomial
    with such coefficients is >= its constant term for every ``t >= 0``). SymPy does not
    prove torch's ``2*B*N >= B`` (XLNet) on positive integers; here ``B = 1 + b``, ``N = 1
    + n`` give ``1 + b + 2*n + 2*b*n``.

    >>> B, N = sp.symbols("B N", positive=True, integer=True)
    >>> least = {B: sp.Integer(1), N: sp.Integer(1)}
    >>> _positive_coefficients(2*B*N - B, least, strict=True)
    True
    >>> _positive_coefficients(2*B*N - 3*B, least, strict=False)  # fails at N = 1
    False
    """
    if not gap.free_symbols or not all(s in least for s in gap.free_symbols):
        return False
    above = {s: sp.Dummy(f"t_{s}", nonnegative=True) for s in gap.free_symbols}
    try:
        poly = sp.Poly(gap.xreplace({s: least[s] + t for s, t in above.items()}),
                       *above.values())
    except sp.PolynomialError:
        return False
    if not all(c.is_Rational and c >= 0 for c in poly.coeffs()):
        return False
    return not strict or poly.eval(dict.fromkeys(above.values(), 0)) > 0


def _nondecreasing(e: sp.Basic, corner: Mapping[sp.Symbol, sp.Integer]) -> bool:
    """``e`` never decreases as any size grows from ``corner``: built from sizes and
    constants by sums, floors, ceilings and products of factors that are >= 0 at
    ``corner`` (and so everywhere above it)."""
    if e.is_Number or isinstance(e, sp.Symbol):
        return bool(e.is_Number) or e in corner
    if isinstance(e, (sp.floor, sp.ceiling)):
        return _nondecreasing(e.args[0], corner)
    if isinstance(e, sp.Add):
        return all(_nondecreasing(a, corner) for a in e.args
                   if not a.is_Number) and all(
            (a.as_coeff_Mul()[0] > 0) for a in e.args if not a.is_Number)
    if isinstance(e, sp.Mul):
        for a in e.args:
            if a.is_Number:
                if a < 0:
                    return False
                continue
            if not _nondecreasing(a, corner) or not bool(a.xreplace(dict(corner)) >= 0):
                return False
        return True
    if isinstance(e, sp.Pow):
        return bool(e.exp.is_Integer and e.exp > 0 and _nondecreasing(e.base, corner)
                    and e.base.xreplace(dict(corner)) >= 0)
    return False


def _branch(g: sp.Basic, pins: Mapping[sp.Basic, sp.Expr], constraints: list[sp.Basic]
            ) -> bool:
    """A guard that chose a branch of the model's code at the example sizes (``3*floor(H/3)
    < H`` in a ceil-mode size, an upper bound from a kernel heuristic): neither a lower
    bound, nor torch's 0/1 specialization (``B != 1``, ``H*W > 1``), nor an equality
    already sorted into conditions or pins. :func:`symflops.tracing._branches.settle`
    traces its other side."""
    if g in constraints or isinstance(g, sp.Eq):
        return False
    g = g.xreplace(pins)
    if g in (sp.true, sp.false) or not g.free_symbols or _always(g) or \
            _holds_at_every_size(g, {}) or holds_for_every_size(g):
        return False
    if zero_one_specialization(g):
        return False  # settle checks the sizes it names at 1 instead
    return isinstance(g, (sp.Gt, sp.Ge, sp.Lt, sp.Le, sp.Ne))


@_remembered
def zero_one_specialization(g: sp.Basic) -> bool:
    """``B != 1``, ``8*N != 8``, ``B*N >= 2``: a guard that fails only where a size (or a
    size derived from them) is 0 or 1 -- torch's 0/1 specialization, recorded both where
    torch broadcasts and where the model's own code branches on a size of 1 (``if
    q_len > 1``); :func:`symflops.tracing._branches.settle` traces the sizes it names at 1.

    >>> B, N = sp.symbols("B N", positive=True, integer=True)
    >>> [zero_one_specialization(g) for g in (sp.Ne(B, 1), B*N >= 2, sp.Ne(N, 7))]
    [True, True, False]
    """
    if isinstance(g, sp.Ne):
        return _numel_not_0_or_1(g) or _only_fails_at_one(g) or \
            _not_0_or_1_of_derived_sizes(g)
    if isinstance(g, (sp.Gt, sp.Ge, sp.Lt, sp.Le)):
        return _size_not_one(g) or _only_fails_at_one(g)
    return False


def _numel_not_0_or_1(g: sp.Ne) -> bool:
    """``N != 1``, ``8*N != 8``, ``B*H != 0``: a product of sizes compared with the value it
    takes when every size is 1 (or with 0), torch's 0/1 specialization."""
    if g.lhs == 0 or g.rhs == 0:
        other = g.rhs if g.lhs == 0 else g.lhs
        return _monomial(sp.sympify(other).as_coeff_Mul()[1]) and \
            bool(sp.sympify(other).as_coeff_Mul()[0] > 0)
    ratio = sp.cancel(g.lhs / g.rhs)  # B*N != B: N != 1
    num, den = sp.fraction(ratio)
    if num == 1:
        num, den = den, num
    coeff, mono = sp.sympify(num).as_coeff_Mul()  # 4*B*W != B: 4*W != 1
    return den == 1 and coeff.is_Integer and coeff > 0 and _monomial(mono)


def _only_fails_at_one(g: sp.Basic) -> bool:
    """``N*Mod(1, B) != 0`` (that is, ``B != 1``): a guard that holds at every point of
    sizes 2..5 and fails only where some size is 1 -- torch's specialization of size 1,
    whatever form its expression took."""
    import itertools

    syms = sorted(g.free_symbols, key=lambda s: s.name)
    if not syms or len(syms) > 4:
        return False
    fails = False
    for values in itertools.product(range(1, 6), repeat=len(syms)):
        try:
            holds = at_point(g, dict(zip(syms, map(sp.Integer, values), strict=True)))
        except (TypeError, ValueError, ZeroDivisionError):  # undefined there (x/size)
            return False
        if holds is not sp.true and (holds is not sp.false or 1 not in values):
            return False
        fails = fails or holds is sp.false
    return fails


def _not_0_or_1_of_derived_sizes(g: sp.Ne) -> bool:
    """torch's 0/1 specialization of sizes computed from the inputs' (a patch grid
    ``floor(H/16)``): ``Ne(192*B*floor(H/16)*floor(W/16), 0)``,
    ``Ne(Max(1, floor(H/16))*Max(1, floor(W/16)), 1)``, ``Ne(B*Mod(1, X + 1), 0)``,
    ``Ne(floor(H/16)*floor(W/16), floor(H/16))``. With
    each floor or ceiling taken as a size of its own, the guard compares with 0 or 1 and
    holds at every point of sizes 1..5 where no size is 1. A real branch on a derived size
    (``floor(H/16)*floor(W/16) + 1 != 197``: timm's position embedding resampled unless the
    grid is the trained one) compares with another number and stays a branch.

    >>> H, W, B = sp.symbols("H W B", positive=True, integer=True)
    >>> X = sp.floor(H/16)*sp.floor(W/16)
    >>> _not_0_or_1_of_derived_sizes(sp.Ne(B*sp.Mod(1, X + 1), 0))
    True
    >>> _not_0_or_1_of_derived_sizes(sp.Ne(X + 1, 197))
    False
    >>> a = sp.floor(H/2 - sp.Rational(1, 2)) + 1   # a strided size, ceil(H/2)
    >>> _not_0_or_1_of_derived_sizes(sp.Ne(32*B*a*a.subs(H, W), 32*B))
    True
    """
    atoms: dict[sp.Expr, sp.Symbol] = {}

    def walk(e: sp.Basic) -> None:
        if isinstance(e, (sp.floor, sp.ceiling)):
            atoms.setdefault(e, sp.Symbol(f"_size{len(atoms)}", positive=True, integer=True))
            return
        for a in e.args:
            walk(a)

    walk(g)
    if not atoms:
        return False
    # each floor as a size ``s`` (floor(H/16)), or as ``s - 1`` (a strided output size
    # floor((H - 1)/2) + 1 is then ``s``)
    return any(_zero_one_form(g.xreplace({f: a + shift for f, a in atoms.items()}))
               for shift in (0, -1))


def _zero_one_form(ga: sp.Basic) -> bool:
    """``ga``, over size symbols, is a 0/1 check: ``a*b != a``, or a comparison with 0 or 1
    that holds at every point of sizes 2..5."""
    import itertools

    if not isinstance(ga, sp.Ne):
        return False
    if _numel_not_0_or_1(ga):  # a*b != a: b != 1
        return True
    if not ({ga.lhs, ga.rhs} & {sp.Integer(0), sp.Integer(1)}):
        return False
    syms = sorted(ga.free_symbols, key=lambda s: s.name)
    if len(syms) > 4:
        return False
    for values in itertools.product(range(2, 6), repeat=len(syms)):
        try:
            holds = at_point(ga, dict(zip(syms, map(sp.Integer, values), strict=True)))
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if holds is not sp.true:
            return False
    return True


def _monomial(e: sp.Expr) -> bool:
    """A product of size symbols to positive integer powers (coefficient 1)."""
    return all(f.is_Symbol or (f.is_Pow and f.base.is_Symbol and f.exp.is_Integer and
                               f.exp > 0) for f in sp.Mul.make_args(e)) and e != 1


def _facts(conditions: Sequence[sp.Basic]) -> dict[sp.Expr, sp.Expr]:
    """The derived sizes the formula's conditions give a value (``floor(H/ceiling(H/2))
    == 2``: MobileViT's patch height of a grid the code rounded up to even), to read a
    guard with: there ``Ne(4*B, floor(H/ceiling(H/2))*floor(W/ceiling(W/2)))`` is
    ``4*B != 4``, torch's 0/1 check of the batch, not a branch.

    >>> H = sp.Symbol("H", positive=True, integer=True)
    >>> f = sp.floor(H / sp.ceiling(H / 2))
    >>> _facts([sp.Eq(f, 2), sp.Eq(sp.Mod(H, 2), 0), sp.Ge(H, 4)])
    {floor(H/ceiling(H/2)): 2}
    """
    out: dict[sp.Expr, sp.Expr] = {}
    for c in conditions:
        if not isinstance(c, sp.Eq):
            continue
        for side, value in ((c.lhs, c.rhs), (c.rhs, c.lhs)):
            if value.is_Integer and isinstance(side, (sp.floor, sp.ceiling)):
                out[side] = value
    return out


def _pins(fixed: Mapping[str, int], symbols: Mapping[str, sp.Symbol]
          ) -> dict[sp.Symbol, sp.Expr]:
    return {symbols[n]: sp.Integer(v) for n, v in fixed.items() if n in symbols}


# ----------------------------------------------------------------------------- the tree
# ops whose parts become sibling leaves named by part (attention: scores, softmax, ...)
_SPLIT_OPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu,
              torch.ops.aten._native_multi_head_attention,
              torch.ops.aten._transformer_encoder_layer_fwd,
              torch.ops.aten._scaled_dot_product_flash_attention,
              torch.ops.aten._scaled_dot_product_efficient_attention,
              torch.ops.aten._scaled_dot_product_cudnn_attention,
              torch.ops.aten.scaled_dot_product_attention}


@dataclass(frozen=True)
class _Leaf:
    """One handler part, not yet a Cost: the module may take it over as its own node."""

    name: str
    record: Record
    part: Part
    in_shape: tuple[Any, ...]
    out_shape: tuple[Any, ...]
    #: the op's first part: it carries the op's bytes moved (the others carry none)
    first: bool = True


@dataclass(frozen=True)
class _Group:
    """One op whose parts (``grad_input``, ``grad_weight``) become children of one node."""

    name: str
    op: str
    leaves: tuple[_Leaf, ...]


_Entry = ModulePath | _Leaf | _Group


def _convert(x: Any, smap: C.SymbolMap) -> Any:
    if isinstance(x, RawShape):
        return TShape(tuple(smap(s) for s in x.shape), x.dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(_convert(v, smap) for v in x)
    if isinstance(x, dict):
        return {k: _convert(v, smap) for k, v in x.items()}
    if isinstance(x, sp.Basic):
        return smap(x)
    return x


def _frozen_arg(x: Any) -> Any:
    """A hashable stand-in for a converted handler argument that equals another exactly
    when the two are the same value of the same type (``2``, ``2.0``, ``True`` and
    ``Integer(2)`` apart; a float by its bits); ``_UNKEYED`` for anything else."""
    if isinstance(x, (list, tuple)):
        items = tuple(_frozen_arg(v) for v in x)
        return _UNKEYED if _UNKEYED in items else (type(x), items)
    if isinstance(x, dict):
        pairs = tuple((k, _frozen_arg(v)) for k, v in x.items())
        return _UNKEYED if any(v is _UNKEYED for _k, v in pairs) else (dict, pairs)
    if isinstance(x, float):
        return float, x.hex()
    if x is None or isinstance(x, (bool, int, str, sp.Basic, TShape, torch.dtype,
                                   torch.device, torch.layout, torch.memory_format)):
        return type(x), x
    return _UNKEYED


_UNKEYED = object()
#: (handler, frozen call) -> its parts; bounded: cleared when full
_PARTS: dict[Any, Sequence[Part]] = {}
_PARTS_MAX = 20000


def _handled(packet: Any, call: OpCall) -> Sequence[Part]:
    """``HANDLERS[packet](call)``, remembered for symflops' own handlers (pure functions
    of the call) per exact call: why, a model repeats its calls (ViT's twelve identical
    blocks; settle's second recording and repeated traces of one model make the same
    calls again), and each call builds its derivation's SymPy work anew (a tenth of a
    CNN's assembly). Keyed by every field of the call, types included, so a hit returns
    what the handler returns for it; a user's handler is always called."""
    handler = HANDLERS[packet]
    if not getattr(handler, "__module__", "").startswith("symflops.tracing.handlers"):
        return handler(call)
    key = _frozen_arg((call.name, call.args, call.kwargs, call.out, call.module,
                       dict(call.options)))
    if key is _UNKEYED:
        return handler(call)
    key = (handler, key)
    hit = _PARTS.get(key)
    if hit is None:
        hit = tuple(handler(call))
        if len(_PARTS) >= _PARTS_MAX:
            _PARTS.clear()
        _PARTS[key] = hit
    return hit


def _entries(rec: Recording, smap: C.SymbolMap, report: TraceReport,
             options: Mapping[str, Any]) -> dict[ModulePath, list[_Entry]]:
    """Per module path, its children in call order: submodules, op leaves, op groups."""
    entries: dict[ModulePath, list[_Entry]] = {}

    def node(path: ModulePath) -> list[_Entry]:
        if path not in entries:
            entries[path] = []
            if path:
                node(path[:-1]).append(path)
        return entries[path]

    node(ROOT)
    opcount: dict[ModulePath, Counter[str]] = {}
    for r in rec.records:
        call = OpCall(r.name, _convert(r.args, smap), _convert(r.kwargs, smap),
                      tuple(_convert(o, smap) for o in r.out), rec.types.get(r.path, ""),
                      options)
        try:
            parts = _handled(r.packet, call)
        except SymflopsError as e:
            raise e.at(".".join(r.path) or "(root)") from None
        except Exception as e:
            raise SymflopsError(f"the handler of {op_name(r.packet)} failed: {e}",
                                layer="trace", values={"at": ".".join(r.path)}) from e
        report.counted[op_name(r.packet)] += 1
        base = r.name + ("_backward" if r.backward and "backward" not in r.name else "")
        cnt = opcount.setdefault(r.path, Counter())
        k = cnt[base]
        cnt[base] += 1
        leaf_name = base if k == 0 else f"{base}_{k}"
        in_shape = next((a.shape for a in call.args if isinstance(a, TShape)), ())
        out_shape = call.out[0].shape if call.out else ()
        leaves = tuple(_Leaf(part.name or leaf_name, r, part, in_shape, out_shape, i == 0)
                       for i, part in enumerate(parts))
        if len(parts) > 1 and r.packet not in _SPLIT_OPS:  # e.g. grad_input, grad_weight
            node(r.path).append(_Group(leaf_name, op_name(r.packet), leaves))
        else:
            node(r.path).extend(leaves)
    return entries


def _own_params(mod: torch.nn.Module, seen: set[int]) -> int:
    n = 0
    for p in mod.parameters(recurse=False):
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def _module_spec(mod: torch.nn.Module) -> str:
    if next(iter(mod.children()), None) is None:
        text = repr(mod)
        return text if len(text) <= 120 else text[:117] + "..."
    return type(mod).__name__


@dataclass
class _Builder:
    """Builds the Cost tree from the entries: the pieces every node needs, once."""

    rec: Recording
    entries: Mapping[ModulePath, list[_Entry]]
    pins: Mapping[sp.Symbol, sp.Expr]
    convention: Convention
    smap: C.SymbolMap
    seen_params: set[int] = field(default_factory=set)
    never_ran: dict[ModulePath, list[torch.nn.Module]] | None = None

    def fix(self, e: Any) -> Any:
        e = sp.sympify(e)
        return e.xreplace(self.pins) if self.pins and e.free_symbols else e

    def io(self, raw: RawShape | None) -> tuple[Any, ...]:
        return () if raw is None else tuple(self.fix(self.smap(s)) for s in raw.shape)

    def traffic(self, io: Any) -> dict[tuple[str, str], sp.Expr]:
        """Bytes moved, ``(role, direction) -> bytes``, in the user's symbols."""
        items = io.items() if isinstance(io, Mapping) else io
        return {k: self.fix(self.smap(v)) if isinstance(v, sp.Basic) else sp.Integer(v)
                for k, v in items}

    def movement(self, path: ModulePath, op_io: Mapping[tuple[str, str], Any] | None = None
                 ) -> dict[tuple[str, str], sp.Expr]:
        """The bytes the uncounted ops of the module at ``path`` moved (copies, cat), plus
        ``op_io`` when the module is one counted op."""
        out = dict(op_io or {})
        for k, v in self.traffic(self.rec.movement.get(path, {})).items():
            out[k] = out.get(k, sp.Integer(0)) + v
        return out

    def leaf_fields(self, leaf: _Leaf, params: int = 0) -> dict[str, Any]:
        """The Cost fields of one handler part; ``params``: the module's own parameters
        when the module is this one op (its general formula kept if it explains them)."""
        part, op = leaf.part, op_name(leaf.record.packet)
        bindings = {k: self.fix(v) for k, v in part.bindings.items()}
        general_params: sp.Expr = sp.Integer(params)
        if params and part.general_params is not None:
            g = sp.sympify(part.general_params)
            if g.xreplace(dict(bindings)) == params:  # the formula explains this module's count
                general_params = g
        return dict(
            name=leaf.name, layer=part.layer or op,
            spec=op + (f" ({part.name})" if part.name else ""), params=params,
            work={k: self.fix(v) for k, v in part.work.items()},
            input_shape=tuple(self.fix(s) for s in leaf.in_shape),
            output_shape=tuple(self.fix(s) for s in leaf.out_shape),
            derivation=Derivation(part.general, general_params, bindings, part.explanation,
                                  part.rates),
            convention=self.convention, op=op, notes=part.notes,
            io=self.traffic(leaf.record.io) if leaf.first else {})

    def leaf(self, leaf: _Leaf) -> Cost:
        f = self.leaf_fields(leaf)
        return Cost(f.pop("name"), f.pop("layer"), **f)

    def parameters_fields(self, own: int, layer: str) -> dict[str, Any]:
        return dict(name="parameters", layer="Parameters", params=own, work={},
                    convention=self.convention, spec=f"{layer} parameters",
                    derivation=Derivation({}, sp.Integer(own), {},
                                          "parameters the module owns directly"), op="")

    def never_ran_params(self, path: ModulePath) -> int:
        """Parameters of submodules that never ran (e.g. MultiheadAttention's out_proj on
        its fast path): they count at the nearest module that did (``path``)."""
        if self.never_ran is None:  # grouped once: a scan per module was quadratic
            self.never_ran = {}
            for key, sub in self.rec.modules.items():
                if key in self.entries:
                    continue
                up = next(key[:i] for i in range(len(key) - 1, -1, -1)
                          if key[:i] in self.entries)
                self.never_ran.setdefault(up, []).append(sub)
        return sum(_own_params(sub, self.seen_params) for sub in self.never_ran.get(path, ()))

    def module(self, path: ModulePath, *, root: TraceReport | None = None,
               validity: Sequence[sp.Basic] = (), notes: Sequence[str] = ()) -> Cost:
        """The node of the module at ``path`` (``root``: the trace's report, for the root)."""
        mod = self.rec.modules.get(path)
        own = _own_params(mod, self.seen_params) if mod is not None else 0
        own += self.never_ran_params(path)
        # children: built Costs, or a handler part not built yet (the module may take it)
        kids: list[Cost | _Leaf] = []
        for entry in self.entries.get(path, []):
            if isinstance(entry, _Leaf):
                kids.append(entry)
            elif isinstance(entry, _Group):
                parts = [self.leaf(it) for it in entry.leaves]
                kids.append(Cost(entry.name, entry.op, spec=entry.op, children=parts,
                                 convention=self.convention, input_shape=parts[0].input_shape,
                                 output_shape=parts[0].output_shape, op=entry.op))
            else:
                kids.append(self.module(entry))
        name = path[-1] if path else ""
        layer = self.rec.types.get(path, "Module")
        spec = _module_spec(mod) if mod is not None else layer
        kin = self.io(self.rec.io_in.get(path))
        kout = self.io(self.rec.io_out.get(path))
        only = kids[0] if len(kids) == 1 else None
        if own and isinstance(only, _Leaf) and \
                only.name not in self.rec.child_names.get(path, ()):
            only_fields: dict[str, Any] | None = self.leaf_fields(only, own)
        elif own:
            only_fields = self.parameters_fields(own, layer) if not kids else None
            if kids:
                kids.insert(0, Cost(**self.parameters_fields(own, layer)))
        elif isinstance(only, _Leaf):
            only_fields = self.leaf_fields(only)
        else:
            only_fields = None
        if path and only_fields is not None:  # the module is this one op: one node
            return Cost(name, layer, spec=spec, params=only_fields["params"],
                        work=only_fields["work"],
                        input_shape=kin or only_fields["input_shape"],
                        output_shape=kout or only_fields["output_shape"],
                        derivation=only_fields["derivation"], convention=self.convention,
                        op=only_fields["op"], io=self.movement(path, only_fields["io"]))
        if path and len(kids) == 1 and isinstance(only, Cost) and not only.children:
            # a module whose one child is a submodule of one op
            return only.replace(name=name, layer=layer, spec=spec,
                                input_shape=kin or only.input_shape,
                                output_shape=kout or only.output_shape,
                                convention=self.convention,
                                io=self.movement(path, only.io))
        children = [self.leaf(k) if isinstance(k, _Leaf) else k for k in kids]
        if only_fields is not None:  # the root with a single op of its own
            f = dict(only_fields)
            children = [Cost(f.pop("name"), f.pop("layer"), **f)]
        if root is not None:
            return TracedCost(name, layer, spec=spec, children=children, input_shape=kin,
                              output_shape=kout, convention=self.convention,
                              validity=validity, notes=notes, report=root,
                              io=self.movement(path))
        return Cost(name, layer, spec=spec, children=children, input_shape=kin,
                    output_shape=kout, convention=self.convention, validity=validity,
                    io=self.movement(path))


def _name_counts(rec: Recording, env: C.SymEnv, ctx: TraceContext,
                 symbols: dict[str, sp.Symbol]) -> dict[sp.Symbol, str]:
    """Name the data-dependent sizes (``env`` then maps them like input dims; ``symbols``
    gains them)."""
    if rec.counts is None or (not rec.counts.counts and not ctx.data_dependent):
        return {}
    names = name_counts(rec.counts, rec.io_out, ctx.data_dependent, set(symbols))
    for u, n in names.items():
        env.torch_syms[u] = n
        symbols[n] = S.count(n)
    return names


def assemble(rec: Recording, env: C.SymEnv, ctx: TraceContext) -> TracedCost:
    """The Cost tree of ``rec`` with its :class:`TraceReport`."""
    symbols = {n: S.symbol(n) for n in ctx.hint_of}
    report = TraceReport(symbols=dict(symbols), hints=dict(ctx.hint_of),
                         mode="train" if ctx.train else "eval")
    report.unknown, report.unknown_at = rec.unknown, rec.unknown_at
    report.zero_cost = rec.zero
    report.table_checks = list(rec.table_checks)
    if rec.device_note is not None:
        report.notes.append(rec.device_note)
    if rec.unknown:
        msg = ("ops without a handler were NOT counted: " + ", ".join(
            f"{k} x{v} (at {', '.join(rec.unknown_at.get(k, []))})"
            for k, v in rec.unknown.most_common()))
        if ctx.strict:
            raise SymflopsError(msg, layer="trace", fix="register a handler in Python "
                                "(symflops.tracing.register), or {strict}",
                                options={"strict": False})
        report.notes.append(msg)
        report.warnings.append(msg)
    names = _name_counts(rec, env, ctx, symbols)
    report.symbols.update(symbols)
    smap = C.SymbolMap(env, symbols)
    validity = _conditions(env, smap, ctx, symbols, report)
    if rec.counts is not None and names:
        validity += [c for c in count_conditions(rec.counts, names, smap) if c not in validity]
        report.data_dependent = describe_counts(rec.counts, names, smap)
        report.notes.append("data-dependent sizes (symbols of their own; the cost is exact "
                            "for each value in the domain): " + "; ".join(
                                f"{n} from {d['op']} at {d['at']}"
                                for n, d in report.data_dependent.items()))
    entries = _entries(rec, smap, report, {"skip_masked": ctx.skip_masked})
    builder = _Builder(rec, entries, _pins(report.fixed, symbols), ctx.convention, smap)
    root = builder.module(ROOT, root=report, validity=validity, notes=report.notes)
    assert isinstance(root, TracedCost)
    if names:  # a count of 0 where every op's formula vanishes there; else R >= 1
        zero = [(c, why) for c, why in refused_at_zero(root, names, symbols)
                if c not in root.validity]
        if zero:
            report.notes.extend(why for _, why in zero)
            root = root.replace(validity=[*root.validity, *(c for c, _ in zero)],
                                notes=tuple(report.notes))
            assert isinstance(root, TracedCost)
    report.tested = _code_tests(root, report, rec.op_guards)
    if rec.saved is not None:  # train mode: the saved tensors measured, as Memory
        params = {id(p): p for p in ctx.model.parameters()}.values()
        memory = saved_memory(rec.saved, lambda e: builder.fix(smap(e)), root.params,
                              [p for p in params if p.requires_grad])
        root = root.replace(memory=memory)
        assert isinstance(root, TracedCost)
    return root
