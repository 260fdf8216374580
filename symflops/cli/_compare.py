"""``symflops compare A B --var H``: two models side by side (the ratio of their costs,
its limit, their growth orders, where one overtakes the other with the exact counts
there; with ``--range`` a table, with ``--plot`` the plot with the crossovers marked)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import sympy as sp

from symflops.cli._input_args import (
    cost_of,
    fixed_dims,
    read_range,
    short_names,
    swept_at,
    target_of,
    write,
)
from symflops.cli._scale import plot_target, save_plot
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.notation import presented, text_table
from symflops.parse import parse_names

__all__ = ["cmd_compare"]


def _approx(x: sp.Expr) -> str:
    """An exact value, with its decimal value beside it when it is not an integer."""
    if x.is_number and x.is_finite and not x.is_Integer:
        return f"{x} (~{float(x):.6g})"
    return str(x)


def cmd_compare(args: argparse.Namespace) -> int:
    from symflops.analysis import compare

    var_names = parse_names(args.var)
    values: list[int] = []
    if args.range is not None:
        values = read_range(args.range)
    plot_file = plot_target(args)
    if plot_file is not None and not values:
        raise SymflopsError("--plot needs the sizes to plot", values={"plot": args.plot},
                            fix="add --range, e.g. --range 32:512:*2")
    names = short_names(args.targets)
    if names[args.targets[0]] == names[args.targets[1]]:
        raise SymflopsError("compare needs two different targets",
                            values={"targets": " ".join(args.targets)},
                            fix="name two models (a.py:make_a b.py:make_b)")
    built = {spec: cost_of(target_of(spec), args) for spec in args.targets}
    for spec, cost in built.items():
        fixed_dims(cost, args, var_names, "--var")
        missing = [n for n in var_names if n not in {s.name for s in cost.free_symbols}]
        if missing:
            raise SymflopsError(f"{names[spec]} does not depend on {', '.join(missing)}",
                                values={"symbols": ", ".join(sorted(
                                    s.name for s in cost.free_symbols)) or "none"},
                                fix="compare along a symbol both models have")
    union = Cost("all", "targets", children=list(built.values()))
    at, default_batch = swept_at(union, args.at, var_names, verb="compare along")
    (spec_a, a), (spec_b, b) = built.items()
    name_a, name_b = names[spec_a], names[spec_b]
    mine_a = {s: v for s, v in at.items() if s in a.free_symbols}
    mine_b = {s: v for s, v in at.items() if s in b.free_symbols}
    ca, cb = (a.subs(mine_a) if mine_a else a), (b.subs(mine_b) if mine_b else b)
    within = (min(values), max(values)) if values else None
    for v in values:  # every size of the table inside both models' domains, or one error
        for cost in (ca, cb):
            names_here = {s.name for s in cost.domain.symbols}
            point = {n: v for n in var_names if n in names_here}
            if point:
                cost.domain.check({s: v for s in cost.domain.symbols if s.name in point},
                                  layer=cost.spec)
    cmp = compare(ca, cb, var_names, quantity=args.quantity, names=(name_a, name_b),
                  within=within)
    label = ca.convention.label if args.quantity == "flops" else \
        {"macs": "MACs", "params": "params"}[args.quantity]
    var = " = ".join(var_names)
    info: dict[str, Any] = {
        "targets": {name_a: spec_a, name_b: spec_b}, "quantity": args.quantity,
        "label": label, "variables": var_names,
        "at": {s.name: str(v) for s, v in at.items()},
        "growth_order": {name_a: str(cmp.orders[0]), name_b: str(cmp.orders[1])},
        "ratio": str(cmp.ratio), "limit": str(cmp.limit),
        "crossovers": [{"at": str(x.root), "size": x.size,
                        "values": None if x.values is None else
                        {name_a: x.values[0], name_b: x.values[1]}} for x in cmp.crossings],
    }
    lines = [f"{name_a} ({spec_a}) vs {name_b} ({spec_b}) -- {label} against {var}"]
    if at:
        lines.append("at " + ", ".join(f"{s.name} = {v}" for s, v in at.items())
                     + (" (B = 1 is the default; set it with --at B=...)" if default_batch
                        else ""))
    lines.append(f"growth order in {var}: {name_a} {cmp.orders[0]}, {name_b} {cmp.orders[1]}")
    # as renders show it (a strided size as a ceiling, no rounding on the domains'
    # lattices); the JSON keeps the exact ratio
    lattices = {**ca.domain.lattices(), **cb.domain.lattices()}
    lines.append(f"ratio {name_a} / {name_b} = {presented(cmp.ratio, lattices)}")
    lines.append(f"limit of the ratio as {var} -> oo: {_approx(cmp.limit)}")
    if not cmp.crossings:
        where = f"for {var} from {within[0]} to {within[1]}" if within else "for every size"
        if sp.simplify(cmp.a - cmp.b) == 0:
            lines.append(f"crossover: none (equal {where})")
        else:
            lines.append(f"crossover: none (one stays larger {where} in both domains)")
    for x in cmp.crossings:
        text = f"crossover: {name_a} equals {name_b} at {var} = {_approx(x.root)}"
        if x.values is not None:
            text += (f"; at {var} = {x.size}: {name_a} {x.values[0]:,}, "
                     f"{name_b} {x.values[1]:,} {label}")
        lines.append(text)
    if values:
        rows = []
        table = []
        for v in values:
            va, vb = (int(e.xreplace({cmp.symbol: v})) for e in (cmp.a, cmp.b))
            ratio = sp.Rational(va, vb)
            table.append({var_names[0]: v, name_a: va, name_b: vb, "ratio": float(ratio)})
            rows.append([str(v), f"{va:,}", f"{vb:,}", f"{float(ratio):.4g}"])
        info["table"] = table
        lines.append(text_table(rows, [var, f"{name_a} {label}", f"{name_b} {label}",
                                       f"{name_a} / {name_b}"], "rrrr"))
    if plot_file is not None:
        save_plot(plot_file, {name_a: a, name_b: b}, var_names, values, args.quantity, at)
    write(json.dumps(info, indent=2) if args.format == "json" else "\n".join(lines) + "\n",
          args.output)
    return 0
