"""Every number inside its proven domain: ``Cost.domain`` sorts a formula's conditions, and
``subs``, ``evaluate``, sweeps and comparisons refuse a point outside with one
OutsideDomain naming the condition and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops.domain import Domain
from symflops.errors import OutsideDomain
from symflops.symbols import B, C_in, H, W

# A ViT-like stem: a 16x16 patch conv needs H a multiple of 16 for its token count to be
# H/16 (the condition a patch embedding states), and a 7x7 conv needs H >= 7.
LATTICE = sp.Eq(sp.Mod(H, 16), 0)
DOMAIN = Domain([("PatchEmbedding", LATTICE), ("Conv2d", H - 6 >= 1),
                 ("fit", sp.Le(H, 1024)), ("trace", sp.Eq(B, 2))])


def test_conditions_are_sorted_by_kind_and_said_in_words() -> None:
    assert DOMAIN.range_of(H) == (16, 1024, 16, 0)  # 7 <= H, lattice 16: first 16
    assert DOMAIN.range_of("B") == (2, 2, 1, 0)
    assert str(DOMAIN) == "B = 2 (pinned); H a multiple of 16, 16 <= H <= 1024 " \
                          "(verified up to 1024)"
    assert DOMAIN.points(H, 1000, 2000) == [1008, 1024]


@pytest.mark.parametrize("point,ok", [
    ({"H": 224, "B": 2}, True),
    ({"H": 1024, "B": 2}, True),
    ({"H": 1040, "B": 2}, False),   # past the verified range
    ({"H": 200, "B": 2}, False),    # off the lattice
    ({"H": 224, "B": 1}, False),    # the pinned batch
], ids=["inside", "upper-edge", "past-upper", "off-lattice", "pinned"])
def test_contains(point: dict[str, int], ok: bool) -> None:
    assert DOMAIN.contains(**point) is ok


def test_the_fix_names_the_nearest_valid_sizes() -> None:
    with pytest.raises(OutsideDomain, match=r"multiple of 16, e\.g\. 192 or 208"):
        DOMAIN.check({H: 200, B: 2})
    with pytest.raises(OutsideDomain, match="verified up to H = 1024"):
        DOMAIN.check({H: 2048, B: 2})


@pytest.mark.parametrize("cond,expected", [
    (H >= 7, (7, None, 1, 0)),
    (H - 6 >= 1, (7, None, 1, 0)),
    (2 * H > 9, (5, None, 1, 0)),            # 2H > 9 <=> H >= 5
    (sp.Lt(H, 100), (1, 99, 1, 0)),
    (sp.Le(3 * H, 100), (1, 33, 1, 0)),      # 3H <= 100 <=> H <= 33
    (sp.Eq(sp.Mod(H - 1, 4), 0), (1, None, 4, 1)),
    (sp.Eq(sp.Mod(2 * H, 6), 0), (3, None, 3, 0)),  # 2H = 0 mod 6 <=> H = 0 mod 3
], ids=["ge", "shifted", "scaled-strict", "lt", "scaled-le", "offset-lattice", "scaled-lattice"])
def test_each_shape_of_condition_reads_as_a_range(cond: sp.Basic, expected: tuple) -> None:
    d = Domain([("x", cond)])
    assert d.range_of(H) == expected
    lo, hi, step, offset = expected
    # brute force: the values the condition allows are exactly those of the range
    allowed = [v for v in range(1, 200) if cond.xreplace({H: v}) is sp.true]
    from_range = [v for v in range(1, 200) if v >= lo and (hi is None or v <= hi)
                  and v % step == offset % step]
    assert allowed == from_range
    assert d.points(H, 1, 199) == allowed


def _strided() -> sf.Cost:
    # Conv 3x3 stride 2 then a 7x7 conv: the second needs floor((H - 3)/2) + 1 >= 7
    net = sf.nn.Sequential(sf.nn.Conv2d(C_in, 8, 3, stride=2), sf.nn.Conv2d(8, 4, 7))
    return net.cost((B, C_in, H, W))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 4000), w=st.integers(1, 4000), b=st.integers(1, 64))
def test_subs_and_evaluate_agree_inside_and_both_refuse_outside(h: int, w: int, b: int) -> None:
    cost = _strided()
    # hand: the second conv's input is floor((H - 3)/2) + 1 per side, which must be >= 7,
    # i.e. H >= 15 (and W >= 15)
    inside = h >= 15 and w >= 15
    assert cost.domain.contains(H=h, W=w, B=b, C_in=3) is inside
    if inside:
        value = cost.subs(B=b, C_in=3, H=h, W=w).flops
        assert int(cost.evaluate("flops", B=b, C_in=3, H=h, W=w)) == value
    else:
        with pytest.raises(OutsideDomain):
            cost.subs(B=b, C_in=3, H=h, W=w)
        with pytest.raises(OutsideDomain):
            cost.evaluate("flops", B=b, C_in=3, H=h, W=w)


def test_evaluate_outside_with_python_ints_beyond_int64_names_the_point() -> None:
    cost = _strided()
    sizes = np.array([2**70, 3], dtype=object)
    with pytest.raises(OutsideDomain, match=r"H=3.*a larger H: H >= 15"):
        cost.evaluate("flops", B=1, C_in=3, H=sizes, W=64)


def test_a_sweep_refuses_a_point_outside() -> None:
    from symflops.analysis import sweep

    with pytest.raises(OutsideDomain):
        sweep(_strided().subs(B=1, C_in=3, W=64), {"H": [8, 64]})


def test_a_pinned_dim_of_a_trace_is_in_its_domain() -> None:
    torch = pytest.importorskip("torch")

    class Pinned(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch._assert(x.shape[1] == 8, "needs 8")
            return x.relu()

    cost = sf.trace(Pinned(), "B H", hints={"H": 8}, warn=False)
    assert "H = 8 (pinned)" in str(cost.domain)
    assert not cost.domain.contains(H=16)
    with pytest.raises(OutsideDomain, match="the model fixes H = 8"):
        cost.subs(H=16)


def _unshuffled() -> sf.Cost:
    # PixelUnshuffle(4) needs H a multiple of 4 (a condition for a symbolic H); then a 1x1
    # conv 16 -> 1 on (H/4) x 2 positions: exact FLOPs 2 * 16 * (H/4) * 2 = 16 H.
    net = sf.nn.Sequential(sf.nn.PixelUnshuffle(4), sf.nn.Conv2d(16, 1, 1, bias=False))
    return net.cost((1, 1, H, 8))


def test_a_crossing_is_reported_at_the_first_size_in_the_domain() -> None:
    from symflops.analysis import crossings

    cost = _unshuffled()
    # exact: 16 multiplies and 15 adds per output, (H/4) x 2 outputs: 62 H / 4 = 15.5 H
    assert cost.subs(H=40).flops == 31 * 10 * 2
    # it crosses the constant 1000 between H = 64 (992) and 68 (1054); the reported size
    # must lie on the lattice (a multiple of 4), with exact counts there
    (x,) = crossings(cost, sp.Integer(1000), "H")
    assert x.size is not None and x.size % 4 == 0
    assert cost.domain.contains(H=x.size)
    before = x.size - 4
    assert cost.subs(H=before).flops < 1000 <= cost.subs(H=x.size).flops
    assert crossings(cost, sp.Integer(1000), "H", within=(2 * x.size, 10 * x.size)) == ()


def test_compare_refuses_a_table_size_outside_a_domain(tmp_path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    from symflops.cli import main

    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n"
        "def a():\n    return nn.Sequential(nn.PixelUnshuffle(4), nn.Conv2d(16, 1, 1))\n"
        "def b():\n    return nn.Conv2d(1, 1, 3, padding=1)\n")
    pytest.importorskip("torch")
    code = main(["compare", f"{tmp_path}/nets.py:a", f"{tmp_path}/nets.py:b",
                 "--input", "B 1 H W", "--var", "H,W", "--at", "B=1", "--range", "30,32"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fails" in err and "H=30" in err and "multiple of 4" in err


@settings(max_examples=60, deadline=None)
@given(d=st.integers(2, 64), a=st.integers(-70, 70), k=st.integers(1, 3))
def test_the_ceiling_form_of_a_strided_size_equals_the_exact_floor(d: int, a: int,
                                                                  k: int) -> None:
    from symflops.notation import as_ceilings

    # floor((k H + a)/d) + 1, the shape of a strided layer's output size
    exact = sp.floor((k * H + a) / sp.Integer(d)) + 1
    shown = as_ceilings(exact)
    for h in range(1, 300):
        assert shown.xreplace({H: h}) == exact.xreplace({H: h}), h


def test_a_plot_samples_only_valid_points_and_refuses_when_none() -> None:
    from symflops import analysis as A

    cost = _unshuffled()  # H a multiple of 4
    fig = A.plot(cost, "H", [32, 34, 36, 38, 40])
    assert fig.axes[0].lines[0].get_xdata().tolist() == [32.0, 36.0, 40.0]
    with pytest.raises(OutsideDomain, match="multiple of 4"):
        A.plot(cost, "H", [33, 34])


def test_a_plot_marks_a_crossing_only_inside_its_range_and_the_domain() -> None:
    from symflops import analysis as A

    # 15.5 H FLOPs against 1000 + H: equal at H = 2000/29 ~ 68.97; the first size past it
    # on the lattice (H a multiple of 4) is 72 (1116 against 1072; at 68: 1054 < 1068)
    cost, line = _unshuffled(), 1000 + H
    marks = A.plot({"net": cost, "line": line}, "H", [16, 32, 64, 128]).axes[0].lines[2:]
    assert [m.get_xdata()[0] for m in marks] == [72]
    marks = A.plot({"net": cost, "line": line}, "H", [8, 16, 32, 64]).axes[0].lines[2:]
    assert marks == []  # past the plotted range


def test_scale_crossover_only_inside_the_range_and_the_domain(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from symflops.cli import main

    (tmp_path / "nets.py").write_text(
        "import symflops as sf\n"
        "def make():\n"
        "    return sf.nn.Sequential(sf.nn.PixelUnshuffle(4), sf.nn.Conv2d(16, 1, 1, bias=False),"
        " sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(), sf.nn.Linear(1, 2000, bias=False))\n")
    args = ["scale", f"{tmp_path}/nets.py:make", "--input", "B 1 H 8", "--var", "H",
            "--convention", "macs", "--crossover", "1,4"]
    # part 1 (the conv): 16 * floor(H/4) * 2 = 32 floor(H/4) MACs; part 4 (the Linear):
    # 2000 MACs; 32 * 62 = 1984 < 2000 up to H = 251, 32 * 63 = 2016 at 252 (a multiple of 4)
    assert main([*args, "--range", "64:512:*2"]) == 0
    out = capsys.readouterr().out
    assert "crossover: 1 equals 4 at H = 252 (numeric); at H = 252: 1 2,016, 4 2,000" in out
    assert main([*args, "--range", "16:128:*2"]) == 0  # below the crossing: none reported
    out = capsys.readouterr().out
    assert "crossover: 1 equals 4 at H = none from 16 to 128" in out


@settings(max_examples=60, deadline=None)
@given(d=st.integers(2, 8), a=st.integers(-9, 9), e=st.integers(2, 8), b=st.integers(-9, 9),
       c=st.lists(st.integers(-50, 50), min_size=3, max_size=3),
       step=st.integers(2, 16), offset=st.integers(0, 15))
def test_a_presented_formula_equals_the_exact_one_on_its_domain(
        d: int, a: int, e: int, b: int, c: list[int], step: int, offset: int) -> None:
    from symflops.notation import presented

    # a total expanded over two strided sizes (the paper table's total row has this shape)
    h_out, w_out = sp.floor((H + a) / d) + 1, sp.floor((W + b) / e) + 1
    exact = sp.expand(c[0] * h_out * w_out + c[1] * h_out + c[2])
    shown = presented(exact)
    lattice = presented(exact, {H: (step, offset % step)})
    for h in range(1, 70):
        for w in (1, 2, 3, 7, 30, 31):
            point = {H: h, W: w}
            assert shown.xreplace(point) == exact.xreplace(point), (h, w)
            if h % step == offset % step:
                assert lattice.xreplace(point) == exact.xreplace(point), (h, w)


def test_the_rendered_cnn_total_is_shorter_and_equal() -> None:
    from symflops.notation import presented

    net = sf.nn.Sequential(sf.nn.Conv2d(3, 16, 3, stride=2, padding=1), sf.nn.ReLU(),
                           sf.nn.MaxPool2d(2), sf.nn.Conv2d(16, 16, 3, padding=1))
    total = net.cost((B, 3, H, W)).flops
    shown = presented(total)
    assert not shown.has(sp.floor) and sp.count_ops(shown) < sp.count_ops(total)
    for h in range(2, 80, 3):
        point = {B: 2, H: h, W: h + 1}
        assert shown.xreplace(point) == total.xreplace(point)


# Conditions torch guards state about a strided conv's output (RAFT's encoders at stride 8):
# on H = 8k, W = 8j with k, j >= 16, floor(H/8) = floor((H - 1)/8) + 1 = k, so the first two
# hold at every lattice point and are not printed; the third, k != k*j, holds because j >= 16
# (the two sides differ by -k*(j - 1), never 0). floor(H/8) = 20 holds at one point only.
_ROWS = sp.floor(H / 8 - sp.Rational(1, 8)) + 1
_COLS = sp.floor(W / 8 - sp.Rational(1, 8)) + 1
_IMPLIED = [sp.Eq(98 * B * sp.floor(H / 8) * sp.floor(W / 8), 98 * B * _ROWS * _COLS),
            sp.Eq(sp.Mod(49 * _ROWS * _COLS, sp.floor(H / 8) * sp.floor(W / 8)), 0),
            sp.Ne(sp.floor(H / 8), _ROWS * _COLS)]
_NOT_IMPLIED = [sp.Eq(sp.floor(H / 8), 20), sp.Ne(sp.floor(W / 8), 16)]


@pytest.mark.parametrize("cond", _IMPLIED + _NOT_IMPLIED, ids=str)
def test_a_condition_the_lattice_implies_is_not_printed_but_still_checked(cond: sp.Basic) -> None:
    axes = [("t", sp.Eq(sp.Mod(H, 8), 0)), ("t", H >= 121), ("t", sp.Eq(sp.Mod(W, 8), 0)),
            ("t", W >= 121)]
    d = Domain([*axes, ("t", cond)])
    implied = cond in _IMPLIED
    assert (d.describe() == "H a multiple of 8, H >= 128; W a multiple of 8, W >= 128") == implied
    assert cond in [c for _, c in d.conditions]
    # brute force over the lattice: an implied condition holds at every point tried
    held = all(bool(cond.subs({H: h, W: w, B: 2})) for h in range(128, 520, 8)
               for w in range(128, 520, 8))
    assert held == implied


# A condition on one size whose floors repeat is read as what it is. By hand, for Swin-T's
# last window at 224: 7*floor(H/224 + 55/56) <= 7 holds while (H + 220)/224 < 2, i.e. up to
# H = 227. floor(H/4) <= 7*floor(H/28 + 6/7) holds everywhere: with H = 28q + r, the left
# is 7q + floor(r/4) and the right 7q (r < 4, where floor(r/4) = 0) or 7q + 7 (r >= 4,
# where floor(r/4) <= 6). 3*floor(H/8) >= floor(H/16) + 20: 64 gives 24 >= 24, 63 gives
# 21 >= 23.
@pytest.mark.parametrize("cond,lower,expected", [
    (7 * sp.floor(H / 224 + sp.Rational(55, 56)) <= 7, 116, ("upper", 227)),
    (sp.floor(H / 4) <= 7 * sp.floor(H / 28 + sp.Rational(6, 7)), 1, ("implied", 0)),
    (sp.floor(H / 8) * 3 >= sp.floor(H / 16) + 20, 1, ("lower", 64)),
    (sp.Ne(sp.Mod(H, 16), 0), 1, None),  # a hole every 16: not a range
], ids=["swin-window", "window-fits", "two-floors", "holes"])
def test_a_periodic_condition_reads_as_a_bound(cond: sp.Basic, lower: int,
                                               expected: tuple | None) -> None:
    from symflops.domain import _periodic_reading

    got = _periodic_reading(cond, H, lower, 1, 0)
    if cond.has(sp.Mod) or expected is not None:
        assert got == expected
    _agrees_with_every_size(cond, got, lower, 1, 0)


def _agrees_with_every_size(cond: sp.Basic, reading: tuple | None, lower: int, step: int,
                            offset: int) -> None:
    """Brute force: the reading says at every lattice size in a wide range what the
    condition evaluates to there."""
    if reading is None:
        return
    kind, v = reading
    first = lower + (offset - lower) % step
    for h in range(first, first + 3000, step):
        truth = bool(cond.xreplace({H: sp.Integer(h)}))
        said = {"implied": True, "lower": h >= v, "upper": h <= v}[kind]
        assert truth == said, (cond, reading, h)


@settings(max_examples=60, deadline=None)
@given(a=st.integers(1, 12), b=st.integers(0, 11), c=st.integers(-3, 3), d=st.integers(1, 9),
       k=st.integers(-40, 40), lower=st.integers(1, 50), step=st.sampled_from([1, 2, 4, 8]),
       strict=st.booleans())
def test_periodic_readings_agree_with_brute_force(a: int, b: int, c: int, d: int, k: int,
                                                  lower: int, step: int, strict: bool) -> None:
    from symflops.domain import _periodic_reading

    lhs = c * sp.floor(H / a + sp.Rational(b, a)) + sp.floor(H / d)
    rhs = sp.floor(H / (a * d)) * 2 + k
    cond = sp.Lt(lhs, rhs) if strict else sp.Le(lhs, rhs)
    if cond in (sp.true, sp.false):
        return
    _agrees_with_every_size(cond, _periodic_reading(cond, H, lower, step, 0), lower, step, 0)


def test_a_guard_read_as_an_upper_bound_says_so_and_refuses_past_it() -> None:
    d = Domain([("SwinTransformer", H >= 116),
                ("SwinTransformer", 7 * sp.floor(H / 224 + sp.Rational(55, 56)) <= 7)])
    assert d.describe() == "116 <= H <= 227 (another code path above 227)"
    assert d.contains(H=227) and not d.contains(H=228)
    with pytest.raises(OutsideDomain, match="another code path past H = 227"):
        d.check({H: 256})


def test_a_bound_with_a_fraction_reads_as_a_bound() -> None:
    # RAFT's pyramid needs floor(H/8) >= 16, which SymPy writes H/8 >= 16: H >= 128
    d = Domain([("RAFT", sp.floor(H / 8) >= 16), ("RAFT", sp.Lt(W / 3, sp.Rational(7, 2)))])
    assert d.describe() == "H >= 128; 1 <= W <= 10 (verified up to 10)"
    assert not d.contains(H=127, W=10) and d.contains(H=128, W=10)
    assert not d.contains(H=128, W=11)


def test_a_chunk_count_that_is_the_same_for_every_batch_is_not_printed() -> None:
    # RAFT's torch chunk count: floor((3*B - 1)/B) = floor(3 - 1/B) = 2 for every B >= 1
    # (by hand: 0 < 1/B <= 1); at B = 1 the ratio is exactly 2
    d = Domain([("raft", sp.Eq(sp.floor((3*B - 1)/B), 2)), ("raft", H >= 128)])
    assert d.describe() == "H >= 128"
    assert d.failing({B: sp.Integer(1), H: sp.Integer(128)}) is None
    # floor((3*B - 5)/B) is 0 at B = 2 and 2 only from B = 5 on: kept, and checked
    kept = Domain([("t", sp.Eq(sp.floor((3*B - 5)/B), 2))])
    assert "floor" in kept.describe()
    assert kept.failing({B: sp.Integer(2)}) is not None
    assert kept.failing({B: sp.Integer(5)}) is None


@settings(max_examples=150, deadline=None)
@given(a=st.integers(-6, 6), b=st.integers(-9, 9), c=st.integers(-4, 4).filter(bool),
       d=st.integers(-5, 5), k=st.integers(-3, 3), lower=st.integers(1, 6),
       ceil=st.booleans(), relation=st.sampled_from([sp.Eq, sp.Ne, sp.Ge, sp.Le]))
def test_a_ratio_reading_holds_at_every_size_it_drops(a: int, b: int, c: int, d: int, k: int,
                                                       lower: int, ceil: bool,
                                                       relation: type) -> None:
    from symflops.domain import _ratio_reading

    rounded = (sp.ceiling if ceil else sp.floor)((a*B + b) / (c*B + d))
    cond = relation(rounded, k)
    if cond in (sp.true, sp.false):
        return
    if _ratio_reading(cond, B, lower, None) == "implied":  # brute force far past the turns
        assert all(cond.xreplace({B: sp.Integer(v)}) is sp.true for v in range(lower, 2000))


def _even_map(s: sp.Symbol, stride: int) -> sp.Basic:
    """``ceil(s/stride)`` even, as torch writes it: ``2*ceiling(m/2) == m`` for the map size
    ``m = floor(s/stride - 1/stride) + 1`` (MobileViT's unfold of 2 x 2 patches)."""
    m = sp.floor(s / stride - sp.Rational(1, stride)) + 1
    return sp.Eq(2 * sp.ceiling((m - 1) / 2 + sp.Rational(1, 2)), m)


def test_periodic_conditions_read_as_remainders() -> None:
    from symflops.symbols import B, W

    # ceil(H/8), ceil(H/16) even and ceil(H/32) odd: by hand, H in (24, 32] + 64k
    conds = [_even_map(H, 8), _even_map(H, 16), sp.Not(_even_map(H, 32)),
             _even_map(W, 8)]
    # a product over both sizes that those imply: ceil(H/8)*ceil(W/8) a multiple of 4
    both = sp.Eq(sp.Mod(B * (sp.floor(H / 8 - sp.Rational(1, 8)) + 1)
                        * (sp.floor(W / 8 - sp.Rational(1, 8)) + 1), 4), 0)
    # MobileViT's unfold: ceil(H/8)*ceil(W/8) tokens are 4 patches of ceil(H/16)*ceil(W/16)
    f8h, f8w = (sp.floor(s / 8 - sp.Rational(1, 8)) for s in (H, W))
    unfold = sp.Eq(64 * B * (f8h + 1) * (f8w + 1), 256 * B * sp.ceiling(f8h / 2 + sp.Rational(
        1, 2)) * sp.ceiling(f8w / 2 + sp.Rational(1, 2)))
    # one that holds below H = 64 only: no remainder reading implies it, so it is printed
    below = sp.Eq(sp.floor((f8h + 1) / sp.ceiling(f8h / 2 + sp.Rational(1, 2)))
                  + sp.floor(H / 64), 2)
    # its fold back: floor(ceil(H/8) / ceil(H/16)) == 2 patches a side, Max(1, that) is
    # that, ceil(H/8) a multiple of ceil(H/16): ratios of roundings, proven per remainder
    x, c = f8h + 1, sp.ceiling(f8h / 2 + sp.Rational(1, 2))
    fold = [sp.Eq(sp.floor(x / c), 2), sp.Eq(sp.Max(1, sp.floor(x / c)), sp.floor(x / c)),
            sp.Eq(64 * B * sp.Mod(x, c), 0)]
    d = Domain([("t", c) for c in [*conds, both, unfold, *fold]])
    assert d.describe() == "H mod 64 in 25..32; W mod 16 in 9..16"
    assert str(Domain([*d.conditions, ("t", below)])).endswith(str(below))
    assert [c.latex for c in d.clauses()][0] == r"H \bmod 64 \in \{25, \dots, 32\}"
    for h in range(1, 600):  # brute force: the reading is the conditions, size by size
        by_hand = -(-h // 8) % 2 == 0 and -(-h // 16) % 2 == 0 and -(-h // 32) % 2 == 1
        assert d.contains(H=h, W=16, B=1) == by_hand, h
        assert (h % 64 in range(25, 33)) == by_hand
    assert not d.contains(H=32, W=17, B=1)  # W's own reading: ceil(17/8) = 3 is odd


def test_inequalities_the_remainders_imply_are_not_printed() -> None:
    from symflops.symbols import B, W

    # the lattice of MobileViT at 224: ceil(H/8), ceil(H/16) even, ceil(H/32) odd (H in
    # 25..32 mod 64), ceil(W/8) even (W in 9..16 mod 16)
    lattice = [_even_map(H, 8), _even_map(H, 16), sp.Not(_even_map(H, 32)), _even_map(W, 8)]
    f8h, f8w = (sp.floor(s / 8 - sp.Rational(1, 8)) for s in (H, W))
    h8, w8 = f8h + 1, f8w + 1                          # ceil(H/8) = 8k + 4, ceil(W/8) = 2j + 2
    h16, w16 = (sp.ceiling(f / 2 + sp.Rational(1, 2)) for f in (f8h, f8w))  # 4k + 2, j + 1
    # by hand on the lattice: floor(h8/h16) = 2, so 64*B*h16*w16*2*2 >= 256 >= 2
    tokens = 64 * B * h16 * w16 * sp.floor(h8 / h16) * sp.floor(w8 / w16) >= 2
    # 8k + 4 != 4k + 2; Mod(2*2, 4*(4k + 2)) = 4 != 0; w16 < h16*w16 as h16 >= 2
    implied = [tokens, sp.Ne(64 * B * h8, 64 * B * h16),
               sp.Ne(16 * B * sp.Mod(sp.floor(h8 / h16) * sp.floor(w8 / w16), 4 * h16), 0),
               w16 < h16 * w16]
    # not implied: h16*w16 >= 3 fails at H = 32, W = 16 (2*1 = 2)
    kept = h16 * w16 >= 3
    d = Domain([("t", c) for c in [*lattice, *implied, kept]])
    assert d.describe() == f"H mod 64 in 25..32; W mod 16 in 9..16; {kept}"
    # each dropped one holds at every point of the lattice (brute force, far out too); the
    # kept one fails at some
    on_lattice = Domain([("t", c) for c in lattice])
    points = [(b, h, w) for b in (1, 2, 7) for h in range(1, 1200) for w in (9, 16, 41, 505)
              if on_lattice.contains(B=b, H=h, W=w)]
    assert len(points) == 3 * 19 * 8 * 4  # 19 blocks of 64 below 1200, 8 remainders each
    assert any(kept.xreplace({B: b, H: h, W: w}) is sp.false for b, h, w in points)
    for cond in implied:
        assert all(cond.xreplace({B: b, H: h, W: w}) is sp.true for b, h, w in points), cond
    # still checked as written
    assert not d.contains(B=1, H=32, W=16)
