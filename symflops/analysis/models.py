"""Two costs side by side: :func:`compare` (the ratio of two costs, or of two models, as
one symbol or several tied symbols grow: its limit, the growth orders and where one
overtakes the other, with the exact counts at the first whole size past it) and
:func:`crossings` (only where they meet).

>>> from symflops.symbols import N, dim
>>> c = compare(4 * N**2 * 64 + 8 * N * 64**2, 16 * N * 64**2, "N", names=("attn", "mlp"))
>>> c.ratio, c.limit, c.orders
((N + 128)/256, oo, (2, 1))
>>> [(x.root, x.size, x.values) for x in c.crossings]
[(128, 128, (8388608, 8388608))]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
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
    to_symbols,
)
from symflops.analysis.polynomial import growth_order
from symflops.domain import Domain
from symflops.errors import SymflopsError
from symflops.simplification import simplify_expr

__all__ = ["Comparison", "compare", "Crossing", "crossings", "tied"]


@dataclass(frozen=True)
class Crossing:
    """Where ``a`` and ``b`` are equal as ``symbol`` grows: ``root`` exactly (a SymPy
    number or expression, which may hold other symbols left free; for a numeric search the
    first whole size past the change of sign), ``size`` the first whole size >= ``root``
    inside the range asked for and both domains (``None`` while other symbols are free),
    ``values`` the exact ``(a, b)`` there, and ``method``: ``"symbolic"`` (SymPy solved
    ``a = b``) or ``"numeric"`` (an exact integer search, for floors or high degrees)."""

    symbol: sp.Symbol
    root: sp.Expr
    size: int | None
    values: tuple[int, int] | None
    method: str = "symbolic"


def tied(x: Costlike, symbols: SymbolLike | Sequence[SymbolLike],
         at: Mapping[SymbolLike, Any] | None = None, quantity: str = "flops"
         ) -> tuple[sp.Expr, sp.Symbol]:
    """``x`` with ``at`` substituted and every symbol of ``symbols`` set to the first
    (``["H", "W"]``: square inputs): ``(expression, first symbol)``."""
    expr = expression(x, quantity)
    names = [symbols] if isinstance(symbols, (str, sp.Symbol)) else list(symbols)
    syms = to_symbols(names, expr.free_symbols)
    values = by_symbol(at, expr.free_symbols)
    for s in syms:
        values.pop(s, None)
    expr = numeric_subs(expr, values)
    return expr.xreplace({s: syms[0] for s in syms[1:]}), syms[0]


def crossings(a: Costlike, b: Costlike, symbols: SymbolLike | Sequence[SymbolLike],
              at: Mapping[SymbolLike, Any] | None = None, *, quantity: str = "flops",
              within: tuple[int, int | None] | None = None,
              domains: Sequence[Domain] = ()) -> tuple[Crossing, ...]:
    """Every size where ``a`` and ``b`` meet as ``symbols`` grow (tied together), each with
    the first whole size past it and both exact counts there. Only sizes inside
    ``within`` (``(lo, hi)``, ``hi`` None for no end) and inside both Costs' domains count:
    a crossing whose first valid size lies outside is not reported. ``domains`` adds
    domains the size must lie in too (the whole model's, when ``a`` and ``b`` are
    expressions of its parts).

    Solved exactly when ``a - b`` is a polynomial of degree <= 4 in the symbol (other
    symbols may stay free: the root is then an expression); otherwise searched over whole
    sizes inside ``within`` (``(1, 10**9)`` by default), which needs ``at`` to give every
    other symbol a value.

    >>> from symflops.symbols import H, N, dim, mlp_ratio
    >>> [(x.root, x.size, x.values) for x in crossings(H**2, 10 * H + 5, "H")]
    [(5 + sqrt(30), 11, (121, 115))]
    >>> crossings(H**2, 10 * H + 5, "H", within=(100, 1000))
    ()
    >>> [x.root for x in crossings(4 * N**2 * dim, 4 * N * dim**2 * mlp_ratio, "N")]
    [dim*mlp_ratio]
    >>> [(x.root, x.method, x.values) for x in crossings(sp.floor(H / 2)**2, 1000, "H")]
    [(64, 'numeric', (1024, 1000))]
    """
    ea, sym = tied(a, symbols, at, quantity)
    eb, _ = tied(b, symbols, at, quantity)
    lo, hi = within if within is not None else (1, None)
    valid = _valid_size(a, b, symbols, at, domains)
    roots, method = _roots(ea, eb, sym, (max(1, lo), hi if hi is not None else 10**9))
    out = []
    for root in roots:
        if root.is_number and not root.is_real:
            continue
        if root.is_number and (root < 1 or sp.ceiling(root) < lo or
                               (hi is not None and root > hi)):
            continue  # the crossing is outside the sizes asked for
        size = values = None
        if root.is_number:
            size = _first_valid(max(lo, 1, int(sp.ceiling(root))), hi, valid)
            if size is None:
                continue  # past the range or the domains
            va, vb = ea.xreplace({sym: size}), eb.xreplace({sym: size})
            if va.is_Integer and vb.is_Integer:
                values = (int(va), int(vb))
        out.append(Crossing(sym, root, size, values, method))
    return tuple(out)


def _roots(ea: sp.Expr, eb: sp.Expr, sym: sp.Symbol, search: tuple[int, int]
           ) -> tuple[list[sp.Expr], str]:
    """Where ``ea - eb`` changes sign in ``sym``: exact roots (real, not negative) when it is
    a polynomial of degree 1..4 without floors, else the first whole sizes past each change
    of sign inside ``search`` (an exact integer search: Python ints, bisection)."""
    diff = ea - eb
    x = sp.Dummy(sym.name, positive=True)
    dx = diff.xreplace({sym: x})
    if not dx.atoms(sp.floor, sp.ceiling):
        num, _ = sp.fraction(sp.together(dx))
        try:
            poly = sp.Poly(sp.expand(num), x)
        except sp.PolynomialError:
            poly = None
        if poly is not None and 1 <= poly.degree() <= 4:
            sols = [sp.factor(s) for s in sp.solve(poly.as_expr(), x)]
            keep = [simplify_expr(s.xreplace({x: sym})) for s in sols
                    if s.is_positive is not False and s.is_real is not False]
            return sorted(keep, key=lambda r: (not r.is_number, float(r) if r.is_number
                                               else 0.0, str(r))), "symbolic"
    others = diff.free_symbols - {sym}
    if others:
        raise SymflopsError("a numeric crossing search needs values for the other symbols",
                            values={"missing": sorted(s.name for s in others)},
                            fix="give them with {at}",
                            options={"at": dict.fromkeys(sorted(s.name for s in others), ...)})
    from symflops.evaluate import compile_expr

    fn = compile_expr(diff, (sym,))
    lo, hi = search
    grid = np.unique(np.geomspace(lo, hi, 4000).astype(np.int64)) if hi > lo else \
        np.array([lo], dtype=np.int64)

    def sign(points: np.ndarray) -> np.ndarray:  # exact: Python ints, no int64 overflow
        return np.sign(np.asarray(fn(points.astype(object)), dtype=object).astype(float))

    vals = sign(grid)
    found: list[sp.Expr] = []
    for i in np.nonzero(vals[:-1] * vals[1:] < 0)[0]:
        left, right = int(grid[i]), int(grid[i + 1])
        s_left = vals[i]
        while right - left > 1:  # exact integer bisection
            mid = (left + right) // 2
            if sign(np.array([mid]))[0] == s_left:
                left = mid
            else:
                right = mid
        found.append(sp.Integer(right))
    return found, "numeric"


def _valid_size(a: Costlike, b: Costlike, symbols: SymbolLike | Sequence[SymbolLike],
                at: Mapping[SymbolLike, Any] | None, extra: Sequence[Domain] = ()) -> Any:
    """``size -> bool``: whether every tied symbol at ``size`` (and ``at``) lies in the
    domains of ``a`` and ``b`` (plain expressions have no domain)."""
    from symflops.cost import Cost

    names = [symbols] if isinstance(symbols, (str, sp.Symbol)) else list(symbols)
    names = [n if isinstance(n, str) else n.name for n in names]
    fixed = {(k if isinstance(k, str) else k.name): v for k, v in (at or {}).items()}
    domains = [x.domain for x in (a, b) if isinstance(x, Cost)] + list(extra)

    def valid(size: int) -> bool:
        point = {**fixed, **dict.fromkeys(names, size)}
        return all(d.contains(**{k: v for k, v in point.items()
                                 if k in {s.name for s in d.symbols}}) for d in domains)
    return valid


def _first_valid(start: int, hi: int | None, valid: Any, tries: int = 100_000) -> int | None:
    """The first size >= ``start`` (and <= ``hi``) that ``valid`` accepts."""
    stop = start + tries if hi is None else min(hi, start + tries)
    for v in range(start, stop + 1):
        if valid(v):
            return v
    return None


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` (named ``names``) as ``symbol`` grows (any other symbols of
    ``symbols`` tied to it, ``at`` substituted): ``a`` and ``b`` as compared, ``ratio = a /
    b`` and its ``limit``; the growth ``orders`` of each and the ``crossings`` (see
    :func:`crossings`) are worked out when first read."""

    names: tuple[str, str]
    symbol: sp.Symbol
    a: sp.Expr
    b: sp.Expr
    ratio: sp.Expr
    limit: sp.Expr
    #: what :func:`compare` was given, for the crossings (the Costs' domains count)
    _given: tuple[Any, ...] = field(repr=False, compare=False)

    @cached_property
    def orders(self) -> tuple[sp.Expr, sp.Expr]:
        """The growth order of ``a`` and of ``b`` in ``symbol``."""
        return growth_order(self.a, self.symbol), growth_order(self.b, self.symbol)

    @cached_property
    def crossings(self) -> tuple[Crossing, ...]:
        """Every size where ``a`` and ``b`` meet, inside ``within`` and both domains."""
        a, b, symbols, at, quantity, within = self._given
        return crossings(a, b, symbols, at, quantity=quantity, within=within)

    def evaluate(self, values: Any, at: Mapping[SymbolLike, Any] | None = None) -> np.ndarray:
        """The ratio at each value of ``symbol`` (floats); ``at`` gives the symbols left
        free."""
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


def compare(a: Costlike, b: Costlike, symbols: SymbolLike | Sequence[SymbolLike],
            at: Mapping[SymbolLike, Any] | None = None, *, quantity: str = "flops",
            names: tuple[str, str] = ("a", "b"),
            within: tuple[int, int | None] | None = None) -> Comparison:
    """``a`` against ``b`` as ``symbols`` grow: two costs (a model and one of its parts, two
    layers) or two models. Several symbols are tied to the first (``["H", "W"]``: square
    inputs); ``at`` fixes others (``{"B": 1}``); the rest stay free. The ratio ``a / b`` and
    its limit as the symbol goes to infinity are worked out at once; the growth orders and
    the crossings (searched ``within`` a range of sizes and inside both domains, see
    :func:`crossings`) when first read.

    >>> from symflops.symbols import N, dim
    >>> c = compare(4 * N**2 * dim + 8 * N * dim**2, 8 * N * dim**2, "N")
    >>> c.ratio, c.limit, c.orders
    ((N + 2*dim)/(2*dim), oo, (2, 1))
    >>> [x.root for x in compare(4 * N**2 * dim, 8 * N * dim**2, "N").crossings]
    [2*dim]
    """
    if len(names) != 2 or names[0] == names[1]:
        raise SymflopsError("compare needs two different names",
                            values={"names": names}, fix='pass names=("a", "b")')
    ea, sym = tied(a, symbols, at, quantity)
    eb, _ = tied(b, symbols, at, quantity)
    for name, e in zip(names, (ea, eb), strict=True):
        if e.has(sp.Piecewise):  # the limit and crossings are of one formula each
            raise SymflopsError(f"{name} is joined over code paths (a Piecewise), and which "
                                f"path holds as {sym} grows is not one formula",
                                values={name: e}, fix="compare one code path: trace with "
                                "{paths} (the example's path), or give {hints} on the path "
                                "you want", options={"paths": "one", "hints": ...})
    if ea == 0 or eb == 0:
        which = names[0] if ea == 0 else names[1]
        raise SymflopsError(f"{which} costs 0 {quantity}", fix="compare models that do work "
                                                               "of this kind")
    ratio = ea / eb
    if not ratio.atoms(sp.floor, sp.ceiling):
        ratio = sp.factor(sp.cancel(ratio))
    x = sp.Dummy(sym.name, positive=True)
    relaxed = (relax_floors(ea) / relax_floors(eb)).xreplace({sym: x})
    limit = sp.limit(sp.cancel(relaxed), x, sp.oo)
    return Comparison(tuple(names), sym, ea, eb, ratio, limit,  # type: ignore[arg-type]
                      (a, b, symbols, at, quantity, within))
