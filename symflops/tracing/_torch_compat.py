"""Every private torch API the tracer touches, in one place.

Symbolic shapes come from ``FakeTensorMode(shape_env=ShapeEnv(...))``: a symbol per
named dim is created with ``ShapeEnv.create_symbol`` (one symbol per *name*, so a name
used twice is one symbol; ``duck_shape=False`` keeps equal hints apart), wrapped into a
``SymInt`` and used to build fake tensors. Shapes come back as ``SymInt`` whose
``.node.expr`` is a SymPy expression over torch's internal symbols; :class:`SymbolMap`
turns those into the user's symbols and torch's ``FloorDiv``/``CeilDiv``/``Mod`` into
plain SymPy ``floor``/``ceiling``/``Mod``.

Tested on torch 2.13 (CPU). If a torch upgrade moves one of these names, only this
module needs to change.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import sympy as sp
import torch
import torch.utils._sympy.functions as _tfun
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
from torch.fx.experimental.symbolic_shapes import safe_expand as _safe_expand
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from symflops.formulas.arith import ceildiv, floordiv
from symflops.tracing._guard import model_line

__all__ = ["TorchDispatchMode", "SymbolicResize", "SymEnv", "SymbolMap", "current_autograd_node",
           "module_hooks", "node_metadata", "SKIP_OPS", "TORCH_VERSION", "written_args",
           "is_fake", "MODULE_CALL_HOOKS", "is_reparametrization_hook", "global_hooks_suspended",
           "set_version", "uninitialized_lazy",
           "torch_logs_silenced"]

TORCH_VERSION = torch.__version__

#: ops that only query metadata; the tracer never records them
SKIP_OPS = frozenset({
    torch.ops.prim.device.default, torch.ops.prim.layout.default,
    torch.ops.aten.size.default, torch.ops.aten.sym_size.default,
    torch.ops.aten.stride.default, torch.ops.aten.sym_stride.default,
    torch.ops.aten.numel.default, torch.ops.aten.sym_numel.default,
    torch.ops.aten.dim.default, torch.ops.aten.storage_offset.default,
    torch.ops.aten.sym_storage_offset.default, torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format, torch.ops.aten.sym_is_contiguous.default,
    torch.ops.aten.is_strides_like_format.default,
    torch.ops.aten.is_non_overlapping_and_dense.default,
})


class SymEnv:
    """A ShapeEnv, a FakeTensorMode on it, and one backed symbol per user dim name."""

    def __init__(self) -> None:
        self.shape_env = ShapeEnv(duck_shape=False)
        self.mode = FakeTensorMode(shape_env=self.shape_env, allow_non_fake_inputs=True)
        _cheap_cache_rebuilds(self.mode, self.shape_env)
        _no_source_locations(self.shape_env)
        #: :class:`SimplifyMemo` on this ShapeEnv (None: torch's own ``simplify``)
        self.simplify_memo = SimplifyMemo.install(self.shape_env) if MEMO_SIMPLIFY else None
        self.symints: dict[str, Any] = {}     # user name -> SymInt
        self.torch_syms: dict[sp.Symbol, str] = {}  # torch symbol -> user name
        self._fakes: dict[int, tuple[Any, Any]] = {}
        #: user name -> the line of the model's code where torch fixed that dim to a
        #: constant (``_assert(H == self.img_size[0])``), for the note that says so
        self.pin_sites: dict[str, str] = {}
        #: torch's equality guard on user dims (``Eq(64*s0*s1, 12544)``) -> the line of the
        #: model's code that recorded it (a reshape to a fixed grid), for a pin it implies
        self.equality_sites: dict[Any, str] = {}
        self._note_pin_sites()
        #: the device every fake of a parameter or buffer claims (None: each its own)
        self.device: torch.device | None = None

    def __enter__(self) -> SymEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Take this environment's ShapeEnv patches off (the trace has ended): its
        ``simplify``, ``evaluate_expr`` and the fake mode's cache rebuilds are torch's own
        again. Idempotent."""
        if self.simplify_memo is not None:
            self.simplify_memo.uninstall()
        for obj, name in ((self.shape_env, "evaluate_expr"),
                          (self.shape_env, "_get_stack_summary"),
                          (self.shape_env, "_set_replacement"),
                          (self.shape_env, "_maybe_guard_rel"),
                          (self.mode, "_get_output_tensor_from_cache_entry"),
                          (self.mode, "_get_output_info_for_cache_entry")):
            obj.__dict__.pop(name, None)

    def _note_pin_sites(self) -> None:
        """Note in :attr:`pin_sites` where the model's code made torch replace a user dim
        by a constant, the first time it does, and in :attr:`equality_sites` where it
        recorded an equality guard (torch's own record of places, ``replacements_slocs``
        and each guard's ``sloc``, is off: :func:`_no_source_locations`). Both are rare,
        so the walk up the stack costs nothing on the traces that have none."""
        replace = self.shape_env._set_replacement
        guard_rel = self.shape_env._maybe_guard_rel

        def noted_rel(expr: Any) -> Any:
            if isinstance(expr, sp.Eq) and expr not in self.equality_sites and \
                    not expr.free_symbols.isdisjoint(self.torch_syms):
                site = model_line(inspect.currentframe())
                if site is not None:
                    self.equality_sites[expr] = site
            return guard_rel(expr)

        self.shape_env._maybe_guard_rel = noted_rel  # type: ignore[assignment]

        def noted(a: Any, tgt: Any, msg: str) -> Any:
            name = self.torch_syms.get(a)
            if name is not None and name not in self.pin_sites and \
                    getattr(tgt, "is_Integer", False):
                site = model_line(inspect.currentframe())
                if site is not None:
                    self.pin_sites[name] = site
            return replace(a, tgt, msg)

        self.shape_env._set_replacement = noted  # type: ignore[method-assign]

    def symint(self, name: str, hint: int) -> Any:
        """The SymInt for dim ``name`` (created on first use with example size ``hint``)."""
        if name not in self.symints:
            source = ConstantSource(f"symflops_{name}")
            sym = self.shape_env.create_symbol(
                hint, source, dynamic_dim=DimDynamic.DYNAMIC, do_not_specialize_zero_one=True)
            _at_least_one(self.shape_env, sym)
            self.symints[name] = self.shape_env.create_symintnode(sym, hint=hint, source=source)
            self.torch_syms[sym] = name
        return self.symints[name]

    def fake(self, tensor: Any) -> Any:
        """A fake copy of a real or meta tensor (memoized; the original is untouched)."""
        hit = self._fakes.get(id(tensor))
        if hit is not None and hit[0] is tensor:
            return hit[1]
        out = self._fake(tensor)
        self._fakes[id(tensor)] = (tensor, out)
        return out

    def _fake(self, tensor: Any) -> Any:
        if type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.is_contiguous() \
                and not tensor.is_sparse:
            # cheaper than from_tensor's full metadata copy; shape, strides, dtype, device
            # and requires_grad are all a size count needs. The meta tensor is made with
            # the modes off and wrapped as the fake mode's constructors do (a sixth of the
            # cost of empty_strided through the mode: ~8 vs ~45 us a parameter)
            with torch._C._DisableTorchDispatch():
                meta = torch.empty_strided(tuple(tensor.shape), tuple(tensor.stride()),
                                           dtype=tensor.dtype, device="meta")
            out = FakeTensor(self.mode, meta, self.device or tensor.device)
            return out.requires_grad_(True) if tensor.requires_grad else out
        fake = self.mode.from_tensor(tensor, static_shapes=True)
        if self.device is not None and fake.device != self.device:
            with self.mode:
                return fake.to(self.device)
        return fake

    def watch(self, check: Callable[[], None]) -> None:
        """Call ``check`` before each guard evaluation of this environment (it may raise:
        a time budget), so a runaway symbolic reasoning stops between guards. Set on this
        ShapeEnv instance only."""
        evaluate = self.shape_env.evaluate_expr

        def checked(*args: Any, **kwargs: Any) -> Any:
            check()
            return evaluate(*args, **kwargs)

        self.shape_env.evaluate_expr = checked  # type: ignore[method-assign]

    def replace(self, expr: Any) -> Any:
        """``expr`` with the replacements torch learned (e.g. ``s1 -> 224`` after ``H == 224``)."""
        return self.shape_env.replace(expr)

    def ranges(self) -> dict[str, tuple[int, int | None]]:
        """Each user dim's value range as torch inferred it (``None``: unbounded above)."""
        out: dict[str, tuple[int, int | None]] = {}
        for sym, name in self.torch_syms.items():
            vr = self.shape_env.var_to_range.get(sym)
            if vr is None:
                continue
            lo = int(vr.lower) if vr.lower.is_Integer else 1
            hi = int(vr.upper) if vr.upper.is_Integer else None
            out[name] = (lo, hi)
        return out

    def guards(self) -> list[Any]:
        """The guard expressions torch recorded (over torch's symbols)."""
        return [g.expr for g in self.shape_env.guards]

    def fixed(self) -> dict[str, int]:
        """User dims torch specialized to a constant (through an equality guard)."""
        out: dict[str, int] = {}
        for sym, name in self.torch_syms.items():
            r = self.shape_env.replace(sym)
            if r.is_Integer:
                out[name] = int(r)
        return out


def _at_least_one(shape_env: Any, sym: Any) -> None:
    """An input size's symbol ranges over ``1 ..`` (torch's own range for a size it does not
    specialize at 0 or 1 starts at 0). A size is at least 1 in every formula's domain, so
    torch no longer records, per op, that a product of sizes is not 0 (the C++
    ``batch_norm``'s ``numel == 0`` test on a new product per channel count: a quarter of a
    first DenseNet trace), and whether a size is 1 is still a guard of its own."""
    from torch.utils._sympy.numbers import int_oo

    shape_env.constrain_symbol_range(sym, compiler_min=1, compiler_max=int_oo)


def _no_source_locations(shape_env: Any) -> None:
    """torch notes, for each symbol, range and guard it records, the line of user code that
    made it (``ShapeEnv._get_stack_summary``: a walk up the Python stack, past the files of
    ``uninteresting_files()``, whose first call imports ``torch.export`` and AOTAutograd:
    ~0.2 s of a first trace in a new process). The tracer reads none of those locations
    (its own records say where each op ran), so this ShapeEnv notes none: every location
    is ``SLoc(None, None)``, or the one the caller gave. No guard, range or value changes."""
    from torch._guards import SLoc

    if not hasattr(shape_env, "_get_stack_summary"):
        return  # not the torch this was written against: torch's own path

    def no_stack_summary(is_debug: bool = False, framework_loc: Any = None
                         ) -> tuple[Any, str]:
        return SLoc(framework_loc, None), ""

    shape_env._get_stack_summary = no_stack_summary


def _cheap_cache_rebuilds(mode: Any, shape_env: Any) -> None:
    """torch's fake-tensor cache makes each output it caches (and returns on each hit)
    anew from the cached sizes, strides and offset: a view through ``set_`` on its input's
    storage, whose storage-bounds and contiguity checks SymPy tries to prove, guards
    suppressed, on sizes of nested floors (~60 ms a slice of Swin's padded window maps,
    a third of its trace). Two cuts, neither recording nor skipping a guard:

    * inside that rebuild, a suppressed (not size-oblivious) evaluation with a hint
      answers the hint: torch's answer there is its proof's or else the hint's, the same
      value, and it records no guard either way;
    * when an entry is made, the rebuilt output serves only to compare its dispatch keys
      with the op's output: for a view it is rebuilt without the ``set_`` (which moves
      storage, sizes and strides, never the keys), so the comparison stands.

    Every other evaluation, and every guard the trace records, is torch's own path."""
    rebuild = getattr(mode, "_get_output_tensor_from_cache_entry", None)
    entry_info = getattr(mode, "_get_output_info_for_cache_entry", None)
    suppressed = getattr(ShapeEnv, "_suppress_guards_tls", None)
    if rebuild is None or entry_info is None or suppressed is None:
        return  # not the torch this was written against: torch's own path
    inside = [False]   # in a rebuild
    checking = [False]  # in a rebuild that only checks a new entry's dispatch keys

    def quick_rebuild(state: Any, entry: Any, key: Any, func: Any, args: Any) -> Any:
        if checking[0] and getattr(func, "is_view", False):
            func = None  # torch rebuilds a view (set_ on the input's storage) for an OpOverload
        was, inside[0] = inside[0], True
        try:
            return rebuild(state, entry, key, func, args)
        finally:
            inside[0] = was

    def new_entry(state: Any, key: Any, func: Any, args: Any, kwargs: Any, output: Any) -> Any:
        was, checking[0] = checking[0], True
        try:
            return entry_info(state, key, func, args, kwargs, output)
        finally:
            checking[0] = was

    evaluate = shape_env.evaluate_expr

    def evaluate_expr(orig_expr: Any, hint: Any = None, fx_node: Any = None,
                      size_oblivious: bool = False, fallback_value: bool | None = None,
                      **kwargs: Any) -> Any:
        if inside[0] and hint is not None and not size_oblivious and suppressed():
            return sp.sympify(hint)  # what torch's proof answers there (its hint)
        if not size_oblivious and _nonzero_product(shape_env, orig_expr):
            return sp.false
        return evaluate(orig_expr, hint, fx_node, size_oblivious,
                        fallback_value=fallback_value, **kwargs)

    mode._get_output_tensor_from_cache_entry = quick_rebuild
    mode._get_output_info_for_cache_entry = new_entry
    shape_env.evaluate_expr = evaluate_expr


def _nonzero_product(shape_env: Any, expr: Any) -> bool:
    """``expr`` is ``Eq(c*f1*f2*..., 0)`` (a tensor's numel is 0: the C++ ``batch_norm``
    and others test it per op) and torch proves each factor ``f != 0`` on its own, so the
    product is not 0 either: torch's answer, found without its proof on the whole product,
    which is new for every channel count ``c`` (a third of a DenseNet trace) where the
    factors (``B``, ``H - 2``, ``W - 2``) repeat and torch's proofs of them are cached."""
    if not (isinstance(expr, sp.Eq) and expr.rhs == 0 and isinstance(expr.lhs, sp.Mul)):
        return False
    for f in expr.lhs.args:
        if f.is_number:
            if f == 0:
                return False
            continue
        if shape_env._maybe_evaluate_static(sp.Eq(f, 0)) is not sp.false:
            return False
    return True


#: memoize ``ShapeEnv.simplify`` across guard updates (:class:`SimplifyMemo`); False: torch's
MEMO_SIMPLIFY = True

#: sha256 (first 16 hex) of the source of ``ShapeEnv.simplify`` and ``_update_divisible``
#: the argument of :class:`SimplifyMemo` was checked against (torch 2.13.0, 2.14.1); any
#: other source leaves torch's ``simplify`` in place
_KNOWN_SIMPLIFY = frozenset({"e75dbd1d9e288a94", "bee7c33d05dbfe15"})
_KNOWN_UPDATE_DIVISIBLE = frozenset({"b0c747e8a7619dac"})
_SOURCE_OK: list[bool] = []


def _source_hash(fn: Any) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]


def _known_torch_simplify() -> bool:
    if not _SOURCE_OK:
        try:
            ok = _source_hash(ShapeEnv.simplify) in _KNOWN_SIMPLIFY and \
                _source_hash(ShapeEnv._update_divisible) in _KNOWN_UPDATE_DIVISIBLE
        except (OSError, TypeError, AttributeError):
            ok = False
        _SOURCE_OK.append(ok)
    return _SOURCE_OK[0]


class _Recording(set):
    """A copy of ``ShapeEnv.divisible`` that notes each membership query and its answer."""

    def __init__(self, items: Any) -> None:
        super().__init__(items)
        self.asked: dict[Any, bool] = {}

    def __contains__(self, item: object) -> bool:
        answer = set.__contains__(self, item)
        self.asked[item] = answer
        return answer


class SimplifyMemo:
    """``ShapeEnv.simplify(expr)`` answered again without SymPy while everything it read is
    unchanged, on one ShapeEnv instance (:meth:`install`, :meth:`uninstall`).

    Why: each time ``divisible`` grows, torch's ``_maybe_evaluate_static`` re-simplifies
    EVERY axiom key holding a ``FloorDiv`` (``resimplify_floor_div``; the keys only
    accumulate), so a window-attention model's trace is quadratic in its reshapes (gcvit:
    three quarters of the trace in it; nearly every call returns what it returned before).
    torch's own ``simplify`` cache is cleared at each such change, so it never helps there.

    What ``simplify(expr, size_oblivious)`` (torch 2.13 and 2.14, checked by the source
    hashes above; no ``axioms``/``var_to_range`` arguments) reads, step by step:

    1. ``e = replace(safe_expand(expr))``: ``safe_expand`` is pure; ``replace`` depends on
       ``replacements`` only, and every change to them bumps
       ``_replacements_version_counter`` (torch's own contract: ``SymNode.expr`` caches
       ``replace`` on that counter; ``_find``'s path compression goes through
       ``_set_replacement`` and bumps it too).
    2. the Min/Max step (skipped when ``size_oblivious``): torch 2.13 looks only at
       two-argument ``Max`` with a 0 or 1 argument, and proves ``b >= 0/1`` with
       ``_maybe_evaluate_static`` (axioms, hints, ranges: the whole state); torch 2.14
       compares the arguments of every ``Min``/``Max`` with ``var_to_range`` of their
       symbols (``bound_sympy``, pure otherwise) and falls back to
       ``_maybe_evaluate_static`` for that same two-argument ``Max`` with 0 or 1, only
       when those comparisons did not decide it (so ``Max(1, s)`` with ``s >= 1`` by its
       range never reaches it). ``_maybe_evaluate_static`` is the step's one read of the
       rest of the state, and its calls are watched: the step is a function of ``e``,
       ``var_to_range[s]`` for the symbols ``s`` of ``e`` (snapshotted, compared with
       ``==``: ``ValueRanges`` is frozen) and the answers of those calls, which follow
       one another in an order fixed by ``e``, the ranges and the earlier answers. So an
       entry keeps the calls the step made (its own, not those made inside torch's
       answer to one of them), with their answers, and a hit makes the same calls again
       in the same order, where torch's step would make them (before the ``FloorDiv``
       steps): torch answers from its own cache when nothing changed, and the entry
       stands only if every answer is the recorded one (compared by type and ``==``);
       on the first other answer torch's ``simplify`` runs (asking torch again: its
       cache answers). torch 2.13 calls it for every such ``Max``; 2.14 only for those
       the ranges leave open (mobilevit's ``Max(1, a // ceil(a / 2))``).
    3. the ``TruncToInt`` step: pure.
    4. the two ``FloorDiv`` steps: entered iff the expression has a ``FloorDiv``; they
       call ``_update_divisible()`` first (prunes ``divisible`` of entries ``replace``
       makes numbers: a function of ``replacements`` and ``divisible``), then ask
       ``replace(Mod(a, b)) in divisible`` for some atoms and rewrite by the answers; the
       rest is pure. So with ``replacements`` unchanged, the steps go exactly the same way
       when every membership query they made gets the same answer.

    torch's own ``simplify`` is lru-cached per ``_version_counter``, which ``var_to_range``
    changes do not bump: within one version torch may answer from a body run under other
    ranges. Every call of torch's cache for an expression kept here goes through this memo
    (``self.simplify`` is the instance attribute), so: each call into torch's ``simplify``
    first drops the entry, and an entry is kept only when torch's body ran in that call
    (``replace`` was called: its first step) -- so an entry is either the very run torch's
    cache holds, or torch's cache holds nothing for it and would run its body afresh on a
    state that reads the same. A cache hit that gave no recording keeps no entry.

    So an entry keeps ``(expr, size_oblivious)`` -> the result, the replacement counter,
    the ranges of ``e``'s symbols, and each membership query with its answer (recorded by
    running torch's ``simplify`` once with ``divisible`` swapped for a recording copy).
    A hit requires the same counter and ranges, then the same answers of torch's
    ``_maybe_evaluate_static`` (step 2), then (iff the entry asked anything, i.e.
    torch would reach the ``FloorDiv`` steps) calls ``_update_divisible()`` as torch
    would, then requires each recorded query to answer as recorded: torch would have
    taken the same branches to the same expression. Anything else (a miss, a query made
    after ``_update_divisible`` replaced the set mid-call, an expression with no
    ``FloorDiv``, another answer of ``_maybe_evaluate_static``, the
    ``axioms``/``var_to_range`` arguments) runs torch's ``simplify``. No guard is recorded
    or skipped: ``simplify`` records none, and its one side effect (``_update_divisible``)
    happens where torch's would. ``resimplify_floor_div`` itself is torch's, unchanged: it
    calls ``simplify`` for every key as before and updates the axioms with the same
    results, in the same order.

    What is left: ``resimplify_floor_div`` itself (torch's loop over every axiom key at each
    new divisibility fact, now mostly memo hits), and the ``_maybe_evaluate_static`` calls
    a hit makes (cheap when torch's caches answer).
    """

    def __init__(self, shape_env: Any) -> None:
        self.shape_env = shape_env
        self.torch_simplify = shape_env.simplify  # the class's (lru-cached) bound method
        self.entries: dict[tuple[Any, bool], tuple[Any, int, tuple[Any, ...],
                                                   tuple[tuple[Any, bool], ...],
                                                   tuple[Any, ...]]] = {}
        self.hits = 0
        self.misses = 0

    @classmethod
    def install(cls, shape_env: Any) -> SimplifyMemo | None:
        """Memoize ``shape_env.simplify`` (this instance only); None on an unknown torch."""
        if not _known_torch_simplify() or "simplify" in shape_env.__dict__:
            return None
        memo = cls(shape_env)
        shape_env.simplify = memo.simplify
        return memo

    def uninstall(self) -> None:
        """``simplify`` is torch's again on this ShapeEnv (its class method)."""
        if self.shape_env.__dict__.get("simplify") == self.simplify:
            del self.shape_env.simplify
        self.entries.clear()

    def simplify(self, expr: Any, size_oblivious: bool = False, **kwargs: Any) -> Any:
        env = self.shape_env
        if kwargs or not isinstance(expr, sp.Basic) or not expr.has(_tfun.FloorDiv):
            return self.torch_simplify(expr, size_oblivious, **kwargs)
        key = (expr, bool(size_oblivious))
        entry = self.entries.get(key)
        if entry is not None:
            result, counter, ranges, asked, statics = entry
            if counter == env._replacements_version_counter and \
                    all(env.var_to_range.get(s) == r for s, r in ranges) and \
                    all(_same(env._maybe_evaluate_static(*args, **kw), answer)
                        for args, kw, answer in statics):  # torch's Min/Max step asks them
                if asked:
                    env._update_divisible()  # where torch's FloorDiv step calls it
                    divisible = env.divisible
                    if all((q in divisible) == a for q, a in asked):
                        self.hits += 1
                        return result
                else:
                    self.hits += 1
                    return result
        self.misses += 1
        return self._record(key, expr, size_oblivious)

    def _record(self, key: tuple[Any, bool], expr: Any, size_oblivious: bool) -> Any:
        """torch's ``simplify`` (its lru cache, then its body), with ``divisible`` and
        ``replace`` watched; an entry is kept only when the body ran (a hit in torch's
        cache reads nothing) with nothing changing under it."""
        env = self.shape_env
        self.entries.pop(key, None)  # torch's cache now holds this call's answer
        counter = env._replacements_version_counter
        ranges_before = dict(env.var_to_range)
        before = env.divisible
        rec = _Recording(before)
        ran = [0]
        statics: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []
        depth = [0]
        own_replace = env.__dict__.get("replace")
        own_static = env.__dict__.get("_maybe_evaluate_static")
        torch_replace = env.replace
        torch_static = env._maybe_evaluate_static

        def replace(e: Any) -> Any:
            ran[0] += 1
            return torch_replace(e)

        def maybe_evaluate_static(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:  # asked inside torch's answer to one of the body's own calls
                return torch_static(*args, **kwargs)
            depth[0] += 1
            try:
                answer = torch_static(*args, **kwargs)
            finally:
                depth[0] -= 1
            statics.append((args, kwargs, answer))
            return answer

        env.divisible = rec
        env.replace = replace
        env._maybe_evaluate_static = maybe_evaluate_static
        try:
            result = self.torch_simplify(expr, size_oblivious)
        finally:
            for name, own in (("replace", own_replace),
                              ("_maybe_evaluate_static", own_static)):
                if own is None:
                    delattr(env, name)
                else:
                    setattr(env, name, own)
            swapped = env.divisible is not rec  # _update_divisible replaced it mid-call
            grown = len(rec) != len(before)
            if not swapped:
                if grown:  # added to meanwhile: keep it
                    before.update(rec)
                env.divisible = before
        if not ran[0] or swapped or grown or counter != env._replacements_version_counter \
                or env.var_to_range != ranges_before:
            return result
        e = env.replace(_safe_expand(expr))
        ranges = tuple((s, env.var_to_range.get(s)) for s in e.free_symbols)
        self.entries[key] = (result, counter, ranges, tuple(rec.asked.items()),
                             tuple(statics))
        return result


def _same(a: Any, b: Any) -> bool:
    """Two answers of ``_maybe_evaluate_static`` (None, a SymPy boolean or expression) alike."""
    return a is b or (a is not None and b is not None and type(a) is type(b) and a == b)

def sym_expr(x: Any) -> Any:
    """A size as an int or a torch-SymPy expression."""
    if isinstance(x, torch.SymInt):
        node = x.node
        if node.is_constant():
            return int(x)
        # the raw expression: SymbolMap applies the ShapeEnv's replacements once per
        # distinct expression (``node.expr`` would redo them at every access)
        raw = getattr(node, "_expr", None)
        return raw if raw is not None else node.expr
    return x


_FUNCS: dict[type, Callable[..., sp.Expr]] = {
    # the same rounding helpers sf.nn uses, so nested floors come out spelled alike
    _tfun.FloorDiv: lambda a, b: sp.sympify(floordiv(a, b)),
    _tfun.CleanDiv: lambda a, b: a / b,
    _tfun.IntTrueDiv: lambda a, b: a / b,
    _tfun.CeilDiv: lambda a, b: sp.sympify(ceildiv(a, b)),
    _tfun.Mod: lambda a, b: sp.Mod(a, b),
    _tfun.PythonMod: lambda a, b: sp.Mod(a, b),
    _tfun.ModularIndexing: lambda a, b, c: sp.Mod(sp.floor(a / b), c),
    _tfun.CeilToInt: lambda a: sp.ceiling(a),
    _tfun.FloorToInt: lambda a: sp.floor(a),
    _tfun.TruncToInt: lambda a: sp.floor(a),
    _tfun.Identity: lambda a: a,
    _tfun.PowByNatural: lambda a, b: a ** b,
    _tfun.ToFloat: lambda a: a,
    _tfun.FloatTrueDiv: lambda a, b: a / b,
    _tfun.TruncToFloat: lambda a: sp.floor(a),
    _tfun.FloatPow: lambda a, b: a ** b,
    _tfun.Max: lambda *a: sp.Max(*a),
    _tfun.Min: lambda *a: sp.Min(*a),
}


#: (naming, torch expression) -> the user's expression (:meth:`SymbolMap._converted`)
_CONVERTED: dict[Any, sp.Expr] = {}


class SymbolMap:
    """Converts torch's SymPy expressions into plain SymPy over the user's symbols."""

    def __init__(self, env: SymEnv, symbols: dict[str, sp.Symbol]) -> None:
        self.env = env
        self.by_torch = {s: symbols[n] for s, n in env.torch_syms.items()}
        self.fresh: dict[sp.Symbol, sp.Symbol] = {}
        self._cache: dict[Any, sp.Expr] = {}
        self._nodes: dict[Any, sp.Expr] = {}  # converted subexpressions (see _convert)
        self._names = frozenset(self.by_torch.items())

    def __call__(self, expr: Any) -> Any:
        if isinstance(expr, int):
            return sp.Integer(expr)
        hit = self._cache.get(expr)
        if hit is None:
            hit = self._converted(self.env.replace(expr))
            self._cache[expr] = hit
        return hit

    def _converted(self, e: Any) -> sp.Expr:
        """:meth:`_convert`, remembered across traces for an expression in the input dims'
        symbols only. Why: each trace (settle's checks, repeated traces of a model) meets
        the same torch expressions and rebuilds their SymPy form node by node (a few
        percent of a CNN trace). The key is the expression after this trace's
        replacements and the torch-symbol -> user-symbol naming, all the result depends
        on; an expression with other symbols (named in ``fresh``) is converted anew."""
        if not isinstance(e, sp.Basic) or not e.free_symbols <= self.by_torch.keys():
            return self._convert(e)
        key = (self._names, e)
        hit = _CONVERTED.get(key)
        if hit is None:
            if len(_CONVERTED) >= 50_000:
                _CONVERTED.clear()
            hit = _CONVERTED[key] = self._convert(e)
        return hit

    def _convert(self, e: Any) -> sp.Expr:
        if e.is_Integer or e.is_Rational:
            return e
        if e.is_Float:  # a scale factor such as 1.5: its exact binary value
            return sp.Rational(float(e))
        if not e.args and e.is_number:
            return e
        if e.is_Symbol:
            if e in self.by_torch:
                return self.by_torch[e]
            # an unbacked or derived torch symbol: keep it, under a readable name
            if e not in self.fresh:
                self.fresh[e] = sp.Symbol(f"u_{e.name}", integer=True, positive=True)
            return self.fresh[e]
        hit = self._nodes.get(e)  # a subexpression met before in this trace: a detector's
        if hit is not None:  # Min(300, n7) in each sum over its 90 classes (3.7 ms a Min)
            return hit
        args = [self._convert(a) for a in e.args]
        fn = _FUNCS.get(type(e))
        out = fn(*args) if fn is not None else e.func(*args)
        self._nodes[e] = out
        return out


def node_metadata(node: Any) -> dict[str, Any]:
    """The per-node metadata dict autograd keeps (``Node.metadata``, a property)."""
    meta: dict[str, Any] = node.metadata
    return meta


def current_autograd_node() -> Any:
    """The autograd Node whose backward is running (None in forward)."""
    return torch._C._current_autograd_node()


@contextlib.contextmanager
def module_hooks(pre: Callable[..., Any], post: Callable[..., Any]) -> Iterator[None]:
    """Global forward pre/post hooks for every module call, removed on exit.

    Global hooks live in torch.nn.modules.module, not on the user's model.
    """
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )

    h1 = register_module_forward_pre_hook(pre)
    try:
        h2 = register_module_forward_hook(post, always_call=True)
    except BaseException:
        h1.remove()
        raise
    try:
        yield
    finally:
        h2.remove()
        h1.remove()


_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}


def _resize_op(mode: str, n: int) -> Any:
    name = {"nearest": f"upsample_nearest{n}d", "nearest-exact": f"_upsample_nearest_exact{n}d",
            "linear": "upsample_linear1d", "bilinear": "upsample_bilinear2d",
            "trilinear": "upsample_trilinear3d", "bicubic": "upsample_bicubic2d"}.get(mode)
    if name is None or (mode in _LINEAR_MODES and _LINEAR_MODES[mode] != n):
        return None
    packet = getattr(torch.ops.aten, name, None)
    return packet.default if packet is not None else None


def _interpolate(input: Any, size: Any = None, scale_factor: Any = None,
                 mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None, antialias: bool = False) -> Any:
    """``F.interpolate`` on symbolic sizes: the output size computed here, then the
    ``.default`` upsample overload (NotImplemented: let torch handle it)."""
    n = input.dim() - 2
    op = _resize_op(mode, n)
    if antialias:  # torch's antialiased kernels exist for bilinear and bicubic only
        op = getattr(torch.ops.aten, f"_upsample_{mode}2d_aa").default \
            if mode in ("bilinear", "bicubic") and n == 2 else None
    if op is None or n < 1:
        return NotImplemented
    if size is not None:
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * n
        scales: list[Any] = [None] * n
    elif scale_factor is not None:
        factors = list(scale_factor) if isinstance(scale_factor, (list, tuple)) else \
            [scale_factor] * n
        sizes = [input.shape[2 + i] * int(f) if float(f).is_integer() else
                 math.floor(input.shape[2 + i] * float(f)) for i, f in enumerate(factors)]
        scales = [None] * n if recompute_scale_factor else [float(f) for f in factors]
    else:
        return NotImplemented
    if len(sizes) != n:
        return NotImplemented
    if mode in _LINEAR_MODES:
        return op(input, sizes, bool(align_corners), *scales)
    return op(input, sizes, *scales)


def _symbolic_resize(args: Any, kwargs: Any) -> bool:
    """The input's sizes or the requested ``size`` are symbolic (a fixed position embedding
    resized to the input's patch grid: timm's ``dynamic_img_size``)."""
    size = kwargs.get("size", args[1] if len(args) > 1 else None)
    sizes = size if isinstance(size, (list, tuple)) else [size]
    return any(isinstance(s, torch.SymInt) for s in [*args[0].shape, *sizes])


class SymbolicResize(TorchFunctionMode):
    """Keeps ``F.interpolate`` symbolic.

    ``interpolate`` calls the ``.vec`` overloads of the upsample ops, whose C++ composite
    kernels turn symbolic sizes into concrete ones (torch 2.13: every dim gets pinned to
    its example size, or "SymIntArrayRef expected to contain only concrete integers").
    This mode computes the output size itself (``size``, or ``floor(size * scale)``) and
    calls the ``.default`` overload (``_upsample_bilinear2d_aa`` and ``_bicubic2d_aa`` when
    antialiased), which takes symbolic sizes. Calls with neither symbolic input sizes nor a
    symbolic ``size``, and modes it does not know (``area``), pass through untouched.
    ``F.max_pool1d`` (whose CPU kernel pins the length) becomes
    ``max_pool1d_with_indices``: the same windows and comparisons.
    """

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        if func is torch.nn.functional.interpolate and args and \
                isinstance(args[0], torch.Tensor) and _symbolic_resize(args, kwargs):
            out = _interpolate(*args, **kwargs)
            if out is not NotImplemented:
                return out
        if func is torch.nn.functional.max_pool1d and args and \
                isinstance(args[0], torch.Tensor) and \
                any(isinstance(s, torch.SymInt) for s in args[0].shape):
            # the CPU kernel reads the length as an int; the indices variant is symbolic
            kwargs = dict(kwargs)
            indices = args[6] if len(args) > 6 else kwargs.pop("return_indices", False)
            args = args[:6]
            out = torch.nn.functional.max_pool1d_with_indices(*args, **kwargs)
            return out if indices else out[0]
        return func(*args, **kwargs)


# ----------------------------------------------------------------------------- model safety
def is_fake(t: Any) -> bool:
    """Whether ``t`` is a FakeTensor (made by a trace, never the user's)."""
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


_WRITTEN: dict[Any, tuple[tuple[int, str], ...]] = {}


def written_args(func: Any) -> tuple[tuple[int, str], ...]:
    """``(position, name)`` of the arguments an aten overload writes (``add_``'s self,
    ``out=``), from its schema (memoized)."""
    hit = _WRITTEN.get(func)
    if hit is None:
        hit = _WRITTEN[func] = tuple(
            (i, a.name) for i, a in enumerate(func._schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write)
    return hit


#: the per-module hook dicts ``Module.__call__`` runs (forward and backward)
MODULE_CALL_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks",
                     "_backward_pre_hooks")


def is_reparametrization_hook(hook: Any) -> bool:
    """torch's legacy ``weight_norm``/``spectral_norm`` and ``prune`` pre-hooks: part of
    the model's computation (they compute ``weight``), unlike a user's observing hook."""
    from torch.nn.utils.prune import BasePruningMethod
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    return isinstance(hook, (WeightNorm, SpectralNorm, BasePruningMethod))


_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks",
                 "_global_forward_hooks_always_called", "_global_forward_hooks_with_kwargs",
                 "_global_backward_hooks", "_global_backward_pre_hooks",
                 "_global_buffer_registration_hooks", "_global_module_registration_hooks",
                 "_global_parameter_registration_hooks")


@contextlib.contextmanager
def global_hooks_suspended() -> Iterator[None]:
    """Every global module hook (torch.nn.modules.module's registries) emptied for the
    duration, then put back exactly (same dicts, same order, same handles)."""
    import torch.nn.modules.module as mm

    saved = {name: list(getattr(mm, name).items()) for name in _GLOBAL_HOOKS}
    full = mm._global_is_full_backward_hook
    for name in _GLOBAL_HOOKS:
        getattr(mm, name).clear()
    try:
        yield
    finally:
        for name, items in saved.items():
            registry = getattr(mm, name)
            registry.clear()
            registry.update(items)
        mm._global_is_full_backward_hook = full


def set_version(t: Any, version: int) -> None:
    """Put ``t``'s in-place version counter back to ``version``: autograd bumps it for an
    in-place op even when a dispatch mode sent the write to a copy."""
    if int(t._version) != version:
        torch._C._autograd._unsafe_set_version_counter((t,), (version,))


def uninitialized_lazy(model: torch.nn.Module) -> list[str]:
    """Names of the lazy modules (``LazyLinear``...) whose parameters are not made yet."""
    from torch.nn.modules.lazy import LazyModuleMixin

    lazy: list[Any] = [(name, m) for name, m in model.named_modules()
                       if isinstance(m, LazyModuleMixin)]
    return [name or "(root)" for name, m in lazy if m.has_uninitialized_params()]


def _not_from_torch(record: logging.LogRecord) -> bool:
    return not (record.name == "torch" or record.name.startswith("torch."))


@contextlib.contextmanager
def torch_logs_silenced() -> Iterator[None]:
    """torch's own log records (symbolic-shape reasoning, fake tensors: a traceback per
    failed guard evaluation) dropped for the duration; the loggers' ``disabled`` flags
    and every handler are as before afterwards. Other loggers are untouched."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger("torch")] + [
        lg for name, lg in list(manager.loggerDict.items())
        if isinstance(lg, logging.Logger) and name.startswith("torch.")]
    disabled = [(lg, lg.disabled) for lg in loggers]
    handlers = list(dict.fromkeys([*logging.getLogger().handlers,
                                   *(h for lg in loggers for h in lg.handlers)]))
    for lg in loggers:
        lg.disabled = True
    for h in handlers:  # loggers torch creates meanwhile still reach these handlers
        h.addFilter(_not_from_torch)
    try:
        with _structured_trace_detached():
            yield
    finally:
        for h in handlers:
            h.removeFilter(_not_from_torch)
        for lg, flag in disabled:
            lg.disabled = flag


@contextlib.contextmanager
def _structured_trace_detached() -> Iterator[None]:
    """torch's structured trace log (``torch.__trace``) without its handlers for the
    duration, then with the same handlers again, in order. Why: ``trace_structured`` checks
    only whether that logger has handlers before it builds a record's metadata (each new
    guard: the guard printed and a captured Python stack, ~5% of a GoogLeNet trace); the
    logger is disabled above like every torch logger, so the record was built and then
    dropped. torch's own handler is lazy and removes itself at its first record when no
    trace directory is set, which a disabled logger never lets happen. Nothing reaches a
    handler either way: no output changes."""
    from torch._logging._internal import trace_log

    if trace_log.disabled is False and trace_log.handlers:
        yield  # not disabled (a torch newer than this was written for): leave it be
        return
    saved = list(trace_log.handlers)
    for h in saved:
        trace_log.removeHandler(h)
    try:
        yield
    finally:
        for h in saved:
            if h not in trace_log.handlers:
                trace_log.addHandler(h)


# ----------------------------------------------------------------- data-dependent sizes
def symbol_count(env: SymEnv) -> int:
    """How many symbols ``env``'s ShapeEnv knows (grows when an op makes an unbacked one)."""
    return len(env.shape_env.var_to_range)


def unbacked_in(expr: Any) -> list[sp.Symbol]:
    """The unbacked symbols (torch's ``u0``, ``u1``: sizes read from data) in ``expr``."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    return sorted(free_unbacked_symbols(expr), key=lambda s: s.name) \
        if isinstance(expr, (torch.SymInt, sp.Basic)) else []


def set_example(env: SymEnv, sym: sp.Symbol, value: int) -> None:
    """Let torch decide a data-dependent branch at ``sym = value`` (instead of raising
    GuardOnDataDependentSymNode): the example values torch's real-tensor propagation uses.
    Each decision becomes a deferred runtime assert (:func:`decided`)."""
    env.shape_env.set_real_tensor_prop_unbacked_vals(sym, int(value))


def unbacked_range(env: SymEnv, sym: sp.Symbol) -> tuple[int, int | None]:
    """Torch's value range of an unbacked symbol (``None``: unbounded above)."""
    vr = env.shape_env.var_to_range.get(sym)
    if vr is None:
        return 0, None
    lo = int(vr.lower) if vr.lower.is_Integer else 0
    hi = int(vr.upper) if vr.upper.is_Integer else None
    return lo, hi


def decided(env: SymEnv) -> list[Any]:
    """The conditions torch recorded as runtime asserts (over torch's symbols): the
    data-dependent branches decided at the example values, and ``torch._check`` s."""
    out: list[Any] = []
    for asserts in env.shape_env.deferred_runtime_asserts.values():
        for ra in asserts:
            if ra.expr not in out:
                out.append(ra.expr)
    return out


def example_values(env: SymEnv) -> dict[sp.Symbol, sp.Integer]:
    """Each backed symbol's example value (its hint)."""
    return dict(env.shape_env.backed_var_to_val)
