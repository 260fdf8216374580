"""Styles: what a render is for. ``report`` (the default: every module, derivations),
``paper`` (one display equation with the total, collected in the symbols a paper uses,
and a table that fits a column) and ``appendix`` (the long derivation form). A style
names a template per format; a new one is a template and one registration.

>>> sorted(styles())
['appendix', 'paper', 'report']
>>> get_style("paper").template_for("latex")
'paper.tex.j2'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.notation import latex_expr, shown_form
from symflops.rendering._equation import visible_width
from symflops.simplification import collect, shown

__all__ = ["Style", "register_style", "unregister_style", "get_style", "styles", "collected_terms",
           "symbols_named", "TermColumns", "term_columns"]


@dataclass(frozen=True)
class Style:
    """A style: its templates by format name (none: the format's own template), the depth
    it shows when ``render`` is given none, and whether it wants derivations."""

    name: str
    description: str
    templates: Mapping[str, str] = field(default_factory=dict)
    depth: int | None = None
    derivations: bool = True
    #: adds the style's own entries to a render's context
    extend: Callable[[dict[str, Any]], None] | None = None
    #: its table sits in one column of a two-column page (``table_rows``, ``narrow`` and
    #: ``flops_terms`` in the context): fewer levels when too tall, values at a stated
    #: size when the formulas cannot stay on one line
    column_table: bool = False

    def template_for(self, fmt: str) -> str | None:
        """The template of format ``fmt`` in this style (None: the format's own); a format
        the style has no template for is an error naming those it has."""
        if not self.templates:
            return None
        try:
            return self.templates[fmt]
        except KeyError:
            raise SymflopsError(f"the {self.name} style has no {fmt} template",
                                values={"style": self.name, "format": fmt},
                                fix="use format " + " or ".join(sorted(self.templates))
                                + ", or {style}", options={"style": "report"}) from None


_STYLES: dict[str, Style] = {}
_BUILTIN = ("report", "paper", "appendix")


def register_style(style: Style, *, replace: bool = False) -> Style:
    """Make ``style`` available to ``render(..., style=name)``."""
    if style.name in _STYLES and not replace:
        raise SymflopsError("a style with this name is already registered",
                            values={"style": style.name},
                            fix="pick another name or pass replace=True")
    _STYLES[style.name] = style
    return style


def unregister_style(name: str) -> None:
    """Remove a user style (the built-in ones stay)."""
    if name in _BUILTIN:
        raise SymflopsError("built-in styles cannot be removed", values={"style": name})
    _STYLES.pop(name, None)


def get_style(name: str) -> Style:
    """A registered style by name."""
    try:
        return _STYLES[name]
    except (KeyError, TypeError):
        raise SymflopsError("unknown render style", values={"style": name},
                            fix="use one of " + ", ".join(
                                f"style={n!r} ({s.description})"
                                for n, s in _STYLES.items())) from None


def styles() -> dict[str, Style]:
    """All registered styles by name."""
    return dict(_STYLES)


def symbols_named(cost: Cost, symbols: Sequence[Any] | None) -> tuple[sp.Symbol, ...]:
    """The symbols a user names (``["L", "N"]`` or SymPy symbols) among ``cost``'s free
    symbols; a name the cost does not have is an error listing those it has."""
    if symbols is None:
        return ()
    if isinstance(symbols, (str, sp.Symbol)):
        symbols = [symbols]
    by_name = {s.name: s for s in cost.free_symbols}
    out = []
    for s in symbols:
        name = s.name if isinstance(s, sp.Symbol) else s
        if not isinstance(name, str) or name not in by_name:
            raise SymflopsError("symbols names a symbol the cost does not have",
                                values={"symbol": name, "layer": cost.spec},
                                fix="use some of " + ", ".join(sorted(by_name))
                                if by_name else "the cost has no symbols: drop symbols=")
        out.append(by_name[name])
    return tuple(dict.fromkeys(out))


def _degree(monomial: sp.Expr) -> int:
    """Total degree of a product of powers of ``symbols`` (a floor counts as degree 1)."""
    total = 0
    for factor in sp.Mul.make_args(monomial):
        if factor.is_number:
            continue
        base, exp = factor.as_base_exp()
        total += int(exp) if exp.is_Integer else 1
    return total


def collected_terms(expr: sp.Expr, symbols: Sequence[sp.Symbol] = ()
                    ) -> list[tuple[sp.Expr, sp.Expr]]:
    """``expr`` as terms ``(coefficient, monomial)``: with ``symbols``, one term per
    monomial in those symbols (highest degree first), its coefficient collected
    (:func:`symflops.simplification.collect`); without, the display form's terms.

    >>> from symflops.symbols import B, L, N, dim
    >>> collected_terms(B * L * N * (24 * dim**2 + 4 * N * dim), [L, N])
    [(4*B*dim, L*N**2), (24*B*dim**2, L*N)]
    """
    if not expr.free_symbols:
        return [(expr, sp.Integer(1))]
    if not symbols:
        return [(term, sp.Integer(1)) for term in sp.Add.make_args(shown(expr))]
    groups: dict[sp.Expr, list[sp.Expr]] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        coefficient, monomial = term.as_independent(*symbols, as_Add=False)
        groups.setdefault(monomial, []).append(coefficient)
    ordered = sorted(groups, key=lambda m: (-_degree(m), sp.default_sort_key(m)))
    return [(collect(sp.Add(*groups[m])), m) for m in ordered]


def _table_rows(ctx: dict[str, Any]) -> None:
    """The paper table: rows with something to show (a Flatten or Dropout, no parameters
    and no work, would be an empty row), and per column whether every cell is short (a
    number or a short formula: right-aligned) or some formula is long (a column that
    wraps)."""
    def empty(r: Mapping[str, Any]) -> bool:
        return bool(r["params"].shown == 0 and r["flops"].shown == 0)

    def short(x: sp.Expr) -> bool:  # a number, or a formula as short as one
        return bool(x.is_Integer) or \
            visible_width(latex_expr(shown_form(x), inline=True)) <= _SHORT_FORMULA

    rows = [r for r in ctx["rows"] if not empty(r)]
    ctx["table_rows"] = rows
    ctx["narrow"] = {q: all(short(r[q].shown) for r in rows) and short(ctx["total"][q].shown)
                     for q in ("params", "flops")}
    terms = term_columns([r["flops"].shown for r in rows], ctx["total"]["flops"].shown)
    ctx["flops_terms"] = terms
    if terms is not None:
        for r in rows:
            r["flops_terms"] = terms.coefficients(r["flops"].shown)
        ctx["total_flops_terms"] = terms.coefficients(ctx["total"]["flops"].shown)
        ctx["narrow"]["flops"] = True


@dataclass(frozen=True)
class TermColumns:
    """A table's FLOPs as integer multiples of a few monomials (``B ceil(H/2) ceil(W/2)``
    and ``B``): one column per monomial, so every cell is a number on one line."""

    monomials: tuple[sp.Expr, ...]

    @property
    def factors(self) -> list[list[sp.Expr]]:
        """Each monomial's factors (numbers and symbols first, a ceiling each after), for a
        header that stacks them over the column's numbers."""
        out = []
        for m in self.monomials:
            plain = sp.Mul(*(f for f in sp.Mul.make_args(m) if not f.is_Function))
            rest = sorted((f for f in sp.Mul.make_args(m) if f.is_Function),
                          key=sp.default_sort_key)
            out.append(([plain] if plain != 1 or not rest else []) + rest)
        return out

    def coefficients(self, expr: sp.Expr) -> list[sp.Integer]:
        """``expr``'s integer coefficient of each monomial (``expr`` is their sum)."""
        parts = _monomial_parts(expr)
        assert parts is not None and set(parts) <= set(self.monomials)
        return [sp.Integer(parts.get(m, 0)) for m in self.monomials]


def _monomial_parts(expr: sp.Expr) -> dict[sp.Expr, int] | None:
    """``expr`` (as the render shows it) expanded: monomial -> integer coefficient (a
    number's monomial is 1); None when a coefficient is not an integer."""
    out: dict[sp.Expr, int] = {}
    for monomial, c in sp.expand(shown_form(expr)).as_coefficients_dict().items():
        if not c.is_Integer:
            return None
        if c != 0:
            out[monomial] = int(c)
    return out


#: the most monomials a table's FLOPs are factored into (one column each)
_TERM_COLUMNS = 3


def term_columns(exprs: Sequence[sp.Expr], total: sp.Expr) -> TermColumns | None:
    """The monomials (highest degree first, at most :data:`_TERM_COLUMNS`) of which every
    one of ``exprs`` is an integer combination, when ``total`` depends on the sizes and
    every expression is such a combination; else None (the cells stay formulas).

    >>> from symflops.symbols import B, H, W
    >>> term_columns([12 * B * H * W, 8 * B * H * W + 640 * B], 20 * B * H * W + 640 * B)
    TermColumns(monomials=(B*H*W, B))
    """
    if not sp.sympify(total).free_symbols:
        return None
    monomials: set[sp.Expr] = set()
    for e in [*exprs, total]:
        parts = _monomial_parts(sp.sympify(e))
        if parts is None:
            return None
        monomials |= set(parts)
    if len(monomials) > _TERM_COLUMNS:
        return None
    return TermColumns(tuple(sorted(monomials, key=lambda m: (-_degree(m),
                                                               sp.default_sort_key(m)))))


#: a formula this short (printed characters, ``L d (12 d + 13)``: 11) stays on one line
_SHORT_FORMULA = 12



register_style(Style("report", "every module and each layer's derivation, the default"))
register_style(Style(
    "paper", "one display equation and a table that fits a column",
    templates={"latex": "paper.tex.j2", "markdown": "paper.md.j2"}, depth=2,
    derivations=False, extend=_table_rows, column_table=True))
register_style(Style(
    "appendix", "the total and each layer's derivation, for an appendix",
    templates={"latex": "appendix.tex.j2", "markdown": "appendix.md.j2"}))
