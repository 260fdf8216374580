"""Hugging Face language models built from their configs (transformers, no downloads):
factories for ``sf.trace_factory`` and ``--vary``, in the config's own argument names.

- ``gpt2(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024)``;
- ``llama(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
  num_key_value_heads=32, intermediate_size=11008, vocab_size=32000)``.

>>> import symflops as sf
>>> lm = sf.trace_factory(gpt2, {"input_ids": ("B", "N")},
...                       {"n_embd": "64*heads", "n_head": "heads", "n_layer": "L",
...                        "vocab_size": "V"}, convention="macs")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

import torch

__all__ = ["gpt2", "llama"]


def _quiet() -> Any:
    """transformers warns about token ids outside a small test vocabulary: silence it."""
    import transformers

    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return transformers


def gpt2(n_embd: int = 768, n_layer: int = 12, n_head: int = 12, vocab_size: int = 50257,
         n_positions: int = 1024) -> torch.nn.Module:
    """GPT-2 (LM head tied to the token embedding) from a ``GPT2Config``."""
    tf = _quiet()
    config = tf.GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                           vocab_size=vocab_size, n_positions=n_positions,
                           bos_token_id=None, eos_token_id=None)
    return tf.GPT2LMHeadModel(config).eval()


def llama(hidden_size: int = 4096, num_hidden_layers: int = 32, num_attention_heads: int = 32,
          num_key_value_heads: int = 32, intermediate_size: int = 11008,
          vocab_size: int = 32000) -> torch.nn.Module:
    """Llama (RMSNorm, rotary embeddings, SwiGLU MLP, grouped-query attention when
    ``num_key_value_heads < num_attention_heads``) from a ``LlamaConfig``."""
    tf = _quiet()
    config = tf.LlamaConfig(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                            num_attention_heads=num_attention_heads,
                            num_key_value_heads=num_key_value_heads,
                            intermediate_size=intermediate_size, vocab_size=vocab_size,
                            bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return tf.LlamaForCausalLM(config).eval()
