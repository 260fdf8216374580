"""The guard around every tracing entry: one lock, and a watchdog for the time budget.

**The lock.** A trace suspends torch's global module hooks and the model's own, swaps in
fake tensors, then puts everything back. Two traces interleaved in threads would each save
the other's suspended state and restore the wrong one (four threads calling ``sf.trace`` at
once removed a user's global forward hook for good). The entries that run user code under
torch's symbolic machinery (``trace``, ``fit``, ``trace_factory``) hold one re-entrant lock
(:data:`TRACE_LOCK`) for the whole call.

**The watchdog.** A trace checks its ``time_budget`` at every torch op and every guard, but
user code that loops without calling torch (a ``make`` that never returns, a forward that
spins on Python ints) never reaches a check. So each guarded call arms a watchdog thread
with its budget; when the budget is spent it raises :class:`Interrupt` in the calling
thread (``PyThreadState_SetAsyncExc``), again every :data:`REFIRE` s until the call
returns (a bare ``except:`` in user code cannot keep it), and the call raises
:class:`~symflops.errors.TimeBudgetSpent`. Calls nest: a call made inside another
(``trace`` -> its fit fallback) has its budget of its own and the outer one's clock stops
meanwhile; ``trace_factory``'s budget covers the whole call, each of its traces within its
own too (:func:`guarded_whole_call`). Code that restores state runs :func:`uninterrupted`
(the watchdog holds off, a pending interrupt is dropped, the restore is retried if one
landed before); what a restore registered with :func:`on_exit` and did not finish runs when the call
returns; torch's default dtype and grad mode and its mode stacks are put back there too.
The guard itself holds the watchdog off from the moment the function returns or an
interrupt is caught until the call is off the watchdog's list, and drops one fired while
it waited for the watchdog's lock (see ``_mutex``): no interrupt lands after the call it
was meant for returned.

>>> import time
>>> @guarded
... def spin(time_budget: float | None = 300) -> None:
...     while True:
...         pass
>>> t = time.perf_counter()
>>> spin(time_budget=0.2)
Traceback (most recent call last):
...
symflops.errors.TimeBudgetSpent: spin: the call ran out of its time budget (0.2 s) ...
>>> time.perf_counter() - t < 2
True
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import linecache
import math
import os
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, TypeVar

from symflops.errors import TimeBudgetSpent

__all__ = ["guarded", "guarded_whole_call", "TRACE_LOCK", "Interrupt", "uninterrupted",
           "on_exit", "innermost_spent", "raising_cleanly", "answering_otherwise", "REFIRE",
           "GRACE", "UNWIND"]

#: held by every tracing entry point for the whole call (re-entrant: ``trace`` may call
#: ``fit``, ``trace_factory`` calls ``trace``)
TRACE_LOCK = threading.RLock()
#: seconds between two interrupts while a spent call has not returned
REFIRE = 0.1
#: seconds past the budget before the watchdog interrupts (the trace's own check at each
#: torch op raises cleanly first when ops are running)
GRACE = 0.2
#: seconds a clean TimeBudgetSpent may take to unwind before the watchdog interrupts
UNWIND = 5.0

F = TypeVar("F", bound=Callable[..., Any])


class Interrupt(BaseException):  # noqa: N818  (not an error of the user's: a signal)
    """Raised by the watchdog in a thread whose call spent its budget (a BaseException,
    so ``except Exception`` in user code does not swallow it); the guard turns it into
    :class:`~symflops.errors.TimeBudgetSpent`."""


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))


@dataclass
class _Level:
    """One guarded call of a thread: its budget (seconds, ``None``: no limit), what is
    left of it, since when it runs (``None`` while a nested call runs), whether its
    interrupt was delivered (turned into TimeBudgetSpent: no more interrupts)."""

    name: str
    #: the calling thread (``threading.get_ident``)
    tid: int
    budget: float | None
    left: float
    running_since: float | None
    #: True: the clock stops while a nested guarded call runs (it has a budget of its own)
    pauses: bool = True
    delivered: bool = False
    #: seconds added to the grace: a clean TimeBudgetSpent is already unwinding
    #: (:func:`raising_cleanly`), so the watchdog waits longer before it interrupts
    extra_grace: float = 0.0
    restorers: list[Callable[[], None]] = field(default_factory=list)
    torch_state: Any = None

    def spent(self) -> bool:
        """The budget is used up (the interrupt is this call's, not an outer one's)."""
        return self.budget is not None and self.running_since is not None and \
            time.perf_counter() - self.running_since >= self.left

    def due(self) -> float | None:
        if self.budget is None or self.delivered or self.running_since is None:
            return None
        return self.running_since + self.left + GRACE + self.extra_grace


#: guards ``_levels`` and ``_shielded``; the watchdog fires only while holding it. A plain
#: lock, taken with ``with _mutex:`` and nothing else in the calling threads: its C-level
#: ``__enter__`` leaves no point between taking it and the body where an interrupt can
#: land (``threading.Condition.__enter__`` is Python: an interrupt fired while the thread
#: waited for it landed right after the lock was taken, the ``with`` was never entered,
#: and the lock was never released: the watchdog and every later call hung). The first
#: statement under it in a calling thread drops a pending interrupt (``_clear_async_exc``:
#: CPython >= 3.11 looks for one only at function entry, backward jumps and after a call
#: returns, so none lands before that call is done)
_mutex = threading.Lock()
#: the watchdog sleeps on it until the next due time or a change of the levels
_wakeup = threading.Condition(_mutex)
_levels: dict[int, list[_Level]] = {}
_shielded: dict[int, int] = {}
_watchdog: threading.Thread | None = None


def _watch() -> None:
    with _wakeup:
        while True:
            now = time.perf_counter()
            wake: float | None = None
            for tid, stack in _levels.items():
                dues = [d for d in (level.due() for level in stack) if d is not None]
                if not dues:
                    continue
                due = min(dues)
                if now >= due:
                    if not _shielded.get(tid):
                        _set_async_exc(tid, Interrupt)
                    due = now + REFIRE
                wake = due if wake is None else min(wake, due)
            _wakeup.wait(None if wake is None else max(wake - now, 0.001))


def _after_fork() -> None:
    """A forked child has none of the parent's threads: a fresh watchdog when it arms."""
    global _watchdog, _mutex, _wakeup
    _watchdog = None
    _mutex = threading.Lock()
    _wakeup = threading.Condition(_mutex)
    _levels.clear()
    _shielded.clear()


os.register_at_fork(after_in_child=_after_fork)


def _new_level(name: str, budget: float | None, pauses: bool) -> _Level:
    return _Level(name, threading.get_ident(), budget,
                  math.inf if budget is None else budget, time.perf_counter(), pauses,
                  torch_state=_torch_state())


def _arm(level: _Level) -> None:
    """``level`` on top of its thread's stack (the outer call's clock stops if it pauses),
    its clock started; the watchdog started the first time."""
    global _watchdog
    tid = level.tid
    with _mutex:
        # an interrupt pending for an outer call is dropped here (the watchdog fires it
        # again while that call is spent), so none lands half-way through the push
        _clear_async_exc(tid, None)
        now = time.perf_counter()
        level.running_since = now
        stack = _levels.setdefault(tid, [])
        since = stack[-1].running_since if stack and stack[-1].pauses else None
        if since is not None:  # the outer clock stops
            stack[-1].left -= now - since
            stack[-1].running_since = None
        stack.append(level)
        if _watchdog is None:
            _watchdog = threading.Thread(target=_watch, name="symflops-watchdog", daemon=True)
            _watchdog.start()
        _wakeup.notify()


def _disarm(level: _Level) -> bool:
    """``level`` off its thread's stack (the outer call's clock runs again) and any
    interrupt still pending for the thread dropped; whether it was on the stack.
    Idempotent."""
    tid = level.tid
    with _mutex:
        _clear_async_exc(tid, None)
        stack = _levels.get(tid, [])
        armed = level in stack
        if armed:
            stack.remove(level)
            if not stack:
                del _levels[tid]
            elif stack[-1].running_since is None:  # its clock runs again
                stack[-1].running_since = time.perf_counter()
        _wakeup.notify()
    return armed


def _unshield(tid: int) -> None:
    with _mutex:
        _shielded[tid] -= 1
        if not _shielded[tid]:
            del _shielded[tid]


@contextmanager
def _shield(deliver: bool) -> Iterator[None]:
    """No interrupt lands in the body; ``deliver``: the current call's interrupt has been
    turned into TimeBudgetSpent (the watchdog stops)."""
    tid = threading.get_ident()
    with _mutex:
        _clear_async_exc(tid, None)  # (first: see _mutex)
        _shielded[tid] = _shielded.get(tid, 0) + 1
        stack = _levels.get(tid)
        if deliver and stack:
            stack[-1].delivered = True
    try:
        yield
    finally:
        _unshield(tid)


def uninterrupted(restore: Callable[[], None], deliver: bool = False) -> None:
    """Run ``restore`` (idempotent) where the watchdog does not interrupt; if an interrupt
    landed just before, run it again. ``deliver``: the caller turns the current call's
    interrupt into TimeBudgetSpent."""
    while True:
        try:
            with _shield(deliver):
                restore()
            return
        except Interrupt:
            continue


def on_exit(restore: Callable[[], None]) -> Callable[[], None]:
    """Register ``restore`` to run when the current guarded call returns, in case an
    interrupt skips the code that runs it; returns the function that unregisters it."""
    stack = _levels.get(threading.get_ident())
    if not stack:
        return lambda: None
    restorers = stack[-1].restorers
    restorers.append(restore)

    def done() -> None:
        if restore in restorers:
            restorers.remove(restore)

    return done


def innermost_spent() -> bool:
    """The innermost guarded call's budget is used up (an interrupt is then its own)."""
    stack = _levels.get(threading.get_ident())
    return bool(stack and stack[-1].spent())


def raising_cleanly() -> None:
    """The innermost call's own budget check is raising TimeBudgetSpent: give it
    :data:`UNWIND` s to unwind through the model's code before the watchdog interrupts
    (an interrupt landing in a finalizer or a gc callback of someone else's is only
    printed as ignored; a forward that catches the error and loops is still stopped)."""
    _change_innermost(lambda level: setattr(level, "extra_grace", UNWIND))


def answering_otherwise() -> None:
    """The innermost call is done with its own budget and answers another way (``trace``
    falls back to a fit, which arms a budget of its own): the watchdog stops for it, as if
    its interrupt had been delivered. Without this, the outer clock, already spent, ran on
    once the fit returned, and its interrupt landed in whatever the call did next (a weakref
    callback freeing the spent trace, printed as ignored)."""
    _change_innermost(lambda level: setattr(level, "delivered", True))


def _change_innermost(change: Callable[[_Level], None]) -> None:
    """``change`` the calling thread's innermost level under the lock, and wake the
    watchdog to read it. A pending interrupt is dropped first (see :data:`_mutex`): the
    callers' own call is raising cleanly or answering otherwise, and an outer call's is
    fired again while that call is spent."""
    tid = threading.get_ident()
    with _mutex:
        _clear_async_exc(tid, None)
        stack = _levels.get(tid)
        if stack:
            change(stack[-1])
            _wakeup.notify()


def current_budget() -> tuple[str, float | None]:
    """The innermost guarded call's name and budget (for a TimeBudgetSpent message)."""
    stack = _levels.get(threading.get_ident())
    return (stack[-1].name, stack[-1].budget) if stack else ("trace", None)


def spent(name: str, budget: float | None, tb: TracebackType | None = None) -> TimeBudgetSpent:
    """The error a call whose budget the watchdog found spent raises; ``tb``, the
    interrupt's traceback, says where the time went (:func:`_spent_in`)."""
    where, fix = _spent_in(tb)
    return TimeBudgetSpent(f"the call ran out of its time budget ({budget:g} s) {where}",
                           layer=name, fix=f"pass a larger {{time_budget}}, or {fix}",
                           options={"time_budget": ...})


#: the standard library's folder, and the installed packages' (inside it in a venv-less
#: install): standard library frames say nothing of where the time went
_STDLIB = sysconfig.get_paths()["stdlib"]
_PACKAGES = (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
#: symflops' own folder
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _standard_library(filename: str) -> bool:
    return filename.startswith(_STDLIB) and not filename.startswith(_PACKAGES)


def model_line(frame: FrameType | None) -> str | None:
    """The innermost line of the model's own code on the stack from ``frame`` outwards:
    the first frame that is not torch's, SymPy's, symflops' or the standard library's,
    as ``file:line: source`` (the file relative to its site-packages, else as it is).
    Where a trace learned something of the model (the ``_assert`` that fixes ``H``).

    >>> import sys
    >>> ns = {"sys": sys}
    >>> exec(compile("def forward():\\n    return sys._getframe()", "/models/net.py", "exec"), ns)
    >>> model_line(ns["forward"]())
    '/models/net.py:2'
    """
    while frame is not None:
        name = frame.f_code.co_filename
        parts = name.split(os.sep)
        if not (name.startswith(_PACKAGE) or "torch" in parts or "sympy" in parts
                or _standard_library(name)):
            break
        frame = frame.f_back
    if frame is None:
        return None
    name, line = frame.f_code.co_filename, frame.f_lineno
    for root in _PACKAGES:
        if name.startswith(root + os.sep):
            name = name[len(root) + 1:]
            break
    code = linecache.getline(frame.f_code.co_filename, line).strip()
    if len(code) > 100:
        code = code[:97] + "..."
    return f"{name}:{line}" + (f": {code}" if code else "")


def _spent_in(tb: TracebackType | None) -> tuple[str, str]:
    """Where an interrupt landed, from the innermost frame that is not SymPy's or the
    standard library's: symflops' own algebra (a formula too large to simplify in time:
    timm's sam2_hiera once), torch's, or the model's (a loop that calls no torch op)."""
    frames = [f for f in traceback.extract_tb(tb) if "sympy" not in f.filename.split(os.sep)
              and not _standard_library(f.filename)] if tb is not None else []
    if frames:
        last = frames[-1]
        if last.filename.startswith(_PACKAGE):
            inside = os.path.relpath(last.filename, os.path.dirname(_PACKAGE.rstrip(os.sep)))
            return (f"in symflops' symbolic algebra ({last.name}, {inside}): the formula's "
                    "terms are too many or too large to settle in that time",
                    "fix some dims to ints (concrete sizes)")
        if "torch" in last.filename.split(os.sep):
            return (f"inside torch ({last.name}), outside any op the trace sees",
                    "fix some dims to ints (concrete sizes)")
    return ("in code that does not call torch (a loop in the model's forward or the "
            "factory)", "fix the loop")


def _torch_state() -> Any:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return (torch.get_default_dtype(), torch.is_grad_enabled(),
            torch._C._len_torch_dispatch_stack(), torch._C._len_torch_function_stack())


def _restore_torch(saved: Any) -> None:
    import torch

    dtype, grad, dispatch, function = saved
    if torch.get_default_dtype() != dtype:
        torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    from torch.utils._python_dispatch import _pop_mode

    while torch._C._len_torch_dispatch_stack() > dispatch:  # a mode an interrupt left on
        _pop_mode()
    while torch._C._len_torch_function_stack() > function:
        torch._C._pop_torch_function_stack()


def _budget_of(signature: inspect.Signature, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> float | None:
    """The call's ``time_budget`` (a keyword of the call, or of its ``**options``); a
    value the function will refuse arms nothing."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, p in signature.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
    if "time_budget" in arguments:
        budget = arguments["time_budget"]
    else:
        from symflops.tracing._inputs import DEFAULT_TIME_BUDGET
        budget = DEFAULT_TIME_BUDGET
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or \
            not math.isfinite(budget) or budget <= 0:
        return None
    return float(budget)


def _leave(level: _Level, interrupted: bool) -> bool:
    """(Called shielded; lowers the shield.) Run what the call's restores left undone,
    put torch's defaults back, disarm; whether ``interrupted`` was the call's own
    interrupt (its budget spent) rather than an outer call's."""
    try:
        mine = interrupted and level.spent()
        try:
            for restore in list(reversed(level.restorers)):
                restore()
            level.restorers.clear()
            if level.torch_state is not None:
                _restore_torch(level.torch_state)
        finally:
            # (an interrupt that landed before the level was pushed is an outer call's)
            mine = _disarm(level) and mine
    finally:
        _unshield(level.tid)
    return mine


def guarded(fn: F) -> F:
    """``fn`` run while holding :data:`TRACE_LOCK`, within its ``time_budget``; a guarded
    call made inside it has a budget of its own (its clock stops meanwhile)."""
    return _guarded(fn, pauses=True)


def guarded_whole_call(fn: F) -> F:
    """:func:`guarded`, the budget covering the calls made inside too (each still within
    its own): ``trace_factory``, whose traces are many."""
    return _guarded(fn, pauses=False)


def _guarded(fn: F, pauses: bool) -> F:
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with TRACE_LOCK:
            budget = _budget_of(signature, args, kwargs)
            level = _new_level(fn.__name__, budget, pauses)
            interrupted, tb = False, None
            try:
                _arm(level)
                return fn(*args, **kwargs)
            except Interrupt as e:
                interrupted, tb = True, e.__traceback__
            finally:
                # the shield goes up before anything is called: from the moment the call
                # returns or an interrupt is caught, none can land until the level is off
                # the stack (a second one, re-fired while the first unwound, landed here
                # and skipped the leave: the level stayed armed, the interrupt escaped
                # the call, and the watchdog kept firing at the thread)
                with _mutex:
                    _clear_async_exc(level.tid, None)  # (first: see _mutex)
                    _shielded[level.tid] = _shielded.get(level.tid, 0) + 1
                mine = _leave(level, interrupted)
            if not mine:  # an outer call's budget is spent: the interrupt goes on to it
                raise Interrupt
            raise spent(fn.__name__, budget, tb) from None
    return call  # type: ignore[return-value]
