"""Compile SymPy cost expressions into vectorized numpy functions, once; every number exact.

What a compiled function does with the points it is given (the contract):

1. **Sizes are checked**, vectorized, before anything is computed; the first bad point
   is named in one :class:`~symflops.errors.SymflopsError`. A size is a positive
   integer: a Python/numpy int of any width, a SymPy ``Integer``, or a float that is a
   whole number no larger than ``2**53`` (taken as that integer: every integer up to
   ``2**53`` is a float exactly, beyond it a float may not be the integer meant, so it
   is refused). Zero (except for a symbol declared non-negative, a padding), negatives,
   fractions, NaN, inf, bools, ``None``, strings and other objects are refused, as are
   shapes that do not broadcast and grids of more than :data:`MAX_GRID_POINTS` points.
2. **Integer arithmetic only**: the expression is written over a common denominator and
   every ``floor``/``ceiling`` becomes a temporary computed once by integer division. An
   expression with no such program (a rational inside ``Min`` or a condition, a float
   constant) is evaluated by SymPy point by point: slow, still exact.
3. **int64 when proven safe, Python ints otherwise**: a majorant of every intermediate
   (``|a + b| <= |a| + |b|``, ``|ab| = |a| |b|``, ``|floor(p/q)| <= |p|/q + 1``...) is
   computed in float64. It grows with every size, so one evaluation at the largest value
   of each size bounds all points: below ``2**63 - 2**34`` (the margin covers float
   rounding over millions of operations) everything runs on int64 arrays. Otherwise it
   is computed per point: the points below run on int64, the others, and only those,
   on arrays of Python ints. An intermediate never wraps and a result that fits int64 is
   never refused.
4. **The result** is int64 for int (or whole-float) sizes; a result beyond int64 there
   raises, naming the point and the fix (``dtype=object`` arrays, or Python ints beyond
   int64, give exact Python ints in an object array). A value that is not an integer
   (a ratio of costs) is an error for integer sizes and the float64 of the exact
   quotient, rounded once, for float sizes.

>>> import numpy as np, sympy as sp
>>> from symflops.symbols import H
>>> f = compile_expr(sp.floor((H - 1) / 2) + 1, (H,))
>>> f(np.array([223, 224, 225])).tolist()
[112, 112, 113]
>>> f(np.array([2**62 + 1])).tolist() == [2**61 + 1]   # the numerator fits, nothing wraps
True
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from symflops.errors import ExceedsInt64, SymflopsError

__all__ = ["compile_expr", "compile_condition", "check_sizes", "MAX_GRID_POINTS"]

#: most points (the size of the broadcast grid) one evaluation accepts
MAX_GRID_POINTS = 10**8
#: the int64 path is taken where every intermediate's float majorant is below this
_SAFE = float(2**63 - 2**34)
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_FLOAT_EXACT = 2**53
_SIZE_FIX = "give sizes as positive integers (ints, int arrays, or whole floats up to 2**53)"


# ------------------------------------------------------------------------------ printers
class _Printer(NumPyPrinter):
    """NumPy code that broadcasts scalars against arrays (``Min``/``Max`` pairwise) and
    keeps the dtype of ``Piecewise`` branches (nested ``where``, no NaN default)."""

    def _print_Min(self, expr: sp.Min) -> str:
        return self._pairwise("numpy.minimum", expr.args)

    def _print_Max(self, expr: sp.Max) -> str:
        return self._pairwise("numpy.maximum", expr.args)

    def _pairwise(self, fn: str, args: tuple[sp.Expr, ...]) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        if expr.args[-1].cond is not sp.true:
            return str(super()._print_Piecewise(expr))
        out = self._print(expr.args[-1].expr)
        for branch in reversed(expr.args[:-1]):
            out = f"numpy.where({self._print(branch.cond)}, {self._print(branch.expr)}, {out})"
        return out


class _IntegerPrinter(_Printer):
    """Integer-only code: a rational or float constant means there is no integer program."""

    def _print_Rational(self, expr: sp.Rational) -> str:
        raise _NotInteger

    def _print_Float(self, expr: sp.Float) -> str:
        raise _NotInteger

    def _print_floor(self, expr: sp.floor) -> str:  # floors are lifted before printing
        raise _NotInteger

    _print_ceiling = _print_floor


class _NotInteger(Exception):
    """The expression has no integer program (a float constant, an unknown function)."""


# ------------------------------------------------------------------------------ program
def _lift_floors(expr: sp.Expr, seen: dict[sp.Expr, sp.Dummy],
                 steps: list[tuple[sp.Dummy, sp.Expr]]) -> sp.Expr:
    """``expr`` with each distinct floor/ceiling replaced by a temporary (recorded in
    ``steps`` in the order they must be computed)."""
    if not expr.args or not expr.has(sp.floor, sp.ceiling):
        return expr
    args = [_lift_floors(a, seen, steps) for a in expr.args]
    new = expr.func(*args) if any(a is not b for a, b in zip(args, expr.args,
                                                               strict=True)) else expr
    if isinstance(new, (sp.floor, sp.ceiling)):
        if new not in seen:
            seen[new] = sp.Dummy(f"t{len(seen)}", integer=True)
            steps.append((seen[new], new))
        return seen[new]
    return new


def _fraction(arg: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``arg`` as (numerator, denominator) of integer polynomials, denominator's sign > 0."""
    num, den = sp.fraction(sp.together(arg))
    if den.is_number and den < 0:
        num, den = -num, -den
    return sp.expand(num), den


#: functions whose every intermediate is bounded by the largest majorant of their arguments
_TAKE_MAX = (sp.Min, sp.Max, sp.Mod, sp.Abs, sp.Piecewise, sp.logic.boolalg.Boolean,
             sp.core.relational.Relational, sp.functions.elementary.piecewise.ExprCondPair)


class _NoBound(Exception):
    """No majorant is known for a function: every point takes the Python-int path."""


def _major(e: sp.Basic) -> sp.Expr:
    """An expression >= |e| and >= |every intermediate numpy computes for e|, given that
    symbols stand for values >= 1 (sizes, or bounds of temporaries, which are >= 1)."""
    if e.is_Integer:
        return sp.Integer(abs(int(e)))
    if e.is_Symbol:
        return e
    if e.is_Add:
        return sp.Add(*(_major(a) for a in e.args))
    if e.is_Mul:
        return sp.Mul(*(_major(a) for a in e.args))
    if e.is_Pow and e.exp.is_Integer and e.exp > 0:
        return _major(e.base) ** e.exp
    if isinstance(e, _TAKE_MAX):
        parts = [_major(a) for a in e.args if a not in (sp.true, sp.false)]
        return sp.Max(*parts) if parts else sp.Integer(1)
    raise _NoBound


@dataclass(frozen=True)
class _Program:
    """The compiled forms of one expression over positive integer sizes."""

    exact: Callable[..., tuple[Any, Any]]  # sizes -> (numerator, denominator)
    bound: Callable[..., Any] | None  # float sizes -> majorant of every intermediate; None:
    # no majorant is known, every point is computed in Python ints


def _source(name: str, args: list[str], lines: list[str], result: str) -> str:
    return f"def {name}({', '.join(args)}):\n" + "".join(f"    {x}\n" for x in lines) + \
        f"    return {result}\n"


def _exec(source: str, name: str) -> Callable[..., Any]:
    # the source is printed from our own SymPy expression, never from user text
    env: dict[str, Any] = {"numpy": np, "_nonzero": _nonzero}
    exec(source, env)
    fn: Callable[..., Any] = env[name]
    return fn


def _nonzero(den: Any) -> Any:
    """A denominator not proven positive: division by zero is an error, not a 0."""
    zero = np.asarray(den) == 0
    if zero.any():
        where = tuple(int(i) for i in np.argwhere(zero)[0])
        raise SymflopsError("a denominator of the expression is zero at some of the points",
                            values={"index": where} if where else None,
                            fix="check the sizes against the layers' conditions")
    return den


def _division(printer: _IntegerPrinter, step: sp.Expr) -> tuple[str, sp.Expr, sp.Expr]:
    """Integer code of one floor/ceiling, with its numerator and denominator."""
    num, den = _fraction(step.args[0])
    n, d = printer.doprint(num), printer.doprint(den)
    if not den.is_positive:
        d = f"_nonzero({d})"
    if den.is_Integer and den > 1 and not int(den) & (int(den) - 1):
        # floor(n / 2**k) is n >> k, for int64 and Python ints alike (an arithmetic shift
        # rounds down, negatives too), and several times faster than numpy's //
        d = f"{int(den).bit_length() - 1}"
        divide = ">>"
    else:
        divide = "//"
    code = f"(({n}) {divide} ({d}))" if isinstance(step, sp.floor) else \
        f"(-((-({n})) {divide} ({d})))"
    return code, num, den


def _bound_source(args: list[str], steps: list[tuple[sp.Dummy, sp.Expr, sp.Expr]],
                  top: tuple[sp.Expr, sp.Expr]) -> str:
    """Float code of the largest majorant of every intermediate (raises _NoBound).

    In it, a temporary's name stands for its bound, ``|p|/q + 1`` (>= 1, like sizes)."""
    printer = _Printer()
    lines, majors = [], []
    for t, num, den in steps:
        m = _major(num)
        div = int(den) if den.is_Integer else 1  # a symbolic denominator is >= 1
        lines.append(f"{printer.doprint(t)} = ({printer.doprint(m)}) / {div} + 1")
        majors += [m, _major(den)]
    majors += [_major(top[0]), _major(top[1])]
    out = printer.doprint(majors[0])
    for m in majors[1:]:
        if m != 1:
            out = f"numpy.maximum({out}, {printer.doprint(m)})"
    return _source("_bound", args, lines, out)


@functools.lru_cache(maxsize=1024)
def _compiled(expr: sp.Expr, syms: tuple[sp.Symbol, ...]) -> _Program:
    """Compile ``expr`` once (every symbol renamed, so no name can clash with numpy's)."""
    # sizes are >= 1, a symbol declared non-negative (a padding) >= 0 (positive=False
    # would tell SymPy it is 0)
    dummies = [sp.Dummy(f"a{i}", integer=True, positive=True) if _least(s) else
               sp.Dummy(f"a{i}", integer=True, nonnegative=True) for i, s in enumerate(syms)]
    renamed = expr.xreplace(dict(zip(syms, dummies, strict=True)))
    printer = _IntegerPrinter()
    args = [printer.doprint(d) for d in dummies]
    lifted_steps: list[tuple[sp.Dummy, sp.Expr]] = []
    lifted = _lift_floors(renamed, {}, lifted_steps)
    try:
        lines, steps = [], []
        for t, e in lifted_steps:
            code, num, den = _division(printer, e)
            lines.append(f"{printer.doprint(t)} = {code}")
            steps.append((t, num, den))
        top = _fraction(lifted)
        result = f"({printer.doprint(top[0])}, {printer.doprint(top[1])})"
        exact = _exec(_source("_exact", args, lines, result), "_exact")
    except (_NotInteger, TypeError, ValueError):
        return _Program(_by_sympy(renamed, dummies), None)
    try:
        bound = _exec(_bound_source(args, steps, top), "_bound")
    except _NoBound:
        return _Program(exact, None)
    return _Program(exact, bound)


def _by_sympy(expr: sp.Expr, dummies: list[sp.Dummy]) -> Callable[..., tuple[Any, Any]]:
    """Exact (numerator, denominator) point by point with SymPy: slow, but exact, for an
    expression with no integer program (a rational inside a Min, a float constant...)."""

    def exact(*arrays: Any) -> tuple[Any, Any]:
        arrs = np.broadcast_arrays(*[np.asarray(a, dtype=object) for a in arrays]) \
            if arrays else []
        shape = arrs[0].shape if arrs else ()
        num, den = np.empty(shape, dtype=object), np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            point = {d: sp.Integer(int(a[idx])) for d, a in zip(dummies, arrs, strict=True)}
            value = sp.sympify(expr.xreplace(point))
            if not value.is_Rational:
                raise SymflopsError("the expression has no exact value at a point",
                                    values={"value": value},
                                    fix="use integer and rational constants only")
            num[idx], den[idx] = int(value.p), int(value.q)
        return num, den

    return exact


# ------------------------------------------------------------------------------ sizes
def _bad_size(name: str, value: Any, index: tuple[int, ...] | None, least: int,
              detail: str = "") -> SymflopsError:
    values: dict[str, Any] = {name: _show(value)}
    if index:
        values["index"] = index
    return SymflopsError(f"size {name} must be an integer >= {least}{detail}", values=values,
                         fix=_SIZE_FIX)


def _show(value: Any) -> str:
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _least(sym: sp.Symbol) -> int:
    """The least value a symbol takes: 0 for one declared non-negative (a padding), else 1."""
    return 0 if sym.is_nonnegative and not sym.is_positive else 1


def _object_sizes(a: np.ndarray, least: int) -> tuple[np.ndarray, np.ndarray]:
    """(Python ints, mask of bad elements) of an object array."""
    flat = a.ravel()
    out = np.empty(flat.shape, dtype=object)
    bad = np.zeros(flat.shape, dtype=bool)
    for i, x in enumerate(flat):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            bad[i], out[i] = True, 0
        elif isinstance(x, numbers.Integral):
            out[i] = int(x)
            bad[i] = out[i] < least
        else:  # a float-like: a whole number up to 2**53, or refused
            f = float(x)
            ok = math.isfinite(f) and f.is_integer() and least <= f <= _FLOAT_EXACT
            out[i], bad[i] = (int(f) if ok else 0), not ok
    return out.reshape(a.shape), bad.reshape(a.shape)


def _one_size(name: str, value: Any, least: int) -> tuple[np.ndarray, str]:
    """``value`` as an int64 or object array of positive ints, and how it was given
    ("int", "object" or "float"); raises naming the first bad element."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        raise _bad_size(name, value, None, least, f", not {type(value).__name__}")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):  # ragged lists and the like
        raise _bad_size(name, value, None, least, ", not a ragged list") from None
    kind = a.dtype.kind
    given = {"i": "int", "u": "int", "f": "float", "O": "object"}.get(kind)
    if given is None:
        raise _bad_size(name, value, None, least, f", not of dtype {a.dtype}")
    if kind == "O":
        a, bad = _object_sizes(a, least)
    elif kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(a) & (a == np.floor(a)) & (a >= least) & (a <= _FLOAT_EXACT))
    else:
        bad = a < least
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        first = np.asarray(value, dtype=object)[index] if kind == "O" else a[index]
        detail = " (a float must be a whole number up to 2**53)" if kind == "f" else ""
        raise _bad_size(name, first, index, least, detail)
    if kind == "u" and a.size and int(a.max()) > _INT64_MAX:
        return a.astype(object), "object"
    if kind == "O" and a.ndim == 0 and int(a.item()) <= _INT64_MAX:
        return a.astype(np.int64), "int"  # a scalar (sympy Integer, ...) taken by value
    return (a if kind == "O" else a.astype(np.int64)), given


def check_sizes(syms: Sequence[sp.Symbol], values: Sequence[Any]
                ) -> tuple[list[np.ndarray], tuple[int, ...], str]:
    """Check that ``values`` are positive integer sizes of ``syms`` that broadcast.

    Returns (int64 or object arrays, the broadcast shape, "int" | "object" | "float":
    object when any is, else float when any is). Raises one
    :class:`~symflops.errors.SymflopsError` naming the first bad value.

    >>> from symflops.symbols import B, H
    >>> check_sizes((B, H), [1, [224.0, 225.0]])[1:]
    ((2,), 'float')
    >>> check_sizes((B, H), [1, [224, -3]])
    Traceback (most recent call last):
    ...
    symflops.errors.SymflopsError: size H must be an integer >= 1 (H=-3, index=(1,)); fix: \
give sizes as positive integers (ints, int arrays, or whole floats up to 2**53)
    """
    arrays, kinds = [], set()
    for s, v in zip(syms, values, strict=True):
        a, kind = _one_size(s.name, v, _least(s))
        arrays.append(a)
        kinds.add(kind)
    try:
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        raise SymflopsError(
            "the sizes' array shapes do not broadcast",
            values={s.name: a.shape for s, a in zip(syms, arrays, strict=True)},
            fix="give arrays of one length, or shapes (n, 1) and (1, m) for a grid") from None
    if math.prod(shape) > MAX_GRID_POINTS:
        raise SymflopsError(f"more than {MAX_GRID_POINTS:,} points at once",
                            values={"points": math.prod(shape), "shape": shape},
                            fix=f"evaluate in chunks of at most {MAX_GRID_POINTS:,} points")
    kind = "object" if "object" in kinds else "float" if "float" in kinds else "int"
    return arrays, shape, kind


# ------------------------------------------------------------------------------ running
def _point(syms: Sequence[sp.Symbol], arrays: Sequence[np.ndarray], shape: tuple[int, ...],
           flat: int) -> dict[str, Any]:
    """The sizes at one point of the broadcast grid (flat index)."""
    where = np.unravel_index(flat, shape) if shape else ()
    return {s.name: _show(np.broadcast_to(a, shape)[where])
            for s, a in zip(syms, arrays, strict=True)}


def _fraction_at(program: _Program, arrays: list[np.ndarray], shape: tuple[int, ...]
                 ) -> tuple[np.ndarray, Any]:
    """(numerator, denominator) at every point: int64 where proven safe, Python ints
    (object arrays) elsewhere."""
    if any(a.dtype == object for a in arrays):  # all of them in Python ints then
        return _exact_objects(program, arrays, shape)
    if program.bound is not None:
        if math.prod(shape) == 0:
            return program.exact(*arrays)
        with np.errstate(over="ignore", invalid="ignore"):
            # a majorant only grows with each size: at the largest of each it bounds every
            # point (one scalar evaluation, the common case); a size of 0 (a padding)
            # counts as 1, as every leaf of a majorant is >= 1
            top = program.bound(*[max(float(a.max()), 1.0) for a in arrays])
            if float(top) < _SAFE:
                return program.exact(*arrays)
            major = program.bound(*[np.maximum(a.astype(np.float64), 1.0) for a in arrays])
        safe = np.broadcast_to(np.asarray(major) < _SAFE, shape)
        if safe.all():
            return program.exact(*arrays)
    else:
        safe = np.zeros(shape, dtype=bool)
    # some points need Python ints: compute the two groups apart, join them as objects
    num = np.empty(shape, dtype=object)
    den = np.empty(shape, dtype=object)
    for group, cast in ((safe, np.int64), (~safe, object)):
        if group.any():
            n, d = program.exact(*[np.broadcast_to(a, shape)[group].astype(cast)
                                   for a in arrays])
            num[group], den[group] = n, d
    return num, den


def _exact_objects(program: _Program, arrays: list[np.ndarray], shape: tuple[int, ...]
                   ) -> tuple[Any, Any]:
    """(numerator, denominator) in Python ints, the sizes broadcast to full object arrays
    first: arithmetic on a 0-d object array gives a bare Python int, which ``numpy.maximum``
    (a Max) would then convert to int64 and overflow on (found by hypothesis: Max(2*y, y**3)
    at y = 2**31)."""
    full = shape or (1,)
    num, den = program.exact(*[np.broadcast_to(a, full).astype(object) for a in arrays])

    def fitted(x: Any) -> Any:
        if isinstance(x, (int, np.integer)):
            return x
        return np.broadcast_to(np.asarray(x, dtype=object), full).reshape(shape)
    return fitted(num), fitted(den)


def _quotient(num: Any, den: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(quotient, mask of points where the division leaves a remainder)."""
    num = np.broadcast_to(np.asarray(num), shape)
    if isinstance(den, (int, np.integer)) and den == 1:
        return num, np.zeros(shape, dtype=bool)
    if not isinstance(den, (int, np.integer)):  # (a constant one is positive)
        _nonzero(den)
    den = np.broadcast_to(np.asarray(den), shape)
    if num.dtype == object or den.dtype == object:
        q = np.asarray(num // den, dtype=object)  # (0-d object arithmetic gives Python ints)
        return q, np.asarray(num - q * den != 0, dtype=bool)
    q, r = np.divmod(num, den)
    return np.asarray(q), np.asarray(r != 0)


def compile_expr(expr: sp.Expr, syms: Sequence[sp.Symbol], *, what: str = "the value"
                 ) -> Callable[..., np.ndarray]:
    """A function of ``syms`` (scalars or numpy arrays, broadcast) computing ``expr``
    exactly at every point (see the module's contract); ``what`` names the quantity in
    errors. The compiled code is cached per expression, so sweeping many points
    compiles once.

    >>> import numpy as np
    >>> from symflops.symbols import B, H
    >>> f = compile_expr(2 * B * H**3, (B, H), what="flops")
    >>> f(np.array([1, 2]), 224).tolist()
    [22478848, 44957696]
    >>> f(np.array([1, 2], dtype=object), 2**40).tolist() == [2**121, 2**122]
    True
    """
    syms_t = tuple(syms)
    program = _compiled(sp.sympify(expr), syms_t)

    def run(*values: Any) -> np.ndarray:
        arrays, shape, given = check_sizes(syms_t, values)
        try:
            return _run(program, syms_t, arrays, shape, given, what)
        except MemoryError:
            raise SymflopsError(f"not enough memory to evaluate {what}",
                                values={"points": math.prod(shape)},
                                fix="evaluate fewer points at a time") from None

    return run


def _run(program: _Program, syms: tuple[sp.Symbol, ...], arrays: list[np.ndarray],
         shape: tuple[int, ...], given: str, what: str) -> np.ndarray:
    q, inexact = _quotient(*_fraction_at(program, arrays, shape), shape)
    if inexact.any():
        if given != "float":
            raise SymflopsError(f"{what} is not an integer at some of the points",
                                values=_point(syms, arrays, shape, int(np.argmax(inexact))),
                                fix="check that sizes divide as the layers assume (e.g. "
                                    "heads divides dim)")
        num, den = _fraction_at(program, [a.astype(object) for a in arrays], shape)
        exact = np.broadcast_to(np.asarray(num, dtype=object), shape) / \
            np.broadcast_to(np.asarray(den, dtype=object), shape)  # int / int: rounded once
        return np.asarray(exact, dtype=float).reshape(shape)
    if given == "object" or q.dtype != object:
        return np.array(q, dtype=q.dtype, copy=True)
    beyond = np.asarray((q > _INT64_MAX) | (q < _INT64_MIN), dtype=bool)
    if beyond.any():
        first = int(np.argmax(beyond))
        values = _point(syms, arrays, shape, first)
        values["max"] = f"{float(np.max(np.abs(q.astype(float)))):.3e}"
        raise ExceedsInt64(f"{what} exceeds int64 at some of the points", values=values,
                            fix="use smaller sizes, or (in Python) pass arrays with "
                                "dtype=object for exact Python integers")
    return q.astype(np.int64)


def compile_condition(cond: sp.Basic, syms: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function of ``syms`` giving a boolean array: where ``cond`` holds, decided exactly
    (a relation compares the sign of its exact difference with 0)."""
    syms_t = tuple(syms)
    if cond is sp.true or cond is sp.false:
        value = cond is sp.true
        return lambda *a: np.full(check_sizes(syms_t, a)[1], value)
    if isinstance(cond, (sp.And, sp.Or, sp.Not)):
        parts = [compile_condition(c, syms_t) for c in cond.args]
        kind = type(cond)

        def joined(*a: Any) -> np.ndarray:
            got = [p(*a) for p in parts]
            if kind is sp.Not:
                return ~got[0]
            join = np.logical_and if kind is sp.And else np.logical_or
            return np.asarray(join.reduce(got), dtype=bool)

        return joined
    if not isinstance(cond, sp.core.relational.Relational):
        raise SymflopsError("cannot evaluate this condition", values={"condition": cond})
    program = _compiled(sp.sympify(cond.lhs - cond.rhs), syms_t)
    tests: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        ">=": lambda d: d >= 0, ">": lambda d: d > 0, "<=": lambda d: d <= 0,
        "<": lambda d: d < 0, "==": lambda d: d == 0, "!=": lambda d: d != 0}
    test = tests[cond.rel_op]

    def holds(*values: Any) -> np.ndarray:
        arrays, shape, _ = check_sizes(syms_t, values)
        num, den = _fraction_at(program, arrays, shape)
        sign = _sign(np.broadcast_to(np.asarray(num), shape)) * \
            _sign(np.broadcast_to(np.asarray(den), shape))
        return np.asarray(test(sign), dtype=bool)

    return holds


def _sign(x: np.ndarray) -> np.ndarray:
    return np.asarray(x > 0, dtype=np.int8) - np.asarray(x < 0, dtype=np.int8)
