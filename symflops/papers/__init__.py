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
>>> claim.paper_formula()
C_in*C_out*H*W + C_in*H*K**2*W
>>> claim.remainder()
0
>>> PAPERS["mobilenet"].claims[1].paper_formula()
K**(-2) + 1/C_out
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from symflops.errors import SymflopsError
from symflops.papers import lm, systems, vision  # noqa: F401  (they register their papers)
from symflops.papers._claims import PAPERS, Claim, Paper, Row, Term, register_paper

__all__ = ["Term", "Row", "Claim", "Paper", "PAPERS", "register_paper", "papers_document",
           "write_papers", "DEFAULT_PATH"]

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "docs" / "papers.md"


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

