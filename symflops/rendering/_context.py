"""The format-neutral context every template receives: rows, shares, derivations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.conventions import KINDS, Convention
from symflops.cost import Cost, weighted_work
from symflops.errors import SymflopsError
from symflops.notation import NUMBER_STYLES
from symflops.rendering._fold import Run, fold_runs
from symflops.simplification import shown

#: LaTeX tables with more rows than this become a ``longtable`` (a float cannot break
#: across pages)
LONG_TABLE_ROWS = 30


# ----------------------------------------------------------------------------- context
@dataclass(frozen=True)
class Quantity:
    """An expression and, when ``at=`` was given, its value (an int, or a partly
    substituted expression when ``at`` did not bind every symbol)."""

    expr: sp.Expr
    value: sp.Expr | None = None

    @property
    def shown(self) -> sp.Expr:
        """What a table cell shows: the value if known, else the expression."""
        return self.expr if self.value is None else self.value


@dataclass(frozen=True)
class Substitution:
    """A general formula with each bound symbol shown as its value, unevaluated."""

    expr: sp.Expr
    bindings: Mapping[sp.Symbol, sp.Expr]

    @property
    def evaluated(self) -> sp.Expr:
        return self.expr.xreplace(dict(self.bindings))


def times_count(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return b if a == 1 else a if b == 1 else a * b


#: sizes at which a symbolic share is probed (distinct primes: no accidental equalities)
_PROBES = ((1009, 1013, 1019, 1021, 1031, 1033, 1039), (2003, 2011, 2017, 2027, 2029, 2039,
                                                        2053))


def _probe(expr: sp.Expr, syms: Sequence[sp.Symbol], point: tuple[int, ...]) -> sp.Expr:
    values = {s: sp.Integer(point[i % len(point)] + 2 * (i // len(point)))
              for i, s in enumerate(syms)}
    return expr.xreplace(values)


class _Shares:
    """Shares of the total FLOPs, symbolic ones included when they are constant.

    Each node's FLOPs are probed at two points, bottom-up (leaves are small, so this is
    cheap); a row whose ratio to the total differs between the points depends on the sizes
    and gets no share. Equal ratios are then proved exactly (``q part == p total``).
    """

    def __init__(self, root: Cost) -> None:
        self.syms = sorted(root.free_symbols | {s for _, c in root.walk()
                                                for s in c.count.free_symbols},
                           key=lambda s: s.name)
        self.values: dict[int, tuple[sp.Expr, ...]] = {}
        self.total = self._node(root)

    def point(self, expr: sp.Expr) -> tuple[sp.Expr, ...]:
        if not expr.free_symbols:
            return (expr,) * len(_PROBES)
        return tuple(_probe(expr, self.syms, pt) for pt in _PROBES)

    def _node(self, node: Cost) -> tuple[sp.Expr, ...]:
        if not node.children:
            vals = self.point(weighted_work(node.work, node.convention))
        else:
            parts = [tuple(c * v for c, v in zip(self.point(ch.count), self._node(ch),
                                                 strict=True)) for ch in node.children]
            vals = tuple(sp.Add(*col) for col in zip(*parts, strict=True))
        self.values[id(node)] = vals
        return vals

    def share(self, node: Cost, mult: sp.Expr, part: sp.Expr, total: sp.Expr) -> float | None:
        if total == 0:
            return None
        if not part.free_symbols and not total.free_symbols:
            return float(sp.Rational(part, total))
        if any(t == 0 for t in self.total):
            return None
        ratios = [m * v / t for m, v, t in zip(self.point(mult), self.values[id(node)],
                                               self.total, strict=True)]
        if len(set(ratios)) != 1 or not isinstance(ratios[0], sp.Rational):
            return None
        p, q = ratios[0].p, ratios[0].q
        if sp.expand(q * part - p * total) == 0:
            return float(ratios[0])
        return None


#: the size a reader thinks of first, where shares of symbolic rows are stated: one
#: 224 x 224 image, a 512-token sequence, a 12-layer 768-wide model (ViT-B, BERT-base)
TYPICAL = {"B": 1, "H": 224, "W": 224, "D": 16, "T": 512, "N": 512, "S": 512, "L": 12,
           "dim": 768, "heads": 12, "kv_heads": 12, "head_dim": 64, "mlp_ratio": 4,
           "V": 32000, "C": 64, "C_in": 64, "C_out": 64, "K": 3}


def stated_size(cost: Cost) -> dict[sp.Symbol, sp.Integer] | None:
    """A point of ``cost``'s domain to state symbolic shares at: each free symbol at its
    typical size (:data:`TYPICAL`, an image 224 x 224, a batch of 1), moved onto the
    domain's lattice and bounds; None when a symbol has no typical size or the point is
    outside the domain (a condition across symbols).

    >>> import symflops as sf
    >>> from symflops.symbols import B, H, W
    >>> stated_size(sf.nn.Conv2d(3, 8, 3).cost((B, 3, H, W)))
    {B: 1, H: 224, W: 224}
    """
    point: dict[sp.Symbol, sp.Integer] = {}
    domain = cost.domain
    for sym in sorted(cost.free_symbols, key=lambda s: s.name):
        if sym.name not in TYPICAL:
            return None
        first, hi, step, _ = domain.range_of(sym)
        want = TYPICAL[sym.name]
        value = first + max(0, round((want - first) / step)) * step
        if hi is not None and value > hi:
            value = hi - (hi - first) % step
        point[sym] = sp.Integer(value)
    return point if point and domain.contains(point) else None


def _rows(cost: Cost, cost_at: Cost | None, depth: int | None, fold: bool,
          convention: Convention | None, stated: Mapping[sp.Symbol, sp.Expr] | None = None
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per module down to ``depth`` (a run of identical siblings is one row when
    ``fold``); values from ``cost_at`` (the tree with ``at`` substituted once, walked beside
    ``cost``). With a ``convention``, also the derivation of every leaf shown. A share that
    depends on the sizes is the share at ``stated`` when given (:func:`stated_size`)."""
    root = cost_at if cost_at is not None else cost
    total_flops = shown_quantity(root, "flops")
    point = dict(stated or {})
    total_stated = total_flops.xreplace(point) if point else None
    shares = _Shares(root)

    def share(node: Cost, mult: sp.Expr, contribution: sp.Expr) -> tuple[float | None, bool]:
        """The row's share, and whether it is the share at the stated size only."""
        exact = shares.share(node, mult, contribution, total_flops)
        if exact is not None or total_stated is None or not total_stated.is_Integer \
                or total_stated == 0:
            return exact, False
        part = contribution.xreplace(point)
        if not part.is_Integer:
            return None, False
        return float(sp.Rational(part, total_stated)), True

    rows: list[dict[str, Any]] = []
    derivations: list[dict[str, Any]] = []

    def visit(node: Cost, node_at: Cost | None, path: str, level: int, mult: sp.Expr,
              mult_at: sp.Expr, run: Run) -> None:
        mult = times_count(times_count(mult, node.count), sp.Integer(run.times))
        mult_at = mult if node_at is None else times_count(
            times_count(mult_at, node_at.count), sp.Integer(run.times))
        folded = bool(node.children) and depth is not None and level >= depth
        flops = shown_quantity(node, "flops")
        flops_at = None if node_at is None else shown_quantity(node_at, "flops")
        contribution = times_count(mult_at, flops if flops_at is None else flops_at)
        rows.append({
            "path": path, "name": node.name, "level": level, "layer": node.layer,
            "spec": node.spec, "count": node.count, "multiplier": mult, "folded": folded,
            "times": run.times, "names": run.names, "label": run.label,
            "leaf": not node.children,
            "output_shape": node.output_shape if node_at is None else
            tuple(shown(x) for x in node_at.output_shape),
            "params": node_quantity(node, node_at, "params"),
            "macs": node_quantity(node, node_at, "macs"),
            "flops": Quantity(flops, flops_at),
        })
        rows[-1]["share"], rows[-1]["share_stated"] = share(node_at or node, mult_at,
                                                            contribution)
        if not node.children and convention is not None:
            item = _derivation(path, node, node_at, mult, convention)
            if item is not None:
                derivations.append(item)
        if not folded:
            children(node, node_at, path, level + 1, mult, mult_at)

    def children(node: Cost, node_at: Cost | None, path: str, level: int, mult: sp.Expr,
                 mult_at: sp.Expr) -> None:
        for run in fold_runs(node.children, fold):
            child = node.children[run.start]
            visit(child, None if node_at is None else node_at.children[run.start],
                  f"{path}.{run.label}" if path else run.label, level, mult, mult_at, run)

    one = sp.Integer(1)
    if not cost.children:
        visit(cost, cost_at, cost.name, 0, one, one, Run(0, (cost.name,)))
    else:
        children(cost, cost_at, "", 1, one, one)
    return rows, derivations


def node_quantity(node: Cost, node_at: Cost | None, name: str) -> Quantity:
    """``node``'s quantity as shown, with its value from ``node_at`` (``at`` substituted)."""
    return Quantity(shown_quantity(node, name),
                    None if node_at is None else shown_quantity(node_at, name))


def shown_quantity(node: Cost, name: str) -> sp.Expr:
    """A quantity as a render shows it. FLOPs are shown from the convention-weighted
    work (:func:`~symflops.cost.weighted_work`, the sum ``Cost.flops`` is made of) rather
    than from ``Cost.flops`` itself, which factors every leaf fully: :func:`shown` holds
    floors opaque and is about twice as fast on a first render of a strided network."""
    if name == "flops":
        return shown(weighted_work(node.work, node.convention))
    return shown(node.quantity(name))


def _derivation(path: str, node: Cost, node_at: Cost | None, mult: sp.Expr,
                convention: Convention) -> dict[str, Any] | None:
    d = node.derivation
    if d is None:
        return None
    # structural ones (groups=1, ...) specialise the general formula; sizes are substituted
    ones = {s: v for s, v in d.bindings.items() if v == 1}
    shown_bindings = {s: v for s, v in d.bindings.items() if v != 1 and v != s}
    steps = []
    label = convention.label
    for key, title, general in (
            ("params", "params", d.general_params),
            ("flops", label, d.general_flops(convention))):
        gen = shown(sp.sympify(general).xreplace(ones))
        quantity = node_quantity(node, node_at, key)
        result, value = quantity.expr, quantity.value
        sub_syms = {s: v for s, v in shown_bindings.items() if s in gen.free_symbols}
        lines: list[dict[str, Any]] = [{"tag": "general", "expr": gen}]
        if sub_syms:
            lines.append({"tag": "substituted", "expr": Substitution(gen, sub_syms)})
        if result != gen:
            lines.append({"tag": "simplified", "expr": result})
        if value is not None and value != result:
            lines.append({"tag": "value", "expr": value})
        steps.append({
            "quantity": key, "label": title, "general": gen,
            "substituted": Substitution(gen, sub_syms) if sub_syms else None,
            "result": result, "value": value, "lines": lines,
        })
    kinds = []
    for kind in KINDS:
        if kind in d.general:
            kinds.append({"kind": kind, "rate": convention.rate(kind),
                          "general": shown(d.general[kind].xreplace(ones)),
                          "meaning": KINDS[kind], "detail": d.rates.get(kind, "")})
    return {
        "path": path, "layer": node.layer, "spec": node.spec, "multiplier": mult,
        "explanation": d.explanation, "kinds": kinds, "steps": steps,
        "bindings": [{"symbol": s, "value": v} for s, v in shown_bindings.items()],
    }


def build_context(cost: Cost, *, depth: int | None = None,
                  at: Mapping[Any, Any] | str | None = None, numbers: str = "grouped",
                  derivations: bool = True, standalone: bool = False,
                  math_only: bool = False, title: str | None = None,
                  inputs: str | None = None, fold: bool = True,
                  stated_shares: bool = True) -> dict[str, Any]:
    """The format-neutral context every template receives (SymPy objects inside).

    ``fold`` shows a run of identical siblings as one row (:mod:`._fold`);
    ``stated_shares``: a row whose share depends on the sizes shows its share at a stated
    size (:func:`stated_size`, listed in ``share_at``) instead of none."""
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                              or depth < 1):
        raise SymflopsError("depth must be a positive int or None", values={"depth": depth},
                            fix="pass depth=1 for the top-level modules, None for all")
    if not isinstance(fold, bool):
        raise SymflopsError("fold must be True or False", values={"fold": fold},
                            fix="pass fold=True (identical siblings in one row) or fold=False")
    if numbers not in NUMBER_STYLES:
        raise SymflopsError("unknown number style", values={"numbers": numbers},
                            fix="use one of " + ", ".join(
                                f"numbers={n!r} ({d})" for n, d in NUMBER_STYLES.items()))
    convention = cost.convention
    cost_at: Cost | None = None
    at_map: dict[sp.Symbol, sp.Expr] = {}
    if isinstance(at, str):  # "B=1,H=224": parsed by symflops.parse, never evaluated
        from symflops.parse import parse_assignments

        names = {s.name: s for s in cost.free_symbols}
        at = parse_assignments(at, names=names, values_names=names)
    if at is not None:  # the one substitution: every value shown comes from cost_at
        at_map = cost.substitution(at)
        cost_at = cost.subs(at_map)
    root = cost_at if cost_at is not None else cost
    stated = stated_size(root) if stated_shares and root.free_symbols else None
    rows, derivs = _rows(cost, cost_at, depth, fold, convention if derivations else None,
                         stated)
    share_at = [{"symbol": s, "value": v} for s, v in (stated or {}).items()] \
        if any(r["share_stated"] for r in rows) else []
    total = {
        "params": node_quantity(cost, cost_at, "params"),
        "macs": node_quantity(cost, cost_at, "macs"),
        "flops": node_quantity(cost, cost_at, "flops"),
        "output_shape": cost.output_shape if cost_at is None else
        tuple(shown(x) for x in cost_at.output_shape),
        "input_shape": cost.input_shape,
    }
    exact_totals = [("params", total["params"])] + (
        [("MACs", total["macs"])] if convention.label != "MACs" else []) + [
        (convention.label, total["flops"])]
    counted = [{"kind": k, "rate": convention.rate(k), "meaning": KINDS[k]} for k in KINDS]
    repeated = [r for r in rows if r["count"] != 1 or r["times"] != 1]
    return {
        "title": title or cost.spec,
        "inputs": inputs,
        "root": cost,
        "root_at": cost_at,
        "layer": cost.layer,
        "spec": cost.spec,
        "convention": convention,
        "label": convention.label,
        "show_macs_column": convention.label != "MACs",
        "rates": counted,
        "at": [{"symbol": s, "value": v} for s, v in at_map.items()],
        # where the shares of rows that depend on the sizes are stated (empty: none do)
        "share_at": share_at,
        "numbers": numbers,
        "depth": depth,
        "rows": rows,
        "folded": any(r["folded"] for r in rows),
        "fold": fold,
        "style": "report",
        "folded_runs": any(r["times"] != 1 for r in rows),
        "repeated": bool(repeated),
        "total": total,
        "exact_totals": exact_totals,
        "derivations": derivs,
        "notes": list(cost.notes),
        # the domain the formulas were proven on, clause by clause (symflops.domain)
        "validity": cost.domain.clauses(),
        "standalone": standalone,
        "math_only": math_only,
        "long_table_rows": LONG_TABLE_ROWS,
    }

