"""Pooling: windowed and adaptive."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import as_list, aten, concrete_adaptive_output, one
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []


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
    kernel = as_list(call.args[1], n)
    stride = as_list(call.arg(2, "stride", []) or kernel, n)
    padding = as_list(call.arg(3, "padding", 0), n)
    dilation = as_list(call.arg(4, "dilation", 1), n) if kind == "max" else [1] * n
    ceil_mode = bool(call.arg(ceil_at, "ceil_mode", False))
    return one(formulas.pool.pool_derivation(kind, formulas.arith.prod(out.shape[:-n]),
                                             x.shape[-n:],
                                         out.shape[-n:], kernel, stride, padding, dilation,
                                         ceil_mode))


@register(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d,
          aten.adaptive_max_pool3d, aten.adaptive_max_pool1d)
def _adaptive_pool(call: OpCall) -> list[Part]:
    """Adaptive pooling: windows ``floor(i in/out) .. ceil((i+1) in/out)``, summed exactly."""
    x, out = call.args[0], call.out[0]
    n = len(call.args[1])
    planes, ins, outs = formulas.arith.prod(x.shape[:-n]), x.shape[-n:], out.shape[-n:]
    concrete_adaptive_output(call.name, outs)
    return one(formulas.pool.adaptive_pool_derivation("max" if "max" in call.name else "avg",
                                                  planes, ins, [int(o) for o in outs]))


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
