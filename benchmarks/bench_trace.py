"""Speed and memory of symflops.tracing beside torch's FlopCounterMode, in one process.

Run: ``python benchmarks/bench_trace.py`` (add ``--quick`` for one repetition).
Every figure is a ratio against a baseline measured in the same run:

1. symbolic trace vs FlopCounterMode on the same symbolic fake tensors (target <= 1.25x);
2. symbolic trace vs one concrete FlopCounterMode count (real CPU tensors; and on meta);
3. FLOPs at 100 resolutions 64..1024: one trace + 100 evaluations vs 100 FlopCounterMode
   counts on the meta device (target >= 20x faster);
4. a Llama-style 32-layer config (70B widths) on the meta device: time and peak memory
   (measured in a child process, ru_maxrss);
5. growth with depth: 1,000 vs 10,000 Conv+ReLU and Linear+ReLU blocks (``--quick``:
   300 vs 3,000), the ratio against linear growth, and conv vs linear.

Timings are the best of 3 (``--quick``: 1); the machine may be shared, so ratios of runs
made back to back are what to read. What made the trace fast (profiled with cProfile):
torch's fake kernels for ``hardtanh`` (ReLU6) and inference ``native_batch_norm`` run
Python reference decompositions full of symbolic arithmetic (4.6 of 7 s of a MobileNetV2
trace); shape rules (``symflops.tracing._shape_rules.SHAPE_RULES``) answer those ops, unary
pointwise ops and direct convolutions from the input's shape instead (guards kept); under no_grad
one fake tensor per symbolic output shape is reused (building symbolic strides costs
~10 ms per tensor); fake parameters are made with one ``empty_strided`` each instead of
``from_tensor``. Later (``benchmarks/profile_trace.py`` diffs a symbolic and a concrete
profile): rules for same-shaped binary ops (residual adds), ``cat`` (a DenseNet trace spent
12.8 of 17 s in torch's symbolic cat), ``sum``/``mean``, ``mm``/``addmm``/``bmm``; conv
output sizes memoised per input shape; new symbolic tensors made outside the fake op cache;
the cyclic garbage collector paused during a trace (full collections made deep traces
superlinear). What is left is torch's fake-tensor dispatch itself: the same recording
at concrete sizes is printed as the floor a fully custom shape propagation could reach.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.tracing import _torch_compat as C

ROOT = Path(__file__).resolve().parents[1]


def load(example: str) -> Any:
    spec = importlib.util.spec_from_file_location(example, ROOT / "examples" / f"{example}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def best(fn: Any, reps: int) -> float:
    times = []
    for _ in range(reps):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def fcm_symbolic(model: torch.nn.Module) -> Any:
    """FlopCounterMode on symbolic fake tensors (B, 3, H, W), as torch offers it today."""
    env = C.SymEnv()
    with env.mode, torch.no_grad():
        x = torch.empty(env.symint("B", 2), 3, env.symint("H", 224), env.symint("W", 224))
        with FlopCounterMode(display=False) as fc:
            model(x)
    return fc.get_total_flops()


def fcm_concrete(model: torch.nn.Module, size: int = 224, device: str = "cpu") -> int:
    x = torch.randn(1, 3, size, size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    return int(fc.get_total_flops())


def trace(model: torch.nn.Module) -> sf.Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(model, "B 3 H W", convention="torch")


def vision(name: str, factory: Any, reps: int) -> None:
    model = factory()
    trace(model)  # warm imports and caches once
    t_trace = best(lambda: trace(model), reps)

    def concrete_record() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sf.trace(model, (1, 3, 224, 224), convention="torch")

    t_rec = best(concrete_record, reps)
    t_sym = best(lambda: fcm_symbolic(model), reps)
    t_cpu = best(lambda: fcm_concrete(model), reps)
    with torch.device("meta"):
        meta = factory()
    t_meta = best(lambda: fcm_concrete(meta, device="meta"), reps)
    print(f"{name}: trace {t_trace:.2f} s | FlopCounterMode symbolic {t_sym:.2f} s "
          f"-> ratio {t_trace / t_sym:.2f}x (target <= 1.25x)")
    print(f"{name}: the same recording at concrete sizes (fake tensors, no symbols) "
          f"{t_rec:.2f} s: symbolic shapes cost {t_trace / t_rec:.1f}x that floor")
    print(f"{name}: FlopCounterMode concrete 224 CPU {t_cpu:.3f} s -> trace/concrete "
          f"{t_trace / t_cpu:.1f}x (aim <= 5x); on meta {t_meta:.3f} s -> "
          f"{t_trace / t_meta:.1f}x")
    # 100 resolutions 64..1024
    sizes = np.linspace(64, 1024, 100).astype(np.int64)

    def ours() -> np.ndarray:
        from symflops import evaluate

        evaluate._compiled.cache_clear()  # cold: the compile of the formula is counted
        c = trace(model)
        return c.evaluate(B=1, H=sizes, W=sizes)

    def theirs() -> list[int]:
        return [fcm_concrete(meta, int(s), device="meta") for s in sizes]

    t_ours = best(ours, reps)
    t_theirs = best(theirs, 1)
    assert ours().tolist() == theirs(), "symbolic and concrete counts disagree"
    print(f"{name}: 100 resolutions: trace + 100 evaluations {t_ours:.2f} s | 100 "
          f"FlopCounterMode counts on meta {t_theirs:.2f} s -> {t_theirs / t_ours:.1f}x "
          "faster (target >= 20x); counts equal (torch convention)")


_LLAMA = """
import resource, sys, time, importlib.util, warnings
sys.path.insert(0, {root!r})
import torch, symflops as sf
spec = importlib.util.spec_from_file_location("gpt", {path!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
with torch.device("meta"):
    m = mod.llama_70b_32()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    c = sf.trace(m, {{"input_ids": ("B", "N")}}, convention="torch")
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{{dt:.2f}} {{before / 1024:.0f}} {{peak / 1024:.0f}} {{c.params}} {{c.flops}}")
"""


def llama() -> None:
    code = _LLAMA.format(root=str(ROOT), path=str(ROOT / "examples" / "gpt.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    dt, before, peak, params = float(out[0]), out[1], out[2], out[3]
    flops = " ".join(out[4:])
    print(f"llama 70B widths x 32 layers on meta: trace {dt:.2f} s (target < 60 s); peak RSS "
          f"{peak} MB of the whole process ({before} MB before tracing; target < 2048 MB); "
          f"{params} params; FLOPs (torch) = {flops}")


def blocks(n: int, kind: str) -> float:
    """Seconds to trace ``n`` blocks of Conv2d(8, 8, 3)+ReLU on (B, 8, H, W), or of
    Linear(64, 64)+ReLU on (B, N, 64), each block an nn.Sequential."""
    from torch import nn

    if kind == "conv":
        model = nn.Sequential(*[nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
                                for _ in range(n)])
        spec = "B 8 H W"
    else:
        model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU())
                                for _ in range(n)])
        spec = "B N 64"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
        t = time.perf_counter()
        sf.trace(model, spec, time_budget=None)
        return time.perf_counter() - t


def depth(small: int = 1000, large: int = 10000) -> None:
    """Growth with depth: the time of ``large`` blocks over ``small`` ones should be about
    ``large / small`` (linear). A per-module scan for parameters of modules that never
    ran made assembly quadratic: 1,000 conv blocks spent 9.3 of 21 s there (cProfile)."""
    blocks(10, "conv")  # warm imports
    times = {(kind, n): blocks(n, kind) for kind in ("conv", "linear") for n in (small, large)}
    for kind in ("conv", "linear"):
        a, b = times[(kind, small)], times[(kind, large)]
        print(f"{kind} blocks: {small} in {a:.1f} s, {large} in {b:.1f} s -> ratio {b / a:.1f} "
              f"(linear growth: {large / small:.0f})")
    print(f"conv / linear at {large} blocks: "
          f"{times[('conv', large)] / times[('linear', large)]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["resnet50", "mobilenet_v2", "llama", "depth"])
    a = ap.parse_args()
    reps = 1 if a.quick else 3
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, symflops {sf.__version__}, {torch.get_num_threads()} "
          "threads")
    if a.only in (None, "resnet50"):
        vision("resnet50", load("resnet").resnet50, reps)
    if a.only in (None, "mobilenet_v2"):
        vision("mobilenet_v2", load("mobilenet").mobilenet_v2, reps)
    if a.only in (None, "llama"):
        llama()
    if a.only in (None, "depth"):
        depth(*((300, 3000) if a.quick else (1000, 10000)))


if __name__ == "__main__":
    main()
