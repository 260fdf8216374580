"""Sliding-window attention (Mistral, Gemma 2's local layers): ``window=W`` caps the KV
cache at ``min(T, W - 1)`` tokens and a decode step's keys at ``min(T, W - 1) + n``; checked
against transformers' Mistral with a real sliding-window DynamicCache under FlopCounterMode,
and a whole generation against the loop over its steps."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import SymflopsError  # noqa: E402
from symflops.serving import generation, kv_cache, kv_elements  # noqa: E402
from symflops.symbols import B, N, T, symbol  # noqa: E402

G, W = symbol("G"), symbol("W")
#: a small Mistral: dim 32, 4 heads, 2 KV heads (head width 8), 2 layers, window 5
SIZES = dict(dim=32, heads=4, kv_heads=2, layers=2, vocab=61, hidden=48)
WINDOW = 5


def _mistral() -> Any:
    config = transformers.MistralConfig(
        hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
        vocab_size=61, intermediate_size=48, sliding_window=WINDOW,
        attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.MistralForCausalLM(config).eval()


def test_cache_is_capped_by_the_window() -> None:
    a = sf.nn.MultiheadAttention(32, 4, kv_heads=2, causal=True, window=W)
    # per token 2 (K, V) * 2 KV heads * 8 = 32 elements; the last min(T, W - 1) tokens
    assert kv_elements(a, T) == 32 * sp.Min(T, W - 1)
    dec = a.cost((B, 1, 32), mode="decode", context=T)
    assert dec.memory.kv_cache == 64 * B * sp.Min(T, W - 1)
    # one new token: 4 heads x 8 wide scores over min(T, W - 1) + 1 keys
    assert dec["scores"].macs == 32 * B * (sp.Min(T, W - 1) + 1)
    assert dec.subs(B=1, T=3, W=5)["scores"].macs == 32 * 4     # window not full: 3 + 1 keys
    assert dec.subs(B=1, T=900, W=5)["scores"].macs == 32 * 5   # full: 4 + 1 keys
    # W >= T + 1: the same as no window
    full = sf.nn.MultiheadAttention(32, 4, kv_heads=2, causal=True)
    assert dec.subs(B=2, T=7, W=8).flops == full.cost((B, 1, 32), mode="decode",
                                                       context=T).subs(B=2, T=7).flops


def test_decode_and_cache_equal_transformers_mistral() -> None:
    model = _mistral()
    m = sf.presets.llama(**SIZES, sliding_window=WINDOW)
    step = m.cost((B, 1), mode="decode", context=T, convention="torch")
    pre = m.cost((B, N), mode="prefill", convention="torch")
    for batch, prompt in ((2, 3), (1, 4), (3, 9)):
        cache = transformers.DynamicCache(config=model.config)
        ids = torch.randint(0, 61, (batch, prompt))
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(ids, cache=cache, use_cache=True)
        assert pre.flops.subs({B: batch, N: prompt}) == fc.get_total_flops()
        held = sum(t.numel() * t.element_size() for layer in cache.layers
                   for t in (layer.keys, layer.values))
        assert held == kv_cache(m, batch, prompt, dtype_bytes=4)  # fp32 model
        for t in range(prompt, prompt + 7):  # steps across the window's edge
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                model(torch.randint(0, 61, (batch, 1)), cache=cache, use_cache=True)
            assert step.flops.subs({B: batch, T: t}) == fc.get_total_flops(), (batch, t)
            held = sum(x.numel() * x.element_size() for layer in cache.layers
                       for x in (layer.keys, layer.values))
            assert held == kv_cache(m, batch, t + 1, dtype_bytes=4)


def test_generation_with_a_window_equals_the_loop() -> None:
    m = sf.presets.llama(**SIZES, sliding_window=WINDOW)
    g = generation(m, B, N, G)
    step = m.cost((B, 1), mode="decode", context=T)
    pre = m.cost((B, N), mode="prefill")
    # prompts shorter and longer than the window, generations ending before and after it
    for b, n, new in ((2, 1, 1), (1, 2, 3), (3, 2, 11), (1, 4, 1), (2, 6, 5), (1, 30, 2)):
        loop = pre.subs(B=b, N=n).flops + sum(step.subs(B=b, T=n + t).flops
                                              for t in range(new))
        assert g.subs(B=b, N=n, G=new).flops == loop, (b, n, new)
        assert g.subs(B=b, N=n, G=new).memory.kv_written == kv_cache(m, b, n + new)
    # a symbolic window too
    gw = generation(sf.presets.llama(**SIZES, sliding_window=W), B, N, G)
    assert gw.subs(B=2, N=3, G=8, W=WINDOW).flops == g.subs(B=2, N=3, G=8).flops


def test_window_refusals() -> None:
    with pytest.raises(SymflopsError, match="causal"):
        sf.nn.MultiheadAttention(32, 4, window=5)
    with pytest.raises(SymflopsError, match="window"):
        sf.nn.MultiheadAttention(32, 4, causal=True, window=0)
    with pytest.raises(SymflopsError, match="sliding_window"):
        sf.presets.llama(**SIZES, sliding_window=-3)


def test_local_and_global_layers_alternating() -> None:
    # Gemma 2's pattern: a sliding-window layer then a global one, repeated; the cache is
    # min(T, W - 1) tokens for the local layers and T for the global ones, and a generation
    # still sums in closed form (only the local layers' count is capped)
    def layer(window: Any) -> Any:
        return sf.nn.Residual(sf.nn.MultiheadAttention(32, 4, kv_heads=2, bias=False,
                                                       causal=True, window=window))

    m = sf.nn.Repeat(sf.nn.Sequential(layer(WINDOW), layer(None)), 3)
    assert kv_elements(m, T) == 3 * 32 * (sp.Min(T, WINDOW - 1) + T)
    g = generation(m, B, N, G)
    step = m.cost((B, 1, 32), mode="decode", context=T)
    pre = m.cost((B, N, 32), mode="prefill")
    for b, n, new in ((1, 2, 9), (2, 7, 3), (1, 3, 1)):
        loop = pre.subs(B=b, N=n).flops + sum(step.subs(B=b, T=n + t).flops
                                              for t in range(new))
        assert g.subs(B=b, N=n, G=new).flops == loop
    with pytest.raises(SymflopsError, match="different sliding windows"):
        generation(sf.nn.Sequential(layer(WINDOW), layer(WINDOW + 2)), B, N, G)
