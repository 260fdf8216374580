"""Printing for renders and the CLI: user strings escaped for LaTeX and Markdown,
expressions as LaTeX or text, numbers with separators or SI prefixes, plain-text tables.

Expressions print with the canonical symbols' LaTeX names (``C_{\\mathrm{in}}``, not
``C_in``); floors print as ``\\left\\lfloor ... \\right\\rfloor``. A *substitution*
(a general formula with each symbol shown as this layer's value, unevaluated) prints
by renaming symbols, so the factors stay in the general formula's order.

>>> from symflops.symbols import C_in, K
>>> latex_expr(2 * C_in * K**2)
'2 C_{\\\\mathrm{in}} K^{2}'
>>> latex_escape("layer1.0.conv_1 & 50%")
'layer1.0.conv\\\\_1 \\\\& 50\\\\%'
>>> text_expr(2 * C_in * K**2, {C_in: "3"})
'2*3*K**2'
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from symflops.symbols import latex_name

__all__ = ["latex_escape", "latex_expr", "text_expr", "markdown_escape", "markdown_code",
           "format_number", "substitution_names", "text_table", "clear_cache", "NUMBER_STYLES",
           "group_digits", "as_ceilings", "on_lattice", "presented",
           "presenting", "shown_form"]

#: LaTeX text-mode replacements for characters with a special meaning (or a wrong glyph).
_LATEX_SPECIAL: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_TABLE = str.maketrans(_LATEX_SPECIAL)


def latex_escape(text: object) -> str:
    """``text`` safe to place in LaTeX text mode and compilable by pdflatex with the
    standalone preamble (T1 fonts): every special character escaped, a line break shown as
    ``\\n``, and a character beyond Latin-1 (CJK, emoji, control characters) written as
    its code point, ``[U+4E2D]``, a visible ASCII marker.

    >>> latex_escape("层1\\n😀")
    '[U+5C42]1\\\\textbackslash{}n[U+1F600]'
    """
    return "".join(_latex_char(ch) for ch in _one_line(str(text)).translate(_LATEX_TABLE))


def _latex_char(ch: str) -> str:
    code = ord(ch)
    if 32 <= code < 127 or 0xA0 <= code <= 0xFF or ch == "\t":
        return ch
    return f"[U+{code:04X}]"


def _one_line(text: str) -> str:
    """Line breaks (``\\r\\n``, ``\\r``, ``\\n``) shown as the two characters ``\\n``: a
    name stays on its table row."""
    return text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def markdown_escape(text: object) -> str:
    """``text`` safe in Markdown prose and table cells: pipes and inline punctuation
    (emphasis, code, links, math, HTML) escaped, a line break shown as ``\\n``."""
    out = []
    for ch in _one_line(str(text)):
        if ch in "\\`*_[]<>|$~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span that is safe in a table cell.

    A pipe is escaped (GitHub splits cells on it even inside code); backticks in the
    text get a longer fence; a line break is shown as ``\\n`` (it would end the row).

    >>> markdown_code("a|b\\nc")
    '`a\\\\|b\\\\nc`'
    """
    s = _one_line(str(text)).replace("|", "\\|")
    fence = "`"
    while fence in s:
        fence += "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _names(expr: sp.Basic) -> dict[sp.Basic, str]:
    return {s: latex_name(s) for s in expr.free_symbols if isinstance(s, sp.Symbol)}


class _LatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with integers digit-grouped (``17{,}563{,}828{,}224 B``) when
    ``grouped``."""

    def __init__(self, settings: Mapping[str, object], grouped: bool) -> None:
        super().__init__(dict(settings))
        self._grouped = grouped

    def _print_Integer(self, expr: sp.Integer) -> str:
        return group_digits(int(expr), "{,}") if self._grouped else str(int(expr))


def group_digits(value: int, separator: str = ",") -> str:
    """``value`` with its digits in groups of three: ``907,889,152`` (``907{,}889{,}152``
    with the LaTeX math separator ``{,}``, which keeps the comma from adding space).

    >>> group_digits(-907889152), group_digits(1000, "{,}"), group_digits(999)
    ('-907,889,152', '1{,}000', '999')
    """
    return f"{value:,}".replace(",", separator)


def _ceiling_minus_one(f: sp.floor) -> sp.Expr | None:
    """``floor((x - 1)/d)`` (``x`` an integer polynomial in integer symbols, ``d >= 2``) as
    ``ceiling(x/d) - 1``, its equal at every integer point; None for another floor."""
    inner = f.args[0]
    d = sp.denom(sp.together(inner))
    if not (d.is_Integer and d >= 2):
        return None
    x = sp.expand(inner * d + 1)
    if not x.free_symbols or not all(c.is_Integer for c in x.as_coefficients_dict().values()) \
            or not all(s.is_integer for s in x.free_symbols):
        return None
    return sp.ceiling(x / d) - 1


def _ops(expr: sp.Basic) -> int:
    return int(sp.count_ops(expr))


def as_ceilings(expr: sp.Basic) -> sp.Basic:
    r"""``expr`` with ``floor((x - 1)/d)`` written ``ceiling(x/d) - 1`` wherever that makes
    it shorter: ``floor(H/2 - 1/2) + 1`` is ``ceiling(H/2)`` (equal for an integer ``x``, an
    integer polynomial in size symbols), how papers write a strided layer's output size
    (``\lceil H/2 \rceil``), and a total expanded over such floors collects into a
    polynomial in the ceilings. A bare ``floor(H/2)`` stays (its ceiling form is longer).
    A presentation form only (the Cost keeps the exact one): renders show it
    (:func:`presented`).

    >>> from symflops.symbols import H, W
    >>> half, quarter = sp.Rational(1, 2), sp.Rational(3, 4)
    >>> as_ceilings((sp.floor(H/2 - half) + 1) * (sp.floor(W/4 - quarter) + 1))
    ceiling(H/2)*ceiling(W/4 - 1/2)
    >>> h, w = sp.floor(H/2 - half), sp.floor(W/2 - half)
    >>> as_ceilings(3*h*w + 3*h + 3*w + 5), as_ceilings(sp.floor(H/2))
    (3*ceiling(H/2)*ceiling(W/2) + 2, floor(H/2))
    """
    if isinstance(expr, sp.Rel):
        return expr.func(as_ceilings(expr.lhs), as_ceilings(expr.rhs))
    if isinstance(expr, sp.Piecewise):  # each code path's formula its own shortest form
        return sp.Piecewise(*((as_ceilings(e), c) for e, c in expr.args), evaluate=False)
    if not isinstance(expr, sp.Expr) or not expr.has(sp.floor):
        return expr
    swaps = {f: c for f, c in ((f, _ceiling_minus_one(f)) for f in expr.atoms(sp.floor))
             if c is not None}
    if not swaps:
        return expr
    swapped = expr.xreplace(swaps)  # a product of floor(...) + 1 factors: ceilings already
    candidates = [expr, swapped]
    if any(isinstance(a, sp.Add) for a in sp.preorder_traversal(swapped)):
        # a sum expanded over the floors: expanded again, it collects in the ceilings
        # (each rounding held opaque: factor_terms would rewrite its argument)
        opaque = {r: sp.Dummy() for r in swapped.atoms(sp.floor, sp.ceiling)}
        back = {d: r for r, d in opaque.items()}
        candidates.append(sp.factor_terms(sp.expand(swapped.xreplace(opaque))).xreplace(back))
    return min(candidates, key=_ops)  # the shortest (the exact form on a tie)


#: lattices a presentation may use: symbol -> (step, offset), the symbol's values being
#: ``offset + step * k``
Lattices = Mapping[sp.Symbol, tuple[int, int]]


def on_lattice(expr: sp.Basic, lattices: Lattices) -> sp.Basic:
    r"""``expr`` with each ``floor(x/d)`` and ``ceiling(x/d)`` whose ``x`` (an integer
    polynomial) has one residue ``r`` modulo ``d`` at every point of ``lattices`` written
    without rounding: ``(x - r)/d`` and ``(x + (d - r) % d)/d``. Equal at every point of
    the lattices (and only there); a presentation form, as :func:`as_ceilings`.

    >>> from symflops.symbols import H, W
    >>> half = sp.Rational(1, 2)
    >>> on_lattice(sp.ceiling(H/2) * sp.ceiling(W/4 - half), {H: (2, 0), W: (4, 0)})
    H*W/8
    >>> on_lattice(sp.ceiling(H/2), {H: (2, 1)}), on_lattice(sp.ceiling(H/4), {H: (2, 0)})
    (H/2 + 1/2, ceiling(H/4))
    """
    if not lattices or not expr.has(sp.floor, sp.ceiling):
        return expr
    ks = {s: sp.Dummy(f"k_{s.name}", integer=True) for s in lattices}
    on = {s: step * ks[s] + offset for s, (step, offset) in lattices.items()}

    def residue(x: sp.Expr, d: int) -> int | None:
        coeffs = sp.expand(x.xreplace(on)).as_coefficients_dict()
        if not all(c.is_Integer for c in coeffs.values()):
            return None
        if not all(m == 1 or int(c) % d == 0 for m, c in coeffs.items()):
            return None
        return int(coeffs.get(sp.Integer(1), 0)) % d

    def rewrite(e: sp.Expr) -> sp.Expr:
        inner = e.args[0]
        d = sp.denom(sp.together(inner))
        if not (d.is_Integer and d >= 2):
            return e
        x = sp.expand(inner * d)
        if not x.free_symbols & set(lattices) or not all(s.is_integer for s in x.free_symbols):
            return e
        r = residue(x, int(d))
        if r is None:
            return e
        return (x - r) / d if isinstance(e, sp.floor) else (x + (int(d) - r) % int(d)) / d

    return expr.replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)), rewrite)


#: the lattices of the Cost being rendered (None: print expressions exactly as they are)
_PRESENTATION: ContextVar[Lattices | None] = ContextVar("symflops_presentation", default=None)


@contextlib.contextmanager
def presenting(lattices: Lattices | None) -> Iterator[None]:
    """While inside, :func:`shown_form` presents expressions on ``lattices`` (a render sets
    its Cost's; ``None`` keeps every expression exact). Per thread and per task."""
    token = _PRESENTATION.set(lattices)
    try:
        yield
    finally:
        _PRESENTATION.reset(token)


def shown_form(expr: sp.Basic) -> sp.Basic:
    """``expr`` as the render in progress shows it (:func:`presented` on its lattices), or
    ``expr`` itself outside a render or in an exact one."""
    lattices = _PRESENTATION.get()
    return expr if lattices is None else presented(expr, lattices)


@functools.lru_cache(maxsize=8192)
def _presented(expr: sp.Basic, lattices: tuple[tuple[sp.Symbol, int, int], ...]) -> sp.Basic:
    out = as_ceilings(expr)
    return on_lattice(out, {s: (step, offset) for s, step, offset in lattices})


def presented(expr: sp.Basic, lattices: Lattices | None = None) -> sp.Basic:
    r"""How a render shows ``expr``: each ``floor((x - 1)/d) + 1`` as ``ceiling(x/d)``
    (:func:`as_ceilings`), then rounding that the ``lattices`` (a domain's, symbol ->
    ``(step, offset)``) settle removed (:func:`on_lattice`). Equal to ``expr`` on the
    domain; renders with ``exact=True`` print ``expr`` itself.

    >>> from symflops.symbols import H
    >>> stride2 = sp.floor(H/2 - sp.Rational(1, 2)) + 1
    >>> presented(stride2), presented(stride2, {H: (2, 0)}), presented(stride2, {H: (2, 1)})
    (ceiling(H/2), H/2, H/2 + 1/2)
    """
    if not isinstance(expr, sp.Basic) or not expr.has(sp.floor, sp.ceiling):
        return expr
    key = tuple(sorted(((s, step, offset) for s, (step, offset) in (lattices or {}).items()
                        if step > 1), key=lambda t: t[0].name))
    return _presented(expr, key)


def _latex(expr: sp.Basic, names: Mapping[sp.Basic, str], grouped: bool, inline: bool,
           dot: bool) -> str:
    settings: dict[str, object] = {"symbol_names": dict(names)}
    if dot:
        settings["mul_symbol"] = "dot"
    if inline:
        settings["fold_short_frac"] = True
    text = _LatexPrinter(settings, grouped).doprint(expr)
    if not inline:
        return text
    # a table cell: a fraction too long to fold prints as \tfrac, never a full-size
    # \frac; fixed-size delimiters let TeX break a long formula after a + inside them
    for sized, fixed in _INLINE_DELIMITERS:
        text = text.replace(sized, fixed)
    return text


_INLINE_DELIMITERS = ((r"\frac{", r"\tfrac{"), (r"\left(", r"\bigl("), (r"\right)", r"\bigr)"),
                      (r"\left\lfloor", r"\lfloor"), (r"\right\rfloor", r"\rfloor"),
                      (r"\left\lceil", r"\lceil"), (r"\right\rceil", r"\rceil"))


@functools.lru_cache(maxsize=8192)
def _latex_cached(expr: sp.Basic, grouped: bool, inline: bool) -> str:
    return _latex(expr, _names(expr), grouped, inline, dot=False)


def latex_expr(expr: sp.Basic, names: Mapping[sp.Symbol, str] | None = None, *,
               grouped: bool = True, inline: bool = False) -> str:
    """LaTeX of ``expr`` with canonical symbol names; ``names`` renames symbols (used
    to show substituted values in a general formula; products then print with ``\\cdot``).
    Integers are digit-grouped unless ``grouped`` is false; ``inline`` (a table cell)
    writes short fractions as ``a / b`` and others as ``\\tfrac``.

    >>> from symflops.symbols import H
    >>> latex_expr(17563828224 * H / 2), latex_expr(H / 2, inline=True)
    ('8{,}781{,}914{,}112 H', 'H / 2')
    """
    if not names:
        return _latex_cached(expr, grouped, inline)
    full = _names(expr)
    full.update(names)
    return _latex(expr, full, grouped, inline, dot=True)


def clear_cache() -> None:
    """Forget the memoised LaTeX of expressions (benchmarks time a first render)."""
    _latex_cached.cache_clear()
    _presented.cache_clear()


class _NamedStrPrinter(StrPrinter):
    def __init__(self, names: Mapping[sp.Symbol, str]) -> None:
        super().__init__()
        self._names = dict(names)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self._names.get(expr, expr.name)


def text_expr(expr: sp.Basic, names: Mapping[sp.Symbol, str] | None = None) -> str:
    """Plain-text form of ``expr`` (SymPy's ``str``), symbols renamed by ``names``."""
    if not names:
        return str(expr)
    return str(_NamedStrPrinter(names).doprint(expr))


def substitution_names(bindings: Mapping[sp.Symbol, sp.Expr], printer: str, *,
                       grouped: bool = True) -> dict[sp.Symbol, str]:
    """Each bound symbol's value printed for substitution (parenthesised unless atomic);
    LaTeX integers digit-grouped unless ``grouped`` is false."""
    out: dict[sp.Symbol, str] = {}
    for sym, value in bindings.items():
        # a rounding (``ceiling(H/2)``) brackets itself
        atomic = value.is_Atom or isinstance(value, (sp.floor, sp.ceiling))
        if printer == "latex":
            s = latex_expr(value, grouped=grouped)
            out[sym] = s if atomic else rf"\left({s}\right)"
        else:
            s = text_expr(value)
            out[sym] = s if atomic else f"({s})"
    return out


_SI = ((10**3, "k"), (10**6, "M"), (10**9, "G"), (10**12, "T"), (10**15, "P"), (10**18, "E"))


def _si(value: int) -> str:
    """Three significant digits and an SI prefix: a rounded display."""
    if abs(value) < 1000:
        return str(value)
    for i, (scale, prefix) in enumerate(_SI):
        if abs(value) < scale * 1000 or i == len(_SI) - 1:
            x = value / scale
            text = _three_digits(x)
            if abs(float(text)) >= 1000 and i < len(_SI) - 1:  # 999.9 k -> 1.00 M
                scale, prefix = _SI[i + 1]
                text = _three_digits(value / scale)
            return f"{text} {prefix}"
    raise AssertionError("unreachable")  # pragma: no cover


#: how an integer can be written, by name (``numbers=`` of a render)
NUMBER_STYLES: dict[str, str] = {
    "grouped": "digits in groups of three, 907,889,152 (the default)",
    "plain": "digits only, 907889152",
    "si": "rounded to three significant digits with an SI prefix, 908 M",
}
_NUMBER_FORMATTERS: dict[str, Callable[[int], str]] = {
    "grouped": group_digits, "plain": str, "si": _si}


def format_number(value: int, style: str = "grouped") -> str:
    """An integer in a number style (:data:`NUMBER_STYLES`): with thousands separators
    (``4,089,184,256``), plain, or with an SI prefix (``4.09 G``, three significant
    digits).

    >>> format_number(4089184256), format_number(4089184256, "si"), format_number(512, "si")
    ('4,089,184,256', '4.09 G', '512')
    >>> format_number(999_999, "si"), format_number(4089184256, "plain")
    ('1.00 M', '4089184256')
    """
    return _NUMBER_FORMATTERS[style](value)


def _three_digits(x: float) -> str:
    digits = 2 if abs(x) < 10 else 1 if abs(x) < 100 else 0
    text = f"{x:.{digits}f}"
    if float(text) >= 10 and digits == 2 or float(text) >= 100 and digits == 1:
        text = f"{x:.{digits - 1}f}"  # 9.999 -> 10.0, not 10.00
    return text


def text_table(body: Sequence[Sequence[object]], header: Sequence[str] | None = None,
               aligns: str = "", *, rule: bool = False, widths: Sequence[int] | None = None,
               gaps: Sequence[str] = ()) -> str:
    """A plain-text table: every plain-text table symflops prints is built here.

    Columns are aligned ``l`` or ``r`` (``aligns``, one letter a column, left by default)
    and joined by ``gaps`` (two spaces by default); each is as wide as its widest cell,
    or exactly ``widths`` (a cell longer than its column then pushes the rest of its row
    instead of widening the column: for columns of long expressions). ``rule`` draws a
    dashed line under the header. No line ends in spaces.

    >>> print(text_table([["conv", "1,024"], ["fc", "10"]], ["module", "FLOPs"], "lr",
    ...                  rule=True))
    module  FLOPs
    ------  -----
    conv    1,024
    fc         10
    """
    rows = ([list(map(str, header))] if header is not None else []) + \
        [list(map(str, r)) for r in body]
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    if widths is None:
        widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(ncols)]
    seps = [gaps[i] if i < len(gaps) else "  " for i in range(ncols - 1)]

    def line(cells: Sequence[str]) -> str:
        out = ""
        for i, cell in enumerate(cells):
            width = widths[i] if i < len(widths) else 0
            right = i < len(aligns) and aligns[i] == "r"
            out += (seps[i - 1] if i else "") + (cell.rjust(width) if right else cell.ljust(width))
        return out.rstrip()

    lines = [line(r) for r in rows]
    if rule and header is not None:
        lines.insert(1, "".join((seps[i - 1] if i else "") + "-" * w
                                for i, w in enumerate(widths)))
    return "\n".join(lines)
