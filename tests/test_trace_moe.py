"""Mixture of experts in the tracer (aten._grouped_mm, topk: transformers 5.x Mixtral and
Qwen2-MoE trace on the meta device in float32), sf.nn.MoE and sf.presets.mixtral against
those traces and the published Mixtral-8x7B counts, the views (active, non-embedding,
per token), and sf.trace(skip_masked=True) for causal attention."""

from __future__ import annotations

import copy
import functools
from fractions import Fraction

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import symflops as sf  # noqa: E402
from symflops.formulas.moe import topk_work  # noqa: E402
from symflops.formulas.sorting import merge_sort_compares  # noqa: E402
from symflops.paper_counts import active_params, non_embedding_params, per_token  # noqa: E402
from symflops.symbols import B, N, S, T, symbol  # noqa: E402

try:
    from tests.test_model_safety import assert_same, deep_snapshot
except ImportError:  # run from tests/
    from test_model_safety import assert_same, deep_snapshot  # type: ignore[no-redef]

transformers.logging.set_verbosity_error()
torch_flops = pytest.importorskip("torch.utils.flop_counter")


# --------------------------------------------------------------------- aten._grouped_mm
class Grouped(torch.nn.Module):
    """``_grouped_mm`` of the input rows with a ``(E, K, N)`` weight (the MoE experts'
    form), in float32: torch's own fake kernel refuses it."""

    def __init__(self, e, k, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(e, k, n))

    def forward(self, x):
        offs = torch.full((self.weight.shape[0],), x.shape[0], dtype=torch.int32)
        return torch._grouped_mm(x, self.weight, offs=offs)


def test_grouped_mm_traces_in_float32():
    model = Grouped(4, 8, 16)
    before = copy.deepcopy(model.state_dict())
    c = sf.trace(model, "S 8", warn=False)
    # S rows, each times its expert's 8 x 16 matrix: 16 S dot products of length 8
    assert dict(c.work) == {"matmul_mul": 128 * S, "matmul_add": 112 * S}
    assert c.params == 4 * 8 * 16 and c.output_shape == (S, 16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("sizes", [(2, 3, 1), (0, 5, 1), (4, 0, 2)], ids=str)
def test_grouped_mm_count_is_the_per_group_products(sizes):
    # the real bf16 kernel on the CPU: its output is a product per group of rows, and
    # FlopCounterMode on those per-group mm's counts 2 * S * K * N whatever the split
    k, n = 8, 8
    rows = sum(sizes)
    x = torch.randn(rows, k).to(torch.bfloat16)
    w = torch.randn(len(sizes), k, n).to(torch.bfloat16)
    offs = torch.tensor(sizes).cumsum(0).to(torch.int32)
    got = torch._grouped_mm(x, w, offs=offs)
    start = 0
    with torch_flops.FlopCounterMode(display=False) as fc:
        for g, size in enumerate(sizes):
            ref = x[start:start + size] @ w[g]
            assert torch.allclose(got[start:start + size].float(), ref.float(), atol=1e-2)
            start += size
    c = sf.trace(Grouped(len(sizes), k, n), "S 8", convention="torch", warn=False)
    assert c.subs(S=rows).flops == fc.get_total_flops() == 2 * rows * k * n


def test_topk_count():
    # k successive maxima over E, E-1, ...: (E-1) + (E-2) = 13 compares for E=8, k=2;
    # a brute-force selection does exactly that many
    compares, left = 0, list(range(8))
    for _ in range(2):
        compares += len(left) - 1
        left.pop()
    assert topk_work(1, 8, 2) == {"elementwise": compares}

    class Top(torch.nn.Module):
        def forward(self, x):
            return torch.topk(x, 2, dim=-1).values

    assert sf.trace(Top(), "T 8", warn=False).flops == 13 * T


# --------------------------------------------------------------------- Mixtral
def mixtral_config(**sizes):
    return transformers.MixtralConfig(max_position_embeddings=256, **sizes)


MIXTRAL_SMALL = [(64, 4, 2, 100, 96, 4, 2), (48, 3, 3, 50, 40, 3, 1)]


@functools.cache
def traced_mixtral(d, h, kv, vocab, hidden, e, k):
    """A one-layer Mixtral on the meta device and its trace (traced once per module)."""
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(mixtral_config(
            hidden_size=d, num_attention_heads=h, num_key_value_heads=kv, num_hidden_layers=1,
            vocab_size=vocab, intermediate_size=hidden, num_local_experts=e,
            num_experts_per_tok=k))
    return model, sf.trace(model, {"input_ids": ("B", "N")}, warn=False)


@pytest.mark.parametrize("d,h,kv,vocab,hidden,e,k", MIXTRAL_SMALL,
                         ids=["E4-top2-gqa", "E3-top1"])
def test_mixtral_equals_trace(d, h, kv, vocab, hidden, e, k):
    model, trace = traced_mixtral(d, h, kv, vocab, hidden, e, k)
    preset = sf.presets.mixtral(d, h, kv, 1, vocab, hidden, e, k).cost((B, N))
    assert trace.params == preset.params == sum(p.numel() for p in model.parameters())
    # As for llama (test_presets_lm): 3 RMSNorms traced as elementwise (4 d + 2 per token
    # each), SDPA's math path scaling q and k (2 d per token), the positions (N adds).
    # transformers' grouped experts also compute perm // k for the T k routed copies
    # (T = B N integer divides) and the expert offsets as a cumsum over E counts; they sort
    # the T k expert ids (merge sort's worst case, W(T k) compares) and histogram them
    # (5 per id): the exact convention counts them, torch does not.
    norms = 3 * B * N
    diff = {"norm_stats": -norms * (3 * d + 2), "norm_affine": -norms * d,
            "elementwise": norms * (4 * d + 2) + 2 * d * B * N + N + k * B * N + e
            + merge_sort_compares(k * B * N) + 5 * k * B * N}
    for kind in set(trace.work) | set(preset.work):
        assert sp.expand(trace.work.get(kind, 0) - preset.work.get(kind, 0)) == \
            sp.expand(diff.get(kind, 0)), kind
    assert sp.expand(trace.with_convention("torch").flops
                     - preset.with_convention("torch").flops) == 0
    assert not trace.report.unknown


def test_mixtral_8x7b_params_total_and_active():
    # Mixtral-8x7B (Jiang et al. 2024, "Mixtral of Experts"; HF mistralai/Mixtral-8x7B-v0.1
    # config): dim 4096, 32 heads, 8 kv heads, 32 layers, V 32000, F 14336, E 8, top 2.
    # Per layer: attention 4096*6144 + 4096^2 = 41,943,040; router 8*4096 = 32,768;
    # experts 8 * 3*4096*14336 = 1,409,286,144; norms 8,192: 1,451,270,144; 32 layers +
    # embed and head 2*32000*4096 = 262,144,000 + final norm 4,096 = 46,702,792,704.
    # Active: 2 experts instead of 8 per layer: 41,943,040 + 32,768 + 352,321,536 + 8,192
    # = 394,305,536; * 32 + 262,148,096 = 12,879,925,248 (the paper's "13B active", Mistral
    # AI's announcement "12.9B").
    c = sf.presets.mixtral(4096, 32, 8, 32, 32000, 14336, 8, 2).cost((B, N))
    assert c.params == 46_702_792_704
    assert active_params(c) == 12_879_925_248
    E, k, F, dim, L, V, kv, heads = (symbol(n) for n in
                                     ("E", "k", "F", "dim", "L", "V", "kv_heads", "heads"))
    general = sf.presets.mixtral(dim, heads, kv, L, V, F, E, k).cost((B, N))
    at = {dim: 4096, heads: 32, kv: 8, L: 32, V: 32000, F: 14336, E: 8, k: 2}
    assert active_params(general).subs(at) == 12_879_925_248
    # active = total - L (E - k) 3 dim F, symbolically
    assert sp.expand(general.params - active_params(general) - L * (E - k) * 3 * dim * F) == 0
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(mixtral_config(
            hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
            num_hidden_layers=32, vocab_size=32000, intermediate_size=14336,
            num_local_experts=8, num_experts_per_tok=2))
    assert sum(p.numel() for p in model.parameters()) == 46_702_792_704


def test_views():
    c = sf.presets.gpt(768, 12, 12, 50257, 1024).cost((B, N))
    # Kaplan et al. 2020 drop the token (V d) and position (n_ctx d) tables:
    # 124,439,808 - 38,597,376 - 786,432
    assert non_embedding_params(c) == 85_056_000
    assert active_params(c) == c.params  # dense: every parameter is active
    # per token, macs: L (12 d^2 + 2 N d) + V d (the tied head's product)
    assert sp.expand(per_token(c, "macs") - (12 * (12 * 768**2 + 2 * N * 768) + 50257 * 768)) == 0
    with pytest.raises(sf.SymflopsError, match="not in B and N"):
        per_token(sf.nn.Linear(4, 4).cost(("M", 4)))
    assert per_token(sf.nn.Linear(4, 4).cost(("M", 4)), "macs", tokens=symbol("M")) == 16


def test_traced_moe_has_no_active_view():
    with pytest.raises(sf.SymflopsError, match="does not say which weights"):
        active_params(traced_mixtral(*MIXTRAL_SMALL[0])[1])


def test_mixtral_trace_leaves_model_and_rng_untouched():
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(mixtral_config(
        hidden_size=32, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=1,
        vocab_size=20, intermediate_size=16, num_local_experts=3, num_experts_per_tok=2))
    before = deep_snapshot(model)
    config = copy.deepcopy(vars(model.config))
    c = sf.trace(model, {"input_ids": ("B", "N")}, warn=False)
    assert c.params == sum(p.numel() for p in model.parameters())
    assert_same(before, deep_snapshot(model))
    assert vars(model.config) == config


# --------------------------------------------------------------------- Qwen2-MoE
def test_qwen2_moe_block_equals_sfnn():
    config = transformers.Qwen2MoeConfig(
        hidden_size=32, moe_intermediate_size=24, shared_expert_intermediate_size=40,
        num_experts=4, num_experts_per_tok=2, num_attention_heads=2, num_key_value_heads=2,
        num_hidden_layers=1, vocab_size=20)
    config._experts_implementation = "grouped_mm"  # what a Qwen2MoeForCausalLM sets
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock
    with torch.device("meta"):
        block = Qwen2MoeSparseMoeBlock(config)
    trace = sf.trace(block, "B N 32", warn=False)
    mine = sf.nn.MoE(32, 24, 4, 2, normalize=config.norm_topk_prob, shared_hidden=40,
                     shared_gate=True).cost((B, N, 32))
    assert trace.params == mine.params == sum(p.numel() for p in block.parameters())
    # the grouped path's index arithmetic (perm // k: T k divides, cumsum over E counts)
    # and its routing: the 2 B N expert ids sorted (merge sort's worst case) and
    # histogrammed (5 per id)
    diff = {"elementwise": 2 * B * N + 4 + merge_sort_compares(2 * B * N) + 5 * 2 * B * N}
    for kind in set(trace.work) | set(mine.work):
        assert sp.expand(trace.work.get(kind, 0) - mine.work.get(kind, 0)) == \
            sp.expand(diff.get(kind, 0)), kind


# --------------------------------------------------------------------- capacity factor
def test_capacity_factor_makes_slots_explicit():
    E, k, F, dim = (symbol(n) for n in ("E", "k", "F", "dim"))
    c = sf.nn.MoE(dim, F, E, k, capacity_factor=Fraction(5, 4)).cost((T, dim))
    # each expert gets C = ceil(5/4 T k / E) slots, the experts process E C rows
    slots = E * sp.ceiling(sp.Rational(5, 4) * T * k / E)
    assert sp.expand(c["experts"].macs - 3 * slots * dim * F) == 0
    # 8 experts, top 2, 100 tokens: C = ceil(250/8) = 32, 256 rows (200 without the factor)
    at = {E: 8, k: 2, F: 4, dim: 2, T: 100}
    assert c["experts"].macs.subs(at) == 256 * 3 * 2 * 4
    assert sf.nn.MoE(dim, F, E, k).cost((T, dim))["experts"].macs.subs(at) == 200 * 3 * 2 * 4
    with pytest.raises(sf.SymflopsError, match="exact"):
        sf.nn.MoE(8, 16, 4, 2, capacity_factor=1.25)
    with pytest.raises(sf.SymflopsError, match="top_k is larger"):
        sf.nn.MoE(8, 16, 4, 5)
    # symbolic: a condition on the cost, checked when values are given
    assert c.validity == (sp.Le(k, E),)
    with pytest.raises(sf.SymflopsError):
        c.subs({E: 2, k: 3, F: 4, dim: 2, T: 10})


# --------------------------------------------------------------------- skip_masked
class Causal(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_skip_masked_trace_equals_sfnn_half():
    # B 4 heads, head width 16: the pairs j <= i, N(N+1)/2 per head, diagonal included:
    # scores and context 4 B 16 N(N+1)/2 MACs each
    c = sf.trace(Causal(), ["B 4 N 16"] * 3, skip_masked=True, warn=False)
    half = sf.nn.MultiheadAttention(64, 4, causal=True, skip_masked=True).cost((B, N, 64))
    for part in ("scores", "scale", "softmax", "context"):
        for kind in set(c[part].work) | set(half[part].work):
            assert sp.expand(c[part].work.get(kind, 0) - half[part].work.get(kind, 0)) == 0
    assert sp.expand(c.macs - 2 * 4 * B * 16 * N * (N + 1) / 2) == 0
    dense = sf.trace(Causal(), ["B 4 N 16"] * 3, warn=False)
    assert sp.expand(dense.macs - 2 * 4 * B * 16 * N**2) == 0
    # at N = 3: pairs (0,0) (1,0) (1,1) (2,0) (2,1) (2,2): 6 of 9
    assert c.subs(B=1, N=3).macs == 2 * 4 * 16 * 6


def test_skip_masked_hf_gpt2_on_cpu_halves_attention():
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=32, n_head=2, n_layer=1, vocab_size=20, n_positions=64))
    half = sf.trace(model, {"input_ids": ("B", "N")}, skip_masked=True, warn=False)
    dense = sf.trace(model, {"input_ids": ("B", "N")}, warn=False)
    # scores and context each B heads head_dim (N^2 - N(N+1)/2) = 32 B N(N-1)/2 MACs fewer
    assert sp.expand(dense.macs - half.macs - 2 * 32 * B * N * (N - 1) / 2) == 0


def test_skip_masked_without_a_causal_kernel_warns():
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_embd=32, n_head=2, n_layer=1, vocab_size=20, n_positions=64))
    with pytest.warns(UserWarning, match="no causal attention kernel"):
        sf.trace(model, {"input_ids": ("B", "N")}, skip_masked=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "train"}, "forward only"),
    ({"fallback": "fit"}, "fallback"),
    ({"skip_masked": "yes"}, "True or False"),
], ids=["train", "fit", "not-bool"])
def test_skip_masked_refusals(kwargs, match):
    kwargs = {"skip_masked": True, **kwargs}
    with pytest.raises(sf.SymflopsError, match=match):
        sf.trace(Causal(), ["B 4 N 16"] * 3, **kwargs)
