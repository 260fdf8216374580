"""Branchy, concatenating networks and deep stacks: where a trace's time grows.

Run: ``python benchmarks/bench_depth.py [--quick]``. Prints, each a ratio of the same run:

1. a DenseNet-like and an Inception-like network in plain torch (``branchy()``,
   ``inception()``; torchvision's own are checked in ``check_torchvision.py``): the
   symbolic trace against FlopCounterMode counting them once on meta, and against the same
   recording at concrete sizes (the floor);
2. the time per op of 10,000 Conv+ReLU blocks against 100 (target: within 1.5x: linear
   growth), and the same for Linear+ReLU (``--quick``: 3,000 against 100).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symflops as sf  # noqa: E402


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, 4 * growth, 1),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(),
                                  nn.Conv2d(4 * growth, growth, 3, padding=1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.body(torch.cat(feats, 1))
        return out


class _DenseBlock(nn.Module):
    def __init__(self, c_in: int, layers: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_DenseLayer(c_in + i * growth, growth)
                                    for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


def branchy(blocks: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32) -> nn.Module:
    """A DenseNet-121-shaped network (every layer concatenates all earlier features)."""
    c = 2 * growth
    mods: list[nn.Module] = [nn.Conv2d(3, c, 7, 2, 3), nn.BatchNorm2d(c), nn.ReLU(),
                             nn.MaxPool2d(3, 2, 1)]
    for i, n in enumerate(blocks):
        mods.append(_DenseBlock(c, n, growth))
        c += n * growth
        if i < len(blocks) - 1:
            mods += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1), nn.AvgPool2d(2)]
            c //= 2
    mods += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
             nn.Linear(c, 1000)]
    return nn.Sequential(*mods).eval()


class _Inception(nn.Module):
    def __init__(self, c_in: int, c1: int, c3: tuple[int, int], c5: tuple[int, int],
                 pool: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(c_in, c1, 1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(c_in, c3[0], 1), nn.ReLU(),
                                nn.Conv2d(c3[0], c3[1], 3, padding=1), nn.ReLU())
        self.b5 = nn.Sequential(nn.Conv2d(c_in, c5[0], 1), nn.ReLU(),
                                nn.Conv2d(c5[0], c5[1], 5, padding=2), nn.ReLU())
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, pool, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def inception() -> nn.Module:
    """A GoogLeNet-shaped network: nine four-branch blocks concatenated."""
    cfg = [(192, 64, (96, 128), (16, 32), 32), (256, 128, (128, 192), (32, 96), 64),
           (480, 192, (96, 208), (16, 48), 64), (512, 160, (112, 224), (24, 64), 64),
           (512, 128, (128, 256), (24, 64), 64), (512, 112, (144, 288), (32, 64), 64),
           (528, 256, (160, 320), (32, 128), 128), (832, 256, (160, 320), (32, 128), 128),
           (832, 384, (192, 384), (48, 128), 128)]
    mods: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                             nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for i, c in enumerate(cfg):
        mods.append(_Inception(*c))
        if i in (1, 6):
            mods.append(nn.MaxPool2d(3, 2, 1))
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000)]
    return nn.Sequential(*mods).eval()


def seconds(fn: Any, reps: int) -> float:
    """The median of ``reps`` timings of ``fn()`` (:func:`peers.median_seconds`)."""
    from peers import median_seconds

    return median_seconds(fn, reps)[0]


def trace(model: nn.Module, inputs: Any) -> sf.Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(model, inputs, convention="torch", time_budget=None)


def fcm_meta(model: nn.Module, size: int = 224) -> int:
    """FlopCounterMode counting ``model`` (on meta) once at ``size``."""
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.empty(1, 3, size, size, device="meta"))
    return int(fc.get_total_flops())


def branchy_ratios(reps: int = 5) -> dict[str, tuple[float, float, float]]:
    """Per network: (symbolic trace s, concrete recording s, FlopCounterMode on meta s),
    medians of ``reps``, with the traced count checked against FlopCounterMode's at 224."""
    out = {}
    for name, make in (("densenet-like", branchy), ("inception-like", inception)):
        model = make()
        with torch.device("meta"):
            meta = make()
        cost = trace(model, "B 3 H W")
        assert int(cost.evaluate(B=1, H=224, W=224)) == fcm_meta(meta), name
        t_sym = seconds(lambda m=model: trace(m, "B 3 H W"), reps)
        t_conc = seconds(lambda m=model: trace(m, (1, 3, 224, 224)), reps)
        t_fcm = seconds(lambda m=meta: fcm_meta(m), reps)
        out[name] = (t_sym, t_conc, t_fcm)
    return out


def stack(n: int, kind: str) -> nn.Module:
    """``n`` blocks of Conv2d(8, 8, 3)+ReLU, or of Linear(64, 64)+ReLU."""
    if kind == "conv":
        return nn.Sequential(*[nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
                               for _ in range(n)])
    return nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU()) for _ in range(n)])


def per_op(n: int, kind: str) -> float:
    """Seconds per block to trace ``stack(n, kind)`` symbolically."""
    model = stack(n, kind)
    spec = "B 8 H W" if kind == "conv" else "B N 64"
    gc.collect()
    t = time.perf_counter()
    trace(model, spec)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["branchy", "depth"])
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.only in (None, "branchy"):
        for name, (s, c, f) in branchy_ratios(3 if a.quick else 5).items():
            print(f"{name}: symbolic trace {s:.2f} s, concrete recording {c:.2f} s "
                  f"({s / c:.2f}x the floor), FlopCounterMode once on meta {f:.3f} s "
                  f"({s / f:.1f}x)")
    if a.only in (None, "depth"):
        per_op(10, "conv")  # warm imports
        large = 3000 if a.quick else 10000
        for kind in ("conv", "linear"):
            small_t, large_t = per_op(100, kind), per_op(large, kind)
            print(f"{kind}+ReLU: {small_t * 1e3:.2f} ms per block at 100 blocks, "
                  f"{large_t * 1e3:.2f} ms at {large}: {large_t / small_t:.2f}x "
                  "(target <= 1.5x)")


if __name__ == "__main__":
    main()
