"""Scaling analysis: aligned forms, growth orders, terms, breakdowns, crossovers, sweeps,
plots and comparisons, each checked against substitution at concrete sizes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from example_models import load_example
from hypothesis import given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops import analysis as A
from symflops import nn
from symflops.errors import SymflopsError
from symflops.symbols import B, H, L, N, W, dim, heads, mlp_ratio

_load_example = load_example


resnet50 = _load_example("sfnn_resnet").resnet50


@pytest.fixture(scope="module")
def rn50() -> sf.Cost:
    return resnet50().cost((B, 3, H, W), convention="macs")


def stem() -> sf.Cost:
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2, padding=1)).cost((B, 3, H, W))


# --------------------------------------------------------------------------- aligned
def test_aligned_simple_floor() -> None:
    # H = 32h: floor((32h - 1)/2) + 1 = 16h - 1 + 1 = 16h = H/2
    assert A.aligned(sp.floor((H - 1) / 2) + 1, {H: 32}) == H / 2
    # ceil(H/3) at H = 3h is h = H/3
    assert A.aligned(sp.ceiling(H / 3), {"H": 3}) == H / 3


def test_alignment_finds_total_stride(rn50: sf.Cost) -> None:
    assert A.alignment(stem(), [H, W]) == {H: 4, W: 4}   # conv stride 2, then pool stride 2
    assert A.alignment(rn50, [H, W]) == {H: 32, W: 32}
    assert A.alignment(H**2, H) == {H: 1}


def test_aligned_resnet_is_exact_at_multiples(rn50: sf.Cost) -> None:
    al = A.aligned(rn50, {H: 32, W: 32})
    assert not al.flops.atoms(sp.floor), al.flops
    assert sp.Poly(al.flops, B, H, W).total_degree() == 3
    for h, w in ((32, 32), (224, 224), (64, 320), (512, 96)):
        assert al.subs(B=2, H=h, W=w).flops == rn50.subs(B=2, H=h, W=w).flops
    # torchvision's published resnet50 figure: 4.09 GMACs at 224 x 224
    assert al.subs(B=1, H=224, W=224).flops == 4_089_184_256
    # between multiples the aligned form is only an approximation
    assert al.subs(B=1, H=230, W=230).flops != rn50.subs(B=1, H=230, W=230).flops
    # every node of the tree is aligned, shapes too
    assert al.output_shape[1] == 1000
    assert all(not s.atoms(sp.floor) for _, n in al.walk() for s in n.output_shape)


def test_aligned_refuses_too_small_a_multiple(rn50: sf.Cost) -> None:
    with pytest.raises(SymflopsError, match="does not remove every floor"):
        A.aligned(rn50, {H: 16, W: 16})
    with pytest.raises(SymflopsError, match="positive integers"):
        A.aligned(rn50, {H: 0})


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 6), m=st.integers(1, 40), pad=st.integers(0, 3),
       kernel=st.integers(1, 7), stride=st.integers(1, 4))
def test_aligned_conv_matches_substitution(k: int, m: int, pad: int, kernel: int,
                                           stride: int) -> None:
    c = nn.Conv2d(2, 3, kernel, stride=stride, padding=pad).cost((1, 2, H, 5 + kernel))
    mult = A.alignment(c, H)[H]
    al = A.aligned(c, {H: mult})
    h = mult * (m + kernel)  # big enough for the kernel
    assert al.subs(H=h).flops == c.subs(H=h).flops


# --------------------------------------------------------------------------- growth
def test_growth_orders(rn50: sf.Cost) -> None:
    assert A.growth_order(rn50, H) == 1
    assert A.growth_order(rn50, "W") == 1
    assert A.growth_order(rn50, [H, W]) == 2   # quadratic in resolution
    assert A.growth_order(rn50, B) == 1
    vit = nn.Repeat(nn.TransformerBlock(dim, heads, mlp_ratio), L).cost((B, N, dim))
    assert A.growth_order(vit, N) == 2         # attention's N^2
    assert A.growth_order(vit, L) == 1
    assert A.growth_order(vit, dim) == 2       # projections and MLP: dim^2
    assert A.growth_order(vit, [N, dim]) == 3  # N^2*dim and N*dim^2 both
    assert A.growth_order(vit, "V") == 0       # a symbol the cost does not depend on
    assert A.growth_order(vit, dim, quantity="params") == 2
    assert A.growth_order(sp.sqrt(N) + N**sp.Rational(3, 2), N) == sp.Rational(3, 2)


def test_leading_terms_of_attention() -> None:
    c = nn.TransformerBlock(dim, heads, mlp_ratio).cost((B, N, dim), convention="macs")
    # MACs: Q K^T is B*heads*N*N*(dim/heads) = B*N^2*dim, A V the same: 2*B*dim*N^2;
    # everything else (qkv 3, out 1, mlp 2*mlp_ratio, times B*N*dim^2) is linear in N
    lead = A.leading_terms(c, N)
    assert [(t.monomial, t.coefficient, t.degree) for t in lead] == [(N**2, 2 * B * dim, 2)]
    all_terms = A.terms(c, N)
    assert [t.degree for t in all_terms] == [2, 1]
    assert sp.expand(all_terms[1].coefficient - B * dim**2 * (4 + 2 * mlp_ratio)) == 0
    assert sp.expand(sum(t.expr for t in all_terms) - c.flops) == 0


def test_terms_of_floored_cost_are_aligned(rn50: sf.Cost) -> None:
    ts = A.terms(rn50, [H, W])
    total = sum(t.expr for t in ts)
    for h in (32, 96, 224):
        assert total.subs({B: 1, H: h, W: h}) == rn50.subs(B=1, H=h, W=h).flops
    # without alignment the floors are dropped: leading term exact, the rest approximate
    lead_relaxed = A.leading_terms(rn50, [H, W])
    lead_aligned = A.leading_terms(rn50, [H, W], align="auto")
    assert [t.expr for t in lead_relaxed] == [t.expr for t in lead_aligned]
    with pytest.raises(SymflopsError, match="not a polynomial"):
        A.terms(sp.sqrt(N), N)


# --------------------------------------------------------------------------- breakdowns
def test_breakdown_shares(rn50: sf.Cost) -> None:
    at = {"B": 1, "H": 224, "W": 224}
    parts = A.breakdown(rn50, at)
    assert len(parts) == len(rn50.children)
    assert sum(int(p.value) for p in parts) == rn50.subs(**at).flops
    assert abs(sum(p.share for p in parts if p.share is not None) - 1) < 1e-12
    values = [int(p.value) for p in parts]
    assert values == sorted(values, reverse=True)
    first = parts[0]
    assert int(first.value) == rn50[first.path].subs(**at).flops
    deep = A.breakdown(rn50, at, depth=3)
    assert len(deep) > len(parts)
    assert sum(int(p.value) for p in deep) == rn50.subs(**at).flops


def test_breakdown_counts_repeats() -> None:
    c = nn.Repeat(nn.Linear(8, 8), L).cost((B, 8))
    (part,) = A.breakdown(c, {"B": 1, "L": 12})
    assert part.value == 12 * nn.Linear(8, 8).cost((1, 8)).flops
    (sym,) = A.breakdown(c)
    assert sym.share is None and sym.value.free_symbols == {B, L}


def test_term_breakdown() -> None:
    c = nn.TransformerBlock(dim, heads, mlp_ratio).cost((B, N, dim), convention="macs")
    at = {"B": 1, "dim": 768, "heads": 12, "mlp_ratio": 4}
    short = A.term_breakdown(c, N, {**at, "N": 197})
    long = A.term_breakdown(c, N, {**at, "N": 16384})
    assert short[0][0].degree == 1 and long[0][0].degree == 2  # the N^2 term takes over
    assert sum(v for _, v, _ in short) == c.subs(N=197, **at).flops
    with pytest.raises(SymflopsError, match="every symbol"):
        A.term_breakdown(c, N, {"N": 4})


# --------------------------------------------------------------------------- crossings
def test_crossing_attention_vs_mlp_symbolic() -> None:
    c = nn.TransformerBlock(dim, heads, mlp_ratio).cost((B, N, dim), convention="macs")
    mha = c["attention.mha"]
    core = mha["scores"].flops + mha["context"].flops   # 2*B*N^2*dim
    mlp = c["mlp.fc1"].flops + c["mlp.fc2"].flops       # 2*B*N*dim^2*mlp_ratio
    (x,) = A.crossings(core, mlp, N)
    assert x.method == "symbolic" and x.size is None and x.values is None
    assert x.root == dim * mlp_ratio
    assert sp.expand((core - mlp).subs(N, dim * mlp_ratio)) == 0
    # with numbers: N = 4 * 768 = 3072, where both are 2*3072^2*768 MACs (B = 1)
    (x,) = A.crossings(core, mlp, "N", at={"B": 1, "dim": 768, "mlp_ratio": 4})
    assert (x.root, x.size, x.values) == (3072, 3072, (2 * 3072**2 * 768,) * 2)


def test_crossing_exact_convention_counts_softmax() -> None:
    c = nn.TransformerBlock(dim, heads, mlp_ratio).cost((B, N, dim))
    mha = c["attention.mha"]
    core = sum(mha[k].flops for k in ("scores", "scale", "softmax", "context"))
    mlp = c["mlp"].flops
    at = {"B": 1, "dim": 768, "heads": 12, "mlp_ratio": 4}
    (x,) = A.crossings(core, mlp, N, at=at)
    f = sp.lambdify(N, (core - mlp).subs({B: 1, dim: 768, heads: 12, mlp_ratio: 4}))
    assert x.size is not None and f(x.size - 1) < 0 < f(x.size)


def test_crossing_numeric_with_floors() -> None:
    # a strided conv's floors keep SymPy from solving: searched over integers instead
    a = nn.Conv2d(4, 4, 3, stride=2).cost((1, 4, H, 64)).flops
    (x,) = A.crossings(a, sp.Integer(100000), H)
    assert x.method == "numeric"
    h = int(x.root)
    f = sp.lambdify(H, a - 100000)
    assert f(h - 1) < 0 <= f(h)
    assert x.size == h and x.values == (int(a.subs(H, h)), 100000)
    # the search never leaves the range asked: none below the crossing
    assert A.crossings(a, sp.Integer(100000), H, within=(1, h - 1)) == ()
    with pytest.raises(SymflopsError, match="needs values"):
        A.crossings(nn.Conv2d(4, 4, 3, stride=2).cost((B, 4, H, 64)), sp.Integer(5), H)


# --------------------------------------------------------------------------- sweeps
def test_sweep_grid_matches_subs(rn50: sf.Cost) -> None:
    hs, ws = np.array([32, 100, 224]), np.array([64, 225])
    sw = A.sweep(rn50, {"H": hs, "W": ws}, at={"B": 2}, quantity=("flops", "params"))
    assert sw.results["flops"].shape == (3, 2)
    assert sw.results["flops"].dtype == np.int64
    for i, h in enumerate(hs):
        for j, w in enumerate(ws):
            assert sw.results["flops"][i, j] == rn50.subs(B=2, H=int(h), W=int(w)).flops
    assert (sw.results["params"] == rn50.params).all()
    assert sw.labels["flops"] == "MACs"
    rows = sw.table()
    assert len(rows) == 6 and set(rows[0]) == {"H", "W", "flops", "params"}
    assert "4,089,184,256" not in sw.to_text()  # 224 x 64 is not 224 x 224
    square = A.sweep(rn50, {("H", "W"): [224]}, at={"B": 1})
    assert square.results["flops"].tolist() == [4_089_184_256]
    assert "4,089,184,256" in square.to_text()


def test_sweep_zipped_and_errors(rn50: sf.Cost) -> None:
    sw = A.sweep(rn50, {"H": [32, 64], "W": [64, 32]}, at={"B": 1}, grid=False)
    assert sw.results["flops"][0] == sw.results["flops"][1]  # H and W enter symmetrically
    with pytest.raises(SymflopsError, match="missing=\\['B'\\]"):
        A.sweep(rn50, {"H": [32], "W": [32]})
    with pytest.raises(SymflopsError, match="one length"):
        A.sweep(rn50, {"H": [32, 64], "W": [32]}, at={"B": 1}, grid=False)


def test_sweep_of_expression_and_slope() -> None:
    sw = A.sweep(3 * N**2 + N, {N: np.arange(1, 6)})
    assert sw.results["flops"].tolist() == [3 * n * n + n for n in range(1, 6)]
    xs = np.geomspace(10, 10**4, 12)
    assert A.fit_slope(xs, 7 * xs**2.5) == pytest.approx(2.5)
    with pytest.raises(SymflopsError):
        A.fit_slope([1, 1], [2, 3])


# --------------------------------------------------------------------------- plot
def test_plot_writes_png_with_slopes(tmp_path, rn50: sf.Cost) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")  # an optional extra; installed with [test]
    tb = nn.TransformerBlock(768, 12, 4).cost((B, H * W // 256, 768))
    out = tmp_path / "scale.png"
    fig = A.plot({"resnet50": rn50, "vit-block": tb}, ["H", "W"], np.arange(256, 2049, 256),
                 at={"B": 1}, path=str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0].startswith("resnet50: growth order 2 as H = W → ∞; fitted log-log slope 2.0")
    assert labels[1].startswith("vit-block: growth order 4 as H = W → ∞; fitted log-log slope")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


# --------------------------------------------------------------------------- compare
def test_compare_strides() -> None:
    s1 = nn.Conv2d(8, 8, 3, padding=1).cost((1, 8, H, H))
    s2 = nn.Conv2d(8, 8, 3, stride=2, padding=1).cost((1, 8, H, H))
    cmp = A.compare(s1, s2, H)
    assert cmp.limit == 4   # a quarter of the outputs
    r = cmp.evaluate(np.array([64, 65]))
    assert r[0] == pytest.approx(4.0)
    assert r[1] == pytest.approx(65 * 65 / 33 / 33)


def test_compare_transformer_to_its_mlp() -> None:
    c = nn.TransformerBlock(dim, heads, mlp_ratio).cost((B, N, dim), convention="macs")
    cmp = A.compare(c, c["mlp"], N)
    assert cmp.limit == sp.oo
    assert sp.simplify(cmp.ratio - (N + dim * mlp_ratio + 2 * dim) / (dim * mlp_ratio)) == 0
    fixed = A.compare(c, c["mlp"], dim, at={"N": 197, "mlp_ratio": 4})
    assert fixed.limit == sp.Rational(3, 2)  # (4 + 2*4) / (2*4) once dim^2 dominates


def test_compare_two_models_along_tied_symbols() -> None:
    # the same 3x3 conv at stride 1 and 2, H = W tied, B = 1: per output pixel 8 channels
    # of 8*9 MACs = 576, H*W pixels against ceil(H/2)*ceil(W/2), so the ratio tends to 4
    # and both grow as H^2
    a = nn.Conv2d(8, 8, 3, padding=1).cost((B, 8, H, W), convention="macs")
    b = nn.Conv2d(8, 8, 3, stride=2, padding=1).cost((B, 8, H, W), convention="macs")
    cmp = A.compare(a, b, ["H", "W"], at={"B": 1}, names=("s1", "s2"))
    assert cmp.names == ("s1", "s2") and cmp.symbol == H
    assert cmp.limit == 4 and cmp.orders == (2, 2)
    for s in (7, 64, 1001):  # the tied expressions are the models' counts at H = W = s
        assert cmp.a.xreplace({H: s}) == a.subs(B=1, H=s, W=s).flops == 576 * s * s
        assert cmp.b.xreplace({H: s}) == b.subs(B=1, H=s, W=s).flops
        assert cmp.b.xreplace({H: s}) == 576 * ((s + 1) // 2) ** 2
    assert cmp.evaluate([1001])[0] == pytest.approx(1001**2 / 501**2)
    assert cmp.crossings == ()  # stride 1 does more work at every size
    # the crossings are those of crossings(), domains included
    c = A.compare(a, 100 * H**2 + 500, "H", at={"B": 1, "W": 9})
    assert c.crossings == A.crossings(a, 100 * H**2 + 500, "H", at={"B": 1, "W": 9})
    # 576*9*H = 100*H^2 + 500 at H = (2592 +- sqrt(2592^2 - 50000))/100: 0.097 (below 1,
    # not a size) and (648 + sqrt(416779))/25 = 51.74; at 51 a is larger, at 52 b is
    (x,) = c.crossings
    assert sp.simplify(x.root - (648 + sp.sqrt(416779)) / 25) == 0 and x.size == 52
    assert x.values == (5184 * 52, 100 * 52**2 + 500)
    assert 5184 * 51 > 100 * 51**2 + 500


def test_compare_reads_crossings_only_when_asked() -> None:
    # with a floor and B left free the ratio and its limit are exact, while a numeric
    # crossing search would need B: that error comes only when the crossings are read
    a = nn.Conv2d(4, 4, 3, stride=2).cost((B, 4, H, 64))
    cmp = A.compare(a, 1000 * B, "H")
    assert cmp.limit == sp.oo and cmp.orders == (1, 0)
    assert cmp.ratio.xreplace({B: 3, H: 9}) == a.subs(B=3, H=9).flops / 3000
    with pytest.raises(SymflopsError, match=r"needs values for the other symbols.*B"):
        _ = cmp.crossings


@pytest.mark.parametrize("call, message", [
    (lambda: A.compare(H**2, H, "H", names=("x", "x")), r"two different names"),
    (lambda: A.compare(H**2, sp.Integer(0), "H", names=("x", "y")), r"y costs 0 flops"),
    (lambda: A.compare(sp.Integer(0) * H, H, "H"), r"a costs 0 flops"),
], ids=["same-names", "b-zero", "a-zero"])
def test_compare_errors(call: object, message: str) -> None:
    with pytest.raises(SymflopsError, match=message):
        call()  # type: ignore[operator]


def test_vit_attention_is_quartic_in_resolution() -> None:
    # N = (H/16)*(W/16) patches; attention's N^2*dim term makes the cost degree 4 in
    # resolution, while the projections and the MLP (N*dim^2) are degree 2
    tokens = sp.floor(H / 16) * sp.floor(W / 16)
    c = nn.Repeat(nn.TransformerBlock(768, 12, 4), 12).cost((B, tokens, 768), convention="macs")
    assert A.growth_order(c, [H, W]) == 4
    assert A.growth_order(c, H) == 2
    assert A.alignment(c, [H, W]) == {H: 16, W: 16}
    (lead,) = A.leading_terms(c, [H, W], align="auto")
    # 12 layers * 2 (Q K^T and A V) * B * N^2 * dim with N = H*W/256
    assert sp.expand(lead.expr - 12 * 2 * B * 768 * (H * W / 256) ** 2) == 0
    # where the N^2 term overtakes the linear-in-N terms (2*N^2*dim vs 12*N*dim^2 MACs):
    # N = 6*dim = 4608 tokens, i.e. H = W = 16*sqrt(4608) ~ 1086
    (x,) = A.crossings(12 * 2 * B * 768 * N**2, 12 * B * N * 768**2 * (4 + 2 * 4), N)
    assert x.root == 4608


def test_sweep_checks_the_formulas_conditions() -> None:
    # a 5x5 kernel with padding 1 needs H + 2 >= 5: H = 2 has no output row
    c = nn.Conv2d(3, 8, 5, padding=1).cost((1, 3, H, 16))
    assert A.sweep(c, {"H": [3, 4]}).results["flops"].tolist() == [
        c.subs(H=3).flops, c.subs(H=4).flops]
    with pytest.raises(SymflopsError, match="condition") as info:
        A.sweep(c, {"H": np.arange(1, 9)})
    assert "H=1" in str(info.value)


def test_sweep_of_exact_python_ints_tables_exactly():
    # sizes beyond int64 go through object arrays (exact Python ints); the table keeps them
    # exact instead of failing on .item(). A 3x3 same-padded conv then ReLU on (B, 3, H, 8):
    # conv 8*H*8 outputs * (27 + 26 + 1) + ReLU 8*H*8 = 3520*H per image.
    c = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.ReLU()).cost((B, 3, H, W))
    sw = A.sweep(c, {"H": np.array([8, 2**62], dtype=object)}, at={"B": 2**40, "W": 8})
    rows = sw.table()
    assert [r["flops"] for r in rows] == [3520 * 8 * 2**40, 3520 * 2**62 * 2**40]
    assert rows[1]["flops"] == c.subs(B=2**40, H=2**62, W=8).flops
    assert f"{3520 * 2**62 * 2**40:,}" in sw.to_text()


def test_growth_order_of_a_cost_joined_over_code_paths() -> None:
    # trace(paths="all") gives a Piecewise; SymPy's limit raised TypeError on it
    H, W = sp.symbols("H W", positive=True, integer=True)
    same = sp.Piecewise((3 * H * W, H >= 17), (9 * H * W, True))
    assert A.growth_order(same, "H") == 1 and A.growth_order(same, ["H", "W"]) == 2
    assert A.growth_order(2 * same + H, ["H", "W"]) == 2  # folded out of a sum first
    differ = sp.Piecewise((3 * H * W, H >= 17), (9 * H**2 * W, True))
    with pytest.raises(SymflopsError, match="code paths grow at different orders") as e:
        A.growth_order(differ, "H")
    assert e.value.values == {"H >= 17": 1, "True": 2}


def test_doc_of_a_model_joined_over_code_paths(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from symflops.cli import main

    (tmp_path / "small.py").write_text(
        "from tests.test_trace_domain import _SmallInputsElsewhere\n"
        "def make():\n    return _SmallInputsElsewhere()\n", encoding="utf-8")
    assert main(["doc", f"{tmp_path / 'small.py'}:make", "--input", "B 3 H W", "--hint",
                 "H=32", "--hint", "W=32", "--paths", "all"]) == 0
    out = capsys.readouterr().out
    # both paths are one op per element (x * 2 above 16, a sigmoid below): order 1 in H,
    # 2 in H = W
    assert "| FLOPs (exact) | 1 | 1 | 2 | 1 |" in out


def test_doc_names_each_paths_order_when_they_differ() -> None:
    from symflops.cli._model_doc import _order_text

    H, W = sp.symbols("H W", positive=True, integer=True)
    differ = sp.Piecewise((3 * H * W, H >= 17), (9 * H**2 * W, True))
    assert _order_text(differ, [H]) == "1 (H >= 17); 2 (True)"
    assert _order_text(differ, [W]) == "1"


def test_compare_refuses_a_cost_joined_over_code_paths_and_says_how() -> None:
    # SymPy's limit raised "Invalid comparison of non-real zoo" on the Piecewise
    H = sp.Symbol("H", positive=True, integer=True)
    joined = sp.Piecewise((96 * H, H >= 17), (288 * H, True))
    with pytest.raises(SymflopsError, match="a is joined over code paths") as e:
        A.compare(joined, 96 * H, "H")
    assert e.value.options == {"paths": "one", "hints": ...}
    assert "trace with --paths one (the example's path), or give --hint NAME=SIZE" in \
        e.value.cli_text()
    assert A.compare(joined.args[0].expr, 96 * H, "H").limit == 1  # one path compares
