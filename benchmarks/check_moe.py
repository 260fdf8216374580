"""Where FlopCounterMode misses a mixture of experts: transformers 5.x runs Mixtral's and
Qwen2-MoE's experts as ``aten._grouped_mm``, which FlopCounterMode has no formula for, so
its count of a real forward leaves the experts out; symflops counts them (``torch``
convention: 2 per multiply-accumulate) and equals the hand count of ``sf.presets.mixtral``.

Run (transformers >= 5 beside torch): ``PYTHONPATH=$PWD python benchmarks/check_moe.py``.
Prints the three counts for a 2-layer Mixtral (dim 64, 4 heads, 2 kv heads, vocabulary
1000, expert hidden 128, 8 experts, top 2) at B = 1, N = 16, and the experts' share.
Exit status 1 if symflops and the hand count disagree.
"""

from __future__ import annotations

import sys


def main() -> int:
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf
    from symflops.symbols import B, N

    transformers.logging.set_verbosity_error()
    sizes = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
             "num_hidden_layers": 2, "vocab_size": 1000, "intermediate_size": 128,
             "num_local_experts": 8, "num_experts_per_tok": 2}
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(
        transformers.MixtralConfig(max_position_embeddings=64, **sizes)).eval()
    ids = torch.randint(0, 1000, (1, 16))
    counts = {}
    for attention in ("sdpa", "eager"):
        model.config._attn_implementation = attention
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(input_ids=ids)
        counts[attention] = counter.get_total_flops()
    model.config._attn_implementation = "sdpa"
    traced = sf.trace(model, {"input_ids": ("B", "N")}, convention="torch", warn=False)
    mine = int(traced.subs(B=1, N=16).flops)
    hand = int(sf.presets.mixtral(64, 4, 2, 2, 1000, 128, 8, 2).cost((B, N))
        .with_convention("torch").subs(B=1, N=16).flops)
    # the experts: 16 tokens x top 2 = 32 routed rows, each through 3 products of
    # 64 x 128 (gate, up, down), 2 FLOPs per multiply-accumulate, 2 layers
    experts = 2 * 32 * 3 * 64 * 128 * 2
    # attention's two products, 4 heads of width 16 over 16 x 16 pairs, 2 layers
    scores = 2 * 2 * 4 * 16 * 16 * 16 * 2
    print(f"2-layer Mixtral, B=1, N=16 (torch convention, FLOPs):\n"
          f"  symflops trace      {mine:>12,}\n"
          f"  hand count (preset) {hand:>12,}\n"
          f"  the experts' share  {experts:>12,}\n"
          f"  the attention's     {scores:>12,}")
    for attention, count in counts.items():
        print(f"  FlopCounterMode, {attention + ' attention:':<17}{count:>12,}  (misses "
              f"{mine - count:,})")
    print(f"  unknown ops in the trace: {dict(traced.report.unknown) or 'none'}")
    return 0 if mine == hand else 1


if __name__ == "__main__":
    sys.exit(main())
