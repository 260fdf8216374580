"""What every handler module shares: the aten namespace and small argument helpers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.tracing.registry import OpCall, Part, TShape

aten = torch.ops.aten

__all__ = ["aten", "one", "as_list", "with_role", "rows_of", "elementwise",
           "concrete_adaptive_output"]


def one(derivation: Derivation, **kw: Any) -> list[Part]:
    return [Part.of(derivation, **kw)]


def as_list(v: Any, n: int) -> list[Any]:
    """An op's int-or-list argument as ``n`` values (``[k]`` and ``k`` repeat)."""
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v


def with_role(derivation: Derivation, role: str) -> Derivation:
    """The derivation with what it does inside a fused op said first."""
    return replace(derivation, explanation=f"{role}: {derivation.explanation}")


def concrete_adaptive_output(op: str, outs: Any) -> None:
    """Adaptive windows over ``in`` elements into ``out`` outputs hold ``in + out -
    gcd(in, out)`` elements in all: with a symbolic output size that total has no exact
    formula here, so such a trace is an error rather than a guess."""
    if not all(isinstance(o, int) or getattr(o, "is_Integer", False) for o in outs):
        raise SymflopsError("adaptive pooling to an output size that follows the input "
                            "size has no exact count (its windows overlap by gcd(in, out))",
                            layer=f"aten.{op}", values={"output_size": tuple(outs)},
                            fix="give the adaptive pooling a fixed output size, or trace "
                                "at concrete sizes")


def rows_of(x: TShape, dim: int) -> tuple[Any, Any]:
    """Rows and row length of a softmax-type op on ``x`` over ``dim``."""
    n = x.shape[dim] if x.ndim else 1
    return x.numel / n, n


def elementwise(ops: int, what: str) -> Any:
    explanation = f"{what}: {ops} per output element"

    def handler(call: OpCall) -> list[Part]:
        numel = call.out[0].numel if call.out else 1
        return one(formulas.pointwise.elementwise_derivation(numel, ops, explanation))
    return handler
