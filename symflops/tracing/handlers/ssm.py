"""Selective state spaces: transformers' ``MambaMixer`` symbolic in the sequence length.

transformers runs Mamba's scan on the CPU (and on fake tensors) as a Python loop ``for index
in range(seq_len)``: ``range`` needs an int, so torch fixes the length to its hint and the
whole trace holds at that one length. In a symbolic eval-mode trace each ``MambaMixer`` is
therefore run by :func:`_mixer_forward`, line for line the mixer's own forward,
``mamba_scan_forward`` (prefill) and ``mamba_selective_scan`` of the transformers version it
was written from, calling the module's own submodules and helpers (``in_proj``, the causal
convolution, ``x_proj``, ``dt_proj``, ``out_proj``), with only the loop replaced: the
recurrence is one op, ``symflops.selective_scan``, counted by
:func:`symflops.formulas.ssm.selective_scan_derivation` (per step the ``mul``, ``add`` and
``bmm`` the loop runs: the same count, kind by kind).

Models that copy that scan into their own modeling module (Jamba: the same
``mamba_scan_forward`` and ``mamba_selective_scan``, verified by the same fingerprints) get
the function itself replaced for the trace (:func:`_scan_forward`), and put back after.

It is used only where it is that code: the three functions' source (docstrings, comments and
decorators aside) must have the fingerprint recorded in :data:`VERIFIED` (transformers
5.25), the mixer must be in eval mode without mambapy, called without
a mask, extra arguments or a cache holding a previous state. Otherwise the mixer runs as
transformers wrote it (the length fixed, and said so in the report).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import inspect
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from symflops import formulas
from symflops.tracing.handlers._common import one
from symflops.tracing.handlers._fused import FusedOp, Note
from symflops.tracing.registry import OpCall, Part, register

__all__ = ["FUSED_SCAN", "VERIFIED", "fingerprint", "mamba_stand_ins", "stands_in"]

FUSED_SCAN = FusedOp("selective_scan")
_MODULE = "transformers.models.mamba.modeling_mamba"
_FUNCTIONS = ("mamba_scan_forward", "mamba_selective_scan")
#: fingerprints of (MambaMixer.forward, mamba_scan_forward, mamba_selective_scan) that
#: :func:`_mixer_forward` reproduces (transformers 5.25.0)
VERIFIED = frozenset({("90c079349235ef62", "c7b8c25ab21ed282", "427caf2f93101940")})


def _function(fn: Any) -> Any:
    """The Python function behind ``fn``: transformers wraps the functions a kernel may
    replace (``use_kernel_forward_from_hub``) into an ``nn.Module`` whose forward calls the
    function it closes over."""
    if isinstance(fn, torch.nn.Module):
        forward = type(fn).forward
        cells = dict(zip(forward.__code__.co_freevars, forward.__closure__ or (), strict=True))
        if "func" in cells:
            return cells["func"].cell_contents
    return inspect.unwrap(fn)


def fingerprint(fn: Any) -> str:
    """A hash of ``fn``'s code: its syntax tree without docstrings and decorators."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(_function(fn))))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.decorator_list = []
            body = node.body
            if body and isinstance(body[0], ast.Expr) and \
                    isinstance(body[0].value, ast.Constant) and \
                    isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


@functools.cache
def _verified(cls: Any) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is None or cls.__module__ != _MODULE:
        return False
    try:
        prints = (fingerprint(cls.forward),
                  *(fingerprint(getattr(module, name)) for name in _FUNCTIONS))
    except (OSError, TypeError, AttributeError, SyntaxError, ValueError):
        return False
    return prints in VERIFIED


def stands_in(module: torch.nn.Module) -> bool:
    """Whether a trace runs ``module`` by :func:`_mixer_forward`: a transformers
    ``MambaMixer`` whose code is the verified one, in eval mode, without mambapy."""
    cls: Any = type(module)
    # (use_associative_scan takes its branch only under torch.compile, never in a trace)
    return cls.__name__ == "MambaMixer" and cls.__module__ == _MODULE and \
        not module.training and not getattr(module, "use_mambapy", True) and _verified(cls)


@functools.cache
def _verified_scan_module(name: str) -> bool:
    """Whether the transformers modeling module ``name`` defines ``mamba_scan_forward``
    and ``mamba_selective_scan`` with the verified code (Jamba's copies are Mamba's)."""
    module = sys.modules.get(name)
    if module is None or not name.startswith("transformers.models.") or name == _MODULE:
        return False
    try:
        prints = tuple(fingerprint(getattr(module, f)) for f in _FUNCTIONS)
    except (OSError, TypeError, AttributeError, SyntaxError, ValueError):
        return False
    return any(prints == v[1:] for v in VERIFIED)


@contextlib.contextmanager
def mamba_stand_ins(model: torch.nn.Module, note: Note) -> Iterator[None]:
    """Each Mamba mixer of ``model`` run by :func:`_mixer_forward` while active (an
    instance attribute ``forward``, removed on exit); in the other transformers models
    whose modeling module carries the verified ``mamba_scan_forward`` (Jamba), that
    function replaced by :func:`_scan_forward` (put back on exit)."""
    mixers = [m for m in model.modules() if type(m).__name__ == "MambaMixer" and stands_in(m)]
    for m in mixers:
        original = type(m).forward
        m.forward = types.MethodType(functools.partial(_mixer_forward, note=note,
                                                       original=original), m)
    patched = {}
    for name in {type(m).__module__ for m in model.modules()}:
        if _verified_scan_module(name):
            module = sys.modules[name]
            patched[name] = module.__dict__["mamba_scan_forward"]
            setattr(module, "mamba_scan_forward", functools.partial(  # noqa: B010
                _scan_forward, note=note, original=patched[name]))
    try:
        yield
    finally:
        for m in mixers:
            m.__dict__.pop("forward", None)
        for name, function in patched.items():
            setattr(sys.modules[name], "mamba_scan_forward", function)  # noqa: B010


def _scan_forward(mixer: Any, hidden_states: torch.Tensor, time_step: torch.Tensor,
                  B: torch.Tensor, C: torch.Tensor, gate: torch.Tensor, cache: Any,
                  *, note: Note, original: Any, **kwargs: Any) -> torch.Tensor:
    """``mamba_scan_forward`` (eval, prefill: a fresh cache or none, no mambapy) with the
    scan's loop as one recorded op; anything else runs the original."""
    fresh = cache is None or (cache.get_recurrent_state(mixer.layer_idx, state_idx=0) is None
                              and cache.get_recurrent_states_to_keep(mixer.layer_idx) == 0)
    if kwargs or not fresh or mixer.training or getattr(mixer, "use_mambapy", False):
        return original(mixer, hidden_states, time_step, B, C, gate, cache, **kwargs)
    A = -torch.exp(mixer.A_log.float())
    bias = mixer.dt_proj.bias.float() if mixer.dt_proj.bias is not None else None
    scan_output, last_state = _selective_scan(hidden_states, time_step, A, B, C,
                                              mixer.D.float(), gate, bias, note)
    if cache is not None:
        cache.update_recurrent_state(last_state, mixer.layer_idx)
    return scan_output


def _mixer_forward(self: Any, hidden_states: torch.Tensor, cache: Any = None,
                   attention_mask: Any = None, *, note: Note, original: Any, **kwargs: Any
                   ) -> torch.Tensor:
    """``MambaMixer.forward`` (eval, prefill) with the scan's loop as one recorded op."""
    fresh = cache is None or (cache.get_recurrent_state(self.layer_idx, state_idx=0) is None
                              and cache.get_recurrent_states_to_keep(self.layer_idx) == 0)
    if attention_mask is not None or kwargs or not fresh or self.training:
        return original(self, hidden_states, cache, attention_mask, **kwargs)
    hf = sys.modules[_MODULE]
    dtype = hidden_states.dtype
    projected_states = self.in_proj(hidden_states).transpose(1, 2)
    _ = -torch.exp(self.A_log.float())  # the forward computes A here (and again below)
    hidden_states_B_C, gate = projected_states.chunk(2, dim=1)
    hidden_states_B_C = hf.causal_conv1d_forward(self.conv1d, hidden_states_B_C, cache,
                                                 self.layer_idx, activation=self.activation)
    hidden_states_B_C = hidden_states_B_C.transpose(1, 2)
    time_step, B, C = torch.split(self.x_proj(hidden_states_B_C),
                                  [self.time_step_rank, self.ssm_state_size,
                                   self.ssm_state_size], dim=-1)
    time_step = self.dt_proj.weight @ time_step.transpose(1, 2)
    # mamba_scan_forward, prefill without intermediate states
    A = -torch.exp(self.A_log.float())
    bias = self.dt_proj.bias.float() if self.dt_proj.bias is not None else None
    scan_output, last_state = _selective_scan(
        hidden_states_B_C.transpose(1, 2), time_step, A, B, C, self.D.float(), gate, bias,
        note)
    if cache is not None:
        cache.update_recurrent_state(last_state, self.layer_idx)
    out: torch.Tensor = self.out_proj(scan_output.transpose(1, 2).to(dtype))
    return out


def _selective_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    C: torch.Tensor, D: torch.Tensor, z: torch.Tensor, bias: Any, note: Note
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``mamba_selective_scan(..., delta_softplus=True)`` with the recurrence recorded."""
    batch, channels, steps = x.shape
    if bias is not None:
        dt = dt + bias.to(dt.dtype)[..., None]
    dt = F.softplus(dt)
    discrete_A = torch.exp(A[None, :, None, :] * dt[:, :, :, None])
    discrete_B = dt[:, :, :, None] * B[:, None, :, :].float()  # B, C arrive (batch, T, N)
    deltaB_u = discrete_B * x[:, :, :, None].float()
    scan = x.new_empty((batch, channels, steps))
    state = x.new_empty((batch, channels, A.shape[-1]))
    note(FUSED_SCAN, (discrete_A, deltaB_u, C), (scan, state))
    scan = scan + x * D[None, :, None]
    scan = scan * F.silu(z)
    return scan, state


@register(FUSED_SCAN)
def _selective_scan_op(call: OpCall) -> list[Part]:
    """The loop of Mamba's selective scan over ``T`` steps (``discrete_A`` is ``(B, D, T,
    N)``): :func:`symflops.formulas.ssm.selective_scan_derivation`."""
    batch, channels, steps, state = call.args[0].shape
    return one(formulas.ssm.selective_scan_derivation(batch, channels, steps, state))
