"""Output formats: a registry of :class:`Format` (a template and its filters) and the
built-in Markdown, LaTeX, text and JSON formats."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.domain import Clause
from symflops.errors import SymflopsError
from symflops.notation import (
    latex_escape,
    latex_expr,
    markdown_code,
    markdown_escape,
    shown_form,
    substitution_names,
    text_expr,
)
from symflops.rendering._context import Substitution


# ----------------------------------------------------------------------------- formats
def _identity(s: str) -> str:
    return s


def _x_times(s: str) -> str:
    return "x " + s


def _x_run(n: int) -> str:
    return f" (x{n})"


@dataclass(frozen=True)
class Format:
    """An output format: a template and the filters that print the context.

    ``math`` prints an expression (or a :class:`Substitution`), ``text`` escapes a user
    string, ``number`` formats an int in this format's style.
    """

    name: str
    template: str
    math: Callable[..., str]
    text: Callable[[Any], str]
    code: Callable[[Any], str]
    prose: Callable[[Any], str] = str
    inline_math: Callable[[str], str] = _identity
    aliases: tuple[str, ...] = ()
    percent: str = "%"
    times: Callable[[str], str] = _x_times
    #: after a folded row's name: how many identical siblings it stands for
    run: Callable[[int], str] = _x_run
    dash: str = "-"
    number_wrap: Callable[[str], str] = _identity
    #: ``math`` takes the keywords ``numbers`` (a number style) and ``inline`` (a table
    #: cell) as :func:`latex_math` does
    math_options: bool = False
    extra_filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    #: other documents this format can write, by name (``"reference"``: the formula page)
    templates: Mapping[str, str] = field(default_factory=dict)


_FORMATS: dict[str, Format] = {}
_ALIASES: dict[str, str] = {}
#: called when the registry changes (the template environments cached per format forget it)
REGISTRY_LISTENERS: list[Callable[[], None]] = []


def _changed() -> None:
    for listener in REGISTRY_LISTENERS:
        listener()


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
    _changed()
    return fmt


def unregister_format(name: str) -> None:
    """Remove a user format (the built-in ones stay)."""
    if name in ("markdown", "latex", "text", "json", "summary"):
        raise SymflopsError("built-in formats cannot be removed", values={"format": name})
    fmt = _FORMATS.pop(name, None)
    if fmt is not None:
        for alias in (fmt.name, *fmt.aliases):
            _ALIASES.pop(alias, None)
        _changed()


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


def latex_math(x: Any, numbers: str = "grouped", inline: bool = False) -> str:
    """LaTeX of an expression (or a :class:`Substitution`): integers digit-grouped unless
    ``numbers`` is ``"plain"`` (a formula stays exact under ``"si"``); ``inline`` for a
    table cell (``a / b`` or ``\\tfrac``, never a full-size ``\\frac``)."""
    grouped = numbers != "plain"
    if isinstance(x, Clause):  # a clause of the domain
        if x.condition is None:
            return x.latex
        x = x.condition
    if isinstance(x, Substitution):
        bindings = {k: shown_form(v) for k, v in x.bindings.items()}
        return latex_expr(shown_form(x.expr),
                          substitution_names(bindings, "latex", grouped=grouped),
                          grouped=grouped, inline=inline)
    return latex_expr(shown_form(sp.sympify(x)), grouped=grouped, inline=inline)


def tex_math(x: Any, numbers: str = "grouped", inline: bool = False) -> str:
    """:func:`latex_math` for LaTeX documents: in a table cell a product may also break
    before a ceiling factor (``864 B \\lceil H/2 \\rceil \\allowbreak\\lceil W/2 \\rceil``),
    as the templates let it break before a parenthesis or a floor."""
    text = latex_math(x, numbers=numbers, inline=inline)
    return text.replace(r" \lceil", r" \allowbreak\lceil") if inline else text


def text_math(x: Any) -> str:
    """Plain text of an expression, a :class:`Substitution` or a domain's clause."""
    if isinstance(x, Clause):
        if x.condition is None:
            return x.text
        x = x.condition
    if isinstance(x, Substitution):
        bindings = {k: shown_form(v) for k, v in x.bindings.items()}
        return text_expr(shown_form(x.expr), substitution_names(bindings, "text"))
    return text_expr(shown_form(sp.sympify(x)))



def _md_inline(s: str) -> str:
    return f"${s}$"


def _tex_inline(s: str) -> str:
    return f"${s}$"


register_format(Format(
    "markdown", "cost.md.j2", math=latex_math, math_options=True, text=markdown_escape,
    prose=markdown_escape,
    code=markdown_code, inline_math=_md_inline, aliases=("md",), percent=" %",
    times=lambda s: rf"$\times {s}$", run=lambda n: f" (×{n})", dash="–",
    templates={"reference": "reference.md.j2"}))
register_format(Format(
    "latex", "cost.tex.j2", math=tex_math, math_options=True, text=latex_escape,
    prose=latex_escape,
    code=lambda s: r"\texttt{" + latex_escape(s) + "}", inline_math=_tex_inline,
    aliases=("tex",), percent=r"\,\%", times=lambda s: rf"$\times {s}$",
    run=lambda n: rf" ($\times {n}$)", dash="--",
    templates={"reference": "reference.tex.j2"}))
register_format(Format(
    "text", "cost.txt.j2", math=text_math, text=str, code=str, aliases=("txt",),
    percent=" %", dash="-"))
register_format(Format(
    "json", "cost.json.j2", math=text_math, text=str, code=str))

