"""Render a Cost as Markdown, LaTeX, plain text or JSON through jinja2 templates.

Formats live in a registry (:func:`register_format`): a new format is a template in
``templates/`` and one registration line. Every output names its convention.

>>> import symflops as sf
>>> from symflops.symbols import B, H, W
>>> c = sf.nn.Conv2d(3, 8, 3, padding=1).cost((B, 3, H, W))
>>> print(sf.render(c, "text", at={"B": 1, "H": 32, "W": 32}).splitlines()[0])
symflops: Conv2d(3, 8, kernel_size=3, padding=1) -- FLOPs (exact)
>>> format(c, "md").startswith("### symflops")
True

Templates see one format-neutral context (see :func:`build_context`) and format it with
the format's filters: ``math`` (an expression), ``cell`` (a quantity: a number when
known, else an expression), ``esc`` (a user string), ``pct``, ``times``, ``shape``.
Regenerate the golden files after an intended change with
``SYMFLOPS_UPDATE_GOLDEN=1 python -m pytest tests/test_render.py``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import sympy as sp

from symflops.conventions import KINDS, Convention, get_convention
from symflops.cost import Cost, simplify_expr
from symflops.errors import SymflopsError
from symflops.latex import (
    format_number,
    latex_escape,
    latex_expr,
    markdown_code,
    markdown_escape,
    substitution_names,
    text_expr,
)

__all__ = ["render", "register_format", "unregister_format", "get_format", "formats", "Format",
           "build_context", "Quantity", "Substitution", "template_environment"]

NUMBER_STYLES = ("comma", "si")

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


def _mul(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return b if a == 1 else a if b == 1 else a * b


_OPAQUE = (sp.floor, sp.ceiling, sp.Min, sp.Max)


@functools.lru_cache(maxsize=8192)
def _simple(expr: sp.Expr) -> sp.Expr:
    """An expression as shown: :func:`symflops.cost.simplify_expr`, with every floor,
    ceiling, Min and Max first replaced by a plain symbol (factoring a polynomial in a
    few symbols is fast; SymPy factoring the floors themselves is slow), then put back.
    Long sums are only collected (:func:`_collect`)."""
    if not expr.free_symbols:
        return expr
    if not expr.has(*_OPAQUE):
        return simplify_expr(expr)
    if not expr.is_Add:  # a product of simplified factors reads best as it is
        return expr
    opaque = sorted((a for a in expr.atoms(*_OPAQUE)), key=sp.default_sort_key)
    names = {a: sp.Symbol(f"_opaque{i}") for i, a in enumerate(opaque)}
    poly = sp.expand(expr.xreplace(names))
    if len(sp.Add.make_args(poly)) > _FACTOR_TERMS:
        return _collect(sp.expand(expr))
    back = {v: k for k, v in names.items()}
    return simplify_expr(poly).xreplace(back)


#: sums with more terms than this are collected, not factored
_FACTOR_TERMS = 8


def _node_flops(node: Cost) -> sp.Expr:
    """``node.flops`` as shown, without making the Cost factor it (see :func:`_simple`)."""
    conv = node.convention
    return _simple(sp.Add(*(conv.rate(k) * v for k, v in node.work.items())))


def _collect(expr: sp.Expr) -> sp.Expr:
    """Pull the common numeric and symbolic factor out of a sum (a cheap factor_terms):
    ``256 B (74 floor(...) + ...)``."""
    terms = sp.Add.make_args(expr)
    if len(terms) == 1:
        return expr
    content, prim = expr.primitive()
    common: dict[sp.Expr, sp.Expr] | None = None
    for t in sp.Add.make_args(prim):
        powers = {b: e for b, e in (f.as_base_exp() for f in sp.Mul.make_args(t))
                  if not b.is_number and e.is_Integer and e > 0}
        common = powers if common is None else {
            b: min(e, powers[b]) for b, e in common.items() if b in powers}
        if not common:
            break
    factor = sp.Mul(*(b**e for b, e in (common or {}).items()))
    if factor != 1:
        prim = sp.Add(*(t / factor for t in sp.Add.make_args(prim)))
    if content == 1:
        return factor * prim
    return sp.Mul(content, factor, prim, evaluate=False) if factor != 1 else \
        sp.Mul(content, prim, evaluate=False)


def _at_value(expr: sp.Expr, at: Mapping[sp.Symbol, sp.Expr] | None) -> sp.Expr | None:
    if at is None:
        return None
    return _simple(expr.xreplace(at))


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
            conv = node.convention
            vals = self.point(sp.Add(*(conv.rate(k) * v for k, v in node.work.items())))
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


def _rows(cost: Cost, cost_at: Cost | None, depth: int | None,
          at: Mapping[sp.Symbol, sp.Expr] | None, convention: Convention) -> list[dict[str, Any]]:
    total_flops = _node_flops(cost_at if cost_at is not None else cost)
    shares = _Shares(cost_at if cost_at is not None else cost)
    rows: list[dict[str, Any]] = []

    def visit(node: Cost, node_at: Cost | None, path: str, level: int, mult: sp.Expr) -> None:
        mult = _mul(mult, node.count)
        folded = bool(node.children) and depth is not None and level >= depth
        flops = _node_flops(node)
        flops_at = _at_value(flops, at)
        contribution = _mul(mult.xreplace(at) if at else mult,
                            flops_at if flops_at is not None else flops)
        rows.append({
            "path": path, "name": node.name, "level": level, "layer": node.layer,
            "spec": node.spec, "count": node.count, "multiplier": mult, "folded": folded,
            "leaf": not node.children,
            "output_shape": node.output_shape if at is None else
            tuple(_simple(x.xreplace(at)) for x in node.output_shape),
            "params": Quantity(_simple(node.params), _at_value(node.params, at)),
            "macs": Quantity(_simple(node.macs), _at_value(node.macs, at)),
            "flops": Quantity(flops, flops_at),
            "share": shares.share(node_at if node_at is not None else node,
                                  mult.xreplace(at) if at else mult, contribution, total_flops),
        })
        if not folded:
            for i, child in enumerate(node.children):
                child_at = node_at.children[i] if node_at is not None else None
                visit(child, child_at, f"{path}.{child.name}" if path else child.name,
                      level + 1, mult)

    if not cost.children:
        visit(cost, cost_at, cost.name, 0, sp.Integer(1))
    else:
        for i, child in enumerate(cost.children):
            visit(child, cost_at.children[i] if cost_at is not None else None, child.name, 1,
                  sp.Integer(1))
    return rows


def _derivation(path: str, node: Cost, mult: sp.Expr, convention: Convention,
                at: Mapping[sp.Symbol, sp.Expr] | None) -> dict[str, Any] | None:
    d = node.derivation
    if d is None:
        return None
    # structural ones (groups=1, ...) specialise the general formula; sizes are substituted
    ones = {s: v for s, v in d.bindings.items() if v == 1}
    shown = {s: v for s, v in d.bindings.items() if v != 1 and v != s}
    steps = []
    label = convention.label
    for key, title, general in (
            ("params", "params", d.general_params),
            ("flops", label, d.general_flops(convention))):
        gen = _simple(sp.sympify(general).xreplace(ones))
        result = _simple(node.params) if key == "params" else _node_flops(node)
        sub_syms = {s: v for s, v in shown.items() if s in gen.free_symbols}
        value = _at_value(result, at)
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
                          "general": _simple(d.general[kind].xreplace(ones)),
                          "meaning": KINDS[kind], "detail": d.rates.get(kind, "")})
    return {
        "path": path, "layer": node.layer, "spec": node.spec, "multiplier": mult,
        "explanation": d.explanation, "kinds": kinds, "steps": steps,
        "bindings": [{"symbol": s, "value": v} for s, v in shown.items()],
    }


def build_context(cost: Cost, *, depth: int | None = None,
                  at: Mapping[Any, Any] | None = None, numbers: str = "comma",
                  derivations: bool = True, standalone: bool = False,
                  math_only: bool = False, title: str | None = None) -> dict[str, Any]:
    """The format-neutral context every template receives (SymPy objects inside)."""
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                              or depth < 1):
        raise SymflopsError("depth must be a positive int or None", values={"depth": depth},
                            fix="pass depth=1 for the top-level modules, None for all")
    if numbers not in NUMBER_STYLES:
        raise SymflopsError("unknown number style", values={"numbers": numbers},
                            fix="use numbers='comma' or numbers='si'")
    convention = cost.convention
    cost_at: Cost | None = None
    at_map: dict[sp.Symbol, sp.Expr] | None = None
    if at is not None:
        cost_at = cost.subs(dict(at))
        at_map = cost._resolve(dict(at), {})
    rows = _rows(cost, cost_at, depth, at_map, convention)
    derivs: list[dict[str, Any]] = []
    if derivations:
        shown_paths = {r["path"] for r in rows}
        stack: list[tuple[Cost, str, sp.Expr]] = [(cost, cost.name if not cost.children
                                                   else "", sp.Integer(1))]
        while stack:
            node, path, mult = stack.pop()
            mult = _mul(mult, node.count)
            if not node.children:
                if path in shown_paths or not cost.children:
                    item = _derivation(path, node, mult, convention, at_map)
                    if item is not None:
                        derivs.append(item)
                continue
            for child in reversed(node.children):
                stack.append((child, f"{path}.{child.name}" if path else child.name, mult))
    total_flops = _node_flops(cost)
    total = {
        "params": Quantity(_simple(cost.params), _at_value(cost.params, at_map)),
        "macs": Quantity(_simple(cost.macs), _at_value(cost.macs, at_map)),
        "flops": Quantity(total_flops, _at_value(total_flops, at_map)),
        "output_shape": cost.output_shape if at_map is None else
        tuple(_simple(x.xreplace(at_map)) for x in cost.output_shape),
        "input_shape": cost.input_shape,
    }
    counted = [{"kind": k, "rate": convention.rate(k), "meaning": KINDS[k]} for k in KINDS]
    repeated = [r for r in rows if r["count"] != 1]
    return {
        "title": title or cost.spec,
        "root": cost,
        "layer": cost.layer,
        "spec": cost.spec,
        "convention": convention,
        "label": convention.label,
        "show_macs_column": convention.label != "MACs",
        "rates": counted,
        "at": [{"symbol": s, "value": v} for s, v in (at_map or {}).items()],
        "numbers": numbers,
        "depth": depth,
        "rows": rows,
        "folded": any(r["folded"] for r in rows),
        "repeated": bool(repeated),
        "total": total,
        "derivations": derivs,
        "notes": list(cost.notes),
        "validity": list(dict.fromkeys(v for _, c in cost.walk() for v in c.validity)),
        "standalone": standalone,
        "math_only": math_only,
        "long_table_rows": LONG_TABLE_ROWS,
    }


# ----------------------------------------------------------------------------- formats
def _identity(s: str) -> str:
    return s


def _x_times(s: str) -> str:
    return "x " + s


@dataclass(frozen=True)
class Format:
    """An output format: a template and the filters that print the context.

    ``math`` prints an expression (or a :class:`Substitution`), ``text`` escapes a user
    string, ``number`` formats an int in this format's style.
    """

    name: str
    template: str
    math: Callable[[Any], str]
    text: Callable[[Any], str]
    code: Callable[[Any], str]
    prose: Callable[[Any], str] = str
    inline_math: Callable[[str], str] = _identity
    aliases: tuple[str, ...] = ()
    percent: str = "%"
    times: Callable[[str], str] = _x_times
    dash: str = "-"
    number_wrap: Callable[[str], str] = _identity
    extra_filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    #: other documents this format can write, by name (``"reference"``: the formula page)
    templates: Mapping[str, str] = field(default_factory=dict)


_FORMATS: dict[str, Format] = {}
_ALIASES: dict[str, str] = {}


def register_format(fmt: Format, *, replace: bool = False) -> Format:
    """Make ``fmt`` available to :func:`render` under its name and aliases."""
    names = (fmt.name, *fmt.aliases)
    taken = [n for n in names if n in _ALIASES and _ALIASES[n] != fmt.name]
    if (fmt.name in _FORMATS or taken) and not replace:
        raise SymflopsError("a format with this name is already registered",
                            values={"name": fmt.name, "taken": taken or [fmt.name]},
                            fix="pick another name or pass replace=True")
    _FORMATS[fmt.name] = fmt
    for n in names:
        _ALIASES[n] = fmt.name
    template_environment.cache_clear()
    return fmt


def unregister_format(name: str) -> None:
    """Remove a user format (the built-in ones stay)."""
    if name in ("markdown", "latex", "text", "json"):
        raise SymflopsError("built-in formats cannot be removed", values={"format": name})
    fmt = _FORMATS.pop(name, None)
    if fmt is not None:
        for alias in (fmt.name, *fmt.aliases):
            _ALIASES.pop(alias, None)
        template_environment.cache_clear()


def get_format(name: str) -> Format:
    """A registered format by name or alias (``"md"``, ``"tex"``...)."""
    try:
        return _FORMATS[_ALIASES[name]]
    except (KeyError, TypeError):
        raise SymflopsError("unknown render format", values={"format": name},
                            fix="use one of " + ", ".join(sorted(_ALIASES))) from None


def formats() -> dict[str, Format]:
    """All registered formats by name."""
    return dict(_FORMATS)


def _latex_math(x: Any) -> str:
    if isinstance(x, Substitution):
        return latex_expr(x.expr, substitution_names(x.bindings, "latex"))
    if isinstance(x, sp.Integer):
        return _num_latex_math(int(x))
    return latex_expr(sp.sympify(x))


def _num_latex_math(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


def _text_math(x: Any) -> str:
    if isinstance(x, Substitution):
        return text_expr(x.expr, substitution_names(x.bindings, "text"))
    return text_expr(sp.sympify(x))


def _json_expr(x: Any) -> Any:
    """An expression as ``{"str", "srepr", "latex"}``; plain data passes through."""
    if isinstance(x, Quantity):
        out = {"expr": _json_expr(x.expr)}
        if x.value is not None:
            out["value"] = _json_expr(x.value)
        return out
    if isinstance(x, Substitution):
        return {"str": _text_math(x), "latex": _latex_math(x),
                "srepr": sp.srepr(x.evaluated)}
    if isinstance(x, Convention):
        return {"name": x.name, "label": x.label, "unit": x.unit,
                "description": x.description, "rates": dict(sorted(x.rates.items()))}
    if isinstance(x, sp.Basic):
        d: dict[str, Any] = {"str": str(x), "srepr": sp.srepr(x), "latex": latex_expr(x)}
        if isinstance(x, sp.Integer):
            d["int"] = int(x)
        return d
    if isinstance(x, Mapping):
        return {str(k): _json_expr(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_expr(v) for v in x]
    return x


def _json_tree(cost: Cost, cost_at: Cost | None, depth: int | None, level: int,
               path: str, convention: Convention) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": cost.name, "path": path, "layer": cost.layer, "spec": cost.spec,
        "count": cost.count, "input_shape": cost.input_shape, "output_shape": cost.output_shape,
        "params": Quantity(_simple(cost.params), None if cost_at is None else
                           _simple(cost_at.params)),
        "macs": Quantity(_simple(cost.macs), None if cost_at is None else _simple(cost_at.macs)),
        "flops": Quantity(_node_flops(cost), None if cost_at is None else
                          _node_flops(cost_at)),
        "work": {k: cost.work[k] for k in KINDS if k in cost.work},
        "notes": list(cost.notes),
    }
    if cost.derivation is not None:
        d = cost.derivation
        node["derivation"] = {
            "general": {k: d.general[k] for k in KINDS if k in d.general},
            "general_params": d.general_params,
            "general_flops": _simple(d.general_flops(convention)),
            "bindings": {s.name: v for s, v in sorted(d.bindings.items(),
                                                      key=lambda kv: kv[0].name)},
            "explanation": d.explanation,
        }
    if cost.children and (depth is None or level < depth):
        node["children"] = [
            _json_tree(c, None if cost_at is None else cost_at.children[i], depth, level + 1,
                       f"{path}.{c.name}" if path else c.name, convention)
            for i, c in enumerate(cost.children)]
    elif cost.children:
        node["folded"] = len(cost.children)
    return node


def _json_document(cost: Cost, convention: Convention, at: Sequence[Mapping[str, Any]],
                   depth: int | None) -> str:
    """The JSON render: the whole tree (to ``depth``), every expression as str, srepr
    and LaTeX, values when ``at`` was given."""
    at_named = {a["symbol"].name: a["value"] for a in at} if at else None
    cost_at = cost.subs(at_named) if at_named else None
    doc = {
        "symflops": "cost/1",
        "convention": convention,
        "at": at_named,
        "depth": depth,
        "tree": _json_tree(cost, cost_at, depth, 0, cost.name, convention),
    }
    return json.dumps(_json_expr(doc), indent=1, sort_keys=True, ensure_ascii=False)


def _aligned(body: Sequence[Sequence[Any]], header: Sequence[str], aligns: str) -> str:
    """A plain-text table: columns padded to their widest cell (``l``/``r`` per column)."""
    table = [list(map(str, header))] + [list(map(str, r)) for r in body]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if a == "r" else c.ljust(w)
               for c, w, a in zip(cells, widths, aligns, strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule] + [line(r) for r in table[1:]])


# ----------------------------------------------------------------------------- environment
def _builtin_loader() -> jinja2.BaseLoader:
    """Templates shipped as package ``symflops.templates`` (an installed wheel), else the
    repository's templates/ folder (a source checkout or an editable install)."""
    try:
        root = importlib.resources.files("symflops.templates")
        if root.joinpath("cost.md.j2").is_file():
            def load(name: str) -> str | None:
                f = root.joinpath(name)
                return f.read_text(encoding="utf-8") if f.is_file() else None
            return jinja2.FunctionLoader(load)
    except (ModuleNotFoundError, TypeError):
        pass
    return jinja2.FileSystemLoader(str(Path(__file__).resolve().parent.parent / "templates"))


def _filters(fmt: Format, numbers: str) -> dict[str, Callable[..., Any]]:
    def number(n: int) -> str:
        return fmt.number_wrap(format_number(int(n), numbers))

    def cell(q: Any) -> str:
        x = q.shown if isinstance(q, Quantity) else sp.sympify(q)
        if isinstance(x, sp.Integer):
            return number(int(x))
        return fmt.inline_math(fmt.math(x))

    def pct(share: float | None) -> str:
        return fmt.dash if share is None else f"{100 * share:.1f}{fmt.percent}"

    def times(count: Any) -> str:
        return "" if count == 1 else " " + fmt.times(fmt.math(count))

    def shape_math(s: Sequence[Any]) -> str:
        return "(" + ", ".join(fmt.math(x) for x in s) + ")"

    def shape(s: Sequence[Any]) -> str:
        return fmt.inline_math(shape_math(s))

    return {"math": fmt.math, "esc": fmt.text, "code": fmt.code, "cell": cell, "num": number,
            "pct": pct, "times": times, "shape": shape, "shape_math": shape_math,
            "imath": fmt.inline_math,
            "prose": fmt.prose, "latex_esc": latex_escape, "json_document": _json_document,
            "aligned": _aligned, **fmt.extra_filters}


@functools.lru_cache(maxsize=64)
def template_environment(template_dir: str | None = None, fmt: str = "markdown",
                         numbers: str = "comma") -> jinja2.Environment:
    """The jinja2 Environment for one format: StrictUndefined, no autoescape (each format
    escapes with an explicit filter), user templates in ``template_dir`` shadow the
    built-in ones."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise SymflopsError("template_dir is not a folder",
                                values={"template_dir": template_dir})
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(_builtin_loader())
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(_filters(get_format(fmt), numbers))
    return env


# ----------------------------------------------------------------------------- render
def render(cost: Cost, fmt: str = "markdown", *, depth: int | None = None,
           at: Mapping[Any, Any] | None = None, template_dir: str | Path | None = None,
           numbers: str = "comma", convention: str | Convention | None = None,
           standalone: bool = False, math_only: bool = False, derivations: bool = True,
           title: str | None = None) -> str:
    """``cost`` as ``fmt`` (``markdown``/``md``, ``latex``/``tex``, ``text``/``txt``,
    ``json`` or a registered format).

    ``depth`` folds the module tree below that level into its ancestors' rows; ``at``
    substitutes values (``{"H": 224}``) and shows the numbers; ``numbers`` is ``"comma"``
    (4,089,184,256) or ``"si"`` (4.09 G); ``convention`` re-weighs the FLOPs;
    ``standalone`` (LaTeX) wraps the output in a compilable document; ``math_only``
    gives only the totals as display math (what Jupyter shows); ``template_dir`` holds
    templates that replace the built-in ones by name.
    """
    if not isinstance(cost, Cost):
        raise SymflopsError("render takes a Cost", values={"got": type(cost).__name__},
                            fix="call layer.cost(shape) or sf.trace(...) first")
    f = get_format(fmt)
    if convention is not None:
        cost = cost.with_convention(get_convention(convention))
    ctx = build_context(cost, depth=depth, at=at, numbers=numbers, derivations=derivations,
                        standalone=standalone, math_only=math_only, title=title)
    return _render_with(f, ctx, numbers, template_dir)


def _render_with(f: Format, ctx: Mapping[str, Any], numbers: str,
                 template_dir: str | Path | None, template: str | None = None) -> str:
    name = template or f.template
    try:
        env = template_environment(None if template_dir is None else str(template_dir),
                                   f.name, numbers)
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateNotFound as e:
        raise SymflopsError("template not found", values={"template": str(e)},
                            fix="put it in template_dir or use a built-in format") from None
    except jinja2.UndefinedError as e:
        raise SymflopsError(f"template uses an undefined variable: {e.message}",
                            values={"template": name}) from None
    except jinja2.TemplateSyntaxError as e:
        raise SymflopsError(f"template syntax error: {e.message}",
                            values={"template": e.name or name, "line": e.lineno}) from None


def _md_inline(s: str) -> str:
    return f"${s}$"


def _tex_inline(s: str) -> str:
    return f"${s}$"


register_format(Format(
    "markdown", "cost.md.j2", math=_latex_math, text=markdown_escape, prose=markdown_escape,
    code=markdown_code, inline_math=_md_inline, aliases=("md",), percent=" %",
    times=lambda s: rf"$\times {s}$", dash="–", templates={"reference": "reference.md.j2"}))
register_format(Format(
    "latex", "cost.tex.j2", math=_latex_math, text=latex_escape, prose=latex_escape,
    code=lambda s: r"\texttt{" + latex_escape(s) + "}", inline_math=_tex_inline,
    aliases=("tex",), percent=r"\,\%", times=lambda s: rf"$\times {s}$", dash="--",
    templates={"reference": "reference.tex.j2"}))
register_format(Format(
    "text", "cost.txt.j2", math=_text_math, text=str, code=str, aliases=("txt",),
    percent=" %", dash="-"))
register_format(Format(
    "json", "cost.json.j2", math=_text_math, text=str, code=str))

