"""Property tests (hypothesis).

1. ``cost.subs(values)`` equals the formula functions of ``symflops.formulas`` called on
   plain Python ints (the symbolic path and the integer path agree).
2. ``evaluate`` on numpy arrays equals ``subs`` point by point, floors from strided conv
   and pool included, on the exact int64 path and the float path; ``simplify`` changes no
   value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symflops import formulas as F
from symflops import nn
from symflops.errors import SymflopsError
from symflops.symbols import B, C, C_in, C_out, H, I, K, N, O, W, dim, heads

small = st.integers(min_value=1, max_value=9)
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _ints(work: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in work.items() if int(v) != 0}


# --------------------------------------------------------------- 1. subs == int formulas
@SETTINGS
@given(b=small, cin=small, cout=small, k=st.integers(1, 5), h=st.integers(1, 20),
       w=st.integers(1, 20), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       bias=st.booleans())
def test_conv_subs_equals_int_formula(b: int, cin: int, cout: int, k: int, h: int, w: int,
                                      s: int, p: int, d: int, bias: bool) -> None:
    ho = F.conv_output_size(h, k, s, p, d)
    wo = F.conv_output_size(w, k, s, p, d)
    assume(ho >= 1 and wo >= 1)
    cost = nn.Conv2d(C_in, C_out, K, stride=s, padding=p, dilation=d, bias=bias).cost(
        (B, C_in, H, W)).subs(B=b, C_in=cin, C_out=cout, K=k, H=h, W=w)
    assert _ints(cost.work) == _ints(F.conv_work(b, cin, cout, (k, k), (ho, wo), 1, bias))
    assert int(cost.params) == F.conv_params(cin, cout, (k, k), 1, bias)
    assert tuple(cost.output_shape) == (b, cout, ho, wo)


@SETTINGS
@given(b=small, g=st.integers(1, 3), cin_g=st.integers(1, 3), cout_g=st.integers(1, 3),
       k=st.integers(1, 4), h=st.integers(1, 8), s=st.integers(1, 3), d=st.integers(1, 3),
       p=st.integers(0, 2), op=st.integers(0, 2))
def test_conv_transpose_subs_equals_int_formula(b: int, g: int, cin_g: int, cout_g: int,
                                                k: int, h: int, s: int, d: int, p: int,
                                                op: int) -> None:
    assume(op < max(s, d))
    cin, cout = g * cin_g, g * cout_g
    ho = F.conv_transpose_output_size(h, k, s, p, op, d)
    assume(ho >= 1)
    layer = nn.ConvTranspose1d(cin, cout, k, stride=s, padding=p, output_padding=op, groups=g,
                               dilation=d)
    symbolic = layer.cost((B, cin, H))
    concrete = layer.cost((b, cin, h))
    want = _ints(F.conv_transpose_work(b, cin, cout, (k,), (h,), (ho,), (s,), (d,), g))
    assert _ints(concrete.work) == want
    assert _ints(symbolic.subs(B=b, H=h).work) == want
    assert tuple(symbolic.subs(B=b, H=h).output_shape) == (b, cout, ho)
    # the covered positions by enumeration
    covered = len({i * s + j * d for i in range(h) for j in range(k)})
    assert F.conv_transpose_covered(h, k, s, d) == covered


@SETTINGS
@given(b=small, c=small, k=st.integers(1, 4), h=st.integers(1, 20), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 2), ceil=st.booleans(),
       kind=st.sampled_from(["max", "avg"]))
def test_pool_subs_equals_int_formula(b: int, c: int, k: int, h: int, s: int, p: int, d: int,
                                      ceil: bool, kind: str) -> None:
    assume(2 * p <= k)
    out = F.pool_output_size(h, k, s, p, d, ceil)
    assume(out >= 1)
    layer = (nn.MaxPool1d(k, s, p, d, ceil_mode=ceil) if kind == "max"
             else nn.AvgPool1d(k, s, p, ceil_mode=ceil))
    if kind == "avg":
        d = 1
        out = F.pool_output_size(h, k, s, p, 1, ceil)
        assume(out >= 1)
    cost = layer.cost((B, C, H)).subs(B=b, C=c, H=h)
    elements = F.pool_window_total(h, k, s, p, d, ceil)
    want = b * c * (elements - out if kind == "max" else elements)
    assert int(cost.work.get("pooling", 0)) == want
    assert tuple(cost.output_shape) == (b, c, out)
    if not ceil:
        fn = F.max_pool_work if kind == "max" else F.avg_pool_work
        assert _ints(cost.work) == _ints(fn(b * c * out, k))


@SETTINGS
@given(b=small, c=small, h=st.integers(1, 30), w=st.integers(1, 30), oh=st.integers(1, 6),
       ow=st.integers(1, 6), kind=st.sampled_from(["avg", "max"]))
def test_adaptive_pool_subs_equals_int_formula(b: int, c: int, h: int, w: int, oh: int,
                                               ow: int, kind: str) -> None:
    layer = nn.AdaptiveAvgPool2d((oh, ow)) if kind == "avg" else nn.AdaptiveMaxPool2d((oh, ow))
    cost = layer.cost((B, C, H, W)).subs(B=b, C=c, H=h, W=w)
    fn = F.adaptive_avg_pool_work if kind == "avg" else F.adaptive_max_pool_work
    assert _ints(cost.work) == _ints(fn(b * c, (h, w), (oh, ow)))


@SETTINGS
@given(b=small, n=small, i=small, o=small, bias=st.booleans())
def test_linear_subs_equals_int_formula(b: int, n: int, i: int, o: int, bias: bool) -> None:
    cost = nn.Linear(I, O, bias=bias).cost((B, N, I)).subs(B=b, N=n, I=i, O=o)
    assert _ints(cost.work) == _ints(F.linear_work(b * n, i, o, bias))
    assert int(cost.params) == F.linear_params(i, o, bias)


@SETTINGS
@given(b=small, n=small, hd=st.integers(1, 4), h=st.integers(1, 4), causal=st.booleans(),
       skip=st.booleans())
def test_attention_subs_equals_int_formula(b: int, n: int, hd: int, h: int, causal: bool,
                                           skip: bool) -> None:
    skip = skip and causal
    cost = nn.MultiheadAttention(dim, heads, causal=causal, skip_masked=skip).cost(
        (B, N, dim)).subs(B=b, N=n, dim=h * hd, heads=h)
    parts = F.attention_parts(b, h, n, n, hd, causal=causal, skip_masked=skip)
    for name, work in parts.items():
        assert _ints(cost[name].work) == _ints(work), name
    assert _ints(cost["qkv"].work) == _ints(F.linear_work(b * n, h * hd, 3 * h * hd))


@SETTINGS
@given(rows=small, n=small, affine=st.booleans(), bias=st.booleans(), g=st.integers(1, 3))
def test_norm_subs_equals_int_formula(rows: int, n: int, affine: bool, bias: bool,
                                      g: int) -> None:
    ln = nn.LayerNorm(dim, elementwise_affine=affine, bias=bias).cost((B, dim))
    assert _ints(ln.subs(B=rows, dim=n).work) == _ints(
        F.layer_norm_work(rows, n, affine=affine, bias=bias))
    gn = nn.GroupNorm(g, C, affine=affine).cost((B, C, H))
    assert _ints(gn.subs(B=rows, C=g * n, H=3).work) == _ints(
        F.group_norm_work(rows, g, g * n, 3, affine=affine))
    rms = nn.RMSNorm(dim, elementwise_affine=affine).cost((B, dim))
    assert _ints(rms.subs(B=rows, dim=n).work) == _ints(F.rms_norm_work(rows, n, affine=affine))


# --------------------------------------------------------------- 2. evaluate == subs
def _network() -> nn.Layer:
    """Floors (strided conv and pool), a ceil_mode Piecewise, a transposed conv's Min."""
    return nn.Sequential(
        nn.Conv2d(3, C, K, stride=2, padding=1), nn.BatchNorm2d(C), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(C, C, 3, stride=2, padding=1, groups=C),
        nn.ConvTranspose2d(C, 4, K, stride=2),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 10))


NET = _network().cost((B, 3, H, W))
SIMPLE = NET.simplify()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 3),
                                 st.integers(8, 200), st.integers(8, 200)),
                       min_size=1, max_size=6))
def test_evaluate_equals_subs_pointwise(points: list[tuple[int, ...]]) -> None:
    arrays = {name: np.array([p[i] for p in points])
              for i, name in enumerate(("B", "C", "K", "H", "W"))}
    concrete = [NET.subs(B=b, C=c, K=k, H=h, W=w) for b, c, k, h, w in points]
    for quantity in ("flops", "macs", "params"):
        exact = NET.evaluate(quantity, **arrays)
        assert exact.dtype == np.int64
        floats = NET.evaluate(quantity, **{k: v.astype(float) for k, v in arrays.items()})
        simplified = SIMPLE.evaluate(quantity, **arrays)
        for j, at_point in enumerate(concrete):
            want = int(at_point.quantity(quantity))
            assert int(exact[j]) == want
            assert int(simplified[j]) == want
            assert floats[j] == pytest.approx(want, rel=1e-12)


@SETTINGS
@given(n=st.integers(1, 300), h=st.integers(1, 5), hd=st.integers(1, 5))
def test_evaluate_rational_coefficients_exact(n: int, h: int, hd: int) -> None:
    """Causal skip_masked attention has N(N+1)/2: the int path divides exactly."""
    cost = nn.MultiheadAttention(dim, heads, causal=True, skip_masked=True).cost((B, N, dim))
    got = cost.evaluate(B=np.array([1, 2]), N=n, dim=h * hd, heads=h)
    for j, b in enumerate((1, 2)):
        assert int(got[j]) == int(cost.subs(B=b, N=n, dim=h * hd, heads=h).flops)


def test_evaluate_int64_exact_where_floats_round() -> None:
    # 2 * B * I * O with B, I, O near 2^20: about 2^61, beyond float64's 2^53 exact range
    cost = nn.Linear(I, O).cost((B, I))
    b, i, o = 2**20 + 1, 2**20 + 3, 2**19 + 5
    want = 2 * b * i * o
    got = cost.evaluate(B=np.array([b]), I=np.array([i]), O=np.array([o]))
    assert got.dtype == np.int64 and int(got[0]) == want == int(cost.subs(B=b, I=i, O=o).flops)
    assert float(np.float64(want)) != want  # a float evaluation could not have been exact


def test_evaluate_beyond_int64_needs_object_arrays() -> None:
    cost = nn.Linear(I, O).cost((B, I))
    big = 2**40
    with pytest.raises(SymflopsError, match="int64"):
        cost.evaluate(B=np.array([big]), I=big, O=big)
    got = cost.evaluate(B=np.array([big], dtype=object), I=big, O=big)
    assert int(got[0]) == 2 * big**3 == int(cost.subs(B=big, I=big, O=big).flops)


@SETTINGS
@given(h=st.integers(1, 400), w=st.integers(1, 400), k=st.integers(1, 7),
       s=st.integers(1, 4))
def test_simplify_keeps_floors_exact(h: int, w: int, k: int, s: int) -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, k, stride=s, padding=k // 2),
                        nn.Conv2d(8, 8, 3, stride=2), nn.MaxPool2d(2))
    cost = net.cost((B, 3, H, W))
    assume(all(bool(c.xreplace({H: h, W: w})) for _, n in cost.walk() for c in n.validity))
    point = {B: 1, H: h, W: w}
    simple = cost.simplify()
    for q in ("flops", "params"):
        assert sp.sympify(simple.quantity(q)).xreplace(point) == \
            sp.sympify(cost.quantity(q)).xreplace(point)


@SETTINGS
@given(b=small, g=st.integers(1, 3), c=st.integers(1, 4), n=small, hd=st.integers(1, 4),
       h=st.integers(1, 4), causal=st.booleans(), skip=st.booleans(), k=st.integers(1, 3),
       s=st.integers(1, 3), d=st.integers(1, 3))
def test_formulas_on_ints_return_ints(b: int, g: int, c: int, n: int, hd: int, h: int,
                                      causal: bool, skip: bool, k: int, s: int,
                                      d: int) -> None:
    """The integer path stays in Python ints: no floats, no SymPy numbers."""
    works = [
        F.conv_work(b, g * c, g * c, (k, k), (n, n), g),
        F.conv_transpose_work(b, g * c, g * c, (k,), (n,), (n * s + k,), (s,), (d,), g),
        F.linear_work(b, c, n), F.matmul_work(b, c, n, k),
        F.batch_norm_work(b * g * c * n, g * c, training=True),
        F.batch_norm_work(b * c * n, c), F.layer_norm_work(b, n), F.rms_norm_work(b, n),
        F.group_norm_work(b, g, g * c, n),
        F.max_pool_work(b * n, k * k), F.avg_pool_work(b * n, k * k),
        F.adaptive_avg_pool_work(b * c, (n + 3, n), (3, 2)),
        F.adaptive_max_pool_work(b * c, (n + 3,), (2,)),
        F.softmax_work(b, n), F.log_softmax_work(b, n), F.activation_work("gelu", n),
        F.elementwise_work(n, 2),
        F.attention_work(b, h, n, n, hd, causal=causal, skip_masked=skip and causal),
    ]
    for w in works:
        for kind, v in w.items():
            assert type(v) is int, (kind, v, type(v))
    sizes = [F.conv_output_size(n + k, k, s, 1, d), F.pool_output_size(n + k, k, s, 0, 1, True),
             F.pool_window_total(n + k, k, s, 0, d, True), F.conv_transpose_covered(n, k, s, d),
             F.conv_params(g * c, g * c, (k, k), g), F.linear_params(c, n), F.norm_params(n)]
    for v in sizes:
        assert type(v) is int, (v, type(v))


def test_evaluate_guards_intermediates_of_the_exact_path() -> None:
    """GQA parameters over a symbolic heads: the exact path divides a numerator ``heads``
    times larger than the result; when that numerator leaves int64 those points are
    computed in Python ints (never wrapped, never refused) and the result is exact int64,
    as object arrays give it."""
    from symflops.symbols import kv_heads

    cost = nn.MultiheadAttention(dim, heads, kv_heads=kv_heads).cost((B, N, dim))
    d, h, kv = 2**26, 2**10, 2**8
    want = int(cost.subs(dim=d, heads=h, kv_heads=kv).params)
    assert want < 2**62  # the result itself fits
    fits = cost.evaluate("params", dim=np.array([d]), heads=h, kv_heads=kv)
    assert fits.dtype == np.int64 and int(fits[0]) == want
    got = cost.evaluate("params", dim=np.array([d], dtype=object), heads=h, kv_heads=kv)
    assert int(got[0]) == want
    small = cost.evaluate("params", dim=np.array([64, 128]), heads=8, kv_heads=2)
    assert small.dtype == np.int64
    assert small.tolist() == [int(cost.subs(dim=x, heads=8, kv_heads=2).params)
                              for x in (64, 128)]
