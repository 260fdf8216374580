"""Property tests (hypothesis).

1. ``cost.subs(values)`` equals the formula functions of ``symflops.formulas`` called on
   plain Python ints (the symbolic path and the integer path agree); for every layer of
   the registry (``nn.LAYERS``, each class's ``example``: a new layer needs no edit here)
   the symbolic cost substituted equals the cost at those sizes, or both are an error.
2. ``evaluate`` on numpy arrays equals ``subs`` point by point, floors from strided conv
   and pool included, on the exact int64 path and the float path; ``simplify`` changes no
   value.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symflops import formulas, nn
from symflops.errors import SymflopsError
from symflops.symbols import B, C, C_in, C_out, H, I, K, N, O, W, dim, heads, symbol

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
    ho = formulas.conv.conv_output_size(h, k, s, p, d)
    wo = formulas.conv.conv_output_size(w, k, s, p, d)
    assume(ho >= 1 and wo >= 1)
    cost = nn.Conv2d(C_in, C_out, K, stride=s, padding=p, dilation=d, bias=bias).cost(
        (B, C_in, H, W)).subs(B=b, C_in=cin, C_out=cout, K=k, H=h, W=w)
    assert _ints(cost.work) == _ints(formulas.conv.conv_work(b, cin, cout, (k, k), (ho, wo), 1,
                                                             bias))
    assert int(cost.params) == formulas.conv.conv_params(cin, cout, (k, k), 1, bias)
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
    ho = formulas.conv.conv_transpose_output_size(h, k, s, p, op, d)
    assume(ho >= 1)
    layer = nn.ConvTranspose1d(cin, cout, k, stride=s, padding=p, output_padding=op, groups=g,
                               dilation=d)
    symbolic = layer.cost((B, cin, H))
    concrete = layer.cost((b, cin, h))
    want = _ints(formulas.conv.conv_transpose_work(b, cin, cout, (k,), (h,), (ho,), (s,), (d,), g))
    assert _ints(concrete.work) == want
    assert _ints(symbolic.subs(B=b, H=h).work) == want
    assert tuple(symbolic.subs(B=b, H=h).output_shape) == (b, cout, ho)
    # the covered positions by enumeration
    covered = len({i * s + j * d for i in range(h) for j in range(k)})
    assert formulas.conv.conv_transpose_covered(h, k, s, d) == covered


@SETTINGS
@given(b=small, c=small, k=st.integers(1, 4), h=st.integers(1, 20), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 2), ceil=st.booleans(),
       kind=st.sampled_from(["max", "avg"]))
def test_pool_subs_equals_int_formula(b: int, c: int, k: int, h: int, s: int, p: int, d: int,
                                      ceil: bool, kind: str) -> None:
    assume(2 * p <= k)
    out = formulas.pool.pool_output_size(h, k, s, p, d, ceil)
    assume(out >= 1)
    layer = (nn.MaxPool1d(k, s, p, d, ceil_mode=ceil) if kind == "max"
             else nn.AvgPool1d(k, s, p, ceil_mode=ceil))
    if kind == "avg":
        d = 1
        out = formulas.pool.pool_output_size(h, k, s, p, 1, ceil)
        assume(out >= 1)
    cost = layer.cost((B, C, H)).subs(B=b, C=c, H=h)
    elements = formulas.pool.pool_window_total(h, k, s, p, d, ceil)
    want = b * c * (elements - out if kind == "max" else elements)
    assert int(cost.work.get("pooling", 0)) == want
    assert tuple(cost.output_shape) == (b, c, out)
    if not ceil:
        fn = formulas.pool.max_pool_work if kind == "max" else formulas.pool.avg_pool_work
        assert _ints(cost.work) == _ints(fn(b * c * out, k))


@SETTINGS
@given(b=small, c=small, h=st.integers(1, 30), w=st.integers(1, 30), oh=st.integers(1, 6),
       ow=st.integers(1, 6), kind=st.sampled_from(["avg", "max"]))
def test_adaptive_pool_subs_equals_int_formula(b: int, c: int, h: int, w: int, oh: int,
                                               ow: int, kind: str) -> None:
    layer = nn.AdaptiveAvgPool2d((oh, ow)) if kind == "avg" else nn.AdaptiveMaxPool2d((oh, ow))
    cost = layer.cost((B, C, H, W)).subs(B=b, C=c, H=h, W=w)
    fn = formulas.pool.adaptive_avg_pool_work if kind == "avg" else \
        formulas.pool.adaptive_max_pool_work
    assert _ints(cost.work) == _ints(fn(b * c, (h, w), (oh, ow)))


@SETTINGS
@given(b=small, n=small, i=small, o=small, bias=st.booleans())
def test_linear_subs_equals_int_formula(b: int, n: int, i: int, o: int, bias: bool) -> None:
    cost = nn.Linear(I, O, bias=bias).cost((B, N, I)).subs(B=b, N=n, I=i, O=o)
    assert _ints(cost.work) == _ints(formulas.linear.linear_work(b * n, i, o, bias))
    assert int(cost.params) == formulas.linear.linear_params(i, o, bias)


@SETTINGS
@given(b=small, n=small, hd=st.integers(1, 4), h=st.integers(1, 4), causal=st.booleans(),
       skip=st.booleans())
def test_attention_subs_equals_int_formula(b: int, n: int, hd: int, h: int, causal: bool,
                                           skip: bool) -> None:
    skip = skip and causal
    cost = nn.MultiheadAttention(dim, heads, causal=causal, skip_masked=skip).cost(
        (B, N, dim)).subs(B=b, N=n, dim=h * hd, heads=h)
    parts = formulas.attention.attention_parts(b, h, n, n, hd, causal=causal, skip_masked=skip)
    for name, work in parts.items():
        assert _ints(cost[name].work) == _ints(work), name
    assert _ints(cost["qkv"].work) == _ints(formulas.linear.linear_work(b * n, h * hd, 3 * h * hd))


@SETTINGS
@given(rows=small, n=small, affine=st.booleans(), bias=st.booleans(), g=st.integers(1, 3))
def test_norm_subs_equals_int_formula(rows: int, n: int, affine: bool, bias: bool,
                                      g: int) -> None:
    ln = nn.LayerNorm(dim, elementwise_affine=affine, bias=bias).cost((B, dim))
    assert _ints(ln.subs(B=rows, dim=n).work) == _ints(
        formulas.norm.layer_norm_work(rows, n, affine=affine, bias=bias))
    gn = nn.GroupNorm(g, C, affine=affine).cost((B, C, H))
    assert _ints(gn.subs(B=rows, C=g * n, H=3).work) == _ints(
        formulas.norm.group_norm_work(rows, g, g * n, 3, affine=affine))
    rms = nn.RMSNorm(dim, elementwise_affine=affine).cost((B, dim))
    assert _ints(rms.subs(B=rows, dim=n).work) == _ints(
        formulas.norm.rms_norm_work(rows, n, affine=affine))


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
@given(rows=st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 9)), min_size=1, max_size=9),
       cols=st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 9)), min_size=1, max_size=9),
       rest=st.integers(-5, 5), h=st.integers(1, 500), w=st.integers(1, 500))
def test_simplify_keeps_products_of_disjoint_sums_exact(rows: list[tuple[int, int]],
                                                         cols: list[tuple[int, int]],
                                                         rest: int, h: int, w: int) -> None:
    """A product of a sum of roundings in H and one in W (an adaptive pool's windows),
    plus a term sharing their roundings: the simplified form (kept a product when the
    expansion is long) is the same polynomial in those roundings and the same number at
    every size."""
    from symflops.simplification import simplify_expr

    def rounded(c: int, d: int, x: sp.Symbol) -> sp.Expr:
        return c * (sp.ceiling(d * x / 7) if c % 2 else sp.floor(d * x / 5))

    a = sp.Add(*(rounded(c, d, H) for c, d in rows)) + 1
    b = sp.Add(*(rounded(c, d, W) for c, d in cols)) + 2
    expr = B * a * b + rest * sp.floor(H / 5) * sp.floor(W / 5)
    simple = simplify_expr(expr)
    assert sp.expand(simple - expr) == 0
    point = {B: 3, H: h, W: w}
    assert simple.xreplace(point) == expr.xreplace(point)


@SETTINGS
@given(b=small, g=st.integers(1, 3), c=st.integers(1, 4), n=small, hd=st.integers(1, 4),
       h=st.integers(1, 4), causal=st.booleans(), skip=st.booleans(), k=st.integers(1, 3),
       s=st.integers(1, 3), d=st.integers(1, 3))
def test_formulas_on_ints_return_ints(b: int, g: int, c: int, n: int, hd: int, h: int,
                                      causal: bool, skip: bool, k: int, s: int,
                                      d: int) -> None:
    """The integer path stays in Python ints: no floats, no SymPy numbers."""
    works = [
        formulas.conv.conv_work(b, g * c, g * c, (k, k), (n, n), g),
        formulas.conv.conv_transpose_work(b, g * c, g * c, (k,), (n,), (n * s + k,), (s,), (d,), g),
        formulas.linear.linear_work(b, c, n), formulas.linear.matmul_work(b, c, n, k),
        formulas.norm.batch_norm_work(b * g * c * n, g * c, training=True),
        formulas.norm.batch_norm_work(b * c * n, c), formulas.norm.layer_norm_work(b, n),
        formulas.norm.rms_norm_work(b, n),
        formulas.norm.group_norm_work(b, g, g * c, n),
        formulas.pool.max_pool_work(b * n, k * k), formulas.pool.avg_pool_work(b * n, k * k),
        formulas.pool.adaptive_avg_pool_work(b * c, (n + 3, n), (3, 2)),
        formulas.pool.adaptive_max_pool_work(b * c, (n + 3,), (2,)),
        formulas.pointwise.softmax_work(b, n), formulas.pointwise.log_softmax_work(b, n),
        formulas.pointwise.activation_work("gelu", n),
        formulas.pointwise.elementwise_work(n, 2),
        formulas.attention.attention_work(b, h, n, n, hd, causal=causal,
                                          skip_masked=skip and causal),
    ]
    for w in works:
        for kind, v in w.items():
            assert type(v) is int, (kind, v, type(v))
    sizes = [formulas.conv.conv_output_size(n + k, k, s, 1, d),
             formulas.pool.pool_output_size(n + k, k, s, 0, 1, True),
             formulas.pool.pool_window_total(n + k, k, s, 0, d, True),
             formulas.conv.conv_transpose_covered(n, k, s, d),
             formulas.conv.conv_params(g * c, g * c, (k, k), g), formulas.linear.linear_params(c,
                                                                                               n),
             formulas.norm.norm_params(n)]
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


# --------------------------------------------------------------- 1b. every sf.nn layer
# Built from the layer registry (nn.LAYERS), so a new layer is covered with no edit here:
# each class's reference ``example`` (a layer in symbols and its input shape), its cost
# with random sizes substituted, against
# - the same layer's cost on an input of those sizes (its arguments stay symbols,
#   substituted after): the same work kind by kind, params and output shape, or an error
#   on both paths where the sizes lie outside the layer's domain (never a number on one);
# - inside the domain, the layer with its arguments set to those ints too, on that input:
#   the formula functions then run on plain ints (the integer path; the arguments are set
#   past the constructor, whose checks the first comparison covers).
def _arg_symbols(obj: Any, seen: set[int] | None = None) -> set[sp.Symbol]:
    """The symbols a layer was built with (its arguments, its children's)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return set()
    seen.add(id(obj))
    if isinstance(obj, sp.Basic):
        return set(obj.free_symbols)
    if isinstance(obj, nn.Layer):
        obj = list(vars(obj).values())
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return set().union(*(_arg_symbols(x, seen) for x in obj))
    return set()


def _with_ints(obj: Any, values: dict[sp.Symbol, int], memo: dict[int, Any]) -> Any:
    """A copy of a layer (its children too) with ``values`` put in its arguments."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, sp.Basic):
        return obj.xreplace({s: sp.Integer(v) for s, v in values.items()})
    if isinstance(obj, nn.Layer):
        new = copy.copy(obj)
        memo[id(obj)] = new
        for key, x in vars(obj).items():
            object.__setattr__(new, key, _with_ints(x, values, memo))
        return new
    if isinstance(obj, (list, tuple)):
        return type(obj)(_with_ints(x, values, memo) for x in obj)
    if isinstance(obj, dict):
        return {k: _with_ints(x, values, memo) for k, x in obj.items()}
    return obj


def _outcome(make: Any) -> tuple[Any, ...]:
    """(work, params, output shape) as ints, or the error's class."""
    try:
        cost = make()
        return (_ints(cost.work), int(cost.params), tuple(int(x) for x in cost.output_shape))
    except SymflopsError:
        return ("SymflopsError",)


def _both_ways(name: str, values: dict[sp.Symbol, int] | int) -> tuple[Any, Any]:
    """The example of layer ``name`` at ``values`` (an int: every size that value): its
    symbolic cost substituted, and its cost on the input of those sizes."""
    example = nn.LAYERS[name].example
    assert example is not None
    layer, shape = example.build(), tuple(sp.sympify(x) for x in example.input_shape)
    cost = layer.cost(shape)
    if isinstance(values, int):
        values = dict.fromkeys(cost.free_symbols, values)
    args = _arg_symbols(layer)
    mine = {s: v for s, v in values.items() if s not in args}  # the input's own sizes
    symbolic = _outcome(lambda: cost.subs(values))

    def concrete_cost() -> Any:  # (an argument may drop out: s once T = 1)
        c = layer.cost(tuple(x.xreplace(mine) for x in shape))
        return c.subs({s: v for s, v in values.items() if s in c.free_symbols})
    concrete = _outcome(concrete_cost)
    if len(symbolic) == 3:  # inside the domain: every size and argument a plain int
        ints = _with_ints(layer, values, {})
        assert _outcome(lambda: ints.cost(tuple(x.xreplace(values) for x in shape))) == \
            symbolic, values
    return symbolic, concrete


def _free_symbols(name: str) -> list[sp.Symbol]:
    example = nn.LAYERS[name].example
    assert example is not None
    return sorted(example.build().cost(example.input_shape).free_symbols, key=str)


@pytest.mark.parametrize("name", list(nn.LAYERS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_registered_layer_concrete_equals_symbolic(name: str, data: Any) -> None:
    # each size 1 half the time (so that divisibility and window conditions often hold
    # together), else 0 or 1 to 7
    values = {s: data.draw(st.one_of(st.just(1), st.integers(
        0 if s.is_nonnegative and not s.is_positive else 1, 7)), label=s.name)
        for s in _free_symbols(name)}
    symbolic, concrete = _both_ways(name, values)
    assert symbolic == concrete, (values, symbolic, concrete)


@pytest.mark.parametrize("name", list(nn.LAYERS))
def test_every_registered_layer_concrete_equals_symbolic_inside_its_domain(name: str) -> None:
    # every size 2, or every size 3, lies inside each example's domain (a transposed conv
    # at 2 has (2 - 1)*2 - 2*2 + 2 = 0 outputs; a rotary head_dim of 3 is odd), so each
    # layer is compared at least once on numbers, not only on errors
    numbers = 0
    for size in (2, 3):
        symbolic, concrete = _both_ways(name, size)
        assert symbolic == concrete, (size, symbolic, concrete)
        numbers += len(symbolic) == 3
    assert numbers >= 1


# The formula functions called by hand on plain ints for the layers below (a second,
# independent path; a new layer needs no entry here: the test above covers it):
# the symbolic cost with random positive sizes substituted equals them (work kind by
# kind and params).
T_, D_, L_, V_, R_ = (symbol(n) for n in ("T", "D", "L", "V", "r"))
_SPATIAL = {1: (T_,), 2: (H, W), 3: (D_, H, W)}


def _act_case(name: str, act: str) -> Any:
    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        numel = v["B"] * v["C"] * v["H"]
        return (getattr(nn, name)(), (B, C, H), {B: v["B"], C: v["C"], H: v["H"]},
                formulas.pointwise.activation_work(act, numel), 0)
    return case


def _free_case(name: str) -> Any:
    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        return getattr(nn, name)(), (B, C, H, W), {B: v["B"], C: v["C"], H: v["H"],
                                                   W: v["W"]}, {}, 0
    return case


def _conv_case(name: str, n: int, transposed: bool) -> Any:
    spatial = _SPATIAL[n]

    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        sizes = [v["H"]] * n
        layer = getattr(nn, name)(C_in, C_out, K, stride=v["s"])
        subs = {B: v["B"], C_in: v["C"], C_out: v["O"], K: v["K"],
                **dict(zip(spatial, sizes, strict=True))}
        k, s = [v["K"]] * n, [v["s"]] * n
        if transposed:
            outs = [formulas.conv.conv_transpose_output_size(x, v["K"], v["s"]) for x in sizes]
            work = formulas.conv.conv_transpose_work(v["B"], v["C"], v["O"], k, sizes, outs, s,
                                                [1] * n)
            params = v["C"] * v["O"] * v["K"] ** n + v["O"]
        else:
            outs = [formulas.conv.conv_output_size(x, v["K"], v["s"]) for x in sizes]
            assume(min(outs) >= 1)
            work = formulas.conv.conv_work(v["B"], v["C"], v["O"], k, outs)
            params = formulas.conv.conv_params(v["C"], v["O"], k)
        return layer, (B, C_in, *spatial), subs, work, params
    return case


def _pool_case(name: str, kind: str, n: int) -> Any:
    spatial = _SPATIAL[n]

    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        sizes = [v["H"]] * n
        outs = [formulas.pool.pool_output_size(x, v["K"], v["s"]) for x in sizes]
        assume(min(outs) >= 1)
        planes = v["B"] * v["C"]
        window = v["K"] ** n
        fn = formulas.pool.max_pool_work if kind == "max" else formulas.pool.avg_pool_work
        return (getattr(nn, name)(v["K"], stride=v["s"]), (B, C, *spatial),
                {B: v["B"], C: v["C"], **dict(zip(spatial, sizes, strict=True))},
                fn(planes * formulas.arith.prod(outs), window), 0)
    return case


def _adaptive_case(name: str, kind: str, n: int) -> Any:
    spatial = _SPATIAL[n]

    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        sizes, outs = [v["H"]] * n, [v["s"]] * n
        fn = formulas.pool.adaptive_max_pool_work if kind == "max" else \
            formulas.pool.adaptive_avg_pool_work
        return (getattr(nn, name)(v["s"]), (B, C, *spatial),
                {B: v["B"], C: v["C"], **dict(zip(spatial, sizes, strict=True))},
                fn(v["B"] * v["C"], sizes, outs), 0)
    return case


def _bn_case(name: str, n: int) -> Any:
    spatial = _SPATIAL[n]

    def case(v: dict[str, int]) -> tuple[nn.Layer, tuple[Any, ...], dict[str, Any], Any, int]:
        numel = v["B"] * v["C"] * v["H"] ** len(spatial)
        return (getattr(nn, name)(C, training=v["s"] == 1), (B, C, *spatial),
                {B: v["B"], C: v["C"], **{x: v["H"] for x in spatial}},
                formulas.norm.batch_norm_work(numel, v["C"], training=v["s"] == 1), 2 * v["C"])
    return case


def _mlp_work(rows: int, d: int, hidden: int) -> Any:
    return formulas.arith.add_work(formulas.linear.linear_work(rows, d, hidden),
                             formulas.pointwise.activation_work("gelu", rows * hidden),
                             formulas.linear.linear_work(rows, hidden, d))


def _mha_work(b: int, n: int, h: int, hd: int) -> Any:
    d = h * hd
    return formulas.arith.add_work(formulas.linear.linear_work(b * n, d, 3 * d),
                             formulas.attention.attention_work(b, h, n, n, hd),
                             formulas.linear.linear_work(b * n, d, d))


def _block_work(b: int, n: int, h: int, hd: int) -> Any:
    d = h * hd
    norm = formulas.norm.layer_norm_work(b * n, d)
    add = formulas.pointwise.elementwise_work(b * n * d)
    return formulas.arith.add_work(norm, _mha_work(b, n, h, hd), add, norm,
                             _mlp_work(b * n, d, 4 * d), add)


_BY_HAND: dict[str, Any] = {
    "Conv1d": _conv_case("Conv1d", 1, False), "Conv2d": _conv_case("Conv2d", 2, False),
    "Conv3d": _conv_case("Conv3d", 3, False),
    "ConvTranspose1d": _conv_case("ConvTranspose1d", 1, True),
    "ConvTranspose2d": _conv_case("ConvTranspose2d", 2, True),
    "ConvTranspose3d": _conv_case("ConvTranspose3d", 3, True),
    "Linear": lambda v: (nn.Linear(I, O), (B, I), {B: v["B"], I: v["C"], O: v["O"]},
                         formulas.linear.linear_work(v["B"], v["C"], v["O"]),
                         formulas.linear.linear_params(v["C"], v["O"])),
    "BatchNorm1d": _bn_case("BatchNorm1d", 1), "BatchNorm2d": _bn_case("BatchNorm2d", 2),
    "BatchNorm3d": _bn_case("BatchNorm3d", 3),
    "LayerNorm": lambda v: (nn.LayerNorm(dim), (B, dim), {B: v["B"], dim: v["C"]},
                            formulas.norm.layer_norm_work(v["B"], v["C"]), 2 * v["C"]),
    "RMSNorm": lambda v: (nn.RMSNorm(dim), (B, dim), {B: v["B"], dim: v["C"]},
                          formulas.norm.rms_norm_work(v["B"], v["C"]), v["C"]),
    "GroupNorm": lambda v: (nn.GroupNorm(v["s"], C), (B, C, H),
                            {B: v["B"], C: v["s"] * v["C"], H: v["H"]},
                            formulas.norm.group_norm_work(v["B"], v["s"], v["s"] * v["C"], v["H"]),
                            2 * v["s"] * v["C"]),
    "MaxPool1d": _pool_case("MaxPool1d", "max", 1), "MaxPool2d": _pool_case("MaxPool2d", "max", 2),
    "AvgPool1d": _pool_case("AvgPool1d", "avg", 1), "AvgPool2d": _pool_case("AvgPool2d", "avg", 2),
    "AdaptiveAvgPool1d": _adaptive_case("AdaptiveAvgPool1d", "avg", 1),
    "AdaptiveAvgPool2d": _adaptive_case("AdaptiveAvgPool2d", "avg", 2),
    "AdaptiveMaxPool2d": _adaptive_case("AdaptiveMaxPool2d", "max", 2),
    **{name: _act_case(name, act) for name, act in (
        ("ReLU", "relu"), ("ReLU6", "relu6"), ("LeakyReLU", "leaky_relu"), ("GELU", "gelu"),
        ("SiLU", "silu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("Hardswish", "hardswish"),
        ("Hardsigmoid", "hardsigmoid"))},
    "GLU": lambda v: (nn.GLU(), (B, 2 * dim), {B: v["B"], dim: v["C"]},
                      formulas.pointwise.glu_work(v["B"] * v["C"]), 0),
    "Softmax": lambda v: (nn.Softmax(-1), (B, N), {B: v["B"], N: v["C"]},
                          formulas.pointwise.softmax_work(v["B"], v["C"]), 0),
    **{name: _free_case(name) for name in ("Dropout", "Identity", "Flatten")},
    "PixelShuffle": lambda v: (nn.PixelShuffle(R_), (B, C * R_**2, H, W),
                               {B: v["B"], C: v["C"], R_: v["s"], H: v["H"], W: v["W"]}, {}, 0),
    "PixelUnshuffle": lambda v: (nn.PixelUnshuffle(R_), (B, C, H * R_, W * R_),
                                 {B: v["B"], C: v["C"], R_: v["s"], H: v["H"], W: v["W"]}, {},
                                 0),
    "ChannelShuffle": lambda v: (nn.ChannelShuffle(v["s"]), (B, v["s"] * C, H, W),
                                 {B: v["B"], C: v["C"], H: v["H"], W: v["W"]}, {}, 0),
    "Upsample": lambda v: (nn.Upsample(scale_factor=v["s"], mode="bilinear"), (B, C, H, W),
                           {B: v["B"], C: v["C"], H: v["H"], W: v["W"]},
                           formulas.resize.interpolate_work(
                               v["B"] * v["C"] * v["s"] ** 2 * v["H"] * v["W"], "bilinear"), 0),
    "Embedding": lambda v: (nn.Embedding(V_, dim), (B, N), {B: v["B"], N: v["H"], V_: v["O"],
                                                            dim: v["C"]}, {}, v["O"] * v["C"]),
    "MultiheadAttention": lambda v: (
        nn.MultiheadAttention(dim, heads), (B, N, dim),
        {B: v["B"], N: v["H"], heads: v["s"], dim: v["s"] * v["K"]},
        _mha_work(v["B"], v["H"], v["s"], v["K"]), 4 * (v["s"] * v["K"]) ** 2
        + 4 * v["s"] * v["K"]),
    "TransformerBlock": lambda v: (
        nn.TransformerBlock(dim, heads), (B, N, dim),
        {B: v["B"], N: v["H"], heads: v["s"], dim: v["s"] * v["K"]},
        _block_work(v["B"], v["H"], v["s"], v["K"]), 12 * (v["s"] * v["K"]) ** 2
        + 13 * v["s"] * v["K"]),
    "MLP": lambda v: (nn.MLP(dim, 4 * dim), (B, dim), {B: v["B"], dim: v["C"]},
                      _mlp_work(v["B"], v["C"], 4 * v["C"]), 8 * v["C"] ** 2 + 5 * v["C"]),
    "Sequential": lambda v: (nn.Sequential(nn.Linear(I, O), nn.ReLU()), (B, I),
                             {B: v["B"], I: v["C"], O: v["O"]},
                             formulas.arith.add_work(formulas.linear.linear_work(v["B"], v["C"],
                                                                                 v["O"]),
                                               formulas.pointwise.activation_work("relu",
                                                                        v["B"] * v["O"])),
                             formulas.linear.linear_params(v["C"], v["O"])),
    "Residual": lambda v: (nn.Residual(nn.Linear(dim, dim)), (B, dim), {B: v["B"], dim: v["C"]},
                           formulas.arith.add_work(formulas.linear.linear_work(v["B"], v["C"],
                                                                               v["C"]),
                                             formulas.pointwise.elementwise_work(v["B"] * v["C"])),
                           formulas.linear.linear_params(v["C"], v["C"])),
    "Repeat": lambda v: (nn.Repeat(nn.Linear(dim, dim), L_), (B, dim),
                         {B: v["B"], dim: v["C"], L_: v["s"]},
                         formulas.arith.scale_work(formulas.linear.linear_work(v["B"], v["C"],
                                                                               v["C"]),
                                             v["s"]),
                         v["s"] * formulas.linear.linear_params(v["C"], v["C"])),
    # vision layers: data movement is free; the others equal their formula functions
    **{name: (lambda v, name=name: (
        {"Permute": nn.Permute(0, 2, 3, 1), "Transpose": nn.Transpose(1, 2),
         "Reshape": nn.Reshape(B, -1), "Select": nn.Select(1, 0)}[name], (B, C, H, W),
        {B: v["B"], C: v["C"], H: v["H"], W: v["W"]}, {}, 0))
       for name in ("Permute", "Transpose", "Reshape", "Select")},
    "PatchEmbedding": lambda v: (
        nn.PatchEmbedding(C, dim, K), (B, C, H * K, W * K),
        {B: v["B"], C: v["C"], dim: v["O"], K: v["K"], H: v["H"], W: v["W"]},
        formulas.conv.conv_work(v["B"], v["C"], v["O"], [v["K"]] * 2, [v["H"], v["W"]]),
        formulas.conv.conv_params(v["C"], v["O"], [v["K"]] * 2)),
    "ClassToken": lambda v: (nn.ClassToken(dim), (B, N, dim), {B: v["B"], N: v["H"],
                                                               dim: v["C"]}, {}, v["C"]),
    "PositionEmbedding": lambda v: (
        nn.PositionEmbedding(N, dim), (B, N, dim), {B: v["B"], N: v["H"], dim: v["C"]},
        formulas.tokens.position_embedding_work(v["B"], v["H"], v["C"]), v["H"] * v["C"]),
    "WindowAttention": lambda v: (
        nn.WindowAttention(dim, heads, K), (B, H * K, W * K, dim),
        {B: v["B"], H: v["H"], W: v["W"], K: v["K"], heads: v["s"], dim: v["s"] * v["C"]},
        formulas.arith.add_work(
            formulas.linear.linear_work(v["B"] * v["H"] * v["W"] * v["K"] ** 2, v["s"] * v["C"],
                                 3 * v["s"] * v["C"]),
            *formulas.window.window_attention_parts(v["B"], v["H"] * v["K"], v["W"] * v["K"],
                                             v["s"] * v["C"], v["s"], v["K"]).values(),
            formulas.linear.linear_work(v["B"] * v["H"] * v["W"] * v["K"] ** 2, v["s"] * v["C"],
                                 v["s"] * v["C"])),
        4 * (v["s"] * v["C"]) ** 2 + 4 * v["s"] * v["C"]
        + formulas.window.relative_bias_params(v["K"], v["s"])),
    "PatchMerging": lambda v: (
        nn.PatchMerging(dim), (B, 2 * H, 2 * W, dim), {B: v["B"], H: v["H"], W: v["W"],
                                                       dim: v["C"]},
        formulas.arith.add_work(formulas.norm.layer_norm_work(v["B"] * v["H"] * v["W"], 4 * v["C"]),
                          formulas.linear.linear_work(v["B"] * v["H"] * v["W"], 4 * v["C"],
                                               2 * v["C"], bias=False)),
        4 * v["C"] * 2 + 8 * v["C"] ** 2),
    # recurrent layers: T = H steps of B rows, I = C inputs, h = O hidden
    **{name: (lambda v, name=name: (
        getattr(nn, name)(C, O), (H, B, C) if name in ("LSTM", "GRU") else (B, C),
        {B: v["B"], C: v["C"], O: v["O"], **({H: v["H"]} if name in ("LSTM", "GRU") else {})},
        formulas.arith.scale_work(formulas.recurrent.recurrent_step_work(
            "lstm" if name.startswith("LSTM") else "gru", v["B"], v["C"], v["O"]),
            v["H"] if name in ("LSTM", "GRU") else 1),
        formulas.recurrent.recurrent_params("lstm" if name.startswith("LSTM") else "gru", v["C"],
                                  v["O"])))
       for name in ("LSTM", "GRU", "LSTMCell", "GRUCell")},
}


# ----------------------------------------------------------------------------- LM layers
E_, k_, hd_ = symbol("E"), symbol("k"), symbol("head_dim")


def _gated_work(rows: int, d: int, f: int, act: str) -> Any:
    """gate and up projections, the activation, their product, the down projection."""
    return formulas.arith.add_work(formulas.linear.linear_work(rows, d, f, False),
                             formulas.pointwise.activation_work(act, rows * f),
                             formulas.linear.linear_work(rows, d, f, False),
                             formulas.pointwise.elementwise_work(rows * f),
                             formulas.linear.linear_work(rows, f, d, False))


def _gated_case(name: str, act: str) -> Any:
    return lambda v: (getattr(nn, name)(I, O), (B, I), {B: v["B"], I: v["C"], O: v["O"]},
                      _gated_work(v["B"], v["C"], v["O"], act), 3 * v["C"] * v["O"])


def _moe_case(v: dict[str, int]) -> Any:
    b, d, f, k, e = v["B"], v["C"], v["O"], v["s"], v["s"] + v["K"]
    work = formulas.arith.add_work(
        formulas.linear.linear_work(b, d, e, False), formulas.pointwise.softmax_work(b, e),
        formulas.moe.topk_work(b, e, k), formulas.moe.renormalize_derivation(b, k).work,
        _gated_work(b * k, d, f, "silu"), formulas.moe.moe_combine_work(b, d, k))
    return (nn.MoE(I, O, E_, k_), (B, I), {B: b, I: d, O: f, E_: e, k_: k}, work,
            e * d + 3 * e * d * f)


def _moved(layer: nn.Layer) -> Any:
    return lambda v: (layer, (B, C, H), {B: v["B"], C: v["C"], H: v["H"]}, {}, 0)


_BY_HAND.update({
    "GatedMLP": _gated_case("GatedMLP", "silu"), "SwiGLU": _gated_case("SwiGLU", "silu"),
    "GeGLU": _gated_case("GeGLU", "gelu"),
    "RotaryEmbedding": lambda v: (nn.RotaryEmbedding(hd_), (B, N, dim),
                                  {B: v["B"], N: v["H"], dim: v["C"], hd_: 2 * v["K"]},
                                  formulas.rotary.rotary_table_work(v["H"], 2 * v["K"]), 0),
    "PositionEmbedding": lambda v: (nn.PositionEmbedding(L_, dim), (B, N, dim),
                                    {B: v["B"], N: v["H"], dim: v["C"], L_: v["H"] + v["s"]},
                                    formulas.pointwise.elementwise_work(v["B"] * v["H"] * v["C"]),
                                    (v["H"] + v["s"]) * v["C"]),
    "TiedLMHead": lambda v: (nn.TiedLMHead(nn.Embedding(V_, dim)), (B, dim),
                             {B: v["B"], dim: v["C"], V_: v["O"]},
                             formulas.linear.linear_work(v["B"], v["C"], v["O"], False), 0),
    "Reshape": _moved(nn.Reshape(B, -1)), "Permute": _moved(nn.Permute(0, 2, 1)),
    "Transpose": _moved(nn.Transpose(1, 2)),
    "MoE": _moe_case,
})


@pytest.mark.parametrize("name", sorted(_BY_HAND))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({
    "B": st.integers(1, 4), "C": st.integers(1, 5), "O": st.integers(1, 5),
    "H": st.integers(1, 9), "W": st.integers(1, 6), "K": st.integers(1, 3),
    "s": st.integers(1, 3)}))
def test_layer_subs_equals_int_formulas_by_hand(name: str, values: dict[str, int]) -> None:
    layer, shape, subs, work, params = _BY_HAND[name](values)
    cost = layer.cost(shape).subs(subs)
    assert _ints(cost.work) == _ints(work)
    assert int(cost.params) == params


def _ceil_pool_cases() -> list[tuple[int, int, int, int]]:
    """(kernel, stride, padding, dilation) torch accepts (``2p <= d(k - 1) + 1``)."""
    return [(k, s, p, d) for k in range(1, 6) for s in range(1, 5) for d in range(1, 4)
            for p in range(0, k // 2 + 1) if 2 * p <= d * (k - 1) + 1]


@pytest.mark.parametrize("k,s,p,d", _ceil_pool_cases(),
                         ids=lambda v: str(v))
def test_ceil_mode_window_total_counts_every_tap(k: int, s: int, p: int, d: int) -> None:
    """A ceil-mode pool's window total (``formulas.pool._last_window_bounds`` drops the
    ``Min`` of its last window from the constants) against the taps counted one by one:
    torch's own output length, each window's taps ``o s + j d`` inside the padded input."""
    import torch
    import torch.nn.functional as F

    symbolic = formulas.pool.pool_window_total(H, k, s, p, d, True)
    for size in range(max(1, d * (k - 1) + 1 - 2 * p), 41):
        out = F.max_pool1d(torch.zeros(1, 1, size), k, s, p, d, ceil_mode=True).shape[-1]
        taps = sum(1 for o in range(out) for j in range(k) if o * s + j * d < size + 2 * p)
        assert formulas.pool.pool_window_total(size, k, s, p, d, True) == taps
        assert symbolic.xreplace({H: size}) == taps, (size, symbolic)


_ROUNDED_ATOMS = [H, W, sp.floor(H / 2), sp.ceiling(W / 3), H * W, sp.floor(H / 4) * W]


@SETTINGS
@given(terms=st.lists(st.tuples(st.integers(-7, 7), st.integers(1, 8),
                                st.sampled_from(range(len(_ROUNDED_ATOMS) + 1))),
                      min_size=1, max_size=4),
       ceil=st.booleans())
def test_rounded_builds_what_sympy_builds(terms: list[tuple[int, int, int]],
                                          ceil: bool) -> None:
    """``arith.rounded`` skips SymPy's evaluation of ``floor``/``ceiling`` for sums of
    integers and fractional multiples of integer-valued atoms: the result is SymPy's own,
    node for node (srepr), for such sums and for any other (an integer-valued term)."""
    x = sp.Add(*(sp.Rational(p, q) * (_ROUNDED_ATOMS[i] if i < len(_ROUNDED_ATOMS) else 1)
                 for p, q, i in terms))
    rounding = sp.ceiling if ceil else sp.floor
    assert sp.srepr(formulas.arith.rounded(rounding, x)) == sp.srepr(rounding(x))
