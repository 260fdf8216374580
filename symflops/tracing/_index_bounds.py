"""Index ranges a trace can see on fake tensors: positions from ``arange`` into a table.

Fake and meta tensors carry no values, so an embedding looked up with indices past the end
of its table (GPT-2's 1,024 positions read at a sequence of 2,048) raises nothing in a
trace, and the formula would answer for sizes the model cannot run. Position indices come
from ``torch.arange(N)`` (then ``+ past_length``, ``unsqueeze``, ``expand``, ``view``...),
whose largest value is known: ``N - 1``. :class:`IndexBounds` follows those tensors through
view-like ops and, when one indexes a table's first dim (``embedding``, ``index_select``),
asks torch whether ``N <= rows``. On symbolic sizes that records a guard (an upper bound on
``N``, which :mod:`symflops.tracing._branches` then checks on its other side: the trace
there fails, so the bound joins the formula's domain); at a size past the table it is one
SymflopsError. Slices and selections are not followed (their largest value may be smaller).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from symflops.errors import SymflopsError

__all__ = ["IndexBounds", "PositionsPastTable"]

aten = torch.ops.aten

#: ops whose output holds the same values as their first input (or a subset that keeps the
#: largest: a broadcast, a copy, a reshape)
_SAME_VALUES = {aten.unsqueeze, aten.view, aten._unsafe_view, aten.reshape, aten.expand,
                aten.clone, aten.alias, aten.squeeze, aten.permute, aten.transpose, aten.t,
                aten._to_copy, aten.detach, aten.lift_fresh, aten.contiguous,
                aten.repeat, aten.flatten}
_ARANGE = aten.arange


class PositionsPastTable(SymflopsError):
    """Positions read past a table's end at the example sizes (``options["hints"]``: the
    example size that fits, when the positions are one named dim)."""


class IndexBounds:
    """Tensors whose values are ``< bound`` (a SymInt or int), keyed by identity."""

    def __init__(self) -> None:
        self._bound: dict[int, tuple[weakref.ref[torch.Tensor], Any]] = {}
        #: torch's symbols -> the user's dim names (for the error)
        self.names: dict[Any, str] = {}

    def _say(self, n: Any) -> str:
        if not isinstance(n, torch.SymInt):
            return str(n)
        expr = n.node.expr
        named = expr.xreplace({s: type(s)(self.names[s]) for s in expr.free_symbols
                               if s in self.names})
        hint = n.node.hint
        return f"{named}" if hint is None or named.is_Integer else f"{named} (= {hint} here)"

    def of(self, t: Any) -> Any:
        """The bound of ``t``'s values (exclusive), None if not known."""
        if not isinstance(t, torch.Tensor):
            return None
        hit = self._bound.get(id(t))
        return hit[1] if hit is not None and hit[0]() is t else None

    def _set(self, t: Any, bound: Any) -> None:
        if isinstance(t, torch.Tensor):
            self._bound[id(t)] = (weakref.ref(t), bound)

    def after(self, func: Any, args: Any, kwargs: dict[str, Any], out: Any, where: str
              ) -> None:
        """Update the bounds after ``func`` ran; check a table lookup."""
        packet = func._overloadpacket
        if packet is _ARANGE:
            self._arange(func, args, kwargs, out)
        elif not self._bound:
            return
        elif packet in _SAME_VALUES and args:
            bound = self.of(args[0])
            if bound is not None:
                self._set(out, bound)
        elif packet is aten.add and len(args) >= 2 and isinstance(args[1], (int, torch.SymInt)) \
                and kwargs.get("alpha", 1) == 1:  # arange(N) + past_length
            bound = self.of(args[0])
            if bound is not None:
                self._set(out, bound + args[1])
        elif packet is aten.embedding and len(args) >= 2:
            self._check(args[1], args[0], where)
        elif packet is aten.index_select and len(args) >= 3 and args[1] == 0:
            self._check(args[2], args[0], where)

    def _arange(self, func: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        if not isinstance(out, torch.Tensor) or out.is_floating_point() or \
                out.is_complex():
            return
        name = func._overloadname
        if name in ("default", "out") and len(args) >= 1:
            start, end, step = 0, args[0], kwargs.get("step", 1)
        elif name in ("start", "start_out") and len(args) >= 2:
            start, end, step = args[0], args[1], 1
        elif name in ("start_step",) and len(args) >= 3:
            start, end, step = args
        else:
            return
        if not isinstance(step, int) or step != 1 or not isinstance(start, (int, torch.SymInt)):
            return
        if isinstance(end, (int, torch.SymInt)):
            self._set(out, end)

    def _check(self, indices: Any, table: Any, where: str) -> None:
        bound = self.of(indices)
        if bound is None or not isinstance(table, torch.Tensor) or table.dim() < 1:
            return
        rows = table.shape[0]
        if not bool(bound <= rows):  # symbolic: a guard, the upper bound of the size
            hints = self._hints(bound, rows)
            raise PositionsPastTable(
                f"positions 0 .. {self._say(bound)} - 1 index a table of {self._say(rows)} "
                f"rows: past its end (torch raises an index error on real tensors)",
                layer=where, fix="use a sequence no longer than the table (the model's "
                "maximum length" + (": give {hints}" if hints else "") + "), or a model "
                "built with a larger one", options=hints)

    def _hints(self, bound: Any, rows: Any) -> dict[str, Any]:
        """``hints`` at the table's length when the positions are one named dim."""
        if isinstance(bound, torch.SymInt) and isinstance(rows, int):
            expr = bound.node.expr
            if expr in self.names:
                return {"hints": {self.names[expr]: rows}}
        return {}
