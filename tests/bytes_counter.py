"""An independent count of the bytes torch moves, for tests: a dispatch mode over REAL
tensors at concrete sizes that adds, per aten op that is not a view, each tensor argument's
bytes (read) and each output's bytes (written), a tensor's bytes being its element size
times its sizes over the dims it does not broadcast (stride 0); a lookup (embedding,
index_select, gather) reads its source at the size of its output, the rows it gathers;
copy_, fill_ and zero_ write their target without reading it. A
tensor whose storage is a parameter's or a buffer's is a "weights" tensor, any other an
"activations" one.

Written apart from symflops' tracer (which sees fake tensors with symbolic sizes) so the two
can disagree."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: lookups: their source is read at the size of their output
LOOKUPS = {"embedding", "index_select", "gather", "index", "take"}
#: ops that move nothing though their schema is not a view
FREE = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
        "_unsafe_view", "lift_fresh", "alias", "_local_scalar_dense"}


class BytesCounter(TorchDispatchMode):
    """``with BytesCounter(model): model(x)``; then ``.total`` maps ``"role.direction"`` to
    bytes (``cache``: tensors whose storage is the KV cache's)."""

    def __init__(self, model: torch.nn.Module, cache: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.weights = {t.untyped_storage().data_ptr()
                        for t in [*model.parameters(), *model.buffers()]}
        self.cache = {t.untyped_storage().data_ptr() for t in cache}
        self.total: dict[str, int] = {}

    def _add(self, t: torch.Tensor, direction: str, elements: int | None = None) -> None:
        n = t.element_size()
        if elements is not None:
            n *= elements
        else:
            for size, stride in zip(t.shape, t.stride(), strict=True):
                if stride != 0:
                    n *= size
        ptr = t.untyped_storage().data_ptr()
        role = "weights" if ptr in self.weights else "kv_cache" if ptr in self.cache else \
            "activations"
        key = f"{role}.{direction}"
        self.total[key] = self.total.get(key, 0) + n

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._overloadpacket.__name__
        if func.is_view or name in FREE:
            return out
        inputs = (args, kwargs)
        if name in ("copy_", "fill_", "zero_"):  # the target is overwritten, not read
            inputs = (args[1:], kwargs)
        if name in LOOKUPS:  # the source is read at the size of the rows gathered
            src = args[0]
            rows = tree_flatten(out)[0][0]
            self._add(src, "read", elements=rows.numel())
            inputs = (args[1:], kwargs)
        for t in tree_flatten(inputs)[0]:  # each argument, x * x twice
            if isinstance(t, torch.Tensor):
                self._add(t, "read")
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._add(t, "write")
        return out
