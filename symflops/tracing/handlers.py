"""Built-in op handlers: each aten op family calls the formula functions ``sf.nn`` uses.

Every handler states its count; the shared formulas carry the hand derivations
(see :mod:`symflops.formulas`). Ops that decompose before reaching the dispatcher
(``aten.linear``, ``aten.matmul``, ``aten.einsum``) are counted through what they
decompose into (``addmm``, ``mm``, ``bmm``), which is exactly what runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import sympy as sp
import torch

from symflops import formulas as F
from symflops import symbols as S
from symflops.errors import SymflopsError
from symflops.formulas import resize as R
from symflops.tracing.registry import OpCall, Part, TShape, register, register_zero_cost

aten = torch.ops.aten

__all__: list[str] = []

_SPATIAL_IN = {1: (S.T,), 2: (S.H, S.W), 3: (S.D, S.H, S.W)}
_SPATIAL_OUT = {1: (S.T_out,), 2: (S.H_out, S.W_out), 3: (S.D_out, S.H_out, S.W_out)}
_P = S.symbol("P")  # spatial positions of a group norm


def _ksyms(kernel: Sequence[Any]) -> tuple[sp.Symbol, ...]:
    if len(set(kernel)) == 1:
        return (S.K,) * len(kernel)
    names = {1: ("K_t",), 2: ("K_h", "K_w"), 3: ("K_d", "K_h", "K_w")}[len(kernel)]
    return tuple(S.symbol(x) for x in names)


def _prod(xs: Sequence[Any]) -> Any:
    return F.prod(xs)


def _one(work: dict[str, Any], general: dict[str, Any], bindings: dict[sp.Symbol, Any],
         explanation: str, **kw: Any) -> list[Part]:
    return [Part(work, general, bindings, explanation, **kw)]


# ----------------------------------------------------------------------------- conv
@register(aten.convolution, aten._convolution, aten.convolution_overrideable,
          aten._slow_conv2d_forward, aten.cudnn_convolution, aten.mkldnn_convolution)
def _conv(call: OpCall) -> list[Part]:
    """``aten.convolution(x, w, bias, stride, padding, dilation, transposed, out_pad, groups)``."""
    x, w, bias = call.args[0], call.args[1], call.args[2]
    stride, dilation = call.arg(3, "stride"), call.arg(5, "dilation")
    transposed = bool(call.arg(6, "transposed", False))
    groups = call.arg(8, "groups", 1) if call.name != "_slow_conv2d_forward" else 1
    out = call.out[0].shape
    has_bias = isinstance(bias, TShape)
    n = x.ndim - 2
    batch, kernel = x.shape[0], w.shape[2:]
    ks = _ksyms(kernel)
    stride = _pad_list(stride, n)
    dilation = _pad_list(dilation, n)
    if transposed:
        cin, cout = w.shape[0], w.shape[1] * groups
        wk, gen = _tconv(batch, cin, cout, kernel, ks, x.shape[2:], out[2:], stride,
                         dilation, groups, has_bias)
        b: dict[sp.Symbol, Any] = {S.B: batch, S.C_in: cin, S.C_out: cout, S.groups: groups}
        b.update(zip(ks, kernel, strict=True))
        b.update(zip(_SPATIAL_IN[n], x.shape[2:], strict=True))
        b.update(zip(_SPATIAL_OUT[n], out[2:], strict=True))
        return _one(wk, gen, b, "every input element times every weight of its group "
                    "(scatter); a position collecting n products costs n - 1 adds")
    cin, cout = x.shape[1], w.shape[0]
    wk = F.conv_work(batch, cin, cout, kernel, out[2:], groups, has_bias)
    gen = F.conv_work(S.B, S.C_in, S.C_out, ks, _SPATIAL_OUT[n], S.groups, has_bias)
    b = {S.B: batch, S.C_in: cin, S.C_out: cout, S.groups: groups}
    b.update(zip(ks, kernel, strict=True))
    b.update(zip(_SPATIAL_OUT[n], out[2:], strict=True))
    return _one(wk, gen, b, "each output: a dot product of C_in/groups*prod(kernel) products, "
                "its adds" + (", and one bias add" if has_bias else ""),
                general_params=F.conv_params(S.C_in, S.C_out, ks, S.groups, has_bias))


def _tconv(batch: Any, cin: Any, cout: Any, kernel: Sequence[Any], ks: Sequence[Any],
           ins: Sequence[Any], outs: Sequence[Any], stride: Sequence[Any],
           dilation: Sequence[Any], groups: Any, bias: bool,
           gin: Sequence[Any] | None = None, gout: Sequence[Any] | None = None,
           swap: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Work and general formula of a transposed conv; stride and dilation enter the
    general formula as this call's values (as in sf.nn): the covered-position count
    depends on how they divide one another."""
    n = len(kernel)
    gin = gin or _SPATIAL_IN[n]
    gout = gout or _SPATIAL_OUT[n]
    ci, co = (S.C_out, S.C_in) if swap else (S.C_in, S.C_out)
    wk = F.conv_transpose_work(batch, cin, cout, kernel, ins, outs, stride, dilation,
                               groups, bias)
    try:
        gen = F.conv_transpose_work(S.B, ci, co, ks, gin, gout, stride, dilation,
                                    S.groups, bias)
    except SymflopsError:  # enumerated covered positions: only this call's numbers
        gen = dict(wk)
    return wk, gen


def _pad_list(v: Any, n: int) -> list[Any]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v


@register(aten.convolution_backward)
def _conv_backward(call: OpCall) -> list[Part]:
    """Gradients of a convolution, one part per requested output (``output_mask``):
    ``grad_input`` is a transposed convolution of ``grad_output`` (same MACs as the
    forward), ``grad_weight`` one length-``B*prod(out)`` dot product per weight,
    ``grad_bias`` a sum over ``B*prod(out)`` per channel."""
    gy, x, w = call.args[0], call.args[1], call.args[2]
    stride, dilation = _pad_list(call.args[4], x.ndim - 2), _pad_list(call.args[6], x.ndim - 2)
    transposed, groups, mask = bool(call.args[7]), call.args[9], call.args[10]
    n = x.ndim - 2
    kernel = w.shape[2:]
    if transposed:  # the forward was a transposed conv: roles of x and grad_output swap
        x, gy = gy, x
    batch, cin, cout = x.shape[0], x.shape[1], gy.shape[1]
    outs, ins = gy.shape[2:], x.shape[2:]
    parts: list[Part] = []
    b = {S.B: batch, S.C_in: cin, S.C_out: cout, S.groups: groups}
    ks = _ksyms(kernel)
    b.update(zip(ks, kernel, strict=True))
    b.update(zip(_SPATIAL_OUT[n], outs, strict=True))
    b.update(zip(_SPATIAL_IN[n], ins, strict=True))
    if mask[0]:
        # grad_input = conv_transpose(grad_output): in = C_out channels at out spatial
        wk, gen = _tconv(batch, cout, cin, kernel, ks, outs, ins, stride, dilation, groups,
                         False, gin=_SPATIAL_OUT[n], gout=_SPATIAL_IN[n], swap=True)
        bi = b
        parts.append(Part(wk, gen, bi, "grad_input: a transposed convolution of grad_output "
                          "with the weight", name="grad_input"))
    if mask[1]:
        rows = S.B * _prod(_SPATIAL_OUT[n])
        gen = F.matmul_work(S.groups, S.C_out / S.groups, rows, S.C_in / S.groups * _prod(ks))
        wk = F.matmul_work(groups, F.exact_div(cout, groups), batch * _prod(outs),
                           F.exact_div(cin, groups) * _prod(kernel))
        parts.append(Part(wk, gen, b, "grad_weight: per weight a dot product of length "
                          "B*prod(out) (grad_output against the input window)",
                          name="grad_weight"))
    if mask[2]:
        gen = F.elementwise_work(S.C_out * (S.B * _prod(_SPATIAL_OUT[n]) - 1))
        wk = F.elementwise_work(cout * (batch * _prod(outs) - 1))
        parts.append(Part(wk, gen, b, "grad_bias: grad_output summed per channel",
                          name="grad_bias"))
    return parts


# ----------------------------------------------------------------------------- matmul
@register(aten.mm)
def _mm(call: OpCall) -> list[Part]:
    """``a (m x k) @ b (k x n)``: ``m n`` dot products of length ``k``."""
    a, b = call.args[0].shape, call.args[1].shape
    return _one(F.matmul_work(1, a[0], a[1], b[1]), F.matmul_work(1, S.M, S.I, S.O),
                {S.M: a[0], S.I: a[1], S.O: b[1]},
                "M*O dot products of length I (a linear layer without bias, or a matmul)",
                general_params=F.linear_params(S.I, S.O, False))


@register(aten.addmm)
def _addmm(call: OpCall) -> list[Part]:
    """``bias + a @ b``: a linear layer: ``linear_work(rows, I, O, bias=True)``."""
    a, b = call.args[1].shape, call.args[2].shape
    return _one(F.linear_work(a[0], a[1], b[1], True), F.linear_work(S.M, S.I, S.O, True),
                {S.M: a[0], S.I: a[1], S.O: b[1]},
                "each of the M*O outputs: a length-I dot product and one bias add",
                general_params=F.linear_params(S.I, S.O, True))


@register(aten.bmm)
def _bmm(call: OpCall) -> list[Part]:
    """``batch`` products ``(m x k) @ (k x n)``."""
    a, b = call.args[0].shape, call.args[1].shape
    return _one(F.matmul_work(a[0], a[1], a[2], b[2]), F.matmul_work(S.B, S.M, S.I, S.O),
                {S.B: a[0], S.M: a[1], S.I: a[2], S.O: b[2]},
                "B*M*O dot products of length I")


@register(aten.baddbmm)
def _baddbmm(call: OpCall) -> list[Part]:
    """``beta * self + alpha * (b1 @ b2)``: the products and one add per output."""
    a, b = call.args[1].shape, call.args[2].shape
    gen = F.add_work(F.matmul_work(S.B, S.M, S.I, S.O), {"bias": S.B * S.M * S.O})
    wk = F.add_work(F.matmul_work(a[0], a[1], a[2], b[2]), {"bias": a[0] * a[1] * b[2]})
    return _one(wk, gen, {S.B: a[0], S.M: a[1], S.I: a[2], S.O: b[2]},
                "B*M*O dot products of length I, then one add of the input per output")


# ----------------------------------------------------------------------------- attention
def _attention(q: TShape, k: TShape, v: TShape, causal: bool, mask: Any,
               explain_extra: str = "") -> list[Part]:
    batch = _prod(q.shape[:-3]) if q.ndim > 3 else 1
    heads, n, d = q.shape[-3], q.shape[-2], q.shape[-1]
    s, dv = k.shape[-2], v.shape[-1]
    parts = F.attention_parts(batch, heads, n, s, d, dv, causal=causal)
    gen = F.attention_parts(S.B, S.heads, S.N, S.S, S.head_dim, S.symbol("head_dim_v"),
                            causal=causal)
    b = {S.B: batch, S.heads: heads, S.N: n, S.S: s, S.head_dim: d,
         S.symbol("head_dim_v"): dv}
    explain = {
        "scores": "Q K^T: B*heads*N*S dot products of length head_dim",
        "scale": "scores times the scale: one multiply per score",
        "softmax": "softmax over each of B*heads*N rows of S scores (5S - 2 per row)",
        "context": "A V: B*heads*N*head_dim_v dot products of length S",
    }
    out = [Part(parts[p], gen[p], b, explain[p] + explain_extra, name=p,
                layer="Attention" + p.capitalize()) for p in parts]
    if isinstance(mask, TShape) and mask.dtype != "bool":
        out.insert(2, Part(F.elementwise_work(batch * heads * n * s),
                           F.elementwise_work(S.B * S.heads * S.N * S.S), b,
                           "an additive mask: one add per score", name="mask",
                           layer="AttentionMask"))
    return out


@register(aten._scaled_dot_product_flash_attention_for_cpu)
def _sdpa_cpu(call: OpCall) -> list[Part]:
    """The CPU SDPA kernel (FlopCounterMode counts 0 for it): full attention parts."""
    return _attention(call.args[0], call.args[1], call.args[2],
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
    return _attention(call.args[0], call.args[1], call.args[2],
                      bool(call.arg(causal_pos, "is_causal", False)), mask)


@register(aten.scaled_dot_product_attention)
def _sdpa(call: OpCall) -> list[Part]:
    """``aten.scaled_dot_product_attention`` when it reaches the dispatcher undecomposed."""
    return _attention(call.args[0], call.args[1], call.args[2],
                      bool(call.arg(5, "is_causal", False)), call.arg(3, "attn_mask"))


@register(aten._native_multi_head_attention)
def _mha_fast(call: OpCall) -> list[Part]:
    """nn.MultiheadAttention's inference fast path (FlopCounterMode counts 0 for it):
    the q/k/v projection, the attention parts and the output projection, as sf.nn."""
    q, k = call.args[0], call.args[1]
    embed, heads = call.args[3], call.args[4]
    batch = q.shape[0] if q.ndim == 3 else 1
    n, s = q.shape[-2], k.shape[-2]
    hd = F.exact_div(embed, heads)
    qkv_bias = isinstance(call.args[6], TShape)
    proj_bias = isinstance(call.args[8], TShape)
    qkv = F.add_work(F.linear_work(batch * n, embed, embed, qkv_bias),
                     F.linear_work(batch * s, embed, 2 * embed, qkv_bias))
    gen_qkv = F.add_work(F.linear_work(S.B * S.N, S.dim, S.dim, qkv_bias),
                         F.linear_work(S.B * S.S, S.dim, 2 * S.dim, qkv_bias))
    b = {S.B: batch, S.N: n, S.S: s, S.dim: embed}
    parts = [Part(qkv, gen_qkv, b, "q from N tokens, k and v from S tokens: length-dim dot "
                  "products", name="qkv", layer="Linear")]
    shp = TShape((batch, heads, n, hd))
    kv = TShape((batch, heads, s, hd))
    parts += _attention(shp, kv, kv, False, call.arg(9, "mask"))
    parts.append(Part(F.linear_work(batch * n, embed, embed, proj_bias),
                      F.linear_work(S.B * S.N, S.dim, S.dim, proj_bias), b,
                      "the output projection", name="out_proj", layer="Linear"))
    return parts


@register(aten._transformer_encoder_layer_fwd)
def _encoder_layer_fast(call: OpCall) -> list[Part]:
    """nn.TransformerEncoderLayer's inference fast path (FlopCounterMode counts 0 for it):
    the self-attention (as nn.MultiheadAttention's fast path), two residual adds, two
    LayerNorms and the feed-forward network (two linears and ReLU or GELU)."""
    x = call.args[0]
    embed, heads = call.args[1], call.args[2]
    use_gelu = bool(call.args[7])
    ffn = call.args[14].shape[0]
    batch = x.shape[0] if x.ndim == 3 else 1
    n = x.shape[-2]
    rows = batch * n
    hd = F.exact_div(embed, heads)
    b = {S.B: batch, S.N: n, S.dim: embed, S.symbol("ffn"): ffn}
    ff = S.symbol("ffn")

    def lin(i: Any, o: Any, gi: Any, go: Any, name: str, what: str) -> Part:
        return Part(F.linear_work(rows, i, o, True), F.linear_work(S.B * S.N, gi, go, True), b,
                    what, name=name, layer="Linear")

    act = "gelu" if use_gelu else "relu"
    parts = [lin(embed, 3 * embed, S.dim, 3 * S.dim, "qkv", "q, k, v projections")]
    seq = TShape((batch, heads, n, hd))
    parts += _attention(seq, seq, seq, False, call.arg(18, "mask"))
    parts += [
        lin(embed, embed, S.dim, S.dim, "out_proj", "attention output projection"),
        Part(F.elementwise_work(rows * embed), F.elementwise_work(S.B * S.N * S.dim), b,
             "residual add", name="add_1", layer="Add"),
        Part(F.layer_norm_work(rows, embed), F.layer_norm_work(S.B * S.N, S.dim), b,
             "LayerNorm (5 dim + 2 per row, then the affine)", name="norm1", layer="LayerNorm"),
        lin(embed, ffn, S.dim, ff, "linear1", "feed-forward, first layer"),
        Part(F.activation_work(act, rows * ffn), F.activation_work(act, S.B * S.N * ff), b,
             f"{act} of the hidden layer", name="activation", layer=act.upper()),
        lin(ffn, embed, ff, S.dim, "linear2", "feed-forward, second layer"),
        Part(F.elementwise_work(rows * embed), F.elementwise_work(S.B * S.N * S.dim), b,
             "residual add", name="add_2", layer="Add"),
        Part(F.layer_norm_work(rows, embed), F.layer_norm_work(S.B * S.N, S.dim), b,
             "LayerNorm (5 dim + 2 per row, then the affine)", name="norm2", layer="LayerNorm"),
    ]
    return parts


@register(aten._scaled_dot_product_flash_attention_for_cpu_backward,
          aten._scaled_dot_product_efficient_attention_backward,
          aten._scaled_dot_product_flash_attention_backward,
          aten._scaled_dot_product_cudnn_attention_backward)
def _sdpa_backward(call: OpCall) -> list[Part]:
    """Attention backward: four products (dV = A^T dO, dA = dO V^T, dQ = dS K, dK = dS^T Q),
    each as many MACs as a forward product (FlopCounterMode's count), plus the softmax
    gradient (4 per score: multiply, row-sum add, subtract, multiply)."""
    q, k, v = call.args[1], call.args[2], call.args[3]
    batch = _prod(q.shape[:-3]) if q.ndim > 3 else 1
    h, n, d, s, dv = q.shape[-3], q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    b = {S.B: batch, S.heads: h, S.N: n, S.S: s, S.head_dim: d, S.symbol("head_dim_v"): dv}
    dvs = S.symbol("head_dim_v")
    gens = {
        "grad_v": F.matmul_work(S.B * S.heads, S.S, S.N, dvs),
        "grad_probs": F.matmul_work(S.B * S.heads, S.N, dvs, S.S),
        "grad_softmax": F.elementwise_work(4 * S.B * S.heads * S.N * S.S),
        "grad_q": F.matmul_work(S.B * S.heads, S.N, S.S, S.head_dim),
        "grad_k": F.matmul_work(S.B * S.heads, S.S, S.N, S.head_dim),
    }
    explain = {"grad_v": "A^T dO", "grad_probs": "dO V^T",
               "grad_softmax": "softmax gradient: 4 per score", "grad_q": "dS K",
               "grad_k": "dS^T Q"}
    return [Part({kk: vv.xreplace(b) for kk, vv in g.items()}, g, b, explain[p], name=p)
            for p, g in gens.items()]


# ----------------------------------------------------------------------------- norms
@register(aten.native_batch_norm, aten._native_batch_norm_legit,
          aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit_functional,
          aten.miopen_batch_norm, aten.cudnn_batch_norm)
def _batch_norm(call: OpCall) -> list[Part]:
    """BatchNorm: folded ``a x + b`` at inference, statistics in training."""
    x, weight = call.args[0], call.args[1]
    if call.name == "_native_batch_norm_legit_no_training":
        training = False
    elif call.name == "_native_batch_norm_legit" and len(call.args) == 6:
        training = bool(call.args[3])  # the no-stats overload
    else:
        training = bool(call.arg(5, "training", False))
    affine = isinstance(weight, TShape)
    ch = x.shape[1] if x.ndim > 1 else 1
    wk = F.batch_norm_work(x.numel, ch, training=training, affine=affine)
    gen = F.batch_norm_work(S.M, S.C, training=training, affine=affine)
    return _one(wk, gen, {S.M: x.numel, S.C: ch},
                "inference: running statistics and affine folded into a*x + b, one multiply "
                "and one add per element" if not training else
                "training: per-channel mean and variance over M/C values, then the affine",
                general_params=F.norm_params(S.C, affine=affine))


@register(aten.native_layer_norm)
def _layer_norm(call: OpCall) -> list[Part]:
    """LayerNorm: statistics per row of ``dim`` (``5 dim + 2``), then the affine."""
    x, ns = call.args[0], call.args[1]
    affine, bias = isinstance(call.args[2], TShape), isinstance(call.args[3], TShape)
    n = _prod(x.shape[-len(ns):])
    rows = _prod(x.shape[:-len(ns)])
    return _one(F.layer_norm_work(rows, n, affine=affine, bias=bias),
                F.layer_norm_work(S.M, S.dim, affine=affine, bias=bias),
                {S.M: rows, S.dim: n},
                "per row of dim: mean, variance, rsqrt, normalize (5 dim + 2), then the affine",
                general_params=F.norm_params(S.dim, affine=affine, bias=bias))


@register(aten.native_group_norm)
def _group_norm(call: OpCall) -> list[Part]:
    """GroupNorm: statistics per group, per-channel affine."""
    weight = call.args[1]
    batch, ch, hw, groups = call.args[3], call.args[4], call.args[5], call.args[6]
    affine = isinstance(weight, TShape)
    return _one(F.group_norm_work(batch, groups, ch, hw, affine=affine),
                F.group_norm_work(S.B, S.groups, S.C, _P, affine=affine),
                {S.B: batch, S.groups: groups, S.C: ch, _P: hw},
                "statistics over each of B*groups groups of C/groups*P values, then the affine")


@register(aten._fused_rms_norm, aten.rms_norm)
def _rms_norm(call: OpCall) -> list[Part]:
    """RMSNorm: ``3 dim + 2`` per row, then the weight."""
    x, ns = call.args[0], call.args[1]
    affine = isinstance(call.arg(2, "weight"), TShape)
    n = _prod(x.shape[-len(ns):])
    rows = _prod(x.shape[:-len(ns)])
    return _one(F.rms_norm_work(rows, n, affine=affine),
                F.rms_norm_work(S.M, S.dim, affine=affine), {S.M: rows, S.dim: n},
                "per row of dim: squares, sum, mean, + eps, rsqrt, scale (3 dim + 2)")


# ----------------------------------------------------------------------------- pooling
def _pool_sizes(call: OpCall, n: int) -> tuple[list[Any], Any]:
    kernel = _pad_list(call.args[1], n)
    return kernel, _prod(kernel)


@register(aten.max_pool1d, aten.max_pool2d, aten.max_pool2d_with_indices, aten.max_pool3d,
          aten.max_pool3d_with_indices, aten.max_pool1d_with_indices)
def _max_pool(call: OpCall) -> list[Part]:
    """Max pooling: ``window - 1`` compares per output."""
    out = call.out[0]
    n = len(_pad_list(call.args[1], 1)) if isinstance(call.args[1], (list, tuple)) else 1
    n = {"max_pool1d": 1, "max_pool1d_with_indices": 1, "max_pool3d": 3,
         "max_pool3d_with_indices": 3}.get(call.name, 2)
    kernel, window = _pool_sizes(call, n)
    ks = _ksyms(kernel)
    planes = _prod(out.shape[:-n])
    gen = F.max_pool_work(S.M * _prod(_SPATIAL_OUT[n]), _prod(ks))
    b: dict[sp.Symbol, Any] = {S.M: planes}
    b.update(zip(ks, kernel, strict=True))
    b.update(zip(_SPATIAL_OUT[n], out.shape[-n:], strict=True))
    return _one(F.max_pool_work(out.numel, window), gen, b,
                "window - 1 compares per output; M = batch*channels planes")


@register(aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d)
def _avg_pool(call: OpCall) -> list[Part]:
    """Average pooling: ``window - 1`` adds and one divide per output."""
    out = call.out[0]
    n = {"avg_pool1d": 1, "avg_pool3d": 3}.get(call.name, 2)
    kernel, window = _pool_sizes(call, n)
    ks = _ksyms(kernel)
    gen = F.avg_pool_work(S.M * _prod(_SPATIAL_OUT[n]), _prod(ks))
    b: dict[sp.Symbol, Any] = {S.M: _prod(out.shape[:-n])}
    b.update(zip(ks, kernel, strict=True))
    b.update(zip(_SPATIAL_OUT[n], out.shape[-n:], strict=True))
    return _one(F.avg_pool_work(out.numel, window), gen, b,
                "window - 1 adds and one divide per output; M = batch*channels planes")


@register(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d,
          aten.adaptive_max_pool3d, aten.adaptive_max_pool1d)
def _adaptive_pool(call: OpCall) -> list[Part]:
    """Adaptive pooling: windows ``floor(i in/out) .. ceil((i+1) in/out)``, summed exactly."""
    x, out = call.args[0], call.out[0]
    is_max = "max" in call.name
    n = len(call.args[1])
    planes, ins, outs = _prod(x.shape[:-n]), x.shape[-n:], out.shape[-n:]
    if not all(isinstance(o, int) or getattr(o, "is_Integer", False) for o in outs):
        return _one({"pooling": planes * _prod(ins)}, {"pooling": S.M * _prod(_SPATIAL_IN[n])},
                    {S.M: planes, **dict(zip(_SPATIAL_IN[n], ins, strict=True))},
                    "symbolic output size: counted as one read of each input element")
    outs_i = [int(o) for o in outs]
    fn = F.adaptive_max_pool_work if is_max else F.adaptive_avg_pool_work
    wk = fn(planes, ins, outs_i)
    if all(o == 1 for o in outs_i):
        gen = fn(S.M, _SPATIAL_IN[n], outs_i)
        b: dict[sp.Symbol, Any] = {S.M: planes, **dict(zip(_SPATIAL_IN[n], ins, strict=True))}
        expl = "one window over the whole plane per output"
    else:
        gen, b = wk, {}
        expl = "windows from floor(i*in/out) to ceil((i+1)*in/out), summed exactly"
    return _one(wk, gen, b, expl)


# ----------------------------------------------------------------------------- pointwise
def _unary(kind_fn: Any, name: str, rate_text: str) -> Any:
    def handler(call: OpCall) -> list[Part]:
        numel = call.out[0].numel
        return _one(kind_fn(name, numel), kind_fn(name, S.M), {S.M: numel},
                    f"{rate_text} per element", rates={"activation": rate_text})
    return handler


def _act(name: str) -> Any:
    rate, why = F.ACTIVATION_RATES[name]
    return _unary(F.activation_work, name, f"{rate} ({why})")


register(aten.relu, aten.relu_)(_act("relu"))
register(aten.leaky_relu, aten.leaky_relu_)(_act("leaky_relu"))
register(aten.sigmoid, aten.sigmoid_)(_act("sigmoid"))
register(aten.tanh, aten.tanh_)(_act("tanh"))
register(aten.silu, aten.silu_)(_act("silu"))
register(aten.hardswish, aten.hardswish_)(_act("hardswish"))
register(aten.hardsigmoid, aten.hardsigmoid_)(_act("hardsigmoid"))
register(aten.elu, aten.elu_)(_act("elu"))
register(aten.softplus)(_act("softplus"))
register(aten.mish, aten.mish_)(_act("mish"))


@register(aten.hardtanh, aten.hardtanh_)
def _hardtanh(call: OpCall) -> list[Part]:
    """``hardtanh`` (``ReLU6`` is ``hardtanh(0, 6)``): two compares per element."""
    numel = call.out[0].numel
    name = "relu6"
    rate, why = F.ACTIVATION_RATES[name]
    return _one(F.activation_work(name, numel), F.activation_work(name, S.M), {S.M: numel},
                f"{rate} per element ({why})")


@register(aten.gelu, aten.gelu_)
def _gelu(call: OpCall) -> list[Part]:
    """GELU, exact (erf) or tanh approximation."""
    name = "gelu_tanh" if call.kwargs.get("approximate", "none") == "tanh" else "gelu"
    numel = call.out[0].numel
    rate, why = F.ACTIVATION_RATES[name]
    return _one(F.activation_work(name, numel), F.activation_work(name, S.M), {S.M: numel},
                f"{rate} per element ({why})")


@register(aten._softmax, aten._safe_softmax)
def _softmax(call: OpCall) -> list[Part]:
    """Softmax: ``5 n - 2`` per row of ``n``."""
    x, dim = call.args[0], call.args[1]
    n = x.shape[dim] if x.ndim else 1
    rows = x.numel / n
    return _one(F.softmax_work(rows, n), F.softmax_work(S.M, S.N), {S.M: rows, S.N: n},
                "per row of N: N - 1 compares, N subtracts, N exps, N - 1 adds, N divides")


@register(aten._log_softmax)
def _log_softmax(call: OpCall) -> list[Part]:
    """Log-softmax: ``5 n - 1`` per row of ``n``."""
    x, dim = call.args[0], call.args[1]
    n = x.shape[dim] if x.ndim else 1
    rows = x.numel / n
    return _one(F.log_softmax_work(rows, n), F.log_softmax_work(S.M, S.N),
                {S.M: rows, S.N: n}, "per row of N: max, subtract, exp, sum, log, subtract")


def _elementwise(ops: int, what: str) -> Any:
    def handler(call: OpCall) -> list[Part]:
        numel = call.out[0].numel if call.out else 1
        return _one(F.elementwise_work(numel, ops), F.elementwise_work(S.M, ops), {S.M: numel},
                    f"{what}: {ops} per output element")
    return handler


_ONE_OP = ["add", "sub", "mul", "div", "neg", "rsqrt", "sqrt", "exp", "log", "pow",
           "reciprocal", "abs", "clamp", "clamp_min", "clamp_max", "maximum", "minimum",
           "eq", "ne", "lt", "le", "gt", "ge", "sin", "cos", "erf", "exp2", "log2", "log1p",
           "expm1", "sign", "floor", "ceil", "round", "remainder", "fmod", "floor_divide",
           "rsub", "bitwise_and", "bitwise_or", "bitwise_not", "logical_and", "logical_or",
           "logical_not", "square", "atan2", "sgn", "trunc", "frac", "isnan", "threshold"]
for _name in _ONE_OP:
    _pk = [getattr(aten, n) for n in (_name, _name + "_") if hasattr(aten, n)]
    register(*_pk)(_elementwise(1, f"pointwise {_name}"))
register(aten.addcmul, aten.addcmul_, aten.addcdiv, aten.addcdiv_, aten.lerp,
         aten.lerp_)(_elementwise(2, "fused multiply-add"))
register(aten.native_dropout)(_elementwise(1, "dropout in training: one multiply by the "
                                           "scaled mask"))


@register(aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.prod,
          aten.logsumexp, aten.var, aten.std, aten.var_mean, aten.std_mean, aten.norm,
          aten.linalg_vector_norm, aten.argmax, aten.argmin, aten.any, aten.all, aten.cumsum)
def _reduce(call: OpCall) -> list[Part]:
    """Reductions: ``in - out`` adds or compares (+ one divide per output for a mean;
    variance-type reductions count 3 per input: subtract, square, add)."""
    x = call.args[0]
    if not isinstance(x, TShape):
        return []
    out = call.out[0].numel if call.out else 1
    name = call.name
    if name in ("var", "std", "var_mean", "std_mean", "norm", "linalg_vector_norm",
                "logsumexp"):
        m = S.symbol("M_out")
        return _one(F.elementwise_work(3 * x.numel), F.elementwise_work(3 * S.M),
                    {S.M: x.numel, m: out}, f"{name}: 3 per input element")
    if name == "cumsum":
        return _one(F.elementwise_work(x.numel), F.elementwise_work(S.M), {S.M: x.numel},
                    "cumsum: one add per element")
    mean = name == "mean"
    m = S.symbol("M_out")
    return _one(R.reduction_work(x.numel, out, mean=mean),
                R.reduction_work(S.M, m, mean=mean), {S.M: x.numel, m: out},
                f"{name}: M - M_out adds/compares" + (" and M_out divides" if mean else ""))


@register(aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d,
          aten._upsample_nearest_exact1d, aten._upsample_nearest_exact2d,
          aten._upsample_nearest_exact3d, aten.upsample_linear1d, aten.upsample_bilinear2d,
          aten.upsample_trilinear3d, aten.upsample_bicubic2d, aten._upsample_bilinear2d_aa,
          aten._upsample_bicubic2d_aa)
def _upsample(call: OpCall) -> list[Part]:
    """Interpolate/upsample: per output, a weighted sum of the neighbours (0 for nearest)."""
    name = call.name.lstrip("_")
    mode = ("nearest" if "nearest" in name else "bicubic" if "bicubic" in name else
            "trilinear" if "trilinear" in name else "bilinear" if "bilinear" in name else
            "linear")
    out = call.out[0].numel
    rate, why = R.INTERPOLATE_RATES[mode]
    return _one(R.interpolate_work(out, mode), R.interpolate_work(S.M, mode), {S.M: out},
                f"{mode}: {rate} per output ({why})")


@register(aten.embedding)
def _embedding(call: OpCall) -> list[Part]:
    """A table lookup: no arithmetic."""
    w = call.args[0]
    return _one({}, {}, {S.V: w.shape[0], S.dim: w.shape[1]}, "a table lookup: no arithmetic",
                general_params=S.V * S.dim)


# ----------------------------------------------------------------------------- backward
def _backward(ops: int, what: str) -> Any:
    return _elementwise(ops, what)


register(aten.threshold_backward)(_backward(1, "ReLU gradient: one select per element"))
register(aten.hardtanh_backward)(_backward(2, "hardtanh gradient: two compares"))
register(aten.gelu_backward)(_backward(8, "GELU gradient (erf, exp, products)"))
register(aten.silu_backward)(_backward(6, "SiLU gradient"))
register(aten.sigmoid_backward, aten.tanh_backward)(_backward(3, "gradient: 3 per element"))
register(aten.hardswish_backward, aten.hardsigmoid_backward,
         aten.leaky_relu_backward, aten.elu_backward)(_backward(3, "gradient: 3 per element"))
register(aten._softmax_backward_data, aten._log_softmax_backward_data)(
    _backward(4, "softmax gradient: multiply, row-sum add, subtract, multiply"))
register(aten.native_batch_norm_backward, aten.native_layer_norm_backward,
         aten.native_group_norm_backward, aten._fused_rms_norm_backward)(
    _backward(8, "norm gradient: two row sums and a fused update, 8 per element"))
register(aten.max_pool2d_with_indices_backward, aten.max_pool3d_with_indices_backward,
         aten.avg_pool2d_backward, aten.avg_pool3d_backward,
         aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward,
         aten.adaptive_max_pool2d_backward, aten.upsample_nearest2d_backward,
         aten.upsample_bilinear2d_backward, aten.upsample_nearest1d_backward,
         aten.upsample_nearest3d_backward, aten.upsample_linear1d_backward,
         aten.upsample_trilinear3d_backward, aten.upsample_bicubic2d_backward,
         aten._upsample_nearest_exact2d_backward)(
    _backward(1, "pooling/resize gradient: one add per input element"))
register(aten.index_add, aten.index_add_)(
    _backward(1, "accumulating indexed add: one add per element"))
register(aten.embedding_dense_backward)(_backward(1, "embedding gradient: one add per "
                                                    "gradient element"))
register(aten.native_dropout_backward)(_backward(1, "dropout gradient: one multiply"))


# ----------------------------------------------------------------------------- zero cost
# Data movement, views, allocation and selection: no arithmetic under any convention.
# (sort/topk compare elements, so they are not here: they are reported until counted.)
_ZERO = [
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t",
    "expand", "expand_as", "squeeze", "unsqueeze", "cat", "stack", "split", "split_with_sizes",
    "chunk", "slice", "select", "clone", "contiguous", "detach", "alias", "as_strided",
    "as_strided_",
    "copy", "copy_", "_to_copy", "to", "lift_fresh", "lift_fresh_copy", "empty", "empty_like",
    "empty_strided", "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full",
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "fill", "fill_", "zero_",
    "arange", "scalar_tensor", "index", "index_select", "gather", "masked_fill",
    "masked_fill_", "where", "tril", "triu", "tril_", "triu_", "constant_pad_nd", "flip",
    "roll", "repeat", "unbind", "narrow", "unfold", "im2col", "col2im", "_local_scalar_dense",
    "slice_scatter", "select_scatter", "index_put", "index_put_", "scatter", "scatter_",
    "embedding_dense_backward_unused", "diagonal", "view_as_real", "view_as_complex",
    "unsafe_split", "unsafe_chunk", "bernoulli", "bernoulli_", "rand", "randn", "rand_like",
    "randn_like", "uniform_", "normal_", "linspace", "_unsafe_index", "pad", "reflection_pad1d",
    "reflection_pad2d", "replication_pad1d", "replication_pad2d", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "set_", "resize_", "_assert_async",
    "_assert_scalar", "sym_constrain_range_for_size", "_functional_sym_constrain_range",
    "detach_", "t_", "transpose_", "squeeze_", "unsqueeze_", "_has_compatible_shallow_copy_type",
    "item", "_conj", "conj", "resolve_conj", "resolve_neg", "is_same_size", "masked_select",
    "nonzero", "one_hot", "_to_dense", "movedim", "swapaxes",
    "flatten", "unflatten", "_unsafe_index_put", "index_copy", "index_fill", "type_as",
    "_foreach_copy_", "alias_copy", "view_copy", "permute_copy", "split_copy",
    "select_backward", "slice_backward", "index_select_backward", "diagonal_backward",
    "unfold_backward", "as_strided_scatter",
]
register_zero_cost(*{getattr(aten, n) for n in _ZERO if hasattr(aten, n)})


@cache
def describe() -> dict[str, list[str]]:
    """Names of every handled op and every zero-cost op (for documentation)."""
    from symflops.tracing.registry import HANDLERS, ZERO_COST, op_name

    return {"counted": sorted(op_name(p) for p in HANDLERS),
            "zero_cost": sorted(op_name(p) for p in ZERO_COST)}
