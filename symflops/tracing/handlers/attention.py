"""Attention: scaled dot-product kernels, the MHA and encoder-layer fast paths, their backward."""

from __future__ import annotations

from typing import Any

from symflops import formulas
from symflops.tracing.handlers._common import aten, with_role
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__ = ["SKIPPED_NOTE"]


#: the note on each attention counted as its unmasked half (``sf.trace(skip_masked=True)``)
SKIPPED_NOTE = ("skip_masked: causal attention counted as its unmasked half (the N(N+1)/2 "
                "query-key pairs j <= i), as kernels that skip masked blocks compute it")


def _attention(call: OpCall, q: TShape, k: TShape, v: TShape, causal: bool, mask: Any,
               note: str = "") -> list[Part]:
    batch = formulas.arith.prod(q.shape[:-3]) if q.ndim > 3 else 1
    heads, n, d = q.shape[-3], q.shape[-2], q.shape[-1]
    s, dv = k.shape[-2], v.shape[-1]
    # a causal kernel without an explicit mask, as many queries as keys: the lower triangle
    skip = bool(call.options.get("skip_masked")) and causal and mask is None and n == s
    parts = formulas.attention.attention_derivations(
        batch, heads, n, s, d, dv, causal=causal, skip_masked=skip,
        custom_scale=call.kwargs.get("scale") is not None,
        note="; the unmasked half only" if skip else note)
    notes = (SKIPPED_NOTE,) if skip else ()
    out = [Part.of(der, name=p, layer="Attention" + p.capitalize(), notes=notes)
           for p, der in parts.items()]
    if isinstance(mask, TShape) and mask.dtype != "bool":
        out.insert(2, Part.of(formulas.attention.attention_mask_derivation(batch, heads, n, s),
                              name="mask", layer="AttentionMask"))
    return out


@register(aten._scaled_dot_product_flash_attention_for_cpu)
def _sdpa_cpu(call: OpCall) -> list[Part]:
    """The CPU SDPA kernel (FlopCounterMode counts 0 for it): full attention parts."""
    return _attention(call, call.args[0], call.args[1], call.args[2],
                      bool(call.arg(4, "is_causal", False)), call.kwargs.get("attn_mask"),
                      "; the dense product, masked or not")


@register(aten._scaled_dot_product_flash_attention, aten._scaled_dot_product_efficient_attention,
          aten._scaled_dot_product_cudnn_attention,
          aten._scaled_dot_product_fused_attention_overrideable)
def _sdpa_fused(call: OpCall) -> list[Part]:
    """Fused SDPA kernels (GPU/backends): the same parts."""
    causal_pos = {"_scaled_dot_product_flash_attention": 4,
                  "_scaled_dot_product_efficient_attention": 6,
                  "_scaled_dot_product_cudnn_attention": 6,
                  "_scaled_dot_product_fused_attention_overrideable": 5}[call.name]
    mask = call.args[3] if call.name != "_scaled_dot_product_flash_attention" and \
        len(call.args) > 3 else None
    return _attention(call, call.args[0], call.args[1], call.args[2],
                      bool(call.arg(causal_pos, "is_causal", False)), mask)


@register(aten.scaled_dot_product_attention)
def _sdpa(call: OpCall) -> list[Part]:
    """``aten.scaled_dot_product_attention`` when it reaches the dispatcher undecomposed."""
    return _attention(call, call.args[0], call.args[1], call.args[2],
                      bool(call.arg(5, "is_causal", False)), call.arg(3, "attn_mask"))


@register(aten._native_multi_head_attention)
def _mha_fast(call: OpCall) -> list[Part]:
    """nn.MultiheadAttention's inference fast path (FlopCounterMode counts 0 for it):
    the q/k/v projection, the attention parts and the output projection, as sf.nn."""
    q, k = call.args[0], call.args[1]
    embed, heads = call.args[3], call.args[4]
    batch = q.shape[0] if q.ndim == 3 else 1
    n, s = q.shape[-2], k.shape[-2]
    hd = formulas.arith.exact_div(embed, heads)
    qkv_bias = isinstance(call.args[6], TShape)
    proj_bias = isinstance(call.args[8], TShape)
    parts = [Part.of(formulas.attention.attention_projection_derivation(batch, n, s, embed,
                                                                        qkv_bias),
                     name="qkv", layer="Linear")]
    kv = TShape((batch, heads, s, hd))
    parts += _attention(call, TShape((batch, heads, n, hd)), kv, kv, False,
                        call.arg(9, "mask"))
    parts.append(Part.of(with_role(formulas.linear.linear_derivation(batch * n, embed, embed,
                                                                     proj_bias),
                               "the output projection"), name="out_proj", layer="Linear"))
    return parts


@register(aten._transformer_encoder_layer_fwd)
def _encoder_layer_fast(call: OpCall) -> list[Part]:
    """nn.TransformerEncoderLayer's inference fast path (FlopCounterMode counts 0 for it):
    the self-attention (as nn.MultiheadAttention's fast path), two residual adds, two
    LayerNorms and the feed-forward network (two linears and ReLU or GELU)."""
    x = call.args[0]
    embed, heads = call.args[1], call.args[2]
    act = "gelu" if bool(call.args[7]) else "relu"
    ffn = call.args[14].shape[0]
    batch = x.shape[0] if x.ndim == 3 else 1
    n = x.shape[-2]
    rows = batch * n
    seq = TShape((batch, heads, n, formulas.arith.exact_div(embed, heads)))

    def lin(i: Any, o: Any, name: str, role: str) -> Part:
        return Part.of(with_role(formulas.linear.linear_derivation(rows, i, o, True), role),
                       name=name,
                       layer="Linear")

    def add(name: str) -> Part:
        return Part.of(with_role(formulas.pointwise.elementwise_derivation(rows * embed),
                                 "residual add"),
                       name=name, layer="Add")

    def norm(name: str) -> Part:
        return Part.of(formulas.norm.layer_norm_derivation(rows, embed), name=name,
                       layer="LayerNorm")

    return [
        lin(embed, 3 * embed, "qkv", "q, k, v projections"),
        *_attention(call, seq, seq, seq, False, call.arg(18, "mask")),
        lin(embed, embed, "out_proj", "attention output projection"),
        add("add_1"),
        norm("norm1"),
        lin(embed, ffn, "linear1", "feed-forward, first layer"),
        Part.of(with_role(formulas.pointwise.activation_derivation(act, rows * ffn),
                      f"{act} of the hidden layer"), name="activation", layer=act.upper()),
        lin(ffn, embed, "linear2", "feed-forward, second layer"),
        add("add_2"),
        norm("norm2"),
    ]


@register(aten._scaled_dot_product_flash_attention_for_cpu_backward,
          aten._scaled_dot_product_efficient_attention_backward,
          aten._scaled_dot_product_flash_attention_backward,
          aten._scaled_dot_product_cudnn_attention_backward)
def _sdpa_backward(call: OpCall) -> list[Part]:
    """Attention backward: :func:`symflops.formulas.attention.attention_grad_derivations`."""
    q, k, v = call.args[1], call.args[2], call.args[3]
    batch = formulas.arith.prod(q.shape[:-3]) if q.ndim > 3 else 1
    parts = formulas.attention.attention_grad_derivations(batch, q.shape[-3], q.shape[-2],
                                                    k.shape[-2], q.shape[-1], v.shape[-1])
    return [Part.of(d, name=p) for p, d in parts.items()]
