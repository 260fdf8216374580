"""Polynomial views of a cost: aligned (floor-free) forms, total strides, growth orders
and terms."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symflops.analysis._common import (
    Costlike,
    SymbolLike,
    by_symbol,
    expression,
    floors_in,
    free_symbols_of,
    numeric_subs,
    relax_floors,
    to_symbols,
)
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.simplification import simplify_expr

__all__ = ["aligned", "alignment", "total_stride", "growth_order", "path_orders", "Term",
           "terms", "leading_terms"]


# ----------------------------------------------------------------------------- aligned form
def aligned(x: Any, multiples: Mapping[SymbolLike, int], *, quantity: str | None = None,
            verify: bool = True) -> Any:
    """The floor-free form of ``x`` when each symbol is a multiple of the given number.

    Substitutes ``H = m*h`` (``h`` a positive integer), lets SymPy take the integer parts
    out of every ``floor``/``ceiling``, and writes the result in ``H`` again, so
    ``floor((H - 1)/2) + 1`` becomes ``H/2`` for ``H`` a multiple of 2. A Cost gives a
    Cost (every node aligned), an expression an expression (``quantity`` picks one
    quantity of a Cost instead). The result is checked against ``x`` at several
    multiples. Raises when a floor in an aligned symbol remains (the multiple is too
    small), naming the multiple :func:`alignment` finds for the same ``x``.

    >>> from symflops.symbols import H
    >>> aligned(sp.floor((H - 1) / 2) + 1, {H: 32})
    H/2
    """
    if quantity is not None:
        x = expression(x, quantity)
    elif not isinstance(x, Cost):
        x = expression(x)
    mapping = by_symbol(multiples, free_symbols_of(x))
    forward: dict[sp.Symbol, sp.Expr] = {}
    back: dict[sp.Symbol, sp.Expr] = {}
    for sym, m in mapping.items():
        if isinstance(m, bool) or not isinstance(m, (int, np.integer, sp.Integer)) or m < 1:
            raise SymflopsError("alignment multiples must be positive integers",
                                values={sym.name: m}, fix=f"pass e.g. {{{sym.name}: 32}}")
        q = sp.Dummy(f"{sym.name}_q", integer=True, positive=True)
        forward[sym] = sp.Integer(int(m)) * q
        back[q] = sym / sp.Integer(int(m))
    if isinstance(x, Cost):
        result: Any = x.xreplace(forward).xreplace(back)  # a change of variables
        exprs = [n.quantity(k) for _, n in result.walk() for k in ("params", *n.work)]
        exprs += [s for _, n in result.walk() for s in n.output_shape]
        checks = [(expression(x, k), expression(result, k)) for k in ("params", "macs", "flops")]
    else:
        result = sp.expand(x.xreplace(forward)).xreplace(back)
        exprs, checks = [result], [(x, result)]
    for e in exprs:
        for sym in mapping:
            left = floors_in(e, sym)
            if left:
                need = alignment(x, sym)[sym]  # what it checked, so advice and answer agree
                raise SymflopsError(
                    f"{sym.name} = {mapping[sym]}*k does not remove every floor",
                    values={"floor": left[0]},
                    fix=f"take {sym.name} a multiple of {need}, the smallest that does "
                        "(symflops.analysis.alignment)")
    if verify:
        _verify_aligned(checks, mapping)
    return result


def _verify_aligned(pairs: Sequence[tuple[sp.Expr, sp.Expr]], mapping: Mapping[sp.Symbol, Any]
                    ) -> None:
    others: set[sp.Symbol] = set()
    for a, b in pairs:
        others |= (a.free_symbols | b.free_symbols) - set(mapping)
    primes = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)
    fill = {s: primes[i % len(primes)] for i, s in enumerate(sorted(others, key=str))}
    for k in (1, 2, 3, 7, 10):
        point = {s: int(m) * (k + i) for i, (s, m) in enumerate(mapping.items())}
        point.update(fill)
        for a, b in pairs:
            va, vb = numeric_subs(a, point), numeric_subs(b, point)
            if sp.simplify(va - vb) != 0:
                raise SymflopsError("aligned form disagrees with the exact form",
                                    values={"at": point, "exact": va, "aligned": vb},
                                    fix="report this as a bug in symflops.analysis")


def _divisor_bound(expr: sp.Expr, sym: sp.Symbol) -> int:
    """A multiple that removes every floor in ``sym``: the lcm over floors of the product
    of the denominators along each chain of nested floors."""
    best = 1
    for f in expr.atoms(sp.floor, sp.ceiling):
        if sym not in f.free_symbols:
            continue
        arg = f.args[0]
        inner_free = relax_floors(arg) if arg.atoms(sp.floor, sp.ceiling) else arg
        den = 1
        for term in sp.Add.make_args(sp.expand(inner_free)):
            d = term.as_numer_denom()[1]
            if not d.is_Integer:
                raise SymflopsError("cannot align a floor with a symbolic divisor",
                                    values={"floor": f},
                                    fix="substitute the divisor first (--at)")
            den = math.lcm(den, int(d))
        nested = _divisor_bound(arg, sym) if arg.atoms(sp.floor, sp.ceiling) else 1
        best = math.lcm(best, den * nested)
    return best


def alignment(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
              quantity: str | None = None) -> dict[sp.Symbol, int]:
    """The smallest multiple of each symbol that makes ``x`` floor-free in it.

    For a Cost this covers what :func:`aligned` aligns: every node's parameters, work of
    every kind (weighed by the convention or not) and output shape, so ``aligned(cost,
    alignment(cost, ...))`` always works; ``quantity`` looks at one quantity only. For a
    network this is its total stride (32 for a ResNet).

    >>> from symflops.symbols import H
    >>> alignment(sp.floor(sp.floor((H - 1) / 2) / 2) + 1, H)
    {H: 4}
    """
    if isinstance(x, Cost) and quantity is None:
        expr = sp.Add(*_tree_floors(x))
    else:
        expr = expression(x, quantity or "flops")
    out: dict[sp.Symbol, int] = {}
    for sym in to_symbols(symbols, expr.free_symbols):
        if not floors_in(expr, sym):
            out[sym] = 1
            continue
        bound = _divisor_bound(expr, sym)
        for d in sorted(d for d in sp.divisors(bound)):
            q = sp.Dummy("q", integer=True, positive=True)
            if not floors_in(expr.xreplace({sym: d * q}), q):
                out[sym] = int(d)
                break
        else:  # pragma: no cover - the bound always works for linear floor arguments
            raise SymflopsError("no multiple removes the floors", values={"symbol": sym})
    return out


def total_stride(cost: Cost) -> dict[sp.Symbol, int]:
    """The multiple of each dim that removes every floor anywhere in ``cost``: in the work
    and parameters of every node and in every output shape (a network's total stride).

    >>> from symflops import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.MaxPool2d(2))
    >>> total_stride(net.cost(("B", 3, "H", "W")))
    {H: 4, W: 4}
    """
    floors = _tree_floors(cost)
    syms = sorted({s for f in floors for s in f.free_symbols}, key=lambda s: s.name)
    return alignment(cost, syms) if syms else {}


def _tree_floors(cost: Cost) -> set[sp.Expr]:
    """Every floor and ceiling in the parameters, work and output shape of every node."""
    floors: set[sp.Expr] = set()
    for _, node in cost.walk():
        for e in (node.params, *node.work.values(), *node.output_shape):
            floors |= e.atoms(sp.floor, sp.ceiling)
    return floors


def _polynomial_expr(x: Costlike, syms: tuple[sp.Symbol, ...], quantity: str,
                     align: Mapping[SymbolLike, int] | str | None) -> sp.Expr:
    expr = expression(x, quantity)
    if not any(floors_in(expr, s) for s in syms):
        return expr
    if align is None:
        return relax_floors(expr)
    if align == "auto":
        align = alignment(expr, syms)  # the expression analysed, not the whole tree
    if isinstance(align, str):
        raise SymflopsError("align must be 'auto', None or a mapping", values={"align": align})
    return aligned(expr, align)


# ----------------------------------------------------------------------------- growth
def growth_order(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                 quantity: str = "flops") -> sp.Expr:
    """The degree of ``x`` in a symbol, or jointly in a group of symbols.

    Scaling every symbol of the group by ``t`` and letting ``t`` grow, the cost grows as
    ``t**order``. Floors do not change the order. ResNets: 1 in ``H``, 2 in ``[H, W]``.

    >>> from symflops.symbols import N, dim
    >>> growth_order(N**2 * dim + N * dim**2, "N"), growth_order(N**2 * dim, [N, dim])
    (2, 3)
    """
    expr = expression(x, quantity)
    syms = to_symbols(symbols, expr.free_symbols)
    if expr == 0:
        return sp.S.NegativeInfinity
    if expr.has(sp.Piecewise):  # a cost joined over code paths (trace paths='all')
        return _order_over_paths(expr, syms)
    t = sp.Dummy("t", positive=True)
    scaled = relax_floors(expr).xreplace({s: t * s for s in syms})
    try:
        return sp.Integer(sp.Poly(sp.expand(scaled), t).degree())
    except sp.PolynomialError:
        order = sp.limit(sp.log(scaled) / sp.log(t), t, sp.oo)
        if not order.is_finite:
            raise SymflopsError("cannot find a growth order", values={"expr": expr}) from None
        return order


def path_orders(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                quantity: str = "flops") -> list[tuple[sp.Basic, sp.Expr]]:
    """``(condition, growth order)`` of each code path of a cost joined over paths (a
    Piecewise, from ``trace(..., paths="all")``); one ``(True, order)`` for one formula.

    >>> from symflops.symbols import H, W
    >>> path_orders(sp.Piecewise((3*H*W, H >= 17), (9*H**2*W, True)), "H")
    [(H >= 17, 1), (True, 2)]
    """
    expr = expression(x, quantity)
    syms = to_symbols(symbols, expr.free_symbols)
    if not expr.has(sp.Piecewise):
        return [(sp.true, growth_order(expr, syms))]
    folded = sp.piecewise_fold(expr)
    if not isinstance(folded, sp.Piecewise):  # a Piecewise inside a function
        raise SymflopsError("cannot find a growth order", values={"expr": expr})
    return [(c, growth_order(e, syms)) for e, c in folded.args]


def _order_over_paths(expr: sp.Expr, syms: Sequence[sp.Symbol]) -> sp.Expr:
    """:func:`growth_order` of a cost joined over code paths: the order they share, or an
    error naming each path's. Which path holds as the sizes grow depends on the sizes not
    scaled, so no one order is given for paths that differ.

    >>> from symflops.symbols import H, W
    >>> growth_order(sp.Piecewise((3*H*W, H >= 17), (9*H*W, True)), "H")
    1
    """
    orders = path_orders(expr, syms)
    if len({o for _, o in orders}) == 1:
        return orders[0][1]
    raise SymflopsError("the code paths grow at different orders", values={
        str(c): o for c, o in orders},
        fix="ask one path: the cost's formula on a size range of that path (its condition)")


@dataclass(frozen=True)
class Term:
    """One term of a cost polynomial: ``coefficient * monomial``, with ``degree`` the
    total degree of ``monomial`` in the symbols asked about."""

    monomial: sp.Expr
    coefficient: sp.Expr
    degree: int

    @property
    def expr(self) -> sp.Expr:
        return self.coefficient * self.monomial

    def __str__(self) -> str:
        return str(self.expr)


def terms(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike], quantity: str = "flops",
          align: Mapping[SymbolLike, int] | str | None = "auto") -> list[Term]:
    """``x`` as a polynomial in ``symbols``: its terms, highest degree first.

    Coefficients may hold the other symbols. Floors in ``symbols`` are first removed:
    ``align="auto"`` aligns to the smallest multiple that removes them (so the terms are
    exact at multiples of the total stride), a mapping aligns to given multiples, and
    ``None`` drops the floors (leading terms stay exact, lower ones are approximate).

    >>> from symflops.symbols import N, dim
    >>> [str(t) for t in terms(3 * N**2 * dim + 2 * N * dim**2 + 5, "N")]
    ['3*N**2*dim', '2*N*dim**2', '5']
    """
    expr = expression(x, quantity)
    syms = to_symbols(symbols, expr.free_symbols)
    poly_expr = sp.expand(_polynomial_expr(expr, syms, quantity, align))
    try:
        poly = sp.Poly(poly_expr, *syms)
    except sp.PolynomialError:
        raise SymflopsError("the cost is not a polynomial in these symbols",
                            values={"symbols": [s.name for s in syms]},
                            fix="use growth_order for non-polynomial costs") from None
    out = []
    for exps, coeff in poly.terms():
        mono = sp.Mul(*(s**e for s, e in zip(syms, exps, strict=True)))
        out.append(Term(mono, simplify_expr(sp.sympify(coeff)), int(sum(exps))))
    out.sort(key=lambda t: (-t.degree, sp.default_sort_key(t.monomial)))
    return out


def leading_terms(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                  quantity: str = "flops", align: Mapping[SymbolLike, int] | str | None = None
                  ) -> list[Term]:
    """The terms of highest total degree in ``symbols`` (see :func:`terms`).

    >>> from symflops.symbols import H, W
    >>> [str(t) for t in leading_terms(sp.floor(H / 2) * sp.floor(W / 2) + H, [H, W])]
    ['H*W/4']
    """
    all_terms = terms(x, symbols, quantity, align)
    if not all_terms:
        return []
    top = all_terms[0].degree
    return [t for t in all_terms if t.degree == top]
