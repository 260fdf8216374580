"""``trace_factory``: a model constructor traced into an exact formula in its
hyperparameters (width, depth, heads, image size...).

How (exact, not a statistical fit):

1. Each hyperparameter symbol ``s`` is sampled on a lattice ``s = m*(k0 + i)``. Along
   each symbol's axis (the others at their smallest lattice value) the traces find the
   lattice multiple ``m`` (the smallest tried on which the cost is a polynomial: floors
   of ``H/16`` resolve only on multiples of 16), the start ``k0`` (the module hierarchy
   must not change), and, per module path, the degree in ``s`` (0: independent of it)
   from finite differences.
2. Per module path, the quantities (params, each kind of work, shapes, the repeat count
   of folded blocks, the derivation's bindings) are interpolated exactly (Newton's
   forward form, rational coefficients) on the tensor grid of the symbols it depends on.
3. The formula is checked at points where every symbol is beyond its grid, never used
   in the solve; a mismatch is an error, never a silent approximation.

Dims the tracer keeps symbolic (``B``, ``N``) stay symbolic in every trace.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.conventions import KINDS, Convention, get_convention
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.symbols import symbol
from symflops.tracing._folding import NodeTable
from symflops.tracing._inputs import dim_names, parse_inputs
from symflops.tracing._lattice import degree_of, newton
from symflops.tracing._reach import DEPTH_LADDER, SIZE_LADDER, Branch, Reach, depth_like
from symflops.tracing._sampling import ParamValue, Point, Sampler, parse_params
from symflops.tracing._serial import serialized_whole_call

__all__ = ["trace_factory", "FactoryCost", "FactoryReport", "MAX_FIT_DEGREE", "MAX_FACTOR"]

#: highest degree looked for in one hyperparameter (ViT's cost is quartic in H)
MAX_FIT_DEGREE = 4
#: largest lattice multiple tried, as a factor of the smallest one the params allow
MAX_FACTOR = 1024
#: where input dims that are not hyperparameters (``B``) start: torch specializes size 1,
#: so sf.trace traces them at 2 (at 1 torch may run other ops, e.g. addmm for mm + add)
_DIM_START = 2
_TRACE_OPTIONS = ("convention", "mode", "hints", "strict", "time_budget")


@dataclass
class FactoryReport:
    """How a factory formula was obtained: the lattice (``multiple`` and smallest
    ``start`` value per symbol), ``degrees`` per symbol (highest over module paths),
    ``solved`` (the points the interpolation used), ``traces`` (points traced in all:
    the lattice and degree search, the solve and the checks), ``verified`` (further
    points checked, never used in the solve), the dims traced symbolically (``symbolic``)
    and sampled (``dims``), ``kinds`` (the kinds of work fitted when ``weighed_only``
    left some out; empty: all) and ``seconds``.

    Far from the solve: ``upper`` (per symbol, the largest value traced and agreeing: the
    domain stops there), ``far`` (the points checked, never used in the solve),
    ``pieces`` (per piece of a Piecewise, per symbol its smallest and largest value and
    lattice multiple; one piece when the cost has one form) and ``findings`` (branches
    found, where the model stops running). ``multiple``, ``start`` and ``degrees`` are
    the first piece's."""

    symbols: list[str]
    multiple: dict[str, int]
    start: dict[str, int]
    degrees: dict[str, int]
    traces: int = 0
    solved: list[dict[str, int]] = field(default_factory=list)
    verified: list[dict[str, int]] = field(default_factory=list)
    symbolic: list[str] = field(default_factory=list)
    dims: list[str] = field(default_factory=list)
    kinds: tuple[str, ...] = ()
    seconds: float = 0.0
    upper: dict[str, int] = field(default_factory=dict)
    far: list[dict[str, int]] = field(default_factory=list)
    pieces: list[dict[str, tuple[int, int, int]]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


class FactoryCost(Cost):
    """A Cost whose formula came from :func:`trace_factory`; ``.factory`` says how.

    When only some kinds of work were fitted (``weighed_only=True``), every node of the
    tree is a FactoryCost and ``with_convention`` refuses a convention weighing a kind
    that was left out (its count is not in the formula)."""

    __slots__ = ("factory",)
    factory: FactoryReport

    def with_convention(self, convention: str | Convention) -> Cost:
        weights = get_convention(convention)
        kinds = self.factory.kinds
        missing = [k for k in KINDS if kinds and weights.rate(k) and k not in kinds]
        if missing:
            raise SymflopsError(
                f"this formula was fitted for the {self.convention.name} convention only "
                f"(kinds {', '.join(kinds)}); {weights.name} also weighs "
                f"{', '.join(missing)}, which it does not count", layer=self.spec,
                values={"convention": weights.name},
                fix=f"run trace_factory again with convention={weights.name!r}, or use a "
                    f"convention weighing only {', '.join(kinds)}")
        return super().with_convention(weights)


def _as_factory(cost: Cost, report: FactoryReport, deep: bool) -> FactoryCost:
    """``cost`` as a FactoryCost carrying ``report`` (its children too when ``deep``)."""
    if deep and cost.children:
        cost = cost.replace(children=[_as_factory(c, report, deep) for c in cost.children],
                            work=cost.work, params=cost.params)
    out = object.__new__(FactoryCost)
    for klass in type(cost).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if hasattr(cost, slot):
                object.__setattr__(out, slot, getattr(cost, slot))
    object.__setattr__(out, "factory", report)
    return out


def _lcm_denominators(params: Mapping[str, ParamValue]) -> dict[str, int]:
    """Per symbol, the smallest multiple making every expression it appears in an integer
    for integer values of the others (``dim/64`` -> 64)."""
    out: dict[str, int] = {}
    for value in params.values():
        for e in value if isinstance(value, tuple) else (value,):
            syms = sorted(e.free_symbols, key=str)
            if not syms:
                continue
            dens = [int(sp.fraction(c)[1]) for c in sp.Poly(e, *syms).coeffs()]
            den = math.lcm(*dens) if dens else 1
            for s in syms:
                out[s.name] = math.lcm(out.get(s.name, 1), den)
    return out


def _factors(fixed: Mapping[str, Any], primes: bool = True) -> list[int]:
    """Lattice factors tried: powers of two times 3, 5, 7 (``primes``) and the odd parts
    of the fixed integer arguments (a window of 7 makes multiples of 7 natural)."""
    # small primes: a window of 7, a stride of 3 without being told
    odd = {1, 3, 5, 7} if primes else {1}
    for v in fixed.values():
        for x in v if isinstance(v, (list, tuple)) else (v,):
            if isinstance(x, int) and not isinstance(x, bool) and x > 1:
                while x % 2 == 0:
                    x //= 2
                if 1 < x <= 64:
                    odd.add(x)
    return sorted({2 ** a * q for a in range(11) for q in odd if 2 ** a * q <= MAX_FACTOR})


class _HierarchyChanges(Exception):
    """The op sequence inside a module changes between points: read modules only."""


class _Search:
    """The lattice, degrees and fit for one factory (see the module docstring)."""

    def __init__(self, sample: Sampler, names: list[str], base: dict[str, int],
                 factors: list[int], max_degree: int, given: Mapping[str, int],
                 dims: Sequence[str] = (), floor: Mapping[str, int] | None = None,
                 told: frozenset[int] = frozenset()) -> None:
        self.sample, self.names, self.base = sample, names, base
        self.factors, self.max_degree, self.given = factors, max_degree, given
        #: per symbol, the smallest value a piece may use (a piece above a branch)
        self.floor = dict(floor or {})
        #: the factors a first point is looked for on (powers of two and the fixed
        #: arguments' odd parts: a model failing everywhere is reported without trying
        #: every small prime on every symbol); empty: all
        self.told = told
        # input dims that are not hyperparameters start at 2, as sf.trace traces them
        self.first = {n: _DIM_START if n in dims else 1 for n in names}
        self._reset()
        # (path, quantity) -> symbol -> degree
        self.degree: dict[tuple[str, str], dict[str, int]] = {}
        self.varying: set[str] = set()  # paths whose spec (it prints sizes) varies
        self.solved: set[tuple[tuple[str, int], ...]] = set()  # points the solve used

    def _reset(self) -> None:
        self.multiple = {n: self.given.get(n, self.base.get(n, 1)) for n in self.names}
        self.start = {n: self._low(n, self.multiple[n], self.first[n]) for n in self.names}

    def _low(self, name: str, m: int, index: int) -> int:
        """``index`` raised so that ``m*index`` is at least the symbol's floor."""
        return max(index, -(-self.floor.get(name, 1) // m))

    def value(self, name: str, i: int, multiple: int | None = None,
              start: int | None = None) -> int:
        return (multiple or self.multiple[name]) * ((start or self.start[name]) + i)

    def point(self, index: Mapping[str, int]) -> dict[str, int]:
        return {n: self.value(n, index.get(n, 0)) for n in self.names}

    def candidates(self, name: str) -> list[int]:
        if name in self.given:
            return [self.given[name]]
        low = self.base.get(name, 1)
        return [low * f for f in self.factors if low * f >= self.multiple[name]]

    def find_base(self) -> NodeTable:
        """A smallest point the model traces at, raising multiples one symbol at a time."""
        first: SymflopsError | None = None
        for _ in range(len(self.names) + 1):
            try:
                return self.sample(self.point({}))
            except SymflopsError as e:
                first = first or e
            for n in self.names:
                for m in self.candidates(n)[1:]:
                    if self.told and m // self.base.get(n, 1) not in self.told:
                        continue
                    k = self._low(n, m, self.start[n])
                    try:
                        self.sample({**self.point({}), n: m * k})
                    except SymflopsError:
                        continue
                    self.multiple[n], self.start[n] = m, k
                    break
                else:
                    continue
                break
            else:
                break
        assert first is not None
        raise SymflopsError(f"the model fails at every small lattice point tried (from "
                            f"{_text(self.point({}))}): {first.message}",
                            layer="trace_factory", values=self.point({}),
                            fix="check the constructor arguments at these values (heads "
                                "dividing the width, num_key_value_heads dividing "
                                "num_attention_heads, ...), or give multiples={...} for the "
                                "symbols (e.g. the image size a multiple of the patch)")

    def axis(self, name: str) -> None:
        """Lattice multiple, start and per-path degree of ``name`` along its axis: the
        smallest multiple tried on which every path is a polynomial, starting where the
        module hierarchy settles (or one step later, the first point being special)."""
        reasons: list[str] = []
        failures: list[tuple[dict[str, int], SymflopsError]] = []
        for m in self.candidates(name):
            low = self.start[name]
            if low == self.first[name] == _DIM_START and m >= _DIM_START:
                low = 1  # a sampled input dim: m itself is already >= 2
            if name in self.floor:  # a piece above a branch: the floor's index on m
                low = self._low(name, m, 1)
            start = low
            for _ in range(4):
                got = self._walk(name, m, start)
                if isinstance(got, dict):
                    self.multiple[name], self.start[name] = m, start
                    for key, d in got.items():
                        self.degree.setdefault(key, {})[name] = d
                    return
                reason, again = got
                if isinstance(reason, tuple):  # the model failed to build or run there
                    failures.append(reason)
                    break
                reasons.append(f"multiple {m} from {self.value(name, 0, m, start)}: {reason}")
                if not again or start > low:
                    break
                start += 1
        if failures and not reasons:  # the real error, not a guess about rounding
            point, error = failures[0]
            raise SymflopsError(
                f"the model fails at every point tried along {name} (multiples "
                f"{self.candidates(name)[0]}..{self.candidates(name)[-1]}); at "
                f"{_text(point)}: {error.message}", layer="trace_factory",
                values={"symbol": name}, fix=error.fix or "check the constructor "
                "arguments at these values (e.g. heads dividing the width)")
        raise SymflopsError(
            f"the cost is not a polynomial in {name} on any lattice tried (multiples "
            f"{self.candidates(name)[0]}..{self.candidates(name)[-1]}): "
            f"{reasons[-1] if reasons else 'no point traced'}. A rounding of widths "
            "(make_divisible), a max/min or a data-dependent size makes the count "
            "piecewise; no exact polynomial exists there", layer="trace_factory",
            values={"symbol": name},
            fix=f"give multiples={{'{name}': m}} for a lattice where the rounding is exact, "
                f"or fix {name}")

    def _walk(self, name: str, m: int, start: int
              ) -> dict[tuple[str, str], int] | tuple[Any, bool]:
        """Trace along ``name`` at ``m*(start + i)`` until every path's degree is known:
        the degrees, or why not and whether a later start may help."""
        tables: list[NodeTable] = []
        while len(tables) < self.max_degree + 3:
            pt = {**self.point({}), name: self.value(name, len(tables), m, start)}
            try:
                tab = self.sample(pt)
            except SymflopsError as e:
                return (pt, e), False
            if tables and tab.skeleton != tables[-1].skeleton:
                if not self.sample.merged:
                    raise _HierarchyChanges
                return f"the module hierarchy changes at {name} = {pt[name]}", len(tables) == 1
            tables.append(tab)
            degrees = self._degrees(name, tables)
            if degrees is not None:
                return degrees
        values = [self.value(name, i, m, start) for i in range(len(tables))]
        return (f"not a polynomial of degree <= {self.max_degree} at {name} = {values} "
                f"({self._worst(tables)})", True)

    def _degrees(self, name: str, tables: Sequence[NodeTable]
                 ) -> dict[tuple[str, str], int] | None:
        """Per (path, quantity), the degree in ``name``, or None while some quantity is
        still undetermined."""
        out: dict[tuple[str, str], int] = {}
        for path in tables[0].values:
            for q in set().union(*(t.values[path] for t in tables)):
                got = degree_of([t.values[path].get(q, sp.Integer(0)) for t in tables])
                if got is None:
                    return None
                out[path, q] = got
        return out

    @staticmethod
    def _worst(tables: Sequence[NodeTable]) -> str:
        if not tables:
            return "no point traced"
        total = [t.nodes[""].macs for t in tables]
        return f"MACs {total}"

    def run(self) -> NodeTable:
        """Search every axis until the lattice is stable; the base point's table. When
        the op sequence inside a module changes between points, the search restarts
        reading modules only (the traces are cached)."""
        try:
            return self._run()
        except _HierarchyChanges:
            self.sample.merged = True
            self._reset()
            return self._run()

    def _run(self) -> NodeTable:
        self.find_base()
        for _ in range(4):
            before = (dict(self.multiple), dict(self.start))
            self.degree = {}
            for n in self.names:
                self.axis(n)
            if (self.multiple, self.start) == before:
                break
        return self.sample(self.point({}))

    def fit(self, base: NodeTable) -> dict[str, dict[str, sp.Expr]]:
        """Every path's quantities as exact polynomials in the symbols, each on the
        tensor grid of the symbols it depends on (its degree in each)."""
        fitted: dict[str, dict[str, sp.Expr]] = {path: {} for path in base.values}
        self.solved.clear()
        # a quantity may vanish at the base point of another symbol (a dot product's
        # C - 1 adds at C = 1): each gets the degrees of its whole node
        node: dict[str, dict[str, int]] = {}
        for (path, _), degrees in self.degree.items():
            for name, d in degrees.items():
                node.setdefault(path, {})
                node[path][name] = max(d, node[path].get(name, 0))
        for path, q in sorted(self.degree):
            deps = [(n, d) for n, d in node[path].items() if d > 0]
            axes = [(symbol(n), self.multiple[n], self.start[n], d) for n, d in deps]
            grid: dict[tuple[int, ...], sp.Expr] = {}
            for idx in itertools.product(*[range(d + 1) for _, d in deps]):
                pt = self.point({n: i for (n, _), i in zip(deps, idx, strict=True)})
                self.solved.add(tuple(sorted(pt.items())))
                tab = self._checked(pt, base)
                grid[idx] = tab.values[path].get(q, sp.Integer(0))
                if tab.specs[path] != base.specs[path]:
                    self.varying.add(path)
            fitted[path][q] = newton(grid, axes)
        return fitted

    def top_degrees(self) -> dict[str, int]:
        """Per symbol, the highest degree of any quantity in it."""
        return {n: max((d.get(n, 0) for d in self.degree.values()), default=0)
                for n in self.names}

    def _checked(self, point: Point, base: NodeTable) -> NodeTable:
        tab = self.sample(point)
        if tab.skeleton != base.skeleton:
            raise SymflopsError("the module hierarchy changes with the hyperparameters",
                                layer="trace_factory", values=dict(point),
                                fix="fix the hyperparameter that adds or removes modules, "
                                    "or raise its minimum")
        return tab

    def verify(self, fitted: Mapping[str, Mapping[str, sp.Expr]], base: NodeTable,
               count: int = 2) -> list[dict[str, int]]:
        """Check the formulas at ``count`` points beyond every grid; the points."""
        top = self.top_degrees()
        points = [self.point({n: top[n] + j for n in self.names}) for j in range(1, count + 1)]
        for pt in points:
            tab = self._checked(pt, base)
            subs = {symbol(n): sp.Integer(v) for n, v in pt.items()}
            for path, quantities in fitted.items():
                for q, formula in quantities.items():
                    want = tab.values[path].get(q, sp.Integer(0))
                    got = formula.xreplace(subs)
                    if sp.expand(got - want) != 0:
                        raise SymflopsError(
                            "the derived formula misses a verification point: the cost "
                            "has interactions the axis search did not see",
                            layer="trace_factory",
                            values={"path": path or "(root)", "quantity": q, **pt,
                                    "traced": want, "formula": got},
                            fix="give multiples={...} or a larger max_degree")
        return points


def _leaf_derivation(node: Cost, q: Mapping[str, sp.Expr], work: Mapping[str, sp.Expr],
                     params: sp.Expr, note: str) -> Derivation:
    """The traced leaf's general formula with its bindings interpolated, when that
    reproduces the interpolated work exactly; else the work itself."""
    d = node.derivation
    if d is not None:
        bindings = {s: q[f"b:{s}"] for s in d.bindings if f"b:{s}" in q}
        if len(bindings) == len(d.bindings):
            derived = Derivation(d.general, d.general_params, bindings,
                                 d.explanation, d.rates)
            if all(sp.expand(derived.work.get(k, 0) - v) == 0 for k, v in work.items()) \
                    and sp.expand(derived.params - params) == 0:
                return derived
    return Derivation(dict(work), params, {}, note)


#: path -> (the traced node standing for it, its children's names)
_Structure = dict[str, tuple[Cost, list[str]]]


def _structure(tables: Sequence[NodeTable]) -> _Structure | None:
    """The module trees of ``tables`` merged by path (a module on one side of a branch
    only is in the merged tree, counted 0 on the other); None when one path holds
    different layers (or a leaf on one side, a module on the other)."""
    out: _Structure = {}
    kind: dict[str, tuple[str, bool]] = {}
    for tab in tables:
        for path, layer, leaf in tab.skeleton:
            if kind.setdefault(path, (layer, leaf)) != (layer, leaf):
                return None
            node = tab.nodes[path]
            names = [c.name for c in node.children]
            if path not in out:
                out[path] = (node, names)
                continue
            merged = out[path][1]
            for i, name in enumerate(names):  # after its previous sibling
                if name not in merged:
                    merged.insert(merged.index(names[i - 1]) + 1 if i else 0, name)
    return out


def _build(path: str, structure: _Structure, fitted: Mapping[str, Mapping[str, sp.Expr]],
           free: set[sp.Symbol], note: str, varying: set[str]) -> Cost:
    node, names = structure[path]
    q = fitted[path]
    spec = node.layer if path in varying else node.spec
    shape_in = [q[f"in:{i}"] for i in range(len(node.input_shape))]
    shape_out = [q[f"out:{i}"] for i in range(len(node.output_shape))]
    validity = [c for c in node.validity if c.free_symbols <= free]
    if node.children:
        kids = [_build(f"{path}.{name}" if path else name, structure, fitted, free, note,
                       varying) for name in names]
        return Cost(node.name, node.layer, spec=spec, children=kids, count=q["count"],
                    input_shape=shape_in, output_shape=shape_out, validity=validity,
                    convention=node.convention, notes=node.notes, op=node.op)
    work = {k[2:]: v for k, v in q.items() if k.startswith("w:")}
    return Cost(node.name, node.layer, spec=spec, params=q["params"], work=work,
                count=q["count"], input_shape=shape_in, output_shape=shape_out,
                validity=validity, convention=node.convention, notes=node.notes, op=node.op,
                derivation=_leaf_derivation(node, q, work, q["params"], note))


@serialized_whole_call
def trace_factory(make: Callable[..., Any], inputs: Any, params: Mapping[str, Any],
                  fixed: Mapping[str, Any] | None = None, *,
                  multiples: Mapping[str, int] | None = None, max_degree: int = MAX_FIT_DEGREE,
                  symbolic: Sequence[str] = (), dims: Mapping[str, Any] | None = None,
                  weighed_only: bool = False, verify_up_to: Mapping[str, int] | None = None,
                  **trace_options: Any) -> FactoryCost:
    """Trace ``make(**fixed, **params)`` into an exact formula in the hyperparameters.

    ``params`` maps constructor arguments to symbols or expressions (``"dim"``,
    ``"4*dim"``, ``"dim/64"``, a list for a list argument), read by
    :mod:`symflops.parse`; a symbol that is also an input dim (``image_size`` -> ``H``
    with inputs ``"B 3 H H"``) is tied to it. Every input dim is sampled like a
    hyperparameter (concrete traces run ~15x faster than symbolic ones), except those
    named in ``symbolic``, which every trace keeps symbolic. ``dims``: input dims given
    as expressions of the symbols (``{"H": "P*n"}``: the image side as patch size times
    patches per side), which then do not appear in the formula.
    ``multiples``: a lattice multiple per symbol, skipping its search. ``trace_options``:
    ``convention``, ``mode``, ``hints``, ``strict``, as for :func:`symflops.trace`, and
    ``time_budget``: seconds for the whole call (``make`` included), each trace within it.
    The result is a Cost tree with repeated blocks folded
    (``count`` a formula, e.g. ``L``), its lattice in ``validity``, how it was derived and
    verified in ``notes`` and in ``.factory``. A count that is not a polynomial on any
    lattice tried is a SymflopsError naming the symbol and the reason.
    ``weighed_only``: fit only the kinds of work the convention weighs (``macs`` and
    ``torch``: ``matmul_mul``), for models where the other kinds are not polynomial
    (Swin's shift mask turns off when a window covers the map); the notes say so and
    ``with_convention`` refuses a convention weighing the kinds left out (``exact``
    weighs every kind: nothing is left out).

    The formula is then checked far from the small points it was solved at: each symbol
    along a ladder to 65536 (a depth, which sets how many times a block repeats, to 128;
    ``verify_up_to={"V": 262144}`` changes where a symbol stops), the others small, and
    at two points where all are large, comparing the module structure and every quantity
    of every module. ``validity`` carries the largest value checked (``C <= 65536``):
    nothing past it is claimed. A disagreement is bisected to its exact threshold; the
    other side is solved on its own and the result is a ``Piecewise`` (a module on one
    side only is counted 0 on the other), or, for a rounding, one polynomial on a coarser
    lattice; when neither exists, a SymflopsError names the argument and the values on
    both sides of the threshold.

    >>> import torch, symflops as sf
    >>> def mlp(width, depth):
    ...     return torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
    >>> c = sf.trace_factory(mlp, "B C", {"width": "C", "depth": "L"}, convention="macs")
    >>> c.macs, c.params
    (B*C**2*L, C*L*(C + 1))
    >>> c.factory.degrees
    {'C': 2, 'L': 1, 'B': 1}
    >>> c.validity  # up to where the far checks traced: widths 65536, depths 128
    (C <= 65536, L <= 128, B <= 65536)
    """
    started = time.perf_counter()
    unknown = sorted(set(trace_options) - set(_TRACE_OPTIONS))
    if unknown:
        raise SymflopsError("unknown trace options", layer="trace_factory",
                            values={"options": unknown}, fix="use " + ", ".join(_TRACE_OPTIONS))
    if not callable(make):
        raise SymflopsError("make must be a callable returning a torch.nn.Module",
                            layer="trace_factory", values={"make": repr(make)})
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 1:
        raise SymflopsError("max_degree must be a positive int", layer="trace_factory",
                            values={"max_degree": repr(max_degree)})
    if not isinstance(weighed_only, bool):
        raise SymflopsError("weighed_only must be True or False", layer="trace_factory",
                            values={"weighed_only": repr(weighed_only)})
    parsed = parse_params(params, fixed)
    fixed = dict(fixed or {})
    pos, kw = parse_inputs(inputs)
    dim_exprs = parse_params(dims, None) if dims else {}
    names: list[str] = []
    for value in [*parsed.values(), *dim_exprs.values()]:
        for e in value if isinstance(value, tuple) else (value,):
            names += [s.name for s in sorted(e.free_symbols, key=str) if s.name not in names]
    input_dims = dim_names(pos, kw)
    for d, e in dim_exprs.items():
        if d not in input_dims or isinstance(e, tuple):
            raise SymflopsError("dims gives an expression per input dim", layer="trace_factory",
                                values={d: repr(e)}, fix="input dims: " + ", ".join(input_dims))
    dims_left = [d for d in input_dims if d not in dim_exprs]
    if isinstance(symbolic, str) or any(d not in dims_left or d in names for d in symbolic):
        raise SymflopsError("symbolic names input dims that are not hyperparameters",
                            layer="trace_factory", values={"symbolic": repr(symbolic)},
                            fix="input dims: " + ", ".join(dims_left))
    free_dims = [d for d in dims_left if d not in names and d not in symbolic]
    names += free_dims
    given = dict(multiples or {})
    for n, m in given.items():
        if n not in names or isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise SymflopsError("multiples gives a positive int per hyperparameter symbol",
                                layer="trace_factory", values={n: repr(m)},
                                fix="symbols are: " + ", ".join(names))
    _ceilings(names, set(), verify_up_to)  # bad input fails before any trace
    weights = get_convention(trace_options.get("convention", "exact"))
    kinds = tuple(k for k in KINDS if weights.rate(k)) if weighed_only else tuple(KINDS)
    kinds = () if kinds == tuple(KINDS) else kinds
    sample = Sampler(make, fixed, parsed, (pos, kw), trace_options, dim_exprs,
                     frozenset(kinds) if kinds else None)
    denominators, factors = _lcm_denominators({**parsed, **dim_exprs}), _factors(fixed)
    told = frozenset(_factors(fixed, primes=False))
    search = _Search(sample, names, denominators, factors, max_degree, given, free_dims,
                     told=told)
    base = search.run()
    if sample.pinned:  # dims the tracer cannot keep symbolic are sampled as well
        free_dims += [n for n in sample.pinned if n not in names]
        names += [n for n in sample.pinned if n not in names]
        sample.pinned.clear()
        search = _Search(sample, names, denominators, factors, max_degree, given, free_dims,
                         told=told)
        base = search.run()
        if sample.pinned:
            raise SymflopsError("the tracer fixes input dims even when sampled",
                                layer="trace_factory", values=dict(sample.pinned),
                                fix="give those dims numbers in the inputs")
    fitted = search.fit(base)
    verified = search.verify(fitted, base)
    deep = depth_like(fitted)
    ceiling = _ceilings(names, deep, verify_up_to)

    def solve(floor: Mapping[str, int], top: Mapping[str, int],
              lattice: Mapping[str, int] | None = None) -> _Piece:
        s = _Search(sample, names, denominators, factors, max_degree,
                    {**given, **(lattice or {})}, free_dims, floor, told)
        b = s.run()
        f = s.fit(b)
        return _Piece(s, b, f, dict(top), dict(floor), s.verify(f, b))

    def far() -> tuple[list[_Piece], list[str]]:
        try:
            return _far(_Piece(search, base, fitted, dict(ceiling), {}, verified), solve,
                        sample, deep)
        except _Unfolded:
            # the pieces fold differently (two equal Linear layers on one side of the
            # branch only): solve every piece unfolded
            sample.folding = False
            return _far(solve({}, ceiling), solve, sample, deep, last=True)

    try:
        pieces, findings = far()
    except _Refused as refused:
        # a rounding (make_divisible, dim // 64) makes a piece per step: look for a
        # coarser lattice of the branching symbol on which one polynomial holds (a
        # module that appears or changes type is no lattice's)
        name = refused.branch.name
        found = None if refused.branch.kind != "count" else _coarser(
            name, search.multiple[name], refused.branch, solve, sample, deep, ceiling,
            factors)
        if found is None:
            raise SymflopsError(refused.message, layer=refused.layer, values=refused.values,
                                fix=refused.fix) from None
        pieces, findings = found
    rounded = [(n, b) for n in names for b in _rounded(pieces, n)]
    if rounded:  # the pieces' lattices differ: a rounding; one lattice may cover it all
        name, branch = rounded[0]
        found = _coarser(name, pieces[0].search.multiple[name], branch, solve, sample, deep,
                         ceiling, factors)
        pieces, findings = found or (pieces, findings)
    search, base, verified = pieces[0].search, pieces[0].base, pieces[0].verified
    symbolic_dims = [d for d in dims_left if d not in names]
    report = FactoryReport(names, dict(search.multiple),
                           {n: search.value(n, 0) for n in names},
                           search.top_degrees(),
                           traces=sample.traces, verified=verified,
                           solved=[dict(p) for p in sorted(
                               {pt for piece in pieces for pt in piece.search.solved})],
                           symbolic=symbolic_dims, dims=free_dims, kinds=kinds,
                           upper={n: max(p.top(n) for p in pieces) for n in names},
                           far=[pt for piece in pieces for pt in piece.checked],
                           pieces=[p.bounds() for p in pieces], findings=findings)
    fitted, conditions = _combine(pieces, names, free_dims)
    note = _note(make, report, fixed)
    free = {symbol(d) for d in symbolic_dims}
    varying = set().union(*(p.search.varying for p in pieces))
    structure = _structure([p.base for p in pieces])
    assert structure is not None  # _far refused pieces that do not merge
    tree = _build("", structure, fitted, free, note, varying)
    result = tree.replace(notes=(*tree.notes, note),
                          validity=tuple(c for c in (*conditions, *tree.validity)
                                         if c is not sp.true))
    report.traces = sample.traces
    report.seconds = time.perf_counter() - started
    return _as_factory(result, report, deep=bool(kinds))


#: most pieces a factory's cost is split into before it is refused
MAX_PIECES = 4


@dataclass
class _Piece:
    """One polynomial piece: its search, base table, fitted quantities, the largest value
    checked per symbol (``ceiling``), its smallest (``floor``) and the far points that
    agreed (``checked``)."""

    search: _Search
    base: NodeTable
    fitted: dict[str, dict[str, sp.Expr]]
    ceiling: dict[str, int]
    floor: dict[str, int]
    verified: list[dict[str, int]]
    checked: list[dict[str, int]] = field(default_factory=list)
    #: the branch this piece starts above (None: the first piece)
    after: Branch | None = None

    def top(self, name: str) -> int:
        m = self.search.multiple[name]
        return max(m * (self.ceiling[name] // m), self.search.value(name, 0))

    def bounds(self) -> dict[str, tuple[int, int, int]]:
        """Per symbol (smallest value, largest value checked, lattice multiple)."""
        return {n: (self.search.value(n, 0), self.top(n), self.search.multiple[n])
                for n in self.search.names}


def _ceilings(names: Sequence[str], deep: set[str],
              verify_up_to: Mapping[str, int] | None) -> dict[str, int]:
    """Per symbol, the largest value the far checks go to."""
    given = dict(verify_up_to or {})
    for n, v in given.items():
        if n not in names or isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SymflopsError("verify_up_to gives a positive int per hyperparameter symbol",
                                layer="trace_factory", values={n: repr(v)},
                                fix="symbols are: " + ", ".join(names))
    return {n: given.get(n, (DEPTH_LADDER if n in deep else SIZE_LADDER)[-1]) for n in names}


def _rounded(pieces: Sequence[_Piece], name: str) -> list[Branch]:
    """The branches on ``name`` whose pieces have different lattices of it (a rounding)."""
    lattices = {p.search.multiple[name] for p in pieces}
    return [p.after for p in pieces if p.after is not None and p.after.name == name
            and len(lattices) > 1]


class _Unfolded(Exception):
    """The pieces' folded module structures differ: try again without folding."""


def _far(first: _Piece, solve: Callable[[Mapping[str, int], Mapping[str, int]], _Piece],
         sample: Sampler, deep: set[str], last: bool = False, single: bool = False
         ) -> tuple[list[_Piece], list[str]]:
    """Check ``first`` far from its solve points; at a branch, solve the other side as a
    piece of its own (each checked the same way). The pieces, and what was found."""
    todo, done, findings = [first], list[_Piece](), list[str]()
    while todo:
        piece = todo.pop(0)
        while True:
            reach = Reach(piece.search, piece.base, piece.fitted, piece.ceiling, deep)
            branch = reach.run()
            piece.checked = reach.checked
            if branch is None:
                break
            if branch.kind == "joint":
                raise SymflopsError(
                    f"the formula fails at a point where all the hyperparameters are large "
                    f"({_text(branch.point)}) though it holds along each one alone: they "
                    f"interact in the constructor ({branch.reason})", layer="trace_factory",
                    values=branch.point,
                    fix="fix one of the hyperparameters, or bound the domain with "
                        "verify_up_to={...}")
            if branch.kind == "fails":
                findings.append(f"the model does not build or run from "
                                f"{_where(sample, branch, branch.above)} on "
                                f"({branch.reason}); the domain stops at "
                                f"{branch.name} = {branch.below}")
                piece.ceiling[branch.name] = branch.below
                continue
            if single or len(done) + len(todo) + 2 > MAX_PIECES:
                raise _refusal(sample, branch, f"more than {MAX_PIECES} pieces")
            above = dict(piece.ceiling)
            piece.ceiling[branch.name] = branch.below
            try:
                upper = solve({**piece.floor, branch.name: branch.above}, above)
            except SymflopsError as e:
                raise _refusal(sample, branch,
                               f"the cost above it is not solvable: {e.message}") from None
            if upper.base.skeleton != piece.base.skeleton:
                if not last and not deep:
                    raise _Unfolded
                if _structure([p.base for p in (*done, piece, *todo, upper)]) is None:
                    raise _refusal(sample, branch, "one module path holds different layers "
                                                   "on the two sides")
            findings.append(f"the cost changes shape between {_where(sample, branch, None)}: "
                            f"a branch in the constructor ({branch.reason}); each side is "
                            f"solved and checked on its own")
            upper.after = branch
            todo.append(upper)
        done.append(piece)
    return done, findings


def _where(sample: Sampler, branch: Branch, only: int | None) -> str:
    """``width=100 and width=101 (C = 100 and 101)``: the constructor arguments holding
    the branch's symbol at both sides (or at ``only``)."""
    values = [only] if only is not None else [branch.below, branch.above]
    args = [a for a, e in sample.params.items()
            if any(branch.name in {s.name for s in x.free_symbols}
                   for x in (e if isinstance(e, tuple) else (e,)))]
    sides = []
    for v in values:
        at = sample.arguments({**branch.point, branch.name: v}) if args else {}
        sides.append(", ".join(f"{a}={at[a]}" for a in args) or f"{branch.name}={v}")
    text = " and ".join(sides)
    if args and [a for a in args] != [branch.name]:
        text += f" ({branch.name} = {' and '.join(str(v) for v in values)})"
    return text


class _Refused(SymflopsError):
    """A branch the pieces could not cover; ``branch`` says where."""

    branch: Branch


def _coarser(name: str, m: int, branch: Branch, solve: Callable[..., _Piece],
             sample: Sampler, deep: set[str], ceiling: Mapping[str, int],
             factors: Sequence[int]) -> tuple[list[_Piece], list[str]] | None:
    """One polynomial on a coarser lattice of ``name`` (multiples of 2, 3, 4, ... times
    its lattice ``m``) checked far like any piece and reaching as far as asked (a lattice
    on which the model stops building early is no answer); None when none does."""
    for f in [f for f in factors if 1 < f <= 64]:
        lattice = m * f
        try:
            piece = solve({}, ceiling, {name: lattice})
            found = _far(piece, solve, sample, deep, last=True, single=True)
        except SymflopsError:
            continue
        if found[0][0].top(name) < lattice * (ceiling[name] // lattice):
            continue
        return found[0], [f"{name} must be a multiple of {lattice}: the cost changes shape "
                          f"between {_where(sample, branch, None)} ({branch.reason}), and "
                          f"on the multiples of {lattice} it is one polynomial", *found[1]]
    return None


def _refusal(sample: Sampler, branch: Branch, why: str) -> SymflopsError:
    error = _Refused(
        f"the cost changes shape between {_where(sample, branch, None)}: a branch in the "
        f"constructor ({branch.reason}); {why}", layer="trace_factory",
        values={k: v for k, v in branch.point.items() if k != branch.name},
        fix=f"fix the argument, or give verify_up_to={{'{branch.name}': {branch.below}}} for "
            f"the formula up to {branch.name} = {branch.below}")
    error.branch = branch
    return error


def _combine(pieces: Sequence[_Piece], names: Sequence[str], dims: Sequence[str]
             ) -> tuple[dict[str, dict[str, sp.Expr]], list[sp.Basic]]:
    """The pieces' quantities as one (a Piecewise where they differ) and the domain: per
    symbol its bounds and lattice, an Or of the pieces where their lattices differ."""
    bounds = [p.bounds() for p in pieces]
    low = {n: min(b[n][0] for b in bounds) for n in names}
    high = {n: max(b[n][1] for b in bounds) for n in names}
    multiples = {n: {b[n][2] for b in bounds} for n in names}

    def implied(n: str) -> int:
        return _DIM_START if n in dims and low[n] == _DIM_START else min(multiples[n])

    conditions: list[sp.Basic] = []
    for n in names:
        s = symbol(n)
        if len(multiples[n]) == 1 and min(multiples[n]) > 1:
            conditions.append(sp.Eq(sp.Mod(s, min(multiples[n])), 0))
        if low[n] > implied(n):
            conditions.append(sp.Ge(s, low[n]))
        conditions.append(sp.Le(s, high[n]))
    if len(pieces) == 1:
        return pieces[0].fitted, conditions
    own: list[sp.Basic] = []  # each piece's condition beyond the common bounds
    full: list[sp.Basic] = []
    for b in bounds:
        parts = [c for n in names for c in (
            sp.Ge(symbol(n), b[n][0]) if b[n][0] > low[n] else sp.true,
            sp.Le(symbol(n), b[n][1]) if b[n][1] < high[n] else sp.true)]
        own.append(sp.And(*parts))
        lattice = [sp.Eq(sp.Mod(symbol(n), b[n][2]), 0) for n in names
                   if len(multiples[n]) > 1 and b[n][2] > 1]
        full.append(sp.And(*parts, *lattice))
    if any(len(m) > 1 for m in multiples.values()):
        conditions.append(sp.Or(*full))
    fitted: dict[str, dict[str, sp.Expr]] = {}
    for path in dict.fromkeys(path for p in pieces for path in p.fitted):
        have = [p.fitted[path] for p in pieces if path in p.fitted]
        keys = list(dict.fromkeys(q for h in have for q in h))
        fitted[path] = {}
        for q in keys:
            # a module on the other side of a branch only: counted 0 here (its other
            # quantities, multiplied by that 0, read as on the side it is on)
            values = [p.fitted[path].get(q, sp.Integer(0)) if path in p.fitted else
                      sp.Integer(0) if q == "count" else have[0].get(q, sp.Integer(0))
                      for p in pieces]
            if all(sp.expand(v - values[0]) == 0 for v in values):
                fitted[path][q] = values[0]
                continue
            fitted[path][q] = sp.Piecewise(*[(v, c) for v, c in zip(values[:-1], own[:-1],
                                                                     strict=True)],
                                           (values[-1], True))
    return fitted, conditions


def _text(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _note(make: Callable[..., Any], report: FactoryReport, fixed: Mapping[str, Any]) -> str:
    """The one-paragraph account a paper can cite."""
    name = getattr(make, "__name__", type(make).__name__)
    lattice = ", ".join(
        (f"{n} a multiple of {report.multiple[n]}, " if report.multiple[n] > 1 else "")
        + f"{report.start[n]} <= {n} <= {report.upper.get(n, '?')}"
        + (" (sampled from 2 as sf.trace traces a dim: torch specializes size 1)"
           if n in report.dims and report.start[n] == _DIM_START else "")
        for n in report.symbols)
    upper = ", ".join(f"{n} = {v}" for n, v in report.upper.items())
    far = (f" Checked far from the solve at {len(report.far)} more points (the module "
           f"structure and every quantity of every module), verified up to {upper}"
           + ("; " + "; ".join(report.findings) if report.findings else "") + ".")
    if len(report.pieces) > 1:
        lattice = "; ".join(
            ", ".join(f"{lo} <= {n} <= {hi}" + (f" a multiple of {m}" if m > 1 else "")
                      for n, (lo, hi, m) in piece.items()) for piece in report.pieces)
        lattice = f"the pieces {lattice}"
    points = "; ".join(", ".join(f"{k}={v}" for k, v in p.items()) for p in report.verified)
    sym = (", ".join(report.symbolic) + " traced symbolically; ") if report.symbolic else ""
    fix = (" (fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()) + ")") if fixed else ""
    only = (f" Only the kinds of work {', '.join(report.kinds)} were fitted (weighed_only: "
            "what the convention weighs); other kinds are left out, and with_convention "
            "refuses a convention that weighs them.") if report.kinds else ""
    return (f"DERIVED from {len(report.solved)} traces of {name}{fix} on the meta device "
            f"({report.traces} in all with the lattice search and the checks): {sym}"
            f"exact polynomial in {', '.join(report.symbols)} interpolated per module path, "
            f"verified at {len(report.verified)} further points never used in the solve "
            f"({points}).{far} Valid for {lattice}.{only}")
