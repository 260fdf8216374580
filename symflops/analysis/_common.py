"""What every analysis shares: the expression of a Cost or a SymPy expression, symbols by
name, substituted values, floors (a private submodule of :mod:`symflops.analysis`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np
import sympy as sp

from symflops.cost import Cost, size_value
from symflops.errors import SymflopsError

Costlike: TypeAlias = Cost | sp.Expr | int
SymbolLike: TypeAlias = sp.Symbol | str


def expression(x: Costlike, quantity: str = "flops") -> sp.Expr:
    """The expression to analyse: ``x.quantity(quantity)`` for a Cost, ``x`` itself else."""
    if isinstance(x, Cost):
        return x.quantity(quantity)
    if isinstance(x, bool):
        raise SymflopsError("expected a Cost or an expression", values={"value": x})
    if isinstance(x, (int, np.integer)):
        return sp.Integer(int(x))
    if isinstance(x, sp.Expr):
        return x
    raise SymflopsError("expected a Cost or a SymPy expression",
                        values={"type": type(x).__name__},
                        fix="pass a Cost, or parse text with symflops.parse.parse_expr")


def free_symbols_of(x: Costlike) -> set[sp.Symbol]:
    """The symbols ``x`` depends on (a Cost's shapes included)."""
    if isinstance(x, Cost):
        return x.free_symbols
    return expression(x).free_symbols


def to_symbol(s: SymbolLike, known: Iterable[sp.Symbol] = ()) -> sp.Symbol:
    """``s`` as a Symbol: a name is parsed and matched against ``known`` first."""
    if isinstance(s, sp.Symbol):
        return s
    if isinstance(s, str):
        from symflops.parse import parse_name
        from symflops.symbols import symbol

        name = parse_name(s)
        for k in known:
            if k.name == name:
                return k
        return symbol(name)
    raise SymflopsError("expected a symbol or a symbol name", values={"symbol": repr(s)})


def to_symbols(syms: SymbolLike | Iterable[SymbolLike], known: Iterable[sp.Symbol] = ()
               ) -> tuple[sp.Symbol, ...]:
    """One symbol or several as a non-empty tuple of Symbols (see :func:`to_symbol`)."""
    known = tuple(known)
    if isinstance(syms, (str, sp.Symbol)):
        return (to_symbol(syms, known),)
    out = tuple(to_symbol(s, known) for s in syms)
    if not out:
        raise SymflopsError("no symbols given", fix="name at least one symbol, e.g. H")
    return out


def by_symbol(values: Mapping[Any, Any] | None, known: Iterable[sp.Symbol] = ()
              ) -> dict[sp.Symbol, Any]:
    """``values`` keyed by Symbol (names resolved with :func:`to_symbol`)."""
    known = tuple(known)
    return {to_symbol(k, known): v for k, v in (values or {}).items()}


def numeric_subs(expr: sp.Expr, values: Mapping[sp.Symbol, Any]) -> sp.Expr:
    """``expr`` with ``values`` substituted, each checked as a size (an int, or an
    expression SymPy proves a positive integer; never text)."""
    return expr.xreplace({k: size_value("analysis", k, v) for k, v in values.items()})


def relax_floors(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``floor(a)``/``ceiling(a)`` replaced by ``a``.

    The result differs from ``expr`` by lower-order terms only, so it has the same
    growth order and leading coefficients.
    """
    return expr.replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)),
                        lambda e: e.args[0])


def floors_in(expr: sp.Expr, sym: sp.Symbol) -> list[sp.Expr]:
    """The floors and ceilings of ``expr`` that depend on ``sym``."""
    return [f for f in expr.atoms(sp.floor, sp.ceiling) if sym in f.free_symbols]
