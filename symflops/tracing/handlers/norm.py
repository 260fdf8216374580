"""Normalizations: batch, layer, group and RMS norm."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import aten, one
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__: list[str] = []


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
    parts = one(formulas.norm.batch_norm_derivation(x.numel, ch, training=training,
                                                affine=isinstance(weight, TShape)))
    if running:
        parts.append(Part.of(formulas.norm.running_stats_derivation(ch), name="running_stats"))
    return parts


@register(aten.native_layer_norm)
def _layer_norm(call: OpCall) -> list[Part]:
    """LayerNorm: statistics per row of ``dim`` (``5 dim + 2``), then the affine."""
    x, ns = call.args[0], call.args[1]
    return one(formulas.norm.layer_norm_derivation(
        formulas.arith.prod(x.shape[:-len(ns)]), formulas.arith.prod(x.shape[-len(ns):]),
        affine=isinstance(call.args[2], TShape), bias=isinstance(call.args[3], TShape)))


@register(aten.native_group_norm)
def _group_norm(call: OpCall) -> list[Part]:
    """GroupNorm: statistics per group, per-channel affine."""
    batch, ch, hw, groups = call.args[3], call.args[4], call.args[5], call.args[6]
    return one(formulas.norm.group_norm_derivation(batch, groups, ch, hw,
                                               affine=isinstance(call.args[1], TShape)))


@register(aten._fused_rms_norm, aten.rms_norm)
def _rms_norm(call: OpCall) -> list[Part]:
    """RMSNorm: ``3 dim + 2`` per row, then the weight."""
    x, ns = call.args[0], call.args[1]
    return one(formulas.norm.rms_norm_derivation(
        formulas.arith.prod(x.shape[:-len(ns)]), formulas.arith.prod(x.shape[-len(ns):]),
        affine=isinstance(call.arg(2, "weight"), TShape)))


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


@register(aten._weight_norm_interface)
def _weight_norm(call: OpCall) -> list[Part]:
    """Weight normalization's fused kernel, ``w = v * (g / ||v||)`` with the norm over
    every dim but ``dim`` (``nn.utils.weight_norm``; wav2vec2's positional conv), counted
    as torch's decomposition of it computes it: the norm (a reduction of ``v`` to one value
    per slice, the second output), ``g / norm`` per slice and ``v * (g / norm)`` per
    element of ``v``."""
    v, norms = call.args[0], call.out[1].numel
    return [Part.of(formulas.resize.reduction_derivation("norm", v.numel, norms), name="norm"),
            Part.of(formulas.pointwise.elementwise_derivation(
                norms, 1, "g / norm: one divide per slice"), name="scale"),
            Part.of(formulas.pointwise.elementwise_derivation(
                v.numel, 1, "v * (g / norm): one multiply per element"), name="weight")]
