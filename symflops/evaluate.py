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

__all__ = ["compile_expr"]

_INT64_SAFE = 2.0**62


class _IntegerPrinter(NumPyPrinter):
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


@functools.lru_cache(maxsize=1024)
def _compiled(expr: sp.Expr, syms: tuple[sp.Symbol, ...]) -> tuple[Callable[..., Any],
                                                                  Callable[..., Any] | None]:
    as_float = sp.lambdify(syms, expr, modules="numpy")
    as_int: Callable[..., Any] | None
    try:
        num, den = sp.fraction(sp.together(expr))
        if not den.is_Integer:
            raise _NotInteger
        printer = _IntegerPrinter()
        dummies = [sp.Dummy(f"a{i}", integer=True) for i in range(len(syms))]
        top = sp.expand(num).xreplace(dict(zip(syms, dummies, strict=True)))
        body = f"(({printer.doprint(top)}) // {int(den)})"
        args = ", ".join(printer.doprint(d) for d in dummies)
        env: dict[str, Any] = {"numpy": np}
        # the source is printed from our own SymPy expression, never from user text
        exec(f"def _f({args}):\n    return {body}\n", env)
        as_int = env["_f"]
    except (_NotInteger, TypeError, ValueError):
        as_int = None
    return as_float, as_int


def compile_expr(expr: sp.Expr, syms: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function of ``syms`` (numpy arrays, broadcast) computing ``expr``.

    The compiled code is cached per expression, so sweeping many points compiles once.
    """
    syms_t = tuple(syms)
    as_float, as_int = _compiled(sp.sympify(expr), syms_t)

    def run(*arrays: Any) -> np.ndarray:
        arrs = [np.asarray(a) for a in arrays]
        integer = all(a.dtype.kind in "iu" or a.dtype == object for a in arrs)
        if integer and as_int is not None:
            if any(a.dtype == object for a in arrs):
                return np.asarray(as_int(*arrs))
            approx = np.asarray(as_float(*[a.astype(np.float64) for a in arrs]), dtype=float)
            if np.any(np.abs(approx) > _INT64_SAFE):
                raise SymflopsError(
                    "result exceeds int64", values={"max": f"{np.max(np.abs(approx)):.3e}"},
                    fix="pass arrays with dtype=object for arbitrary-precision integers")
            out = as_int(*[a.astype(np.int64) for a in arrs])
            return np.broadcast_to(np.asarray(out, dtype=np.int64),
                                   np.broadcast_shapes(*[a.shape for a in arrs])).copy()
        out = as_float(*[a.astype(np.float64) if a.dtype.kind in "iub" else a for a in arrs])
        return np.broadcast_to(np.asarray(out, dtype=float),
                               np.broadcast_shapes(*[a.shape for a in arrs])).copy()

    return run
