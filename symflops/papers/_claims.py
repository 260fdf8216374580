"""What a paper claims: :class:`Claim`, :class:`Paper` and the registry :data:`PAPERS`.

The paper modules (:mod:`symflops.papers.lm`, :mod:`symflops.papers.vision`) import this
module and register their papers; :mod:`symflops.papers` imports them all and renders the
page. Nothing here imports the paper modules, so the imports go one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from symflops.errors import SymflopsError

__all__ = ["Term", "Row", "Claim", "Paper", "PAPERS", "register_paper"]


@dataclass(frozen=True)
class Term:
    """A term a paper leaves out of its formula (``derived - paper``), and why."""

    expr: sp.Expr
    why: str


@dataclass(frozen=True)
class Row:
    """One model of a paper's table: its sizes and the figure the paper prints for it."""

    name: str
    values: Mapping[str, int]
    published: str


@dataclass(frozen=True)
class Claim:
    """One formula of a paper, derived by symflops and compared symbolically.

    ``derived`` and ``paper`` are zero-argument callables (the presets are built when the
    claim is checked, not at import); ``example`` holds the paper's own example model as
    ``{symbol name: value}``; ``published`` is the figure the paper prints for it, if any,
    with ``published_as`` saying how it is written there.
    """

    name: str
    quantity: str
    convention: str
    derived: Callable[[], sp.Expr]
    paper: Callable[[], sp.Expr]
    dropped: Callable[[], Sequence[Term]] = lambda: ()
    paper_text: str = ""
    how: str = ""
    example_name: str = ""
    example: Mapping[str, int] = field(default_factory=dict)
    published: str = ""
    rows: tuple[Row, ...] = ()

    @cached_property
    def derived_expr(self) -> sp.Expr:
        return sp.sympify(self.derived())

    @cached_property
    def paper_expr(self) -> sp.Expr:
        return sp.sympify(self.paper())

    @cached_property
    def terms(self) -> tuple[Term, ...]:
        return tuple(self.dropped())

    def paper_formula(self) -> sp.Expr:
        return self.paper_expr

    def remainder(self) -> sp.Expr:
        """``derived - paper - sum(dropped)``, simplified: 0 when the claim holds."""
        rest = self.derived_expr - self.paper_expr - sum((t.expr for t in self.terms),
                                                          sp.Integer(0))
        return sp.simplify(sp.factor(sp.together(rest)))

    def at_example(self, expr: sp.Expr, example: Mapping[str, int] | None = None) -> sp.Expr:
        """``expr`` at the paper's example model (every symbol given a value)."""
        example = self.example if example is None else example
        values = {s: example[s.name] for s in expr.free_symbols if s.name in example}
        missing = sorted(s.name for s in expr.free_symbols if s.name not in example)
        if missing:
            raise SymflopsError("the example model does not give every symbol a value",
                                layer=f"claim {self.name!r}", values={"missing": missing},
                                fix="add the missing sizes to the claim's example")
        return sp.nsimplify(expr.xreplace(values))


@dataclass(frozen=True)
class Paper:
    """A paper: its citation, where its formulas are, and its claims."""

    key: str
    citation: str
    where: str
    claims: tuple[Claim, ...]


PAPERS: dict[str, Paper] = {}


def register_paper(paper: Paper) -> Paper:
    """Add ``paper`` to :data:`PAPERS` (a key may be registered once)."""
    if paper.key in PAPERS:
        raise SymflopsError("a paper with this key is already registered",
                            values={"key": paper.key}, fix="choose another key")
    PAPERS[paper.key] = paper
    return paper
