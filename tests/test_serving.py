"""The KV cache against the papers' arithmetic and against transformers' real DynamicCache."""

from __future__ import annotations

import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.serving import kv_cache, kv_elements_per_token
from symflops.symbols import B


def test_llama3_8b_kv_cache_bf16() -> None:
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256, hidden=14336)
    T = sp.Symbol("T", positive=True, integer=True)
    # by hand: 2 (K and V) * 32 layers * 8 kv heads * 128 head dim * 2 bytes = 131072 per token
    assert kv_cache(m, B, T) == 131072 * B * T
    assert kv_cache(m, 3, 1000, dtype_bytes=1) == 65536 * 3 * 1000  # an 8-bit cache
    assert kv_cache(m, 2, 0) == 0


def test_mha_gqa_mqa_and_gpt() -> None:
    # per layer 2 * kv_heads * head_dim: MHA 2*dim, GQA 2*dim*kv/heads, MQA 2*dim/heads
    for kv, expect in ((None, 2 * 512), (4, 2 * 4 * 64), (1, 2 * 64)):
        m = sf.presets.llama(dim=512, heads=8, kv_heads=kv, layers=3, vocab=100, hidden=1024)
        assert kv_elements_per_token(m) == 3 * expect
    g = sf.presets.gpt(dim=768, heads=12, layers=12, vocab=50257, context=1024)
    assert kv_elements_per_token(g) == 12 * 2 * 768


def test_bad_input() -> None:
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=10, hidden=128)
    with pytest.raises(SymflopsError):
        kv_cache(m, 1, -1)
    with pytest.raises(SymflopsError, match="no attention"):
        kv_cache(sf.nn.Linear(4, 4), 1, 3)
    with pytest.raises(SymflopsError):
        kv_cache("llama", 1, 3)  # type: ignore[arg-type]


@pytest.mark.slow
def test_against_transformers_dynamic_cache() -> None:
    import torch
    import transformers

    cfg = transformers.LlamaConfig(hidden_size=96, intermediate_size=160, num_hidden_layers=3,
                                   num_attention_heads=6, num_key_value_heads=2, vocab_size=50)
    model = transformers.LlamaForCausalLM(cfg).bfloat16().eval()
    batch, context = 3, 11
    with torch.no_grad():
        out = model(torch.randint(0, 50, (batch, context)), use_cache=True)
    cache = out.past_key_values
    measured = 0
    for i in range(cfg.num_hidden_layers):
        layer = cache.layers[i] if hasattr(cache, "layers") else None
        k, v = (layer.keys, layer.values) if layer is not None else \
            (cache.key_cache[i], cache.value_cache[i])
        measured += k.numel() * k.element_size() + v.numel() * v.element_size()
    m = sf.presets.llama(dim=96, heads=6, kv_heads=2, layers=3, vocab=50, hidden=160)
    assert kv_cache(m, batch, context, dtype_bytes=2) == measured
