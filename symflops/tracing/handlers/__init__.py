"""Built-in op handlers: each maps an aten op's arguments to its layer family's derivation.

The derivations (general formula per kind, bindings, explanation) live once, in
:mod:`symflops.formulas`, and ``sf.nn`` calls the same functions; a handler only reads
sizes off the op's arguments. Ops that decompose before reaching the dispatcher
(``aten.linear``, ``aten.matmul``, ``aten.einsum``) are counted through what they
decompose into (``addmm``, ``mm``, ``bmm``), which is exactly what runs.

The handlers live one family per module, named as the family's module in
:mod:`symflops.formulas` and :mod:`symflops.nn`, each with its gradients beside its
forward ops (``zero``: the ops that only move data); importing this package registers
them all.
"""

from __future__ import annotations

from symflops.tracing.handlers import (  # noqa: F401  (importing registers the handlers)
    attention,
    conv,
    detection,
    embedding,
    linear,
    linear_rnn,
    moe,
    norm,
    pointwise,
    pool,
    recurrent,
    resize,
    sampling,
    ssm,
    zero,
)

__all__ = ["describe"]


def describe() -> dict[str, list[str]]:
    """Names of every handled op and every zero-cost op (for documentation), as the
    registry holds them now (a later ``register`` or ``unregister`` shows)."""
    from symflops.tracing.registry import HANDLERS, ZERO_COST, op_name

    return {"counted": sorted(op_name(p) for p in HANDLERS),
            "zero_cost": sorted(op_name(p) for p in ZERO_COST)}
