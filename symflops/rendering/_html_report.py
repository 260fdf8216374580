"""``sf.report``: one self-contained, interactive HTML page of a cost (or several to compare).

The page shows each model's total formulas (params, MACs, FLOPs under the cost's
convention, training memory when computed) typeset as MathML, a folded per-block table
with each block's share, and a plot of a quantity against one symbol (with the crossover
points when two models are compared). One slider per free symbol, bounded by the
formula's domain, recomputes every number in the browser from the formulas compiled to
exact JavaScript (BigInt rationals: :mod:`symflops.rendering._js`). Nothing is fetched:
no server, no CDN, no fonts; the page works offline.

The plot evaluates every lattice point of the slider's range (400 evenly spread ones when
the range holds more); a crossover is where the order of the first two models changes
between two evaluated points, bisected on the lattice to the exact first size (two
crossings between neighbouring samples of a range over 400 points would go unseen).

Each number is on an element with ``data-quantity`` (``params``, ``macs``, ``flops``,
``memory``), ``data-model`` (the model's name) and ``data-value`` (the exact integer),
so the page can be tested and scripted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.rendering._fold import fold_runs
from symflops.rendering._js import RUNTIME, js_expr

__all__ = ["report", "symbol_range", "report_quantities"]

#: where a slider starts when no value is given (the size a reader thinks of first)
_TYPICAL = {"B": 1, "H": 224, "W": 224, "N": 512, "S": 512, "T": 512, "L": 12}
#: how many lattice steps a slider spans when the domain has no upper bound
_OPEN_STEPS = 64
#: more loose aten ops than this at one level are one row of the block table
_LOOSE_OPS = 3
#: how far :func:`symbol_range` scans the lattice for the first value meeting a condition
_SCAN = 4096


def symbol_range(cost: Cost, sym: sp.Symbol) -> tuple[int, int | None, int, int]:
    """``(lo, hi or None, step, offset)``: the values of ``sym`` on ``cost``'s domain
    (``lo <= sym <= hi``, ``sym = offset (mod step)``), read off the conditions of
    ``cost.validity`` that involve ``sym`` alone (conditions across symbols are checked
    by the page at every point).

    The one adapter between the report and the domain: when ``cost.domain`` exists
    (``symflops.domain``), its ``range_of(sym)`` answers instead.

    >>> import symflops as sf
    >>> from symflops.symbols import B, H, W
    >>> c = sf.nn.Conv2d(3, 8, 7, stride=2).cost((B, 3, H, W))
    >>> symbol_range(c, H)
    (7, None, 1, 0)
    """
    domain = getattr(cost, "domain", None)
    if domain is not None and hasattr(domain, "range_of"):
        lo_d, hi_d, step_d, offset_d = domain.range_of(sym)
        return int(lo_d), None if hi_d is None else int(hi_d), int(step_d), int(offset_d)
    lo = 1 if sym.is_positive else 0
    hi: int | None = None
    step, offset = 1, 0
    rest: list[sp.Basic] = []
    seen: set[sp.Basic] = set()
    for _, cond in cost._all_validity():
        if cond in seen or cond.free_symbols != {sym}:
            continue
        seen.add(cond)
        lattice = _lattice(cond, sym)
        if lattice is not None:
            m, r = lattice
            if step % m == 0 and offset % m == r:
                continue
            if m % step == 0 and r % step == offset:
                step, offset = m, r
                continue
        bound = _linear_bound(cond, sym)
        if bound is not None:
            kind, value = bound
            if kind == "lo":
                lo = max(lo, value)
            elif kind == "hi":
                hi = value if hi is None else min(hi, value)
            else:
                lo, hi = max(lo, value), value if hi is None else min(hi, value)
            continue
        rest.append(cond)
    first = lo + (offset - lo) % step
    for k in range(_SCAN):  # the first lattice point where every other condition holds
        value = first + k * step
        if hi is not None and value > hi:
            break
        if all(c.xreplace({sym: sp.Integer(value)}) is sp.true for c in rest):
            return value, hi, step, offset
    raise SymflopsError(f"no value of {sym.name} meets the formula's conditions",
                        values={"conditions": ", ".join(str(c) for c in [*seen])},
                        fix=f"check the model's conditions on {sym.name}")


def _lattice(cond: sp.Basic, sym: sp.Symbol) -> tuple[int, int] | None:
    """``Eq(Mod(sym + c, m), r)`` as ``(m, (r - c) mod m)``: ``sym`` on a lattice.

    >>> from symflops.symbols import H
    >>> _lattice(sp.Eq(sp.Mod(H, 32), 0), H), _lattice(sp.Eq(sp.Mod(H + 1, 4), 0), H)
    ((32, 0), (4, 3))
    """
    if isinstance(cond, sp.Eq):
        for lhs, rhs in ((cond.lhs, cond.rhs), (cond.rhs, cond.lhs)):
            if not (isinstance(lhs, sp.Mod) and lhs.args[1].is_Integer and rhs.is_Integer
                    and int(lhs.args[1]) > 0):
                continue
            shift = sp.expand(lhs.args[0] - sym)
            if shift.is_Integer:
                m = int(lhs.args[1])
                return m, (int(rhs) - int(shift)) % m
    return None


def _linear_bound(cond: sp.Basic, sym: sp.Symbol) -> tuple[str, int] | None:
    """A condition linear in ``sym`` as ``("lo"|"hi"|"pin", value)``."""
    if not isinstance(cond, sp.core.relational.Relational):
        return None
    diff = sp.expand(cond.lhs - cond.rhs)
    poly = sp.Poly(diff, sym) if diff.is_polynomial(sym) else None
    if poly is None or poly.degree() != 1:
        return None
    a, b = (sp.Rational(c) for c in poly.all_coeffs()) if all(
        c.is_Rational for c in poly.all_coeffs()) else (None, None)
    if a is None or b is None or a == 0:
        return None
    root = -b / a  # diff = a * (sym - root)
    if isinstance(cond, sp.Eq):
        return ("pin", int(root)) if root.is_Integer else None
    greater = isinstance(cond, (sp.Ge, sp.Gt)) == (a > 0)  # sym > root or sym >= root
    strict = isinstance(cond, (sp.Gt, sp.Lt))
    if greater:
        return "lo", int(math.floor(root)) + 1 if strict or not root.is_Integer else int(root)
    return "hi", int(math.ceil(root)) - 1 if strict or not root.is_Integer else int(root)


def report_quantities(cost: Cost) -> list[tuple[str, str, sp.Expr]]:
    """``(key, label, formula)`` of each total the report shows: params, MACs, the FLOPs of
    the cost's convention (not under ``macs``, whose weighted total is the MACs) and the
    training memory in bytes when the cost has one."""
    out = [("params", "params", cost.params), ("macs", "MACs", cost.macs)]
    if cost.convention.name != "macs":
        out.append(("flops", cost.convention.label, cost.flops))
    if cost.memory is not None:
        out.append(("memory", "training memory (bytes)", cost.memory.total))
    return out


@dataclass
class _Block:
    label: str
    layer: str
    times: str  # how many instances the row holds (an expression when a count is symbolic)
    level: int
    values: dict[str, sp.Expr]


def _blocks(cost: Cost, keys: Sequence[str], depth: int, fold: bool) -> list[_Block]:
    """The folded rows of ``cost`` down to ``depth``: each run of identical siblings once,
    its values for the whole run (repeat counts included)."""
    rows: list[_Block] = []

    def visit(node: Cost, prefix: str, mult: sp.Expr, level: int, times: sp.Expr) -> None:
        ops = [c for c in node.children if c.op and not c.children]
        if len(ops) > _LOOSE_OPS:  # a trace's loose aten ops (backward's, say): one row
            values = {k: sp.Add(*(mult * c.count * _quantity(c, k) for c in ops))
                      for k in keys}
            rows.append(_Block(f"{prefix}(aten ops outside modules)",
                               ", ".join(sorted({c.layer for c in ops})[:3]) + ", ...",
                               str(times * len(ops)), level, values))
        for run in fold_runs(node.children, fold=fold):
            child = node.children[run.start]
            if len(ops) > _LOOSE_OPS and child.op and not child.children:
                continue
            m = mult * child.count * run.times
            label = f"{prefix}{run.label}"
            values = {k: m * _quantity(child, k) for k in keys}
            count = times * child.count * run.times  # how many instances the row holds
            rows.append(_Block(label, child.layer, str(count), level, values))
            if level + 1 < depth and child.children:  # a run's parts: for the whole run
                visit(child, f"{label}.", m, level + 1, count)

    visit(cost, "", sp.Integer(1), 0, sp.Integer(1))
    return rows


def _quantity(cost: Cost, key: str) -> sp.Expr:
    if key == "memory":  # a part's memory is not reported apart from the whole
        raise SymflopsError("no per-block memory", layer=cost.spec)
    return cost.quantity(key)


def _condition_text(cond: sp.Basic) -> str:
    """A condition as a reader writes it: ``H mod 32 = 0``, ``B = 2``, ``H >= 7``.

    >>> from symflops.symbols import H
    >>> _condition_text(sp.Eq(sp.Mod(H, 32), 0)), _condition_text(sp.Ge(H, 7))
    ('H mod 32 = 0', 'H >= 7')
    """
    if isinstance(cond, sp.Eq):
        lhs = cond.lhs
        text = f"{lhs.args[0]} mod {lhs.args[1]}" if isinstance(lhs, sp.Mod) else str(lhs)
        return f"{text} = {cond.rhs}"
    return str(cond)


def _mathml(expr: sp.Expr) -> str:
    from sympy.printing.mathml import mathml

    expanded = sp.expand(expr)  # a polynomial in the sizes (floors kept), when not longer
    if sp.count_ops(expanded) <= sp.count_ops(expr):
        expr = expanded
    return f'<math display="block">{mathml(expr, printer="presentation")}</math>'


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value).replace("</", "<\\/")


def _loader() -> Any:
    import jinja2

    from symflops.rendering._environment import builtin_loader

    source_tree = Path(__file__).resolve().parents[2] / "templates"
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(source_tree)), builtin_loader()])


def report(cost: Cost | Mapping[str, Cost], path: str | PathLike[str] | None = None, *,
           title: str | None = None, var: str | None = None, quantity: str | None = None,
           at: Mapping[str, int] | None = None, depth: int = 2, fold: bool = True) -> str:
    """An interactive HTML page of ``cost`` (a Cost, or ``{name: Cost}`` to compare
    models on one page): returns the HTML and writes it to ``path`` when given.

    ``var``: the symbol the plot runs along (default: the first of H, N, S, T, W the
    models depend on, else the first free symbol other than the batch B); ``quantity``:
    what it plots (``flops``, ``macs``, ``params`` or ``memory``; default the
    convention's total);
    ``at``: where each slider starts (name -> value on the domain); ``depth``: the levels
    of the per-block table; ``fold``: repeated identical blocks as one row.

    >>> import symflops as sf
    >>> html = sf.report(sf.nn.Linear(8, 4).cost(("B", 8)))
    >>> 'data-symbol="B"' in html and 'data-quantity="macs"' in html
    True
    """
    costs = _named(cost)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise SymflopsError("report: depth must be an int >= 1", values={"depth": depth})
    symbols: dict[str, sp.Symbol] = {}
    for c in costs.values():
        for s in sorted(c.free_symbols | {x for _, v in c._all_validity()
                                          for x in v.free_symbols}, key=lambda s: s.name):
            if symbols.setdefault(s.name, s) != s:
                raise SymflopsError(f"the models' {s.name} are different symbols",
                                    fix="build the models on the same symbols")
    sliders = [_slider(costs, s, (at or {}).get(name)) for name, s in symbols.items()]
    unknown = sorted(set(at or {}) - set(symbols))
    if unknown:
        raise SymflopsError("report: at names symbols the models do not have",
                            values={"unknown": ", ".join(unknown)},
                            fix="its symbols are: " + (", ".join(symbols) or "none"))
    models = [_model(name, c, depth, fold) for name, c in costs.items()]
    rows = list({q["key"]: q for m in models for q in m["quantities"]}.values())
    labels_of = [{q["key"]: q["label"] for q in m["quantities"]} for m in models]
    plotted = [q for q in models[0]["quantities"]  # what every model has, labelled alike
               if all(other.get(q["key"]) == q["label"] for other in labels_of)]
    keys = [q["key"] for q in plotted]
    if quantity is None:
        quantity = "flops" if "flops" in keys else "macs"
    if quantity not in keys:
        raise SymflopsError("report: no such quantity for every model",
                            values={"quantity": quantity},
                            fix="plot one of " + ", ".join(keys))
    names = [s["name"] for s in sliders]
    if var is None:  # a size a reader sweeps: an image side or a sequence, else not the batch
        free = [s["name"] for s in sliders if not s["pinned"]]
        var = next((n for n in ("H", "N", "S", "T", "W") if n in free),
                   next((n for n in free if n != "B"), free[0] if free else None))
    elif var not in names:
        raise SymflopsError(f"report: the models do not depend on {var}",
                            fix="plot along one of: " + (", ".join(names) or "none"))
    labels = dict.fromkeys(c.convention.label for c in costs.values())
    heading = title or (" vs ".join(costs) + " -- params, " + ", ".join(labels))
    template = _environment().get_template("report.html.j2")
    html = template.render(title=heading, models=models, rows=rows, plotted=plotted,
                           sliders=sliders, var=var,
                           quantity=quantity, runtime=RUNTIME, data=_script_json(
                               {"models": [m["script"] for m in models], "var": var,
                                "quantity": quantity, "sliders": sliders}),
                           script_models=[m["script_js"] for m in models])
    if path is not None:
        from symflops.files import check_output, write_text

        write_text(check_output(str(path), "path"), html, "path")
    return html


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=_loader(), autoescape=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def _named(cost: Cost | Mapping[str, Cost]) -> dict[str, Cost]:
    if isinstance(cost, Cost):
        return {cost.name or cost.spec or "model": cost}
    if isinstance(cost, Mapping) and cost and all(
            isinstance(k, str) and isinstance(v, Cost) for k, v in cost.items()):
        return dict(cost)
    raise SymflopsError("report needs a Cost or {name: Cost}",
                        values={"got": type(cost).__name__},
                        fix='pass sf.report(cost) or sf.report({"a": cost_a, "b": cost_b})')


def _slider(costs: Mapping[str, Cost], sym: sp.Symbol, start: Any) -> dict[str, Any]:
    """A slider over the values of ``sym`` every model allows."""
    lo, hi, step, offset = 0, None, 1, 0
    for c in costs.values():
        if sym not in c.free_symbols and not any(sym in v.free_symbols
                                                  for _, v in c._all_validity()):
            continue
        lo_c, hi_c, step_c, offset_c = symbol_range(c, sym)
        lo = max(lo, lo_c)
        hi = hi_c if hi is None else (hi if hi_c is None else min(hi, hi_c))
        if step_c != 1:
            if step == 1 or step_c % step == 0:
                step, offset = step_c, offset_c
            elif step % step_c != 0:
                raise SymflopsError(f"the models' lattices of {sym.name} differ",
                                    values={sym.name: f"{offset} mod {step} and "
                                                      f"{offset_c} mod {step_c}"},
                                    fix="compare models on a common lattice")
    first = lo + (offset - lo) % step
    if hi is not None and first > hi:
        raise SymflopsError(f"no value of {sym.name} suits every model",
                            fix="compare models whose domains overlap")
    pinned = hi is not None and hi - first < step
    if start is None:
        want = _TYPICAL.get(sym.name, first)
        start = first + max(0, round((want - first) / step)) * step
        if hi is not None and start > hi:
            start = hi - (hi - first) % step
    else:
        if isinstance(start, bool) or not isinstance(start, int) or start < first or \
                (start - first) % step or (hi is not None and start > hi):
            where = f"{first}, {first + step}, ..." + (f" up to {hi}" if hi is not None else "")
            raise SymflopsError(f"report: {sym.name} starts outside the formula's domain",
                                values={sym.name: start}, fix=f"start {sym.name} at one of "
                                                              f"{where}")
    top = hi - (hi - first) % step if hi is not None else \
        max(first + _OPEN_STEPS * step, first + 4 * (start - first) // step * step)
    return {"name": sym.name, "min": first, "max": top, "step": step, "value": start,
            "bounded": hi is not None, "pinned": pinned}


def _model(name: str, cost: Cost, depth: int, fold: bool) -> dict[str, Any]:
    quantities = report_quantities(cost)
    keys = [k for k, _, _ in quantities if k != "memory"]
    blocks = _blocks(cost, keys, depth, fold) if cost.children else []
    conditions = []
    seen: set[sp.Basic] = set()
    for where, cond in cost._all_validity():
        if cond not in seen and cond.free_symbols:
            seen.add(cond)
            conditions.append((where, cond))
    what = f"the report of {name}"
    totals = ", ".join(f"{k}: (v) => {js_expr(e, what)}" for k, _, e in quantities)
    script_js = ("{" + f"q: {{{totals}}}, "
                 + "blocks: [" + ", ".join(
                     "{" + ", ".join(f"{k}: (v) => {js_expr(b.values[k], what)}" for k in keys)
                     + "}" for b in blocks) + "], "
                 + "valid: [" + ", ".join(f"(v) => {js_expr(c, what)}" for _, c in conditions)
                 + "]}")
    return {
        "name": name,
        "convention": cost.convention.label,
        "quantities": [{"key": k, "label": label, "mathml": _mathml(e)}
                       for k, label, e in quantities],
        "block_keys": keys,
        "domain": [_condition_text(c) for _, c in conditions],
        "blocks": [{"label": b.label, "layer": b.layer, "times": b.times, "level": b.level}
                   for b in blocks],
        "script": {"name": name, "keys": [k for k, _, _ in quantities],
                   "labels": {k: label for k, label, _ in quantities},
                   "conditions": [f"{_condition_text(cond)} ({where})"
                                  for where, cond in conditions]},
        "script_js": script_js,
    }
