"""The model is never changed by a trace: :func:`untouched` snapshots what a forward can
change and puts it back exactly, whatever happens inside.

What is put back: every module's attributes (``__dict__``: attributes ``forward`` sets,
``training``, parameters/buffers/submodules registered during the run, one level of
list/dict/set contents), each parameter's and buffer's ``requires_grad`` and ``grad``,
the global RNGs (torch, Python ``random``, numpy). Hooks do not run during a trace:
each module's forward and backward hooks and torch's global module hooks are suspended
and restored as they were (a hook that removes itself when called is still there);
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
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import torch

from symflops.tracing import _torch_compat as C

__all__ = ["untouched"]


def _contents(value: Any) -> Any:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, set)):
        return list(value)
    return None


def _put_back(value: Any, saved: Any) -> None:
    if isinstance(value, dict):
        value.clear()
        value.update(saved)
    elif isinstance(value, list):
        value[:] = saved
    elif isinstance(value, set):
        value.clear()
        value.update(saved)


class _Snapshot:
    """What :func:`untouched` puts back."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.modules = list(dict.fromkeys(model.modules()))
        self.attrs = [dict(m.__dict__) for m in self.modules]
        self.contents: dict[int, tuple[Any, Any]] = {}
        for attrs in self.attrs:
            for v in attrs.values():
                c = _contents(v)
                if c is not None:
                    self.contents.setdefault(id(v), (v, c))
        tensors = list(dict.fromkeys([*model.parameters(), *model.buffers()]))
        self.tensors = [(t, t.requires_grad, t.grad) for t in tensors]
        self.rng = torch.get_rng_state()
        self.py_rng = random.getstate()
        numpy = sys.modules.get("numpy")
        self.np_rng = numpy.random.get_state() if numpy is not None else None

    def restore(self) -> None:
        for value, saved in self.contents.values():
            _put_back(value, saved)
        for m, attrs in zip(self.modules, self.attrs, strict=True):
            m.__dict__.clear()
            m.__dict__.update(attrs)
        for t, requires_grad, grad in self.tensors:
            if t.requires_grad != requires_grad:
                t.requires_grad_(requires_grad)
            if t.grad is not grad:
                t.grad = grad
        torch.set_rng_state(self.rng)
        random.setstate(self.py_rng)
        numpy = sys.modules.get("numpy")
        if self.np_rng is not None and numpy is not None:
            numpy.random.set_state(self.np_rng)


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
    the model's state, its hooks and the RNGs back afterwards (also on an exception)."""
    snap = _Snapshot(model)
    try:
        _suspend_module_hooks(snap.modules)
        with C.global_hooks_suspended():
            yield
    finally:
        snap.restore()
