"""``symflops report``: one model, or several to compare, as an interactive HTML page
(:func:`symflops.rendering._html_report.report`)."""

from __future__ import annotations

import argparse

import sympy as sp

from symflops.cli._input_args import (
    at_names,
    cost_of,
    fixed_dims,
    resolve_at,
    short_names,
    target_of,
    write,
)
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.parse import parse_assignments, parse_name

__all__ = ["cmd_report"]


def _starts(args: argparse.Namespace) -> dict[str, int]:
    """Where the sliders start: ``--start`` values, else the ``--hint`` sizes."""
    starts: dict[str, int] = {}
    for flag, texts in (("--hint", args.hint or []), ("--start", [args.start or ""])):
        for text in texts:
            if not text.strip():
                continue
            for sym, val in parse_assignments(text).items():
                if not val.is_Integer:
                    raise SymflopsError(f"{flag}: a slider starts at a whole number",
                                        values={sym.name: val}, fix=f"write {flag} H=224")
                starts[sym.name] = int(val)
    return starts


def cmd_report(args: argparse.Namespace) -> int:
    from symflops.rendering._html_report import report

    names = short_names(args.targets)
    if len(set(names.values())) != len(args.targets):
        raise SymflopsError("report: a target is named twice",
                            values={"targets": " ".join(args.targets)},
                            fix="name each model once")
    var = parse_name(args.var) if args.var is not None else None
    built = {spec: cost_of(target_of(spec), args) for spec in args.targets}
    for cost in built.values():
        fixed_dims(cost, args, at_names(args.at), "--at")
    union = Cost("all", "targets", children=list(built.values()))
    at = resolve_at(union, args.at)
    costs: dict[str, Cost] = {}
    for spec, cost in built.items():
        mine: dict[sp.Symbol, sp.Expr] = {s: v for s, v in at.items()
                                          if s in cost.free_symbols}
        costs[names[spec]] = cost.subs(mine) if mine else cost
    known = {s.name for c in costs.values() for s in c.free_symbols}
    starts = {k: v for k, v in _starts(args).items() if k in known}
    html = report(costs, title=args.title, var=var, quantity=args.quantity, at=starts,
                  depth=args.depth or 2, fold=args.fold)
    write(html, args.output)
    return 0
