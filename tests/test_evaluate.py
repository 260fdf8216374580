"""``symflops.evaluate``: exact at every point (int64 where proven safe, Python ints
elsewhere), sizes checked, conditions decided exactly, no name clashes in generated code."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symflops import nn
from symflops.errors import SymflopsError
from symflops.evaluate import check_sizes, compile_condition, compile_expr
from symflops.symbols import B, H, I, O, T, W, symbol

BIG = 2**63 - 1


# ------------------------------------------------------------------- int64 safety
@pytest.mark.parametrize("expr, points", [
    # floor(2H/3) at H near 2**63: the numerator 2H leaves int64, the result ~ 2**62.4
    # fits: computed in Python ints at those points, returned as int64
    (sp.floor(2 * H / 3), [1, 5, BIG, BIG - 1, 2**62 + 7]),
    # ceiling((H + 1)/2) at H = 2**63 - 1: H + 1 = 2**63 is one past int64
    (sp.ceiling((H + 1) / 2), [BIG, 3, 4]),
    # H itself at the largest int64
    (H, [BIG, 1]),
    # 7 floor(H/7) - H + 6 (a difference of two large terms) stays in [0, 6]
    (7 * sp.floor(H / 7) - H + 6, [BIG, BIG - 3, 10]),
    # the AdaptiveAvgPool1d(7) numerators i*T for i < 7 and T ~ 2**61
    (nn.AdaptiveAvgPool1d(7).cost((1, 1, T)).flops.xreplace({T: H}),
     [2376883390464973312, 7, 2**60 + 3]),
], ids=["floor-numerator-beyond-int64", "ceiling-at-the-top", "identity-at-int64-max",
        "difference-of-large-terms", "adaptive-pool-of-the-issue"])
def test_results_that_fit_are_exact_int64(expr: sp.Expr, points: list[int]) -> None:
    got = compile_expr(expr, (H,))(np.array(points))
    assert got.dtype == np.int64
    assert got.tolist() == [int(expr.xreplace({H: p})) for p in points]


def test_results_beyond_int64_raise_naming_the_first_point() -> None:
    # 2 H W: at H = 2**40, W = 2**23 it is 2**64
    f = compile_expr(2 * H * W, (H, W), what="flops")
    with pytest.raises(SymflopsError) as info:
        f(np.array([3, 2**40, 2**41]), 2**23)
    text = str(info.value)
    assert "flops exceeds int64" in text and "H=1099511627776" in text and "W=8388608" in text
    assert "dtype=object" in (info.value.fix or "")
    # the same points as Python ints: exact, in an object array
    exact = f(np.array([3, 2**40, 2**41], dtype=object), 2**23)
    assert exact.dtype == object and exact.tolist() == [3 * 2**24, 2**64, 2**65]


def test_only_the_points_that_need_python_ints_take_them() -> None:
    # one huge point among many small ones: the result is int64 and every value exact
    hs = np.arange(1, 100_001, dtype=np.int64)
    hs[5] = BIG
    got = compile_expr(sp.floor(2 * H / 3) + 1, (H,))(hs)
    assert got.dtype == np.int64
    assert int(got[5]) == (2 * BIG) // 3 + 1
    assert np.array_equal(np.delete(got, 5), (2 * np.delete(hs, 5)) // 3 + 1)


def test_symbolic_denominator_divides_exactly() -> None:
    # params of grouped-query attention have dim/heads: integer at every valid point
    from symflops.symbols import dim, heads, kv_heads

    cost = nn.MultiheadAttention(dim, heads, kv_heads=kv_heads).cost((B, 4, dim))
    got = cost.evaluate("params", dim=np.array([64, 2**26]), heads=np.array([8, 2**10]),
                        kv_heads=np.array([2, 2**8]))
    assert got.dtype == np.int64
    assert got.tolist() == [int(cost.subs(dim=d, heads=h, kv_heads=k).params)
                            for d, h, k in ((64, 8, 2), (2**26, 2**10, 2**8))]


# ------------------------------------------------------------------- kinds of input
def test_whole_floats_are_integers_and_ratios_are_floats() -> None:
    f = compile_expr(2 * B * I * O, (B, I, O))
    got = f(np.array([1.0, 2.0]), 3.0, np.float32(5))
    assert got.dtype == np.int64 and got.tolist() == [30, 60]
    # a ratio: an error for int sizes, the exact quotient rounded once for float sizes
    ratio = compile_expr(H / (H + 1), (H,))
    with pytest.raises(SymflopsError, match="not an integer.*H=2"):
        ratio(np.array([2]))
    big = 2**52 + 1
    assert ratio(np.array([2.0, float(big)])).tolist() == [2 / 3, big / (big + 1)]


def test_object_and_python_ints() -> None:
    f = compile_expr(sp.floor(H**3 / 7), (H,))
    assert f(10**30).item() == 10**90 // 7  # a Python int beyond int64: exact
    assert f(np.array([10], dtype=object)).tolist() == [142]
    assert f(sp.Integer(10)).item() == 142 and f(np.int32(10)).item() == 142


def test_check_sizes_reports_shape_and_kind() -> None:
    arrays, shape, kind = check_sizes((B, H, W), [1, np.arange(1, 4)[:, None], [5.0, 6.0]])
    assert shape == (3, 2) and kind == "float"
    assert [a.dtype for a in arrays] == [np.int64] * 3
    padding = sp.Symbol("p", integer=True, nonnegative=True)
    assert check_sizes((padding,), [0])[0][0].item() == 0  # a padding may be 0
    with pytest.raises(SymflopsError, match="size p must be an integer >= 0"):
        check_sizes((padding,), [-1])


@pytest.mark.parametrize("name", ["sum", "exp", "pi", "e", "E", "floor", "numpy", "where",
                                  "lambda", "maximum", "a0", "t0", "_nonzero", "Dummy"])
def test_dims_named_like_numpy_or_generated_names(name: str) -> None:
    # floor(3x/2) + x**2 + Min(x, 5): at x = 7, 10 + 49 + 5 = 64
    x = symbol(name) if name.isidentifier() else sp.Symbol(name, positive=True, integer=True)
    f = compile_expr(sp.floor(3 * x / 2) + x**2 + sp.Min(x, 5), (x,))
    assert f(np.array([7, 1])).tolist() == [64, 1 + 1 + 1]


# ------------------------------------------------------------------- conditions
def test_conditions_are_decided_exactly() -> None:
    # H/2 - 1/2 > 0 holds for H >= 2; a floor-based test would say 0 > 0 at H = 2
    gt = compile_condition(sp.Gt(H / 2 - sp.Rational(1, 2), 0), (H,))
    assert gt(np.array([1, 2, 3])).tolist() == [False, True, True]
    # at int64's edge, H - (2**63 - 2) >= 1 needs no wrap either
    ge = compile_condition(sp.Ge(H - (BIG - 1), 1), (H,))
    assert ge(np.array([BIG, BIG - 1])).tolist() == [True, False]
    both = compile_condition(sp.And(sp.Ge(H, 3), sp.Eq(sp.Mod(W, H), 0)), (H, W))
    assert both(np.array([3, 3, 2]), np.array([9, 10, 4])).tolist() == [True, False, False]
    with pytest.raises(SymflopsError, match="size H"):
        gt(np.array([0]))


@pytest.mark.parametrize("expr, points, want", [
    # 2 Min(H/2, W): the rational sits inside Min, out of reach of the common
    # denominator: SymPy evaluates each point exactly (2 * 3/2 = 3, 2 * 2 = 4, 2 * 5 = 10)
    (2 * sp.Min(H / 2, W), [3, 4, 2**70], [3, 4, 10]),
    # a condition with a rational: H when H/2 > 3, else 2 H
    (sp.Piecewise((H, sp.Gt(H / 2, 3)), (2 * H, True)), [6, 7, 2**64], [12, 7, 2**64]),
], ids=["rational-inside-min", "rational-in-a-condition"])
def test_no_integer_program_is_still_exact(expr: sp.Expr, points: list[int],
                                           want: list[int]) -> None:
    got = compile_expr(expr, (H, W))(np.array(points, dtype=object), 5)
    assert got.tolist() == want == [int(expr.xreplace({H: p, W: 5})) for p in points]
    small = compile_expr(expr, (H, W))(np.array(points[:2]), 5)
    assert small.dtype == np.int64 and small.tolist() == want[:2]


def test_a_zero_denominator_is_an_error() -> None:
    # H / p with a padding-like p (may be 0): 4 / 2 = 2, and at p = 0 an error, not 0
    p = sp.Symbol("p", integer=True, nonnegative=True)
    for expr in (H / p, sp.floor(H / p) + 1):
        f = compile_expr(expr, (H, p))
        assert f(np.array([4, 6]), np.array([2, 3])).tolist() == [int(expr.subs({H: 4, p: 2}))] * 2
        with pytest.raises(SymflopsError, match=r"denominator .* zero.*index=\(1,\)"):
            f(np.array([4, 6]), np.array([2, 0]))


_X, _Y = symbol("x"), symbol("y")


@pytest.mark.parametrize("expr", [sp.Max(2 * _Y, _Y**3), sp.Max(-_Y**3 + _Y, sp.floor(_Y / 2)),
                                  sp.Min(_Y**3, 2**100 * _Y)])
def test_a_max_of_python_ints_beyond_int64_stays_exact(expr: sp.Expr) -> None:
    # found by hypothesis: on object inputs a scalar size made Max's numpy.maximum see two
    # bare Python ints (2**32 and 2**93) and convert them to int64 (OverflowError)
    y = 2**31
    want = int(expr.xreplace({_Y: y}))
    f = compile_expr(expr, (_X, _Y))
    assert f(np.array([1, 2], dtype=object), y).tolist() == [want, want]
