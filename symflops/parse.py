"""A small, safe parser for the values and expressions users type (``--at H=224``).

It accepts names, non-negative integer literals, ``+ - * / **`` and parentheses, and
builds SymPy objects directly. Nothing is ever passed to ``eval``, ``sympify`` or
``parse_expr``: anything else (floats, strings, calls, attribute access, commas,
``lambda``...) is a :class:`~symflops.errors.SymflopsError` naming the position.

What a string can build is bounded as it is built, so any string answers at once and
so does anything downstream that expands what it built: length (:data:`MAX_LENGTH`),
nesting (:data:`MAX_DEPTH`), each exponent (:data:`MAX_EXPONENT`), digits of a literal
(:data:`MAX_DIGITS`), and, after every operation, the total degree
(:data:`MAX_EXPRESSION_DEGREE`), the number of terms the expression would have fully expanded
(:data:`MAX_TERMS`) and the bits of its largest coefficient (:data:`MAX_BITS`), each
an upper bound computed from the tree without expanding it. ``((H**64)**64)`` is
refused (degree 4096), so is ``((I+1)**64)**64``.

>>> from symflops.parse import parse_expr, parse_assignments, parse_range
>>> parse_expr("2*H*W + C_out**2")
C_out**2 + 2*H*W
>>> parse_assignments("B=1, H=224, W=H")
{B: 1, H: 224, W: 224}
>>> parse_range("64:256:64")
[64, 128, 192, 256]
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from symflops.errors import SymflopsError

__all__ = [
    "parse_expr", "parse_int", "parse_name", "parse_symbol", "parse_assignments",
    "parse_range", "parse_names", "parse_dims", "MAX_LENGTH", "MAX_DEPTH", "MAX_EXPONENT",
    "MAX_DIGITS", "MAX_BITS", "MAX_EXPRESSION_DEGREE", "MAX_TERMS", "MAX_LIST_LENGTH",
    "MAX_RANGE_POINTS", "MAX_DIMS", "MAX_RANGE_VALUE",
]

#: longest expression accepted (characters)
MAX_LENGTH = 200
#: deepest nesting of parentheses, unary signs and powers
MAX_DEPTH = 16
#: largest exponent (in absolute value) of ``**``
MAX_EXPONENT = 64
#: longest integer literal (digits)
MAX_DIGITS = 30
#: largest number (bits) any intermediate constant may reach
MAX_BITS = 1024
#: largest total degree of what an expression builds (``H**64``, ``H**32*W**32``)
MAX_EXPRESSION_DEGREE = 64
#: most terms an expression (or all values of one ``--at`` text, multiplied) may have once
#: fully expanded: ``(H+W+1)**4`` has 15. Small on purpose: a cost multiplies the values
#: substituted into it (attention squares N), and what they expand to must stay quick.
MAX_TERMS = 16
#: longest comma-separated list (``--at``) accepted (characters)
MAX_LIST_LENGTH = 2000
#: most points a range may hold (``--range``)
MAX_RANGE_POINTS = 1_000_000
#: largest value a range may hold: int64's largest
MAX_RANGE_VALUE = 2**63 - 1
#: most dims one input spec may have (``--input "B 3 H W"``)
MAX_DIMS = 64

_OPERATORS = ("**", "+", "-", "*", "/", "(", ")")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME_REST = _NAME_START | frozenset("0123456789_")
_DIGITS = frozenset("0123456789")
_SPACE = frozenset(" \t")


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "int", "op", "end"
    text: str
    pos: int


def _error(text: str, pos: int, message: str, fix: str) -> SymflopsError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return SymflopsError(f"cannot parse {shown!r}: {message} at position {pos + 1}", fix=fix)


_FIX = "write names, integers, + - * / ** and parentheses only, e.g. 2*H*W or (H/2)**2"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME_REST:
                j += 1
            tokens.append(_Token("name", text[i:j], i))
            i = j
        elif ch in _DIGITS:
            j = i + 1
            while j < n and text[j] in _DIGITS:
                j += 1
            if j < n and (text[j] in _NAME_START or text[j] in "._"):
                what = "decimal point" if text[j] == "." else f"{text[j]!r} after a number"
                raise _error(text, j, f"unexpected {what}",
                             "use integers only; write products with *, e.g. 2*H")
            if j - i > MAX_DIGITS:
                raise _error(text, i, f"number longer than {MAX_DIGITS} digits",
                             "use a smaller number or a power such as 10**40")
            tokens.append(_Token("int", text[i:j], i))
            i = j
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(_Token("op", op, i))
                    i += len(op)
                    break
            else:
                raise _error(text, i, f"unexpected character {ch!r}", _FIX)
    tokens.append(_Token("end", "", n))
    return tokens


@dataclass(frozen=True)
class _Size:
    """Upper bounds of what an expression is once expanded: total degree, number of
    terms, and log2 of its largest coefficient (numerators and denominators alike)."""

    degree: int
    terms: int
    bits: int


@functools.lru_cache(maxsize=4096)
def _size(e: sp.Basic) -> _Size:
    """The bounds of ``e``, from its tree (never expanded): a sum adds terms, a product
    multiplies them, a ``t``-term base to the ``k`` has at most C(t+k-1, k) terms whose
    coefficients are at most t**k times the base's to the ``k``."""
    if e.is_Rational:
        p, q = e.as_numer_denom()
        return _Size(0, 1, max(abs(int(p)).bit_length(), abs(int(q)).bit_length()))
    if e.is_Symbol:
        return _Size(1, 1, 0)
    parts = [_size(a) for a in e.args]
    if e.is_Add:
        return _Size(max(p.degree for p in parts), sum(p.terms for p in parts),
                     max(p.bits for p in parts) + (len(parts) - 1).bit_length())
    if e.is_Mul:
        return _Size(sum(p.degree for p in parts), math.prod(p.terms for p in parts),
                     sum(p.bits + (p.terms - 1).bit_length() for p in parts))
    if e.is_Pow and e.exp.is_Integer:
        base, k = parts[0], abs(int(e.exp))
        return _Size(base.degree * k, math.comb(base.terms + k - 1, k),
                     k * (base.bits + (base.terms - 1).bit_length()))
    raise SymflopsError("cannot measure this expression", values={"expression": e})


def _over_limits(value: sp.Expr) -> tuple[str, str] | None:
    """(what is too large, the fix) when ``value`` passes a size limit, else None."""
    size = _size(value)
    if size.degree > MAX_EXPRESSION_DEGREE:
        return (f"total degree above {MAX_EXPRESSION_DEGREE}",
                f"keep products and powers of names to degree {MAX_EXPRESSION_DEGREE} "
                "(e.g. H**2*W)")
    if size.terms > MAX_TERMS:
        return f"more than {MAX_TERMS:,} terms once expanded", "use smaller powers of sums"
    if size.bits > MAX_BITS:
        return f"number larger than 2**{MAX_BITS}", "use smaller numbers"
    return None


def _check_size(value: sp.Expr, text: str, pos: int) -> sp.Expr:
    """``value`` if it stays within the limits, else an error at ``pos`` of ``text``."""
    over = _over_limits(value)
    if over:
        raise _error(text, pos, *over)
    return value


class _Parser:
    """Recursive descent over the grammar::

        expr  := term (("+" | "-") term)*
        term  := unary (("*" | "/") unary)*
        unary := ("+" | "-") unary | power
        power := atom ("**" unary)?
        atom  := INT | NAME | "(" expr ")"
    """

    def __init__(self, text: str, names: Mapping[str, sp.Symbol] | None) -> None:
        self.text = text
        self.names = names
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(self.text, self.tok.pos, f"nested deeper than {MAX_DEPTH} levels",
                         "simplify the expression")

    def parse(self) -> sp.Expr:
        if not self.text.strip():
            raise SymflopsError("empty expression", fix="write a value such as 224 or 2*H")
        e = self.expr()
        if self.tok.kind != "end":
            raise _error(self.text, self.tok.pos, f"unexpected {self.tok.text!r}", _FIX)
        return e

    def expr(self) -> sp.Expr:
        e = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok
            self.i += 1
            rhs = self.term()
            e = _check_size(e + rhs if op.text == "+" else e - rhs, self.text, op.pos)
        return e

    def term(self) -> sp.Expr:
        e = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok
            self.i += 1
            rhs = self.unary()
            if op.text == "/":
                if rhs == 0:
                    raise _error(self.text, op.pos, "division by zero",
                                 "divide by a non-zero value")
                e = e / rhs
            else:
                e = e * rhs
            e = _check_size(e, self.text, op.pos)
        return e

    def unary(self) -> sp.Expr:
        if self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok
            self.i += 1
            self._enter()
            e = self.unary()
            self.depth -= 1
            return -e if op.text == "-" else e
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if self.tok.kind == "op" and self.tok.text == "**":
            op = self.tok
            self.i += 1
            self._enter()
            exp = self.unary()
            self.depth -= 1
            if not (exp.is_Integer and abs(int(exp)) <= MAX_EXPONENT):
                raise _error(self.text, op.pos,
                             f"exponents must be integers between -{MAX_EXPONENT} and "
                             f"{MAX_EXPONENT}", "use a small integer exponent, e.g. H**2")
            if base == 0 and int(exp) < 0:
                raise _error(self.text, op.pos, "division by zero", "use a non-zero base")
            # measured before it is built: sympy computes a number's power at once
            _check_size(sp.Pow(base, exp, evaluate=False), self.text, op.pos)
            return _check_size(sp.Pow(base, exp), self.text, op.pos)
        return base

    def atom(self) -> sp.Expr:
        tok = self.tok
        if tok.kind == "int":
            self.i += 1
            return sp.Integer(int(tok.text))
        if tok.kind == "name":
            self.i += 1
            if self.tok.kind == "op" and self.tok.text == "(":
                raise _error(self.text, self.tok.pos, "function calls are not allowed", _FIX)
            return self._symbol(tok)
        if tok.kind == "op" and tok.text == "(":
            self.i += 1
            self._enter()
            e = self.expr()
            self.depth -= 1
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise _error(self.text, self.tok.pos, "missing ')'", "close every parenthesis")
            self.i += 1
            return e
        what = "end of input" if tok.kind == "end" else repr(tok.text)
        raise _error(self.text, tok.pos, f"expected a name, a number or '(' but found {what}",
                     _FIX)

    def _symbol(self, tok: _Token) -> sp.Symbol:
        if self.names is not None:
            if tok.text not in self.names:
                known = ", ".join(sorted(self.names)) or "none"
                raise SymflopsError(f"unknown symbol {tok.text!r}",
                                    fix=f"use one of the symbols: {known}")
            return self.names[tok.text]
        from symflops.symbols import symbol

        return symbol(tok.text)


def _check_length(text: str, limit: int) -> None:
    if not isinstance(text, str):
        raise SymflopsError("expected text to parse", values={"type": type(text).__name__})
    if len(text) > limit:
        raise SymflopsError(f"input longer than {limit} characters",
                            values={"length": len(text)}, fix="shorten the expression")


def parse_expr(text: str, names: Mapping[str, sp.Symbol] | None = None) -> sp.Expr:
    """Parse ``text`` into a SymPy expression.

    ``names`` restricts the symbols allowed (name -> Symbol); without it a name is the
    canonical symbol of that name (``H``, ``C_in``...) or a new positive-integer symbol.

    >>> parse_expr("(H - 1)/2 + 1")
    H/2 + 1/2
    >>> parse_expr("__import__('os')")
    Traceback (most recent call last):
    ...
    symflops.errors.SymflopsError: cannot parse "__import__('os')": unexpected character '_' \
at position 1; fix: write names, integers, + - * / ** and parentheses only, e.g. 2*H*W or (H/2)**2
    """
    _check_length(text, MAX_LENGTH)
    return _Parser(text, names).parse()


def parse_int(text: str, what: str = "value") -> int:
    """Parse an integer-valued constant expression (``224``, ``2**10``, ``7*32``)."""
    e = parse_expr(text)
    if not e.is_Integer:
        raise SymflopsError(f"{what} must be an integer", values={what: text},
                            fix="write a whole number such as 224")
    return int(e)


def parse_name(text: str) -> str:
    """A bare name (``H``, ``C_in``), checked with the same tokenizer."""
    _check_length(text, MAX_LENGTH)
    try:
        tokens = _tokenize(text)
    except SymflopsError:
        tokens = []
    if len(tokens) != 2 or tokens[0].kind != "name":
        raise SymflopsError(f"{text!r} is not a name",
                            fix="use letters, digits and underscores, starting with a letter")
    return tokens[0].text


def parse_symbol(text: str, names: Mapping[str, sp.Symbol] | None = None) -> sp.Symbol:
    """The symbol called ``text`` (restricted to ``names`` when given)."""
    name = parse_name(text)
    e = _Parser(name, names).parse()
    assert isinstance(e, sp.Symbol)
    return e


def parse_names(text: str) -> list[str]:
    """A comma-separated list of names: ``"H,W"`` -> ``["H", "W"]``."""
    _check_length(text, MAX_LIST_LENGTH)
    out = [parse_name(part.strip()) for part in text.split(",")]
    if len(set(out)) != len(out):
        raise SymflopsError("a name is repeated", values={"names": text},
                            fix="list each name once")
    return out


def parse_assignments(text: str, names: Mapping[str, sp.Symbol] | None = None,
                      values_names: Mapping[str, sp.Symbol] | None = None,
                      ) -> dict[sp.Symbol, sp.Expr]:
    """Parse ``"B=1, H=224, W=H"`` into ``{B: 1, H: 224, W: 224}``.

    A value may use names assigned in the same text, in any order (``W=H, H=224`` too):
    each is resolved to what it names, so no assigned name is left in a value; a name
    that refers back to itself, directly or not, is an error. The resolved values stay
    within the parser's size limits. ``names`` restricts the names on the left,
    ``values_names`` those on the right (both default to canonical-or-new symbols).

    >>> parse_assignments("N=H*W/256, H=224, W=2*H")
    {N: 392, H: 224, W: 448}
    """
    _check_length(text, MAX_LIST_LENGTH)
    given: dict[sp.Symbol, sp.Expr] = {}
    for part in text.split(","):
        if part.count("=") != 1:
            raise SymflopsError(f"cannot parse {part.strip()!r}: expected NAME=VALUE",
                                fix="write assignments like H=224,W=224")
        left, right = part.split("=")
        sym = parse_symbol(left.strip(), names)
        if sym in given:
            raise SymflopsError(f"{sym} is given twice", values={"text": text},
                                fix="give each symbol once")
        given[sym] = parse_expr(right.strip(), values_names)
    resolved: dict[sp.Symbol, sp.Expr] = {}

    def resolve(sym: sp.Symbol, chain: tuple[sp.Symbol, ...]) -> sp.Expr:
        if sym in resolved:
            return resolved[sym]
        if sym in chain:
            loop = " -> ".join(s.name for s in (*chain[chain.index(sym):], sym))
            raise SymflopsError("assignments refer to each other in a loop",
                                values={"loop": loop}, fix="give one of them a number")
        value = given[sym]
        uses = sorted(value.free_symbols & set(given), key=str)
        if uses:
            value = value.xreplace({u: resolve(u, (*chain, sym)) for u in uses})
            over = _over_limits(value)
            if over:
                raise SymflopsError(f"{sym}, with the names it uses replaced, has {over[0]}",
                                    values={sym.name: given[sym]}, fix=over[1])
        resolved[sym] = value
        return value

    out = {sym: resolve(sym, ()) for sym in given}
    sizes = [_size(v) for v in out.values()]
    if math.prod(z.terms for z in sizes) > MAX_TERMS:
        raise SymflopsError(f"the values have more than {MAX_TERMS:,} terms together once "
                            "expanded (multiplied, as a cost multiplies them)",
                            values={"text": text if len(text) <= 60 else text[:57] + "..."},
                            fix="use fewer sums raised to powers")
    return out


def parse_dims(text: str) -> list[int | str]:
    """The dims of an input spec: ``"B 3 H W"`` (or comma-separated) -> ``["B", 3, "H",
    "W"]``, each a positive integer expression or a name; at most :data:`MAX_DIMS`.

    >>> parse_dims("B, 3, H, W")
    ['B', 3, 'H', 'W']
    """
    _check_length(text, MAX_LIST_LENGTH)
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise SymflopsError("empty input spec", fix='write e.g. "B 3 H W"')
    if len(tokens) > MAX_DIMS:
        raise SymflopsError(f"an input spec has at most {MAX_DIMS} dims",
                            values={"dims": len(tokens)}, fix='write e.g. "B 3 H W"')
    out: list[int | str] = []
    for tok in tokens:
        if tok[:1].isdigit() or tok[:1] in "+-(":  # a number, or an integer expression
            size = parse_int(tok, "size")
            if size < 1:
                raise SymflopsError("sizes must be positive integers", values={"size": size},
                                    fix="give a size >= 1 or a name such as B or H")
            out.append(size)
        else:
            out.append(parse_name(tok))
    return out


_DASH_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def _range_values(values: list[int], text: str, minimum: int = 1) -> list[int]:
    if len(values) > MAX_RANGE_POINTS:
        raise SymflopsError(f"a range holds at most {MAX_RANGE_POINTS:,} points",
                            values={"range": text, "points": len(values)},
                            fix="use a larger step or a geometric range (e.g. 64:4096:*2)")
    bad = [v for v in values if v < minimum]
    if bad:
        raise SymflopsError("range values are sizes and must be positive" if minimum == 1
                            else f"range values must be {minimum} or more",
                            values={"range": text, "value": bad[0]},
                            fix=f"start the range at {minimum} or more, e.g. 64:1024:32")
    big = [v for v in values if v > MAX_RANGE_VALUE]
    if big:
        raise SymflopsError("range values are sizes and must fit int64",
                            values={"range": text, "value": big[0]},
                            fix="stop the range at 2**62 or below")
    return values


def parse_range(text: str, *, minimum: int = 1) -> list[int]:
    """Parse a range of sizes: at most :data:`MAX_RANGE_POINTS` integers from ``minimum`` (1,
    or 0 for a quantity such as padding) to 2**63 - 1.

    ``START:STOP:STEP`` (STOP included when on the grid), ``START:STOP`` (step 1),
    ``START:STOP:*F`` (geometric, times F), or a list ``A,B,C``. Bounds may be constant
    expressions (``2**6:2**10:*2``). ``64-1024`` is refused (it is a subtraction, -960:
    write ``64:1024:32``).

    >>> parse_range("1:16:*2")
    [1, 2, 4, 8, 16]
    >>> parse_range("224,384")
    [224, 384]
    """
    _check_length(text, MAX_LIST_LENGTH)
    if ":" not in text:
        parts = text.split(",")
        for p in parts:
            dash = _DASH_RANGE.match(p)
            if dash:
                lo, hi = sorted(int(x) for x in dash.groups())
                raise SymflopsError(f"{p.strip()!r} is a subtraction, not a range",
                                    values={"range": text},
                                    fix=f"write a range as START:STOP:STEP, e.g. {lo}:{hi}:32")
        if len(parts) > MAX_RANGE_POINTS:
            return _range_values([0] * len(parts), text)  # too many: the error says so
        return _range_values([parse_int(p.strip(), "range value") for p in parts], text,
                             minimum)
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise SymflopsError(f"cannot parse range {text!r}",
                            fix="write START:STOP:STEP (e.g. 64:1024:32) or START:STOP:*2")
    start = parse_int(parts[0].strip(), "range start")
    stop = parse_int(parts[1].strip(), "range stop")
    step_text = parts[2].strip() if len(parts) == 3 else "1"
    geometric = step_text.startswith("*")
    step = parse_int(step_text[1:] if geometric else step_text, "range step")
    if start < minimum:
        return _range_values([start], text, minimum)
    if stop < start:
        raise SymflopsError("range stop is below its start", values={"range": text},
                            fix="write START:STOP with START <= STOP")
    if geometric:
        if step < 2 or start < 1:
            raise SymflopsError("a geometric range needs a start >= 1 and a factor >= 2",
                                values={"range": text}, fix="write e.g. 64:1024:*2")
        out, v = [], start
        while v <= stop:  # at most 1024 points: the bounds are below 2**1024
            out.append(v)
            v *= step
        return _range_values(out, text, minimum)
    if step < 1:
        raise SymflopsError("range step must be >= 1", values={"range": text},
                            fix="write e.g. 64:1024:32")
    count = (stop - start) // step + 1
    if count > MAX_RANGE_POINTS:
        raise SymflopsError(f"a range holds at most {MAX_RANGE_POINTS:,} points",
                            values={"range": text, "points": count},
                            fix="use a larger step or a geometric range (e.g. 64:4096:*2)")
    return _range_values(list(range(start, stop + 1, step)), text, minimum)
