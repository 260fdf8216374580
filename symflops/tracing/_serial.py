"""One trace at a time per process.

A trace suspends torch's global module hooks and the model's own, swaps in fake tensors and
patches nothing else, then puts everything back. Two traces interleaved in threads would each
save the other's suspended state and restore the wrong one (four threads calling ``sf.trace``
at once removed a user's global forward hook for good). The entries that run user code under
torch's symbolic machinery (``trace``, ``fit``, ``trace_factory``) hold one re-entrant lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["serialized", "TRACE_LOCK"]

#: held by every tracing entry point for the whole call (re-entrant: ``trace`` may call
#: ``fit``, ``trace_factory`` calls ``trace``)
TRACE_LOCK = threading.RLock()

F = TypeVar("F", bound=Callable[..., Any])


def serialized(fn: F) -> F:
    """``fn`` run while holding :data:`TRACE_LOCK`.

    >>> @serialized
    ... def f(x):
    ...     return TRACE_LOCK._is_owned()
    >>> f(1)
    True
    """
    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with TRACE_LOCK:
            return fn(*args, **kwargs)
    return locked  # type: ignore[return-value]
