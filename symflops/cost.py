"""``Cost``: params, MACs and FLOPs of a layer or a network, as SymPy expressions.

A Cost is an immutable tree. A leaf holds its *work* split into kinds (see
:mod:`symflops.conventions`) and the derivation that produced it; a composite
holds named children and sums them. ``flops`` weighs the work by the Cost's
convention, so switching conventions never recounts anything.

>>> import symflops as sf
>>> from symflops.symbols import B, H, W
>>> c = sf.nn.Conv2d(3, 8, 3, padding=1).cost((B, 3, H, W))
>>> c.flops
432*B*H*W
>>> c.with_convention("macs").flops
216*B*H*W
>>> c.subs(B=1, H=4, W=4).flops
6912
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from symflops.conventions import KINDS, Convention, get_convention
from symflops.domain import Domain
from symflops.errors import OutsideDomain, SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.memory import Memory
from symflops.simplification import simplify_expr

__all__ = ["Cost", "QUANTITIES", "weighted_work", "size_value"]

#: The quantities a Cost reports.
QUANTITIES = ("params", "macs", "flops")

Shape = tuple[sp.Expr, ...]


def _expr(x: Any) -> sp.Expr:
    if isinstance(x, sp.Basic):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return sp.Integer(int(x))
    raise SymflopsError("expected an int or a SymPy expression", values={"value": repr(x)})


class Cost:
    """Params, MACs and FLOPs (under a named convention) of a layer or a network.

    Attributes: ``name`` (the child's name in its parent), ``layer`` (the layer type),
    ``io`` (the bytes its own op moves, by role and direction: :meth:`bytes_by`),
    ``params``, ``macs``, ``flops``, ``work`` (per kind), ``input_shape``,
    ``output_shape``, ``children``, ``count`` (how many times the parent repeats this
    child), ``derivation`` (leaves), ``validity`` (conditions the formula assumes),
    ``convention``, ``op`` (the aten op a traced leaf counts, ``""`` elsewhere) and
    ``memory`` (a :class:`symflops.memory.Memory` in ``mode="train"``, a
    :class:`symflops.serving.ServingMemory` in ``"prefill"``/``"decode"``, else None).
    """

    __slots__ = ("name", "layer", "spec", "params", "work", "input_shape", "output_shape",
                 "children", "count", "derivation", "validity", "convention", "notes",
                 "op", "memory", "io", "_flops", "_simplified")

    def __init__(
        self,
        name: str,
        layer: str,
        *,
        params: Any = 0,
        work: Mapping[str, Any] | None = None,
        input_shape: Sequence[Any] = (),
        output_shape: Sequence[Any] = (),
        children: Sequence[Cost] = (),
        count: Any = 1,
        derivation: Derivation | None = None,
        validity: Sequence[sp.Basic] = (),
        convention: str | Convention = "exact",
        spec: str = "",
        notes: Sequence[str] = (),
        op: str = "",
        memory: Memory | None = None,
        io: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        put = object.__setattr__  # a Cost is immutable: fields are set here and in _derive
        put(self, "name", name)
        put(self, "layer", layer)
        put(self, "spec", spec or layer)
        put(self, "children", tuple(children))
        put(self, "count", _expr(count))
        put(self, "convention", get_convention(convention))
        if work is None:  # a composite: the sum of its children
            put(self, "work", _frozen(_sum_work(self.children)))
            put(self, "params", sp.Add(*(c.count * c.params for c in self.children)))
        else:
            put(self, "work", _frozen(_checked_work(work, layer)))
            put(self, "params", simplify_expr(_expr(params)))
        put(self, "input_shape", tuple(_expr(s) for s in input_shape))
        put(self, "output_shape", tuple(_expr(s) for s in output_shape))
        put(self, "derivation", derivation)
        put(self, "validity", _conditions(validity))
        put(self, "notes", tuple(notes))
        put(self, "op", op)
        put(self, "memory", memory)
        put(self, "io", _io(io, layer))
        put(self, "_flops", None)
        put(self, "_simplified", not self.children)

    # the fields never change after construction (derive new Costs with replace)
    name: str
    layer: str
    spec: str
    children: tuple[Cost, ...]
    count: sp.Expr
    convention: Convention
    work: Mapping[str, sp.Expr]
    params: sp.Expr
    input_shape: Shape
    output_shape: Shape
    derivation: Derivation | None
    validity: tuple[sp.Basic, ...]
    notes: tuple[str, ...]
    op: str
    #: training memory (``mode="train"``), else None
    #: (a ServingMemory in prefill/decode: set through :meth:`replace`)
    memory: Memory | None
    #: bytes this node's own op(s) move, ``(role, direction) -> bytes`` (see :meth:`bytes_by`);
    #: None where not derived
    io: Mapping[tuple[str, str], sp.Expr] | None
    _flops: sp.Expr | None  # the lazily computed total (a private cache)
    _simplified: bool

    def __setattr__(self, name: str, value: Any) -> None:
        raise SymflopsError(f"a Cost is immutable: {name} cannot be set", layer=self.spec,
                            fix=f"derive a new Cost with cost.replace({name}=...)")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy support: every slot (a subclass's too), restored without
        ``__setattr__``."""
        state = {slot: getattr(self, slot) for klass in type(self).__mro__
                 for slot in getattr(klass, "__slots__", ()) if hasattr(self, slot)}
        state["work"] = dict(self.work)  # a read-only view does not pickle
        if self.io is not None:
            state["io"] = dict(self.io)
        return _restored, (type(self), state)

    def __delattr__(self, name: str) -> None:
        raise SymflopsError(f"a Cost is immutable: {name} cannot be deleted", layer=self.spec,
                            fix="derive a new Cost with cost.replace(...)")

    # -- the three quantities ------------------------------------------------------
    @property
    def macs(self) -> sp.Expr:
        """Multiply-accumulates of conv/linear/matmul/attention work."""
        return self.work.get("matmul_mul", sp.Integer(0))

    @property
    def flops(self) -> sp.Expr:
        """The work weighted by this Cost's convention (``convention.label`` names it)."""
        if self._flops is None:
            only = self.children[0] if len(self.children) == 1 else None
            if only is not None and only.convention == self.convention:
                # a Repeat (or any one-child container): count times the child's total,
                # already simplified, instead of expanding it again
                flops = only.total_flops
            else:
                total = weighted_work(self.work, self.convention)
                flops = simplify_expr(total) if self._simplified else total
            object.__setattr__(self, "_flops", flops)  # a private cache, not a field
        return self._flops

    def quantity(self, name: str) -> sp.Expr:
        """``params``, ``macs``, ``flops`` or a kind of work by name."""
        if name in QUANTITIES:
            return getattr(self, name)
        if name in KINDS:
            return self.work.get(name, sp.Integer(0))
        raise SymflopsError("unknown quantity", values={"quantity": name},
                            fix="use params, macs, flops or one of " + ", ".join(KINDS))

    @property
    def total_flops(self) -> sp.Expr:
        """``count * flops``: what this child adds to its parent."""
        return self.count * self.flops

    # -- bytes moved -----------------------------------------------------------------
    def bytes_by(self, kind: str = "role") -> dict[str, sp.Expr]:
        """Bytes moved by the whole tree, by ``kind``: ``"role"`` (``weights``: parameters
        and buffers; ``kv_cache``; ``activations``: every other tensor), ``"direction"``
        (``read``, ``write``) or ``"both"`` (``"role.direction"``).

        The definition (torch running the ops unfused): each op reads each of its tensor
        arguments once and writes each output once, in their dtype (a broadcast dim, stride
        0, counted once; a lookup reads only the rows it gathers; ``copy_`` and fills only
        write their target); views, allocations and
        shape ops move nothing. A repeated child counts ``count`` times. ``sf.nn`` layers
        in ``mode="prefill"``/``"decode"`` count each layer as one kernel (its input, its
        own parameters, its output; attention part by part, keys and values from the KV
        cache), activations in bf16; traced models count every aten op torch runs.

        >>> import symflops as sf
        >>> from symflops.symbols import B
        >>> c = sf.nn.Linear(8, 4).cost((B, 1, 8), mode="decode", context=0)
        >>> c.bytes_by("role")       # bf16: x (8 B), W and b (36), y (4 B), 2 bytes each
        {'activations': 24*B, 'weights': 72}
        """
        if kind not in ("role", "direction", "both"):
            raise SymflopsError("bytes_by: unknown kind", layer=self.spec,
                                values={"kind": kind}, fix="use 'role', 'direction' or 'both'")
        out: dict[str, sp.Expr] = {}
        for (role, direction), v in self._traffic().items():
            key = role if kind == "role" else direction if kind == "direction" else \
                f"{role}.{direction}"
            out[key] = out.get(key, sp.Integer(0)) + v
        return {k: sp.expand(v) for k, v in sorted(out.items()) if sp.expand(v) != 0}

    @property
    def bytes(self) -> sp.Expr:
        """Total bytes moved (:meth:`bytes_by`), an exact expression."""
        total: sp.Expr = sp.expand(sp.Add(*self._traffic().values()))
        return total

    @property
    def bytes_by_role(self) -> dict[str, sp.Expr]:
        """:meth:`bytes_by` ``("role")``: weights, activations, kv_cache."""
        return self.bytes_by("role")

    @property
    def intensity(self) -> sp.Expr:
        """Arithmetic intensity: ``flops / bytes`` (FLOPs under this Cost's convention)."""
        from symflops.devices import intensity

        return intensity(self.total_flops, self.count * self.bytes)

    def roofline(self, device: Any, dtype: str = "bf16") -> sp.Expr:
        """A time lower bound in seconds on ``device`` (a name or a
        :class:`~symflops.devices.Device`): per op ``max(flops / peak, bytes / bandwidth)``,
        summed over the ops (no overlap between ops assumed). FLOPs under this Cost's
        convention: use ``"torch"`` or ``"exact"``, never ``"macs"`` (a MAC is 2 FLOPs
        on the datasheets)."""
        from symflops.devices import get_device

        if self.convention.name == "macs":
            raise SymflopsError("a roofline needs FLOPs; this Cost counts MACs",
                                layer=self.spec, values={"convention": "macs"},
                                fix="cost.with_convention('torch').roofline(...)")
        d = get_device(device)
        peak, bandwidth = d.peak_for(dtype), d.bandwidth
        return self.count * self._time(peak, bandwidth)

    def compute_bound_at(self, device: Any, symbol: Any = "B", dtype: str = "bf16"
                         ) -> sp.Expr:
        """The value of ``symbol`` (by default the batch ``B``) where this Cost's intensity
        reaches ``device``'s ridge point: below it memory-bound, above it compute-bound
        (:func:`symflops.devices.compute_bound_at`; FLOPs under this Cost's convention,
        which must not be ``macs``)."""
        from symflops.devices import compute_bound_at

        if self.convention.name == "macs":
            raise SymflopsError("a ridge point compares FLOPs; this Cost counts MACs",
                                layer=self.spec, fix="cost.with_convention('torch')")
        s = self._resolve({symbol: 1} if not isinstance(symbol, str) else None,
                          {symbol: 1} if isinstance(symbol, str) else {})
        (sym,) = s
        return compute_bound_at(self.total_flops, self.count * self.bytes, sym, device, dtype)

    def _time(self, peak: sp.Expr, bandwidth: sp.Expr) -> sp.Expr:
        if self.op or not self.children:  # one op: compute- or memory-bound
            return sp.Max(self.flops / peak, sp.Add(*self._traffic().values()) / bandwidth)
        # one traced op split into sibling parts (fused attention: scores, softmax,
        # context) carries its bytes on its first part and none (``{}``) on the others:
        # such a run of siblings is one op
        runs: list[list[Cost]] = []
        for c in self.children:
            continues = bool(runs) and bool(c.op) and not c.children and c.io is not None \
                and not c.io and runs[-1][0].op == c.op and not runs[-1][0].children
            if continues:
                runs[-1].append(c)
            else:
                runs.append([c])
        times = []
        for run in runs:
            if len(run) == 1:
                times.append(run[0].count * run[0]._time(peak, bandwidth))
                continue
            flops = sp.Add(*(c.total_flops for c in run))
            nbytes = sp.Add(*(c.count * v for c in run for v in c._traffic().values()))
            times.append(sp.Max(flops / peak, nbytes / bandwidth))
        own = sp.Add(*(self.io or {}).values())  # data movement of the node itself: 0 FLOPs
        return sp.Add(*times) + own / bandwidth

    def _traffic(self) -> dict[tuple[str, str], sp.Expr]:
        """(role, direction) -> bytes of this node, its children's included."""
        if self.io is None and not self.children:
            if not self.work:  # a holder of parameters: their bytes count where used
                return {}
            raise SymflopsError("bytes moved are not derived for this layer", layer=self.spec,
                                fix="trace the torch module with sf.trace (every aten op's "
                                    "bytes are counted there)")
        out: dict[tuple[str, str], sp.Expr] = dict(self.io or {})
        for c in self.children:
            for k, v in c._traffic().items():
                out[k] = out.get(k, sp.Integer(0)) + c.count * v
        return out

    # -- tree navigation -------------------------------------------------------------
    def walk(self, prefix: str = "") -> Iterator[tuple[str, Cost]]:
        """Yield ``(path, cost)`` for this node and every descendant, depth first."""
        yield prefix, self
        for child in self.children:
            path = f"{prefix}.{child.name}" if prefix else child.name
            yield from child.walk(path)

    def leaves(self) -> Iterator[tuple[str, Cost]]:
        """``(path, cost)`` of every leaf."""
        for path, c in self.walk():
            if not c.children:
                yield path, c

    def __getitem__(self, path: str) -> Cost:
        if not isinstance(path, str):
            raise SymflopsError("a part is looked up by its path, a string", layer=self.spec,
                                values={"key": repr(path)},
                                fix='write cost["layer1.0.conv1"] (names joined by dots)')
        node = self
        for part in path.split("."):
            for child in node.children:
                if child.name == part:
                    node = child
                    break
            else:
                names = ", ".join(c.name for c in node.children) or "none"
                raise SymflopsError(f"no child called {part!r}", layer=node.spec,
                                    values={"path": path}, fix=f"children are: {names}")
        return node

    @classmethod
    def from_derivation(cls, name: str, layer: str, derivation: Derivation, *,
                        spec: str = "", input_shape: Sequence[Any] = (),
                        output_shape: Sequence[Any] = (), validity: Sequence[sp.Basic] = (),
                        convention: str | Convention = "exact", notes: Sequence[str] = (),
                        op: str = "") -> Cost:
        """A leaf whose work and params are ``derivation``'s general formulas with its
        bindings substituted (computed once, here).

        >>> import sympy as sp
        >>> from symflops.symbols import I, M, O
        >>> d = Derivation({"matmul_mul": M * I * O}, (I + 1) * O, {M: 2, I: 3, O: 4})
        >>> Cost.from_derivation("fc", "Linear", d).params
        16
        """
        return cls(name, layer, spec=spec, params=derivation.params, work=derivation.work,
                   input_shape=input_shape, output_shape=output_shape, validity=validity,
                   convention=convention, notes=notes, op=op, derivation=derivation)

    # -- transformations (all return new Costs) ---------------------------------------
    def replace(self, **changes: Any) -> Cost:
        """A copy with the named fields changed (the one way to derive a Cost from another).

        Fields: ``name``, ``layer``, ``spec``, ``params``, ``work``, ``input_shape``,
        ``output_shape``, ``children``, ``count``, ``derivation``, ``validity``,
        ``convention``, ``notes``, ``op``, ``memory``, ``io``. Values are normalized as the
        constructor does; a composite given new ``children`` (and no ``work``) sums them
        again. A subclass's own fields (a trace's report) carry over.

        >>> import symflops as sf
        >>> c = sf.nn.Linear(8, 4).cost(("B", 8))
        >>> c.replace(count=3).total_flops
        192*B
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise SymflopsError("Cost.replace: unknown fields", layer=self.spec,
                                values={"fields": unknown}, fix="use one of " + ", ".join(_FIELDS))
        norm: dict[str, Callable[[Any], Any]] = {
            "count": _expr,
            "params": lambda v: simplify_expr(_expr(v)),
            "work": lambda v: _frozen(_checked_work(v, self.layer)),
            "input_shape": lambda v: tuple(_expr(s) for s in v),
            "output_shape": lambda v: tuple(_expr(s) for s in v),
            "children": tuple,
            "validity": _conditions,
            "convention": get_convention,
            "notes": tuple,
            "io": lambda v: _io(v, self.layer),
        }
        fields = {key: norm.get(key, lambda v: v)(value) for key, value in changes.items()}
        if "children" in changes:
            children = fields["children"]
            if children and "work" not in changes:
                fields["work"] = _frozen(_sum_work(children))
            if children and "params" not in changes:
                fields["params"] = sp.Add(*(c.count * c.params for c in children))
            fields["_simplified"] = not children
        return self._derive(**fields)

    def _derive(self, **fields: Any) -> Cost:
        """A copy with ``fields`` (already normalized) set; every other slot, a subclass's
        included, carries over; the FLOPs cache is dropped. Only :meth:`replace` and the
        transformations below call it."""
        new = object.__new__(type(self))
        for klass in type(self).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if hasattr(self, slot):
                    object.__setattr__(new, slot, getattr(self, slot))
        for key, value in fields.items():
            object.__setattr__(new, key, value)
        object.__setattr__(new, "_flops", None)
        return new

    def with_convention(self, convention: str | Convention) -> Cost:
        """The same tree, its ``flops`` weighed by another convention."""
        weights = get_convention(convention)
        return self._derive(convention=weights,
                            children=tuple(c.with_convention(weights) for c in self.children))

    def subs(self, values: Mapping[Any, Any] | None = None, /, **named: Any) -> Cost:
        """Substitute values for symbols, by symbol or by name, through the whole tree.

        Values are ints or SymPy expressions (strings are refused: parse them first with
        :func:`symflops.parse.parse_expr`). A substitution that breaks a condition the
        formulas assume (a kernel larger than its padded input, say) raises.
        """
        mapping = self._resolve(values, named)
        self.domain.check(mapping)
        return self._substituted(mapping)

    @property
    def domain(self) -> Domain:
        """The :class:`~symflops.domain.Domain` the formulas were proven on: every
        condition of the tree (lower bounds, lattices, upper bounds where a fit or a
        factory stopped looking, pinned sizes), readable and checkable.

        >>> import symflops as sf
        >>> from symflops.symbols import B, H, W
        >>> c = sf.nn.Conv2d(3, 8, 7).cost((B, 3, H, W))
        >>> print(c.domain)
        H >= 7; W >= 7
        >>> c.domain.contains(H=6, W=9)
        False
        """
        return Domain(list(self._all_validity()))

    def _substituted(self, mapping: Mapping[sp.Symbol, sp.Expr]) -> Cost:
        """This tree with ``mapping`` substituted everywhere; conditions now settled drop
        out, the rest keep checking."""
        def sub(e: sp.Expr) -> sp.Expr:
            return e.xreplace(mapping) if e.free_symbols else e

        work = {k: sub(v) for k, v in self.work.items()}
        return self._derive(
            children=tuple(c._substituted(mapping) for c in self.children),
            count=sub(self.count), params=sub(self.params),
            work=_frozen({k: v for k, v in work.items() if v != 0}),
            input_shape=tuple(sub(s) for s in self.input_shape),
            output_shape=tuple(sub(s) for s in self.output_shape),
            validity=_conditions(c.xreplace(mapping) for c in self.validity),
            memory=None if self.memory is None else self.memory.xreplace(mapping),
            io=None if self.io is None else _frozen_io({k: sub(v) for k, v in self.io.items()}))

    def substitution(self, values: Mapping[Any, Any] | None = None, /, **named: Any
                     ) -> dict[sp.Symbol, sp.Expr]:
        """The substitution :meth:`subs` makes for these values: each value by its symbol,
        checked as ``subs`` checks it (renders use it to show what was substituted).

        >>> import symflops as sf
        >>> sf.nn.Linear(8, 4).cost(("B", 8)).substitution(B=2)
        {B: 2}
        """
        return self._resolve(values, named)

    def xreplace(self, mapping: Mapping[sp.Symbol, sp.Expr]) -> Cost:
        """SymPy's ``xreplace`` through the whole tree: a change of variables (``H`` ->
        ``32*h`` and back), structural and unchecked. Values go through :meth:`subs`,
        which checks them.

        >>> import symflops as sf, sympy as sp
        >>> from symflops.symbols import B
        >>> h = sp.Dummy("h", integer=True, positive=True)
        >>> sf.nn.Linear(8, 4).cost((B, 8)).xreplace({B: 3 * h}).flops
        192*_h
        """
        return self._substituted(dict(mapping))

    def _all_validity(self) -> Iterator[tuple[str, sp.Basic]]:
        for path, c in self.walk():
            for v in c.validity:
                yield (c.spec + (f" at {path}" if path else "")), v

    def _resolve(self, values: Mapping[Any, Any] | None, named: Mapping[str, Any]
                 ) -> dict[sp.Symbol, sp.Expr]:
        """``values`` and ``named`` as one checked substitution: each key a symbol of this
        cost (by Symbol or by name), each value a positive integer or an expression SymPy
        proves a positive integer, no symbol given two values."""
        if values is not None and not isinstance(values, Mapping):
            if isinstance(values, str):
                raise SymflopsError("substitutions are values, not text", layer=self.spec,
                                    values={"text": repr(values)},
                                    fix="write cost.subs(H=224), or parse the text first: "
                                        "cost.subs(symflops.parse.parse_assignments(text))")
            raise SymflopsError("substitutions are a mapping of symbols to values",
                                layer=self.spec, values={"got": type(values).__name__},
                                fix="write cost.subs({H: 224}) or cost.subs(H=224)")
        known = self.free_symbols | {s for _, v in self._all_validity()
                                     for s in v.free_symbols} | _memory_symbols(self.memory)
        by_name = {s.name: s for s in known}
        out: dict[sp.Symbol, sp.Expr] = {}
        for key, val in [*(values or {}).items(), *named.items()]:
            sym = self._known_symbol(key, by_name, known)
            expr = size_value(self.spec, sym, val)
            if sym in out and out[sym] != expr:
                raise SymflopsError(f"{sym.name} is given two values", layer=self.spec,
                                    values={sym.name: f"{out[sym]} and {expr}"},
                                    fix="give each symbol one value (by Symbol or by name)")
            out[sym] = expr
        return out

    def _known_symbol(self, key: Any, by_name: Mapping[str, sp.Symbol],
                      known: set[sp.Symbol]) -> sp.Symbol:
        """The symbol of this cost that ``key`` (a Symbol or a name) stands for."""
        names = ", ".join(sorted(by_name)) or "none: it is a number"
        if isinstance(key, sp.Symbol) and key in known:
            return key
        if isinstance(key, sp.Symbol) and key.name in by_name:
            raise SymflopsError(f"{key.name} here is a different symbol from the cost's "
                                f"{key.name} (its assumptions differ)", layer=self.spec,
                                values={"symbol": key.name},
                                fix=f"use the name {key.name!r} or "
                                    f"sf.symbols.symbol({key.name!r})")
        if isinstance(key, (str, sp.Symbol)):
            name = key if isinstance(key, str) else key.name
            if name in by_name:
                return by_name[name]
            raise SymflopsError(f"the cost has no symbol {name}", layer=self.spec,
                                values={"symbol": name}, fix=f"its symbols are: {names}")
        raise SymflopsError("substitution keys must be symbols or names",
                            layer=self.spec, values={"key": repr(key)},
                            fix="use a Symbol or its name, e.g. H=224")

    @property
    def free_symbols(self) -> set[sp.Symbol]:
        """Symbols the totals and shapes depend on."""
        syms: set[sp.Symbol] = set()
        for e in (self.params, self.count, *self.work.values(), *self.output_shape,
                  *self.input_shape):
            syms |= e.free_symbols
        return syms

    def simplify(self) -> Cost:
        """Every quantity collected into a readable polynomial (floors kept as they are)."""
        children = tuple(c.simplify() for c in self.children)
        if len(children) == 1:  # count times the simplified child: nothing to re-expand
            only = children[0]
            work = {k: only.count * v for k, v in only.work.items()}
            params = only.count * only.params
        elif children:
            work = {k: simplify_expr(v) for k, v in _sum_work(children).items()}
            params = simplify_expr(sp.Add(*(c.count * c.params for c in children)))
        else:
            work = {k: v for k, v in ((k, simplify_expr(v)) for k, v in self.work.items())
                    if v != 0}
            params = simplify_expr(self.params)
        return self._derive(
            children=children, count=simplify_expr(self.count), params=params,
            work=_frozen(work), _simplified=True,
            input_shape=tuple(simplify_expr(s) for s in self.input_shape),
            output_shape=tuple(simplify_expr(s) for s in self.output_shape))

    # -- numbers -----------------------------------------------------------------------
    def evaluate(self, quantity: str = "flops", **values: Any) -> np.ndarray:
        """Evaluate ``quantity`` on scalars or numpy arrays (broadcast), compiled once.

        Integer inputs give exact int64 results (floors as integer division); the
        result is checked for int64 overflow.

        >>> import numpy as np, symflops as sf
        >>> c = sf.nn.Linear(8, 4).cost(("B", 8))
        >>> c.evaluate(B=np.array([1, 2, 3])).tolist()
        [64, 128, 192]
        """
        expr = self.quantity(quantity)
        syms = self._evaluated_symbols(expr, quantity, values)
        from symflops.evaluate import check_sizes, compile_expr

        try:
            arrays = check_sizes(syms, [values[s.name] for s in syms])[0]
            self._check_validity_at(syms, arrays)
            return compile_expr(expr, syms, what=quantity)(*arrays)
        except SymflopsError as e:  # name the layer the numbers came from
            if e.layer is None:
                e.layer = self.spec
                e.args = (e._text(),)
            raise

    def _evaluated_symbols(self, expr: sp.Expr, quantity: str, values: Mapping[str, Any]
                           ) -> tuple[sp.Symbol, ...]:
        """The symbols ``values`` names (by name), one for each of ``expr``'s, or the error
        that lists those without a value."""
        resolved = self._resolve(None, {k: 1 for k in values})  # names -> symbols
        missing = sorted(s.name for s in expr.free_symbols if s not in resolved)
        if missing:
            raise SymflopsError(f"evaluate({quantity!r}) needs a value for every symbol",
                                layer=self.spec, values={"missing": missing},
                                fix="pass " + ", ".join(f"{m}=..." for m in missing))
        return tuple(resolved)

    def _check_validity_at(self, syms: tuple[sp.Symbol, ...], arrays: list[np.ndarray]) -> None:
        """Raise unless every point meets every condition the formulas assume (the sizes
        themselves were checked by :func:`symflops.evaluate.check_sizes`): one vectorized
        mask per condition, one error naming the first bad point."""
        from symflops.evaluate import compile_condition

        shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])

        def first_bad(ok: np.ndarray) -> dict[str, Any]:
            bad = tuple(int(i) for i in np.argwhere(~ok)[0])
            point = {s.name: np.broadcast_to(a, shape)[bad]
                     for s, a in zip(syms, arrays, strict=True)}
            # an object array (beyond int64) holds Python ints, which have no .item()
            return {k: v.item() if isinstance(v, np.generic) else v for k, v in point.items()}

        given = set(syms)
        domain = self.domain
        for where, cond in domain.conditions:
            if not cond.free_symbols <= given:
                continue
            ok = np.broadcast_to(compile_condition(cond, syms)(*arrays), shape)
            if not ok.all():
                bad = first_bad(ok)
                point = {s: bad[s.name] for s in syms}
                raise OutsideDomain(f"the formula's condition {cond} fails", layer=where,
                                    values=bad, fix=domain.fix_for(cond, point),
                                    options=domain.options_for(cond, point))

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        shape = "(" + ", ".join(str(s) for s in self.output_shape) + ")"
        return (f"Cost({self.spec}, params={self.params}, macs={self.macs}, "
                f"flops[{self.convention.name}]={self.flops}, output_shape={shape})")

    def __format__(self, spec: str) -> str:
        if not spec:
            return repr(self)
        from symflops.rendering import render

        return render(self, spec)

    def _repr_latex_(self) -> str:
        from symflops.rendering import render

        return render(self, "latex", depth=1, math_only=True)

    def _repr_markdown_(self) -> str:
        from symflops.rendering import render

        return render(self, "markdown", depth=1)


def size_value(where: str, sym: sp.Symbol, value: Any) -> sp.Expr:
    """``value`` checked as a value of the size ``sym`` (``where`` names the layer in the
    error): an int, or a SymPy expression SymPy proves a positive integer (``H + 1``,
    ``2*H``) when ``sym`` is one. Bools, floats, strings and plain Symbols are refused.

    >>> from symflops.symbols import H, W
    >>> size_value("Conv2d", W, H + 1)
    H + 1
    >>> size_value("Conv2d", W, H - 1000)
    Traceback (most recent call last):
    ...
    symflops.errors.SymflopsError: Conv2d: SymPy cannot prove this value positive (W=H - 1000); ...
    """
    label = sym.name
    if isinstance(value, str):
        raise SymflopsError("substitution values must be ints or expressions", layer=where,
                            values={label: repr(value)},
                            fix="parse strings with symflops.parse.parse_expr first")
    if isinstance(value, (bool, np.bool_)) or value is sp.true or value is sp.false:
        raise SymflopsError("a size is an int, not a bool", layer=where,
                            values={label: value}, fix=f"give {label} an int value")
    if isinstance(value, (float, np.floating)) or (isinstance(value, sp.Expr)
                                                   and value.has(sp.Float)):
        raise SymflopsError("sizes must be integers, not floats", layer=where,
                            values={label: value},
                            fix=f"give {label} an int value (224, not 224.0)")
    if not isinstance(value, (int, np.integer, sp.Expr)):
        raise SymflopsError("substitution values must be ints or expressions", layer=where,
                            values={label: repr(value)}, fix=f"give {label} an int value")
    expr = _expr(value)
    plain = sorted(s.name for s in expr.free_symbols
                   if s.is_positive is not True or s.is_integer is not True)
    if plain and (sym.is_positive or sym.is_integer):
        raise SymflopsError("a value is written in symbols that are not sizes (no "
                            "positive-integer assumptions)", layer=where,
                            values={label: expr},
                            fix=f"make them with sf.symbols.symbol({plain[0]!r})")
    if sym.is_positive and expr.is_positive is not True:
        text = "sizes must be positive" if expr.is_number else \
            "SymPy cannot prove this value positive"
        raise SymflopsError(text, layer=where, values={label: expr},
                            fix=f"give {label} a value >= 1" if expr.is_number else
                            f"give {label} a number or a sum/product of sizes "
                            "(H + 1, 2*H)")
    if sym.is_nonnegative and not sym.is_positive and expr.is_nonnegative is not True:
        raise SymflopsError(f"{label} must be an integer >= 0" if expr.is_number else
                            "SymPy cannot prove this value non-negative", layer=where,
                            values={label: expr}, fix=f"give {label} a value >= 0")
    if sym.is_integer and expr.is_integer is not True:
        raise SymflopsError("sizes must be integers", layer=where, values={label: expr},
                            fix=f"give {label} an int value" if expr.is_number else
                            f"give {label} a value SymPy proves an integer (H + 1, 2*H)")
    return expr


#: the fields :meth:`Cost.replace` may change
_FIELDS = ("name", "layer", "spec", "params", "work", "input_shape", "output_shape", "children",
           "count", "derivation", "validity", "convention", "notes", "op", "memory", "io")


def _restored(cls: type[Cost], state: Mapping[str, Any]) -> Cost:
    """A pickled or copied Cost, its fields set as the constructor sets them."""
    new = object.__new__(cls)
    for key, value in state.items():
        object.__setattr__(new, key, value)
    object.__setattr__(new, "work", _frozen(state["work"]))
    if state.get("io") is not None:
        object.__setattr__(new, "io", _frozen_io(state["io"]))
    return new


def _memory_symbols(memory: Any) -> set[sp.Symbol]:
    """Symbols only the memory knows (a data-parallel degree ``D``, a pipeline degree)."""
    import dataclasses

    if memory is None or not dataclasses.is_dataclass(memory):
        return set()
    out: set[sp.Symbol] = set()
    for f in dataclasses.fields(memory):
        value = getattr(memory, f.name)
        if isinstance(value, sp.Basic):
            out |= value.free_symbols
    return out


def _conditions(conditions: Iterable[sp.Basic]) -> tuple[sp.Basic, ...]:
    """Conditions kept once each, in order, without the ones already known true."""
    return tuple(dict.fromkeys(c for c in conditions if c is not sp.true))


#: the roles and directions of bytes moved (:meth:`Cost.bytes_by`)
ROLES = ("weights", "activations", "kv_cache")
DIRECTIONS = ("read", "write")


def _io(io: Mapping[tuple[str, str], Any] | None, layer: str
        ) -> Mapping[tuple[str, str], sp.Expr] | None:
    if io is None:
        return None
    out: dict[tuple[str, str], sp.Expr] = {}
    for key, v in io.items():
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] in ROLES and
                key[1] in DIRECTIONS):
            raise SymflopsError("bytes moved are keyed by (role, direction)", layer=layer,
                                values={"key": repr(key)},
                                fix=f"roles {', '.join(ROLES)}; directions read, write")
        value = _expr(v)
        if value != 0:
            out[key] = out.get(key, sp.Integer(0)) + value
    return _frozen_io(out)


def _frozen_io(io: Mapping[tuple[str, str], sp.Expr]) -> Mapping[tuple[str, str], sp.Expr]:
    return MappingProxyType({k: v for k, v in io.items() if v != 0})


def _frozen(work: Mapping[str, sp.Expr]) -> Mapping[str, sp.Expr]:
    """A read-only view of a work dict (a Cost never changes after construction)."""
    return MappingProxyType(dict(work))


def weighted_work(work: Mapping[str, sp.Expr], convention: Convention) -> sp.Expr:
    """The work weighted by ``convention``: the one place FLOPs are summed from kinds.

    >>> from symflops.conventions import get_convention
    >>> from symflops.symbols import M
    >>> weighted_work({"matmul_mul": 4 * M, "bias": M}, get_convention("torch"))
    8*M
    """
    return convention.weigh(work)


#: False while a trace only checks another one: its Costs are compared at points, never
#: shown, so their work is kept as built (see :func:`unsimplified`)
_SIMPLIFIED: contextvars.ContextVar[bool] = contextvars.ContextVar("simplified", default=True)


@contextlib.contextmanager
def unsimplified() -> Iterator[None]:
    """Costs built inside keep their work as given, not in :func:`simplify_expr`'s form
    (the same values). For a trace that is only compared with another at points
    (``symflops.tracing._branches``): simplifying its formulas was a quarter of that time.

    >>> from symflops.symbols import H, W
    >>> with unsimplified():
    ...     Cost("x", "Custom", work={"bias": H*(W + 1) + H}).work["bias"]
    H*(W + 1) + H
    >>> Cost("x", "Custom", work={"bias": H*(W + 1) + H}).work["bias"]
    H*(W + 2)
    """
    token = _SIMPLIFIED.set(False)
    try:
        yield
    finally:
        _SIMPLIFIED.reset(token)


def _checked_work(work: Mapping[str, Any], layer: str) -> dict[str, sp.Expr]:
    unknown = set(work) - set(KINDS)
    if unknown:
        raise SymflopsError("unknown kinds of work", layer=layer,
                            values={"kinds": sorted(unknown)})
    shape = simplify_expr if _SIMPLIFIED.get() else (lambda e: e)
    return {k: shape(_expr(v)) for k, v in work.items() if v != 0}


def _sum_work(children: Sequence[Cost]) -> dict[str, sp.Expr]:
    terms: dict[str, list[sp.Expr]] = {}
    for c in children:
        for k, v in c.work.items():
            terms.setdefault(k, []).append(c.count * v if c.count != 1 else v)
    return {k: sp.Add(*vs) for k, vs in terms.items()}
