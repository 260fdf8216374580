"""mode="train" for the presets (sf.presets.gpt, llama, vit): the Megatron-LM FLOP
identities of Narayanan et al. 2021 and Korthikanti et al. 2022 (docs/papers.md) with
and without per-layer recomputation, and the preset equal to sf.trace(..., mode="train")
of the transformers model, kind by kind, every difference derived."""

from __future__ import annotations

import pytest
import sympy as sp

from symflops import presets
from symflops.symbols import B, L, N, V, dim, heads

# s = N, l = L, h = dim (the papers' names)
s, l, h = N, L, dim


def torch_flops(cost):
    return cost.with_convention("torch").flops


# Narayanan et al. 2021 (eq. 3, "Efficient Large-Scale Language Model Training on GPU
# Clusters Using Megatron-LM"): with full activation recomputation a GPT iteration is
# 96 B s l h^2 (1 + s/6h + V/16lh) FLOPs: per layer forward 24 B s h^2 (the four d x d
# matmuls' 8 B s h^2 and the MLP's 16 B s h^2) + 4 B s^2 h (Q K^T and A V), run 4 times
# (forward, recompute, 2x backward); the LM head 2 B s h V run 3 times (not recomputed).
# Without recomputation (Korthikanti et al. 2022, Sec. 5): 3 times, 72 B s l h^2 (1 +
# s/6h + V/12lh). The torch convention counts the matmuls only, as the papers do.
MEGATRON = {
    "full": 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h)),
    "none": 72 * B * s * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h)),
}


@pytest.mark.parametrize("recompute", list(MEGATRON))
def test_gpt_megatron_flops_identity(recompute):
    cost = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train", recompute=recompute)
    assert sp.expand(torch_flops(cost) - MEGATRON[recompute]) == 0


@pytest.mark.parametrize("recompute", list(MEGATRON))
def test_gpt_megatron_flops_gpt2_small(recompute):
    # GPT-2 small (h 768, l 12, V 50257) at s 1024, B 8: the identity at numbers
    sizes = {dim: 768, heads: 12, L: 12, V: 50257, N: 1024, B: 8}
    cost = presets.gpt(768, 12, 12, 50257, 1024).cost((8, 1024), mode="train",
                                                       recompute=recompute)
    assert torch_flops(cost) == MEGATRON[recompute].subs(sizes)


def test_full_recompute_checkpoints_each_block():
    # per-layer checkpointing: each of the L blocks keeps only its input, B N dim values
    # of 2 bytes (Korthikanti et al. 2022 Sec. 5: 2 s b h per layer), and the embedding
    # and the head are not recomputed: the head's forward matmul appears once per pass
    full = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train", recompute="full")
    none = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train")
    assert [c.name for c in full["h"]["block"].children][-1] == "recompute"
    assert "recompute" not in [c.name for c in full.children]
    block_saved = [x for x in full.memory.saved if x.where.startswith("h.")]
    assert sp.expand(sum(x.numel for x in block_saved) - L * B * N * dim) == 0
    # outside the blocks the two policies save the same
    assert {x for x in full.memory.saved if not x.where.startswith("h.")} == \
        {x for x in none.memory.saved if not x.where.startswith("h.")}
