"""Whole calls a symbolic trace counts at once, one level above aten: torch's recurrent
layers (``torch._VF.lstm``/``gru``: :mod:`.recurrent`) and transformers' Mamba mixer
(:mod:`.ssm`), whose loops over the sequence would fix its length.

:func:`fused_calls` is entered by the recording of a fake (symbolic) trace in eval mode;
each taken-over call returns outputs of the right symbolic shapes and notes one op, keyed by
a :class:`FusedOp` with its handler in the registry. Nothing stays on the model or in torch
when it exits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["FusedOp", "Note", "fused_calls"]

#: ``note(op, args, outputs)``: record one taken-over call
Note = Callable[["FusedOp", tuple[Any, ...], tuple[torch.Tensor, ...]], None]


class FusedOp:
    """The key of a whole call a trace records as one op (not an aten op): it names itself
    as an op packet does (``symflops.lstm``)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name
        self._qualified_op_name = f"symflops::{name}"

    def __repr__(self) -> str:
        return self._qualified_op_name


@contextlib.contextmanager
def fused_calls(model: torch.nn.Module, note: Note) -> Iterator[None]:
    """While active, ``model``'s LSTM/GRU calls, Mamba scans, RWKV's WKV loops and
    RecurrentGemma's RG-LRU scans are counted whole."""
    from symflops.tracing.handlers import linear_rnn, recurrent, ssm

    with contextlib.ExitStack() as stack:
        if recurrent.has_fused_recurrent(model):
            stack.enter_context(recurrent.FusedRecurrent(note))
        stack.enter_context(ssm.mamba_stand_ins(model, note))
        stack.enter_context(linear_rnn.rwkv_stand_in(model, note))
        stack.enter_context(linear_rnn.rglru_stand_ins(model, note))
        yield
