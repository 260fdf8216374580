"""Compile SymPy cost expressions into vectorized numpy functions, once.

Integer inputs take an exact path: the expression is written over a common
denominator and ``floor(p/q)`` becomes integer division ``p // q``, so results are
exact int64 (or Python ints in object arrays) rather than rounded floats.

>>> import numpy as np, sympy as sp
>>> from symflops.symbols import H
>>> f = compile_expr(sp.floor((H - 1) / 2) + 1, (H,))
>>> f(np.array([223, 224, 225])).tolist()
[112, 112, 113]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from symflops.errors import SymflopsError

__all__ = ["compile_expr", "compile_condition"]

_INT64_SAFE = 2.0**62


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
    """Prints integer-valued expressions with exact integer division for floors."""

    def _fraction(self, arg: sp.Expr) -> tuple[str, str]:
        num, den = sp.fraction(sp.together(arg))
        return self._print(sp.expand(num)), self._print(den)

    def _print_floor(self, expr: sp.floor) -> str:
        num, den = self._fraction(expr.args[0])
        return f"(({num}) // ({den}))"

    def _print_ceiling(self, expr: sp.ceiling) -> str:
        num, den = self._fraction(expr.args[0])
        return f"(-((-({num})) // ({den})))"

    def _print_Rational(self, expr: sp.Rational) -> str:
        raise _NotInteger

    def _print_Float(self, expr: sp.Float) -> str:
        raise _NotInteger


class _NotInteger(Exception):
    pass


def _exact_quotient(num: Any, den: Any) -> Any:
    """``num / den`` for integer arrays known to divide; raises if they do not."""
    q, r = num // den, num % den  # (np.divmod does not take object arrays)
    if np.any(r != 0):
        raise SymflopsError(
            "the expression is not an integer at some of the points",
            values={"first remainder": np.asarray(r).ravel()[np.argmax(np.asarray(r).ravel()
                                                                          != 0)]},
            fix="check that sizes divide as the layers assume (e.g. heads divides dim), or "
                "pass float arrays")
    return q


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


@functools.lru_cache(maxsize=1024)
def _compiled(expr: sp.Expr, syms: tuple[sp.Symbol, ...]
              ) -> tuple[Callable[..., Any], Callable[..., Any] | None, Callable[..., Any]]:
    """(float function, exact integer function or None, float bound of the integer
    path's largest intermediate: the numerator over the common denominator)."""
    as_float = sp.lambdify(syms, expr, modules="numpy", printer=_Printer)
    num0, den0 = sp.fraction(sp.together(expr))
    as_bound = as_float if den0 == 1 else sp.lambdify(syms, num0, modules="numpy",
                                                        printer=_Printer)
    as_int: Callable[..., Any] | None
    try:
        printer = _IntegerPrinter()
        dummies = [sp.Dummy(f"a{i}", integer=True) for i in range(len(syms))]
        rename = dict(zip(syms, dummies, strict=True))
        # every floor/ceiling becomes a temporary computed once, innermost first, so
        # nested floors of deep strided networks cost one integer division each
        steps: list[tuple[sp.Dummy, sp.Expr]] = []
        lifted = _lift_floors(expr.xreplace(rename), {}, steps)
        num, den = sp.fraction(sp.together(lifted))
        lines = [f"    {printer.doprint(t)} = {printer.doprint(e)}" for t, e in steps]
        top = printer.doprint(sp.expand(num) if den != 1 else num)
        if den.is_Integer:
            body = f"(({top}) // {int(den)})"
        else:  # a symbolic denominator (dim/heads...): divide exactly, or say why not
            body = f"_exact_quotient({top}, {printer.doprint(sp.expand(den))})"
        args = ", ".join(printer.doprint(d) for d in dummies)
        env: dict[str, Any] = {"numpy": np, "_exact_quotient": _exact_quotient}
        # the source is printed from our own SymPy expression, never from user text
        source = f"def _f({args}):\n" + "".join(line + "\n" for line in lines) + \
            f"    return {body}\n"
        exec(source, env)
        as_int = env["_f"]
    except (_NotInteger, TypeError, ValueError):
        as_int = None
    return as_float, as_int, as_bound


def compile_expr(expr: sp.Expr, syms: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function of ``syms`` (numpy arrays, broadcast) computing ``expr``.

    The compiled code is cached per expression, so sweeping many points compiles once.
    Integer (or object) arrays give exact integers; float arrays give floats.
    """
    syms_t = tuple(syms)
    as_float, as_int, as_bound = _compiled(sp.sympify(expr), syms_t)

    def run(*arrays: Any) -> np.ndarray:
        arrs = [np.asarray(a) for a in arrays]
        shape = np.broadcast_shapes(*[a.shape for a in arrs])
        integer = all(a.dtype.kind in "iu" or a.dtype == object for a in arrs)
        if integer and as_int is not None:
            if any(a.dtype == object for a in arrs):
                return np.broadcast_to(np.asarray(as_int(*arrs)), shape).copy()
            approx = np.asarray(as_bound(*[a.astype(np.float64) for a in arrs]), dtype=float)
            if np.any(np.abs(approx) > _INT64_SAFE):
                raise SymflopsError(
                    "result exceeds int64 (or an intermediate of its exact computation does)",
                    values={"max": f"{np.max(np.abs(approx)):.3e}"},
                    fix="pass arrays with dtype=object for arbitrary-precision integers")
            out = as_int(*[a.astype(np.int64) for a in arrs])
            return np.broadcast_to(np.asarray(out, dtype=np.int64), shape).copy()
        out = as_float(*[a.astype(np.float64) if a.dtype.kind in "iub" else a for a in arrs])
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()

    return run


def compile_condition(cond: sp.Basic, syms: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function of ``syms`` giving a boolean array: where ``cond`` (a relation) holds."""
    if not isinstance(cond, sp.core.relational.Relational):
        fn = sp.lambdify(tuple(syms), cond, modules="numpy", printer=_Printer)
        return lambda *a: np.asarray(fn(*a), dtype=bool)
    diff = compile_expr(cond.lhs - cond.rhs, syms)
    ops: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        ">=": lambda d: d >= 0, ">": lambda d: d > 0, "<=": lambda d: d <= 0,
        "<": lambda d: d < 0, "==": lambda d: d == 0, "!=": lambda d: d != 0}
    test = ops[cond.rel_op]
    return lambda *a: np.asarray(test(diff(*a)), dtype=bool)
