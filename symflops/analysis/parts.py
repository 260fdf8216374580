"""Where a cost goes: breakdowns by part and by term (two costs side by side:
:mod:`symflops.analysis.models`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.analysis._common import (
    Costlike,
    SymbolLike,
    by_symbol,
    expression,
    numeric_subs,
)
from symflops.analysis.polynomial import Term, terms
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.simplification import simplify_expr

__all__ = ["Share", "breakdown", "term_breakdown"]


# ----------------------------------------------------------------------------- breakdowns
@dataclass(frozen=True)
class Share:
    """One part's contribution: its ``value`` (an expression, or a number with ``at``)
    and its ``share`` of the total (with ``at``)."""

    path: str
    layer: str
    value: sp.Expr
    share: float | None


def breakdown(cost: Cost, at: Mapping[SymbolLike, Any] | None = None, *,
              quantity: str = "flops", depth: int = 1) -> list[Share]:
    """Each part of ``cost`` down to ``depth`` (repeat counts included), largest first
    when ``at`` gives every symbol a value (substituted and checked by ``cost.subs``).

    >>> import symflops as sf
    >>> net = sf.nn.Sequential(sf.nn.Linear(8, 32), sf.nn.ReLU(), sf.nn.Linear(32, 8))
    >>> [(s.path, int(s.value)) for s in breakdown(net.cost(("B", 8)), {"B": 1})]
    [('0', 512), ('2', 512), ('1', 32)]
    """
    if not isinstance(cost, Cost):
        raise SymflopsError("breakdown needs a Cost", values={"type": type(cost).__name__})
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise SymflopsError("depth must be an int >= 1", values={"depth": depth})
    if at:  # one checked substitution (sizes, conditions), then the parts are read off it
        cost = cost.subs(by_symbol(at, cost.free_symbols))
    parts: list[tuple[str, Cost, sp.Expr]] = []

    def visit(node: Cost, path: str, mult: sp.Expr, level: int) -> None:
        for child in node.children:
            p = f"{path}.{child.name}" if path else child.name
            m = mult * child.count
            if level + 1 >= depth or not child.children:
                parts.append((p, child, m * child.quantity(quantity)))
            else:
                visit(child, p, m, level + 1)

    visit(cost, "", sp.Integer(1), 0)
    if not parts:
        parts = [("", cost, cost.quantity(quantity))]
    total = expression(cost, quantity)
    out = []
    numeric = total.is_number and all(v.is_number for _, _, v in parts)
    for p, c, v in parts:
        share = float(v / total) if numeric and total != 0 else None
        out.append(Share(p, c.layer, simplify_expr(v) if not v.is_number else v, share))
    if numeric:
        out.sort(key=lambda s: -float(s.value))
    return out


def term_breakdown(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                   at: Mapping[SymbolLike, Any], quantity: str = "flops",
                   align: Mapping[SymbolLike, int] | str | None = "auto",
                   ) -> list[tuple[Term, sp.Expr, float]]:
    """Which formula term dominates at ``at``: ``(term, value, share)``, largest first.

    >>> from symflops.symbols import N, dim
    >>> e = 4 * N**2 * dim + 8 * N * dim**2
    >>> [(str(t), int(v)) for t, v, _ in term_breakdown(e, "N", {"N": 4096, "dim": 768})]
    [('4*N**2*dim', 51539607552), ('8*N*dim**2', 19327352832)]
    """
    expr = expression(x, quantity)
    values = by_symbol(at, expr.free_symbols)
    rows = [(t, numeric_subs(t.expr, values)) for t in terms(expr, symbols, quantity, align)]
    missing = sorted({s.name for _, v in rows for s in v.free_symbols})
    if missing:
        raise SymflopsError("term_breakdown needs a value for every symbol",
                            values={"missing": missing}, fix="give them in {at}",
                            options={"at": dict.fromkeys(missing, ...)})
    total = sum((v for _, v in rows), sp.Integer(0))
    rows.sort(key=lambda r: -float(r[1]))
    return [(t, v, float(v / total) if total != 0 else 0.0) for t, v in rows]
