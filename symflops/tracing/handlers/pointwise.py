"""Pointwise work and its gradients: activations, GLU, softmax, elementwise ops, dropout,
the indexed add."""

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


_ONE_OP = ["neg", "rsqrt", "sqrt", "exp", "log", "pow",
           "reciprocal", "abs", "clamp", "clamp_min", "clamp_max", "maximum", "minimum",
           "eq", "ne", "lt", "le", "gt", "ge", "sin", "cos", "erf", "exp2", "log2", "log1p",
           "expm1", "sign", "floor", "ceil", "round", "remainder", "fmod", "floor_divide",
           "rsub", "bitwise_and", "bitwise_or", "bitwise_not", "logical_and", "logical_or",
           "logical_not", "square", "atan2", "sgn", "trunc", "frac", "isnan", "threshold"]
for _name in _ONE_OP:
    _pk = [getattr(aten, n) for n in (_name, _name + "_") if hasattr(aten, n)]
    register(*_pk)(elementwise(1, f"pointwise {_name}"))


def _arith(name: str) -> Any:
    """add, sub, mul, div: 1 per element, or on complex tensors the real operations of
    :data:`symflops.formulas.pointwise.COMPLEX_RATES` (a complex multiply is 6)."""
    real = elementwise(1, f"pointwise {name}")

    def handler(call: OpCall) -> list[Part]:
        kinds = [a.dtype.startswith("complex") for a in call.args[:2] if isinstance(a, TShape)]
        if not any(kinds):
            return real(call)
        both = len(kinds) == 2 and all(kinds)
        rate = formulas.pointwise.complex_rate(name, both)
        return one(formulas.pointwise.elementwise_derivation(
            call.out[0].numel, rate, f"complex {name}: {rate} real operations per element"))
    return handler


for _name in ("add", "sub", "mul", "div"):
    register(*(getattr(aten, n) for n in (_name, _name + "_")))(_arith(_name))


@register(aten.polar)
def _polar(call: OpCall) -> list[Part]:
    """``polar(r, theta)``: a cosine, a sine and two multiplies per element."""
    rate = formulas.pointwise.POLAR_RATE
    return one(formulas.pointwise.elementwise_derivation(
        call.out[0].numel, rate, f"polar: r cos(theta), r sin(theta): {rate} per element"))
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


# ------------------------------------------------------------------ gradients
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


















@register(aten.index_add, aten.index_add_)
def _index_add(call: OpCall) -> list[Part]:
    """``self.index_add(dim, index, source, alpha)``: one add per source element, and a
    multiply by ``alpha`` first when it is not 1."""
    source = call.args[3]
    ops = 1 if call.arg(4, "alpha", 1) == 1 else 2
    return one(formulas.pointwise.elementwise_derivation(
        source.numel, ops, f"accumulating indexed add: {ops} per source element"))




@register(aten.native_dropout_backward)
def _dropout_backward(call: OpCall) -> list[Part]:
    """``native_dropout_backward(grad, mask, scale)``: 2 per element."""
    return one(formulas.pointwise.dropout_grad_derivation(call.out[0].numel))
