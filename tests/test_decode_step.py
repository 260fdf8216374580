"""A Hugging Face decode step traced with a KV cache of symbolic length T
(``sf.tracing.decode_step``): equal to the preset's ``mode="decode"`` under the torch
convention, and to FlopCounterMode on a real step with a filled cache at two sizes."""

from __future__ import annotations

import sympy as sp
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.symbols import B

transformers.logging.set_verbosity_error()

SIZES = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 256,
         "max_position_embeddings": 4096, "attn_implementation": "eager"}


def test_traced_llama_decode_equals_the_preset_and_flop_counter_mode() -> None:
    cfg = transformers.LlamaConfig(**SIZES)
    with torch.device("meta"):
        lm = transformers.LlamaForCausalLM(cfg).eval()
    step, inputs = sf.tracing.decode_step(lm)
    traced = sf.trace(step, inputs, hints={"T": 37}, warn=False, convention="torch")
    t = sf.symbols.symbol("T")
    preset = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=256, hidden=128)
    decode = preset.cost((B, 1), mode="decode", context=t, convention="torch")
    assert traced.flops.free_symbols == {B, t}
    assert sp.expand(traced.flops - decode.flops) == 0
    torch.manual_seed(0)
    real_step, _ = sf.tracing.decode_step(transformers.LlamaForCausalLM(cfg).eval())
    for b, past in ((1, 5), (3, 300)):  # far from the example length
        cached = [torch.randn(b, 2, past, 16) for _ in range(4)]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            real_step(torch.randint(0, 256, (b, 1)), *cached)
        assert traced.subs(B=b, T=past).flops == counter.get_total_flops()


def test_decode_step_refuses_a_model_without_a_config() -> None:
    import pytest

    with pytest.raises(sf.SymflopsError, match="causal LM"):
        sf.tracing.decode_step(torch.nn.Linear(2, 2))
