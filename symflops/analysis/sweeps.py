"""Numbers over ranges: sweeps and fitted slopes (plots: :mod:`symflops.analysis.plots`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symflops.analysis._common import (
    Costlike,
    SymbolLike,
    by_symbol,
    expression,
    free_symbols_of,
    to_symbol,
    to_symbols,
)
from symflops.cost import Cost, size_value
from symflops.errors import SymflopsError
from symflops.notation import text_table

__all__ = ["Sweep", "sweep", "fit_slope", "MAX_SWEEP_POINTS"]

#: the most points one sweep evaluates (each quantity's results take 8 bytes a point)
MAX_SWEEP_POINTS = 10_000_000


# ----------------------------------------------------------------------------- sweeps
@dataclass
class Sweep:
    """Values of one or more quantities over a range or grid of symbols.

    ``variables`` maps each swept symbol name to its (broadcast) array, ``results``
    maps each quantity to its array of the same shape; ``labels`` names each quantity
    with its convention (``FLOPs (exact)``, ``MACs``).
    """

    variables: dict[str, np.ndarray]
    results: dict[str, np.ndarray]
    labels: dict[str, str] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row (a dict) per point, variables first."""
        cols = {**self.variables, **self.results}
        flat = {k: np.asarray(v).ravel() for k, v in cols.items()}
        n = len(next(iter(flat.values())))
        return [{k: _plain(v[i]) for k, v in flat.items()} for i in range(n)]

    def slope(self, quantity: str = "flops", variable: str | None = None) -> float:
        """The fitted log-log slope of ``quantity`` against ``variable`` (1-d sweeps)."""
        var = variable or next(iter(self.variables))
        return fit_slope(self.variables[var], self.results[quantity])

    def to_text(self, separators: bool = True) -> str:
        """An aligned plain-text table (integers with thousands separators)."""
        heads = list(self.variables) + [self.labels.get(q, q) for q in self.results]
        rows = [[_fmt_num(v, separators) for v in row.values()] for row in self.table()]
        return text_table(rows, heads, "r" * len(heads))


def _plain(v: Any) -> Any:
    """A numpy scalar as a Python number; exact Python ints (object arrays) as they are."""
    return v.item() if isinstance(v, np.generic) else v


def _fmt_num(v: Any, separators: bool) -> str:
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if separators else str(int(v))
    return f"{float(v):.6g}"


def sweep(x: Costlike, values: Mapping[SymbolLike, Any], *,
          quantity: str | Sequence[str] = "flops", at: Mapping[SymbolLike, Any] | None = None,
          grid: bool = True) -> Sweep:
    """Evaluate ``x`` over ranges of symbols, vectorized (compiled once).

    ``values`` maps symbols to 1-d arrays; with several symbols and ``grid=True`` every
    combination is evaluated (``numpy.meshgrid``, ``ij`` order), with ``grid=False``
    the arrays are zipped. Several names may share one array (``{("H", "W"): sizes}``
    sweeps square inputs). ``at`` fixes the other symbols. Integer inputs give exact
    int64 results. Every point is checked (positive integer sizes, the formulas'
    conditions) before anything is computed, and a sweep of more than
    :data:`MAX_SWEEP_POINTS` points is refused before anything is allocated.

    >>> import symflops as sf
    >>> c = sf.nn.Conv2d(3, 8, 3, padding=1).cost(("B", 3, "H", "W"))
    >>> sweep(c, {("H", "W"): [32, 64]}, at={"B": 1}).results["flops"].tolist()
    [442368, 1769472]
    """
    names = [quantity] if isinstance(quantity, str) else list(quantity)
    free = free_symbols_of(x)
    if not isinstance(values, Mapping) or (at is not None and not isinstance(at, Mapping)):
        raise SymflopsError("sweep takes mappings of symbols to values",
                            values={"values": type(values).__name__, "at": type(at).__name__},
                            fix='write sweep(cost, {"H": [32, 64]}, at={"B": 1})')
    fixed = by_symbol(at, free)
    groups: list[tuple[tuple[sp.Symbol, ...], np.ndarray]] = []
    for key, arr in values.items():
        syms = to_symbols(key, free) if isinstance(key, tuple) else (to_symbol(key, free),)
        a = np.asarray(arr)
        if a.ndim != 1:
            raise SymflopsError("sweep values must be 1-d arrays",
                                values={"symbol": ",".join(s.name for s in syms)})
        if a.dtype.kind == "i":
            a = a.astype(np.int64)
        groups.append((syms, a))
    named = {s.name for syms, _ in groups for s in syms} | {s.name for s in fixed}
    unknown = sorted(named - {s.name for s in free})
    if unknown:
        raise SymflopsError("sweep names symbols the cost does not have",
                            values={"unknown": unknown},
                            fix="its symbols are: " + (", ".join(sorted(s.name for s in free))
                                                       or "none"))
    lengths = [len(a) for _, a in groups]
    points = math.prod(lengths) if grid else max(lengths, default=1)
    if points > MAX_SWEEP_POINTS:
        raise SymflopsError(f"a sweep of {points:,} points is over the limit of "
                            f"{MAX_SWEEP_POINTS:,}",
                            values={",".join(s.name for s in syms): len(a)
                                    for syms, a in groups},
                            fix="sweep fewer values (a coarser or geometric range) or fewer "
                                "symbols at once")
    if grid and len(groups) > 1:
        # each swept symbol on its own axis: terms in H alone are computed on H's values
        # only, and numpy broadcasting forms the grid in the products
        k = len(groups)
        axes = [a.reshape([-1 if i == j else 1 for j in range(k)])
                for i, (_, a) in enumerate(groups)]
        full = tuple(len(a) for _, a in groups)
        meshes = [np.broadcast_to(a, full) for a in axes]
    else:
        if len({len(a) for _, a in groups}) > 1:
            raise SymflopsError("zipped sweeps need arrays of one length",
                                fix="pass grid=True for every combination")
        meshes = [a for _, a in groups]
    arrays: dict[sp.Symbol, np.ndarray] = {}
    variables: dict[str, np.ndarray] = {}
    inputs = axes if grid and len(groups) > 1 else meshes
    for (syms, _), mesh, arr in zip(groups, meshes, inputs, strict=True):
        variables[",".join(s.name for s in syms)] = mesh
        for s in syms:
            arrays[s] = arr
    for s, v in fixed.items():
        if s in arrays:
            continue
        if isinstance(v, (np.ndarray, list, tuple)):
            arrays[s] = np.asarray(v)  # checked point by point with the swept values
            continue
        value = size_value("sweep", s, v)
        if not value.is_Integer:
            raise SymflopsError("a sweep needs numbers", values={s.name: value},
                                fix=f"give {s.name} a number, or sweep it too")
        arrays[s] = np.asarray(int(value))
    results: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    for q in names:
        expr = expression(x, q)
        missing = sorted(s.name for s in expr.free_symbols if s not in arrays)
        if missing:
            raise SymflopsError("sweep needs a value for every symbol",
                                values={"missing": missing},
                                fix="sweep them or give them values ({at})",
                                options={"at": dict.fromkeys(missing, ...)})
        if isinstance(x, Cost):  # Cost.evaluate also checks the formulas' conditions
            out = x.evaluate(q, **{s.name: a for s, a in arrays.items()})
        else:
            syms_t = tuple(sorted(expr.free_symbols, key=str))
            from symflops.evaluate import compile_expr  # checks the sizes itself

            out = compile_expr(expr, syms_t)(*(arrays[s] for s in syms_t)) if syms_t else \
                np.asarray(int(expr) if expr.is_Integer else float(expr))
        results[q] = np.broadcast_to(out, meshes[0].shape).copy() if meshes else out
        labels[q] = _label(x, q)
    return Sweep(variables, results, labels)


def _label(x: Costlike, quantity: str) -> str:
    if quantity == "flops":
        return x.convention.label if isinstance(x, Cost) else "FLOPs"
    return {"macs": "MACs", "params": "params"}.get(quantity, quantity)


def fit_slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the empirical growth order)."""
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = (xa > 0) & (ya > 0)
    if ok.sum() < 2 or np.unique(xa[ok]).size < 2:
        raise SymflopsError("a slope needs at least two distinct positive points",
                            fix="sweep a wider range")
    return float(np.polyfit(np.log(xa[ok]), np.log(ya[ok]), 1)[0])
