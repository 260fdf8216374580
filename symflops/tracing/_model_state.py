"""The model is never changed by a trace: :func:`untouched` snapshots what a forward can
change and puts it back exactly, whatever happens inside.

What is put back: every module's attributes (``__dict__``: attributes ``forward`` sets,
``training``, parameters/buffers/submodules registered during the run), the contents of
the lists, dicts, sets and plain objects (a config) reachable from them, nested
(``self.deep["a"]["k"] = x``), the globals of the Python modules that define the model's
classes (names bound or rebound, and the containers they hold: a module-level cache dict;
not what the dunders hold, ``__loader__``, ``__builtins__``: those are the import system's,
and under pytest 9.2 ``__loader__`` reached the log records pytest was capturing),
each parameter's and buffer's ``requires_grad`` and ``grad``, torch's defaults (default
dtype, grad mode, anomaly mode, deterministic algorithms) and the global RNGs (torch,
Python ``random``, numpy). So no FakeTensor or SymInt of the trace stays reachable.
Hooks do not run during a trace: each module's forward and backward hooks and torch's global
module hooks are suspended and restored as they were (a hook that removes itself when called
is still there);
torch's legacy ``weight_norm``/``spectral_norm`` and ``prune`` pre-hooks do run, since they
compute the weight the forward uses (on fake copies). Tensor values are protected elsewhere:
ops run on fake copies, and a write to a tensor of the user's goes to a copy (see
``_recording``), so values and version counters do not move.

>>> import torch
>>> m = torch.nn.Linear(2, 2)
>>> with untouched(m):
...     m.last = "set during forward"; _ = m.train(False)
>>> hasattr(m, "last"), m.training
(False, True)
"""

from __future__ import annotations

import contextlib
import random
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import torch

from symflops.tracing import _guard
from symflops.tracing import _torch_compat as C

__all__ = ["untouched"]


#: how deep :func:`untouched` follows containers and plain objects from a module's attributes
#: (and from the globals of the modules that define the model's classes)
MAX_DEPTH = 8
#: at most this many containers are snapshotted (a pathological model stops the walk there)
MAX_OBJECTS = 200_000
#: the globals of modules under these packages are not snapshotted (torch's own caches,
#: symflops' own state, the standard library)
_OWN_PACKAGES = frozenset({"torch", "symflops", "builtins", "numpy", "sympy", "typing",
                           "functools", "collections", "abc", "contextlib", "threading",
                           # the interpreter's machinery reachable from any module's globals
                           # (``logger``: the whole logger tree, 1,400 objects under
                           # transformers; ``__spec__``, ``__loader__``, ``__builtins__``'s
                           # ``help`` and ``quit``)
                           "logging", "_frozen_importlib", "_frozen_importlib_external",
                           "importlib", "_sitebuiltins"})


def _own(module_name: str) -> bool:
    return module_name.split(".")[0] in _OWN_PACKAGES


def _plain_object(value: Any) -> bool:
    """An instance whose attributes a forward may set (a config object), not a module,
    tensor, class, function or Python module."""
    if isinstance(value, (torch.nn.Module, torch.Tensor, type, types.ModuleType,
                          types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                          torch.dtype, torch.device)):
        return False
    d = getattr(value, "__dict__", None)
    return type(d) is dict and not _own(type(value).__module__)


class _Containers:
    """The contents of every list, dict, set and plain object's ``__dict__`` reachable from
    some roots (depth-first, each once), put back by :meth:`restore`."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple[Any, Any]] = {}
        self.seen: set[int] = set()

    def add(self, value: Any, depth: int = 0) -> None:
        if depth > MAX_DEPTH or id(value) in self.seen or len(self.seen) >= MAX_OBJECTS:
            return
        kind = type(value)
        if kind in _LEAVES:
            return
        if (kind is dict or kind is OrderedDict) and not value:  # most hook dicts: fast path
            self.seen.add(id(value))
            self.saved[id(value)] = (value, [])
            return
        if isinstance(value, (torch.nn.Module, torch.Tensor, str, bytes, int, float)):
            return
        children: Any
        if isinstance(value, dict):
            saved: Any = list(value.items())
            children = value.values()
        elif isinstance(value, (list, set)):
            saved = list(value)
            children = saved
        elif isinstance(value, (tuple, frozenset)):
            saved, children = None, value
        elif _plain_object(value):
            saved = list(value.__dict__.items())
            children = value.__dict__.values()
        else:
            return
        self.seen.add(id(value))
        if saved is not None:
            self.saved[id(value)] = (value, saved)
        if children:  # (atoms and functions are skipped here, not in a call each)
            for child in [c for c in children if type(c) not in _LEAVES]:
                self.add(child, depth + 1)

    def restore(self) -> None:
        for value, saved in self.saved.values():
            if not saved and type(value) in _EMPTIABLE and not value:
                continue  # empty then and now (most hook dicts)
            if isinstance(value, dict):
                _put_back(value, saved)
            elif isinstance(value, list):
                if not _same(value, saved):
                    value[:] = saved
            elif isinstance(value, set):
                if not _same(value, saved):
                    value.clear()
                    value.update(saved)
            else:
                _put_back(value.__dict__, saved)


#: types :meth:`_Containers.add` never walks into (atoms, functions, classes, devices):
#: checked by exact type before the isinstance tests, for speed
_LEAVES = frozenset({type(None), bool, int, float, str, bytes, complex, type,
                     types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                     types.ModuleType, torch.dtype, torch.device, torch.nn.Parameter,
                     torch.Tensor})
_EMPTIABLE = frozenset({dict, OrderedDict, list, set})


def _same(now: Any, saved: list[Any]) -> bool:
    """``now`` holds exactly the objects ``saved`` (by identity: tensors do not compare)."""
    return len(now) == len(saved) and all(a is b for a, b in zip(now, saved, strict=True))


def _put_back(d: dict[Any, Any], saved: list[tuple[Any, Any]]) -> None:
    if len(d) != len(saved) or any(k is not k2 or v is not v2
                                   for (k, v), (k2, v2) in zip(d.items(), saved, strict=True)):
        d.clear()
        d.update(saved)


def _defining_modules(modules: list[torch.nn.Module]) -> list[types.ModuleType]:
    """The Python modules that define the model's classes (their globals are what a
    forward writes besides the model), torch's and symflops' own left out."""
    names = dict.fromkeys(c.__module__ for m in modules for c in type(m).__mro__)
    return [sys.modules[n] for n in names if n in sys.modules and not _own(n)]


class _TorchDefaults:
    """torch's process-wide defaults a forward may change: default dtype, grad mode,
    anomaly mode, deterministic algorithms."""

    def __init__(self) -> None:
        self.dtype = torch.get_default_dtype()
        self.grad = torch.is_grad_enabled()
        self.anomaly = torch.is_anomaly_enabled()
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.warn_only = torch.is_deterministic_algorithms_warn_only_enabled()

    def restore(self) -> None:
        if torch.get_default_dtype() != self.dtype:
            torch.set_default_dtype(self.dtype)
        torch.set_grad_enabled(self.grad)
        if torch.is_anomaly_enabled() != self.anomaly:
            torch.set_anomaly_enabled(self.anomaly)
        if (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) != \
                (self.deterministic, self.warn_only):
            torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)


class _Snapshot:
    """What :func:`untouched` puts back."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.modules = list(dict.fromkeys(model.modules()))
        self.attrs = [dict(m.__dict__) for m in self.modules]
        self.containers = _Containers()
        for attrs in self.attrs:
            for v in attrs.values():
                if type(v) not in _LEAVES:
                    self.containers.add(v)
        self.globals = []
        for module in _defining_modules(self.modules):
            g = vars(module)
            self.globals.append((g, dict(g)))
            for name, v in list(g.items()):
                if not (name.startswith("__") and name.endswith("__")):
                    self.containers.add(v)
        mm = torch.nn.modules.module
        self.hooks = [(getattr(mm, name), list(getattr(mm, name).items()))
                      for name in C._GLOBAL_HOOKS]
        self.full_backward = mm._global_is_full_backward_hook
        tensors = list(dict.fromkeys([*model.parameters(), *model.buffers()]))
        self.tensors = [(t, t.requires_grad, t.grad) for t in tensors]
        self.defaults = _TorchDefaults()
        self.rng = torch.get_rng_state()
        self.py_rng = random.getstate()
        numpy = sys.modules.get("numpy")
        self.np_rng = numpy.random.get_state() if numpy is not None else None

    def restore(self) -> None:
        """Put everything back (idempotent: a second call changes nothing)."""
        self.containers.restore()
        for g, saved in self.globals:
            for name in [n for n in g if n not in saved]:
                del g[name]
            for name, value in saved.items():
                if g.get(name, _MISSING) is not value:
                    g[name] = value
        for m, attrs in zip(self.modules, self.attrs, strict=True):
            m.__dict__.clear()
            m.__dict__.update(attrs)
        for t, requires_grad, grad in self.tensors:
            if t.requires_grad != requires_grad:
                t.requires_grad_(requires_grad)
            if t.grad is not grad:
                t.grad = grad
        for registry, items in self.hooks:
            _put_back(registry, items)
        torch.nn.modules.module._global_is_full_backward_hook = self.full_backward
        self.defaults.restore()
        torch.set_rng_state(self.rng)
        random.setstate(self.py_rng)
        numpy = sys.modules.get("numpy")
        if self.np_rng is not None and numpy is not None:
            numpy.random.set_state(self.np_rng)


_MISSING = object()


def _suspend_module_hooks(modules: list[torch.nn.Module]) -> None:
    """Each module's call hooks replaced by a dict holding only torch's reparametrization
    hooks (the originals come back with the module's ``__dict__``)."""
    for m in modules:
        for name in C.MODULE_CALL_HOOKS:
            hooks = m.__dict__.get(name)
            if hooks:
                m.__dict__[name] = OrderedDict(
                    (k, h) for k, h in hooks.items() if C.is_reparametrization_hook(h))


@contextlib.contextmanager
def untouched(model: torch.nn.Module) -> Iterator[None]:
    """Run the body with the model's hooks and the global module hooks suspended; put
    the model's state, its hooks and the RNGs back afterwards (also on an exception; where
    the watchdog cannot interrupt). The watchdog's interrupt (the call's time budget spent
    in code that calls no torch op) leaves as :class:`~symflops.errors.TimeBudgetSpent`."""
    snap = _Snapshot(model)
    registered = _guard.on_exit(snap.restore)  # (runs if an interrupt skips the finally)
    interrupted = mine = False
    tb = None
    try:
        _suspend_module_hooks(snap.modules)
        with C.global_hooks_suspended():
            yield
    except _guard.Interrupt as e:  # the watchdog: the budget is spent outside torch's ops
        interrupted, tb = True, e.__traceback__
    finally:
        mine = interrupted and _guard.innermost_spent()
        _guard.uninterrupted(snap.restore, deliver=mine)
        registered()
    if mine:
        raise _guard.spent(*_guard.current_budget(), tb)
    if interrupted:  # an outer call's budget (trace_factory's): it goes on to that call
        raise _guard.Interrupt
