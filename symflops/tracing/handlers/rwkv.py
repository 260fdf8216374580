"""RWKV (transformers' ``RwkvForCausalLM``) symbolic in the sequence length.

On the CPU (and on fake tensors) transformers computes RWKV's WKV recurrence in
``rwkv_linear_attention_cpu`` as a Python loop ``for current_index in range(seq_length)``,
which fixes the length to its hint. While a model with RWKV layers is traced, that
function is replaced by :func:`_wkv` (put back after): the ops before the loop as
transformers runs them, the loop as one recorded op, ``symflops.wkv``, counted by
:func:`symflops.formulas.recurrent.wkv_derivation` (25 elementwise operations per token,
row and channel: the loop's own ops, the same count kind by kind), and the final state.

Only where it is that code: the function's fingerprint (its syntax tree without docstring
and decorators) must be in :data:`VERIFIED` (transformers 5.25).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

import torch

from symflops import formulas
from symflops.tracing.handlers._common import one
from symflops.tracing.handlers._fused import FusedOp, Note
from symflops.tracing.handlers.ssm import fingerprint
from symflops.tracing.registry import OpCall, Part, register

__all__ = ["FUSED_WKV", "VERIFIED", "rwkv_stand_in", "fingerprint"]

FUSED_WKV = FusedOp("wkv")
_MODULE = "transformers.models.rwkv.modeling_rwkv"
_FUNCTION = "rwkv_linear_attention_cpu"
#: fingerprints of ``rwkv_linear_attention_cpu`` that :func:`_wkv` reproduces
VERIFIED = frozenset({"26cd9425739d0ee9"})


def _verified() -> bool:
    module = sys.modules.get(_MODULE)
    if module is None:
        return False
    try:
        return fingerprint(getattr(module, _FUNCTION)) in VERIFIED
    except (OSError, TypeError, AttributeError, SyntaxError, ValueError):
        return False


@contextlib.contextmanager
def rwkv_stand_in(model: torch.nn.Module, note: Note) -> Iterator[None]:
    """``rwkv_linear_attention_cpu`` replaced by :func:`_wkv` while active, when ``model``
    has modules of transformers' RWKV and the function is the verified code."""
    uses = any(type(m).__module__ == _MODULE for m in model.modules())
    if not uses or not _verified():
        yield
        return
    module = sys.modules[_MODULE]
    original = module.__dict__[_FUNCTION]
    setattr(module, _FUNCTION, functools.partial(_wkv, note=note, original=original))
    try:
        yield
    finally:
        setattr(module, _FUNCTION, original)


def _wkv(time_decay: torch.Tensor, time_first: torch.Tensor, key: torch.Tensor,
         value: torch.Tensor, state: Any = None, return_state: bool = False, *,
         note: Note, original: Any) -> tuple[torch.Tensor, Any]:
    """``rwkv_linear_attention_cpu`` line for line, its loop recorded as one op (the
    state it starts from, given or empty, does not change what the loop computes)."""
    del original  # the same code: kept for symmetry with the other stand-ins
    output = torch.zeros_like(key)
    if state is None:
        num_state = torch.zeros_like(key[:, 0], dtype=torch.float32)
        den_state = torch.zeros_like(key[:, 0], dtype=torch.float32)
        max_state = torch.zeros_like(key[:, 0], dtype=torch.float32) - 1e38
    else:
        num_state, den_state, max_state = state
    time_decay = -torch.exp(time_decay)
    new = tuple(torch.empty_like(t) for t in (num_state, den_state, max_state))
    note(FUSED_WKV, (key, value, time_decay, time_first, num_state), (output, *new))
    if return_state or state is not None:
        return output, list(new)
    return output, None


@register(FUSED_WKV)
def _wkv_op(call: OpCall) -> list[Part]:
    """The WKV loop over ``T`` tokens of ``key`` ``(B, T, C)``:
    :func:`symflops.formulas.recurrent.wkv_derivation`."""
    batch, steps, channels = call.args[0].shape
    return one(formulas.recurrent.wkv_derivation(batch, steps, channels))
