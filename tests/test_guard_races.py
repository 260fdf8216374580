"""The watchdog's interrupt never lands outside the guarded call it was meant for: the
moments when it fires are forced (a hook in the watchdog, a pause in the guard), not left
to timing luck. Both races failed before the fix: an interrupt fired while the calling
thread waited for the guard's lock on its way out left that lock taken (the call and the
watchdog hung), and one re-fired while the guard handled the first escaped the call as a
bare ``Interrupt`` with the call's level left armed (the watchdog kept firing at the
thread afterwards)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import pytest

from symflops.errors import TimeBudgetSpent
from symflops.tracing import _guard

BUDGET = 0.05


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # the watchdog fires at the budget itself, and re-fires every 10 ms
    monkeypatch.setattr(_guard, "GRACE", 0.0)
    monkeypatch.setattr(_guard, "REFIRE", 0.01)


def _in_a_thread(call: Any, timeout: float = 10.0) -> tuple[str, Any]:
    """``call()`` in a daemon thread: ("returned", value), ("raised", exception) or
    ("hung", None); then a busy loop in that thread after the call returned, where no
    interrupt may land (("late", exception) if one does)."""
    out: list[tuple[str, Any]] = []

    def run() -> None:
        try:
            value = call()
        except BaseException as e:  # noqa: BLE001  (an escaping Interrupt is the failure)
            out.append(("raised", e))
        else:
            out.append(("returned", value))
        try:
            end = time.perf_counter() + 5 * _guard.REFIRE + 0.05
            while time.perf_counter() < end:
                pass
        except BaseException as e:  # noqa: BLE001
            out.append(("late", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return "hung", None
    assert len(out) == 1, out  # ("late", ...) second: an interrupt after the call returned
    return out[0]


def _guard_is_clear() -> None:
    assert _guard._levels == {} and _guard._shielded == {}
    assert _guard._mutex.acquire(timeout=2), "the guard's lock was left taken"
    _guard._mutex.release()


def test_an_interrupt_fired_while_the_call_waits_for_the_lock_on_its_way_out_is_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog (holding the guard's lock) fires just as the call returns, and waits
    until the calling thread is blocked on that lock before it lets go."""
    about_to_fire = threading.Event()
    seen: list[str] = []
    fire = _guard._set_async_exc

    def fire_when_blocked(tid: int, exc: Any) -> int:
        if about_to_fire.is_set():
            return fire(tid, exc)
        about_to_fire.set()
        # the calling thread stops moving once it waits for the lock this thread holds
        last, still_since = None, time.perf_counter()
        while time.perf_counter() - still_since < 0.05:
            frame = sys._current_frames().get(tid)
            where = None if frame is None else (frame.f_code, frame.f_lasti)
            if where != last:
                last, still_since = where, time.perf_counter()
            time.sleep(0.002)
        seen.append("" if last is None else last[0].co_name)
        return fire(tid, exc)

    monkeypatch.setattr(_guard, "_set_async_exc", fire_when_blocked)

    @_guard.guarded
    def returns(time_budget: float | None = BUDGET) -> str:
        while not about_to_fire.is_set():  # spins past its budget: the watchdog fires
            pass
        return "value"

    kind, result = _in_a_thread(returns)
    assert kind != "hung", "the guard's lock was left taken: the call hung"
    # the interrupt is dropped on the way out (or, had it landed before, it would be this
    # call's TimeBudgetSpent): never a bare Interrupt, never one after the return
    assert (kind, result) == ("returned", "value") or \
        (kind == "raised" and isinstance(result, TimeBudgetSpent)), (kind, result)
    assert seen and seen[0] in ("call", "__enter__")  # it was blocked on the lock
    _guard_is_clear()


def test_an_interrupt_re_fired_while_the_guard_handles_the_first_stays_in_the_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first interrupt lands in the spinning body; the guard, while it finds out
    whether it was the call's own, pauses until the watchdog has fired once more (or for
    a second when the watchdog holds off, as it must from there on)."""
    fired = threading.Event()
    fires: list[float] = []
    fire = _guard._set_async_exc

    def counted(tid: int, exc: Any) -> int:
        fires.append(time.perf_counter())
        if len(fires) >= 2:
            fired.set()
        return fire(tid, exc)

    spent = _guard._Level.spent

    def pausing_spent(level: _guard._Level) -> bool:
        fired.wait(1.0)
        return spent(level)

    monkeypatch.setattr(_guard, "_set_async_exc", counted)
    monkeypatch.setattr(_guard._Level, "spent", pausing_spent)

    @_guard.guarded
    def spins(time_budget: float | None = BUDGET) -> None:
        while True:
            pass

    kind, result = _in_a_thread(spins)
    assert kind == "raised" and isinstance(result, TimeBudgetSpent), (kind, result)
    assert len(fires) == 1  # nothing fired once the guard was handling the interrupt
    _guard_is_clear()


def test_a_restore_that_raises_still_disarms_the_call() -> None:
    """A restore registered with on_exit that raises: its error leaves the call, and the
    call's level is off the stack (the watchdog does not fire at the thread later)."""

    @_guard.guarded
    def registers(time_budget: float | None = BUDGET) -> None:
        def restore() -> None:
            raise ValueError("restore failed")

        _guard.on_exit(restore)

    kind, result = _in_a_thread(registers)
    assert kind == "raised" and isinstance(result, ValueError), (kind, result)
    _guard_is_clear()


def _traceback_through(*files: str) -> Any:
    """The traceback of an error raised through one function per ``file`` (the first the
    outermost): frames that report those files, as the watchdog's interrupt would have."""
    names = [f"f{i}" for i in range(len(files))]
    scope: dict[str, Any] = {}
    for i, (name, path) in enumerate(zip(names, files, strict=True)):
        body = f"    {names[i + 1]}()\n" if i + 1 < len(files) else "    raise KeyError('x')\n"
        exec(compile(f"def {name}():\n{body}", path, "exec"), scope)  # noqa: S102
    try:
        scope[names[0]]()
    except KeyError as e:
        return e.__traceback__
    raise AssertionError("not raised")


_OURS = os.path.dirname(os.path.abspath(_guard.__file__))  # symflops/tracing


@pytest.mark.parametrize("files,says", [
    (["/m/model.py", os.path.join(_OURS, "..", "simplification.py"),
      "/p/site-packages/sympy/core/add.py"], "symflops' symbolic algebra (f1, symflops"),
    (["/m/model.py", "/p/site-packages/torch/fx/experimental/symbolic_shapes.py",
      "/p/site-packages/sympy/core/add.py"], "inside torch (f1)"),
    (["/m/symflops/model.py", os.path.join(_OURS, "_run.py"), "/m/model.py"],
     "in code that does not call torch (a loop in the model's forward"),
], ids=["symflops-algebra", "torch", "model-loop"])
def test_a_spent_budget_says_where_the_time_went(files: list[str], says: str) -> None:
    """The watchdog's TimeBudgetSpent names the code its interrupt landed in, SymPy's own
    frames skipped: symflops' algebra (timm's sam2_hiera once ran out simplifying, and the
    message blamed a loop in the model), torch, or the model's own loop."""
    err = _guard.spent("trace", 300.0, _traceback_through(*files))
    assert isinstance(err, TimeBudgetSpent)
    assert says in str(err), str(err)
    assert "time budget (300 s)" in str(err) and "fix:" in str(err)
