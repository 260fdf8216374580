"""Linear recurrences transformers runs as Python loops over the tokens, symbolic in the
sequence length: RWKV's WKV (``RwkvForCausalLM``) and RecurrentGemma's RG-LRU scan.

On the CPU (and on fake tensors) transformers computes RWKV's WKV recurrence in
``rwkv_linear_attention_cpu`` as a Python loop ``for current_index in range(seq_length)``,
which fixes the length to its hint. While a model with RWKV layers is traced, that
function is replaced by :func:`_wkv` (put back after): the ops before the loop as
transformers runs them, the loop as one recorded op, ``symflops.wkv``, counted by
:func:`symflops.formulas.recurrent.wkv_derivation` (25 elementwise operations per token,
row and channel: the loop's own ops, the same count kind by kind), and the final state.

RecurrentGemma's ``RecurrentGemmaRglru._rnn_scan`` (a loop ``for t in range(seq_len)``)
is replaced per module (an instance attribute, removed after) by :func:`_rnn_scan`: the
same code with the loop as one op, ``symflops.linear_scan``
(:func:`symflops.formulas.recurrent.linear_scan_derivation`: a multiply and an add per
step and channel).

Only where it is that code: the function's fingerprint (its syntax tree without docstring
and decorators) must be in :data:`VERIFIED` (transformers 5.25).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch

from symflops import formulas
from symflops.tracing.handlers._common import one
from symflops.tracing.handlers._fused import FusedOp, Note
from symflops.tracing.handlers.ssm import fingerprint
from symflops.tracing.registry import OpCall, Part, register

__all__ = ["FUSED_WKV", "FUSED_SCAN", "VERIFIED", "rwkv_stand_in", "rglru_stand_ins",
           "fingerprint"]

FUSED_WKV = FusedOp("wkv")
FUSED_SCAN = FusedOp("linear_scan")
_RG_MODULE = "transformers.models.recurrent_gemma.modeling_recurrent_gemma"
_MODULE = "transformers.models.rwkv.modeling_rwkv"
_FUNCTION = "rwkv_linear_attention_cpu"
#: fingerprints of ``rwkv_linear_attention_cpu`` and ``RecurrentGemmaRglru._rnn_scan`` that
#: :func:`_wkv` and :func:`_rnn_scan` reproduce
VERIFIED = frozenset({"26cd9425739d0ee9", "9edb4941934fa987"})


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


def _loop(derivation: Any) -> Any:
    """The handler of a recorded loop whose first input is ``(B, T, C)``: ``derivation(B,
    T, C)``."""
    def handler(call: OpCall) -> list[Part]:
        batch, steps, channels = call.args[0].shape
        return one(derivation(batch, steps, channels))
    return handler


# the WKV loop over the T tokens of key (B, T, C)
register(FUSED_WKV)(_loop(formulas.recurrent.wkv_derivation))


@contextlib.contextmanager
def rglru_stand_ins(model: torch.nn.Module, note: Note) -> Iterator[None]:
    """Each RecurrentGemma RG-LRU of ``model`` scanning by :func:`_rnn_scan` while active,
    when its ``_rnn_scan`` is the verified code."""
    layers = [m for m in model.modules() if type(m).__name__ == "RecurrentGemmaRglru"
              and type(m).__module__ == _RG_MODULE and _scan_verified(m)]
    for m in layers:  # an instance attribute (nn.Module's __setattr__ keeps plain values)
        scan = types.MethodType(functools.partial(
            _rnn_scan, note=note, original=getattr(type(m), "_rnn_scan")), m)  # noqa: B009
        object.__setattr__(m, "_rnn_scan", scan)
    try:
        yield
    finally:
        for m in layers:
            m.__dict__.pop("_rnn_scan", None)


def _scan_verified(module: torch.nn.Module) -> bool:
    return _class_verified(type(module).__qualname__, type(module).__module__)


@functools.cache
def _class_verified(name: str, where: str) -> bool:
    try:
        return fingerprint(getattr(sys.modules[where], name)._rnn_scan) in VERIFIED
    except (OSError, TypeError, AttributeError, SyntaxError, ValueError, KeyError):
        return False


def _rnn_scan(self: Any, hidden_states: torch.Tensor, recurrent_gate: torch.Tensor,
              reset: torch.Tensor, recurrent_states: torch.Tensor | None,
              acc_dtype: torch.dtype = torch.float32, *, note: Note, original: Any
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``RecurrentGemmaRglru._rnn_scan`` over several tokens with the loop as one op (one
    token: the original, which has no loop)."""
    if hidden_states.shape[1] == 1:
        out: tuple[torch.Tensor, torch.Tensor] = original(
            self, hidden_states, recurrent_gate, reset, recurrent_states, acc_dtype)
        return out
    recurrent_gate = recurrent_gate * ~reset
    if recurrent_states is None:
        recurrent_states = torch.zeros(hidden_states[:, 0].shape, dtype=acc_dtype,
                                       device=hidden_states.device)
    contextualized_states = torch.zeros_like(hidden_states)
    last = torch.empty_like(recurrent_states)
    note(FUSED_SCAN, (hidden_states, recurrent_gate, recurrent_states),
         (contextualized_states, last))
    return contextualized_states, last


# the RG-LRU loop over the T steps of hidden_states (B, T, C)
register(FUSED_SCAN)(_loop(formulas.recurrent.linear_scan_derivation))
