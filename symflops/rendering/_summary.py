"""The ``summary`` format: the command line's default output (totals, largest parts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.notation import format_number, shown_form, text_table
from symflops.rendering._formats import Format, register_format
from symflops.simplification import tidy


# ----------------------------------------------------------------------------- summary
def _count_text(expr: sp.Expr) -> str:
    """An exact count with separators and its SI form (``1,754,240 (1.75 M)``), or an
    expression as plain text."""
    if not expr.is_Integer:
        return str(tidy(shown_form(expr)))
    n = int(expr)
    si, plain = format_number(n, "si"), format_number(n, "grouped")
    return plain if si == str(n) else f"{plain} ({si})"


def _summary_math(x: Any) -> str:
    return str(tidy(shown_form(sp.sympify(x))))


def _summary_row(total: Sequence[str], cost: Cost) -> list[str]:
    """``["MACs", "macs"]`` -> ``["MACs", "864,576 (865 k)"]``: one line of the totals."""
    name, quantity = total
    return [name, _count_text(cost.quantity(quantity))]


def _serving_rows(cost: Cost) -> list[list[str]]:
    """The bytes of a prefill or decode step (``Layer.cost(mode=...)``): the weights, the
    KV cache read and written, and the bytes its ops move; of a training step: the model
    states, the activations and their total (per device under parallelism); none for
    another cost."""
    from symflops.memory import Memory
    from symflops.serving import ServingMemory

    mem = cost.memory
    if isinstance(mem, Memory):
        per = "per device" if mem.zero or any(
            sp.sympify(d) != 1 for d in (mem.data_parallel, mem.tensor_parallel,
                                         mem.pipeline_parallel)) else "bytes"
        rows = [[f"{what} ({per})", _count_text(value)] for what, value in (
            ("parameters", mem.params), ("gradients", mem.gradients),
            ("optimizer states", mem.optimizer), ("activations", mem.activations),
            ("training memory", mem.total))]
        return rows
    if not isinstance(mem, ServingMemory):
        return []
    rows = [["weights (bytes)", _count_text(mem.weights)],
            ["KV cache read (bytes)", _count_text(mem.kv_cache)],
            ["KV cache written (bytes)", _count_text(mem.kv_written)]]
    moved = cost.bytes
    if moved != 0:
        rows.append(["bytes moved", _count_text(moved)])
    return rows


def _parts_table(cost: Cost, depth: int) -> str:
    """The parts of ``cost`` down to ``depth``, largest first (:func:`analysis.breakdown`
    of the tree ``at`` was already substituted in); long expressions overflow their
    column instead of widening it."""
    from symflops.analysis import breakdown

    rows = [[s.path or "(total)", s.layer, _count_text(s.value),
             "" if s.share is None else f"{100 * s.share:5.1f}%"]
            for s in breakdown(cost, depth=depth)]
    return text_table(rows, ["path", "layer", cost.convention.label, "share"], "llrl",
                      widths=(32, 20, 24, 0), gaps=(" ", " ", "  "))


def _plain_shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(shown_form(sp.sympify(x))) for x in shape) + ")"


register_format(Format(
    "summary", "cost.summary.j2", math=_summary_math, text=str, code=str,
    extra_filters={"summary_row": _summary_row, "serving_rows": _serving_rows,
                   "parts_table": _parts_table,
                   "plain_shape": _plain_shape, "table": text_table}))

