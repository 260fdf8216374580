"""The JSON render: the whole tree, every expression as str, srepr and LaTeX."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.printing.repr import ReprPrinter

from symflops.conventions import KINDS, Convention
from symflops.cost import Cost
from symflops.notation import latex_expr
from symflops.rendering._context import Quantity, Substitution, node_quantity
from symflops.rendering._fold import Run, fold_runs
from symflops.rendering._formats import latex_math, text_math
from symflops.simplification import shown


class _CanonicalRepr(ReprPrinter):
    """``srepr`` with a symbol's assumptions in sorted order: SymPy prints them in the order
    the first ``Symbol(...)`` call of that name gave them (its cache returns that
    instance), so the same tree printed differently depending on what ran before."""

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        d = dict(expr._assumptions_orig)
        if isinstance(expr, sp.Dummy):
            d["dummy_index"] = expr.dummy_index
        if not d:
            return f"{type(expr).__name__}({self._print(expr.name)})"
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(d.items()))
        return f"{type(expr).__name__}({self._print(expr.name)}, {attrs})"


def srepr(x: sp.Basic) -> str:
    """``sympy.srepr`` with canonical symbol assumptions.

    >>> a = sp.Symbol("Q", positive=True, integer=True)
    >>> srepr(a + 1)
    "Add(Symbol('Q', integer=True, positive=True), Integer(1))"
    """
    return str(_CanonicalRepr().doprint(x))


def json_expr(x: Any) -> Any:
    """An expression as ``{"str", "srepr", "latex"}``; plain data passes through."""
    if isinstance(x, Quantity):
        out = {"expr": json_expr(x.expr)}
        if x.value is not None:
            out["value"] = json_expr(x.value)
        return out
    if isinstance(x, Substitution):
        return {"str": text_math(x), "latex": latex_math(x, numbers="plain"),
                "srepr": srepr(x.evaluated)}
    if isinstance(x, Convention):
        return {"name": x.name, "label": x.label, "unit": x.unit,
                "description": x.description, "rates": dict(sorted(x.rates.items()))}
    if isinstance(x, sp.Basic):
        d: dict[str, Any] = {"str": str(x), "srepr": srepr(x),
                             "latex": latex_expr(x, grouped=False)}
        if isinstance(x, sp.Integer):
            d["int"] = int(x)
        return d
    if isinstance(x, Mapping):
        return {str(k): json_expr(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_expr(v) for v in x]
    return x


def json_tree(cost: Cost, cost_at: Cost | None, depth: int | None, level: int,
              path: str, convention: Convention, fold: bool = False,
              run: Run | None = None) -> dict[str, Any]:
    """``cost`` and its subtree to ``depth``; with ``fold`` a run of identical siblings is
    one node named by the run (``"0-11"``) with ``times`` and the siblings' ``names``."""
    node: dict[str, Any] = {
        "name": cost.name if run is None else run.label, "path": path, "layer": cost.layer,
        "spec": cost.spec,
        "count": cost.count, "input_shape": cost.input_shape, "output_shape": cost.output_shape,
        "params": node_quantity(cost, cost_at, "params"),
        "macs": node_quantity(cost, cost_at, "macs"),
        "flops": node_quantity(cost, cost_at, "flops"),
        "work": {k: cost.work[k] for k in KINDS if k in cost.work},
        "notes": list(cost.notes),
    }
    if run is not None and run.times > 1:
        node["times"], node["names"] = run.times, list(run.names)
    if cost.derivation is not None:
        d = cost.derivation
        node["derivation"] = {
            "general": {k: d.general[k] for k in KINDS if k in d.general},
            "general_params": d.general_params,
            "general_flops": shown(d.general_flops(convention)),
            "bindings": {s.name: v for s, v in sorted(d.bindings.items(),
                                                      key=lambda kv: kv[0].name)},
            "explanation": d.explanation,
        }
    if cost.children and (depth is None or level < depth):
        node["children"] = [
            json_tree(cost.children[r.start],
                      None if cost_at is None else cost_at.children[r.start], depth,
                      level + 1, f"{path}.{r.label}" if path else r.label, convention, fold, r)
            for r in fold_runs(cost.children, fold)]
    elif cost.children:
        node["folded"] = len(cost.children)
    return node


def json_document(cost: Cost, cost_at: Cost | None, convention: Convention,
                  at: Sequence[Mapping[str, Any]], depth: int | None, fold: bool = False) -> str:
    """The JSON render: the whole tree (to ``depth``, runs of identical siblings folded
    when ``fold``), every expression as str, srepr and LaTeX, values (from ``cost_at``)
    when ``at`` was given."""
    at_named = {a["symbol"].name: a["value"] for a in at} if at else None
    if at_named is None:  # no values asked for (or nothing to substitute): none shown
        cost_at = None
    doc = {
        "symflops": "cost/1",
        "convention": convention,
        "at": at_named,
        "depth": depth,
        "fold": fold,
        "tree": json_tree(cost, cost_at, depth, 0, cost.name, convention, fold),
    }
    return json.dumps(json_expr(doc), indent=1, sort_keys=True, ensure_ascii=False)

