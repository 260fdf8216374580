"""``trace()``: check the arguments, run the trace (:mod:`._run`), fall back to the
fitted polynomial when asked, and return the aligned form when asked."""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from symflops.conventions import Convention, get_convention
from symflops.cost import Cost
from symflops.errors import (
    SymbolicShapesFailed,
    SymflopsError,
    SymflopsWarning,
    TimeBudgetSpent,
)
from symflops.tracing import _guard
from symflops.tracing._assembly import TracedCost
from symflops.tracing._cache import default_hint, parse_past, position_limit
from symflops.tracing._data_dependent import check_option
from symflops.tracing._fit import fit
from symflops.tracing._inputs import (
    DEFAULT_HINTS,
    DEFAULT_TIME_BUDGET,
    TraceContext,
    check_model_and_mode,
    checked_budget,
    dim_names,
    ids_by_position,
    parse_inputs,
)
from symflops.tracing._recording import model_device
from symflops.tracing._run import run
from symflops.tracing._serial import serialized
from symflops.tracing.handlers.attention import SKIPPED_NOTE
from symflops.tracing.input_size import refuse_fixed_size

__all__ = ["trace"]


@serialized
def trace(model: torch.nn.Module, inputs: Any, hints: Mapping[str, int] | None = None, *,
          convention: str | Convention = "exact", mode: str = "eval", strict: bool = False,
          warn: bool = True, real: bool = False, fallback: str | None = None,
          time_budget: float | None = DEFAULT_TIME_BUDGET, skip_masked: bool = False,
          past: int | str | None = None,
          data_dependent: Mapping[str, Any] | None = None, paths: str = "one") -> Cost:
    """Trace ``model`` on symbolic fake inputs into a Cost tree in the named dims.

    ``inputs``: ``"B 3 H W"``, ``("B", 3, "H", "W")``, a list of those (positional
    inputs), a dict ``{name: spec}`` (keyword inputs; ``input_ids``-like names are int64),
    or ``(spec, torch.long)`` for a dtype. ``hints``: example sizes (defaults: B=2,
    H=W=224, N=T=S=128, others 64; a hint of 1 is traced at 2, since torch would pin a
    dim of size 1). ``real=True`` (concrete sizes only) runs the model on
    real random tensors instead of fake ones, for data-dependent control flow.
    ``mode="train"`` traces forward and backward. ``fallback="fit"``: when torch cannot
    run the model on symbolic shapes, return :func:`symflops.tracing.fit`'s exact fitted
    polynomial instead of raising (with a warning saying so).
    Ops without a handler are reported (``cost.notes``, a warning, ``.report``) and
    counted as 0; ``strict=True`` raises instead. The aligned (floor-free) form is
    :func:`symflops.analysis.aligned` of the result.
    ``time_budget``: seconds the trace may take (default 300; ``None``: no limit),
    checked at every op and every guard torch evaluates; when spent, a SymflopsError
    naming the fixes, or with ``fallback="fit"`` the fitted polynomial (the fit gets a
    budget of its own). ``skip_masked=True`` counts causal attention as its unmasked half
    (query-key pairs ``j <= i``, diagonal included, exact), as kernels that skip masked
    blocks compute it: it applies to scaled-dot-product kernels called with
    ``is_causal=True`` and no mask (a model on the CPU; on the meta device SDPA runs its
    math path with an explicit mask, counted dense, and a warning says so); forward only.
    ``past="T"`` (or an int): a decode step of a transformers decoder whose KV cache (a
    ``DynamicCache``) holds ``T`` tokens per sequence; the inputs are the new tokens
    (``{"input_ids": ("B", 1)}``); the domain gets ``T + n <= max_position_embeddings``
    (:mod:`symflops.tracing._cache`; example size of ``T``: 128, or less to fit that).
    ``data_dependent``: names for the sizes an op reads from the data (``nonzero``, NMS):
    each is a symbol of its own (default ``n1, n2, ...`` in the order the model makes
    them), bounded where the op bounds it; ``{"R": "rpn"}`` names the first size of
    module ``rpn``'s first output, ``{"R": "n2"}`` the second count, ``{"R": ("rpn",
    300)}`` also decides the model's branches on the counts made inside ``rpn`` at 300
    (default: everything kept); the branches taken are conditions of the formula
    (see ``docs/detection.md``).
    ``paths="all"``: trace the model past each bound of the domain where its code takes
    another path and join the pieces into one Piecewise Cost
    (:func:`symflops.tracing.pieces.trace_pieces`, which has the options).

    The model is never modified: it runs through ``torch.func.functional_call`` on fake
    copies of its parameters and buffers (``real=True``: real copies); a write to any
    other tensor (an attribute, a global) goes to a copy; every module's attributes,
    parameters, buffers, grads, hooks and the RNGs (torch, ``random``, numpy) are put
    back, also when the trace fails. User hooks (per-module and global, forward and
    backward) do not run during a trace and stay registered as they were; torch's
    legacy ``weight_norm``/``spectral_norm`` and ``prune`` pre-hooks run, since they
    compute the weight.
    Lazy modules (``LazyLinear``) must be initialized by one real call first.

    >>> import torch, symflops as sf
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    >>> c = sf.trace(net, "B 3 H W", convention="macs")
    >>> c.flops
    216*B*H*W
    >>> [p for p, _ in c.walk()]
    ['', '0', '1']
    """
    if paths not in ("one", "all"):
        raise SymflopsError("paths must be 'one' or 'all'", layer="trace",
                            values={"paths": repr(paths)},
                            fix="paths='all' joins the model's code paths into one formula")
    if paths == "all":
        from symflops.tracing.pieces import trace_pieces

        return trace_pieces(model, inputs, hints, convention=convention, mode=mode,
                            strict=strict, warn=warn, fallback=fallback, real=real,
                            time_budget=time_budget, skip_masked=skip_masked, past=past,
                            data_dependent=data_dependent)
    if fallback not in (None, "fit"):
        raise SymflopsError("fallback must be None or 'fit'", layer="trace",
                            values={"fallback": fallback})
    check_model_and_mode(model, mode, "trace")
    _check_skip_masked(skip_masked, mode, fallback)
    weighting = get_convention(convention)
    pos, kw = parse_inputs(inputs)
    pos = ids_by_position(model, pos)
    refuse_fixed_size(model, [s.dims for s in [*pos, *kw.values()]])
    hints = dict(hints or {})
    dims = dim_names(pos, kw)
    cache = None if past is None else parse_past(past, model, [*pos, *kw.values()], mode,
                                                 fallback)
    if cache is not None and isinstance(past, str) and past not in dims:
        dims.append(past)
    for k, v in hints.items():
        if k not in dims:  # a hint for no input dim would be silently ignored
            raise SymflopsError(f"hint {k!r} names no dim of the inputs", layer="trace",
                                values={"dims": ", ".join(dims) or "none"},
                                fix="give hints only for the named dims of the inputs")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SymflopsError("hints must be positive ints", layer="trace",
                                values={k: v})
    budget = checked_budget(time_budget, "trace")
    started = time.perf_counter()
    if real and (isinstance(past, str) or
                 any(isinstance(d, str) for s in [*pos, *kw.values()] for d in s.dims)):
        raise SymflopsError("{real} runs the model for real: every size must be an int",
                            layer="trace", fix="give every input size as an integer, or pass "
                            "{fallback} to fit an exact formula",
                            options={"real": True, "fallback": "fit"})
    if cache is not None and isinstance(past, str) and past not in hints:
        first = [*pos, *kw.values()][0].dims[1]
        new_hint = first if isinstance(first, int) else hints.get(first, DEFAULT_HINTS.get(
            first, 64))
        hints[past] = default_hint(model, new_hint, DEFAULT_HINTS["T"])
    ctx = TraceContext.build(model, pos, kw, hints, weighting, train=mode == "train",
                             strict=strict, real=real, budget=budget, skip_masked=skip_masked,
                             data_dependent=check_option(data_dependent),
                             deadline=None if budget is None else started + budget,
                             past=cache)
    limit = None if cache is None else position_limit(model, cache, ctx.specs[0])
    failed: SymflopsError | None = None
    try:
        cost = run(ctx)
        if limit is not None and limit not in cost.validity:
            bounded = cost.replace(validity=[*cost.validity, limit])
            assert isinstance(bounded, TracedCost)
            cost = bounded
    except SymflopsError as e:
        fits = isinstance(e, TimeBudgetSpent) or (
            not real and isinstance(e, SymbolicShapesFailed))
        if fallback != "fit" or not fits:
            raise
        failed = _without_its_trace(e)
    if failed is not None:  # (outside the except: the spent trace is unreachable now)
        _guard.answering_otherwise()
        return _fit_fallback(model, inputs, weighting, mode, failed, warn, budget)
    if fallback == "fit" and cost.report.fixed:
        # the symbolic trace pinned dims (a batch torch specialized, a reshape that
        # mentions the example size): a fit varies them instead of folding them in
        pinned = ", ".join(f"{n} = {v}" for n, v in cost.report.fixed.items())
        pin_error = SymflopsError(f"the symbolic trace pinned {pinned}", layer="trace")
        try:
            fitted = _fit_fallback(model, inputs, weighting, mode, pin_error, warn, budget)
        except SymflopsError:
            fitted = None  # the pinned trace stands, its domain says the pins
        if fitted is not None:
            return fitted
    if skip_masked and not any(SKIPPED_NOTE in leaf.notes for _, leaf in cost.leaves()):
        msg = ("skip_masked: no causal attention kernel (is_causal=True, no mask) was seen, so "
               "nothing was halved (on the meta device SDPA runs its math path with an "
               "explicit mask: build the model on the CPU)")
        cost.report.notes.append(msg)
        cost.report.warnings.append(msg)
    if warn:
        for msg in cost.report.warnings:
            # stacklevel 3: past trace and the lock wrapper (_serial.serialized)
            warnings.warn(SymflopsWarning(msg, layer="trace"), stacklevel=3)
    cost.report.seconds = time.perf_counter() - started
    return cost


def _check_skip_masked(skip_masked: Any, mode: str, fallback: str | None) -> None:
    if not isinstance(skip_masked, bool):
        raise SymflopsError("skip_masked must be True or False", layer="trace",
                            values={"skip_masked": repr(skip_masked)})
    if skip_masked and mode == "train":
        raise SymflopsError("skip_masked counts the forward only", layer="trace",
                            values={"mode": mode},
                            fix="{mode} (skip_masked is for inference), or {skip_masked}",
                            options={"mode": "eval", "skip_masked": False})
    if skip_masked and fallback is not None:
        raise SymflopsError("{skip_masked} is not available with {fallback}", layer="trace",
                            values={"fallback": fallback}, fix="drop one of the two",
                            options={"skip_masked": True, "fallback": "fit"})


def _without_its_trace(error: SymflopsError) -> SymflopsError:
    """``error`` with its traceback and chained errors dropped and their frames cleared:
    they hold the failed trace (a spent budget's worth of records, fake tensors and
    sizes): once they are cleared, that is freed at once (no collection needed), before
    the fit, which has a budget of its own, starts its clock."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
    error.__cause__ = error.__context__ = None
    return error


def _fit_fallback(model: torch.nn.Module, inputs: Any, weighting: Convention, mode: str,
                  error: SymflopsError, warn: bool, budget: float | None) -> Cost:
    try:
        cost = fit(model, inputs, convention=weighting, mode=mode, time_budget=budget)
    except SymflopsError:
        if model_device(model).type == "meta":
            raise error from None
        try:  # control flow that reads values: run the concrete traces on real tensors
            cost = fit(model, inputs, convention=weighting, mode=mode, real=True,
                       time_budget=budget)
        except SymflopsError:
            raise error from None
    if warn:
        warnings.warn(SymflopsWarning(f"{error.message}; returning an exact polynomial fitted "
                                      "from concrete traces instead (see its notes)",
                                      layer="trace"), stacklevel=4)
    return cost
