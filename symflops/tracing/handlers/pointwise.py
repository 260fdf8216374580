"""Pointwise work: activations, softmax, elementwise ops, dropout, reductions, resizing,
embedding lookups."""

from __future__ import annotations

from typing import Any

from symflops import formulas
from symflops.tracing.handlers._common import aten, elementwise, one, rows_of
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__: list[str] = []


def _act(name: str) -> Any:
    formulas.pointwise.activation_work(name, 1)  # an unknown name fails at registration

    def handler(call: OpCall) -> list[Part]:
        return one(formulas.pointwise.activation_derivation(name, call.out[0].numel))
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
    return one(formulas.pointwise.glu_derivation(call.out[0].numel))


@register(aten.pixel_shuffle)
def _pixel_shuffle(call: OpCall) -> list[Part]:
    """Pixel shuffle: a reshape and a permute, no arithmetic."""
    return one(formulas.resize.pixel_shuffle_derivation())


@register(aten.pixel_unshuffle)
def _pixel_unshuffle(call: OpCall) -> list[Part]:
    """Pixel unshuffle: a reshape and a permute, no arithmetic."""
    return one(formulas.resize.pixel_shuffle_derivation(inverse=True))


@register(aten.gelu, aten.gelu_)
def _gelu(call: OpCall) -> list[Part]:
    """GELU, exact (erf) or tanh approximation."""
    name = "gelu_tanh" if call.kwargs.get("approximate", "none") == "tanh" else "gelu"
    return one(formulas.pointwise.activation_derivation(name, call.out[0].numel))


@register(aten._softmax, aten._safe_softmax)
def _softmax(call: OpCall) -> list[Part]:
    """Softmax: ``5 n - 2`` per row of ``n``."""
    return one(formulas.pointwise.softmax_derivation(*rows_of(call.args[0], call.args[1])))


@register(aten._log_softmax)
def _log_softmax(call: OpCall) -> list[Part]:
    """Log-softmax: ``5 n - 1`` per row of ``n``."""
    return one(formulas.pointwise.log_softmax_derivation(*rows_of(call.args[0], call.args[1])))


_ONE_OP = ["add", "sub", "mul", "div", "neg", "rsqrt", "sqrt", "exp", "log", "pow",
           "reciprocal", "abs", "clamp", "clamp_min", "clamp_max", "maximum", "minimum",
           "eq", "ne", "lt", "le", "gt", "ge", "sin", "cos", "erf", "exp2", "log2", "log1p",
           "expm1", "sign", "floor", "ceil", "round", "remainder", "fmod", "floor_divide",
           "rsub", "bitwise_and", "bitwise_or", "bitwise_not", "logical_and", "logical_or",
           "logical_not", "square", "atan2", "sgn", "trunc", "frac", "isnan", "threshold"]
for _name in _ONE_OP:
    _pk = [getattr(aten, n) for n in (_name, _name + "_") if hasattr(aten, n)]
    register(*_pk)(elementwise(1, f"pointwise {_name}"))
register(aten.addcmul, aten.addcmul_, aten.addcdiv, aten.addcdiv_, aten.lerp,
         aten.lerp_)(elementwise(2, "fused multiply-add"))


@register(aten.native_dropout)
def _native_dropout(call: OpCall) -> list[Part]:
    """``native_dropout(x, p, train)``, as torch's decomposition computes it in training:
    ``rand > p`` (1), ``mask * x`` (1), ``* 1 / (1 - p)`` (1): 3 per element (drawing the
    random numbers is not arithmetic). With ``train`` false, ``p == 0`` or ``p == 1`` it
    returns the input or zeros: nothing to count."""
    p, train = call.arg(1, "p", 0.5), call.arg(2, "train", None)
    if not train or p == 0 or p == 1:
        return []
    return one(formulas.pointwise.dropout_derivation(call.args[0].numel))


@register(aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.prod,
          aten.logsumexp, aten.var, aten.std, aten.var_mean, aten.std_mean, aten.norm,
          aten.linalg_vector_norm, aten.argmax, aten.argmin, aten.any, aten.all, aten.cumsum)
def _reduce(call: OpCall) -> list[Part]:
    """Reductions: :func:`symflops.formulas.resize.reduction_derivation`."""
    x = call.args[0]
    if not isinstance(x, TShape):
        return []
    return one(formulas.resize.reduction_derivation(call.name, x.numel,
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
    return one(formulas.resize.interpolate_derivation(call.out[0].numel, mode))


@register(aten.embedding)
def _embedding(call: OpCall) -> list[Part]:
    """A table lookup: no arithmetic."""
    w = call.args[0]
    return one(formulas.embedding.embedding_derivation(w.shape[0], w.shape[1]))
