"""A display equation that fits a column: a sum of collected terms cut into lines of
about ``width`` printed characters, breaking between terms, and inside a long factor's
parentheses (``\\bigl( ... \\bigr)``, which may span lines) when one term is too wide.

>>> import sympy as sp
>>> from symflops.notation import latex_expr
>>> from symflops.symbols import B, L, N, dim
>>> terms = [(B * (4 * dim + 5), L * N**2), (B * (24 * dim**2 + 35 * dim + 4), L * N)]
>>> equation_lines(terms, latex_expr, width=20)
['B L N^{2} \\\\left(4 d + 5\\\\right)', '+ B L N \\\\left(24 d^{2} + 35 d + 4\\\\right)']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp

__all__ = ["equation_lines", "visible_width"]

_SIZING = re.compile(r"\\(left|right|bigl|bigr|mathrm|text|operatorname)\b|[{}]|\\,")


def visible_width(latex: str) -> int:
    """Roughly how many characters ``latex`` shows: sizing commands, braces and spaces
    dropped, every other command one glyph.

    >>> visible_width(r"24 B N d^{2} + \\left(H / 2\\right)")
    13
    """
    return len(re.sub(r"\\[a-zA-Z]+", "x", _SIZING.sub("", latex)).replace(" ", ""))


#: how far past the width a line may run rather than break between a product's factors
_FACTOR_SLACK = 4

#: a piece of a line: how it joins the previous one ("+", "-", "*" or "" at the start)
Atom = tuple[str, str]


def _opened(inner: list[Atom], head: str = "") -> list[Atom]:
    """A sum's pieces inside ``\\bigl( ... \\bigr)`` after ``head``; the first piece keeps
    its sign (``(-B^2 d^2 + 1)``)."""
    (join, first), *rest = inner
    sign = "-" if join == "-" else ""
    if not rest:
        return [("", rf"{head}\left({sign}{first}\right)")]
    rest[-1] = (rest[-1][0], rest[-1][1] + r"\bigr)")
    return [("", head + r"\bigl(" + sign + first), *rest]


def _atoms(expr: sp.Expr, math: Callable[[Any], str], width: int) -> list[Atom]:
    """``expr`` as pieces between which a line may break: a sum's terms, a product's
    factors, a long sum factor opened up inside ``\\bigl( \\bigr)``."""
    text = math(expr)
    if visible_width(text) <= width or not (expr.is_Add or expr.is_Mul):
        return [("", text)]
    if expr.is_Add:
        out: list[Atom] = []
        for i, t in enumerate(expr.as_ordered_terms()):
            sign = "-" if t.could_extract_minus_sign() else "+"
            (_, first), *rest = _atoms(-t if sign == "-" else t, math, width)
            out.append(("-" if sign == "-" else ("" if i == 0 else "+"), first))
            out.extend(rest)
        return out
    plain = sp.Mul(*(f for f in expr.args if not f.is_Add))
    sums = [f for f in expr.args if f.is_Add]
    out = [] if plain == 1 else _factors(plain, math, width)
    for factor in sums:
        (_, first), *rest = _opened(_atoms(factor, math, width))
        out.extend([("*", first), *rest])
    if out and out[0][0] == "*":
        out[0] = ("", out[0][1])
    return out


def _factors(plain: sp.Expr, math: Callable[[Any], str], width: int) -> list[Atom]:
    """A product without sums: one piece, or when wider than ``width`` its numbers and
    symbols, then each rounding or other function factor (``3338 floor(H/2 - 1/2)``,
    ``floor(W/2 - 1/2)``), a line breaking between them."""
    text = math(plain)
    functions = [f for f in sp.Mul.make_args(plain) if f.is_Function]
    if visible_width(text) <= width or not functions or \
            (len(functions) == 1 and plain == functions[0]):
        return [("", text)]
    head = sp.Mul(*(f for f in sp.Mul.make_args(plain) if not f.is_Function))
    functions = sorted(functions, key=sp.default_sort_key)
    first = head * functions[0]
    glue = r"\allowbreak" if r"\allowbreak" in text else ""  # as the printer joins them
    return [("", math(first))] + [("*", glue + math(f)) for f in functions[1:]]


def _term_atoms(item: tuple[Any, Any], math: Callable[[Any], str], width: int) -> list[Atom]:
    """A ``(coefficient, monomial)`` term: the monomial first when the coefficient is a
    sum (``L N (24 d^2 + ...)``), else coefficient first (``24 B L N d^2``)."""
    coefficient, monomial = (sp.sympify(x) for x in item)
    if not coefficient.is_Add or monomial == 1:
        return _atoms(coefficient * monomial, math, width)
    return _opened(_atoms(coefficient, math, width), math(monomial) + " ")


def equation_lines(terms: Sequence[tuple[Any, Any]], math: Callable[[Any], str],
                   width: int = 28) -> list[str]:
    """The sum of ``terms`` (``(coefficient, monomial)`` pairs, see
    ``collected_terms``) as lines of about ``width`` printed characters; a line after
    the first starts with its operator (``+``, ``-`` or ``\\cdot``)."""
    atoms: list[Atom] = []
    for i, item in enumerate(terms):
        coefficient = sp.sympify(item[0])
        negative = coefficient.could_extract_minus_sign()
        (join, first), *rest = _term_atoms((-coefficient, item[1]) if negative else item,
                                           math, width)
        if join == "-":  # the term's own first factor is negative: -(-x) reads +x
            negative, first = not negative, first
        atoms.append(("-" if negative else ("+" if i else ""), first))
        atoms.extend(rest)
    lines: list[str] = []
    current = ""
    for join, text in atoms:
        # a break needs a line worth ending: never right after a short head (``16 B``)
        # a product's factors stay together a little past the width (they read as one)
        limit = width + _FACTOR_SLACK if join == "*" else width
        if visible_width(current) > width // 3 and visible_width(current + text) > limit:
            lines.append(current)
            current = {"+": "+ ", "-": "- ", "*": r"\cdot ", "": ""}[join] + text
        elif not current:
            current = ("-" if join == "-" else "") + text
        else:
            current += {"+": " + ", "-": " - ", "*": " ", "": " "}[join] + text
    return [*lines, current]


_OPEN = re.compile(r"\\left\b|\\bigl\b|\{")
_CLOSE = re.compile(r"\\right\b|\\bigr\b|\}")
#: where a long display line may break: a top-level sum's or product's operator
_BREAKS = (" + ", " - ", r" \cdot ")


def display_lines(latex: str, width: int) -> list[str]:
    r"""A display formula (LaTeX) as lines of about ``width`` printed characters, broken
    before a top-level ``+``, ``-`` or ``\cdot`` (never inside braces or a
    ``\left ... \right`` pair); a line after the first starts with its operator. A
    formula with no such operator stays one line.

    >>> display_lines(r"B \cdot 32 \cdot \left(2 \cdot 3 - 1\right)", 8)
    ['B \\cdot 32', '\\cdot \\left(2 \\cdot 3 - 1\\right)']
    >>> display_lines("a + b", 80)
    ['a + b']
    """
    if visible_width(latex) <= width:
        return [latex]
    pieces: list[str] = []  # each after the first starts with its operator
    depth, start, i = 0, 0, 0
    while i < len(latex):
        if depth == 0 and i > start:
            op = next((b for b in _BREAKS if latex.startswith(b, i)), None)
            if op is not None:
                pieces.append(latex[start:i])
                start = i + 1  # the operator begins the next piece
                i += len(op)
                continue
        m_open, m_close = _OPEN.match(latex, i), _CLOSE.match(latex, i)
        if m_open:
            depth += 1
            i = m_open.end()
        elif m_close:
            depth -= 1
            i = m_close.end()
        elif latex[i] == "\\":  # a command: skip its name whole
            m = re.match(r"\\[a-zA-Z]+|\\.", latex[i:])
            i += len(m.group(0)) if m else 1
        else:
            i += 1
    pieces.append(latex[start:])
    lines: list[str] = []
    for piece in pieces:
        if lines and visible_width(lines[-1] + piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines
