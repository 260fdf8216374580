"""Where a cost goes: breakdowns by part and by term, and comparisons (crossings of two
costs: :mod:`symflops.analysis.models`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symflops.analysis._common import (
    Costlike,
    SymbolLike,
    by_symbol,
    expression,
    numeric_subs,
    relax_floors,
    to_symbol,
)
from symflops.analysis.polynomial import Term, terms
from symflops.cost import Cost
from symflops.display import simplify_expr
from symflops.errors import SymflopsError

__all__ = ["Share", "breakdown", "term_breakdown", "Comparison", "compare"]


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


# ----------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class Comparison:
    """``a / b`` as a function of ``symbol`` and its limit as ``symbol`` grows."""

    symbol: sp.Symbol
    ratio: sp.Expr
    limit: sp.Expr

    def evaluate(self, values: Any, at: Mapping[SymbolLike, Any] | None = None) -> np.ndarray:
        """The ratio at each value of ``symbol`` (floats)."""
        expr = numeric_subs(self.ratio, by_symbol(at, self.ratio.free_symbols))
        from symflops.evaluate import compile_expr

        missing = expr.free_symbols - {self.symbol}
        if missing:
            raise SymflopsError("the ratio needs values for the other symbols",
                                values={"missing": sorted(s.name for s in missing)},
                                fix="give them with {at}",
                                options={"at": dict.fromkeys(
                                    sorted(s.name for s in missing), ...)})
        fn = compile_expr(expr, (self.symbol,))
        return np.asarray(fn(np.asarray(values, dtype=float)), dtype=float)


def compare(a: Costlike, b: Costlike, symbol: SymbolLike,
            at: Mapping[SymbolLike, Any] | None = None, quantity: str = "flops") -> Comparison:
    """The ratio ``a / b`` and its limit as ``symbol`` goes to infinity.

    >>> from symflops.symbols import N, dim
    >>> c = compare(4 * N**2 * dim + 8 * N * dim**2, 8 * N * dim**2, "N")
    >>> c.ratio, c.limit
    ((N + 2*dim)/(2*dim), oo)
    """
    ea, eb = expression(a, quantity), expression(b, quantity)
    free = ea.free_symbols | eb.free_symbols
    sym = to_symbol(symbol, free)
    values = by_symbol(at, free)
    values.pop(sym, None)
    ea, eb = numeric_subs(ea, values), numeric_subs(eb, values)
    if eb == 0:
        raise SymflopsError("cannot divide by a zero cost", values={"b": eb})
    ratio = ea / eb
    if not ratio.atoms(sp.floor, sp.ceiling):
        ratio = sp.factor(sp.cancel(ratio))
    x = sp.Dummy(sym.name, positive=True)
    relaxed = (relax_floors(ea) / relax_floors(eb)).xreplace({sym: x})
    lim = sp.limit(sp.cancel(relaxed), x, sp.oo)
    return Comparison(sym, ratio, lim)
