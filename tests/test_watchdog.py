"""The time budget covers the whole call: a forward that loops on Python ints (no torch op,
so the trace's own check never runs) and a ``make`` that never returns stop within the
budget plus a margin, as one TimeBudgetSpent, with the model, its containers, the globals
and torch's state (default dtype, grad mode, mode stacks, global hooks) as before, and no
interrupt arriving after the call returned."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.modules import module as torch_module  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import TimeBudgetSpent  # noqa: E402
from symflops.tracing import _guard  # noqa: E402

#: every test here waits out a budget (about 25 s in all): the slow lane
pytestmark = pytest.mark.slow

BUDGET = 1.0
#: what a call may take past its budget: the watchdog's grace, the trace's own set-up
#: and tear-down on a loaded 2-core machine
MARGIN = 4.0
SEEN: dict[str, Any] = {}


class Spins(nn.Module):
    """Writes its containers, a global and torch's default dtype, then loops on ints;
    ``except Exception`` in the loop cannot hold the interrupt (``swallow_all``: not even
    ``except BaseException``, it is re-raised until it lands outside)."""

    def __init__(self, swallow_all: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.deep: dict[str, Any] = {"a": {}}
        self.swallow_all = swallow_all

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        self.deep["a"]["k"] = y
        self.last = y
        SEEN["y"] = y
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        n = 0
        while True:
            if self.swallow_all:
                try:  # noqa: SIM105  (the worst user code there is)
                    n += 1
                except BaseException:  # noqa: BLE001
                    pass
            else:
                try:  # noqa: SIM105
                    n += 1
                except Exception:  # noqa: BLE001
                    pass


def _state(model: nn.Module | None) -> Any:
    return (None if model is None else sorted(vars(model)),
            None if model is None else repr(getattr(model, "deep", None)),
            sorted(SEEN), torch.get_default_dtype(), torch.is_grad_enabled(),
            torch._C._len_torch_dispatch_stack(), torch._C._len_torch_function_stack(),
            dict(torch_module._global_forward_hooks), dict(_guard._levels),
            dict(_guard._shielded))


def _spent_within(call: Callable[[], Any], model: nn.Module | None, limit: float) -> float:
    before = _state(model)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TimeBudgetSpent, match=r"time budget \(1 s\)") as info:
            call()
    took = time.perf_counter() - started
    assert took < limit, took
    assert "\n" not in str(info.value) and "fix:" in str(info.value)
    assert _state(model) == before
    time.sleep(3 * _guard.REFIRE)  # no interrupt arrives after the call returned
    return took


@pytest.fixture(autouse=True)
def _a_hook_and_torch_defaults() -> Any:
    handle = torch_module.register_module_forward_hook(lambda *a: None)
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    yield
    handle.remove()
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    SEEN.clear()


@pytest.mark.parametrize("swallow_all", [False, True], ids=["except-Exception", "except-all"])
def test_a_forward_looping_without_torch_stops_within_the_budget(swallow_all: bool) -> None:
    model = Spins(swallow_all)
    _spent_within(lambda: sf.trace(model, "B 8", time_budget=BUDGET), model, BUDGET + MARGIN)
    assert sf.trace(model.lin, "B 8").params == 72  # tracing works afterwards


def test_fit_stops_within_its_budget() -> None:
    model = Spins()
    _spent_within(lambda: sf.tracing.fit(model, "B 8", time_budget=BUDGET), model,
                  BUDGET + MARGIN)


def test_the_fit_fallback_has_a_budget_of_its_own() -> None:
    """trace's budget, then the fallback fit's (documented): two budgets, no more."""
    model = Spins()
    took = _spent_within(lambda: sf.trace(model, "B 8", time_budget=BUDGET, fallback="fit"),
                         model, 2 * BUDGET + MARGIN)
    assert took > 2 * BUDGET


def test_a_make_that_never_returns_stops_within_the_budget() -> None:
    def make(width: int) -> nn.Module:
        while True:
            pass

    _spent_within(lambda: sf.trace_factory(make, "B 8", {"width": "W"}, time_budget=BUDGET),
                  None, BUDGET + MARGIN)


def test_a_factory_whose_forward_loops_stops_within_the_whole_budget() -> None:
    """Each trace inside has the budget too, and the factory's covers them all (it would
    otherwise try ~20 lattice points of one budget each)."""
    models: list[Spins] = []

    def make(width: int) -> nn.Module:
        models.append(Spins())
        return models[-1]

    _spent_within(lambda: sf.trace_factory(make, "B 8", {"width": "W"}, time_budget=BUDGET),
                  None, BUDGET + MARGIN)
    assert models and all(vars(m).get("last") is None and m.deep == {"a": {}} for m in models)


def test_another_thread_waits_and_its_trace_is_right() -> None:
    """A spinning trace holds the lock; a trace in another thread waits, then is exact."""
    out: list[Any] = []
    model = Spins()

    def spin() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sf.trace(model, "B 8", time_budget=BUDGET)
            except TimeBudgetSpent as e:
                out.append(e)

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.2)
    c = sf.trace(nn.Linear(8, 4), "B 8", convention="macs")
    t.join(BUDGET + MARGIN)
    assert not t.is_alive() and len(out) == 1
    assert c.flops == 32 * sf.symbols.B


def test_a_call_within_its_budget_is_never_interrupted() -> None:
    """The watchdog is disarmed on return: a trace that ends just before its budget leaves
    nothing pending (a later busy loop in the caller runs undisturbed)."""
    budget = 5 * BUDGET  # room for a cold first trace on a loaded machine (it failed at 1 s)
    for _ in range(3):
        assert sf.trace(nn.Linear(8, 4), "B 8", time_budget=budget).params == 36
    deadline = time.perf_counter() + budget + 3 * _guard.REFIRE + _guard.GRACE
    while time.perf_counter() < deadline:
        pass
    assert _guard._levels == {}


class SlowToUnwind(nn.Module):
    """Runs torch ops until the trace's own check raises TimeBudgetSpent, then spends
    ``pause`` s in a ``finally`` (longer than the watchdog's grace) while it unwinds."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.pause = pause

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            while True:
                x = self.lin(x)
        finally:
            time.sleep(self.pause)


def test_a_clean_budget_error_is_not_replaced_by_the_watchdog_while_it_unwinds() -> None:
    # the watchdog used to fire GRACE (0.2 s) after the budget even when the trace's own
    # check had already raised: the Interrupt landed in the finally (or in a gc callback,
    # printed as "Exception ignored") and the error became "code that does not call torch"
    assert 2 * _guard.GRACE < 0.6 < _guard.UNWIND
    with pytest.raises(TimeBudgetSpent) as err:
        sf.trace(SlowToUnwind(0.6), "B 8", time_budget=BUDGET)
    assert "ops recorded" in str(err.value)
    assert "does not call torch" not in str(err.value)


def test_a_forward_that_catches_the_budget_error_and_loops_is_still_stopped() -> None:
    class Catches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            try:
                while True:
                    x = self.lin(x)
            except TimeBudgetSpent:
                while True:
                    pass

    t = time.perf_counter()
    with pytest.raises(TimeBudgetSpent):
        sf.trace(Catches(), "B 8", time_budget=BUDGET)
    assert time.perf_counter() - t < BUDGET + _guard.UNWIND + MARGIN
