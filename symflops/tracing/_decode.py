"""A Hugging Face causal LM's decode step with a KV cache of symbolic length, to trace.

``decode_step(model)`` wraps the model in a module whose inputs are the new tokens' ids and
every layer's cached keys and values, ``(B, kv_heads, T, head_dim)`` each: inside, a
transformers ``DynamicCache`` is filled with them and the model runs at positions ``T ..
T + n - 1``, as ``generate`` runs a step. Traced, ``T`` stays a symbol:

>>> import torch, transformers, symflops as sf
>>> transformers.logging.set_verbosity_error()
>>> cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
...     intermediate_size=128, num_hidden_layers=2, vocab_size=256)
>>> with torch.device("meta"):
...     lm = transformers.LlamaForCausalLM(cfg).eval()
>>> step, inputs = sf.tracing.decode_step(lm)
>>> sf.trace(step, inputs, hints={"T": 37}, warn=False, convention="torch").flops
512*B*(T + 1) + 180224*B
"""

from __future__ import annotations

from typing import Any

import torch

from symflops.errors import SymflopsError

__all__ = ["decode_step"]


class _DecodeStep(torch.nn.Module):
    """``model`` run on ``input_ids`` after ``T`` cached tokens (their keys and values,
    layer by layer, as positional inputs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, *cached: torch.Tensor) -> Any:
        from transformers import DynamicCache

        config: Any = self.model.config
        cache = DynamicCache(config=config)
        for layer in range(len(cached) // 2):
            cache.update(cached[2 * layer], cached[2 * layer + 1], layer)
        past = cached[0].shape[2]
        positions = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)
        out = self.model(input_ids=input_ids, past_key_values=cache, cache_position=positions,
                         position_ids=positions.unsqueeze(0).expand(input_ids.shape[0], -1),
                         use_cache=True)
        return out.logits


def decode_step(model: torch.nn.Module, batch: str = "B", new: str | int = 1,
                context: str = "T") -> tuple[torch.nn.Module, list[Any]]:
    """``(module, inputs)`` for :func:`symflops.trace`: one decode step of the Hugging Face
    causal LM ``model`` for ``batch`` sequences of ``new`` tokens after ``context`` cached
    ones (dims named as given; ``new`` may be a number). Reads ``num_hidden_layers``,
    ``num_key_value_heads`` (or ``num_attention_heads``) and ``head_dim`` (or
    ``hidden_size / num_attention_heads``) from ``model.config``. The model must accept
    transformers' ``DynamicCache`` (decoder-only models with standard attention)."""
    cfg = getattr(model, "config", None)
    layers = getattr(cfg, "num_hidden_layers", None)
    heads = getattr(cfg, "num_attention_heads", None)
    if cfg is None or layers is None or heads is None:
        raise SymflopsError("decode_step needs a Hugging Face causal LM (a model.config with "
                            "num_hidden_layers and num_attention_heads)",
                            layer=type(model).__name__,
                            fix="pass a transformers *ForCausalLM model")
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    cached = f"{batch} {kv_heads} {context} {head_dim}"
    return _DecodeStep(model), [((batch, new), torch.long), *([cached] * (2 * layers))]
