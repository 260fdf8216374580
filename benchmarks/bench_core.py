"""Speed of the symbolic core (figures printed, nothing asserted).

Targets (issue 2):
- composing Repeat(TransformerBlock) with a symbolic depth L costs about what one block costs;
- composing an explicit Sequential of 1,000 conv/bn/relu layers and simplifying its total
  takes < 2 s, and 1,000 layers take at most 12x what 100 layers take;
- evaluate of a 50-layer network's flops (exact) over 10^6 points takes < 0.5 s.

Issue 12 (target 5) adds: the composition alone (no simplify) of 1,000 layers < 0.5 s, and
the compiled 10^6-point evaluation < 50 ms.

Run: ``python benchmarks/bench_core.py [--only evaluate]``. Every timing starts from cold
caches (symflops' and SymPy's), and is the best of ``REPEATS`` runs.

Evaluation is exact at every point (issue 13): int64 where a float majorant of every
intermediate proves it safe, Python ints for the other points only. Measured beside the
plain int64 run: the same points with one huge point among them (that point alone goes
through Python ints), and whole floats (taken as integers, so also exact).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from sympy.core.cache import clear_cache

import symflops as sf
from symflops.cost import simplify_expr
from symflops.evaluate import _compiled
from symflops.symbols import B, H, L, N, W, dim, heads

REPEATS = 5


def cold(fn: Callable[[], object]) -> float:
    """Best wall time of ``fn`` over REPEATS runs, each from cold caches."""
    best = float("inf")
    for _ in range(REPEATS):
        clear_cache()
        simplify_expr.cache_clear()
        _compiled.cache_clear()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def conv_stack(n_layers: int, stride_every: int = 33) -> sf.nn.Sequential:
    """conv/bn/relu triples; a conv in every ``stride_every`` has stride 2 (floors appear)."""
    layers: list[sf.nn.Layer] = []
    channels = 3
    for i in range(n_layers // 3):
        stride = 2 if i % stride_every == stride_every // 2 else 1
        layers += [sf.nn.Conv2d(channels, 32, 3, stride=stride, padding=1),
                   sf.nn.BatchNorm2d(32), sf.nn.ReLU()]
        channels = 32
    return sf.nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["evaluate"], help="run one section")
    if parser.parse_args().only == "evaluate":
        evaluate_section()
        return
    composition_sections()
    evaluate_section()


def composition_sections() -> None:
    # 1. Repeat with symbolic L vs one block
    def one_block() -> object:
        return sf.nn.TransformerBlock(dim, heads, mlp_ratio=4).cost((B, N, dim)).simplify().flops

    def repeated() -> object:
        return sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads, mlp_ratio=4), L).cost(
            (B, N, dim)).simplify().flops

    def compose_block() -> object:
        return sf.nn.TransformerBlock(dim, heads, mlp_ratio=4).cost((B, N, dim)).flops

    def compose_repeat() -> object:
        return sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads, mlp_ratio=4), L).cost(
            (B, N, dim)).flops

    c_block, c_repeat = cold(compose_block), cold(compose_repeat)
    print(f"TransformerBlock cost (FLOPs exact):                   {c_block * 1e3:8.1f} ms")
    print(f"Repeat(TransformerBlock, L) cost (exact):              {c_repeat * 1e3:8.1f} ms "
          f"({c_repeat / c_block:.2f}x one block; target ~1x)")
    t_block, t_repeat = cold(one_block), cold(repeated)
    print(f"TransformerBlock cost + simplify (FLOPs exact):        {t_block * 1e3:8.1f} ms")
    print(f"Repeat(TransformerBlock, L) cost + simplify (exact):   {t_repeat * 1e3:8.1f} ms "
          f"({t_repeat / t_block:.2f}x one block; target ~1x)")

    # 2. explicit Sequential of 100 and 1,000 layers: compose and simplify the total
    times = {}
    for n in (102, 1002):
        net = conv_stack(n)

        def compose(net: sf.nn.Sequential = net) -> object:
            return net.cost((B, 3, H, W)).simplify().flops

        def compose_only(net: sf.nn.Sequential = net) -> object:
            return net.cost((B, 3, H, W)).flops

        times[n] = cold(compose)
        print(f"Sequential of {n:5d} conv/bn/relu layers, cost + simplify (exact): "
              f"{times[n]:7.3f} s")
        print(f"Sequential of {n:5d} conv/bn/relu layers, cost only (exact total): "
              f"{cold(compose_only):7.3f} s (issue 12: 1,000 layers < 0.5 s)")
    ratio = times[1002] / times[102]
    print(f"  1,000 / 100 layers: {ratio:.1f}x (target <= 12x); 1,000 layers target < 2 s")
    total = conv_stack(1002).cost((B, 3, H, W)).simplify().flops
    print(f"  simplified total FLOPs (exact), {len(str(total))} characters: "
          f"{str(total)[:100]}...")



def evaluate_section() -> None:
    # 3. evaluate a 50-layer network over 10^6 points
    net50 = sf.nn.Sequential(*list(conv_stack(51, stride_every=4).layers.values())[:50])
    strided = sum(1 for m in net50.layers.values() if getattr(m, "stride", (1,))[0] != 1)
    print(f"50-layer network: {strided} stride-2 convs")
    cost50 = net50.cost((B, 3, H, W))
    rng = np.random.default_rng(0)
    hs, ws = rng.integers(16, 2048, 10**6), rng.integers(16, 2048, 10**6)
    huge = hs.copy()
    huge[12345] = 2**35  # its FLOPs (< 3.2e18) fit int64; the majorant of an intermediate may not
    warm: dict[str, float] = {}
    for label, kwargs in (("int64", {"B": 1, "H": hs, "W": ws}),
                          ("int64, one huge point", {"B": 1, "H": huge, "W": ws}),
                          ("whole floats", {"B": 1.0, "H": hs.astype(float),
                                            "W": ws.astype(float)})):
        def run(kwargs: dict[str, object] = kwargs) -> object:
            return cost50.evaluate("flops", **kwargs)

        t_cold = cold(run)
        warm[label] = min(_timed(run) for _ in range(REPEATS))
        print(f"evaluate 50-layer FLOPs (exact) at 10^6 points, {label}: "
              f"{t_cold:.3f} s incl. compile, {warm[label]:.3f} s compiled "
              f"({warm[label] / warm['int64']:.2f}x int64; target < 0.5 s, compiled < 50 ms)")
    got = cost50.evaluate("flops", B=1, H=huge[12340:12350], W=ws[12340:12350])
    want = [int(cost50.subs(B=1, H=int(h), W=int(w)).flops)
            for h, w in zip(huge[12340:12350], ws[12340:12350], strict=True)]
    assert got.tolist() == want, "evaluate must equal subs"


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
