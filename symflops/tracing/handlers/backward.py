"""Backward ops that are not matmuls: activation, norm, pooling, resize and embedding gradients."""

from __future__ import annotations

from typing import Any

from symflops import formulas
from symflops.tracing.handlers._common import (
    as_list,
    aten,
    concrete_adaptive_output,
    one,
    rows_of,
)
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__: list[str] = []


# Each gradient counted op by op as torch's CPU kernel computes it (the formulas module
# spells each count out); a zero-filled gradient buffer is allocation, not arithmetic.
def _activation_grad(name: str) -> Any:
    if name not in formulas.pointwise.ACTIVATION_GRAD_RATES:  # fail at import, not in a trace
        raise KeyError(name)

    def handler(call: OpCall) -> list[Part]:
        return one(formulas.pointwise.activation_grad_derivation(name, call.out[0].numel))
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
    return one(formulas.pointwise.activation_grad_derivation(name, call.out[0].numel))


@register(aten.elu_backward)
def _elu_backward(call: OpCall) -> list[Part]:
    """ELU's gradient, from the input or (``is_result``) from the output."""
    name = "elu_from_result" if bool(call.arg(4, "is_result", False)) else "elu"
    return one(formulas.pointwise.activation_grad_derivation(name, call.out[0].numel))


@register(aten._softmax_backward_data, aten._log_softmax_backward_data)
def _softmax_backward(call: OpCall) -> list[Part]:
    """Softmax and log-softmax gradients: ``4 N - 1`` per row of ``N``."""
    rows, n = rows_of(call.args[1], call.args[2])
    return one(formulas.pointwise.softmax_grad_derivation(rows, n, log="log" in call.name))


@register(aten.glu_backward)
def _glu_backward(call: OpCall) -> list[Part]:
    """GLU's gradient: :func:`symflops.formulas.pointwise.glu_grad_derivation`."""
    return one(formulas.pointwise.glu_grad_derivation(call.args[0].numel))


@register(aten.native_layer_norm_backward)
def _layer_norm_backward(call: OpCall) -> list[Part]:
    """``native_layer_norm_backward(g, x, normalized_shape, mean, rstd, w, b, mask)``."""
    x, ns = call.args[1], call.args[2]
    parts = formulas.norm.layer_norm_grad_derivations(
        formulas.arith.prod(x.shape[:-len(ns)]), formulas.arith.prod(x.shape[-len(ns):]),
        weight=isinstance(call.args[5], TShape), bias=isinstance(call.args[6], TShape),
        output_mask=tuple(bool(m) for m in call.args[7]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.native_batch_norm_backward)
def _batch_norm_backward(call: OpCall) -> list[Part]:
    """``native_batch_norm_backward(g, x, w, running_mean, running_var, save_mean,
    save_invstd, train, eps, mask)``: :func:`symflops.formulas.norm.batch_norm_grad_derivations`."""
    x = call.args[1]
    parts = formulas.norm.batch_norm_grad_derivations(
        x.numel, x.shape[1] if x.ndim > 1 else 1, training=bool(call.args[7]),
        weight=isinstance(call.args[2], TShape),
        output_mask=tuple(bool(m) for m in call.args[9]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.native_group_norm_backward)
def _group_norm_backward(call: OpCall) -> list[Part]:
    """``native_group_norm_backward(g, x, mean, rstd, w, N, C, HxW, group, mask)``."""
    parts = formulas.norm.group_norm_grad_derivations(
        call.args[5], call.args[8], call.args[6], call.args[7],
        weight=isinstance(call.args[4], TShape),
        output_mask=tuple(bool(m) for m in call.args[9]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten._fused_rms_norm_backward)
def _rms_norm_backward(call: OpCall) -> list[Part]:
    """``_fused_rms_norm_backward(g, x, normalized_shape, rstd, w, mask)``."""
    x, ns = call.args[1], call.args[2]
    parts = formulas.norm.rms_norm_grad_derivations(
        formulas.arith.prod(x.shape[:-len(ns)]), formulas.arith.prod(x.shape[-len(ns):]),
        weight=isinstance(call.args[4], TShape),
        output_mask=tuple(bool(m) for m in call.args[5]))  # type: ignore[arg-type]
    return [Part.of(d, name=name) for name, d in parts.items()]


@register(aten.max_pool2d_with_indices_backward, aten.max_pool3d_with_indices_backward,
          aten.adaptive_max_pool2d_backward)
def _max_pool_backward(call: OpCall) -> list[Part]:
    """Max pooling's gradient: each output gradient added at its argmax."""
    return one(formulas.pool.scatter_grad_derivation(call.args[0].numel, "max pooling"))


@register(aten.avg_pool2d_backward, aten.avg_pool3d_backward)
def _avg_pool_backward(call: OpCall) -> list[Part]:
    """``avg_pool2d_backward(g, x, kernel, stride, padding, ceil_mode, ...)``: a divide per
    output gradient and an add into each input element of its window (padding and the
    part of a ceil_mode window past the input excluded, as torch's kernel skips them)."""
    n = 3 if call.name == "avg_pool3d_backward" else 2
    gy, x = call.args[0], call.args[1]
    kernel = [int(k) for k in as_list(call.args[2], n)]
    stride = [int(s) for s in as_list(call.arg(3, "stride", []) or kernel, n)]
    padding = [int(p) for p in as_list(call.arg(4, "padding", 0), n)]
    if not any(padding) and not bool(call.arg(5, "ceil_mode", False)):
        return one(formulas.pool.avg_pool_grad_derivation(gy.numel, formulas.arith.prod(kernel)))
    return one(formulas.pool.avg_pool_grad_derivation(
        gy.numel, formulas.arith.prod(kernel), planes=formulas.arith.prod(gy.shape[:-n]),
        in_spatial=x.shape[-n:], out_spatial=gy.shape[-n:], kernel=kernel, stride=stride,
        padding=padding))


@register(aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward)
def _adaptive_avg_pool_backward(call: OpCall) -> list[Part]:
    """Adaptive average pooling's gradient: a divide and one add per window element."""
    gy, x = call.args[0], call.args[1]
    n = 3 if "3d" in call.name else 2
    outs = gy.shape[-n:]
    concrete_adaptive_output(call.name, outs)
    return one(formulas.pool.adaptive_avg_pool_grad_derivation(
        formulas.arith.prod(x.shape[:-n]), x.shape[-n:], [int(o) for o in outs]))


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
    return one(formulas.resize.interpolate_grad_derivation(call.args[0].numel, mode))


@register(aten.index_add, aten.index_add_)
def _index_add(call: OpCall) -> list[Part]:
    """``self.index_add(dim, index, source, alpha)``: one add per source element, and a
    multiply by ``alpha`` first when it is not 1."""
    source = call.args[3]
    ops = 1 if call.arg(4, "alpha", 1) == 1 else 2
    return one(formulas.pointwise.elementwise_derivation(
        source.numel, ops, f"accumulating indexed add: {ops} per source element"))


@register(aten.embedding_dense_backward)
def _embedding_backward(call: OpCall) -> list[Part]:
    """``embedding_dense_backward(grad, indices, num_weights, padding_idx, by_freq)``."""
    grad, indices = call.args[0], call.args[1]
    padding = call.arg(3, "padding_idx", -1) != -1
    derivation = formulas.embedding.embedding_grad_derivation(
        indices.numel, formulas.arith.prod(grad.shape[indices.ndim:]),
        scale_grad_by_freq=bool(call.arg(4, "scale_grad_by_freq", False)), padding_idx=padding)
    # the kernel skips the rows of tokens equal to padding_idx: data a trace never sees
    notes = ("data-dependent: the embedding gradient skips tokens equal to padding_idx; "
             "counted as if none were",) if padding else ()
    return [Part.of(derivation, notes=notes)]


@register(aten.native_dropout_backward)
def _dropout_backward(call: OpCall) -> list[Part]:
    """``native_dropout_backward(grad, mask, scale)``: 2 per element."""
    return one(formulas.pointwise.dropout_grad_derivation(call.out[0].numel))
