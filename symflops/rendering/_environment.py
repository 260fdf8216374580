"""The jinja2 environment of a format: template loading and the filters templates use."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import sympy as sp

from symflops import notation, simplification
from symflops.errors import SymflopsError
from symflops.notation import format_number, latex_escape, text_table
from symflops.rendering._context import Quantity
from symflops.rendering._equation import display_lines, equation_lines, visible_width
from symflops.rendering._formats import REGISTRY_LISTENERS, Format, get_format
from symflops.rendering._json import json_document


def ruled_table(body: Sequence[Sequence[Any]], header: Sequence[str], aligns: str) -> str:
    """The text template's table: a header, a dashed rule, columns padded."""
    return text_table(body, header, aligns, rule=True)


# ----------------------------------------------------------------------------- environment
def builtin_loader() -> jinja2.BaseLoader:
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
    return jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[2] / "templates"))


def _filters(fmt: Format, numbers: str) -> dict[str, Callable[..., Any]]:
    if fmt.math_options:
        math: Callable[[Any], str] = functools.partial(fmt.math, numbers=numbers)
        cell_math: Callable[[Any], str] = functools.partial(fmt.math, numbers=numbers,
                                                            inline=True)
    else:
        math = cell_math = fmt.math

    def number(n: int) -> str:
        return fmt.number_wrap(format_number(int(n), numbers))

    def cell(q: Any) -> str:
        x = q.shown if isinstance(q, Quantity) else sp.sympify(q)
        if isinstance(x, sp.Integer):
            return number(int(x))
        return fmt.inline_math(cell_math(x))

    def exact(q: Any) -> str:
        """A quantity exactly (digits grouped whatever ``numbers`` is), else its formula."""
        x = q.shown if isinstance(q, Quantity) else sp.sympify(q)
        if isinstance(x, sp.Integer):
            return fmt.number_wrap(format_number(int(x), "grouped"))
        return fmt.inline_math(cell_math(x))

    def packed(terms: Sequence[tuple[Any, Any]], width: int = 20) -> list[str]:
        return equation_lines(terms, cell_math, width)

    def width(q: Any) -> int:
        """About how many characters a quantity's cell prints."""
        x = q.shown if isinstance(q, Quantity) else sp.sympify(q)
        return len(format_number(int(x), numbers)) if isinstance(x, sp.Integer) else \
            visible_width(cell_math(x))

    def pct(share: float | None) -> str:
        return fmt.dash if share is None else f"{100 * share:.1f}{fmt.percent}"

    def times(count: Any) -> str:
        return "" if count == 1 else " " + fmt.times(math(count))

    def run(n: int) -> str:
        return "" if n == 1 else fmt.run(n)

    def shape_math(s: Sequence[Any]) -> str:
        return "(" + ", ".join(math(x) for x in s) + ")"

    def shape(s: Sequence[Any]) -> str:
        """A shape in inline math; a dash for none (parameters a module owns directly)."""
        return fmt.inline_math("(" + ", ".join(cell_math(x) for x in s) + ")") if s \
            else fmt.dash

    return {"math": math, "cell_math": cell_math, "esc": fmt.text, "code": fmt.code,
            "cell": cell, "num": number, "exact": exact,
            "packed": packed, "display": display_lines, "width": width,
            "pct": pct, "times": times, "run": run, "shape": shape, "shape_math": shape_math,
            "imath": fmt.inline_math,
            "prose": fmt.prose, "latex_esc": latex_escape, "json_document": json_document,
            "ruled_table": ruled_table, **fmt.extra_filters}


@functools.lru_cache(maxsize=64)
def template_environment(template_dir: str | None = None, fmt: str = "markdown",
                         numbers: str = "grouped") -> jinja2.Environment:
    """The jinja2 Environment for one format: StrictUndefined, no autoescape (each format
    escapes with an explicit filter), user templates in ``template_dir`` shadow the
    built-in ones."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise SymflopsError("template_dir is not a folder",
                                values={"template_dir": template_dir})
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(builtin_loader())
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(_filters(get_format(fmt), numbers))
    return env


REGISTRY_LISTENERS.append(template_environment.cache_clear)


def clear_caches() -> None:
    """Forget everything rendering memoises (display forms, LaTeX, template environments),
    so the next render is a first one (benchmarks time it)."""
    simplification.clear_cache()
    notation.clear_cache()
    template_environment.cache_clear()



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

