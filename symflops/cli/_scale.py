"""``symflops scale``: how one or more costs grow with a symbol (table, order, plot)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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
from symflops.cli._largest import largest_parts
from symflops.cost import Cost
from symflops.errors import ExceedsInt64, SymflopsError
from symflops.files import plot_path, write_with
from symflops.parse import parse_name, parse_names

__all__ = ["cmd_scale", "parse_path", "part_of", "plot_target", "save_plot"]


def plot_target(args: argparse.Namespace) -> Path | None:
    """The file ``--plot`` names (checked before any work), or None."""
    if args.plot is None:
        return None
    path = plot_path(args.plot)
    if args.output is not None and path.resolve() == Path(args.output).resolve():
        raise SymflopsError("--plot and --output name the same file",
                            values={"path": args.output}, fix="give them different names")
    return path


def save_plot(path: Path, costs: dict[str, Cost], var_names: list[str], values: list[int],
              quantity: str, at: dict[sp.Symbol, sp.Expr], **options: Any) -> None:
    """Write the log-log plot of ``costs`` (legend name -> cost) over ``values`` of
    ``var_names`` to ``path`` (whole or not at all), the ``at`` values in its title."""
    from symflops.analysis import plot

    var: Any = var_names if len(var_names) > 1 else var_names[0]
    known = {s for c in costs.values() for s in c.free_symbols}
    fixed = {s: v for s, v in at.items() if s in known and v.is_Integer}  # in the title
    given = {s: v for s, v in at.items() if s in known and not v.is_Integer}  # (W=H)
    if given:
        costs = {name: c.subs({s: v for s, v in given.items() if s in c.free_symbols})
                 for name, c in costs.items()}
    write_with(path, lambda tmp: plot(costs, var, values, quantity=quantity, at=fixed,
                                      path=str(tmp), **options), "--plot")
    sys.stderr.write(f"symflops: wrote {path}\n")


def parse_path(text: str) -> str:
    """A module path such as ``layer3.0.conv1``: names or integers between dots."""
    for part in text.split("."):
        if not part.isdigit():
            parse_name(part)
    return text


def part_of(cost: Cost, path: str, quantity: str) -> sp.Expr:
    """What the part at ``path`` adds to the total (repeat counts along the path included)."""
    node, mult = cost, sp.Integer(1)
    for i in range(len(path.split("."))):
        node = cost[".".join(path.split(".")[: i + 1])]
        mult = mult * node.count
    return mult * node.quantity(quantity)


def _scale_one(spec: str, cost: Cost, var_names: list[str], values: list[int],
               args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    from symflops.analysis import (
        alignment,
        crossings,
        fit_slope,
        growth_order,
        leading_terms,
        sweep,
        terms,
    )

    free = {s.name: s for s in cost.free_symbols}
    unknown = [n for n in var_names if n not in free]
    if unknown:
        raise SymflopsError(f"{spec} does not depend on {', '.join(unknown)}",
                            fix="sweep one of: " + (", ".join(sorted(free)) or "nothing"))
    syms = [free[n] for n in var_names]
    rest = sorted(s.name for s in cost.quantity(args.quantity).free_symbols
                  if s.name not in var_names)
    if rest:
        raise SymflopsError(f"{spec} also depends on {', '.join(rest)}",
                            fix="give values with --at " + ",".join(f"{n}=..." for n in rest)
                                + " (a value may name another symbol: W=H), or sweep them "
                                  "too: --var "
                                + ",".join(var_names + rest))
    try:
        sw = sweep(cost, {tuple(var_names): values}, quantity=args.quantity)
    except ExceedsInt64 as e:
        # the Python API's fix (object arrays) has no command-line form
        raise SymflopsError(e.message, layer=e.layer, values=e.values,
                            fix="sweep smaller sizes (the command line computes exact "
                                "int64 numbers)") from None
    ys = sw.results[args.quantity]
    label = sw.labels[args.quantity]
    expr = cost.quantity(args.quantity)
    if expr.has(sp.Piecewise):  # joined over code paths (--paths all): each its own
        return _scale_paths(spec, args, var_names, syms, values, sw, expr)
    order = growth_order(expr, syms)
    floors = any(s in f.free_symbols for f in expr.atoms(sp.floor, sp.ceiling) for s in syms)
    lead = leading_terms(expr, syms, align=None)
    distinct = len(set(values)) > 1
    slope = fit_slope(values, ys) if distinct else None
    end_slope = fit_slope(values[-2:], ys[-2:]) if distinct and values[-1] != values[-2] \
        else None
    info: dict[str, Any] = {
        "target": spec, "quantity": args.quantity, "label": label,
        "variables": var_names, "values": list(values),
        "results": [int(v) if float(v).is_integer() else float(v) for v in ys.tolist()],
        "growth_order": str(order), "leading_terms": [str(t) for t in lead],
        "fitted_slope": slope, "end_slope": end_slope,
        "alignment": {s.name: m for s, m in alignment(expr, syms).items()} if floors else {},
    }
    lines = [f"{spec} -- {label} against {' = '.join(var_names)}"]
    if args.at:
        lines.append(f"at {args.at}")
    lines.append(f"growth order in {', '.join(var_names)}: {order}")
    lines.append("leading term" + ("s" if len(lead) > 1 else "") + ": "
                 + " + ".join(str(t) for t in lead))
    try:
        poly = terms(expr, syms, align="auto")
    except SymflopsError:  # not a polynomial (or not alignable): the leading terms stand
        poly = []
    if 0 < len(poly) <= 8:
        where = ", ".join(f"{name} a multiple of {m}" for name, m in
                          info["alignment"].items()) if floors else ""
        text = " + ".join(str(t) for t in poly).replace("+ -", "- ")
        info["polynomial"] = text
        lines.append(f"polynomial{f' ({where})' if where else ''}: {text}")
    if slope is not None:
        lines.append(f"fitted log-log slope: {slope:.3f} over the range, "
                     f"{end_slope:.3f} between its last two points")
    if cost.children and not (expr.free_symbols - set(syms)):
        dominant = {}
        depth = getattr(args, "depth", None)
        for v in (values[0], values[-1]):  # the depth found at the first size holds for both
            depth, groups = largest_parts(cost, {s: v for s in syms}, args.quantity, depth)
            top = groups[0]
            dominant[str(v)] = {"path": top[0], "share": top[3], "depth": depth,
                                "parts": [{"path": p, "layer": layer, "times": n, "share": x}
                                          for p, layer, n, x in groups]}
            shown = "; next: ".join(
                f"{p}{f' x{n}' if n > 1 else ''} ({layer}"
                + (f", {100 * x:.1f}%)" if x is not None else ")") for p, layer, n, x in groups)
            lines.append(f"largest part at {' = '.join(var_names)} = {v}: {shown}")
        info["largest_part"] = dominant
    if args.crossover:
        first, second = (p.strip() for p in args.crossover.split(",", 1))
        tie = {s: syms[0] for s in syms[1:]}
        a = part_of(cost, parse_path(first), args.quantity).xreplace(tie)
        b = part_of(cost, parse_path(second), args.quantity).xreplace(tie)
        # searched only between the first and last size asked and inside the model's domain
        found = crossings(a, b, syms[0], within=(min(values), max(values)),
                          domains=[cost.xreplace(tie).domain])
        roots = [str(x.root) + (f" (~{float(x.root):.6g})" if x.root.is_number and
                                not x.root.is_Integer else "") for x in found]
        method = found[0].method if found else "none"
        whole = [c for c in found if c.values is not None]
        info["crossover"] = {"parts": [first, second], "method": method,
                             "solutions": [str(x.root) for x in found],
                             "values": [float(x.root) for x in found if x.root.is_number],
                             "first_sizes": [{"size": c.size, first: c.values[0],
                                              second: c.values[1]} for c in whole
                                             if c.values is not None]}
        var = " = ".join(var_names)
        where = ", ".join(roots) + f" ({method})" if roots else \
            f"none from {min(values)} to {max(values)} (one stays larger)"
        lines.append(f"crossover: {first} equals {second} at {var} = {where}"
                     + "".join(f"; at {var} = {c.size}: {first} {c.values[0]:,}, "
                               f"{second} {c.values[1]:,} {label}" for c in whole
                               if c.values is not None))
    lines.append(sw.to_text())
    lines.append("")
    return info, lines


def _seconds(t: sp.Expr) -> str:
    """A time in seconds, exact, shown in ms or us to 4 significant digits."""
    v = float(t)
    return f"{v * 1e3:.4g} ms" if v >= 1e-3 else f"{v * 1e6:.4g} us"


def _roofline(cost: Cost, at: dict[sp.Symbol, Any], var_names: list[str], values: list[int],
              args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """``--device``: the roofline time at each size and where the work turns
    compute-bound in the batch ``B`` (the batch kept symbolic for it)."""
    from symflops.devices import get_device, ridge_point

    device = get_device(args.device)
    if cost.convention.name == "macs":
        raise SymflopsError("--device needs FLOPs; this count is in MACs",
                            values={"convention": "macs"}, fix="use --convention torch")
    free = {s.name: s for s in cost.free_symbols}
    syms = [free[n] for n in var_names]
    batch = free.get("B")
    keep_b = {s: v for s, v in at.items() if s is not batch}
    base = cost.subs(keep_b) if keep_b else cost
    with_b = base.subs({batch: at[batch]}) if batch is not None and batch in at else base
    time = with_b.roofline(device, args.dtype)
    ridge = ridge_point(device, args.dtype)
    times = [time.xreplace({s: sp.Integer(v) for s in syms}) for v in values]
    var = " = ".join(var_names)
    lines = [f"roofline on {device.name} ({args.dtype}; per op max(FLOPs/peak, "
             f"bytes/bandwidth), a lower bound; ridge {float(ridge):.4g} FLOPs/byte): "
             + "; ".join(f"{var} = {v}: {_seconds(t)}" for v, t in zip(values, times,
                                                                     strict=True))]
    info: dict[str, Any] = {"name": device.name, "dtype": args.dtype,
                            "seconds": [str(t) for t in times]}
    if batch is not None and batch not in syms:
        b_star = base.compute_bound_at(device, batch, args.dtype)
        at_sizes = [b_star.xreplace({s: sp.Integer(v) for s in syms}) for v in values]
        shown = "; ".join(f"{var} = {v}: " + ("never" if b == sp.oo else f"B >= {b}"
                                                + (f" (~{float(b):.4g})" if not b.is_Integer
                                                   else ""))
                          for v, b in zip(values, at_sizes, strict=True))
        lines.append(f"compute-bound from: {shown}")
        info["compute_bound_from"] = [str(b) for b in at_sizes]
    return info, lines


def _scale_paths(spec: str, args: argparse.Namespace, var_names: list[str],
                 syms: list[sp.Symbol], values: list[int], sw: Any, total: sp.Expr
                 ) -> tuple[dict[str, Any], list[str]]:
    """:func:`_scale_one` for a cost joined over code paths (a Piecewise): each path's
    growth order and leading terms under its condition, then the swept values (each
    from the path its size takes). No one order or polynomial is claimed for them all."""
    from symflops.analysis import leading_terms, path_orders

    if args.crossover or args.device:  # each a root of one formula in the swept size
        raise SymflopsError(f"{spec} is joined over code paths: "
                            + ("--crossover" if args.crossover else "--device")
                            + " needs one formula", fix="trace one path: {paths}, or "
                            "{hints} on the path you want", options={"paths": "one",
                                                                     "hints": ...})
    ys, label = sw.results[args.quantity], sw.labels[args.quantity]
    lines = [f"{spec} -- {label} against {' = '.join(var_names)}"]
    if args.at:
        lines.append(f"at {args.at}")
    paths = []
    for (e, c), (_, order) in zip(sp.piecewise_fold(total).args, path_orders(total, syms),
                                  strict=True):
        lead = " + ".join(str(t) for t in leading_terms(e, syms, align=None))
        paths.append({"where": str(c), "growth_order": str(order), "leading_terms": lead})
        lines.append(f"where {c}: growth order {order}, leading term {lead}")
    info: dict[str, Any] = {
        "target": spec, "quantity": args.quantity, "label": label, "variables": var_names,
        "values": list(values), "paths": paths,
        "results": [int(v) if float(v).is_integer() else float(v) for v in ys.tolist()]}
    return info, [*lines, sw.to_text(), ""]


def cmd_scale(args: argparse.Namespace) -> int:
    var_names = parse_names(args.var)
    values = read_range(args.range, minimum=0)  # sizes below 1 are refused per symbol below
    if args.crossover is not None:
        pair = [p.strip() for p in args.crossover.split(",")]
        if len(pair) != 2 or not all(pair):
            raise SymflopsError("--crossover needs two module paths",
                                values={"crossover": args.crossover},
                                fix="write e.g. --crossover attention.mha,mlp")
    plot_file = plot_target(args)
    built = {spec: cost_of(target_of(spec), args) for spec in args.targets}
    for cost in built.values():
        fixed_dims(cost, args, var_names, "--var")
    union = Cost("all", "targets", children=list(built.values()))
    symbols = {s.name: s for s in union.free_symbols}
    for name in var_names:  # a size of 0 or less has no cost, whatever a formula gives there
        sym = symbols.get(name)
        least = 0 if sym is not None and not sym.is_positive and sym.is_nonnegative else 1
        if min(values) < least:
            raise SymflopsError("--range: sizes must be positive" if least else
                                f"--range: {name} must be >= 0", values={name: min(values)},
                                fix=f"start the range at {least} or more, e.g. 16:64:16")
    at, default_batch = swept_at(union, args.at, var_names)
    costs: dict[str, Cost] = {}
    for spec, cost in built.items():
        mine = {s: v for s, v in at.items() if s in cost.free_symbols}
        costs[spec] = cost.subs(mine) if mine else cost
    report: list[dict[str, Any]] = []
    lines: list[str] = []
    if default_batch and args.format != "json":
        lines.append("batch B = 1 (the default for scale; set it with --at B=...)")
    for spec, cost in costs.items():
        info, part_lines = _scale_one(spec, cost, var_names, values, args)
        info["at"] = {s.name: str(v) for s, v in at.items() if s in built[spec].free_symbols}
        if args.device:
            info["device"], device_lines = _roofline(built[spec], at, var_names, values, args)
            part_lines[-2:-2] = device_lines  # before the table
        report.append(info)
        lines += part_lines
    if plot_file is not None:
        names = short_names(list(built))
        save_plot(plot_file, {names[spec]: cost for spec, cost in built.items()}, var_names,
                  values, args.quantity, at)
    if args.format == "json":
        text = json.dumps(report if len(report) > 1 else report[0], indent=2)
    else:
        text = "\n".join(lines)
    write(text, args.output)
    return 0
