"""Stress the time-budget watchdog (symflops/tracing/_guard.py): guarded calls back to back
with tiny budgets, the watchdog's grace at 0, its re-fire every millisecond and the GIL
handed over every 10 us (so it fires at every point it can), and garbage with weakref
callbacks and a gc callback where an interrupt may land and be swallowed ("Exception
ignored"). After each call, in the caller's own code, it checks that no interrupt arrives,
that the call left no level armed and no shield up, and that the guard's lock is free.

Counted as failures: an ``Interrupt`` escaping a call (ESCAPED), one landing after the call
returned (LATE), a level or shield left behind (LEFT), the lock left taken (LOCK, the run
stops: every later call would hang), and a hang (the run is stopped after its time plus
15 s, with the threads' stacks). Swallowed interrupts are counted, not failures (the
watchdog fires again).

    PYTHONPATH=$PWD python benchmarks/check_guard_races.py            # 5 s
    PYTHONPATH=$PWD python benchmarks/check_guard_races.py --seconds 30

Measured on the 2-core machine beside other work, 6 runs of 5 s each way: before the fix
of the guard's lock and leave (branch h30w, ee42f3e) every run failed, 27 to 59 failures
in 260 to 530 calls (interrupts escaping calls, arriving after them, levels left armed);
with the GIL switch at its default 5 ms instead, 3 of 6 runs hung (the lock taken for
good). After the fix: 0 failures in every run (520 to 550 calls each). Exit status 1 on any
failure.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import random
import sys
import time
import weakref
from collections import Counter
from typing import Any

from symflops.errors import TimeBudgetSpent
from symflops.tracing import _guard

stats: Counter[str] = Counter()


def _unraisable(u: Any) -> None:
    if isinstance(u.exc_value, _guard.Interrupt):
        stats["swallowed (Exception ignored)"] += 1
    else:
        sys.__unraisablehook__(u)


class _Node:
    pass


def churn() -> None:
    """Cycles and weakref callbacks: places an interrupt can land and be swallowed."""
    for _ in range(50):
        a, b = _Node(), _Node()
        a.b, b.a = b, a  # type: ignore[attr-defined]
        a.ref = weakref.ref(b, lambda r: None)  # type: ignore[attr-defined]


def spin_until(t: float) -> None:
    n = 0
    while time.perf_counter() < t:
        n += 1
        if n % 200 == 0:
            churn()


@_guard.guarded
def spin(time_budget: float | None = 300) -> str:
    while True:
        churn()


@_guard.guarded
def for_a_while(seconds: float, time_budget: float | None = 300) -> str:
    try:
        spin_until(time.perf_counter() + seconds)
    except BaseException:  # noqa: BLE001  (user code that swallows: the guard re-fires)
        spin_until(time.perf_counter() + seconds)
    return "done"


@_guard.guarded
def outer(inner_seconds: float, time_budget: float | None = 300) -> str:
    """Spends about its budget, then (as trace calls its fit fallback) a nested guarded
    call with a budget of its own."""
    assert time_budget is not None
    spin_until(time.perf_counter() + time_budget * random.random() * 1.5)
    try:
        return for_a_while(inner_seconds, time_budget=inner_seconds * 4 + 0.05)
    except TimeBudgetSpent:
        return "inner spent"


def after(label: str) -> bool:
    """The caller's code after the call: False when the lock was left taken."""
    try:
        spin_until(time.perf_counter() + 0.002)
        churn()
        gc.collect(0)
    except _guard.Interrupt:
        stats[f"LATE interrupt after {label}"] += 1
    if _guard._levels:
        stats[f"LEFT levels after {label}"] += 1
        _guard._levels.clear()
    if _guard._shielded:
        stats[f"LEFT shield after {label}"] += 1
        _guard._shielded.clear()
    if not _guard._mutex.acquire(timeout=1):
        stats[f"LOCK left taken after {label}"] += 1
        return False
    _guard._mutex.release()
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    random.seed(args.seed)
    _guard.GRACE, _guard.REFIRE = 0.0, 0.001
    sys.setswitchinterval(1e-5)
    sys.unraisablehook = _unraisable
    gc.callbacks.append(lambda phase, info: None)
    faulthandler.dump_traceback_later(args.seconds + 15, exit=True)
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        kind = random.choice(["spin", "for_a_while", "outer"])
        b = random.choice([0.0005, 0.001, 0.002, 0.005])
        try:
            if kind == "spin":
                r = spin(time_budget=b)
            elif kind == "for_a_while":
                r = for_a_while(b * random.uniform(0.5, 1.5), time_budget=b)
            else:
                r = outer(b * random.uniform(0.5, 2), time_budget=b)
            stats[f"{kind} returned {r}"] += 1
        except TimeBudgetSpent:
            stats[f"{kind} TimeBudgetSpent"] += 1
        except _guard.Interrupt:
            stats[f"ESCAPED Interrupt from {kind}"] += 1
        if not after(kind):
            break
    faulthandler.cancel_dump_traceback_later()
    for k, v in sorted(stats.items()):
        print(f"{v:7d}  {k}")
    bad = sum(v for k, v in stats.items() if k.split()[0] in ("LATE", "LEFT", "ESCAPED", "LOCK"))
    print("failures:", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
