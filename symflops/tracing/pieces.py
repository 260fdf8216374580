"""One formula across a model's code paths: trace it on each side of its domain's bounds and
join the pieces.

A trace proves its formula on a domain (:class:`~symflops.domain.Domain`); where the model's
code takes another path at other sizes (Swin clamps its windows to small feature maps, a
``if n > 8:`` picks another layer), the domain stops there (``116 <= H <= 227 (another code
path above 227)``). :func:`trace_pieces` (also ``sf.trace(..., paths="all")``) traces the
model at its example sizes, reads each size's bounds from the domain's own
:meth:`~symflops.domain.Domain.range_of`, traces again at the nearest size beyond each bound
(on the size's lattice: the next multiple when the domain has one), and repeats from every
new piece until no bound is left outside the pieces' union or ``max_pieces`` is reached (the
notes say which sizes were left, and why). The answer is a :class:`PiecewiseCost`: each
quantity a SymPy ``Piecewise`` whose conditions are the pieces' domains, and a
:class:`UnionDomain` that answers a point only when a piece's proven domain holds it (the
first such piece: where two pieces' domains overlap, their formulas were compared at the
pieces' own example sizes). A point in no piece (a gap, or past the last piece) is refused
with an :class:`~symflops.errors.OutsideDomain` whose fix names the trace that covers it.

Sizes move one at a time from a piece's example point, so with several sizes (``H`` and
``W``) the pieces cover boxes: ``H`` above its bound with ``W`` where it was, then ``W``
above its bound from each of those, and so on. A trace whose own domain does not hold the
point it was asked for (the model took a path that holds only at that exact size, and the
trace moved elsewhere) is kept as a piece when it is new, and the point is tried once more
with the other sizes moved one step; a trace that pins a size the example left free (a path
that holds at that one size) is not joined. Bounds on several sizes at once (``H*W <= 4096``) are
kept in the pieces' domains but not crossed.

>>> import torch, symflops as sf
>>> class Clamped(torch.nn.Module):  # attention over a window of min(4, N) positions
...     def __init__(self):
...         super().__init__()
...         self.proj = torch.nn.Linear(8, 8)
...     def forward(self, x):                    # (B, N, 8)
...         w = min(4, x.shape[1])
...         y = self.proj(x)[:, :w]
...         return y @ y.transpose(1, 2)
>>> c = sf.trace(Clamped(), "B N 8", {"N": 6}, convention="torch", paths="all", warn=False)
>>> print(c.domain)
one of 2 code paths: (1) N >= 4; (2) 1 <= N <= 3
>>> c.flops  # doctest: +NORMALIZE_WHITESPACE
Piecewise((128*B*N + 256*B, N >= 4), (16*B*N**2 + 128*B*N, N <= 3))
>>> c.subs(B=1, N=1000).flops, c.subs(B=1, N=2).flops   # FLOPs (torch convention)
(128256, 320)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
import torch

from symflops.conventions import Convention
from symflops.cost import Cost
from symflops.domain import Clause, Domain
from symflops.errors import OutsideDomain, SymflopsError

__all__ = ["trace_pieces", "PiecewiseCost", "UnionDomain", "PiecesReport", "MAX_PIECES"]

#: the most pieces :func:`trace_pieces` joins unless told otherwise
MAX_PIECES = 8

#: the trace options a joined trace passes on to each piece's :func:`~symflops.trace`
_PASSED = ("mode", "strict", "time_budget", "skip_masked", "past", "data_dependent")


# ----------------------------------------------------------------------------- domains
def piece_condition(domain: Domain) -> sp.Basic:
    """``domain`` as one SymPy condition in the words it prints: per size its range, lattice
    or pinned value, then the conditions over several sizes. Equal to the conjunction of the
    domain's conditions at every whole size >= 1 (the domain's own reading of a periodic
    condition as a bound is a proof; :class:`PiecewiseCost` also compares the two forms at
    each bound and falls back to the raw conjunction if they ever differ)."""
    parts: list[sp.Basic] = []
    for s in sorted(domain.axes, key=lambda x: x.name):
        lo, hi, step, off = domain.range_of(s)
        if domain.axes[s].pinned is not None:
            parts.append(sp.Eq(s, lo))
            continue
        if step > 1:
            parts.append(sp.Eq(sp.Mod(s, step), off))
        if lo > (off if step > 1 and off else step if step > 1 else 1):
            parts.append(sp.Ge(s, lo))
        if hi is not None:
            parts.append(sp.Le(s, hi))
    parts += [c for _, c in domain.other]
    return sp.And(*parts)


def raw_condition(domain: Domain) -> sp.Basic:
    """The conjunction of every condition ``domain`` holds, as written."""
    return sp.And(*(c for _, c in domain.conditions))


def _words(domain: Domain, latex: bool = False) -> str:
    """A piece's domain in words (or LaTeX) without the reasons for its bounds (the union
    says those)."""
    from symflops.notation import latex_expr

    le, ge = (r" \leq ", r" \geq ") if latex else (" <= ", " >= ")
    parts: list[str] = []
    for s in sorted(domain.axes, key=lambda x: x.name):
        name = latex_expr(s) if latex else str(s)
        lo, hi, step, off = domain.range_of(s)
        if domain.axes[s].pinned is not None:
            parts.append(f"{name} = {lo}")
            continue
        if step > 1:
            parts.append(rf"{name} \equiv {off} \pmod{{{step}}}" if latex else
                         f"{s} a multiple of {step}" if off == 0 else f"{s} = {off} mod {step}")
        if hi is not None:
            parts.append(f"{lo}{le}{name}{le}{hi}")
        elif lo > (step if step > 1 else 1):
            parts.append(f"{name}{ge}{lo}")
    parts += [latex_expr(c) if latex else str(c) for _, c in domain.other]
    if not parts:
        return r"\text{every size}" if latex else "every size"
    return (r",\ " if latex else ", ").join(parts)


@dataclass
class UnionDomain(Domain):
    """The union of the pieces' domains: a point is in it when one piece's domain holds it.

    ``conditions`` is one ``("code paths", Or(...))`` (each piece's conditions as written),
    so code that checks a domain condition by condition checks the union; ``pieces`` holds
    each piece's :class:`~symflops.domain.Domain`. ``range_of`` gives the hull of the pieces'
    ranges (a gap between pieces is inside it and still refused by ``check``/``contains``).
    """

    pieces: list[Domain] = field(default_factory=list)
    #: what lies past the pieces, in words (a capped search, a size the model refused)
    beyond: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, pieces: Sequence[Domain], beyond: Sequence[str] = ()) -> UnionDomain:
        union = sp.Or(*(raw_condition(d) for d in pieces))
        return cls([("code paths", union)], pieces=list(pieces), beyond=list(beyond))

    def which(self, mapping: Mapping[sp.Symbol, Any]) -> int | None:
        """The index of the first piece whose domain ``mapping`` does not fail (a partial
        point: the first not yet refused), or None."""
        for i, d in enumerate(self.pieces):
            if d.failing(mapping) is None:
                return i
        return None

    def failing(self, mapping: Mapping[sp.Symbol, Any]) -> tuple[str, sp.Basic] | None:
        if self.which(mapping) is not None:
            return None
        return self.conditions[0] if self.conditions else ("code paths", sp.false)

    def implies(self, cond: sp.Basic) -> bool:
        return all(d.implies(cond) for d in self.pieces)

    def check(self, mapping: Mapping[sp.Symbol, Any], layer: str | None = None) -> None:
        if self.which(mapping) is not None:
            return
        point = {str(k): v for k, v in mapping.items()}
        raise OutsideDomain("no traced code path holds this point", layer=layer or "trace",
                            values=point, fix=self.fix_for(sp.false, mapping),
                            options=self.options_for(sp.false, mapping))

    def fix_for(self, cond: sp.Basic, mapping: Mapping[sp.Symbol, Any] | None = None) -> str:
        """A piece's own fix when the point fails only its lattice and equalities (``choose
        N a multiple of 4, e.g. 1000 or 1004``); else the pieces, and the trace that covers
        the point."""
        lattice = self._lattice_fix(mapping)
        if lattice is not None:
            return lattice
        why = "; ".join(self.beyond)
        return (f"the joined formula covers {self.describe()}"
                + (f" ({why})" if why else "") +
                "; for the formula at this point trace the model there ({hints}), or join "
                "more code paths (trace_pieces's max_pieces=, below=True)")

    def _lattice_fix(self, mapping: Mapping[sp.Symbol, Any] | None) -> str | None:
        point = {k: sp.sympify(v) for k, v in (mapping or {}).items()}
        for i, d in enumerate(self.pieces, 1):
            bad = [c for _, c in d.conditions if c.free_symbols <= set(point)
                   and _holds(c, point) is False]
            lattice = [c for c in bad if isinstance(c, sp.Eq) and isinstance(c.lhs, sp.Mod)]
            if lattice and all(isinstance(c, sp.Eq) for c in bad):  # a size off the lattice
                return f"{d.fix_for(lattice[0], point)} (code path {i}: {_words(d)})"
        return None

    def options_for(self, cond: sp.Basic, mapping: Mapping[sp.Symbol, Any] | None = None
                    ) -> dict[str, Any]:
        if self._lattice_fix(mapping) is not None:
            return {}
        point = {str(k): int(v) for k, v in (mapping or {}).items() if sp.sympify(v).is_Integer}
        return {"hints": point}

    def range_of(self, symbol: sp.Symbol | str) -> tuple[int, int | None, int, int]:
        """The hull of the pieces' ranges of ``symbol``: the smallest lower bound, the
        largest upper bound (None when a piece has none), the lattice when every piece has
        the same one (else step 1)."""
        ranges = [d.range_of(symbol) for d in self.pieces]
        if not ranges:
            return super().range_of(symbol)
        lower = min(r[0] for r in ranges)
        upper = None if any(r[1] is None for r in ranges) else max(r[1] or 0 for r in ranges)
        lattices = {(r[2], r[3]) for r in ranges if r[0] != r[1]}
        step, off = lattices.pop() if len(lattices) == 1 else (1, 0)
        return lower, upper, step, off

    def points(self, symbol: sp.Symbol | str, lo: int, hi: int) -> list[int]:
        return sorted(set().union(*(d.points(symbol, lo, hi) for d in self.pieces)))

    def lattices(self) -> dict[sp.Symbol, tuple[int, int]]:
        """The lattices every piece shares (a render may print ``floor(H/2)`` as ``H/2``
        only where every piece puts ``H`` on multiples of 2)."""
        each = [d.lattices() for d in self.pieces]
        if not each:
            return {}
        return {s: v for s, v in each[0].items() if all(e.get(s) == v for e in each[1:])}

    @property
    def symbols(self) -> set[sp.Symbol]:
        return set().union(*(d.symbols for d in self.pieces)) if self.pieces else set()

    def clauses(self) -> list[Clause]:
        """One clause per piece (``one of 2 code paths: (1) ...``, ``(2) ...``; printed as
        their text, not as conditions), then what lies beyond them."""
        n = len(self.pieces)
        lead = f"one of {n} code paths: " if n > 1 else ""
        out = [Clause("other", f"{lead if i == 1 else ''}({i}) {_words(d)}",
                      rf"\text{{{lead if i == 1 else ''}({i}) }} {_words(d, latex=True)}")
               for i, d in enumerate(self.pieces, 1)]
        out += [Clause("other", text, rf"\text{{{text}}}") for text in self.beyond]
        return out

    def describe(self) -> str:
        if len(self.pieces) == 1:
            return self.pieces[0].describe()
        return f"one of {len(self.pieces)} code paths: " + "; ".join(
            f"({i}) {_words(d)}" for i, d in enumerate(self.pieces, 1))


# ----------------------------------------------------------------------------- the cost
@dataclass
class PiecesReport:
    """How a joined trace went: each piece's example sizes (``points``) and its trace's
    :class:`~symflops.tracing.TraceReport` (``reports``), the sizes tried and what came of
    them (``tried``), whether ``max_pieces`` stopped the search (``capped``), ``notes``."""

    points: list[dict[str, int]] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    tried: list[tuple[dict[str, int], str]] = field(default_factory=list)
    capped: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{len(self.points)} code paths joined in {self.seconds:.1f} s "
                 f"({len(self.tried)} traces past a bound)"]
        lines += [f"  tried {_say(p)}: {what}" for p, what in self.tried]
        return "\n".join(lines + self.notes)


def _say(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _joined(values: Sequence[sp.Expr], conds: Sequence[sp.Basic]) -> sp.Expr:
    """``Piecewise`` of ``values`` under ``conds`` (the value itself when all are equal).
    Adjacent code paths of equal value share one entry under the Or of their conditions,
    joined here: SymPy, left to join them itself, writes that Or in conjunctive form (two
    of Swin's eight paths printed as one condition of 16 clauses).

    >>> from symflops.symbols import H, W
    >>> _joined([2*H, 2*H, H], [(H <= 9) & (W <= 9), (H >= 20) & (W >= 20), True])
    Piecewise((2*H, ((H >= 20) & (W >= 20)) | ((H <= 9) & (W <= 9))), (H, True))
    """
    if all(v == values[0] for v in values[1:]):
        return values[0]
    entries: list[tuple[sp.Expr, sp.Basic]] = []
    for v, c in zip(values, conds, strict=True):
        if entries and entries[-1][0] == v:
            entries[-1] = (v, sp.Or(entries[-1][1], c))
        else:
            entries.append((v, c))
    return sp.Piecewise(*entries)


class PiecewiseCost(Cost):
    """The Cost of a model over several code paths: ``pieces`` (one traced Cost each, its
    domain proven by its own trace), every quantity a ``Piecewise`` over the pieces'
    domains, ``domain`` their :class:`UnionDomain`.

    A leaf: the pieces' module trees differ (``cost.pieces[k]`` has each one's).
    ``subs`` substitutes into every piece a point may still be in and returns that piece's
    Cost when one is left (else a PiecewiseCost of those left); ``evaluate`` answers each
    point with the first piece whose domain holds it; a point in no piece is refused.
    """

    __slots__ = ("pieces", "conditions", "report")
    pieces: tuple[Cost, ...]
    #: the condition each piece answers under, in the order they are tried
    conditions: tuple[sp.Basic, ...]
    report: PiecesReport

    @classmethod
    def join(cls, pieces: Sequence[Cost], report: PiecesReport, spec: str = "",
             beyond: Sequence[str] = ()) -> PiecewiseCost:
        """The pieces (already checked to agree where their domains overlap) as one Cost."""
        domains = [p.domain for p in pieces]
        conds = tuple(_checked_condition(d) for d in domains)
        union = UnionDomain.of(domains, beyond)
        kinds = sorted({k for p in pieces for k in p.work})
        work = {k: _joined([p.work.get(k, sp.Integer(0)) for p in pieces], conds)
                for k in kinds}
        first = pieces[0]
        shapes = [p.output_shape for p in pieces]
        if all(len(s) == len(shapes[0]) for s in shapes):
            output = tuple(_joined([s[i] for s in shapes], conds)
                           for i in range(len(shapes[0])))
        else:
            output = ()
        io = None
        if all(p.io is not None or p.children for p in pieces):
            try:
                traffic = [p._traffic() for p in pieces]
            except SymflopsError:
                traffic = []
            if traffic:
                keys = sorted({k for t in traffic for k in t})
                io = {k: _joined([t.get(k, sp.Integer(0)) for t in traffic], conds)
                      for k in keys}
        notes = [f"joined over {len(pieces)} code paths (symflops.tracing.pieces): "
                 f"{union.describe()}", *beyond]
        new = cls("", "code paths", spec=spec or f"{first.spec} ({len(pieces)} code paths)",
                  params=_joined([p.params for p in pieces], conds), work=work,
                  input_shape=first.input_shape, output_shape=output,
                  validity=[c for _, c in union.conditions], convention=first.convention,
                  notes=notes, io=io)
        put = object.__setattr__
        put(new, "pieces", tuple(pieces))
        put(new, "conditions", conds)
        put(new, "report", report)
        return new

    # the union is built from the pieces each time it is asked for (it is cheap)
    @property
    def domain(self) -> UnionDomain:
        beyond = [n for n in self.notes if n.startswith("past the pieces")]
        return UnionDomain.of([p.domain for p in self.pieces], beyond)

    @property
    def flops(self) -> sp.Expr:
        """The pieces' FLOPs under this Cost's convention, as a ``Piecewise``."""
        if self._flops is None:
            values = [(p if p.convention == self.convention else
                       p.with_convention(self.convention)).flops for p in self.pieces]
            object.__setattr__(self, "_flops", _joined(values, self.conditions))
        assert self._flops is not None
        return self._flops

    def _rebuilt(self, pieces: Sequence[Cost]) -> PiecewiseCost:
        beyond = [n for n in self.notes if n.startswith("past the pieces")]
        new = PiecewiseCost.join(pieces, self.report, self.spec, beyond)
        return new if new.count == self.count else new.replace(count=self.count)  # type: ignore

    def with_convention(self, convention: str | Convention) -> Cost:
        return self._rebuilt([p.with_convention(convention) for p in self.pieces])

    def simplify(self) -> Cost:
        return self._rebuilt([p.simplify() for p in self.pieces])

    def _substituted(self, mapping: Mapping[sp.Symbol, sp.Expr]) -> Cost:
        return self._rebuilt([p._substituted(mapping) for p in self.pieces])

    def _time(self, peak: sp.Expr, bandwidth: sp.Expr) -> sp.Expr:
        return _joined([p._time(peak, bandwidth) for p in self.pieces], self.conditions)

    def subs(self, values: Mapping[Any, Any] | None = None, /, **named: Any) -> Cost:
        """Substitute into every piece the point may be in: one piece left -> that piece's
        Cost (its tree, its domain); several -> a PiecewiseCost of them; none -> refused."""
        mapping = self._resolve(values, named)
        domain = self.domain
        left = [i for i, d in enumerate(domain.pieces) if d.failing(mapping) is None]
        if not left:
            domain.check(mapping, layer=self.spec)
        by_name = {s.name: v for s, v in mapping.items()}
        done = []
        for i in left:
            piece = self.pieces[i]
            mine = {k: v for k, v in by_name.items() if k in
                    {s.name for s in piece.free_symbols | piece.domain.symbols}}
            done.append(piece.subs(mine))
        if len(done) == 1:
            only = done[0]
            note = (f"code path {left[0] + 1} of {len(self.pieces)} (joined trace): "
                    f"{_words(domain.pieces[left[0]])}")
            return only.replace(notes=(note, *only.notes))
        return self._rebuilt(done)

    def evaluate(self, quantity: str = "flops", **values: Any) -> np.ndarray:
        """:meth:`Cost.evaluate`, each point answered by the first piece whose domain holds
        it (exact integers, as there); a point in no piece is refused."""
        from symflops.evaluate import check_sizes, compile_condition

        expr = self.quantity(quantity)
        syms = self._evaluated_symbols(expr, quantity, values)
        arrays, shape, _ = check_sizes(syms, [values[s.name] for s in syms])
        arrays = [np.broadcast_to(np.asarray(a), shape) for a in arrays]
        given = set(syms)
        chosen = np.full(shape, -1, dtype=np.int64)
        for i, d in enumerate(self.domain.pieces):
            ok = np.ones(shape, dtype=bool)
            for _, cond in d.conditions:
                if cond.free_symbols <= given:
                    ok &= np.broadcast_to(compile_condition(cond, syms)(*arrays), shape)
            chosen[(chosen < 0) & ok] = i
        if (chosen < 0).any():
            bad = tuple(int(i) for i in np.argwhere(chosen < 0)[0])
            point = {s: sp.Integer(int(a[bad])) for s, a in zip(syms, arrays, strict=True)}
            self.domain.check(point, layer=self.spec)
        out = np.empty(shape, dtype=object)
        for i, piece in enumerate(self.pieces):
            where = chosen == i
            if not where.any():
                continue
            mine = {s.name: a[where] for s, a in zip(syms, arrays, strict=True)
                    if s in piece.free_symbols | piece.domain.symbols}
            piece_expr = piece.quantity(quantity) if quantity != "flops" else \
                (piece if piece.convention == self.convention else
                 piece.with_convention(self.convention)).flops
            if piece_expr.free_symbols:
                got = (piece if quantity != "flops" or piece.convention == self.convention
                       else piece.with_convention(self.convention)).evaluate(quantity, **mine)
            else:
                got = np.full(int(where.sum()), int(piece_expr), dtype=object)
            out[where] = np.asarray(got, dtype=object)
        if all(isinstance(v, (int, np.integer)) and -(2 ** 63) <= int(v) < 2 ** 63
               for v in out.flat):
            return out.astype(np.int64)
        return out


def _holds(cond: sp.Basic, point: Mapping[sp.Symbol, sp.Integer]) -> bool | None:
    """``cond`` at ``point``: True, False (also where it is undefined: a size divided by
    0, as :meth:`Domain.failing` reads it) or None (not settled there)."""
    try:
        value = cond.xreplace(point)
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return value is sp.true if value in (sp.true, sp.false) else None


def _checked_condition(domain: Domain) -> sp.Basic:
    """The piece's condition in its printed form when it agrees with the raw conjunction at
    each bound (and one step past it) of each size; else the raw conjunction."""
    pretty, raw = piece_condition(domain), raw_condition(domain)
    syms = sorted(domain.axes, key=lambda x: x.name)
    base = {}
    for s in syms:
        lo, hi, step, _ = domain.range_of(s)
        base[s] = lo if hi is None else (lo + hi) // 2 - ((lo + hi) // 2 - lo) % step
    for s in syms:
        lo, hi, step, _ = domain.range_of(s)
        for v in {lo - 1, lo, lo + step, *(() if hi is None else (hi - 1, hi, hi + 1)),
                  2 * lo + 7}:
            if v < 1:
                continue
            point = {**base, s: sp.Integer(v)}
            each = [_holds(c, point) for _, c in domain.conditions]
            shown = _holds(pretty, point)
            if None in each or shown is None:
                continue
            if shown != all(each):
                return raw
    return pretty


# ----------------------------------------------------------------------------- search
@dataclass(order=True)
class _Task:
    downs: int
    depth: int
    seq: int
    piece: int = field(compare=False)
    name: str = field(compare=False)
    up: bool = field(compare=False)


def _beyond(domain: Domain, point: Mapping[str, int], symbols: Mapping[str, sp.Symbol],
            name: str, up: bool) -> list[dict[str, int]]:
    """The points to trace past ``name``'s bound in ``domain`` (the nearest size on its
    lattice, the other sizes where ``point`` has them; then the same with each other size
    moved one step (each size this piece bounds), in case ``point`` is a size where the
    model takes a path of its own)."""
    s = symbols[name]
    if s in domain.axes and domain.axes[s].pinned is not None:
        return []
    lo, hi, step, off = domain.range_of(s)
    if up:
        if hi is None:
            return []
        v = hi + 1 + (off - hi - 1) % step
    else:
        if lo <= 1:
            return []
        v = lo - 1 - (lo - 1 - off) % step
        if v < 2:  # a size of 1: torch pins it; a trace there needs the number 1 in the spec
            return []
    first = {**point, name: v}
    moved = dict(first)
    for other, value in point.items():
        if other == name or other not in symbols:
            continue
        t = symbols[other]
        if t in domain.axes and domain.axes[t].pinned is not None:
            continue
        tlo, thi, tstep, _ = domain.range_of(t)
        if thi is None and tlo <= 1:  # a size no bound of this piece mentions (the batch)
            continue
        if value - tstep >= max(tlo, 2):
            moved[other] = value - tstep
        elif thi is None or value + tstep <= thi:
            moved[other] = value + tstep
    return [first] if moved == first else [first, moved]


def _mapping(point: Mapping[str, int], symbols: Mapping[str, sp.Symbol]
             ) -> dict[sp.Symbol, sp.Integer]:
    return {symbols[k]: sp.Integer(v) for k, v in point.items() if k in symbols}


def _values_at(cost: Cost, point: Mapping[sp.Symbol, sp.Integer]) -> tuple[sp.Expr, ...]:
    """params, MACs and FLOPs of ``cost`` at a full point (exact)."""
    mine = {s: v for s, v in point.items() if s in cost.free_symbols}
    return tuple(sp.expand(q.xreplace(mine)) for q in (cost.params, cost.macs, cost.flops))


def trace_pieces(model: torch.nn.Module, inputs: Any, hints: Mapping[str, int] | None = None,
                 *, max_pieces: int = MAX_PIECES, below: bool = True,
                 convention: str | Convention = "exact", warn: bool = True,
                 **options: Any) -> Cost:
    """Trace ``model`` over its code paths and join them into one Cost.

    Why a function of its own (and ``sf.trace(..., paths="all")``, which calls it): one
    trace proves one code path; joining paths costs one more trace per path, so it is asked
    for, never done behind a plain ``sf.trace``.

    ``inputs``, ``hints``, ``convention``, ``warn`` and the options ``mode``, ``strict``,
    ``time_budget`` (per trace), ``skip_masked``, ``past``, ``data_dependent`` are
    :func:`symflops.trace`'s. From the trace at ``hints``, each size's bounds are read from
    the domain (:meth:`~symflops.domain.Domain.range_of`); the model is traced again at the
    nearest size past each bound (upper bounds first; lower bounds too when ``below``), and
    from each new piece in turn, until every bound lies inside the union or ``max_pieces``
    pieces are joined (default :data:`MAX_PIECES`; the notes say which sizes were left). A
    trace that fails past a bound (a kernel larger than the image) ends the search there,
    and the notes say so. A size is never taken to 1 (torch pins a size of 1: trace with
    the number 1 in the input spec for that path).

    Returns a :class:`PiecewiseCost` when there are several pieces, else the one trace's
    Cost (a note in ``report.notes`` says what was tried). ``fallback`` and ``real`` are
    not available (a fitted polynomial or a concrete trace has no code paths to join).
    """
    import time

    from symflops.tracing._tracer import trace

    for key in ("fallback", "real"):
        if options.get(key):
            raise SymflopsError(f"{key} is not available when joining code paths",
                                layer="trace_pieces", values={key: options[key]},
                                fix=f"drop {key}=, or trace one code path with sf.trace")
    unknown = sorted(set(options) - set(_PASSED) - {"fallback", "real"})
    if unknown:
        raise SymflopsError("unknown options", layer="trace_pieces", values={"options": unknown},
                            fix="use " + ", ".join(_PASSED))
    if not isinstance(max_pieces, int) or isinstance(max_pieces, bool) or max_pieces < 1:
        raise SymflopsError("max_pieces must be an int >= 1", layer="trace_pieces",
                            values={"max_pieces": max_pieces})
    if not isinstance(below, bool):
        raise SymflopsError("below must be True or False", layer="trace_pieces",
                            values={"below": repr(below)})
    passed = {k: v for k, v in options.items() if k in _PASSED}
    started = time.perf_counter()
    first = trace(model, inputs, hints, convention=convention, warn=warn, **passed)
    report = PiecesReport()
    pieces: list[Cost] = [first]
    report.points.append(dict(first.report.hints))  # type: ignore[attr-defined]
    report.reports.append(first.report)  # type: ignore[attr-defined]
    symbols: dict[str, sp.Symbol] = dict(first.report.symbols)  # type: ignore[attr-defined]
    names = [n for n in report.points[0] if n in symbols]
    seq = 0
    tasks: list[_Task] = []

    def queue(i: int, downs: int, depth: int) -> None:
        nonlocal seq
        for up in ((True, False) if below else (True,)):
            for name in names:
                seq += 1
                heapq.heappush(tasks, _Task(downs + (not up), depth + 1, seq, i, name, up))

    domains: list[Domain] = [first.domain]  # each piece's, built once

    def covered(point: Mapping[str, int]) -> bool:
        m = _mapping(point, symbols)
        return any(d.failing(m) is None for d in domains)

    queue(0, 0, 0)
    tried: set[tuple[tuple[str, int], ...]] = set()
    #: (size, value) where a trace below a lower bound failed: not tried again from the
    #: other pieces (a kernel larger than the image fails whatever the other sizes are)
    refused: set[tuple[str, int]] = set()
    left: list[str] = []
    while tasks:
        task = heapq.heappop(tasks)
        candidates = _beyond(domains[task.piece], report.points[task.piece], symbols,
                             task.name, task.up)
        for point in candidates:
            if covered(point):
                break
            seen = tuple(sorted(point.items()))
            if seen in tried:
                continue
            if not task.up and (task.name, point[task.name]) in refused:
                break  # the model did not trace at this size from another piece either
            if len(pieces) >= max_pieces and _distinct(domains) >= max_pieces:
                report.capped = True
                left.append(_say(point))
                break
            tried.add(seen)
            try:
                cost = trace(model, inputs, point, convention=convention, warn=False, **passed)
            except SymflopsError as e:
                report.tried.append((point, f"the trace failed: {e.message[:160]}"))
                refused.add((task.name, point[task.name]))
                break
            pins = _pins(cost.domain, names, symbols, domains[0])
            if pins:  # a path that holds at one size only: no formula over a range
                report.tried.append((point, f"a path that holds only at {pins}: not joined"))
                continue
            found = _added(cost, pieces, domains, symbols)
            report.tried.append((point, "a new code path" if found is not None else
                                 "inside a code path already joined"))
            if found is not None:
                report.points.append(dict(cost.report.hints))  # type: ignore[attr-defined]
                report.reports.append(cost.report)  # type: ignore[attr-defined]
                queue(found, task.downs, task.depth)
            if covered(point):
                break
    pieces, kept_points = _without_covered(pieces, domains, report.points, symbols, report)
    report.points = kept_points
    beyond = []
    if left:
        beyond.append(f"past the pieces: not traced (max_pieces={max_pieces} reached) at "
                      + "; ".join(dict.fromkeys(left)))
    failed = [f"{_say(p)} ({what})" for p, what in report.tried if what.startswith("the trace")]
    if failed:
        beyond.append("past the pieces: the model did not trace at " + "; ".join(failed))
    report.seconds = time.perf_counter() - started
    if len(pieces) == 1:
        only = pieces[0]
        merged = any("joined into it" in n for n in report.notes)
        outcomes = "; ".join(f"at {_say(p)}: {what}" for p, what in report.tried)
        said = ["one code path (paths='all'): " + (
            f"traced past the bounds of the example's domain ({outcomes}); the one kept holds "
            f"on the example's domain too" if merged else
            f"traced past the bounds of its domain ({outcomes}), no other path joined"
            if report.tried else "its domain has no bound to cross"), *report.notes, *beyond]
        only.report.notes.extend(said)  # type: ignore[attr-defined]
        return only.replace(notes=(*only.notes, *said))
    report.notes += beyond
    return PiecewiseCost.join(pieces, report, beyond=beyond)


def _pins(domain: Domain, names: Sequence[str], symbols: Mapping[str, sp.Symbol],
          first: Domain) -> str:
    """The sizes ``domain`` pins that the example's domain leaves free, in words."""
    def pinned(d: Domain, s: sp.Symbol) -> bool:
        return s in d.axes and d.axes[s].pinned is not None

    return ", ".join(f"{n} = {domain.axes[symbols[n]].pinned}" for n in names
                     if pinned(domain, symbols[n]) and not pinned(first, symbols[n]))


def _inside(inner: Domain, outer: Domain) -> bool:
    """Whether ``inner`` proves every condition of ``outer`` (``outer`` covers it)."""
    return all(inner.implies(c) for _, c in outer.conditions)


def _distinct(domains: Sequence[Domain]) -> int:
    """How many of ``domains`` no other one covers (the pieces the joined Cost keeps)."""
    return sum(not any(j != i and _inside(d, e) for j, e in enumerate(domains))
               for i, d in enumerate(domains))


def _added(cost: Cost, pieces: list[Cost], domains: list[Domain],
           symbols: Mapping[str, sp.Symbol]) -> int | None:
    """Append ``cost`` (and its domain) unless a piece's domain already covers its domain
    (then None); refuse when it and a piece whose domain holds its example point disagree
    there (two proofs of one point cannot both hold)."""
    domain = cost.domain
    at = _mapping(cost.report.hints, symbols)  # type: ignore[attr-defined]
    for p, d in zip(pieces, domains, strict=True):
        if d.failing(at) is None:
            _agree(p, cost, at)
        if _inside(domain, d):
            return None
    pieces.append(cost)
    domains.append(domain)
    return len(pieces) - 1


def _agree(a: Cost, b: Cost, at: Mapping[sp.Symbol, sp.Integer]) -> None:
    full = all(s in at for s in a.free_symbols | b.free_symbols)
    if full and _values_at(a, at) != _values_at(b, at):
        raise SymflopsError("two traces disagree at a point both their domains hold",
                            layer="trace_pieces",
                            values={"point": _say({s.name: int(v) for s, v in at.items()}),
                                    "one": _values_at(a, at), "other": _values_at(b, at)},
                            fix="trace the model at that point with sf.trace (one code path), "
                                "and report the model: a guard was read wrongly")


def _without_covered(pieces: list[Cost], domains: list[Domain], points: list[dict[str, int]],
                     symbols: Mapping[str, sp.Symbol], report: PiecesReport
                     ) -> tuple[list[Cost], list[dict[str, int]]]:
    """Drop a piece whose every condition another piece's domain proves it implies (that
    piece covers it; their formulas were compared at its example point)."""
    keep = list(range(len(pieces)))
    for i in range(len(pieces)):
        for j in keep:
            if j == i:
                continue
            inner = domains[i]
            if _inside(inner, domains[j]):
                _agree(pieces[i], pieces[j], _mapping(points[i], symbols))
                report.notes.append(f"the code path traced at {_say(points[i])} "
                                    f"({_words(inner)}) lies inside the one traced at "
                                    f"{_say(points[j])}: joined into it")
                keep.remove(i)
                break
    return [pieces[i] for i in keep], [points[i] for i in keep]


def iter_pieces(cost: Cost) -> Iterator[tuple[Cost, Domain]]:
    """``(piece, its domain)`` of a joined Cost (a single trace: itself)."""
    if isinstance(cost, PiecewiseCost):
        yield from ((p, p.domain) for p in cost.pieces)
    else:
        yield cost, cost.domain
