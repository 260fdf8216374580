"""Embedding lookups and their gradient."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import (
    aten,
    one,
)
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []


@register(aten.embedding)
def _embedding(call: OpCall) -> list[Part]:
    """A table lookup: no arithmetic."""
    w = call.args[0]
    return one(formulas.embedding.embedding_derivation(w.shape[0], w.shape[1]))


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
