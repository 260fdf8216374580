"""Scaled dot-product attention, split into its parts.

For ``B`` sequences, ``h`` query heads, ``q`` queries, ``s`` keys and head width
``d`` (values of width ``d_v``), hand count in the exact convention:

* scores ``Q K^T``: ``B h q s`` dot products of length ``d``: ``B h q s d`` MACs,
  ``B h q s (d - 1)`` adds; the seed article's ``heads * N * (dim/heads) * N``;
* scale by ``1/sqrt(d)``: ``B h q s`` multiplies (kind ``elementwise``);
* softmax over each of ``B h q`` rows of ``s``: ``5 s - 2`` each;
* context ``A V``: ``B h q d_v`` dot products of length ``s``.

Grouped-query attention (fewer key/value heads) shares K and V between query
heads; the products are still computed per query head, so the count does not
change. A causal mask is a select, not arithmetic. With ``skip_masked=True``
(kernels that skip masked blocks, like FlashAttention) only the ``q (q + 1) / 2``
unmasked pairs count; the default counts the dense product, as torch's math kernel
computes it and as FlopCounterMode reports it.
"""

from __future__ import annotations

from symflops.errors import SymflopsError
from symflops.formulas._arith import Size, Work, add_work, exact_div, work

__all__ = ["attention_parts", "attention_work"]


def attention_parts(batch: Size, heads: Size, q_len: Size, kv_len: Size, head_dim: Size,
                    v_head_dim: Size | None = None, *, causal: bool = False,
                    skip_masked: bool = False, scale: bool = True) -> dict[str, Work]:
    """Work of each part of attention: ``scores``, ``scale``, ``softmax``, ``context``."""
    dv = head_dim if v_head_dim is None else v_head_dim
    rows = batch * heads
    if skip_masked:
        if not causal:
            raise SymflopsError("skip_masked only applies to causal attention",
                                layer="attention", values={"causal": causal},
                                fix="pass causal=True or drop skip_masked")
        if q_len != kv_len:
            raise SymflopsError("skip_masked needs as many queries as keys",
                                layer="attention", values={"q_len": q_len, "kv_len": kv_len})
        pairs = exact_div(q_len * (q_len + 1), 2)
        return {
            "scores": work(matmul_mul=rows * pairs * head_dim,
                           matmul_add=rows * pairs * (head_dim - 1)),
            "scale": work(elementwise=rows * pairs if scale else 0),
            # row i has i + 1 keys: sum_i (5 (i + 1) - 2)
            "softmax": work(softmax=rows * (5 * pairs - 2 * q_len)),
            # row i: d_v dot products of length i + 1: i adds each
            "context": work(matmul_mul=rows * pairs * dv,
                            matmul_add=rows * dv * exact_div(q_len * (q_len - 1), 2)),
        }
    pairs = q_len * kv_len
    return {
        "scores": work(matmul_mul=rows * pairs * head_dim,
                       matmul_add=rows * pairs * (head_dim - 1)),
        "scale": work(elementwise=rows * pairs if scale else 0),
        "softmax": work(softmax=rows * q_len * (5 * kv_len - 2)),
        "context": work(matmul_mul=rows * pairs * dv, matmul_add=rows * q_len * dv * (kv_len - 1)),
    }


def attention_work(batch: Size, heads: Size, q_len: Size, kv_len: Size, head_dim: Size,
                   v_head_dim: Size | None = None, *, causal: bool = False,
                   skip_masked: bool = False, scale: bool = True) -> Work:
    """Total work of scaled dot-product attention (the sum of :func:`attention_parts`)."""
    parts = attention_parts(batch, heads, q_len, kv_len, head_dim, v_head_dim, causal=causal,
                            skip_masked=skip_masked, scale=scale)
    return add_work(*parts.values())
