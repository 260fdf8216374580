"""One trace run (record, then assemble), and the retry that keeps ``F.interpolate``
symbolic when torch pinned or failed on it. Used by :func:`trace` and :func:`fit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator

import sympy as sp

from symflops.errors import SymbolicShapesFailed, SymflopsError, TimeBudgetSpent
from symflops.tracing import _torch_compat as C
from symflops.tracing._assembly import TracedCost, assemble, pinned_where
from symflops.tracing._branches import say_sizes, settle
from symflops.tracing._index_bounds import PositionsPastTable
from symflops.tracing._inputs import TraceContext
from symflops.tracing._recording import record

__all__ = ["run", "run_once", "gc_paused"]


def run_once(ctx: TraceContext) -> TracedCost:
    """Record ``ctx.model`` once on fresh symbolic sizes and assemble its Cost tree.

    >>> import torch
    >>> from symflops.conventions import get_convention
    >>> from symflops.tracing._inputs import parse_inputs
    >>> ctx = TraceContext.build(torch.nn.Linear(4, 2), *parse_inputs("B 4"), {},
    ...                          get_convention("macs"))
    >>> run_once(ctx).flops
    8*B
    """
    with C.SymEnv() as env, gc_paused():  # the ShapeEnv's patches end with the trace
        return assemble(record(ctx, env), env, ctx)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration, then back as it was (also
    on error). A trace allocates many long-lived objects (fake tensors, SymPy sizes,
    records), and each full collection walked the whole heap: 3,000 Conv+ReLU blocks
    spent 4.4 of 14 s in collections, which made trace time grow faster than the model.
    Peak memory stayed the same (408 MB either way on that trace).

    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run(ctx: TraceContext) -> TracedCost:
    """:func:`run_once`, then once more with ``F.interpolate`` and ``max_pool1d`` rerouted
    when torch pinned dims or could not run the model on symbolic shapes.

    The rerouting is not the default: an active TorchFunctionMode makes
    nn.MultiheadAttention and nn.TransformerEncoderLayer skip their inference fast paths.
    Raises the first run's error when both fail.
    """
    first_error: SymflopsError | None = None
    result: TracedCost | None = None
    try:
        ctx, result = _inside_tables(ctx)
        retry = bool(result.report.fixed) and any(  # what the rerouting may unpin
            "upsample" in k or "max_pool2d_with_indices" in k for k in result.report.counted)
    except SymflopsError as e:
        if ctx.real or not isinstance(e, SymbolicShapesFailed) or e.before_any_op:
            raise
        retry, first_error = True, e
    if retry:
        try:
            again: TracedCost | None = run_once(dataclasses.replace(ctx, resize=True))
        except SymflopsError:
            if first_error is not None:
                raise first_error from None
            again = None
        if again is not None and (result is None or
                                  len(again.report.fixed) < len(result.report.fixed)):
            again.report.resize_mode = True
            result = again
    assert result is not None
    if result.report.fixed and not ctx.real:
        ctx, result = _off_the_pin(ctx, result)
    if not ctx.real:
        moved_ctx, moved = _off_the_lattice(ctx, result)
        if moved is not result:
            settled = settle(moved_ctx, moved, run_once)
            example = {result.report.symbols[n]: sp.Integer(v) for n, v in ctx.hint_of.items()
                       if n in result.report.symbols}
            if settled.domain.failing(example) is None:
                return settled
            result.report.notes.append(
                "off the lattice (traced again at " + say_sizes(
                    {n: v for n, v in moved_ctx.hint_of.items() if ctx.hint_of.get(n) != v}) +
                ") the model takes a path of another cost: this formula holds on the "
                "lattice, where the example sizes are; trace at a size off it for that path")
    return settle(ctx, result, run_once)


def _off_the_lattice(ctx: TraceContext, result: TracedCost
                     ) -> tuple[TraceContext, TracedCost]:
    """The trace again with each example size that sits on a lattice of the formula's
    domain moved one off it, kept when its domain has fewer lattices and it pins no more
    dims. A model may take a path at multiples of a block that holds only there (Mamba-2
    pads the sequence to a multiple of its chunk size, and skips the pad when it is 0: at
    ``N = 32`` the formula says "N a multiple of 16"); off the lattice the path is general,
    and :func:`settle` checks the skipped branch on its other side. A lattice the model
    really needs (a reshape into blocks without padding) fails the second trace, and the
    first is kept; so is the first when the settled second refuses the example sizes
    (:func:`run`: HF FocalNet pads to a multiple of its patch only off it, and its padded
    path's formula differs on the lattice, where the user traced)."""
    lattices = {s.name for s in result.domain.lattices()} & set(ctx.hint_of)
    if not lattices:
        return ctx, result
    moved = {n: ctx.hint_of[n] + 1 for n in sorted(lattices)}
    there = dataclasses.replace(ctx, hint_of={**ctx.hint_of, **moved},
                                resize=result.report.resize_mode or ctx.resize)
    try:
        again = run_once(there)
    except TimeBudgetSpent:
        raise
    except SymflopsError:
        return ctx, result
    if len(again.report.fixed) > len(result.report.fixed) or \
            len(again.domain.lattices()) >= len(result.domain.lattices()):
        return ctx, result
    again.report.resize_mode = again.report.resize_mode or result.report.resize_mode
    again.report.notes.insert(0, "at the example sizes the model took a path that holds "
                                 "only on a lattice (" + "; ".join(
                                     c.text for c in result.domain.clauses()
                                     if c.kind == "lattice") + "); traced again at " +
                              say_sizes(moved) +
                              ", off it")
    moved_cost = again.replace(notes=tuple(again.report.notes))
    assert isinstance(moved_cost, TracedCost)
    return there, moved_cost


def _inside_tables(ctx: TraceContext) -> tuple[TraceContext, TracedCost]:
    """:func:`run_once`; when the example sizes read positions past a table's end (the
    default ``N = 128`` in a model of 64 positions), once more at the table's length."""
    try:
        return ctx, run_once(ctx)
    except PositionsPastTable as e:
        moved = dict(e.options.get("hints", {}))
        if ctx.real or not moved or all(ctx.hint_of.get(n) == v for n, v in moved.items()):
            raise
    there = dataclasses.replace(ctx, hint_of={**ctx.hint_of, **moved})
    result = run_once(there)
    result.report.notes.insert(0, "example sizes " + ", ".join(
        f"{n}={ctx.hint_of.get(n)} -> {v}" for n, v in moved.items()) +
        ": the model's position table is no longer")
    noted = result.replace(notes=tuple(result.report.notes))
    assert isinstance(noted, TracedCost)
    return there, noted


def _off_the_pin(ctx: TraceContext, result: TracedCost
                 ) -> tuple[TraceContext, TracedCost]:
    """The trace again with each pinned dim's example size doubled, else halved (plus one),
    kept when it pins fewer dims. A model may take a path at its trained size that holds
    only there (timm's ``dynamic_img_size`` ViTs skip resizing the position embedding when
    the patch grid is the trained one: ``H = 224`` pinned, though the model runs at 384;
    MPT slices its ALiBi table of ``max_seq_len`` rows from the end, and an example length
    equal to the table's pins it, where a double is past the table); elsewhere the path is
    general, and :func:`settle` then keeps the branch as a condition of the formula."""
    for factor in (2, 0.5):
        moved = {n: 2 * v if factor == 2 else v // 2 + 1
                 for n, v in ctx.hint_of.items() if n in result.report.fixed}
        if factor != 2 and min(moved.values(), default=0) < 2:
            break
        there, again = _moved_trace(ctx, result, moved)
        if again is not None:
            return there, again
    return ctx, result


def _moved_trace(ctx: TraceContext, result: TracedCost, moved: dict[str, int]
                 ) -> tuple[TraceContext, TracedCost | None]:
    """:func:`_off_the_pin` at the example sizes ``moved``: the trace, or None when it
    fails or pins no fewer dims."""
    fixed = result.report.fixed
    there = dataclasses.replace(ctx, hint_of={**ctx.hint_of, **moved},
                                resize=result.report.resize_mode or ctx.resize)
    try:
        try:
            again = run_once(there)
        except SymbolicShapesFailed as e:  # a resize to the moved size (F.interpolate rerouted)
            if there.resize or e.before_any_op:  # (the model's own assert: rerouting is moot)
                raise
            there = dataclasses.replace(there, resize=True)
            again = run_once(there)
            again.report.resize_mode = True
    except TimeBudgetSpent:
        raise
    except SymflopsError:
        return ctx, None
    if len(again.report.fixed) >= len(fixed):
        return ctx, None
    again.report.resize_mode = again.report.resize_mode or result.report.resize_mode
    again.report.moved_from = {n: ctx.hint_of[n] for n in fixed if n in ctx.hint_of}
    pinned = ", ".join(f"{n} = {v}" for n, v in fixed.items())
    where = pinned_where(result.report.pin_sites)
    again.report.notes.insert(0, f"at the example sizes the model took a path that holds only "
                                 f"at {pinned}{where}; traced again at "
                                 f"{say_sizes(moved)}, where it does not")
    moved_cost = again.replace(notes=tuple(again.report.notes))
    assert isinstance(moved_cost, TracedCost)
    return there, moved_cost
