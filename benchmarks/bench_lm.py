"""Speed of the language-model presets and of tracing a full-size MoE (figures printed,
nothing asserted).

Targets (issue 10):
- deriving the full Llama preset with every size a symbol and simplifying it: < 5 s
  (forward here; backward and memory come with mode="train");
- tracing Mixtral-8x7B's full config (transformers, meta device, symbolic B and N): < 30 s.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_lm.py [--only llama|mixtral]``.
"""

from __future__ import annotations

import argparse
import time

from sympy.core.cache import clear_cache

import symflops as sf
from symflops.cost import simplify_expr
from symflops.paper_counts import active_params
from symflops.symbols import B, L, N, V, dim, heads, kv_heads, symbol


def bench_llama() -> None:
    clear_cache()
    simplify_expr.cache_clear()
    F = symbol("F")
    start = time.perf_counter()
    cost = sf.presets.llama(dim, heads, kv_heads, L, V, F).cost((B, N)).simplify()
    flops, params = cost.flops, cost.params
    took = time.perf_counter() - start
    print(f"llama preset, every size a symbol, forward + simplify: {took:.2f} s (target < 5 s)")
    print(f"  params = {params}")
    print(f"  FLOPs (exact) = {flops}")


def bench_mixtral() -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.MixtralConfig(
        hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32,
        vocab_size=32000, intermediate_size=14336, num_local_experts=8, num_experts_per_tok=2)
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(config)
    start = time.perf_counter()
    cost = sf.trace(model, {"input_ids": ("B", "N")}, warn=False)
    took = time.perf_counter() - start
    preset = sf.presets.mixtral(4096, 32, 8, 32, 32000, 14336, 8, 2).cost((B, N))
    print(f"Mixtral-8x7B trace on meta (symbolic B, N): {took:.2f} s (target < 30 s)")
    print(f"  params traced {int(cost.params):,} = preset {int(preset.params):,}; "
          f"active (preset) {int(active_params(preset)):,}")
    print(f"  MACs traced = {cost.macs}; preset = {preset.macs}")
    print(f"  not counted: {dict(cost.report.unknown)}")


BENCHES = {"llama": bench_llama, "mixtral": bench_mixtral}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHES))
    args = parser.parse_args()
    for name, bench in BENCHES.items():
        if args.only in (None, name):
            bench()
