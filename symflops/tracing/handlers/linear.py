"""Matrix products: what ``linear``/``matmul``/``einsum`` decompose into (``mm``, ``addmm``,
``bmm``, ``baddbmm``); their gradients are the same products."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import (
    aten,
    one,
)
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []


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
