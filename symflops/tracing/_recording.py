"""Recording: run the model once on fake tensors, keep every aten op it calls with the
module that called it (a dispatch mode plus global module hooks; nothing is written
onto the user's model).

>>> import torch
>>> from symflops.conventions import get_convention
>>> from symflops.tracing._inputs import TraceContext, parse_inputs
>>> from symflops.tracing import _torch_compat as C
>>> ctx = TraceContext.build(torch.nn.Linear(4, 2), *parse_inputs("B 4"), {},
...                          get_convention("exact"))
>>> [(r.name, r.path) for r in record(ctx, C.SymEnv()).records]
[('addmm', ())]
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
import torch

from symflops.errors import SymbolicShapesFailed, SymflopsError, TimeBudgetSpent
from symflops.tracing import _torch_compat as C
from symflops.tracing import handlers as _handlers  # noqa: F401  (registers the built-ins)
from symflops.tracing._cache import make_cache
from symflops.tracing._data_dependent import CountLog, counts_for
from symflops.tracing._guard import model_line, raising_cleanly
from symflops.tracing._index_bounds import IndexBounds
from symflops.tracing._inputs import InputSpec, TraceContext
from symflops.tracing._model_state import untouched
from symflops.tracing._same_shape import contiguous_strides  # noqa: F401  (its rules)
from symflops.tracing._saved import SavedLog, saved_tensors
from symflops.tracing._shape_rules import SHAPE_RULES, RawShape, forget_shapes, shape_of
from symflops.tracing.handlers._fused import fused_calls
from symflops.tracing.registry import HANDLERS, ZERO_COST, op_name

__all__ = ["Record", "Recording", "TableCheck", "record", "tensors", "ROOT", "ModulePath",
           "TimeBudgetSpent"]

ModulePath = tuple[str, ...]
ROOT: ModulePath = ()
_META_KEY = "symflops_path"


def _budget_check(ctx: TraceContext, rec: Recording) -> Any:
    deadline = ctx.deadline

    def check() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raising_cleanly()
            where = ".".join(rec.stack[-1]) or "(root)"
            raise TimeBudgetSpent(
                f"the trace ran out of its time budget ({ctx.budget:g} s) at {where}",
                layer="trace", values={"ops recorded": len(rec.records)},
                fix="pass a larger {time_budget}, fix some dims to ints (concrete sizes), "
                    "or pass {fallback} to fit an exact formula from concrete traces",
                options={"time_budget": ..., "fallback": "fit"})

    return check


@dataclass
class Record:
    """One aten call: its overload packet, arguments with tensors as :class:`RawShape`,
    tensor outputs, the module path that called it, and whether it ran in backward."""

    packet: Any
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: tuple[RawShape, ...]
    path: ModulePath
    backward: bool
    #: bytes the op moves: ((role, direction), torch-SymPy bytes) pairs (:func:`traffic`)
    io: tuple[tuple[tuple[str, str], Any], ...] = ()


#: ops that move no bytes though they are not views: allocations whose contents are not
#: written (``empty``) and the aliasing reshape of a fresh result (``_unsafe_view``)
_NO_TRAFFIC = frozenset({"empty", "empty_like", "empty_strided", "new_empty",
                         "new_empty_strided", "_unsafe_view", "lift_fresh", "alias",
                         "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel",
                         "sym_storage_offset", "resize_", "set_"})


#: in-place ops that overwrite their first argument without reading it
OVERWRITES = frozenset({"copy_", "fill_", "zero_"})
#: lookups: their first argument is read at the output's size (the rows gathered)
GATHERS = frozenset({"embedding", "index_select", "gather", "index", "take"})


def _elements(t: torch.Tensor) -> Any:
    """The distinct elements ``t`` presents: its sizes over the dims it does not broadcast
    (stride 0, an ``expand``)."""
    sizes = tuple(C.sym_expr(size) for size, stride in zip(t.shape, t.stride(), strict=True)
                  if not (isinstance(stride, int) and stride == 0))
    return _product(sizes, tuple(map(type, sizes)))


def _footprint(t: torch.Tensor) -> Any:
    """Bytes of :func:`_elements` of ``t``."""
    return _scaled(_elements(t), t.element_size())


@functools.lru_cache(maxsize=4096)
def _product(sizes: tuple[Any, ...], _types: tuple[type, ...]) -> Any:
    """``1 * sizes[0] * sizes[1] ...`` (SymPy products of symbolic sizes are slow to
    build, and an op's tensors have the shapes earlier ops' had); ``_types`` keeps
    ``3`` and ``Integer(3)`` apart in the cache."""
    n: Any = 1
    for size in sizes:
        n = n * size
    return n


@functools.lru_cache(maxsize=4096, typed=True)
def _scaled(n: Any, k: int) -> Any:
    return n * k


@functools.lru_cache(maxsize=4096)
def _total(terms: tuple[Any, ...], _types: tuple[type, ...]) -> Any:
    """``0 + terms[0] + terms[1] ...``, remembered like :func:`_product`."""
    out: Any = 0
    for v in terms:
        out = out + v
    return out


def traffic(func: Any, args: Any, kwargs: Any, out: Any, weights: set[Any]
            ) -> tuple[tuple[tuple[str, str], Any], ...]:
    """The bytes one op moves as torch runs it unfused: each tensor argument read once,
    each output written once (:func:`_footprint`); views and :data:`_NO_TRAFFIC`
    move nothing. A tensor sharing storage with a parameter or buffer is a ``weights``
    tensor, any other an ``activations`` one."""
    name = func._overloadpacket.__name__
    if getattr(func, "is_view", False) or name in _NO_TRAFFIC:
        return ()
    if name in OVERWRITES and args and isinstance(args[0], torch.Tensor):
        return moved_bytes((args[1:], kwargs), out, weights)  # its target is written only
    if name in GATHERS and args and isinstance(args[0], torch.Tensor):
        # a lookup reads the rows it gathers (the output's size), not its whole source
        moved = dict(moved_bytes((args[1:], kwargs), out, weights))
        src = args[0]
        key = next(iter(dict(moved_bytes(src, (), weights))))  # its role, read
        rows = sum((_elements(o) for o in tensors(out)), 0)
        moved[key] = moved.get(key, 0) + rows * src.element_size()
        return tuple(moved.items())
    return moved_bytes((args, kwargs), out, weights)


def moved_bytes(inputs: Any, outputs: Any, weights: set[Any]
                ) -> tuple[tuple[tuple[str, str], Any], ...]:
    """:func:`traffic` of one call given its inputs and outputs (any nesting)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    def role(t: torch.Tensor) -> str:
        try:
            return "weights" if StorageWeakRef(t.untyped_storage()) in weights else \
                "activations"
        except (NotImplementedError, RuntimeError):  # no storage (a sparse tensor)
            return "activations"

    terms: dict[tuple[str, str], list[Any]] = {}
    for t in tensors(inputs):  # each argument (``x * x`` reads x twice)
        terms.setdefault((role(t), "read"), []).append(_footprint(t))
    for t in tensors(outputs):
        terms.setdefault((role(t), "write"), []).append(_footprint(t))
    return tuple((key, _total(tuple(vs), tuple(map(type, vs)))) for key, vs in terms.items())


def _capture(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return shape_of(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_capture(v) for v in x)
    if isinstance(x, torch.SymInt):
        return C.sym_expr(x)
    if isinstance(x, (torch.SymFloat, torch.SymBool)):
        return x.node.expr
    return x


@dataclass(frozen=True)
class TableCheck:
    """A lookup of positions in a table (:class:`IndexBounds`) that recorded a guard:
    the guard's index among torch's guards, and the positions' bound and the table's rows
    over the user's dim names (plain Symbols; ints when concrete), with whether torch had
    an example value for each. :func:`symflops.tracing._branches.settle` reads it: on the
    guard's other side, where every earlier guard holds, the same lookup fails."""

    guard: int
    bound: Any
    rows: Any
    bound_hinted: bool = True
    rows_hinted: bool = True

    def message(self, hints: Mapping[str, int]) -> str:
        """The error :meth:`IndexBounds._check` raises at the sizes ``hints``."""
        return (f"positions 0 .. {_said(self.bound, self.bound_hinted, hints)} - 1 index a "
                f"table of {_said(self.rows, self.rows_hinted, hints)} rows: past its end "
                f"(torch raises an index error on real tensors)")


def _said(x: Any, hinted: bool, hints: Mapping[str, int]) -> str:
    """``x`` as :meth:`IndexBounds._say` writes it at the sizes ``hints``."""
    if not isinstance(x, sp.Basic):
        return str(x)
    if not hinted or x.is_Integer:
        return f"{x}"
    value = x.xreplace({s: sp.Integer(hints[s.name]) for s in x.free_symbols})
    return f"{x} (= {value} here)"


@dataclass
class Recording:
    """What one run saw: the module tree (paths, types, modules), each module's first
    input and output shape, the recorded ops, and the ops counted as zero or unknown."""

    train: bool
    real: bool
    names: dict[int, ModulePath] = field(default_factory=dict)
    types: dict[ModulePath, str] = field(default_factory=dict)
    modules: dict[ModulePath, torch.nn.Module] = field(default_factory=dict)
    child_names: dict[ModulePath, set[str]] = field(default_factory=dict)
    io_in: dict[ModulePath, RawShape | None] = field(default_factory=dict)
    io_out: dict[ModulePath, RawShape | None] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    #: bytes moved by uncounted ops (copies, cat, fills), per module path
    movement: dict[ModulePath, dict[tuple[str, str], Any]] = field(default_factory=dict)
    zero: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    unknown_at: dict[str, list[str]] = field(default_factory=dict)
    #: the tensors autograd saved for backward (train mode)
    saved: SavedLog | None = None
    #: the data-dependent sizes the ops made (fake runs)
    counts: CountLog | None = None
    #: table lookups of positions that recorded a guard (:class:`TableCheck`)
    table_checks: list[TableCheck] = field(default_factory=list)
    #: the indices of the guards torch recorded inside an op (its meta function's checks,
    #: a kernel that must fit), not in the model's own code between ops (``if H > 16``)
    op_guards: set[int] = field(default_factory=set)
    #: why the fake run put every tensor on one device (:func:`fake_device`)
    device_note: str | None = None
    stack: list[ModulePath] = field(default_factory=lambda: [ROOT])
    _pushed: list[bool] = field(default_factory=list)
    _bounds: list[set[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, model: torch.nn.Module, train: bool, real: bool) -> Recording:
        """An empty recording that knows ``model``'s module tree."""
        rec = cls(train, real, types={ROOT: type(model).__name__}, modules={ROOT: model})
        for name, mod in model.named_modules():
            key = tuple(name.split(".")) if name else ROOT
            rec.names.setdefault(id(mod), key)
            rec.types.setdefault(key, type(mod).__name__)
            rec.modules.setdefault(key, mod)
        for key in rec.types:
            if key:
                rec.child_names.setdefault(key[:-1], set()).add(key[-1])
        return rec

    # global module hooks (never on the user's model)
    def enter(self, module: torch.nn.Module, args: Any) -> None:
        key = self.names.get(id(module))
        self._pushed.append(key is not None)
        if key is not None:
            self.stack.append(key)
            if key not in self.io_in:
                ts = tensors(args)
                self.io_in[key] = shape_of(ts[0]) if ts else None
            if self.train and torch.is_grad_enabled():
                self._bounds.append({a.grad_fn for a in tensors(args)
                                     if a.grad_fn is not None})

    def leave(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if not self._pushed:
            return
        if self._pushed.pop():
            key = self.stack.pop()
            if key not in self.io_out:
                ts = tensors(output)
                self.io_out[key] = shape_of(ts[0]) if ts else None
            if self.train and torch.is_grad_enabled() and self._bounds:
                self._tag(output, key, self._bounds.pop())

    def _tag(self, output: Any, key: ModulePath, bounds: set[Any]) -> None:
        """Mark the autograd nodes ``key`` created, so backward ops are attributed to it."""
        todo = [t.grad_fn for t in tensors(output) if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in bounds:
                continue
            meta = C.node_metadata(node)
            if _META_KEY in meta:
                continue
            meta[_META_KEY] = key
            todo.extend(n for n, _ in node.next_functions if n is not None)


class _Recorder(C.TorchDispatchMode):
    """Records each op; keeps the user's tensors unchanged: an op that writes to a
    tensor the trace did not make (an attribute, a global: ``self.state.add_(1)``)
    writes to a copy instead, and later ops see that copy."""

    def __init__(self, rec: Recording, check_time: Any = None) -> None:
        super().__init__()
        self.rec = rec
        self.check_time = check_time
        # id(user's tensor) -> (that tensor, its copy, its version before the first write)
        self.copies: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
        # real runs: the tensors the trace made, by id (fake runs: every FakeTensor)
        self.ours: dict[int, weakref.ref[torch.Tensor]] | None = {} if rec.real else None
        # position indices from arange, checked against the tables they index
        self.index_bounds = IndexBounds()
        self.shape_env: Any = None  # fake runs: the ShapeEnv (its guards, for TableCheck)
        # storages of the model's parameters and buffers (bytes they move are "weights")
        self.weights: set[Any] = set()
        # call key -> (output, its metadata key): see :meth:`_repeat`
        self.repeats: dict[Any, tuple[Any, Any]] = {}
        # call key -> (one output?, each output's sizes, strides, offset): :meth:`_repeat_view`
        self.views: dict[Any, Any] = {}
        self.calls = 0  # ops dispatched so far

    def own(self, *ts: torch.Tensor) -> None:
        if self.ours is not None:
            for t in ts:
                self.ours[id(t)] = weakref.ref(t)

    def _users(self, t: Any) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        if self.ours is None:
            return not C.is_fake(t)
        ref = self.ours.get(id(t))
        return ref is None or ref() is not t

    def _stand_in(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            hit = self.copies.get(id(x))
            return hit[1] if hit is not None and hit[0] is x else x
        if isinstance(x, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in x):
            return type(x)(self._stand_in(v) for v in x)
        return x

    def _shield(self, func: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        if self.copies:
            args = tuple(self._stand_in(a) for a in args)
            kwargs = {k: self._stand_in(v) for k, v in kwargs.items()}
        for i, name in C.written_args(func):
            t = args[i] if i < len(args) else kwargs.get(name)
            if isinstance(t, torch.Tensor) and self._users(t):
                copy = t.clone()
                # autograd bumps the version after the write (which goes to the copy)
                self.copies[id(t)] = (t, copy, t._version)
                self.own(copy)
                if i < len(args):
                    args = (*args[:i], copy, *args[i + 1:])
                else:
                    kwargs = {**kwargs, name: copy}
        return args, kwargs

    def _repeat(self, func: Any, args: Any, kwargs: dict[str, Any], rule: Any) -> Any:
        """``rule(args, kwargs)`` (a shape rule, or None) when it answers (its outputs may
        be its inputs: they are not repeated), else ``func(*args, **kwargs)``, or the
        output of an earlier call of ``func`` on inputs of the same metadata
        (:func:`_call_key`): fake runs under no_grad, where values and the identity of
        fresh outputs are never read (as in
        :func:`symflops.tracing._shape_rules._new`). Views (``view``, ``transpose``,
        ``split``) are not repeated: autograd makes each output a view of its input, so it
        must be a new tensor; ``_unsafe_view`` repeats only on the same input tensor, so
        its output still shares that storage (a weight stays a weight). Repeated
        transformer blocks call the same ops on the same shapes: torch's fake dispatch
        rebuilds each symbolic output (~1 ms a ``view``); the guards it records the first
        time are the ones a repeat would record."""
        aliasing = _ALIASING.get(func)
        if aliasing is None:
            aliasing = _ALIASING[func] = any(r.alias_info is not None
                                             for r in func._schema.returns)
        if aliasing:  # autograd makes each output a view of its input: it must be new
            return self._repeat_view(func, args, kwargs, rule)
        out = rule(args, kwargs) if rule is not None else None
        if out is not None:
            return out
        if any(self.index_bounds.of(t) is not None for t in tensors((args, kwargs))):
            return func(*args, **kwargs)  # positions keep their bound on their own tensor
        try:  # _unsafe_view shares its input's storage, though its schema does not say so
            same = func._overloadpacket is torch.ops.aten._unsafe_view
            key = (func, _call_key(args, same), _call_key(kwargs, same))
            hash(key)
        except TypeError:  # an argument without a hashable description
            return func(*args, **kwargs)
        hit = self.repeats.get(key)
        if hit is not None:
            out, made = hit
            if _call_key(out, False) == made and not any(  # not resized in place since
                    self.index_bounds.of(t) is not None for t in tensors(out)):
                return out
        out = _uncached(func, args, kwargs)
        self.repeats[key] = (out, _call_key(out, False))
        return out

    def _repeat_view(self, func: Any, args: Any, kwargs: dict[str, Any], rule: Any) -> Any:
        """A view op (its outputs views of ``args[0]``): on inputs of the metadata of an
        earlier call, new views of ``args[0]`` with the sizes, strides and offsets that
        call's outputs had, made as torch's fake mode makes them (``as_strided`` of the
        fake tensor's storage), without its dispatch (~0.7 ms a ``view`` on symbolic
        sizes, 0.03 ms this way). Where the shape ``rule`` answered with a new tensor
        (``slice`` under no_grad), a new tensor of the same sizes and strides."""
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or not C.is_fake(x) or \
                getattr(x, "constant", None) is not None or x.layout != torch.strided:
            return func(*args, **kwargs)
        try:
            key = (func, _call_key(args, False), _call_key(kwargs, False))
            hash(key)
        except TypeError:
            return func(*args, **kwargs)
        hit = self.views.get(key)
        if hit is None:
            out = rule(args, kwargs) if rule is not None else None
            if out is None:
                out = _uncached(func, args, kwargs)
            self.views[key] = _view_layout(x, out)
            return out
        if hit is _NOT_REPEATED:
            out = rule(args, kwargs) if rule is not None else None
            return out if out is not None else func(*args, **kwargs)
        single, layouts = hit
        made = [_view_of(x, *layout) for layout in layouts]
        return made[0] if single else made

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        self.calls += 1
        if func in C.SKIP_OPS:
            return func(*args, **kwargs)
        if self.check_time is not None:
            self.check_time()
        if self.copies or C.written_args(func):
            args, kwargs = self._shield(func, args, kwargs)
        guarded = len(self.shape_env.guards) if self.shape_env is not None else 0
        out = self._dispatch(func, args, kwargs)
        if self.shape_env is not None and len(self.shape_env.guards) > guarded:
            self.rec.op_guards.update(range(guarded, len(self.shape_env.guards)))
        if not self.rec.real:
            lookup = self._table_lookup(func, args)
            before = len(self.shape_env.guards) if lookup is not None else 0
            self.index_bounds.after(func, args, kwargs, out,
                                    ".".join(self.rec.stack[-1]) or "(root)")
            if lookup is not None and len(self.shape_env.guards) > before:
                self.rec.table_checks.append(TableCheck(before, *lookup))
            if self.rec.counts is not None:
                self.rec.counts.after(func, args, kwargs, out, ".".join(self.rec.stack[-1]))
        if self.ours is not None:
            self.own(*tensors(out))
        return out

    def _table_lookup(self, func: Any, args: Any) -> tuple[Any, Any, bool, bool] | None:
        """``(bound, rows, bound_hinted, rows_hinted)`` of a table lookup
        :meth:`IndexBounds.after` checks (``embedding``, ``index_select`` on dim 0) on
        positions of known bound, over the user's names; else None."""
        packet = func._overloadpacket
        if self.shape_env is None or packet not in _TABLE_LOOKUPS or not self.index_bounds._bound:
            return None
        if packet is torch.ops.aten.embedding and len(args) >= 2:
            table, indices = args[0], args[1]
        elif packet is torch.ops.aten.index_select and len(args) >= 3 and \
                isinstance(args[1], int) and args[1] == 0:
            table, indices = args[0], args[2]
        else:
            return None
        bound = self.index_bounds.of(indices)
        if bound is None or not isinstance(table, torch.Tensor) or table.dim() < 1:
            return None
        (b, b_hinted), (r, r_hinted) = (self._named(v) for v in (bound, table.shape[0]))
        return b, r, b_hinted, r_hinted

    def _named(self, n: Any) -> tuple[Any, bool]:
        """A size over the user's dim names (as :meth:`IndexBounds._say` names it), and
        whether torch has an example value for it."""
        if not isinstance(n, torch.SymInt):
            return n, True
        expr = n.node.expr
        names = self.index_bounds.names
        named = expr.xreplace({s: type(s)(names[s]) for s in expr.free_symbols if s in names})
        return named, n.node.hint is not None

    def _dispatch(self, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        packet = func._overloadpacket
        rec = self.rec
        counted = packet in HANDLERS
        if counted or packet in ZERO_COST:
            rule = SHAPE_RULES.get(packet) if not rec.real else None
            if not rec.real and packet in _REPEATABLE and not torch.is_grad_enabled():
                out = self._repeat(func, args, kwargs, rule)
            else:
                out = rule(args, kwargs) if rule is not None else None
                if out is None:
                    out = func(*args, **kwargs)
            node = C.current_autograd_node() if rec.train else None
            if node is not None:
                path = C.node_metadata(node).get(_META_KEY, ROOT)
                bw = True
            else:
                path, bw = rec.stack[-1], False
            io = traffic(func, args, kwargs, out, self.weights)
            if not counted:
                rec.zero[op_name(packet)] += 1
                if io:
                    moved = rec.movement.setdefault(path, {})
                    for key, v in io:
                        moved[key] = moved.get(key, 0) + v
                return out
            outs = out if isinstance(out, (tuple, list)) else (out,)
            rec.records.append(Record(packet, packet.__name__, _capture(args), _capture(kwargs),
                                      tuple(shape_of(o) for o in outs
                                            if isinstance(o, torch.Tensor)), path, bw, io))
            return out
        # like FlopCounterMode: composite ops decompose into ops we may know
        with self:
            r = func.decompose(*args, **kwargs)
        if r is not NotImplemented:
            return r
        name = op_name(packet)
        rec.unknown[name] += 1
        rec.unknown_at.setdefault(name, [])
        if len(rec.unknown_at[name]) < 5:
            rec.unknown_at[name].append(".".join(rec.stack[-1]) or "(root)")
        return func(*args, **kwargs)


#: ops whose output is a function of their inputs' metadata and arguments alone (no
#: values, no randomness, no data-dependent sizes, nothing written): :meth:`_Recorder._repeat`
_REPEATABLE = frozenset(getattr(torch.ops.aten, n) for n in (
    "view", "_unsafe_view", "reshape", "transpose", "t", "permute", "expand", "split",
    "split_with_sizes", "unsqueeze", "squeeze", "select", "unbind", "alias", "slice",
    "native_layer_norm", "_safe_softmax", "_softmax", "tril", "triu", "where", "clone",
    "pow", "rsqrt", "neg", "cos", "sin", "exp", "sqrt", "mul", "add", "sub", "div",
    "masked_fill", "_to_copy", "bmm", "baddbmm", "mm", "addmm", "gelu", "silu", "tanh",
    "relu", "sigmoid", "mean", "sum", "cat", "embedding"))
_ALIASING: dict[Any, bool] = {}
#: lookups :class:`IndexBounds` checks against their table's length
_TABLE_LOOKUPS = frozenset({torch.ops.aten.embedding, torch.ops.aten.index_select})


def _call_key(x: Any, identity: bool) -> Any:
    """What of ``x`` (arguments or outputs, any nesting) an op's output depends on: per
    tensor its sizes, strides and offset as expressions, dtype, device, layout and
    requires_grad (and, with ``identity``, the tensor itself: an aliasing output is a
    view of it); numbers with their type (``1`` is not ``1.0``). Raises TypeError for
    anything else unhashable."""
    if isinstance(x, torch.Tensor):
        meta = (tuple(C.sym_expr(v) for v in x.shape),
                tuple(C.sym_expr(v) for v in x.stride()), C.sym_expr(x.storage_offset()),
                x.dtype, x.device, x.layout, x.requires_grad, type(x))
        return (_Same(x), meta) if identity else meta
    if isinstance(x, (list, tuple)):
        return (type(x), tuple(_call_key(v, identity) for v in x))
    if isinstance(x, dict):
        return (dict, tuple((k, _call_key(v, identity)) for k, v in x.items()))
    if isinstance(x, torch.SymInt):
        return (int, C.sym_expr(x))
    if isinstance(x, (torch.SymFloat, torch.SymBool)):
        return (type(x), x.node.expr)
    return (type(x), x)


_NOT_REPEATED = object()


def _uncached(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)`` with the fake mode's op cache off: the recorder keeps
    its own (:meth:`_Recorder._repeat`), and filling an entry of torch's rebuilds the
    output's symbolic sizes and strides (a third of a GPT-2 trace)."""
    mode = next((getattr(t, "fake_mode", None) for t in tensors((args, kwargs))), None)
    if mode is None or not mode.cache_enabled:
        return func(*args, **kwargs)
    mode.cache_enabled = False
    try:
        return func(*args, **kwargs)
    finally:
        mode.cache_enabled = True


def _view_layout(x: torch.Tensor, out: Any) -> Any:
    """``(single, [(sizes, strides, offset), ...])`` of a view op's output(s), when each
    is a fake strided tensor of ``x``'s dtype and device on ``x``'s storage; else
    :data:`_NOT_REPEATED`."""
    single = isinstance(out, torch.Tensor)
    outs = [out] if single else out
    if not isinstance(outs, (list, tuple)):
        return _NOT_REPEATED
    layouts = []
    storage = x.untyped_storage()._cdata
    for o in outs:
        if not isinstance(o, torch.Tensor) or not C.is_fake(o) or o.dtype != x.dtype or \
                o.device != x.device or o.layout != torch.strided or \
                type(o) is not type(x) or getattr(o, "constant", None) is not None:
            return _NOT_REPEATED
        shared = o.untyped_storage()._cdata == storage
        if not shared and (o.storage_offset() != 0 or not o.is_contiguous()):
            return _NOT_REPEATED
        layouts.append((tuple(o.shape), tuple(o.stride()), o.storage_offset(), shared))
    return single, layouts


def _view_of(x: torch.Tensor, sizes: Any, strides: Any, offset: Any, shared: bool
             ) -> torch.Tensor:
    """A fake tensor viewing ``x``'s storage at ``sizes``, ``strides``, ``offset`` (or,
    not ``shared``, a new contiguous one like it), made as the fake mode makes its outputs
    (``as_strided`` or ``empty_strided`` inside its kernel context)."""
    from torch._subclasses.fake_tensor import FakeTensor, in_kernel_invocation_manager

    mode = x.fake_mode  # type: ignore[attr-defined]
    with in_kernel_invocation_manager(mode):
        if shared:
            meta = torch.ops.aten.as_strided.default(x, sizes, strides, offset)
        else:
            meta = torch.empty_strided(sizes, strides, dtype=x.dtype, device="meta")
    return FakeTensor(mode, meta, x.device)


class _Same:
    """A tensor compared by identity in a key (kept alive, so its id is not reused)."""

    __slots__ = ("t",)

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.t is self.t

    def __hash__(self) -> int:
        return id(self.t)


def tensors(x: Any) -> list[torch.Tensor]:
    """Every tensor in ``x`` (nested tuples, lists, dicts, dataclasses), in order."""
    out: list[torch.Tensor] = []
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
        elif hasattr(v, "__dataclass_fields__"):
            stack.extend(reversed([getattr(v, k) for k in v.__dataclass_fields__]))
    return out


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU without any)."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def fake_device(model: torch.nn.Module) -> tuple[torch.device | None, str | None]:
    """The device a fake run puts all of the model's tensors and its inputs on, and a note
    saying why (None, None: each tensor its own device, the inputs the model's). A model
    built under ``torch.device("meta")`` keeps on the CPU the parameters its code makes
    with the legacy ``torch.Tensor(n, d)`` (HF XLNet's ``rel_attn.q``, wav2vec2's
    ``masked_spec_embed``), and no run mixing the two devices works. A fake run reads no
    data, so those tensors are all taken as the CPU's: the run the model would have once
    made on the CPU, with the same shapes.

    >>> m = torch.nn.Linear(2, 2, device="meta")
    >>> fake_device(m)
    (None, None)
    >>> m.bias = torch.nn.Parameter(torch.Tensor(2))  # the legacy constructor: on the CPU
    >>> fake_device(m)[0]
    device(type='cpu')
    """
    first: dict[str, str] = {}
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        first.setdefault(t.device.type, name)
    if set(first) != {"meta", "cpu"}:
        return None, None
    return torch.device("cpu"), (
        f"the model's tensors are on meta and on the CPU ({first['cpu']} on the CPU, as "
        f"the legacy torch.Tensor(...) constructor makes it under torch.device('meta')): "
        f"traced as all on the CPU (a fake run reads no data)")


def _default_dtype(model: torch.nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def record(ctx: TraceContext, env: C.SymEnv) -> Recording:
    """Run ``ctx.model`` once on inputs whose named dims are ``env``'s symbols (real random
    tensors when ``ctx.real``) and record its ops. Torch's own failures become one
    SymflopsError naming the user's dims."""
    model = ctx.model
    lazy = C.uninitialized_lazy(model)
    if lazy:
        raise SymflopsError("the model has lazy modules whose parameters are not made yet",
                            layer="trace", values={"lazy modules": lazy},
                            fix="run the model once on a real example input (that makes "
                                "their parameters), then trace it")
    device = model_device(model)
    fdtype = _default_dtype(model)
    rec = Recording.of(model, ctx.train, ctx.real)
    if not ctx.real:
        env.device, rec.device_note = fake_device(model)
        device = env.device or device
        rec.counts = counts_for(ctx, env)
    check_time = _budget_check(ctx, rec) if ctx.deadline is not None else None
    recorder = _Recorder(rec, check_time)
    recorder.index_bounds.names = env.torch_syms
    if not ctx.real:
        recorder.shape_env = env.shape_env
    if check_time is not None:
        env.watch(check_time)
    try:
        with untouched(model), C.torch_logs_silenced():
            _run_model(ctx, env, rec, recorder, device, fdtype)
    except SymflopsError:
        raise
    except Exception as e:  # torch could not run the model symbolically
        said = str(e).splitlines()[0][:300] if str(e) else ""
        for torch_sym, name in env.torch_syms.items():  # torch's s0, s1 -> the user's names
            said = re.sub(rf"\b{re.escape(str(torch_sym))}\b", name, said)
        # a smaller image the model may accept, in the dims the inputs name (an audio
        # model's "B T" has no H to offer)
        suggested = _declared_size(ctx) or {d: 32 for d in ("H", "W") if d in ctx.hint_of}
        options: dict[str, Any]
        if all(ctx.hint_of.get(n) == v for n, v in suggested.items()):
            # the sizes the model declares are the ones it failed at (or none to offer):
            # not a fix
            fix, options = ("fix some dims to ints (concrete sizes); or pass {fallback} to fit "
                            "an exact formula from concrete traces", {"fallback": "fit"})
        else:
            fix = ("give hints (example sizes) the model accepts, e.g. {hints}; fix some dims "
                   "to ints; or pass {fallback} to fit an exact formula from concrete traces")
            options = {"hints": suggested, "fallback": "fit"}
        failed = SymbolicShapesFailed(
            f"torch could not run the model on symbolic shapes: {type(e).__name__}: "
            f"{said}" + (f" (at {site})" if (site := _failed_at(e)) else ""), layer="trace",
            values={"inputs": [s.dims for s in ctx.specs],
                    "example sizes": dict(ctx.hint_of)},
            fix=fix, options=options)
        failed.reason = f"{type(e).__name__}: {said}"
        failed.before_any_op = recorder.calls == 0 and not _through_torch_functional(e)
        raise failed from e
    finally:
        forget_shapes()
        for t, _copy, version in recorder.copies.values():
            C.set_version(t, version)
    return rec


def _failed_at(e: BaseException) -> str | None:
    """The line of the model's own code that was running when ``e`` was raised (the call
    into torch that failed, or the model's own test), as :func:`_guard.model_line` says it."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return model_line(tb.tb_frame) if tb is not None else None


def _through_torch_functional(e: BaseException) -> bool:
    """Whether ``e`` was raised inside ``torch.nn.functional`` (``F.interpolate``, whose
    composite kernel can fail before it dispatches an op; SymbolicResize reroutes it)."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.replace("\\", "/").endswith("torch/nn/functional.py"):
            return True
        tb = tb.tb_next
    return False


def _declared_size(ctx: TraceContext) -> dict[str, int] | None:
    """The image size the model declares (timm's ``pretrained_cfg["input_size"]``, e.g.
    MaxViT-256's ``(3, 256, 256)``) for the named last two dims of the first input, to
    suggest as hints when the default example sizes are not ones the model accepts."""
    cfg = getattr(ctx.model, "pretrained_cfg", None) or getattr(ctx.model, "default_cfg", None)
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    dims = ctx.specs[0].dims if ctx.specs else ()
    if not (isinstance(size, tuple | list) and len(size) == 3 and len(dims) == 4 and
            all(isinstance(v, int) and v > 1 for v in size[1:])):
        return None
    named = {d: v for d, v in zip(dims[2:], size[1:], strict=True) if isinstance(d, str)}
    return named or None


def _noter(rec: Recording, recorder: _Recorder) -> Any:
    """Records a whole torch call taken over by a torch-function mode (``nn.LSTM``'s)."""
    def note(packet: Any, args: tuple[Any, ...], out: tuple[torch.Tensor, ...]) -> None:
        rec.records.append(Record(packet, packet.__name__, _capture(args), {},
                                  tuple(shape_of(o) for o in out), rec.stack[-1], False,
                                  moved_bytes(args, out, recorder.weights)))
    return note


def _run_model(ctx: TraceContext, env: C.SymEnv, rec: Recording, recorder: _Recorder,
               device: torch.device, fdtype: torch.dtype) -> None:
    model = ctx.model
    model.train(ctx.train)
    with env.mode if not ctx.real else contextlib.nullcontext():
        def make(spec: InputSpec) -> torch.Tensor:
            sizes = [env.symint(d, ctx.hint_of[d]) if isinstance(d, str) else d
                     for d in spec.dims]
            dtype = spec.dtype or fdtype
            if ctx.real:  # values matter only for data-dependent control flow
                return torch.randn(sizes, device=device).to(dtype) \
                    if dtype.is_floating_point else torch.zeros(sizes, dtype=dtype,
                                                               device=device)
            return torch.empty(sizes, dtype=dtype, device=device)

        args = [make(s) for s in ctx.positional]
        kwargs = {k: make(s) for k, s in ctx.keyword.items()}
        first = [*args, *kwargs.values()]
        if ctx.past is not None:  # a decode step: the KV cache the new tokens attend to
            new = ("", ctx.positional[0]) if ctx.positional else next(iter(ctx.keyword.items()))
            kwargs[ctx.past.keyword], cached = make_cache(model, ctx.past, new,
                                                          dict(ctx.hint_of), fdtype, device,
                                                          make)
            recorder.own(*cached)
        if first:  # the root's input shape, also when the input is a keyword
            rec.io_in[ROOT] = shape_of(first[0])
        state: dict[str, torch.Tensor] = {}
        copies: dict[int, torch.Tensor] = {}  # real runs: one copy per tensor (tied stay tied)

        def real_copy(t: torch.Tensor) -> torch.Tensor:
            if id(t) not in copies:
                copies[id(t)] = t.detach().clone().requires_grad_(t.requires_grad)
            return copies[id(t)]

        for n, p in model.named_parameters(remove_duplicate=False):
            state[n] = env.fake(p) if not ctx.real else real_copy(p)
        for n, b in model.named_buffers(remove_duplicate=False):
            state[n] = env.fake(b) if not ctx.real else real_copy(b)
        recorder.own(*first, *state.values())
        from torch.multiprocessing.reductions import StorageWeakRef

        recorder.weights = {StorageWeakRef(t.untyped_storage()) for t in state.values()}
        resizing = C.SymbolicResize() if ctx.resize else contextlib.nullcontext()
        if ctx.train:
            rec.saved = SavedLog(lambda: rec.stack[-1])
            rec.saved.exclude(state.values())  # parameters and buffers are not activations
        fused = fused_calls(model, _noter(rec, recorder)) if not ctx.real and not ctx.train else \
            contextlib.nullcontext()
        with C.module_hooks(rec.enter, rec.leave), resizing, recorder, fused:
            with torch.set_grad_enabled(ctx.train), \
                    saved_tensors(rec.saved) if rec.saved else contextlib.nullcontext():
                out = torch.func.functional_call(model, state, tuple(args), kwargs,
                                                 strict=False)
            if ctx.train:
                outs = [t for t in tensors(out) if t.requires_grad]
                wrt = [t for t in state.values() if t.requires_grad]
                if outs and wrt:
                    torch.autograd.grad(outs, wrt, [torch.ones_like(t) for t in outs],
                                        allow_unused=True)
