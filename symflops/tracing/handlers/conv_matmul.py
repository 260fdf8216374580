"""Convolutions and matrix products (and what ``linear``/``matmul``/``einsum`` decompose into)."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import as_list, aten, one
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


@register(aten.mm)
def _mm(call: OpCall) -> list[Part]:
    """``a (m x k) @ b (k x n)``: a linear layer without bias (or a plain matmul)."""
    a, b = call.args[0].shape, call.args[1].shape
    return one(formulas.linear.linear_derivation(a[0], a[1], b[1], False))


@register(aten.addmm)
def _addmm(call: OpCall) -> list[Part]:
    """``bias + a @ b``: a linear layer."""
    a, b = call.args[1].shape, call.args[2].shape
    return one(formulas.linear.linear_derivation(a[0], a[1], b[1], True))


@register(aten.bmm)
def _bmm(call: OpCall) -> list[Part]:
    """``batch`` products ``(m x k) @ (k x n)``."""
    a, b = call.args[0].shape, call.args[1].shape
    return one(formulas.linear.matmul_derivation(a[0], a[1], a[2], b[2]))


@register(aten.baddbmm)
def _baddbmm(call: OpCall) -> list[Part]:
    """``beta * self + alpha * (b1 @ b2)``: the products and one add per output."""
    a, b = call.args[1].shape, call.args[2].shape
    return one(formulas.linear.matmul_derivation(a[0], a[1], a[2], b[2], add_input=True))
