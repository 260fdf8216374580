"""Convolutions, direct and transposed, and their gradients."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import (
    as_list,
    aten,
    one,
)
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__: list[str] = []


@register(aten.convolution, aten._convolution, aten.convolution_overrideable,
          aten._slow_conv2d_forward, aten.cudnn_convolution, aten.mkldnn_convolution)
def _conv(call: OpCall) -> list[Part]:
    """``aten.convolution(x, w, bias, stride, padding, dilation, transposed, out_pad, groups)``."""
    x, w, bias = call.args[0], call.args[1], call.args[2]
    n = x.ndim - 2
    stride, dilation = as_list(call.arg(3, "stride"), n), as_list(call.arg(5, "dilation"), n)
    transposed = bool(call.arg(6, "transposed", False))
    groups = call.arg(8, "groups", 1) if call.name != "_slow_conv2d_forward" else 1
    out = call.out[0].shape
    has_bias = isinstance(bias, TShape)
    batch, kernel = x.shape[0], w.shape[2:]
    if transposed:
        return one(formulas.conv.conv_transpose_derivation(
            batch, w.shape[0], w.shape[1] * groups, kernel, x.shape[2:], out[2:], stride,
            dilation, groups, has_bias))
    return one(formulas.conv.conv_derivation(batch, x.shape[1], w.shape[0], kernel, out[2:], groups,
                                         has_bias))


@register(aten.convolution_backward)
def _conv_backward(call: OpCall) -> list[Part]:
    """Gradients of a convolution, one part per requested output (``output_mask``):
    see :func:`symflops.formulas.conv.conv_grad_derivations` and, for a transposed
    convolution, :func:`symflops.formulas.conv.conv_transpose_grad_derivations`."""
    gy, x, w = call.args[0], call.args[1], call.args[2]
    n = x.ndim - 2
    stride, dilation = as_list(call.args[4], n), as_list(call.args[6], n)
    transposed, groups, mask = bool(call.args[7]), call.args[9], call.args[10]
    backward = formulas.conv.conv_transpose_grad_derivations if transposed else \
        formulas.conv.conv_grad_derivations
    parts = backward(x.shape[0], x.shape[1], gy.shape[1], w.shape[2:], x.shape[2:],
                     gy.shape[2:], stride, dilation, groups, mask)
    return [Part.of(d, name=name) for name, d in parts.items()]
