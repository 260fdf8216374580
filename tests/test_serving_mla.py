"""Multi-head latent attention (DeepSeek-V2) and the ``deepseek_v2`` preset: parameters as
transformers builds them, the latent KV cache, and prefill / decode FLOPs against
transformers' ``DeepseekV2Attention`` running a real ``DynamicCache`` under FlopCounterMode."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import SymflopsError  # noqa: E402
from symflops.serving import kv_cache, kv_elements_per_token  # noqa: E402
from symflops.symbols import B, N, symbol  # noqa: E402

T = symbol("T")

#: DeepSeek-V2 (config.json of deepseek-ai/DeepSeek-V2) in the preset's argument names
FULL = dict(dim=5120, heads=128, layers=60, vocab=102400, kv_rank=512, q_rank=1536,
            rope_dim=64, head_dim=128, experts=160, shared_experts=2, top_k=6,
            expert_hidden=1536, dense_layers=1, hidden=12288)
SMALL = dict(dim=64, heads=4, layers=3, vocab=97, kv_rank=16, q_rank=24, rope_dim=4,
             head_dim=8, experts=6, shared_experts=2, top_k=2, expert_hidden=16,
             dense_layers=1, hidden=40)


def _config(a: dict[str, Any]) -> Any:
    return transformers.DeepseekV2Config(
        hidden_size=a["dim"], num_attention_heads=a["heads"], num_key_value_heads=a["heads"],
        num_hidden_layers=a["layers"], vocab_size=a["vocab"], kv_lora_rank=a["kv_rank"],
        q_lora_rank=a["q_rank"], qk_rope_head_dim=a["rope_dim"],
        qk_nope_head_dim=a["head_dim"], v_head_dim=a["head_dim"],
        n_routed_experts=a["experts"], n_shared_experts=a["shared_experts"],
        num_experts_per_tok=a["top_k"], moe_intermediate_size=a["expert_hidden"],
        first_k_dense_replace=a["dense_layers"], intermediate_size=a["hidden"],
        attn_implementation="eager")


@pytest.mark.parametrize("sizes", [SMALL, FULL], ids=["small", "DeepSeek-V2"])
def test_deepseek_v2_parameters_equal_transformers(sizes: dict[str, Any]) -> None:
    with torch.device("meta"):
        model = transformers.DeepseekV2ForCausalLM(_config(sizes))
    expected = sum(p.numel() for p in model.parameters())
    assert sf.presets.deepseek_v2(**sizes).cost((B, N)).params == expected
    if sizes is FULL:
        assert expected == 235_741_434_880


def test_symbolic_preset_substitutes_to_the_concrete_one() -> None:
    d_c, d_r = symbol("d_c"), symbol("d_R")
    m = sf.presets.deepseek_v2(**{**SMALL, "kv_rank": d_c, "rope_dim": d_r})
    c = m.cost((B, N))
    concrete = sf.presets.deepseek_v2(**SMALL).cost((B, N))
    assert c.params.subs({d_c: 16, d_r: 4}) == concrete.params
    assert sp.expand(c.flops.subs({d_c: 16, d_r: 4}) - concrete.flops) == 0
    # the cache: (d_c + d_R) per layer per token (DeepSeek-V2, Table 1: (d_c + d_h^R) l)
    assert kv_elements_per_token(m) == SMALL["layers"] * (d_c + d_r)


def test_latent_cache_is_what_transformers_caches() -> None:
    # DeepSeek-V2: (512 + 64) * 60 = 34,560 elements per token; bf16 2 bytes each
    full = sf.presets.deepseek_v2(**FULL)
    assert kv_elements_per_token(full) == (512 + 64) * 60 == 34560
    assert kv_cache(full, B, T) == 69120 * B * T
    dec = full.cost((B, 1), mode="decode", context=T)
    assert dec.memory.kv_cache == 69120 * B * T
    assert dec.memory.kv_written == 69120 * B
    # a real DynamicCache after a prefill of 7 tokens, batch 2, bf16
    torch.manual_seed(0)
    model = transformers.DeepseekV2ForCausalLM(_config(SMALL)).to(torch.bfloat16).eval()
    cache = transformers.DynamicCache(config=model.config)
    with torch.no_grad():
        model(torch.randint(0, SMALL["vocab"], (2, 7)), cache=cache, use_cache=True)
    held = sum(t.numel() * t.element_size() for layer in cache.layers
               for t in (layer.keys, layer.values))
    small = sf.presets.deepseek_v2(**SMALL)
    assert held == kv_cache(small, 2, 7) == 2 * 7 * 3 * (16 + 4) * 2


def _attention_and_rope() -> tuple[Any, Any, Any]:
    """The small config, transformers' DeepseekV2Attention (layer 0, seed 0) and its
    rotary embedding."""
    config = _config(SMALL)
    torch.manual_seed(0)
    module = transformers.models.deepseek_v2.modeling_deepseek_v2
    return (config, module.DeepseekV2Attention(config, layer_idx=0),
            module.DeepseekV2RotaryEmbedding(config))


def _torch_attention_flops(batch: int, cached: int, new: int) -> int:
    """transformers' DeepseekV2Attention (eager) on ``new`` tokens with ``cached`` tokens in
    a real DynamicCache, under FlopCounterMode (2 per MAC of mm/bmm)."""
    config, attn, rope = _attention_and_rope()
    attn.eval()
    cache = transformers.DynamicCache(config=config)
    with torch.no_grad():
        if cached:
            x0 = torch.randn(batch, cached, SMALL["dim"])
            pos0 = torch.arange(cached)[None].expand(batch, -1)
            attn(x0, None, cache=cache, position_embeddings=rope(x0, pos0))
        x = torch.randn(batch, new, SMALL["dim"])
        pos = torch.arange(cached, cached + new)[None].expand(batch, -1)
        emb = rope(x, pos)
        with FlopCounterMode(display=False) as fc:
            attn(x, None, cache=cache, position_embeddings=emb)
    return int(fc.get_total_flops())


def test_decode_step_equals_transformers_with_a_real_cache() -> None:
    # hand (torch convention, 2 per MAC), dim 64, h 4, d_q 24, d_c 16, d_R 4, d_h 8, n new
    # tokens, T cached:
    #   q_a 64*24 + q_b 24*4*12 + kv_a 64*20 = 1536 + 1152 + 1280 = 3968 per new token
    #   kv_b 16*4*16 = 1024 per key (the T + n cached latents expanded every step)
    #   scores 4*12 and context 4*8 per (query, key) pair: 80 per pair, n (T + n) pairs
    #   o_proj 32*64 = 2048 per new token
    # FLOPs = 2 B [ (3968 + 2048) n + 1024 (T + n) + 80 n (T + n) ]
    layer = sf.nn.MultiheadLatentAttention(64, 4, kv_rank=16, q_rank=24, rope_dim=4,
                                           head_dim=8)
    n = symbol("n")
    step = layer.cost((B, n, 64), mode="decode", context=T, convention="torch")
    hand = 2 * B * ((3968 + 2048) * n + 1024 * (T + n) + 80 * n * (T + n))
    assert sp.expand(step.flops - hand) == 0
    for b, t, k in ((1, 1, 1), (2, 37, 1), (3, 300, 1), (2, 9, 4)):
        assert step.flops.subs({B: b, T: t, n: k}) == _torch_attention_flops(b, t, k)
    # prefill (no cache) is the forward over the prompt
    pre = layer.cost((B, N, 64), mode="prefill", convention="torch")
    assert pre.flops.subs({B: 2, N: 13}) == _torch_attention_flops(2, 0, 13)
    assert pre.memory.kv_cache == 2 * 20 * B * N


def test_whole_preset_decode_equals_transformers() -> None:
    # the whole small model's decode step, torch convention: attention as above per layer,
    # the MLPs on the new token (experts via _grouped_mm are not seen by FlopCounterMode, so
    # compare the attention-and-dense part: the model with one dense layer and its head)
    sizes = {**SMALL, "dense_layers": SMALL["layers"]}
    config = _config(sizes)
    torch.manual_seed(0)
    model = transformers.DeepseekV2ForCausalLM(config).eval()
    cache = transformers.DynamicCache(config=config)
    with torch.no_grad():
        model(torch.randint(0, 97, (2, 11)), cache=cache, use_cache=True)
        with FlopCounterMode(display=False) as fc:
            model(torch.randint(0, 97, (2, 1)), cache=cache, use_cache=True)
    step = sf.presets.deepseek_v2(**sizes).cost((B, 1), mode="decode", context=T,
                                                convention="torch")
    assert step.flops.subs({B: 2, T: 11}) == int(fc.get_total_flops())


def test_bad_sizes_are_one_error() -> None:
    with pytest.raises(SymflopsError, match="rope_dim must be even"):
        sf.nn.MultiheadLatentAttention(64, 4, kv_rank=16, q_rank=24, rope_dim=3, head_dim=8)
    with pytest.raises(SymflopsError, match="dense_layers is larger than layers"):
        sf.presets.deepseek_v2(**{**SMALL, "dense_layers": 4})
    with pytest.raises(SymflopsError, match="kv_rank"):
        sf.presets.deepseek_v2(**{**SMALL, "kv_rank": 0})


def test_absorbed_decode_equals_torch_and_transformers_output() -> None:
    # absorb=True: W^UK into the queries, W^UV after the context (DeepSeek-V2 section 2.1.2).
    # Hand (torch convention), per new token: q_a 1536 + q_b 1152 + kv_a 1280 + q_absorb
    # 4*8*16 = 512 + v_absorb 4*16*8 = 512 + o_proj 2048 = 7040 MACs; per (query, key) pair
    # scores 4*(16 + 4) + context 4*16 = 144 MACs: FLOPs = 2 B (7040 n + 144 n (T + n))
    mods = transformers.models.deepseek_v2.modeling_deepseek_v2
    config = _config(SMALL)
    torch.manual_seed(0)
    attn = mods.DeepseekV2Attention(config, layer_idx=0).eval()
    rope = mods.DeepseekV2RotaryEmbedding(config)
    layer = sf.nn.MultiheadLatentAttention(64, 4, kv_rank=16, q_rank=24, rope_dim=4,
                                           head_dim=8, absorb=True)
    n = symbol("n")
    step = layer.cost((B, n, 64), mode="decode", context=T, convention="torch")
    assert sp.expand(step.flops - 2 * B * (7040 * n + 144 * n * (T + n))) == 0
    assert step.params == layer.cost((B, N, 64)).params  # W^UK, W^UV are kv_b_proj's halves
    h, dh, dr, dc = 4, 8, 4, 16
    w_uk, w_uv = attn.kv_b_proj.weight.view(h, dh + dh, dc).split([dh, dh], 1)
    for batch, cached, new in ((2, 9, 1), (1, 40, 1), (3, 5, 3)):
        cache = transformers.DynamicCache(config=config)
        x0, x = torch.randn(batch, cached, 64), torch.randn(batch, new, 64)
        pos = torch.arange(cached + new)[None].expand(batch, -1)
        mask = torch.full((new, cached + new), float("-inf")).triu(cached + 1)
        with torch.no_grad():
            attn(x0, None, cache=cache, position_embeddings=rope(x0, pos[:, :cached]))
            latent, k_pe = (t.clone() for t in (cache.layers[0].keys, cache.layers[0].values))
            emb = rope(x, pos[:, cached:])
            want = attn(x, mask, cache=cache, position_embeddings=emb)[0]
            with FlopCounterMode(display=False) as fc:
                q = attn.q_b_proj(attn.q_a_layernorm(attn.q_a_proj(x)))
                q = q.view(batch, new, h, dh + dr).transpose(1, 2)
                q_nope, q_pe = q.split([dh, dr], -1)
                c_kv, kp = attn.kv_a_proj_with_mqa(x).split([dc, dr], -1)
                c_kv = attn.kv_a_layernorm(c_kv).view(batch, 1, new, dc)
                q_pe, kp = mods.apply_rotary_emb(q_pe, kp.view(batch, 1, new, dr), emb)
                keys_c = torch.cat([latent, c_kv], 2)               # (b, 1, T + n, d_c)
                keys_r = torch.cat([k_pe, kp], 2)                   # (b, 1, T + n, d_R)
                q_lat = torch.matmul(q_nope.unsqueeze(-2), w_uk.unsqueeze(1)).squeeze(-2)
                scores = torch.matmul(torch.cat([q_lat, q_pe], -1),
                                      torch.cat([keys_c, keys_r], -1).transpose(-1, -2))
                probs = torch.softmax(scores * attn.scaling + mask, -1)
                ctx = torch.matmul(probs, keys_c)                   # (b, h, n, d_c)
                out = torch.matmul(ctx.unsqueeze(-2), w_uv.transpose(1, 2).unsqueeze(1))
                got = attn.o_proj(out.squeeze(-2).transpose(1, 2).reshape(batch, new, h * dh))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        assert step.flops.subs({B: batch, T: cached, n: new}) == fc.get_total_flops()


def test_absorbed_deepseek_v2_decode_per_cached_token() -> None:
    # per cached token per layer per sequence, MACs: expanded (transformers) re-projects the
    # latent (512 -> 128 x 256) and attends over 192 + 128 per head; absorbed attends over
    # 576 + 512 per head: 128 (512 + 64 + 512) = 139,264 MACs
    naive = sf.presets.deepseek_v2(**FULL).cost((B, 1), mode="decode", context=T)
    fast = sf.presets.deepseek_v2(**FULL, absorb=True).cost((B, 1), mode="decode", context=T)
    per_t = sp.Poly(fast.macs, T).coeff_monomial(T)
    assert per_t == 60 * 128 * (512 + 64 + 512) * B
    assert sp.Poly(naive.macs, T).coeff_monomial(T) == 60 * (512 * 128 * 256
                                                             + 128 * (192 + 128)) * B
    assert fast.params == naive.params == 235_741_434_880


def test_deepseek_v2_table_1_cache_per_token() -> None:
    # DeepSeek-V2, Table 1, KV cache elements per token: MHA 2 n_h d_h l, GQA 2 n_g d_h l,
    # MQA 2 d_h l, MLA (d_c + d_h^R) l, which with d_c = 4 d_h and d_h^R = d_h / 2 is
    # 9/2 d_h l ("equal to GQA with only 2.25 groups")
    from symflops.symbols import L, heads

    d_h, n_g = symbol("d_h"), symbol("n_g")
    mha = sf.nn.Repeat(sf.nn.MultiheadAttention(heads * d_h, heads), L)
    gqa = sf.nn.Repeat(sf.nn.MultiheadAttention(heads * d_h, heads, kv_heads=n_g), L)
    mqa = sf.nn.Repeat(sf.nn.MultiheadAttention(heads * d_h, heads, kv_heads=1), L)
    mla = sf.nn.Repeat(sf.nn.MultiheadLatentAttention(heads * d_h, heads, kv_rank=4 * d_h,
                                                      q_rank=None, rope_dim=d_h,
                                                      head_dim=d_h), L)
    assert sp.expand(kv_elements_per_token(mha) - 2 * heads * d_h * L) == 0
    assert sp.expand(kv_elements_per_token(gqa) - 2 * n_g * d_h * L) == 0
    assert kv_elements_per_token(mqa) == 2 * d_h * L
    # symbolic: rope_dim = d_h (d_h / 2 is not a size SymPy can prove an integer):
    # (4 d_h + d_h) l
    assert sp.expand(kv_elements_per_token(mla) - 5 * d_h * L) == 0
    # the paper's sizes: d_h 128, d_c 512, d_R 64: 576 = 4.5 d_h per layer
    ds = sf.nn.MultiheadLatentAttention(5120, 128, kv_rank=512, q_rank=1536, rope_dim=64,
                                        head_dim=128)
    assert kv_elements_per_token(ds) == sp.Rational(9, 2) * 128


def _torch_training_flops(batch: int, n: int) -> int:
    """FlopCounterMode over a forward and backward of transformers' DeepseekV2Attention
    (eager, causal mask; the input needs no gradient, the weights do)."""
    _config_, attn, rope = _attention_and_rope()
    attn.train()
    x = torch.randn(batch, n, SMALL["dim"])
    emb = rope(x, torch.arange(n)[None].expand(batch, -1))
    mask = torch.full((n, n), float("-inf")).triu(1)[None, None]
    with FlopCounterMode(display=False) as fc:
        attn(x, mask, position_embeddings=emb)[0].sum().backward()
    return int(fc.get_total_flops())


def test_training_equals_transformers_forward_and_backward() -> None:
    # torch convention (2 per MAC of mm and bmm): the forward as in the prefill test, and
    # per linear layer two gradient products (weights only: x needs no gradient, so the
    # first projections q_a_proj and kv_a_proj have no grad_input), per bmm two: 3x the
    # forward except q_a_proj's and kv_a_proj's grad_input (2 B N (64 24 + 64 20) each).
    layer = sf.nn.MultiheadLatentAttention(64, 4, kv_rank=16, q_rank=24, rope_dim=4,
                                           head_dim=8)
    train = layer.cost((B, N, 64), mode="train", convention="torch").flops
    forward = layer.cost((B, N, 64), convention="torch").flops
    assert sp.expand(train - 3 * forward + 2 * B * N * (64 * 24 + 64 * 20)) == 0
    for b, n in ((1, 5), (3, 40)):
        assert train.subs({B: b, N: n}) == _torch_training_flops(b, n)


def test_transformers_deepseek_v2_traces_symbolic_and_equals_the_preset() -> None:
    # transformers' DeepSeek-V2 rotates with complex numbers (torch.polar, view_as_complex):
    # the trace stays symbolic in B and N and counts every op; under the torch convention
    # its prefill is the preset's, and FlopCounterMode's on a real forward
    sizes = {**SMALL, "dense_layers": SMALL["layers"]}
    with torch.device("meta"):
        model = transformers.DeepseekV2ForCausalLM(_config(sizes))
    traced = sf.trace(model, {"input_ids": ("B", "N")}, warn=False)
    assert not traced.report.fixed and not traced.report.unknown
    preset = sf.presets.deepseek_v2(**sizes).cost((B, N), mode="prefill", convention="torch")
    assert sp.expand(traced.with_convention("torch").flops - preset.flops) == 0
    torch.manual_seed(0)
    real = transformers.DeepseekV2ForCausalLM(_config(sizes)).eval()
    for b, n in ((1, 5), (2, 19)):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(torch.randint(0, SMALL["vocab"], (b, n)))
        assert traced.with_convention("torch").subs(B=b, N=n).flops == fc.get_total_flops()
