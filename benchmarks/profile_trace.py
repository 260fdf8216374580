"""Where a symbolic trace spends the time the concrete recording does not: cProfile of
``sf.trace(model, "B 3 H W")`` and of the same recording at concrete sizes
``(1, 3, 224, 224)``, and the functions whose own time (or cumulative time) grew most.

Run: ``python benchmarks/profile_trace.py [MODEL] [--reps 3] [--cumulative] [--top 30]``
(MODEL: resnet50, mobilenet_v2, densenet_like, inception_like, or any model of
``bench_trace_speed.py``: gpt2, llama, vit_b_16, googlenet, ...). Both profiles are taken
in one process, after one warm-up trace each; the difference is what symbolic shapes
cost beyond the floor ``bench_trace.py`` prints.

cProfile can hang on the trace's watchdog, and its overhead inflates Python-heavy SymPy
code; the sampling profiler py-spy does neither. ``--bare`` runs the same traces without
cProfile, symbolic ones inside ``symbolic_traces`` and concrete ones inside
``concrete_traces`` (each after a ``gc.collect()``, as the benchmark), for::

    py-spy record -r 250 -f raw -o /tmp/p.txt -- python benchmarks/profile_trace.py gpt2 --bare
    python benchmarks/profile_trace.py --collapsed /tmp/p.txt [--top 60]

which prints, per function, its samples (inclusive) in the symbolic and the concrete
traces and their difference, largest first.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import pstats
import re
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


def _model_and_inputs(name: str) -> tuple[torch.nn.Module, Any, Any]:
    """The model, its symbolic inputs and the same at concrete sizes."""
    if name in MODELS:
        return MODELS[name](), "B 3 H W", (1, 3, 224, 224)
    from benchmarks import bench_trace_speed

    model, spec, concrete, _example = bench_trace_speed.MODELS[name]()
    return model, spec, concrete


def _traced(model: torch.nn.Module, inputs: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf.trace(model, inputs, convention="torch", warn=False)


def symbolic_traces(model: torch.nn.Module, inputs: Any, reps: int) -> None:
    """``reps`` traces on symbolic sizes (a frame py-spy's stacks are split by)."""
    for _ in range(reps):
        gc.collect()
        _traced(model, inputs)


def concrete_traces(model: torch.nn.Module, inputs: Any, reps: int) -> None:
    """``reps`` traces at concrete sizes (a frame py-spy's stacks are split by)."""
    for _ in range(reps):
        gc.collect()
        _traced(model, inputs)


def bare(name: str, reps: int) -> None:
    """The traces of ``--bare``: one warm-up each, then ``reps`` of each kind."""
    model, spec, concrete = _model_and_inputs(name)
    _traced(model, spec)
    _traced(model, concrete)
    symbolic_traces(model, spec, reps)
    concrete_traces(model, concrete, reps)


def collapsed(path: str, top: int) -> list[tuple[str, int, int]]:
    """``(function, symbolic samples, concrete samples)`` from a py-spy raw file of
    :func:`bare`, counting each function once per stack (inclusive), by the largest
    difference first."""
    frame = re.compile(r"(.*) \((.*):(\d+)\)")
    counts: dict[str, collections.Counter[str]] = {
        "symbolic_traces": collections.Counter(), "concrete_traces": collections.Counter()}
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            kind = next((k for k in counts if f"{k} (" in stack), None)
            if kind is None or not n.isdigit():
                continue
            names = set()
            for fr in stack.split(";"):
                m = frame.match(fr)
                names.add(f"{m.group(1)} ({m.group(2).rsplit('site-packages/', 1)[-1]})"
                          if m else fr)
            for name in names:
                counts[kind][name] += int(n)
    sym, conc = counts["symbolic_traces"], counts["concrete_traces"]
    rows = [(k, sym[k], conc[k]) for k in {*sym, *conc}]
    rows.sort(key=lambda r: r[2] - r[1])
    return rows[:top]


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
    ap.add_argument("model", nargs="?", default="resnet50")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cumulative", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--bare", action="store_true", help="run the traces for py-spy")
    ap.add_argument("--collapsed", metavar="RAW", help="summarize a py-spy raw file")
    a = ap.parse_args()
    if a.collapsed:
        for name, ns, nc in collapsed(a.collapsed, a.top):
            print(f"{ns - nc:+7d}  sym {ns:6d}  conc {nc:6d}  {name}")
        return
    if a.bare:
        bare(a.model, a.reps)
        return
    model, _spec, _concrete = _model_and_inputs(a.model)
    rows = difference(model, a.reps, a.cumulative, a.top)
    what = "cumulative" if a.cumulative else "own"
    print(f"{a.model}: {what} seconds per trace (under cProfile), symbolic vs concrete")
    for name, s, c in rows:
        print(f"{s - c:+8.4f}  sym {s:7.4f}  conc {c:7.4f}  {name}")


if __name__ == "__main__":
    main()
