"""Complex arithmetic and ``torch.polar`` in the exact convention: each complex op's real
operations counted on a literal implementation with counting scalars (whose values equal
Python's complex arithmetic), and a traced rotary embedding in the complex form (as
DeepSeek-V2's) symbolic in its sizes with those counts."""

from __future__ import annotations

import cmath
import itertools

import pytest
import sympy as sp

from symflops.formulas.pointwise import COMPLEX_RATES, POLAR_RATE

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.symbols import B, N  # noqa: E402


class Counted:
    """A real number that counts the arithmetic done with it (one shared tally)."""

    ops = 0

    def __init__(self, v: float) -> None:
        self.v = v

    def _op(self, other: object, f) -> Counted:
        Counted.ops += 1
        return Counted(f(self.v, other.v if isinstance(other, Counted) else other))

    def __add__(self, o): return self._op(o, lambda a, b: a + b)
    def __sub__(self, o): return self._op(o, lambda a, b: a - b)
    def __mul__(self, o): return self._op(o, lambda a, b: a * b)
    def __truediv__(self, o): return self._op(o, lambda a, b: a / b)


def _literal(op: str, x: tuple, y: tuple | Counted) -> tuple:
    """Textbook complex ``op`` on (re, im) pairs; ``y`` a real Counted for mixed ops."""
    a, b = x
    if isinstance(y, Counted):
        return {"add": lambda: (a + y, b), "sub": lambda: (a - y, b),
                "mul": lambda: (a * y, b * y), "div": lambda: (a / y, b / y)}[op]()
    c, d = y
    if op in ("add", "sub"):
        return (a + c, b + d) if op == "add" else (a - c, b - d)
    if op == "mul":
        return (a * c - b * d, a * d + b * c)
    den = c * c + d * d
    return ((a * c + b * d) / den, (b * c - a * d) / den)


@pytest.mark.parametrize("op,both", list(itertools.product(("add", "sub", "mul", "div"),
                                                           (True, False))),
                         ids=lambda v: str(v))
def test_complex_rates_count_a_literal_implementation(op: str, both: bool) -> None:
    x, y = 1.5 - 2.0j, (0.25 + 3.0j) if both else 0.75
    fx = (Counted(x.real), Counted(x.imag))
    fy = (Counted(y.real), Counted(y.imag)) if both else Counted(y)
    Counted.ops = 0
    re, im = _literal(op, fx, fy)
    assert Counted.ops == COMPLEX_RATES[(op, both)]
    expected = {"add": x + y, "sub": x - y, "mul": x * y, "div": x / y}[op]
    assert cmath.isclose(complex(re.v, im.v), expected)


def test_polar_rate_counts_its_formula() -> None:
    # polar(r, t) = r cos t + i r sin t: cos, sin and two multiplies
    r, t = 2.0, 0.3
    calls = [0]

    def counted(f):
        def g(v):
            calls[0] += 1
            return Counted(f(v.v))
        return g
    Counted.ops = 0
    re, im = Counted(r) * counted(cmath.cos)(Counted(t)), Counted(r) * counted(cmath.sin)(
        Counted(t))
    assert Counted.ops + calls[0] == POLAR_RATE
    assert cmath.isclose(complex(re.v, im.v), cmath.rect(r, t))


class ComplexRotary(torch.nn.Module):
    """DeepSeek-V2's rotary embedding in transformers: angles to unit complex numbers
    (``torch.polar``), the pairs of ``x`` as complex numbers times them."""

    def forward(self, x):  # x: (B, N, 8)
        angles = torch.arange(x.shape[1], dtype=torch.float32)[:, None] * \
            torch.arange(1, 5, dtype=torch.float32)[None]                    # (N, 4)
        freqs = torch.polar(torch.ones_like(angles), angles)                 # (N, 4) complex
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, N, 4)
        return torch.view_as_real(xc * freqs).flatten(2)


def test_complex_rotary_traces_symbolic_with_real_operation_counts() -> None:
    t = sf.trace(ComplexRotary(), "B N 8", warn=False)
    assert not t.report.fixed and not t.report.unknown
    # the angles: N + 4 arange values... counted as torch runs them: the outer product
    # (4 N multiplies), polar (4 per element, 4 N), the complex multiply (6 per element of
    # B N 4); arange and views are free
    assert sp.expand(t.flops) == 4 * N + POLAR_RATE * 4 * N + 6 * 4 * B * N
    for b, n in ((1, 3), (2, 17)):
        assert t.subs(B=b, N=n).flops == _literal_rotary_count(b, n)


def _literal_rotary_count(b: int, n: int) -> int:
    """The same computation on Python scalars, every real operation counted."""
    Counted.ops = 0
    trig = 0
    freqs = {}
    for i in range(n):
        for k in range(1, 5):
            angle = Counted(float(i)) * Counted(float(k))
            trig += 2  # cos and sin
            one = Counted(1.0)
            freqs[i, k] = (one * Counted(cmath.cos(angle.v).real),
                           one * Counted(cmath.sin(angle.v).real))
    for _ in range(b):
        for i in range(n):
            for k in range(1, 5):
                _literal("mul", (Counted(0.5), Counted(-1.0)), freqs[i, k])
    return Counted.ops + trig
