"""The ``symflops`` command line (also ``python -m symflops``).

Commands::

    symflops formula Conv2d [--format summary|md|latex|text|json] [--convention exact|torch|macs]
                            [--at K=3] [--depth N]
    symflops trace FILE.py:FACTORY|package.module:FACTORY --input "B 3 H W" [--hint H=224]
                   [--at B=1,H=224,W=224] [--aligned] [--depth 2] [--train] [--format ...]
                   [--convention ...] [--output FILE]
    symflops scale TARGET [TARGET ...] --var H,W --range 64:1024:32 [--at B=1] [--plot out.png]
    symflops doc [--output docs/formulas.md]

Everything typed (``--at``, ``--hint``, ranges, names, input specs) goes through
:mod:`symflops.parse`; nothing typed is evaluated as code. A ``FILE.py`` or module named
as a target is imported, which runs that module's own code, as Python would (its prints
go to stderr: stdout carries only the result; see :mod:`symflops.targets`). A mistake is
one line on stderr (``symflops: error: ...; fix: ...``) and exit code 2, before anything
is written; ``--output`` and ``--plot`` files are written whole or not at all
(:mod:`symflops.files`). Ctrl-C exits 130, a closed pipe 141, a symflops bug 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import sympy as sp

from symflops.conventions import conventions, get_convention
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.files import check_output, plot_path, write_text, write_with
from symflops.parse import (
    MAX_DIMS,
    parse_assignments,
    parse_dims,
    parse_int,
    parse_name,
    parse_names,
    parse_range,
)
from symflops.targets import (
    build_cost,
    load_factory,
    parse_hints,
    progress,
    spec_dims,
    torch_only,
)

__all__ = ["main", "build_parser", "canonical_layer"]

#: the largest size ``scale --range`` sweeps (tables are exact int64 arithmetic)

#: the most dims one ``--input`` may have, and the most ``--input`` flags (torch: 64 dims)

# ----------------------------------------------------------------------------- layers
def canonical_layer(name: str) -> tuple[Any, tuple[Any, ...], str]:
    """``(layer, input_shape, call)``: the ``sf.nn`` layer called ``name`` built on
    canonical symbols, as the formula reference shows it (:data:`symflops.reference.EXAMPLES`).

    >>> layer, shape, call = canonical_layer("Linear")
    >>> call, layer.cost(shape).flops
    ('Linear(I, O)', 2*I*M*O)
    """
    from symflops.nn import LAYERS
    from symflops.reference import EXAMPLES

    if name not in EXAMPLES:
        lower = {k.lower(): k for k in EXAMPLES}
        if name.lower() not in lower:
            known = sorted(set(EXAMPLES) | set(LAYERS))
            raise SymflopsError(f"unknown layer {name!r}", fix="use one of " + ", ".join(known))
        name = lower[name.lower()]
    example = EXAMPLES[name]
    return example.build(), tuple(example.input_shape), example.call


# ----------------------------------------------------------------------------- targets
@dataclass
class Target:
    """A traced model, an ``sf.nn`` network or a canonical layer, by its command-line name."""

    name: str
    factory: Callable[[], Any] | None = None
    layer: Any = None
    shape: Any = None


def _target(spec: str) -> Target:
    if ":" in spec:
        return Target(spec, factory=load_factory(spec))
    layer, shape, _ = canonical_layer(parse_name(spec))
    return Target(spec, layer=layer, shape=shape)


# ----------------------------------------------------------------------------- inputs
def _input_spec(texts: Sequence[str]) -> Any:
    """``--input`` values -> what ``sf.trace`` takes: one shape tuple, a list of them
    (several positional inputs) or a dict (``name=B N`` keyword inputs)."""
    positional: list[tuple[Any, ...]] = []
    keyword: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        key = None
        if "=" in text:
            key_text, _, text = text.partition("=")
            key = parse_name(key_text.strip())
        if len(texts) > MAX_DIMS:
            raise SymflopsError(f"--input: more than {MAX_DIMS} inputs",
                                values={"inputs": len(texts)},
                                fix='write one shape per input, e.g. --input "B 3 H W"')
        try:  # names and positive integer sizes, at most MAX_DIMS of them
            dims: list[Any] = parse_dims(text)
        except SymflopsError as e:
            raise SymflopsError(e.message, layer=e.layer or "--input", values=e.values,
                                fix=e.fix) from None
        if key is None:
            positional.append(tuple(dims))
        elif key in keyword:
            raise SymflopsError(f"input {key!r} given twice", fix="give each input once")
        else:
            keyword[key] = tuple(dims)
    if keyword and positional:
        raise SymflopsError("mix of positional and keyword inputs",
                            fix="name every input (name=B N) or none")
    if keyword:
        return keyword
    if len(positional) == 1:
        return positional[0]
    return positional


def _shape_text(shape: Any) -> str:
    if isinstance(shape, dict):
        return ", ".join(f"{k}=({' '.join(map(str, v))})" for k, v in shape.items())
    if isinstance(shape, list):
        return ", ".join("(" + " ".join(map(str, s)) + ")" for s in shape)
    return " ".join(map(str, shape))


def _cost_of(target: Target, args: argparse.Namespace) -> Cost:
    train, hinted = getattr(args, "train", False), bool(getattr(args, "hint", None))
    if target.layer is not None:
        torch_only(f"{target.name} is an sf.nn layer", train=train, hinted=hinted)
        return target.layer.cost(target.shape, convention=args.convention)
    texts = args.input or []
    spec = _input_spec(texts) if texts else None
    shown = _shape_text(spec) if spec is not None else "none"
    hints = parse_hints(getattr(args, "hint", None) or [],
                        spec_dims(spec) if spec is not None else [], shown)  # before building
    what = f"building and costing {target.name}" + (f" on {shown}" if texts else "")
    assert target.factory is not None
    with progress(what, sys.stderr):
        return build_cost(target.factory, target.name, spec, convention=args.convention,
                          hints=hints, train=train, time_budget=getattr(args, "time_budget", None),
                          vary=getattr(args, "vary", None))


# ----------------------------------------------------------------------------- output
def _resolve_at(cost: Cost, text: str | None, flag: str = "--at") -> dict[sp.Symbol, sp.Expr]:
    """``--at`` values for symbols of ``cost``, each within its symbol's assumptions: a
    positive integer for a size (0 too for a padding), or an expression in the symbols
    that is so wherever they are (``W=H``, ``N=H*W``)."""
    if text is None:
        return {}
    if not text.strip():
        raise SymflopsError(f"{flag}: no values given", fix=f"write e.g. {flag} B=1,H=224, "
                            f"or leave {flag} out")
    names = {s.name: s for s in cost.free_symbols}
    try:
        at = parse_assignments(text, names=names, values_names=names)
    except SymflopsError as e:
        raise SymflopsError(f"{flag}: {e.message}", values=e.values, fix=e.fix) from None
    for sym, val in at.items():
        least = 1 if sym.is_positive else 0 if sym.is_nonnegative else None
        what = "sizes must be positive integers" if least == 1 else \
            f"{sym.name} must be an integer >= 0"
        if val.is_number and ((sym.is_integer and not val.is_Integer)
                              or (least is not None and val < least)):
            raise SymflopsError(f"{flag}: {what}", values={sym.name: val},
                                fix=f"give {sym.name} a value >= {least or 0}")
        holds = val.is_positive if least == 1 else val.is_nonnegative if least == 0 else True
        if not val.is_number and holds is not True:
            raise SymflopsError(f"{flag}: {sym.name}={val} can be "
                                + ("zero or negative" if least == 1 else "negative"),
                                fix=f"give {sym.name} a value that is >= {least} for every "
                                    "positive size (e.g. W=H, N=H*W, I=2*O)")
    return at


def _write(text: str, output: str | None) -> None:
    if output is not None:
        path = write_text(check_output(output), text)
        sys.stderr.write(f"symflops: wrote {path}\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()  # a closed pipe fails here, inside main's error handling


def _aligned(cost: Cost) -> tuple[Cost, str]:
    from symflops.analysis import aligned, total_stride

    multiples = total_stride(cost)
    if not multiples:
        return cost, "no floors to align"
    note = "aligned: " + ", ".join(f"{s.name} a multiple of {m}" for s, m in multiples.items()) \
        + " (exact there)"
    return aligned(cost, multiples), note


def _show(cost: Cost, args: argparse.Namespace, title: str) -> str:
    at = _resolve_at(cost, args.at)
    texts = getattr(args, "input", None)
    inputs = _shape_text(_input_spec(texts)) if texts else None
    from symflops.rendering import render

    return render(cost, args.format, depth=args.depth, at=at or None, title=title,
                  inputs=inputs)


# ----------------------------------------------------------------------------- commands
def cmd_formula(args: argparse.Namespace) -> int:
    layer, shape, call = canonical_layer(parse_name(args.layer))
    cost = layer.cost(shape, convention=args.convention)
    _write(_show(cost, args, f"{call} -- {cost.convention.label}"), args.output)
    return 0


def _fixed_dims(cost: Cost, args: argparse.Namespace, names: Sequence[str], flag: str) -> None:
    """Refuse a name of an ``--input`` dim that the traced cost no longer has: the model
    fixed it to one size, so a value for it (or a sweep of it) would be ignored."""
    dims = spec_dims(_input_spec(args.input)) if getattr(args, "input", None) else []
    free = {s.name for s in cost.free_symbols}
    for name in names:
        if name in dims and name not in free:
            raise SymflopsError(f"{flag}: the traced model fixes {name} (its forward takes "
                                "one size only), so the result does not depend on it",
                                values={"symbols": ", ".join(sorted(free)) or "none"},
                                fix=f"leave {name} out: the result holds at the size the "
                                    "model fixes (see its note)")


def _at_names(text: str | None) -> list[str]:
    """The names ``--at`` assigns (its errors are reported where it is resolved)."""
    try:
        return [s.name for s in parse_assignments(text)] if text and text.strip() else []
    except SymflopsError:
        return []


def cmd_trace(args: argparse.Namespace) -> int:
    target = Target(args.target, factory=load_factory(args.target))
    cost = _cost_of(target, args)
    _fixed_dims(cost, args, _at_names(args.at), "--at")
    title = f"{args.target} -- {cost.convention.label}"
    if args.aligned:
        cost, note = _aligned(cost)
        title += f"\n{note}"
    _write(_show(cost, args, title), args.output)
    return 0


def _parse_path(text: str) -> str:
    """A module path such as ``layer3.0.conv1``: names or integers between dots."""
    for part in text.split("."):
        if not part.isdigit():
            parse_name(part)
    return text


def _part(cost: Cost, path: str, quantity: str) -> sp.Expr:
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
        breakdown,
        crossover,
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
    except SymflopsError as e:
        if "dtype=object" not in (e.fix or ""):
            raise
        # the Python API's fix (object arrays) has no command-line form
        raise SymflopsError(e.message, layer=e.layer, values=e.values,
                            fix="sweep smaller sizes (the command line computes exact "
                                "int64 numbers)") from None
    ys = sw.results[args.quantity]
    label = sw.labels[args.quantity]
    expr = cost.quantity(args.quantity)
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
        for v in (values[0], values[-1]):
            parts = breakdown(cost, {s: v for s in syms}, quantity=args.quantity)
            top = parts[0]
            dominant[str(v)] = {"path": top.path, "share": top.share}
            share = f"{100 * top.share:.1f}%" if top.share is not None else ""
            lines.append(f"largest part at {' = '.join(var_names)} = {v}: {top.path} "
                         f"({top.layer}, {share})")
        info["largest_part"] = dominant
    if args.crossover:
        first, second = (p.strip() for p in args.crossover.split(",", 1))
        tie = {s: syms[0] for s in syms[1:]}
        a = _part(cost, _parse_path(first), args.quantity).xreplace(tie)
        b = _part(cost, _parse_path(second), args.quantity).xreplace(tie)
        x = crossover(a, b, syms[0])
        found = [str(s) + (f" (~{float(s):.6g})" if s.is_number and not s.is_Integer else "")
                 for s in x.solutions] or [f"{v:g}" for v in x.values]
        info["crossover"] = {"parts": [first, second], "method": x.method,
                             "solutions": [str(s) for s in x.solutions],
                             "values": list(x.values)}
        where = ", ".join(found) if found else "none (one stays larger)"
        lines.append(f"crossover: {first} equals {second} at {' = '.join(var_names)} = "
                     f"{where} ({x.method})")
    lines.append(sw.to_text())
    lines.append("")
    return info, lines


def cmd_scale(args: argparse.Namespace) -> int:
    from symflops.analysis import plot

    var_names = parse_names(args.var)
    try:  # beyond int64 and too many points are refused here, sizes below 1 per symbol below
        values = parse_range(args.range, minimum=0)
    except SymflopsError as e:
        raise SymflopsError(e.message, layer=e.layer or "--range", values=e.values,
                            fix=e.fix) from None
    if args.crossover is not None:
        pair = [p.strip() for p in args.crossover.split(",")]
        if len(pair) != 2 or not all(pair):
            raise SymflopsError("--crossover needs two module paths",
                                values={"crossover": args.crossover},
                                fix="write e.g. --crossover attention.mha,mlp")
    plot_file = plot_path(args.plot) if args.plot is not None else None
    if plot_file is not None and args.output is not None \
            and plot_file.resolve() == Path(args.output).resolve():
        raise SymflopsError("--plot and --output name the same file",
                            values={"path": args.output}, fix="give them different names")
    built = {spec: _cost_of(_target(spec), args) for spec in args.targets}
    for cost in built.values():
        _fixed_dims(cost, args, var_names, "--var")
    union = Cost("all", "targets", children=list(built.values()))
    symbols = {s.name: s for s in union.free_symbols}
    for name in var_names:  # a size of 0 or less has no cost, whatever a formula gives there
        sym = symbols.get(name)
        least = 0 if sym is not None and not sym.is_positive and sym.is_nonnegative else 1
        if min(values) < least:
            raise SymflopsError("--range: sizes must be positive" if least else
                                f"--range: {name} must be >= 0", values={name: min(values)},
                                fix=f"start the range at {least} or more, e.g. 16:64:16")
    at = _resolve_at(union, args.at)  # a name unknown to every target is an error
    given = [s.name for s in at if s.name in var_names]
    if given:
        raise SymflopsError(f"--var {given[0]} is also given a value in --at",
                            fix=f"sweep {given[0]} or fix it with --at, not both")
    from symflops.symbols import B

    default_batch = B in union.free_symbols and B not in at and "B" not in var_names
    if default_batch:  # tables are per sample unless asked otherwise
        at[B] = sp.Integer(1)
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
        report.append(info)
        lines += part_lines
    if plot_file is not None:
        var = var_names if len(var_names) > 1 else var_names[0]
        write_with(plot_file, lambda tmp: plot(costs, var, values, quantity=args.quantity,
                                               path=str(tmp)), "--plot")
        sys.stderr.write(f"symflops: wrote {plot_file}\n")
    if args.format == "json":
        text = json.dumps(report if len(report) > 1 else report[0], indent=2)
    else:
        text = "\n".join(lines)
    _write(text, args.output)
    return 0


def cmd_doc(args: argparse.Namespace) -> int:
    try:
        from symflops import reference
    except ImportError:
        raise SymflopsError("the formula reference writer (symflops.reference) is not "
                            "available in this build", fix="update symflops") from None
    if args.check:
        path = Path(args.output or reference.DEFAULT_PATH)
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise SymflopsError(f"--check: cannot read {path}: {reason}",
                                fix="name the Markdown file symflops doc wrote") from None
        if current != reference.formula_reference():
            sys.stderr.write(f"symflops: {path} is stale; run: symflops doc --output {path}\n")
            return 1
        sys.stderr.write(f"symflops: {path} is up to date\n")
        return 0
    if args.output is not None:
        path = write_text(check_output(args.output, make_parents=True),
                          reference.formula_reference())
        sys.stderr.write(f"symflops: wrote {path}\n")
    else:
        _write(reference.formula_reference(), None)
    return 0


# ----------------------------------------------------------------------------- parser
_FORMATS = ("summary", "md", "markdown", "latex", "tex", "text", "txt", "json")


def _common(p: argparse.ArgumentParser, formats: Sequence[str] = _FORMATS) -> None:
    p.add_argument("--convention", default="exact",
                   help="counting convention: " + ", ".join(sorted(conventions())) +
                        " (default exact)")
    p.add_argument("--format", default="summary", choices=formats,
                   help="output format (default summary)")
    p.add_argument("--at", metavar="NAME=VALUE,...",
                   help="substitute values, e.g. B=1,H=224,W=224 (or W=H)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


def _seconds(text: str) -> int:
    """``--time-budget``: a positive whole number of seconds (symflops' parser, no eval)."""
    try:
        value = parse_int(text, "--time-budget")
    except SymflopsError as e:
        raise argparse.ArgumentTypeError(e.message) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--time-budget must be 1 second or more, not {value}")
    return value


def _trace_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", action="append", metavar="SPEC",
                   help='input shape, e.g. "B 3 H W"; repeat for several inputs; '
                        '"input_ids=B N" for a keyword input')
    p.add_argument("--hint", action="append", metavar="NAME=VALUE",
                   help="example size of an --input dim for tracing a torch model, e.g. H=224")
    p.add_argument("--vary", metavar="ARG=EXPR[,ARG=EXPR]",
                   help='constructor arguments as symbols, e.g. "image_size=H,num_layers=L,'
                        'hidden_dim=dim": an exact formula derived from traces (sf.trace_factory)')
    p.add_argument("--train", action="store_true",
                   help="count forward + backward (traced torch models)")
    p.add_argument("--time-budget", type=_seconds, metavar="SECONDS",
                   help="how long tracing a torch model may take (default 300); when spent, "
                        "one error naming the fixes")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"symflops: error: {self.prog}: {message}; fix: see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``symflops`` argument parser."""
    parser = _Parser(
        prog="symflops",
        description="Parameters, MACs and FLOPs of neural networks as formulas.")
    parser.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("formula", help="the formula of one layer type (e.g. Conv2d)")
    p.add_argument("layer", help="a layer name from symflops.nn (Conv2d, Linear, ...)")
    _common(p)
    p.add_argument("--depth", type=int, default=None, help="parts shown, by tree depth")
    p.set_defaults(func=cmd_formula)

    p = sub.add_parser("trace", help="trace a model into a symbolic cost")
    p.add_argument("target", help="FILE.py:FACTORY or package.module:FACTORY")
    _trace_inputs(p)
    _common(p)
    p.add_argument("--aligned", action="store_true",
                   help="remove floors by taking sizes as multiples of the total stride")
    p.add_argument("--depth", type=int, default=None, help="parts shown, by tree depth")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("scale", help="how a cost grows with a symbol: table, order, plot")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="layer names or FILE.py:FACTORY / package.module:FACTORY")
    _trace_inputs(p)
    _common(p, ("summary", "json"))
    p.add_argument("--var", required=True, metavar="NAME[,NAME]",
                   help="symbol(s) to sweep; several names take the same values (H,W)")
    p.add_argument("--range", required=True, metavar="START:STOP:STEP",
                   help="values: 64:1024:32, 64:1024:*2 or 224,384")
    p.add_argument("--quantity", default="flops", choices=("flops", "macs", "params"))
    p.add_argument("--plot", metavar="FILE",
                   help="save a log-log plot as FILE.png, .svg or .pdf (no suffix: .png; "
                        "needs matplotlib)")
    p.add_argument("--crossover", metavar="PATH,PATH",
                   help="where one part overtakes another, e.g. attention.mha,mlp")
    p.set_defaults(func=cmd_scale)

    p = sub.add_parser("doc", help="write the formula reference of every layer")
    p.add_argument("--output", "-o", metavar="FILE", help="e.g. docs/formulas.md")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if FILE (default docs/formulas.md) is not what would be written")
    p.set_defaults(func=cmd_doc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for a usage or symflops error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            if hasattr(args, "convention"):
                get_convention(args.convention)
            if getattr(args, "depth", None) is not None and args.depth < 1:
                raise SymflopsError("--depth must be >= 1", values={"depth": args.depth},
                                    fix="give --depth 1 or more, or leave it out")
            if getattr(args, "output", None) is not None and not getattr(args, "check", False):
                check_output(args.output, make_parents=args.command == "doc")  # before work
            return int(args.func(args))
    except SymflopsError as e:
        if args.traceback:
            raise
        sys.stderr.write(f"symflops: error: {_one_line(str(e))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("symflops: interrupted\n")
        return 130
    except BrokenPipeError:  # `symflops doc | head`: the reader left; nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, what the shell reports for a killed writer
    except Exception as e:  # a bug or a failing user model: one line, traceback on request
        if args.traceback:
            raise
        sys.stderr.write(f"symflops: error: {type(e).__name__}: {_one_line(str(e))} "
                         "(run with --traceback for details)\n")
        return 1


def _one_line(text: str) -> str:
    """A message on one line: the lines of a multi-line one joined by `` / ``."""
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Warnings as one line each on stderr (not Python's two-line form with source)."""
    sys.stderr.write(f"symflops: warning: {_one_line(str(message))}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
