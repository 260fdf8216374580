"""One trace at a time per process: :func:`serialized` is :func:`._guard.guarded` (the
re-entrant lock every tracing entry holds, and the watchdog that enforces its time budget
on the whole call)."""

from __future__ import annotations

from symflops.tracing._guard import TRACE_LOCK
from symflops.tracing._guard import guarded as serialized
from symflops.tracing._guard import guarded_whole_call as serialized_whole_call

__all__ = ["serialized", "serialized_whole_call", "TRACE_LOCK"]
