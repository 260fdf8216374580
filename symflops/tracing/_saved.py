"""The tensors autograd saves for backward, measured during a symbolic train trace.

While the model's forward runs in ``mode="train"``, :func:`saved_tensors` installs
autograd's ``saved_tensors_hooks``: every tensor an autograd node saves passes through
:meth:`SavedLog.pack`, which notes its storage (its size in elements, symbolic, and its
identity: views of one storage are one tensor), its dtype and the module that saved it.
Parameters and buffers are not activations and are skipped. The hooks are removed when
the forward ends, also when it fails. :func:`saved_memory` turns the log into the
:class:`symflops.memory.Memory` of the trace (``accounting="torch"``: what torch saves).

>>> import torch, symflops as sf
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> m = sf.trace(net, "B 8", mode="train").memory
>>> m.activations     # x (8 per row) and the ReLU's output (16), 16-bit
48*B
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
import torch
from torch.multiprocessing.reductions import StorageWeakRef

from symflops.memory import Memory, Saved, factored_size
from symflops.tracing import _torch_compat as C

__all__ = ["RawSaved", "SavedLog", "saved_tensors", "saved_memory"]


@dataclass(frozen=True)
class RawSaved:
    """One saved tensor: the module path that saved it, its storage's element count (an
    int or a torch-SymPy expression), its dtype kind and its storage identity."""

    path: tuple[str, ...]
    numel: Any
    dtype: str
    storage: int


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "mask"
    return "float" if dtype.is_floating_point or dtype.is_complex else "index"


@dataclass
class SavedLog:
    """The saved tensors of one trace, in the order autograd saved them."""

    where: Callable[[], tuple[str, ...]]
    skip: set[int] = field(default_factory=set)
    items: list[RawSaved] = field(default_factory=list)
    _keep: list[Any] = field(default_factory=list)

    def exclude(self, tensors: Iterable[torch.Tensor]) -> None:
        """Skip these tensors' storages (the parameters and buffers)."""
        for t in tensors:
            self.skip.add(self._id(t))

    def _id(self, t: torch.Tensor) -> int:
        ref = StorageWeakRef(t.untyped_storage())
        self._keep.append(ref)  # the identity stays unique while the trace runs
        return int(ref.cdata)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = self._id(t)
        if key not in self.skip:
            size = C.sym_expr(t.untyped_storage().nbytes())
            numel = size // t.element_size() if isinstance(size, int) else \
                size / t.element_size()
            self.items.append(RawSaved(self.where(), numel, _kind(t.dtype), key))
        return t


@contextlib.contextmanager
def saved_tensors(log: SavedLog) -> Iterator[SavedLog]:
    """Log every tensor autograd saves inside the block; the hooks go when it ends."""
    with torch.autograd.graph.saved_tensors_hooks(log.pack, lambda t: t):
        yield log


def saved_memory(log: SavedLog, convert: Callable[[Any], Any], param_count: Any,
                 trainable: Iterable[torch.Tensor]) -> Memory:
    """The trace's Memory: the saved tensors (sizes through ``convert``, torch's symbols
    to the user's), the parameter count and the trainable parameters."""
    ids: dict[int, int] = {}
    saved = tuple(Saved(".".join(r.path), "saved", sp.sympify(convert(r.numel)), r.dtype,
                        tensor=ids.setdefault(r.storage, len(ids)))
                  for r in log.items)
    weights = list(trainable)
    return Memory(param_count, sum(w.numel() for w in weights), saved,
                  factored_size(tuple(w.shape) for w in weights), accounting="torch")
