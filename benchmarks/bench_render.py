"""Rendering speed: a 200-layer model to LaTeX and Markdown in under 1 s.

Run: ``python benchmarks/bench_render.py`` (``--quick`` skips the traced models).

Models: a 200-leaf ``sf.nn`` CNN with symbolic B, H, W (strided stages, so the
expressions carry nested floors), and, when torch is installed, a traced ResNet-50
(examples/resnet.py, 174 leaf ops) and a traced 200-layer ``torch.nn.Sequential``.
Each render is timed cold (the render caches and SymPy's cache cleared first, as in a
fresh session) and warm, symbolic and with ``at=``, in CPU seconds of this process (other
jobs on the machine inflate wall-clock time; it is printed too). The baseline in the
same run is building the Cost itself (``net.cost(...)`` or ``sf.trace``): the ratio says
what rendering adds on top.
Exit status 1 if a cold symbolic render takes 1 s or more.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sympy.core.cache import clear_cache

import symflops as sf
from symflops.rendering import render
from symflops.rendering._environment import clear_caches as clear_render_caches
from symflops.symbols import B, H, W

TARGET_S = 1.0
ROOT = Path(__file__).resolve().parent.parent


def clear_caches() -> None:
    """Forget everything render (and SymPy) memoises, so the next render is a first one."""
    clear_render_caches()
    clear_cache()


def fresh(cost: sf.Cost) -> sf.Cost:
    """The same tree without the totals a Cost memoises once computed."""
    return cost.with_convention(cost.convention)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process (robust when other jobs share the machine) and the
    result; wall-clock seconds are printed beside it by :func:`bench`."""
    t = time.process_time()
    w = time.perf_counter()
    out = fn()
    _WALL.append(time.perf_counter() - w)
    return time.process_time() - t, out


_WALL: list[float] = []


def cnn_200_leaves() -> tuple[float, sf.Cost]:
    def build() -> sf.Cost:
        blocks = {}
        cin = 3
        for stage in range(4):
            width = 32 * 2**stage
            for block in range(12 if stage < 3 else 14):
                stride = 2 if block == 0 and stage > 0 else 1
                blocks[f"s{stage}b{block}"] = sf.nn.Sequential({
                    "conv": sf.nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False),
                    "bn": sf.nn.BatchNorm2d(width), "relu": sf.nn.ReLU(),
                    "drop": sf.nn.Dropout()})
                cin = width
        return sf.nn.Sequential(blocks).cost((B, 3, H, W))

    t, cost = timed(build)
    assert sum(1 for _ in cost.leaves()) == 200
    return t, cost


def traced_models() -> list[tuple[str, float, sf.Cost]]:
    try:
        import torch
    except ImportError:  # pragma: no cover
        print("torch not installed: traced models skipped")
        return []
    sys.path.insert(0, str(ROOT / "examples"))
    import resnet  # type: ignore[import-not-found]

    out = []
    model = resnet.resnet50().eval()
    t, cost = timed(lambda: sf.trace(model, "B 3 H W", hints={"H": 224, "W": 224},
                                     warn=False))
    out.append(("traced resnet50", t, cost))
    seq = torch.nn.Sequential(*[
        torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
                            torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1)) for _ in range(50)]
    ).eval()
    t, cost = timed(lambda: sf.trace(seq, "B 16 H W", warn=False))
    out.append(("traced Sequential(200 layers)", t, cost))
    return out


def bench(name: str, build_s: float, cost: sf.Cost) -> bool:
    leaves = sum(1 for _ in cost.leaves())
    nodes = sum(1 for _ in cost.walk())
    print(f"\n{name}: {leaves} leaves, {nodes} nodes; building the Cost took {build_s:.3f} s")
    ok = True
    at = {s.name: 224 if s.name in ("H", "W") else 1 for s in cost.free_symbols}
    for fmt in ("latex", "markdown"):
        clear_caches()
        c = fresh(cost)
        cold, text = timed(lambda fmt=fmt, c=c: render(c, fmt))
        warm, _ = timed(lambda fmt=fmt, c=c: render(c, fmt))
        clear_caches()
        c = fresh(cost)
        cold_at, _ = timed(lambda fmt=fmt, c=c: render(c, fmt, at=at))
        cold_wall = _WALL[-3]
        ok &= cold < TARGET_S
        print(f"  {fmt:8s} cold {cold:.3f} s cpu ({cold_wall:.3f} s wall, {cold / build_s:.2f}x "
              f"build)  warm {warm:.3f} s  cold at= {cold_at:.3f} s  [{len(text):,} chars]"
              f"  {'ok' if cold < TARGET_S else 'OVER'} (target < {TARGET_S:.0f} s cpu)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="skip the traced models")
    args = parser.parse_args()
    render(sf.nn.Linear(4, 4).cost(("B", 4)), "latex")  # import jinja2 etc. once
    t, cost = cnn_200_leaves()
    ok = bench("sf.nn CNN (200 leaves)", t, cost)
    if not args.quick:
        for name, t, cost in traced_models():
            ok &= bench(name, t, cost)
    print("\nall under target" if ok else "\nSOME RENDERS OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
