"""``sf.trace(model, {"input_ids": ("B", 1)}, past="T")``: a transformers decoder's decode
step with a ``DynamicCache`` of symbolic length ``T``. The traced formula equals the
presets' ``mode="decode", context=T`` (as SymPy expressions, matmul conventions exactly,
the exact convention up to named differences), FlopCounterMode on a real decode step with
a real cache filled with ``T`` tokens, and the domain says the model's length."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import OutsideDomain, SymflopsError  # noqa: E402
from symflops.symbols import B, N, symbol  # noqa: E402

transformers.logging.set_verbosity_error()
T = symbol("T")

#: the small Llama of the brief: dim 64, 4 heads, 2 kv heads (GQA), MLP 128, 2 layers
SMALL = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, num_hidden_layers=2, vocab_size=256)


def _llama(impl: str = "eager", device: str = "meta", **changes: Any) -> Any:
    config = transformers.LlamaConfig(**{**SMALL, **changes}, attn_implementation=impl)
    torch.manual_seed(0)
    with torch.device(device):
        return transformers.LlamaForCausalLM(config).eval()


def _preset(c: dict[str, Any]) -> Any:
    return sf.presets.llama(c["hidden_size"], c["num_attention_heads"],
                            c["num_key_value_heads"], c["num_hidden_layers"],
                            c["vocab_size"], c["intermediate_size"])


def _trace_decode(model: Any, new: Any = 1) -> Any:
    return sf.trace(model, {"input_ids": ("B", new)}, past="T", warn=False)


def _kind_differences(trace: Any, preset: Any) -> dict[str, sp.Expr]:
    out = {}
    for kind in set(trace.work) | set(preset.work):
        diff = sp.expand(trace.work.get(kind, 0) - preset.work.get(kind, 0))
        if diff != 0:
            out[kind] = diff
    return out


# ------------------------------------------------------------------ traced == preset
@pytest.mark.parametrize("kv", [4, 2, 1], ids=["MHA", "GQA", "MQA"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_llama_decode_equals_preset(kv: int, impl: str) -> None:
    config = {**SMALL, "num_key_value_heads": kv}
    trace = _trace_decode(_llama(impl, num_key_value_heads=kv))
    preset = _preset(config).cost((B, 1), mode="decode", context=T)
    assert not trace.report.unknown and not trace.report.fixed
    assert trace.params == preset.params
    # matmul-only conventions: equal as expressions (projections, QK^T and AV over the
    # T + 1 keys, the MLP and the head, on one new token per sequence)
    for conv in ("torch", "macs"):
        assert sp.expand(trace.with_convention(conv).flops
                         - preset.with_convention(conv).flops) == 0, conv
    # hand count (torch convention, 2 per MAC), d 64, h 4, kv heads k, head dim 16, L 2,
    # F 128, V 256: per layer q and o 2*64*64, k and v 2*64*16k, scores and context
    # 2*4*16 per key each, MLP 3*64*128; head 64*256:
    #   2 B [2 (8192 + 2048 k + 24576) + 2*128 (T + 1) + 16384]
    k = kv
    hand = 2 * B * (2 * (8192 + 2048 * k + 24576) + 2 * 128 * (T + 1) + 16384)
    assert sp.expand(trace.with_convention("torch").flops - hand) == 0
    # the exact convention counts what transformers' code runs (as the prefill test in
    # test_presets_lm.py): LlamaRMSNorm's pow, mean, add, rsqrt, mul, mul (4 d + 2 per
    # token, 2 L + 1 norms) are elementwise where sf.nn says norm_stats (3 d + 2) and
    # norm_affine (d); the rest of the differences are elementwise:
    norms = (2 * 2 + 1) * B
    want = {"norm_stats": -norms * (3 * 64 + 2), "norm_affine": -norms * 64}
    if impl == "eager":
        # eager adds the causal mask to each score (L h B (T + 1)), and the mask is made
        # from the positions: kv_idx = arange(T + 1) + offset (T + 1 adds), kv_idx <= q_idx
        # (T + 1 compares) and two adds of one element
        extra = 2 * 4 * B * (T + 1) + 2 * (T + 1) + 2
    else:
        # SDPA's math path (meta device) scales q and k (repeated to all heads) by
        # sqrt(scale) (B h d_h (1 + T + 1) per layer) instead of each score (sf.nn's
        # B h (T + 1)), with no mask for one new token; one add of one element makes the
        # cache positions
        extra = 2 * (64 * B * (1 + T + 1) - 4 * B * (T + 1)) + 1
    want["elementwise"] = norms * (4 * 64 + 2) + extra
    got = _kind_differences(trace, preset)
    assert {k: sp.expand(v) for k, v in got.items()} == \
        {k: sp.expand(v) for k, v in want.items()}


def test_several_new_tokens_equal_the_preset() -> None:
    # N new tokens (speculative decoding, a chunked prefill) over T cached: each attends
    # to T + N keys, counted dense as torch computes it; the preset says the same
    trace = _trace_decode(_llama(), new="N")
    preset = _preset(SMALL).cost((B, N), mode="decode", context=T)
    assert sp.expand(trace.with_convention("torch").flops
                     - preset.with_convention("torch").flops) == 0
    assert sp.Le(N + T, 2048) in trace.validity


def test_latent_cache_of_deepseek_v2_equals_the_preset() -> None:
    # DeepSeek-V2 in transformers 5 caches the latent (kv_lora_rank) and the rotary key:
    # the probe reads those shapes, and the trace expands the T + 1 latents with kv_b_proj
    # as the preset counts it. Dense MLPs only (the experts' _grouped_mm needs bf16 on
    # meta): first_k_dense_replace = layers.
    a = dict(dim=64, heads=4, layers=3, vocab=97, kv_rank=16, q_rank=24, rope_dim=4,
             head_dim=8, experts=6, shared_experts=2, top_k=2, expert_hidden=16,
             dense_layers=3, hidden=40)
    config = transformers.DeepseekV2Config(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=4, num_hidden_layers=3,
        vocab_size=97, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=4,
        qk_nope_head_dim=8, v_head_dim=8, n_routed_experts=6, n_shared_experts=2,
        num_experts_per_tok=2, moe_intermediate_size=16, first_k_dense_replace=3,
        intermediate_size=40, attn_implementation="eager")
    with torch.device("meta"):
        model = transformers.DeepseekV2ForCausalLM(config)
    trace = _trace_decode(model)
    preset = sf.presets.deepseek_v2(**a).cost((B, 1), mode="decode", context=T,
                                               convention="torch")
    assert sp.expand(trace.with_convention("torch").flops - preset.flops) == 0
    assert trace.params == preset.params


# ------------------------------------------------------------------ FlopCounterMode
def _counted_decode(model: Any, batch: int, cached: int) -> int:
    """FlopCounterMode over one decode step of ``model`` (CPU, eager attention) whose
    real DynamicCache was filled by a prefill of ``cached`` tokens."""
    cache = transformers.DynamicCache(config=model.config)
    with torch.no_grad():
        model(torch.randint(0, SMALL["vocab_size"], (batch, cached)), cache=cache,
              use_cache=True)
        assert cache.get_seq_length() == cached
        with FlopCounterMode(display=False) as fc:
            model(torch.randint(0, SMALL["vocab_size"], (batch, 1)), cache=cache,
                  use_cache=True)
    return int(fc.get_total_flops())


def test_decode_equals_flop_counter_on_a_real_cache() -> None:
    traced = _trace_decode(_llama()).with_convention("torch").flops
    model = _llama(device="cpu")
    # far from the example size (T = 128): a short cache, a long one
    for b, t in ((1, 3), (3, 40), (2, 700)):
        assert traced.subs({B: b, T: t}) == _counted_decode(model, b, t), (b, t)


def test_concrete_past_on_real_tensors_is_the_formula_there() -> None:
    model = _llama(device="cpu")
    symbolic = _trace_decode(model)
    concrete = sf.trace(model, "3 1", past=21, real=True, warn=False)
    assert concrete.flops == symbolic.subs({B: 3, T: 21}).flops


def test_llama_3_8b_shape_on_meta() -> None:
    # Llama-3-8B's widths (dim 4096, 32 heads, 8 kv heads, 32 layers, MLP 14336, vocab
    # 128256, 8192 positions), 8,030,261,248 parameters; hand count (torch convention,
    # 2 per MAC) per new token: each layer q and o 4096^2, k and v 4096*1024, MLP
    # 3*4096*14336: 218,103,808 MACs, 32 layers 6,979,321,856; the head 4096*128256 =
    # 525,336,576: 2 * 7,504,658,432 = 15,009,316,864; per key of the T + 1 a layer's 32
    # heads of 128 do QK^T and AV: 8,192 MACs, 32 layers 262,144, 2 per MAC 524,288:
    #   15,009,316,864 B + 524,288 B (T + 1) = 524,288 B T + 15,009,841,152 B
    model = _llama(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
                   num_hidden_layers=32, intermediate_size=14336, vocab_size=128256,
                   max_position_embeddings=8192)
    trace = _trace_decode(model)
    preset = sf.presets.llama(4096, 32, 8, 32, 128256, 14336).cost(
        (B, 1), mode="decode", context=T)
    torch_flops = trace.with_convention("torch").flops
    assert sp.expand(torch_flops - preset.with_convention("torch").flops) == 0
    assert sp.expand(torch_flops - (524288 * B * T + 15009841152 * B)) == 0
    assert trace.params == 8_030_261_248
    assert sp.Le(T + 1, 8192) in trace.validity
    with pytest.raises(OutsideDomain):
        trace.subs(T=8192)


# ------------------------------------------------------------------ domain and errors
def test_learned_position_table_bounds_the_cache() -> None:
    # GPT-2 reads positions T .. T + n - 1 from a table of n_positions rows: the trace's
    # index check keeps T + 1 <= 64 (and the config says the same)
    config = transformers.GPT2Config(n_embd=32, n_head=2, n_layer=1, vocab_size=20,
                                     n_positions=64)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    trace = sf.trace(model, "B 1", past="T", warn=False)   # "B 1": input_ids, int64
    assert sp.Le(T + 1, 64) in trace.validity
    assert trace.report.hints["T"] < 64
    assert trace.subs(T=63, B=1).flops.is_Integer
    with pytest.raises(OutsideDomain):
        trace.subs(T=64)
    with pytest.raises(SymflopsError, match="max_position_embeddings"):
        sf.trace(model, "2 1", past=64, warn=False)


@pytest.mark.parametrize("kwargs,match", [
    ({"past": "T", "mode": "train"}, "decode step"),
    ({"past": "T", "fallback": "fit"}, "fallback"),
    ({"past": True}, "cached tokens"),
    ({"past": -1}, "cached tokens"),
    ({"past": "T", "real": True}, "every size must be an int"),
])
def test_bad_past_is_one_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SymflopsError, match=match):
        sf.trace(_llama(), {"input_ids": ("B", 1)}, warn=False, **kwargs)


def test_past_needs_a_decoder_and_token_inputs() -> None:
    with pytest.raises(SymflopsError, match="transformers decoder"):
        sf.trace(torch.nn.Linear(4, 4), "B 4", past="T")
    with pytest.raises(SymflopsError, match="share a name"):
        sf.trace(_llama(), {"input_ids": ("B", "T")}, past="T")
    with pytest.raises(SymflopsError, match="first input is the new tokens"):
        sf.trace(_llama(), {"input_ids": ("B",)}, past="T")
