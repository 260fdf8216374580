"""Arithmetic that works on Python ints and SymPy expressions alike.

Integers stay Python ints (so brute-force checks and the tracer's concrete
paths are cheap); anything symbolic becomes an exact SymPy expression, with
``floor``/``ceiling`` kept as they are.

>>> from symflops.symbols import H
>>> floordiv(7, 2), floordiv(H - 1, 2) + 1
(3, floor(H/2 - 1/2) + 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import sympy as sp

Size: TypeAlias = int | sp.Expr
Work = dict[str, Any]

__all__ = ["Size", "Work", "floordiv", "ceildiv", "exact_div", "prod", "smin", "is_int", "work",
           "add_work", "scale_work"]


def is_int(x: Any) -> bool:
    """True for Python ints and SymPy Integers (not bools)."""
    return (isinstance(x, int) and not isinstance(x, bool)) or isinstance(x, sp.Integer)


def floordiv(a: Size, b: Size) -> Size:
    """``a // b`` for ints, ``floor(a / b)`` for expressions.

    A rounded size divided again is written in one floor, as torch writes it:
    ``floor((floor(x) + c) / b) == floor((x + c) / b)`` for integers ``b > 0``, ``c``.

    >>> from symflops.symbols import H
    >>> floordiv(floordiv(H - 1, 2), 2)
    floor(H/4 - 1/4)
    """
    if is_int(a) and is_int(b):
        return int(a) // int(b)
    return rounded(sp.floor, _unnest(sp.sympify(a), b, sp.floor) / b)


def ceildiv(a: Size, b: Size) -> Size:
    """``ceil(a / b)`` exactly (a ceiling inside is merged the same way as in floordiv)."""
    if is_int(a) and is_int(b):
        return -(-int(a) // int(b))
    return rounded(sp.ceiling, _unnest(sp.sympify(a), b, sp.ceiling) / b)


def rounded(rounding: type[sp.Function], x: sp.Expr) -> sp.Expr:
    """``rounding(x)`` (``sp.floor`` or ``sp.ceiling``), the same expression SymPy builds,
    without its evaluation when every term of ``x`` is an integer or has a coefficient
    that is not one (``H/2 - 7/2 + 3``, a divided size): SymPy then moves the integers out
    and leaves the rest inside, and that is all it does. Its evaluation asks whether the
    sum, each term and ``I*x`` are integer or real, ~8 ms for ``floor(H/2 - 7/2)`` on a
    first call; a size divided in a trace is rounded once per expression. Anything else
    (an integer-valued term such as ``floor(...)`` or ``H``, a number) is SymPy's own.

    >>> from symflops.symbols import H
    >>> rounded(sp.floor, H / 2 + 3) == sp.floor(H / 2 + 3) == sp.floor(H / 2) + 3
    True
    """
    terms = sp.Add.make_args(x)
    whole = [t for t in terms if t.is_Integer]
    rest = [t for t in terms if not t.is_Integer]
    if x.is_number or not all(_fractional_coefficient(t) for t in rest):
        return rounding(x)
    return sp.Add(*whole) + rounding(sp.Add(*rest), evaluate=False)


def _fractional_coefficient(t: sp.Expr) -> bool:
    """``t`` is a non-integer rational times a product of integer-valued symbols and
    functions (or that rational alone): SymPy cannot call it an integer."""
    c, rest = t.as_coeff_Mul()
    return c.is_Rational and c.q != 1 and all(
        f.is_Symbol and f.is_integer or isinstance(f, (sp.floor, sp.ceiling))
        for f in sp.Mul.make_args(rest) if f != 1)


def _unnest(a: sp.Expr, b: Size, rounding: type[sp.Function]) -> sp.Expr:
    """``round(u) + c`` -> ``u + c`` when dividing by a positive integer and rounding the
    same way again (c integer-valued): the inner rounding cannot change the result."""
    if not (is_int(b) and int(b) > 0):
        return a
    inner = [t for t in sp.Add.make_args(a) if isinstance(t, rounding)]
    if len(inner) != 1:
        return a
    rest = a - inner[0]
    if rest.is_integer is not True:
        return a
    return inner[0].args[0] + rest


def exact_div(n: Size, d: Size) -> Size:
    """``n / d`` as an int when both are ints and ``d`` divides ``n``; else an exact ratio."""
    if is_int(n) and is_int(d) and int(n) % int(d) == 0:
        return int(n) // int(d)
    return sp.sympify(n) / d


def smin(a: Size, b: Size) -> Size:
    """``min`` for ints, ``Min`` for expressions."""
    if is_int(a) and is_int(b):
        return min(int(a), int(b))
    return sp.Min(a, b)


def prod(xs: Iterable[Size]) -> Size:
    """Product of sizes (1 for none)."""
    out: Size = 1
    for x in xs:
        out = out * x
    return out


def work(**kinds: Size) -> Work:
    """A work dict without zero entries: ``work(matmul_mul=n, bias=0) == {"matmul_mul": n}``."""
    return {k: v for k, v in kinds.items() if not (is_int(v) and int(v) == 0)}


def add_work(*works: Work) -> Work:
    """Sum of several work dicts, kind by kind."""
    out: dict[str, list[Any]] = {}
    for w in works:
        for k, v in w.items():
            out.setdefault(k, []).append(v)
    return {k: (sum(vs) if all(is_int(v) for v in vs) else sp.Add(*vs)) for k, vs in out.items()}


def scale_work(w: Work, factor: Size) -> Work:
    """Every kind of ``w`` multiplied by ``factor``."""
    return {k: v * factor for k, v in w.items()}
