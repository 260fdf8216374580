"""Render a Cost as Markdown, LaTeX, plain text or JSON through jinja2 templates.

Formats live in a registry (:func:`register_format`): a new format is a template in
``templates/`` and one registration line; so do styles (:func:`register_style`): the
``report`` (default), a ``paper`` (one display equation and a table that fits a column of
a two-column paper) and an ``appendix`` (the derivations). Identical consecutive modules
fold into one row (``layers.0-11 (x12)``); big integers are digit-grouped. Every output
names its convention.

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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sympy as sp

from symflops.conventions import Convention, get_convention
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.notation import presenting, shown_form
from symflops.rendering import _summary  # noqa: F401  (registers the summary format)
from symflops.rendering._context import Quantity, Substitution, build_context, stated_size
from symflops.rendering._environment import render_template
from symflops.rendering._formats import (
    Format,
    formats,
    get_format,
    register_format,
    unregister_format,
)
from symflops.rendering._styles import (
    Style,
    collected_terms,
    get_style,
    register_style,
    styles,
    symbols_named,
    unregister_style,
)

__all__ = ["render", "register_format", "unregister_format", "get_format", "formats", "Format",
           "build_context", "Quantity", "Substitution", "render_template", "Style",
           "register_style", "get_style", "styles", "unregister_style"]


# ----------------------------------------------------------------------------- render
#: the most rows a table in one column of a two-column page holds (a taller float does not
#: fit the page: LaTeX's "Float too large")
COLUMN_ROWS = 28


def _fit_column(ctx: dict[str, Any], context: Callable[[int | None, Any], dict[str, Any]],
                depth: int | None, at: Any, depth_free: bool, cost: Cost) -> dict[str, Any]:
    """A column table that fits: one level less when the style's depth gives more rows than
    :data:`COLUMN_ROWS` (``depth`` not given); values at a stated size
    (:func:`~symflops.rendering._context.stated_size`) when the rows' FLOPs are formulas
    with roundings (a CNN's strided sizes) that no per-monomial columns can hold, the
    general formulas staying in the equation above."""
    if depth_free and depth is not None and depth > 1 and \
            len(ctx["table_rows"]) > COLUMN_ROWS:
        depth = depth - 1
        ctx = context(depth, at)
    total = ctx["total"]["flops"].shown
    if at is None and ctx.get("flops_terms") is None and not ctx["narrow"]["flops"] \
            and total.has(sp.floor, sp.ceiling):
        point = stated_size(cost)
        if point is not None:
            ctx = context(depth, point)
            ctx["substituted"] = True
    return ctx


def render(cost: Cost, fmt: str = "markdown", *, style: str = "report",
           depth: int | None = None, at: Mapping[Any, Any] | str | None = None,
           template_dir: str | Path | None = None, numbers: str = "grouped",
           convention: str | Convention | None = None, standalone: bool = False,
           math_only: bool = False, derivations: bool | None = None,
           title: str | None = None, inputs: str | None = None, fold: bool = True,
           symbols: Sequence[Any] | None = None, exact: bool = False) -> str:
    """``cost`` as ``fmt`` (``markdown``/``md``, ``latex``/``tex``, ``text``/``txt``,
    ``json``, ``summary`` (the command line's default) or a registered format).

    ``style`` is ``"report"`` (every module and its derivation), ``"paper"`` (one display
    equation with the total, collected in ``symbols`` (names like ``["L", "N"]``), and a
    table that fits a two-column paper's column; depth 2 unless given) or ``"appendix"``
    (the total and each layer's derivation); see :func:`register_style`.
    ``depth`` folds the module tree below that level into its ancestors' rows; ``fold``
    shows a run of identical consecutive siblings as one row (``layers.0-11 (x12)``,
    numbers for one of them; ``fold=False`` gives a row each); ``at``
    substitutes values (``{"H": 224}`` or ``"H=224"``) and shows the numbers;
    ``numbers`` is ``"grouped"`` (4,089,184,256; ``4{,}089{,}184{,}256`` in LaTeX math),
    ``"plain"`` (4089184256) or ``"si"`` (4.09 G, a rounded display: formulas and the
    totals' equations stay exact); ``convention`` re-weighs the FLOPs; ``standalone``
    (LaTeX) wraps the output in a compilable document; ``math_only`` gives only the
    totals as display math (what Jupyter shows); ``derivations`` (the style's choice by
    default) adds each layer's derivation; ``template_dir`` holds
    templates that replace the built-in ones by name; ``title`` and ``inputs`` (how the
    inputs were given, e.g. a traced model's ``"B 3 H W"``) head the summary.

    Formulas print as papers write them, equal on the Cost's domain
    (:func:`symflops.notation.presented`): a strided size ``floor(H/2 - 1/2) + 1`` as
    ``ceiling(H/2)``, and as ``H/2`` when the domain puts ``H`` on multiples of 2;
    ``exact=True`` prints every expression exactly as the Cost holds it (JSON always
    does). The paper table gives FLOPs one column per monomial when every row is an
    integer combination of at most three (``per B ceiling(H/2) ceiling(W/2)``, ``per B``:
    :func:`symflops.rendering._styles.term_columns`); a share that depends on the sizes is
    the share at a stated size (``B = 1, H = W = 224``, ...; ``share_at`` in the context,
    named by every format). The formulas' conditions print as the domain's clauses (``H``
    a multiple of 32, ``64 <= H <= 8192`` verified up to 8192, ``B = 2`` pinned).

    >>> from symflops.symbols import B, H, W
    >>> import symflops as sf
    >>> stem = sf.nn.Conv2d(3, 8, 3, stride=2, padding=1).cost((B, 3, H, W))
    >>> print(render(stem, "text").splitlines()[6][:50])
    (root)  Conv2d  (B, 8, ceiling(H/2), ceiling(W/2))
    >>> "floor(H/2 - 1/2) + 1" in render(stem, "text"), "ceiling" in render(stem, "text",
    ...                                                                exact=True)
    (False, False)
    """
    if not isinstance(exact, bool):
        raise SymflopsError("exact must be True or False", values={"exact": exact},
                            fix="pass exact=True for the exact forms, False for the "
                                "presented ones")
    if not isinstance(cost, Cost):
        raise SymflopsError("render takes a Cost", values={"got": type(cost).__name__},
                            fix="call layer.cost(shape) or sf.trace(...) first")
    f = get_format(fmt)
    s = get_style(style)
    template = s.template_for(f.name)
    if convention is not None:
        cost = cost.with_convention(get_convention(convention))
    named = symbols_named(cost, symbols)
    # JSON is data: its expressions stay exactly the Cost's
    lattices = None if exact or f.name == "json" else cost.domain.lattices()
    def context(depth: int | None, at: Mapping[Any, Any] | str | None) -> dict[str, Any]:
        ctx = build_context(cost, depth=depth, at=at, numbers=numbers,
                            derivations=s.derivations if derivations is None else derivations,
                            standalone=standalone, math_only=math_only, title=title,
                            inputs=inputs, fold=fold)
        ctx["style"] = s.name
        ctx["substituted"] = False
        if template is not None:  # a paper or appendix: the totals as collected terms
            ctx["equation"] = [
                {"name": name, "terms": collected_terms(shown_form(q.expr), named),
                 "value": None if q.value is None or q.value == q.expr else
                 collected_terms(shown_form(q.value), named)}
                for name, q in ctx["exact_totals"]]
            if s.extend is not None:
                s.extend(ctx)
        return ctx

    with presenting(lattices):
        shown_depth = s.depth if depth is None else depth
        ctx = context(shown_depth, at)
        if s.column_table and not math_only:
            ctx = _fit_column(ctx, context, shown_depth, at, depth is None, cost)
        return render_template(f, ctx, numbers, template_dir, template=template)
