"""Speed of ``symflops.serving.generation`` on a Llama-3-70B config (dim 8192, 80 layers, 64
query heads, 8 KV heads, MLP 28672, vocab 128256), symbolic in the batch ``B``, the prompt
``N`` and the generated tokens ``G`` (figures printed, nothing asserted).

Target (issue 19): under a second. Baseline in the same run: one forward cost of the same
model on ``(B, N)``, so the ratio says what summing the decode steps adds.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_generation.py``.
"""

from __future__ import annotations

import statistics
import time

from sympy.core.cache import clear_cache

import symflops as sf
from symflops.cost import simplify_expr
from symflops.serving import generation
from symflops.symbols import B, N, symbol


def _model(sliding_window: int | None = None) -> sf.nn.Layer:
    return sf.presets.llama(dim=8192, heads=64, kv_heads=8, layers=80, vocab=128256,
                            hidden=28672, sliding_window=sliding_window)


def _deepseek_v2() -> sf.nn.Layer:
    return sf.presets.deepseek_v2(5120, 128, 60, 102400, 512, 1536, 64, 128, 160, 2, 6, 1536,
                                  1, 12288)


def _timed(fn: object) -> float:
    clear_cache()
    simplify_expr.cache_clear()
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    G = symbol("G")
    forward = [_timed(lambda: _model().cost((B, N)).flops) for _ in range(3)]
    gen = [_timed(lambda: generation(_model(), B, N, G).flops) for _ in range(3)]
    f, g = statistics.median(forward), statistics.median(gen)
    print(f"llama-70B forward cost (B, N), FLOPs: median {f * 1e3:.0f} ms of 3")
    print(f"llama-70B generation (B, N, G), FLOPs: median {g * 1e3:.0f} ms of 3 "
          f"(target < 1 s; {g / f:.1f}x the forward)")
    print(f"  FLOPs (exact) = {generation(_model(), B, N, G).flops}")
    window = [_timed(lambda: generation(_model(sliding_window=4096), B, N, G).flops)
              for _ in range(3)]
    print(f"llama-70B with a 4096-token sliding window, generation: median "
          f"{statistics.median(window) * 1e3:.0f} ms of 3 (the sum split where the cache fills)")
    ds = [_timed(lambda: generation(_deepseek_v2(), B, N, G).flops) for _ in range(3)]
    print(f"DeepSeek-V2 (MLA, 160 experts) generation: median "
          f"{statistics.median(ds) * 1e3:.0f} ms of 3")


if __name__ == "__main__":
    main()
