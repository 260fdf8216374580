"""Serving quantities derived from an sf.nn model: the KV cache.

``kv_cache(model, batch, context)``: the bytes a decoder holds in its key/value cache after
``context`` tokens per sequence, ``batch`` sequences, each attention layer storing its keys and
values (``kv_heads * head_dim`` elements each per token: grouped-query and multi-query attention
store fewer) in ``dtype_bytes`` bytes per element (2 for bf16/fp16, 1 for an 8-bit cache).
This is what transformers' ``DynamicCache`` allocates: per layer a key and a value tensor of
shape ``(batch, kv_heads, context, head_dim)``.

Llama-3-8B (32 layers, 8 KV heads of 128) in bf16: 2 * 32 * 8 * 128 * 2 = 131072 bytes per
token per sequence.

>>> import symflops as sf
>>> from symflops.symbols import B
>>> m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256, hidden=14336)
>>> kv_cache(m, B, "T")
131072*B*T
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError
from symflops.nn import Layer, MultiheadAttention, Repeat
from symflops.nn._base import nonneg_size, to_size

__all__ = ["kv_cache", "kv_elements_per_token"]


def kv_elements_per_token(model: Layer) -> sp.Expr:
    """Elements of key and value cached per token per sequence, summed over the model's
    attention layers (a Repeat multiplies its block's count by its repetitions)."""
    if not isinstance(model, Layer):
        raise SymflopsError("kv_cache takes an sf.nn layer", values={"got": type(model).__name__},
                            fix="pass e.g. sf.presets.llama(...)")
    return _walk(model, set())


def _walk(layer: Any, seen: set[int]) -> sp.Expr:
    if id(layer) in seen:
        return sp.Integer(0)
    seen = seen | {id(layer)}
    if isinstance(layer, MultiheadAttention):
        count: sp.Expr = 2 * layer.kv_heads * layer.head_dim
        return count
    if isinstance(layer, Repeat):
        inner: sp.Expr = layer.n * _walk(layer.block, seen)
        return inner
    total: sp.Expr = sp.Integer(0)
    for value in vars(layer).values():
        items = value.values() if isinstance(value, Mapping) else \
            value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, Layer):
                total += _walk(item, seen)
    return total


def kv_cache(model: Layer, batch: Any, context: Any, dtype_bytes: Any = 2) -> sp.Expr:
    """Bytes of the KV cache after ``context`` tokens for ``batch`` sequences (``dtype_bytes``
    per element: 2 for bf16, 1 for an 8-bit cache)."""
    b = to_size(batch, "kv_cache", "batch")
    t = nonneg_size(context, "kv_cache", "context")
    e = to_size(dtype_bytes, "kv_cache", "dtype_bytes")
    per_token = kv_elements_per_token(model)
    if per_token == 0:
        raise SymflopsError("the model has no attention layer, so no KV cache",
                            layer=type(model).__name__,
                            fix="pass a decoder such as sf.presets.llama")
    result: sp.Expr = sp.expand(per_token * e * b * t)
    return result

