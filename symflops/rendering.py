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

from symflops import display, printing
from symflops.conventions import KINDS, Convention, get_convention
from symflops.cost import Cost, weighted_work
from symflops.display import shown, tidy
from symflops.errors import SymflopsError
from symflops.printing import (
    format_number,
    latex_escape,
    latex_expr,
    markdown_code,
    markdown_escape,
    substitution_names,
    text_expr,
    text_table,
)

__all__ = ["render", "register_format", "unregister_format", "get_format", "formats", "Format",
           "build_context", "Quantity", "Substitution", "template_environment",
           "render_template", "clear_caches"]

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


def _rows(cost: Cost, cost_at: Cost | None, depth: int | None) -> list[dict[str, Any]]:
    """One row per module down to ``depth``; values from ``cost_at`` (the tree with ``at``
    substituted once, walked beside ``cost``)."""
    root = cost_at if cost_at is not None else cost
    total_flops = _shown_quantity(root, "flops")
    shares = _Shares(root)
    rows: list[dict[str, Any]] = []

    def visit(node: Cost, node_at: Cost | None, path: str, level: int, mult: sp.Expr,
              mult_at: sp.Expr) -> None:
        mult = _mul(mult, node.count)
        mult_at = mult if node_at is None else _mul(mult_at, node_at.count)
        folded = bool(node.children) and depth is not None and level >= depth
        flops = _shown_quantity(node, "flops")
        flops_at = None if node_at is None else _shown_quantity(node_at, "flops")
        contribution = _mul(mult_at, flops if flops_at is None else flops_at)
        rows.append({
            "path": path, "name": node.name, "level": level, "layer": node.layer,
            "spec": node.spec, "count": node.count, "multiplier": mult, "folded": folded,
            "leaf": not node.children,
            "output_shape": node.output_shape if node_at is None else
            tuple(shown(x) for x in node_at.output_shape),
            "params": _quantity(node, node_at, "params"),
            "macs": _quantity(node, node_at, "macs"),
            "flops": Quantity(flops, flops_at),
            "share": shares.share(node_at or node, mult_at, contribution, total_flops),
        })
        if not folded:
            for i, child in enumerate(node.children):
                visit(child, None if node_at is None else node_at.children[i],
                      f"{path}.{child.name}" if path else child.name, level + 1, mult, mult_at)

    one = sp.Integer(1)
    if not cost.children:
        visit(cost, cost_at, cost.name, 0, one, one)
    else:
        for i, child in enumerate(cost.children):
            visit(child, None if cost_at is None else cost_at.children[i], child.name, 1, one,
                  one)
    return rows


def _quantity(node: Cost, node_at: Cost | None, name: str) -> Quantity:
    """``node``'s quantity as shown, with its value from ``node_at`` (``at`` substituted)."""
    return Quantity(_shown_quantity(node, name),
                    None if node_at is None else _shown_quantity(node_at, name))


def _shown_quantity(node: Cost, name: str) -> sp.Expr:
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
        quantity = _quantity(node, node_at, key)
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
                  at: Mapping[Any, Any] | str | None = None, numbers: str = "comma",
                  derivations: bool = True, standalone: bool = False,
                  math_only: bool = False, title: str | None = None,
                  inputs: str | None = None) -> dict[str, Any]:
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
    at_map: dict[sp.Symbol, sp.Expr] = {}
    if isinstance(at, str):  # "B=1,H=224": parsed by symflops.parse, never evaluated
        from symflops.parse import parse_assignments

        names = {s.name: s for s in cost.free_symbols}
        at = parse_assignments(at, names=names, values_names=names)
    if at is not None:  # the one substitution: every value shown comes from cost_at
        at_map = cost.substitution(at)
        cost_at = cost.subs(at_map)
    rows = _rows(cost, cost_at, depth)
    derivs: list[dict[str, Any]] = []
    if derivations:
        shown_paths = {r["path"] for r in rows}
        stack: list[tuple[Cost, Cost | None, str, sp.Expr]] = [
            (cost, cost_at, cost.name if not cost.children else "", sp.Integer(1))]
        while stack:
            node, node_at, path, mult = stack.pop()
            mult = _mul(mult, node.count)
            if not node.children:
                if path in shown_paths or not cost.children:
                    item = _derivation(path, node, node_at, mult, convention)
                    if item is not None:
                        derivs.append(item)
                continue
            for i in reversed(range(len(node.children))):
                child = node.children[i]
                stack.append((child, None if node_at is None else node_at.children[i],
                              f"{path}.{child.name}" if path else child.name, mult))
    total = {
        "params": _quantity(cost, cost_at, "params"),
        "macs": _quantity(cost, cost_at, "macs"),
        "flops": _quantity(cost, cost_at, "flops"),
        "output_shape": cost.output_shape if cost_at is None else
        tuple(shown(x) for x in cost_at.output_shape),
        "input_shape": cost.input_shape,
    }
    counted = [{"kind": k, "rate": convention.rate(k), "meaning": KINDS[k]} for k in KINDS]
    repeated = [r for r in rows if r["count"] != 1]
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
    if name in ("markdown", "latex", "text", "json", "summary"):
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
        "params": _quantity(cost, cost_at, "params"),
        "macs": _quantity(cost, cost_at, "macs"),
        "flops": _quantity(cost, cost_at, "flops"),
        "work": {k: cost.work[k] for k in KINDS if k in cost.work},
        "notes": list(cost.notes),
    }
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
            _json_tree(c, None if cost_at is None else cost_at.children[i], depth, level + 1,
                       f"{path}.{c.name}" if path else c.name, convention)
            for i, c in enumerate(cost.children)]
    elif cost.children:
        node["folded"] = len(cost.children)
    return node


def _json_document(cost: Cost, cost_at: Cost | None, convention: Convention,
                   at: Sequence[Mapping[str, Any]], depth: int | None) -> str:
    """The JSON render: the whole tree (to ``depth``), every expression as str, srepr
    and LaTeX, values (from ``cost_at``) when ``at`` was given."""
    at_named = {a["symbol"].name: a["value"] for a in at} if at else None
    if at_named is None:  # no values asked for (or nothing to substitute): none shown
        cost_at = None
    doc = {
        "symflops": "cost/1",
        "convention": convention,
        "at": at_named,
        "depth": depth,
        "tree": _json_tree(cost, cost_at, depth, 0, cost.name, convention),
    }
    return json.dumps(_json_expr(doc), indent=1, sort_keys=True, ensure_ascii=False)


def _ruled_table(body: Sequence[Sequence[Any]], header: Sequence[str], aligns: str) -> str:
    """The text template's table: a header, a dashed rule, columns padded."""
    return text_table(body, header, aligns, rule=True)


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
            "ruled_table": _ruled_table, **fmt.extra_filters}


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


def clear_caches() -> None:
    """Forget everything rendering memoises (display forms, LaTeX, template environments),
    so the next render is a first one (benchmarks time it)."""
    display.clear_cache()
    printing.clear_cache()
    template_environment.cache_clear()


# ----------------------------------------------------------------------------- render
def render(cost: Cost, fmt: str = "markdown", *, depth: int | None = None,
           at: Mapping[Any, Any] | str | None = None, template_dir: str | Path | None = None,
           numbers: str = "comma", convention: str | Convention | None = None,
           standalone: bool = False, math_only: bool = False, derivations: bool = True,
           title: str | None = None, inputs: str | None = None) -> str:
    """``cost`` as ``fmt`` (``markdown``/``md``, ``latex``/``tex``, ``text``/``txt``,
    ``json``, ``summary`` (the command line's default) or a registered format).

    ``depth`` folds the module tree below that level into its ancestors' rows; ``at``
    substitutes values (``{"H": 224}`` or ``"H=224"``) and shows the numbers;
    ``numbers`` is ``"comma"`` (4,089,184,256) or ``"si"`` (4.09 G); ``convention``
    re-weighs the FLOPs; ``standalone`` (LaTeX) wraps the output in a compilable
    document; ``math_only`` gives only the totals as display math (what Jupyter shows);
    ``template_dir`` holds
    templates that replace the built-in ones by name; ``title`` and ``inputs`` (how the
    inputs were given, e.g. a traced model's ``"B 3 H W"``) head the summary.
    """
    if not isinstance(cost, Cost):
        raise SymflopsError("render takes a Cost", values={"got": type(cost).__name__},
                            fix="call layer.cost(shape) or sf.trace(...) first")
    f = get_format(fmt)
    if convention is not None:
        cost = cost.with_convention(get_convention(convention))
    ctx = build_context(cost, depth=depth, at=at, numbers=numbers, derivations=derivations,
                        standalone=standalone, math_only=math_only, title=title, inputs=inputs)
    return render_template(f, ctx, numbers, template_dir)


def render_template(f: Format, ctx: Mapping[str, Any], numbers: str,
                    template_dir: str | Path | None, template: str | None = None) -> str:
    """``template`` (``f``'s own by default) of format ``f`` rendered with ``ctx``: how
    :func:`render` and the formula reference (:mod:`symflops.reference`) fill templates."""
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


# ----------------------------------------------------------------------------- summary
def _count_text(expr: sp.Expr) -> str:
    """An exact count with separators and its SI form (``1,754,240 (1.75 M)``), or an
    expression as plain text."""
    if not expr.is_Integer:
        return str(expr)
    n = int(expr)
    si, plain = format_number(n, "si"), format_number(n, "comma")
    return plain if si == str(n) else f"{plain} ({si})"


def _summary_math(x: Any) -> str:
    return str(tidy(sp.sympify(x)))


def _summary_row(total: Sequence[str], cost: Cost) -> list[str]:
    """``["MACs", "macs"]`` -> ``["MACs", "864,576 (865 k)"]``: one line of the totals."""
    name, quantity = total
    return [name, _count_text(tidy(cost.quantity(quantity)))]


def _parts_table(cost: Cost, depth: int) -> str:
    """The parts of ``cost`` down to ``depth``, largest first (:func:`analysis.breakdown`
    of the tree ``at`` was already substituted in); long expressions overflow their
    column instead of widening it."""
    from symflops.analysis import breakdown

    rows = [[s.path or "(total)", s.layer, _count_text(s.value),
             "" if s.share is None else f"{100 * s.share:5.1f}%"]
            for s in breakdown(cost, depth=depth)]
    return text_table(rows, ["path", "layer", cost.convention.label, "share"], "llrl",
                      widths=(32, 20, 24, 0), gaps=(" ", " ", "  "))


def _plain_shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


register_format(Format(
    "summary", "cost.summary.j2", math=_summary_math, text=str, code=str,
    extra_filters={"summary_row": _summary_row, "parts_table": _parts_table,
                   "plain_shape": _plain_shape, "table": text_table}))

