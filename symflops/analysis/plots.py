"""Log-log plots of costs against a size that explain themselves: ticks at the swept
sizes in plain numbers, short legend names outside the data, the fixed values in the
title, each curve's asymptotic growth order and its fitted slope over the range labelled
as the two different things they are, and crossovers marked with their exact sizes.

>>> import symflops as sf
>>> from symflops.symbols import B, H, W
>>> conv = sf.nn.Conv2d(3, 8, 3, padding=1).cost((B, 3, H, W))
>>> fig = plot({"conv": conv}, ["H", "W"], [32, 64, 128], at={"B": 1})
>>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
['32', '64', '128']
>>> fig.axes[0].get_title()
'FLOPs (exact) against H = W\\nat B = 1'
>>> [t.get_text() for t in fig.legends[0].get_texts()]
['conv: growth order 2 as H = W → ∞; fitted log-log slope 2.00 over 32–128']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symflops.analysis._common import (
    Costlike,
    SymbolLike,
    by_symbol,
    free_symbols_of,
    to_symbol,
)
from symflops.analysis.models import crossings, tied
from symflops.analysis.polynomial import growth_order
from symflops.analysis.sweeps import fit_slope, sweep
from symflops.cost import Cost
from symflops.errors import SymflopsError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot", "MAX_TICKS", "y_subs"]

#: the most x tick labels a plot shows (the swept sizes, thinned evenly in log space)
MAX_TICKS = 9


def _number(v: Any) -> str:
    """A swept size as typed: ``32``, ``1.5`` (never ``3x10^1``)."""
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _ticks(xs: np.ndarray) -> list[float]:
    """The swept sizes to label: all of them, or :data:`MAX_TICKS` spread evenly in
    log space with both ends kept."""
    sizes = sorted({float(x) for x in xs if float(x) > 0})
    if len(sizes) <= MAX_TICKS:
        return sizes
    logs = np.log(sizes)
    targets = np.linspace(logs[0], logs[-1], MAX_TICKS)
    return sorted({sizes[int(np.argmin(np.abs(logs - t)))] for t in targets})


def _order_text(order: Any) -> str:
    return "?" if order is None else str(order)


def y_subs(decades: float) -> tuple[float, ...]:
    """The mantissas of the y ticks when the values span ``decades`` powers of ten: 1, 2
    and 5 under two decades (a ConvNeXt sweep had only "10 G" and "100 G"), every digit
    under one, the powers of ten alone otherwise.

    >>> y_subs(3.0), y_subs(1.3), y_subs(0.4)
    ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))
    """
    if decades < 1:
        return tuple(float(k) for k in range(1, 10))
    return (1.0, 2.0, 5.0) if decades < 2 else (1.0,)


def _axes_setup(ax: Axes, xs: np.ndarray, ys: Sequence[float] = ()) -> None:
    from matplotlib.ticker import (
        EngFormatter,
        FixedLocator,
        LogLocator,
        NullFormatter,
        NullLocator,
    )

    ticks = _ticks(xs)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([_number(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    positive = [y for y in ys if y > 0]
    if positive:
        decades = float(np.log10(max(positive)) - np.log10(min(positive)))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=y_subs(decades)))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)


def plot(costs: Costlike | Mapping[str, Costlike], var: SymbolLike | Sequence[SymbolLike],
         values: Any, *, quantity: str = "flops", at: Mapping[SymbolLike, Any] | None = None,
         path: str | None = None, title: str | None = None, mark_crossovers: bool = True
         ) -> Figure:
    """Plot ``quantity`` of one or more costs (a mapping: legend name -> cost) against
    ``var`` on log-log axes; return the matplotlib Figure, saved to ``path`` when given
    (the suffix picks PNG, PDF or SVG).

    ``var`` may be several symbols set to the same values (``["H", "W"]``: square
    inputs); each curve takes the values of ``at`` it has symbols for, and the title
    names them. Each legend entry gives the curve's growth order (as the size goes to
    infinity) and its fitted log-log slope over the plotted range, which differ when a
    fixed-size part (a head) still weighs at small sizes. Where two curves cross inside
    the range, a dashed line marks the first whole size past the crossing. Needs
    matplotlib (``pip install symflops[plot]``); draws off-screen (no GUI backend). The
    folder of ``path`` must exist.
    """
    if path is not None and not Path(path).expanduser().resolve().parent.is_dir():
        raise SymflopsError("the plot's folder does not exist", values={"path": str(path)},
                            fix=f"create {Path(path).parent} first, or give another path")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SymflopsError("plotting needs matplotlib",
                            fix="pip install 'symflops[plot]' (or matplotlib)") from None
    curves = dict(costs) if isinstance(costs, Mapping) else {"": costs}
    key: Any = var if isinstance(var, (str, sp.Symbol)) else tuple(var)
    syms = [key] if not isinstance(key, tuple) else list(key)
    names = " = ".join(to_symbol(v).name for v in syms)
    xs = np.asarray(values)
    fixed = by_symbol(at)
    known = {s.name for c in curves.values() for s in free_symbols_of(c)}
    unknown = sorted(s.name for s in fixed if s.name not in known)
    if unknown:
        raise SymflopsError("plot: values given for symbols no curve has",
                            values={"unknown": unknown},
                            fix="its symbols are: " + (", ".join(sorted(known)) or "none"))
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    labels: set[str] = set()
    span = f"{_number(xs.min())}–{_number(xs.max())}" if xs.size else ""
    mine_by_curve = {}
    plotted: list[float] = []
    for name, cost in curves.items():
        mine = {s: v for s, v in fixed.items() if s in free_symbols_of(cost)}
        mine_by_curve[name] = mine
        cx = _inside(cost, syms, xs, mine)
        sw = sweep(cost, {key: cx}, quantity=quantity, at=mine)
        ys = sw.results[quantity]
        slope = fit_slope(cx, ys)
        try:
            order: Any = growth_order(tied(cost, syms, mine, quantity)[0], syms[0])
        except SymflopsError:
            order = None
        text = (f"growth order {_order_text(order)} as {names} → ∞; "
                f"fitted log-log slope {slope:.2f} over {span}")
        plotted += [float(y) for y in ys.tolist()]
        ax.loglog(cx.astype(float), ys.astype(float), marker="o", markersize=3,
                  label=f"{name}: {text}" if name else text)
        labels.add(sw.labels[quantity])
    if mark_crossovers:
        _mark_crossovers(ax, curves, mine_by_curve, syms, quantity, xs, names)
    _axes_setup(ax, xs, plotted)
    ax.set_xlabel(names)
    ax.set_ylabel(" / ".join(sorted(labels)))
    what = " / ".join(sorted(labels)) + f" against {names}"
    where = ", ".join(f"{s.name} = {v}" for s, v in fixed.items())
    ax.set_title((title or what) + (f"\nat {where}" if where else ""), fontsize=10)
    fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    if path is not None:
        try:
            fig.savefig(path, dpi=120)
        except (OSError, ValueError) as e:  # unwritable path, unknown image format
            raise SymflopsError(f"cannot save the plot: {e}", values={"path": str(path)},
                                fix="give a writable path ending in .png, .pdf or .svg"
                                ) from None
    return fig


def _inside(cost: Costlike, syms: list[Any], xs: np.ndarray,
            fixed: Mapping[sp.Symbol, Any]) -> np.ndarray:
    """The values of ``xs`` inside ``cost``'s domain (all of them for an expression);
    OutsideDomain, naming the first condition, when none is."""
    if not isinstance(cost, Cost) or not xs.size:
        return xs
    domain = cost.domain
    tied_syms = [to_symbol(s, cost.free_symbols) for s in syms]

    def point(v: Any) -> dict[sp.Symbol, Any]:
        return {**fixed, **{s: int(v) for s in tied_syms}}

    keep = np.array([domain.contains(point(v)) for v in xs.tolist()], dtype=bool)
    if not keep.any():
        domain.check(point(xs.flat[0]))
    return xs[keep]


def _mark_crossovers(ax: Axes, curves: Mapping[str, Costlike],
                     fixed: Mapping[str, Mapping[sp.Symbol, Any]], syms: list[Any],
                     quantity: str, xs: np.ndarray, names: str) -> None:
    """A dashed vertical line and its size at each crossing of two curves in the range."""
    items = list(curves.items())
    lo, hi = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 0.0)
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1:]:
            ea, sym = tied(a, syms, fixed[name_a], quantity)
            eb, _ = tied(b, syms, fixed[name_b], quantity)
            if (ea.free_symbols | eb.free_symbols) - {sym} or not xs.size:
                continue  # a crossing that moves with another symbol has no place here
            try:  # inside the plotted range and both curves' domains
                found = crossings(a, b, syms, {**fixed[name_a], **fixed[name_b]},
                                  quantity=quantity,
                                  within=(max(1, int(np.ceil(lo))), int(np.floor(hi))))
            except SymflopsError:
                continue
            for x in found:
                if x.size is None or not lo <= x.size <= hi:
                    continue
                ax.axvline(x.size, color="0.4", linestyle="--", linewidth=0.8)
                ax.annotate(f"{name_a} and {name_b} cross by {names} = {x.size}",
                            xy=(x.size, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -12), textcoords="offset points", fontsize=7,
                            rotation=90, va="top")
