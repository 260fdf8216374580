"""Built-in op handlers: each maps an aten op's arguments to its layer family's derivation.

The derivations (general formula per kind, bindings, explanation) live once, in
:mod:`symflops.formulas`, and ``sf.nn`` calls the same functions; a handler only reads
sizes off the op's arguments. Ops that decompose before reaching the dispatcher
(``aten.linear``, ``aten.matmul``, ``aten.einsum``) are counted through what they
decompose into (``addmm``, ``mm``, ``bmm``), which is exactly what runs.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

import torch

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.formulas import Derivation
from symflops.tracing.registry import OpCall, Part, TShape, register, register_zero_cost

aten = torch.ops.aten

__all__: list[str] = []


def _one(derivation: Derivation, **kw: Any) -> list[Part]:
    return [Part.of(derivation, **kw)]


def _as_list(v: Any, n: int) -> list[Any]:
    """An op's int-or-list argument as ``n`` values (``[k]`` and ``k`` repeat)."""
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v


def _role(derivation: Derivation, role: str) -> Derivation:
    """The derivation with what it does inside a fused op said first."""
    return replace(derivation, explanation=f"{role}: {derivation.explanation}")


# ----------------------------------------------------------------------------- conv
@register(aten.convolution, aten._convolution, aten.convolution_overrideable,
          aten._slow_conv2d_forward, aten.cudnn_convolution, aten.mkldnn_convolution)
def _conv(call: OpCall) -> list[Part]:
    """``aten.convolution(x, w, bias, stride, padding, dilation, transposed, out_pad, groups)``."""
    x, w, bias = call.args[0], call.args[1], call.args[2]
    n = x.ndim - 2
    stride, dilation = _as_list(call.arg(3, "stride"), n), _as_list(call.arg(5, "dilation"), n)
    transposed = bool(call.arg(6, "transposed", False))
    groups = call.arg(8, "groups", 1) if call.name != "_slow_conv2d_forward" else 1
    out = call.out[0].shape
    has_bias = isinstance(bias, TShape)
    batch, kernel = x.shape[0], w.shape[2:]
    if transposed:
        return _one(formulas.conv_transpose_derivation(
            batch, w.shape[0], w.shape[1] * groups, kernel, x.shape[2:], out[2:], stride,
            dilation, groups, has_bias))
    return _one(formulas.conv_derivation(batch, x.shape[1], w.shape[0], kernel, out[2:], groups,
                                         has_bias))


@register(aten.convolution_backward)
def _conv_backward(call: OpCall) -> list[Part]:
    """Gradients of a convolution, one part per requested output (``output_mask``):
    see :func:`symflops.formulas.conv_backward_derivations`."""
    gy, x, w = call.args[0], call.args[1], call.args[2]
    n = x.ndim - 2
    stride, dilation = _as_list(call.args[4], n), _as_list(call.args[6], n)
    transposed, groups, mask = bool(call.args[7]), call.args[9], call.args[10]
    if transposed:  # the forward was a transposed conv: roles of x and grad_output swap
        x, gy = gy, x
    parts = formulas.conv_backward_derivations(
        x.shape[0], x.shape[1], gy.shape[1], w.shape[2:], x.shape[2:], gy.shape[2:], stride,
        dilation, groups, mask)
    return [Part.of(d, name=name) for name, d in parts.items()]


# ----------------------------------------------------------------------------- matmul
@register(aten.mm)
def _mm(call: OpCall) -> list[Part]:
    """``a (m x k) @ b (k x n)``: a linear layer without bias (or a plain matmul)."""
    a, b = call.args[0].shape, call.args[1].shape
    return _one(formulas.linear_derivation(a[0], a[1], b[1], False))


@register(aten.addmm)
def _addmm(call: OpCall) -> list[Part]:
    """``bias + a @ b``: a linear layer."""
    a, b = call.args[1].shape, call.args[2].shape
    return _one(formulas.linear_derivation(a[0], a[1], b[1], True))


@register(aten.bmm)
def _bmm(call: OpCall) -> list[Part]:
    """``batch`` products ``(m x k) @ (k x n)``."""
    a, b = call.args[0].shape, call.args[1].shape
    return _one(formulas.matmul_derivation(a[0], a[1], a[2], b[2]))


@register(aten.baddbmm)
def _baddbmm(call: OpCall) -> list[Part]:
    """``beta * self + alpha * (b1 @ b2)``: the products and one add per output."""
    a, b = call.args[1].shape, call.args[2].shape
    return _one(formulas.matmul_derivation(a[0], a[1], a[2], b[2], add_input=True))


# ----------------------------------------------------------------------------- attention
def _attention(call: OpCall, q: TShape, k: TShape, v: TShape, causal: bool, mask: Any,
               note: str = "") -> list[Part]:
    batch = formulas.prod(q.shape[:-3]) if q.ndim > 3 else 1
    heads, n, d = q.shape[-3], q.shape[-2], q.shape[-1]
    s, dv = k.shape[-2], v.shape[-1]
    parts = formulas.attention_derivations(
        batch, heads, n, s, d, dv, causal=causal,
        custom_scale=call.kwargs.get("scale") is not None, note=note)
    out = [Part.of(der, name=p, layer="Attention" + p.capitalize()) for p, der in parts.items()]
    if isinstance(mask, TShape) and mask.dtype != "bool":
        out.insert(2, Part.of(formulas.attention_mask_derivation(batch, heads, n, s),
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
    hd = formulas.exact_div(embed, heads)
    qkv_bias = isinstance(call.args[6], TShape)
    proj_bias = isinstance(call.args[8], TShape)
    parts = [Part.of(formulas.attention_projection_derivation(batch, n, s, embed, qkv_bias),
                     name="qkv", layer="Linear")]
    kv = TShape((batch, heads, s, hd))
    parts += _attention(call, TShape((batch, heads, n, hd)), kv, kv, False,
                        call.arg(9, "mask"))
    parts.append(Part.of(_role(formulas.linear_derivation(batch * n, embed, embed, proj_bias),
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
    seq = TShape((batch, heads, n, formulas.exact_div(embed, heads)))

    def lin(i: Any, o: Any, name: str, role: str) -> Part:
        return Part.of(_role(formulas.linear_derivation(rows, i, o, True), role), name=name,
                       layer="Linear")

    def add(name: str) -> Part:
        return Part.of(_role(formulas.elementwise_derivation(rows * embed), "residual add"),
                       name=name, layer="Add")

    def norm(name: str) -> Part:
        return Part.of(formulas.layer_norm_derivation(rows, embed), name=name,
                       layer="LayerNorm")

    return [
        lin(embed, 3 * embed, "qkv", "q, k, v projections"),
        *_attention(call, seq, seq, seq, False, call.arg(18, "mask")),
        lin(embed, embed, "out_proj", "attention output projection"),
        add("add_1"),
        norm("norm1"),
        lin(embed, ffn, "linear1", "feed-forward, first layer"),
        Part.of(_role(formulas.activation_derivation(act, rows * ffn),
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
    """Attention backward: :func:`symflops.formulas.attention_backward_derivations`."""
    q, k, v = call.args[1], call.args[2], call.args[3]
    batch = formulas.prod(q.shape[:-3]) if q.ndim > 3 else 1
    parts = formulas.attention_backward_derivations(batch, q.shape[-3], q.shape[-2],
                                                    k.shape[-2], q.shape[-1], v.shape[-1])
    return [Part.of(d, name=p) for p, d in parts.items()]


# ----------------------------------------------------------------------------- norms
@register(aten.native_batch_norm, aten._native_batch_norm_legit,
          aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit_functional,
          aten.miopen_batch_norm, aten.cudnn_batch_norm)
def _batch_norm(call: OpCall) -> list[Part]:
    """BatchNorm: folded ``a x + b`` at inference, statistics in training (and, with
    running statistics, their update: a separate ``running_stats`` part)."""
    x, weight = call.args[0], call.args[1]
    running = False
    if call.name == "_native_batch_norm_legit_no_training":
        training = False
    elif call.name == "_native_batch_norm_legit" and len(call.args) == 6:
        training = bool(call.args[3])  # the no-stats overload
    else:
        training = bool(call.arg(5, "training", False))
        running = training and isinstance(call.arg(3, "running_mean"), TShape)
    ch = x.shape[1] if x.ndim > 1 else 1
    parts = _one(formulas.batch_norm_derivation(x.numel, ch, training=training,
                                                affine=isinstance(weight, TShape)))
    if running:
        parts.append(Part.of(formulas.running_stats_derivation(ch), name="running_stats"))
    return parts


@register(aten.native_layer_norm)
def _layer_norm(call: OpCall) -> list[Part]:
    """LayerNorm: statistics per row of ``dim`` (``5 dim + 2``), then the affine."""
    x, ns = call.args[0], call.args[1]
    return _one(formulas.layer_norm_derivation(
        formulas.prod(x.shape[:-len(ns)]), formulas.prod(x.shape[-len(ns):]),
        affine=isinstance(call.args[2], TShape), bias=isinstance(call.args[3], TShape)))


@register(aten.native_group_norm)
def _group_norm(call: OpCall) -> list[Part]:
    """GroupNorm: statistics per group, per-channel affine."""
    batch, ch, hw, groups = call.args[3], call.args[4], call.args[5], call.args[6]
    return _one(formulas.group_norm_derivation(batch, groups, ch, hw,
                                               affine=isinstance(call.args[1], TShape)))


@register(aten._fused_rms_norm, aten.rms_norm)
def _rms_norm(call: OpCall) -> list[Part]:
    """RMSNorm: ``3 dim + 2`` per row, then the weight."""
    x, ns = call.args[0], call.args[1]
    return _one(formulas.rms_norm_derivation(
        formulas.prod(x.shape[:-len(ns)]), formulas.prod(x.shape[-len(ns):]),
        affine=isinstance(call.arg(2, "weight"), TShape)))


# ----------------------------------------------------------------------------- pooling
#: pooling op -> (kind, spatial dims, position of ceil_mode in its schema)
_POOLS = {
    "max_pool1d": ("max", 1, 5), "max_pool1d_with_indices": ("max", 1, 5),
    "max_pool2d": ("max", 2, 5), "max_pool2d_with_indices": ("max", 2, 5),
    "max_pool3d": ("max", 3, 5), "max_pool3d_with_indices": ("max", 3, 5),
    "avg_pool1d": ("avg", 1, 4), "avg_pool2d": ("avg", 2, 4), "avg_pool3d": ("avg", 3, 4),
}


@register(aten.max_pool1d, aten.max_pool2d, aten.max_pool2d_with_indices, aten.max_pool3d,
          aten.max_pool3d_with_indices, aten.max_pool1d_with_indices, aten.avg_pool1d,
          aten.avg_pool2d, aten.avg_pool3d)
def _pool(call: OpCall) -> list[Part]:
    """Max pooling (``window - 1`` compares per output) and average pooling (``window - 1``
    adds and a divide). ``ceil_mode`` windows that stick out past the padded input count
    only their elements, on concrete and symbolic sizes alike."""
    kind, n, ceil_at = _POOLS[call.name]
    x, out = call.args[0], call.out[0]
    kernel = _as_list(call.args[1], n)
    stride = _as_list(call.arg(2, "stride", []) or kernel, n)
    padding = _as_list(call.arg(3, "padding", 0), n)
    dilation = _as_list(call.arg(4, "dilation", 1), n) if kind == "max" else [1] * n
    ceil_mode = bool(call.arg(ceil_at, "ceil_mode", False))
    return _one(formulas.pool_derivation(kind, formulas.prod(out.shape[:-n]), x.shape[-n:],
                                         out.shape[-n:], kernel, stride, padding, dilation,
                                         ceil_mode))


def _concrete_adaptive_output(op: str, outs: Any) -> None:
    """Adaptive windows over ``in`` elements into ``out`` outputs hold ``in + out -
    gcd(in, out)`` elements in all: with a symbolic output size that total has no exact
    formula here, so such a trace is an error rather than a guess."""
    if not all(isinstance(o, int) or getattr(o, "is_Integer", False) for o in outs):
        raise SymflopsError("adaptive pooling to an output size that follows the input "
                            "size has no exact count (its windows overlap by gcd(in, out))",
                            layer=f"aten.{op}", values={"output_size": tuple(outs)},
                            fix="give the adaptive pooling a fixed output size, or trace "
                                "at concrete sizes")


@register(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d,
          aten.adaptive_max_pool3d, aten.adaptive_max_pool1d)
def _adaptive_pool(call: OpCall) -> list[Part]:
    """Adaptive pooling: windows ``floor(i in/out) .. ceil((i+1) in/out)``, summed exactly."""
    x, out = call.args[0], call.out[0]
    n = len(call.args[1])
    planes, ins, outs = formulas.prod(x.shape[:-n]), x.shape[-n:], out.shape[-n:]
    _concrete_adaptive_output(call.name, outs)
    return _one(formulas.adaptive_pool_derivation("max" if "max" in call.name else "avg",
                                                  planes, ins, [int(o) for o in outs]))


# ----------------------------------------------------------------------------- pointwise
def _act(name: str) -> Any:
    formulas.activation_work(name, 1)  # an unknown name fails at registration

    def handler(call: OpCall) -> list[Part]:
        return _one(formulas.activation_derivation(name, call.out[0].numel))
    return handler


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
# ReLU6 is hardtanh(0, 6): two compares per element
register(aten.hardtanh, aten.hardtanh_)(_act("relu6"))


@register(aten.glu)
def _glu(call: OpCall) -> list[Part]:
    """GLU: ``a * sigmoid(b)`` of the two halves, 4 per output element."""
    return _one(formulas.glu_derivation(call.out[0].numel))


@register(aten.pixel_shuffle)
def _pixel_shuffle(call: OpCall) -> list[Part]:
    """Pixel shuffle: a reshape and a permute, no arithmetic."""
    return _one(formulas.pixel_shuffle_derivation())


@register(aten.pixel_unshuffle)
def _pixel_unshuffle(call: OpCall) -> list[Part]:
    """Pixel unshuffle: a reshape and a permute, no arithmetic."""
    return _one(formulas.pixel_shuffle_derivation(inverse=True))


@register(aten.gelu, aten.gelu_)
def _gelu(call: OpCall) -> list[Part]:
    """GELU, exact (erf) or tanh approximation."""
    name = "gelu_tanh" if call.kwargs.get("approximate", "none") == "tanh" else "gelu"
    return _one(formulas.activation_derivation(name, call.out[0].numel))


def _rows(x: TShape, dim: int) -> tuple[Any, Any]:
    """Rows and row length of a softmax-type op on ``x`` over ``dim``."""
    n = x.shape[dim] if x.ndim else 1
    return x.numel / n, n


@register(aten._softmax, aten._safe_softmax)
def _softmax(call: OpCall) -> list[Part]:
    """Softmax: ``5 n - 2`` per row of ``n``."""
    return _one(formulas.softmax_derivation(*_rows(call.args[0], call.args[1])))


@register(aten._log_softmax)
def _log_softmax(call: OpCall) -> list[Part]:
    """Log-softmax: ``5 n - 1`` per row of ``n``."""
    return _one(formulas.log_softmax_derivation(*_rows(call.args[0], call.args[1])))


def _elementwise(ops: int, what: str) -> Any:
    explanation = f"{what}: {ops} per output element"

    def handler(call: OpCall) -> list[Part]:
        numel = call.out[0].numel if call.out else 1
        return _one(formulas.elementwise_derivation(numel, ops, explanation))
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


@register(aten.native_dropout)
def _native_dropout(call: OpCall) -> list[Part]:
    """``native_dropout(x, p, train)``, as torch's decomposition computes it in training:
    ``rand > p`` (1), ``mask * x`` (1), ``* 1 / (1 - p)`` (1): 3 per element (drawing the
    random numbers is not arithmetic). With ``train`` false, ``p == 0`` or ``p == 1`` it
    returns the input or zeros: nothing to count."""
    p, train = call.arg(1, "p", 0.5), call.arg(2, "train", None)
    if not train or p == 0 or p == 1:
        return []
    return _one(formulas.elementwise_derivation(
        call.args[0].numel, 3, "dropout in training: the mask compare rand > p, the "
        "multiply by the mask and by 1/(1 - p): 3 per element"))


@register(aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.prod,
          aten.logsumexp, aten.var, aten.std, aten.var_mean, aten.std_mean, aten.norm,
          aten.linalg_vector_norm, aten.argmax, aten.argmin, aten.any, aten.all, aten.cumsum)
def _reduce(call: OpCall) -> list[Part]:
    """Reductions: :func:`symflops.formulas.reduction_derivation`."""
    x = call.args[0]
    if not isinstance(x, TShape):
        return []
    return _one(formulas.reduction_derivation(call.name, x.numel,
                                              call.out[0].numel if call.out else 1))


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
    return _one(formulas.interpolate_derivation(call.out[0].numel, mode))


@register(aten.embedding)
def _embedding(call: OpCall) -> list[Part]:
    """A table lookup: no arithmetic."""
    w = call.args[0]
    return _one(formulas.embedding_derivation(w.shape[0], w.shape[1]))


# ----------------------------------------------------------------------------- backward
# Each gradient counted op by op as torch's CPU kernel computes it (the formulas module
# spells each count out); a zero-filled gradient buffer is allocation, not arithmetic.
def _activation_grad(name: str) -> Any:
    if name not in formulas.ACTIVATION_GRAD_RATES:  # fail at import, not in a trace
        raise KeyError(name)

    def handler(call: OpCall) -> list[Part]:
        return _one(formulas.activation_grad_derivation(name, call.out[0].numel))
    return handler


register(aten.threshold_backward)(_activation_grad("relu"))
register(aten.hardtanh_backward)(_activation_grad("relu6"))
register(aten.silu_backward)(_activation_grad("silu"))
register(aten.sigmoid_backward)(_activation_grad("sigmoid"))
register(aten.tanh_backward)(_activation_grad("tanh"))
register(aten.hardswish_backward)(_activation_grad("hardswish"))
register(aten.hardsigmoid_backward)(_activation_grad("hardsigmoid"))
register(aten.leaky_relu_backward)(_activation_grad("leaky_relu"))


@register(aten.gelu_backward)
def _gelu_backward(call: OpCall) -> list[Part]:
    """GELU's gradient, exact (erf) or tanh approximation."""
    name = "gelu_tanh" if call.arg(2, "approximate", "none") == "tanh" else "gelu"
    return _one(formulas.activation_grad_derivation(name, call.out[0].numel))


@register(aten.elu_backward)
def _elu_backward(call: OpCall) -> list[Part]:
    """ELU's gradient, from the input or (``is_result``) from the output."""
    name = "elu_from_result" if bool(call.arg(4, "is_result", False)) else "elu"
    return _one(formulas.activation_grad_derivation(name, call.out[0].numel))


@register(aten._softmax_backward_data, aten._log_softmax_backward_data)
def _softmax_backward(call: OpCall) -> list[Part]:
    """Softmax and log-softmax gradients: ``4 N - 1`` per row of ``N``."""
    rows, n = _rows(call.args[1], call.args[2])
    return _one(formulas.softmax_grad_derivation(rows, n, log="log" in call.name))


@register(aten.glu_backward)
def _glu_backward(call: OpCall) -> list[Part]:
    """GLU's gradient per output element: ``s = sigmoid(b)`` (3), ``grad_a = g s`` (1),
    ``grad_b = (1 - s) s a g`` (4): 8."""
    return _one(formulas.elementwise_derivation(
        call.args[0].numel, 8, "GLU gradient: sigmoid of the gate (3), grad times it (1), "
        "(1 - s) s a grad (4): 8 per output element"))


@register(aten.native_layer_norm_backward)
def _layer_norm_backward(call: OpCall) -> list[Part]:
    """``native_layer_norm_backward(g, x, normalized_shape, mean, rstd, w, b, mask)``."""
    x, ns = call.args[1], call.args[2]
    parts = formulas.layer_norm_grad_derivations(
        formulas.prod(x.shape[:-len(ns)]), formulas.prod(x.shape[-len(ns):]),
        weight=isinstance(call.args[5], TShape), bias=isinstance(call.args[6], TShape),
        output_mask=tuple(bool(m) for m in call.args[7]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.native_batch_norm_backward)
def _batch_norm_backward(call: OpCall) -> list[Part]:
    """``native_batch_norm_backward(g, x, w, running_mean, running_var, save_mean,
    save_invstd, train, eps, mask)``: :func:`symflops.formulas.batch_norm_grad_derivations`."""
    x = call.args[1]
    parts = formulas.batch_norm_grad_derivations(
        x.numel, x.shape[1] if x.ndim > 1 else 1, training=bool(call.args[7]),
        weight=isinstance(call.args[2], TShape),
        output_mask=tuple(bool(m) for m in call.args[9]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.native_group_norm_backward)
def _group_norm_backward(call: OpCall) -> list[Part]:
    """``native_group_norm_backward(g, x, mean, rstd, w, N, C, HxW, group, mask)``."""
    parts = formulas.group_norm_grad_derivations(
        call.args[5], call.args[8], call.args[6], call.args[7],
        weight=isinstance(call.args[4], TShape),
        output_mask=tuple(bool(m) for m in call.args[9]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten._fused_rms_norm_backward)
def _rms_norm_backward(call: OpCall) -> list[Part]:
    """``_fused_rms_norm_backward(g, x, normalized_shape, rstd, w, mask)``."""
    x, ns = call.args[1], call.args[2]
    parts = formulas.rms_norm_grad_derivations(
        formulas.prod(x.shape[:-len(ns)]), formulas.prod(x.shape[-len(ns):]),
        weight=isinstance(call.args[4], TShape),
        output_mask=tuple(bool(m) for m in call.args[5]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.max_pool2d_with_indices_backward, aten.max_pool3d_with_indices_backward,
          aten.adaptive_max_pool2d_backward)
def _max_pool_backward(call: OpCall) -> list[Part]:
    """Max pooling's gradient: each output gradient added at its argmax."""
    return _one(formulas.scatter_grad_derivation(call.args[0].numel, "max pooling"))


@register(aten.avg_pool2d_backward, aten.avg_pool3d_backward)
def _avg_pool_backward(call: OpCall) -> list[Part]:
    """``avg_pool2d_backward(g, x, kernel, stride, padding, ceil_mode, ...)``: a divide per
    output gradient and an add into each input element of its window (padding and the
    part of a ceil_mode window past the input excluded, as torch's kernel skips them)."""
    n = 3 if call.name == "avg_pool3d_backward" else 2
    gy, x = call.args[0], call.args[1]
    kernel = [int(k) for k in _as_list(call.args[2], n)]
    stride = [int(s) for s in _as_list(call.arg(3, "stride", []) or kernel, n)]
    padding = [int(p) for p in _as_list(call.arg(4, "padding", 0), n)]
    if not any(padding) and not bool(call.arg(5, "ceil_mode", False)):
        return _one(formulas.avg_pool_grad_derivation(gy.numel, formulas.prod(kernel)))
    return _one(formulas.avg_pool_grad_derivation(
        gy.numel, formulas.prod(kernel), planes=formulas.prod(gy.shape[:-n]),
        in_spatial=x.shape[-n:], out_spatial=gy.shape[-n:], kernel=kernel, stride=stride,
        padding=padding))


@register(aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward)
def _adaptive_avg_pool_backward(call: OpCall) -> list[Part]:
    """Adaptive average pooling's gradient: a divide and one add per window element."""
    gy, x = call.args[0], call.args[1]
    n = 3 if "3d" in call.name else 2
    outs = gy.shape[-n:]
    _concrete_adaptive_output(call.name, outs)
    return _one(formulas.adaptive_avg_pool_grad_derivation(
        formulas.prod(x.shape[:-n]), x.shape[-n:], [int(o) for o in outs]))


@register(aten.upsample_nearest1d_backward, aten.upsample_nearest2d_backward,
          aten.upsample_nearest3d_backward, aten._upsample_nearest_exact2d_backward,
          aten.upsample_linear1d_backward, aten.upsample_bilinear2d_backward,
          aten.upsample_trilinear3d_backward, aten.upsample_bicubic2d_backward)
def _upsample_backward(call: OpCall) -> list[Part]:
    """Resize gradients: each output gradient spread over the neighbours it came from."""
    name = call.name
    mode = ("nearest" if "nearest" in name else "bicubic" if "bicubic" in name else
            "trilinear" if "trilinear" in name else "bilinear" if "bilinear" in name else
            "linear")
    return _one(formulas.interpolate_grad_derivation(call.args[0].numel, mode))


@register(aten.index_add, aten.index_add_)
def _index_add(call: OpCall) -> list[Part]:
    """``self.index_add(dim, index, source, alpha)``: one add per source element, and a
    multiply by ``alpha`` first when it is not 1."""
    source = call.args[3]
    ops = 1 if call.arg(4, "alpha", 1) == 1 else 2
    return _one(formulas.elementwise_derivation(
        source.numel, ops, f"accumulating indexed add: {ops} per source element"))


@register(aten.embedding_dense_backward)
def _embedding_backward(call: OpCall) -> list[Part]:
    """``embedding_dense_backward(grad, indices, num_weights, padding_idx, by_freq)``."""
    grad, indices = call.args[0], call.args[1]
    padding = call.arg(3, "padding_idx", -1) != -1
    derivation = formulas.embedding_backward_derivation(
        indices.numel, formulas.prod(grad.shape[indices.ndim:]),
        scale_grad_by_freq=bool(call.arg(4, "scale_grad_by_freq", False)), padding_idx=padding)
    # the kernel skips the rows of tokens equal to padding_idx: data a trace never sees
    notes = ("data-dependent: the embedding gradient skips tokens equal to padding_idx; "
             "counted as if none were",) if padding else ()
    return [Part.of(derivation, notes=notes)]


register(aten.native_dropout_backward)(_elementwise(
    2, "dropout gradient: the mask times the scale, times grad"))


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
    "reflection_pad2d", "replication_pad1d", "replication_pad2d",
    "channel_shuffle", "set_", "resize_", "_assert_async",
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
