"""SymPy formulas compiled to JavaScript that computes them exactly in a browser.

Every value is a rational ``{n, d}`` of two BigInts (``d > 0``, reduced), so nothing is
ever a float: ``floor``, ``ceiling``, ``ceil_log2``, ``Mod``, ``Min``, ``Max``, ``Piecewise``
and powers with integer exponents (``2**ceil_log2(n)`` too) are computed exactly by
:data:`RUNTIME`. A function the compiler
does not know is refused with one :class:`~symflops.errors.SymflopsError` (never
approximated).

>>> import sympy as sp
>>> from symflops.symbols import H
>>> js_expr(sp.floor(H / 2) + 1)
'add(Q(1n), floor(mul(Q(1n, 2n), v["H"])))'
"""

from __future__ import annotations

import json

import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas.sorting import ceil_log2

__all__ = ["RUNTIME", "js_expr", "js_function"]

#: the exact rational arithmetic the compiled formulas call (``v`` maps a symbol's name
#: to a rational; sizes are integers, ``Q(224n)``)
RUNTIME = r"""
const gcd = (a, b) => { a = a < 0n ? -a : a; b = b < 0n ? -b : b;
  while (b) { [a, b] = [b, a % b]; } return a; };
function Q(n, d = 1n) {
  if (d === 0n) throw new Error("division by zero");
  if (d < 0n) { n = -n; d = -d; }
  const g = gcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}
const add = (...xs) => xs.reduce((a, b) => Q(a.n * b.d + b.n * a.d, a.d * b.d));
const mul = (...xs) => xs.reduce((a, b) => Q(a.n * b.n, a.d * b.d));
function pow(a, k) {
  if (k < 0n) { if (a.n === 0n) throw new Error("division by zero"); a = Q(a.d, a.n); k = -k; }
  return Q(a.n ** k, a.d ** k);
}
const fdiv = (n, d) => { const q = n / d; return (n % d !== 0n && n < 0n) ? q - 1n : q; };
const floor = a => Q(fdiv(a.n, a.d));
const ceil = a => Q(-fdiv(-a.n, a.d));
const cmp = (a, b) => { const s = a.n * b.d - b.n * a.d; return s > 0n ? 1 : s < 0n ? -1 : 0; };
function mod(a, b) {
  if (b.n === 0n) throw new Error("Mod by zero");
  const q = floor(Q(a.n * b.d, a.d * b.n));
  return add(a, mul(Q(-1n), b, q));
}
const abs = a => a.n < 0n ? Q(-a.n, a.d) : a;
const min = (...xs) => xs.reduce((a, b) => cmp(a, b) <= 0 ? a : b);
const max = (...xs) => xs.reduce((a, b) => cmp(a, b) >= 0 ? a : b);
const lt = (a, b) => cmp(a, b) < 0, le = (a, b) => cmp(a, b) <= 0;
const gt = (a, b) => cmp(a, b) > 0, ge = (a, b) => cmp(a, b) >= 0;
const eq = (a, b) => cmp(a, b) === 0, ne = (a, b) => cmp(a, b) !== 0;
const whole = a => { if (a.d !== 1n) throw new Error("an exponent is not an integer");
  return a.n; };
function clog2(a) {  // ceil(log2 n) of an integer n >= 1: the bits of n - 1
  if (a.d !== 1n || a.n < 1n) throw new Error("ceil(log2 n) needs an integer n >= 1");
  return Q(a.n === 1n ? 0n : BigInt((a.n - 1n).toString(2).length));
}
function pw(...pieces) {
  for (const [cond, value] of pieces) if (cond()) return value();
  throw new Error("no piece of a Piecewise holds");
}
"""

_RELATIONS = {sp.StrictLessThan: "lt", sp.LessThan: "le", sp.StrictGreaterThan: "gt",
              sp.GreaterThan: "ge", sp.Equality: "eq", sp.Unequality: "ne"}
_CALLS = {sp.floor: "floor", sp.ceiling: "ceil", sp.Mod: "mod", sp.Min: "min", sp.Max: "max",
          sp.Add: "add", sp.Mul: "mul", sp.Abs: "abs", ceil_log2: "clog2"}


def _rational(x: sp.Rational) -> str:
    p, q = int(x.p), int(x.q)
    return f"Q({p}n)" if q == 1 else f"Q({p}n, {q}n)"


def js_expr(expr: sp.Basic, what: str = "formula") -> str:
    """``expr`` as a JavaScript expression over ``v`` (name -> rational) with the
    :data:`RUNTIME` functions; ``what`` names the formula in an error."""
    memo: dict[sp.Basic, str] = {}

    def go(e: sp.Basic) -> str:
        found = memo.get(e)
        if found is not None:
            return found
        memo[e] = out = emit(e)
        return out

    def emit(e: sp.Basic) -> str:
        if e is sp.true or e is sp.false:
            return "true" if e is sp.true else "false"
        if isinstance(e, sp.Rational):
            return _rational(e)
        if isinstance(e, sp.Symbol):
            return f"v[{json.dumps(e.name)}]"
        if isinstance(e, sp.Pow):
            base, exp = e.args
            if exp.is_integer and not isinstance(exp, sp.Integer):  # 2**ceil_log2(n)
                return f"pow({go(base)}, whole({go(exp)}))"
            if not isinstance(exp, sp.Integer):
                raise SymflopsError("a power with a non-integer exponent has no exact value "
                                    "in the report", layer=what, values={"term": str(e)},
                                    fix="report formulas whose powers are integers")
            return f"pow({go(base)}, {int(exp)}n)"
        call = _CALLS.get(type(e))
        if call is not None:
            return f"{call}({', '.join(go(a) for a in e.args)})"
        relation = _RELATIONS.get(type(e))
        if relation is not None:
            return f"{relation}({go(e.args[0])}, {go(e.args[1])})"
        if isinstance(e, sp.And):
            return "(" + " && ".join(go(a) for a in e.args) + ")"
        if isinstance(e, sp.Or):
            return "(" + " || ".join(go(a) for a in e.args) + ")"
        if isinstance(e, sp.Not):
            return f"!({go(e.args[0])})"
        if isinstance(e, sp.Piecewise):
            pieces = ", ".join(f"[() => {go(c)}, () => {go(x)}]" for x, c in e.args)
            return f"pw({pieces})"
        raise SymflopsError(f"the report cannot compute {type(e).__name__} exactly in the "
                            "browser", layer=what, values={"term": str(e)},
                            fix="report formulas built of +, *, integer powers, floor, "
                                "ceiling, ceil_log2, Mod, Min, Max, Abs and Piecewise")

    return go(expr)


def js_function(expr: sp.Basic, what: str = "formula") -> str:
    """``expr`` as a JavaScript arrow function of ``v``."""
    return f"(v) => {js_expr(expr, what)}"
