"""Where a symbolic trace spends the time the concrete recording does not: cProfile of
``sf.trace(model, "B 3 H W")`` and of the same recording at concrete sizes
``(1, 3, 224, 224)``, and the functions whose own time (or cumulative time) grew most.

Run: ``python benchmarks/profile_trace.py [MODEL] [--reps 3] [--cumulative] [--top 30]``
(MODEL: resnet50, mobilenet_v2, densenet_like, inception_like). Both profiles are taken
in one process, after one warm-up trace each; the difference is what symbolic shapes
cost beyond the floor ``bench_trace.py`` prints.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import symflops as sf  # noqa: E402
from benchmarks.bench_depth import branchy, inception  # noqa: E402
from benchmarks.bench_trace import load  # noqa: E402

MODELS: dict[str, Any] = {
    "resnet50": lambda: load("resnet").resnet50(),
    "mobilenet_v2": lambda: load("mobilenet").mobilenet_v2(),
    "densenet_like": branchy,
    "inception_like": inception,
}


def profile(model: torch.nn.Module, inputs: Any, reps: int) -> pstats.Stats:
    """cProfile of ``reps`` traces of ``model`` on ``inputs`` (after one warm-up)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf.trace(model, inputs, convention="torch")
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(reps):
            sf.trace(model, inputs, convention="torch")
        prof.disable()
    return pstats.Stats(prof)


def _by_function(stats: pstats.Stats, column: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for (file, line, fn), row in stats.stats.items():  # type: ignore[attr-defined]
        out[f"{file.rsplit('site-packages/', 1)[-1]}:{line}({fn})"] = row[column]
    return out


def difference(model: torch.nn.Module, reps: int = 3, cumulative: bool = False,
               top: int = 30) -> list[tuple[str, float, float]]:
    """The ``top`` functions by extra seconds per trace (symbolic minus concrete):
    ``(function, symbolic s, concrete s)``, own time or ``cumulative``."""
    column = 3 if cumulative else 2
    sym = _by_function(profile(model, "B 3 H W", reps), column)
    conc = _by_function(profile(model, (1, 3, 224, 224), reps), column)
    rows = [(k, sym.get(k, 0.0) / reps, conc.get(k, 0.0) / reps) for k in {*sym, *conc}]
    rows.sort(key=lambda r: r[2] - r[1])
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="resnet50", choices=sorted(MODELS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cumulative", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    model = MODELS[a.model]()
    rows = difference(model, a.reps, a.cumulative, a.top)
    what = "cumulative" if a.cumulative else "own"
    print(f"{a.model}: {what} seconds per trace (under cProfile), symbolic vs concrete")
    for name, s, c in rows:
        print(f"{s - c:+8.4f}  sym {s:7.4f}  conc {c:7.4f}  {name}")


if __name__ == "__main__":
    main()
