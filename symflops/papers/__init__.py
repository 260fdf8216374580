"""The scaling papers' formulas, derived from symflops' own layers and presets.

Each :class:`Claim` is one formula a paper writes (its parameters, FLOPs or memory), and
three SymPy expressions: what symflops derives for the same model from ``sf.nn`` layers or
``sf.presets`` under the paper's convention, the paper's formula, and the terms the paper
drops, each with the reason. The promise a claim keeps (checked by the tests, and again when
the page is generated) is symbolic, not numeric::

    derived == paper + sum(dropped terms)

``docs/papers.md`` is generated from :data:`PAPERS` and never edited by hand (a test fails
when it is stale). Regenerate it with ``python -m symflops.papers`` (or ``symflops doc
--papers``).

>>> claim = PAPERS["mobilenet"].claims[0]
>>> claim.remainder()
0
>>> claim.paper_formula()
1/K**2 + 1/C_out
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError

__all__ = ["Term", "Row", "Claim", "Paper", "PAPERS", "register_paper", "papers_document",
           "write_papers", "DEFAULT_PATH"]

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "docs" / "papers.md"


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


def _entry(claim: Claim) -> dict[str, Any]:
    rest = claim.remainder()
    if rest != 0:
        raise SymflopsError("derived != paper + dropped terms", layer=f"claim {claim.name!r}",
                            values={"remainder": rest},
                            fix="the claim's dropped terms are wrong: fix them, not the page")
    dropped = [{"expr": t.expr, "why": t.why} for t in claim.terms]
    example = None
    if claim.example:
        d = claim.at_example(claim.derived_expr)
        p = claim.at_example(claim.paper_expr)
        example = {"name": claim.example_name, "derived": d, "paper": p,
                   "difference": d - p,
                   "relative": (d - p) / p if p != 0 else None}
    rows = [{"name": r.name, "derived": claim.at_example(claim.derived_expr, r.values),
             "paper": claim.at_example(claim.paper_expr, r.values), "published": r.published}
            for r in claim.rows]
    return {"name": claim.name, "quantity": claim.quantity, "convention": claim.convention,
            "derived": claim.derived_expr, "paper": claim.paper_expr,
            "paper_text": claim.paper_text, "how": claim.how, "dropped": dropped,
            "example": example, "published": claim.published, "rows": rows}


def _context() -> dict[str, Any]:
    return {"papers": [{"key": p.key, "citation": p.citation, "where": p.where,
                        "claims": [_entry(c) for c in p.claims]} for p in PAPERS.values()]}


def papers_document() -> str:
    """``docs/papers.md``: every registered paper's claims, derived and checked."""
    from symflops.rendering import get_format, render_template

    return render_template(get_format("markdown"), _context(), "grouped", None,
                           template="papers.md.j2")


def write_papers(path: str | Path = DEFAULT_PATH) -> Path:
    """Write :func:`papers_document` to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(papers_document(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m symflops.papers [--output FILE] [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m symflops.papers",
                                     description="write docs/papers.md")
    parser.add_argument("--output", "-o", default=str(DEFAULT_PATH))
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if FILE is not what would be written")
    args = parser.parse_args(argv)
    if args.check:
        path = Path(args.output)
        if not path.exists() or path.read_text(encoding="utf-8") != papers_document():
            sys.stderr.write(f"symflops: {path} is stale; run: python -m symflops.papers\n")
            return 1
        return 0
    print(write_papers(args.output))
    return 0


# The papers register themselves on import (after the names above exist).
from symflops.papers import lm, vision  # noqa: E402, F401
