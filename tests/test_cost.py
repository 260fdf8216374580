"""``Cost``: the tree (walk, leaves, paths), conventions, subs, simplify, evaluate, and the
containers Repeat and Residual."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops import nn
from symflops.conventions import KINDS
from symflops.errors import SymflopsError
from symflops.symbols import B, C, H, L, N, W, dim, heads


def _block() -> sf.Cost:
    return nn.TransformerBlock(dim, heads, mlp_ratio=4).cost((B, N, dim))


def _eq(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.expand(a - b) == 0


# ----------------------------------------------------------------------------- tree
def test_walk_paths_and_getitem() -> None:
    c = _block()
    paths = [p for p, _ in c.walk()]
    assert paths[0] == ""
    assert "attention.mha.scores" in paths and "mlp.fc1" in paths and "mlp.add" in paths
    for path, node in c.walk():
        if path:
            assert c[path] is node
    leaves = dict(c.leaves())
    assert set(leaves) == {p for p, n in c.walk() if not n.children}
    assert c["attention.mha.softmax"].layer == "AttentionSoftmax"
    with pytest.raises(SymflopsError, match="children are: norm, mha, add"):
        c["attention.nope"]


def test_every_composite_is_the_sum_of_its_children() -> None:
    c = nn.Repeat(nn.TransformerBlock(dim, heads), L).cost((B, N, dim))
    for _, node in c.walk():
        if not node.children:
            continue
        for kind in set(node.work) | {k for ch in node.children for k in ch.work}:
            total = sum((ch.count * ch.work.get(kind, 0) for ch in node.children), sp.Integer(0))
            assert _eq(node.work.get(kind, sp.Integer(0)), total), kind
        assert _eq(node.params, sum((ch.count * ch.params for ch in node.children),
                                    sp.Integer(0)))
        assert _eq(node.flops, sum((ch.total_flops for ch in node.children), sp.Integer(0)))


def test_quantity_and_kinds() -> None:
    c = _block()
    assert c.quantity("macs") == c.macs == c.work["matmul_mul"]
    assert _eq(c.quantity("softmax"), B * heads * N * (5 * N - 2))
    assert c.quantity("pooling") == 0
    with pytest.raises(SymflopsError, match="unknown quantity"):
        c.quantity("gflops")
    with pytest.raises(SymflopsError, match="unknown kinds"):
        sf.Cost("x", "X", work={"multiplies": 3})
    assert c.free_symbols == {B, N, dim, heads}


# ------------------------------------------------------------------------ conventions
def test_with_convention_reweighs_without_recounting() -> None:
    c = _block()
    t, m = c.with_convention("torch"), c.with_convention("macs")
    assert _eq(t.flops, 2 * c.macs) and _eq(m.flops, c.macs)
    assert t.params == c.params and t.work == c.work
    assert [p for p, _ in t.walk()] == [p for p, _ in c.walk()]
    assert all(n.convention.name == "torch" for _, n in t.walk())
    assert c.convention.label == "FLOPs (exact)" and m.convention.label == "MACs"
    assert _eq(c.flops, sum((v for v in c.work.values()), sp.Integer(0)))
    # the same tree from cost(..., convention=)
    direct = nn.TransformerBlock(dim, heads).cost((B, N, dim), convention="torch")
    assert _eq(direct.flops, t.flops)


def test_user_convention_weights() -> None:
    from symflops.conventions import Convention

    only_softmax = Convention("only_softmax_x3", {"softmax": 3})
    c = _block().with_convention(only_softmax)
    assert _eq(c.flops, 3 * B * heads * N * (5 * N - 2))
    with pytest.raises(SymflopsError, match="unknown kinds"):
        Convention("bad", {"flops": 1})
    assert set(KINDS) >= set(only_softmax.rates)


# ------------------------------------------------------------------------------ subs
def test_subs_by_name_and_symbol_is_partial_and_pure() -> None:
    c = nn.Conv2d(3, 8, 3, stride=2, padding=1).cost((B, 3, H, W))
    a = c.subs(H=224)
    b = c.subs({H: 224})
    assert a.flops == b.flops and W in a.free_symbols and H not in a.free_symbols
    assert a.output_shape == (B, 8, 112, sp.floor((W - 1) / 2) + 1)
    assert H in c.free_symbols  # the original is unchanged
    full = a.subs(B=1, W=224)
    assert full.flops == 8 * 112 * 112 * 54 and isinstance(full.flops, sp.Integer)
    # numpy integers are accepted
    assert c.subs(B=np.int64(1), H=np.int32(224), W=224).flops == full.flops


def test_subs_expression_values() -> None:
    c = nn.Linear(dim, dim).cost((B, N, dim))
    s = c.subs(N=H * W)
    assert _eq(s.flops, 2 * B * H * W * dim**2)


# -------------------------------------------------------------------------- simplify
def test_simplify_is_readable_and_equal() -> None:
    layers: list[nn.Layer] = []
    for i in range(60):
        layers += [nn.Conv2d(C, C, 3, padding=1, stride=2 if i in (20, 40) else 1),
                   nn.BatchNorm2d(C), nn.ReLU()]
    c = nn.Sequential(*layers).cost((B, C, H, W))
    s = c.simplify()
    # a factored polynomial in the three resolutions' sizes, not one term per layer
    assert sp.count_ops(s.flops) < 60 < sp.count_ops(c.flops)
    assert len(sp.Add.make_args(sp.expand(s.flops))) <= 16
    for h, w in ((1, 1), (7, 9), (224, 224), (225, 97)):
        at = {B: 2, C: 3, H: h, W: w}
        assert s.flops.xreplace(at) == c.flops.xreplace(at)
    # the leaves are simplified too, the tree is kept
    assert len(list(s.walk())) == len(list(c.walk()))


def test_simplify_expr_keeps_floors() -> None:
    from symflops.cost import simplify_expr

    e = 3 * sp.floor((H - 1) / 2) * (W + 1) + sp.floor((H - 1) / 2) * W
    s = simplify_expr(e)
    assert s.has(sp.floor)
    for h, w in ((1, 1), (2, 3), (8, 5), (9, 9)):
        assert s.xreplace({H: h, W: w}) == e.xreplace({H: h, W: w})


def test_simplify_keeps_output_sizes_together() -> None:
    from symflops.cost import simplify_expr
    from symflops.symbols import C_in, C_out, K

    # a stride-2 stem: every term is a coefficient times H_out * W_out, where
    # H_out = floor((H - 1)/2) + 1, not four terms per product of floors
    h2, w2 = sp.floor((H - 1) / 2) + 1, sp.floor((W - 1) / 2) + 1
    e = 9408 * B * h2 * w2 + 128 * B * h2 * w2
    assert simplify_expr(e) == 9536 * B * h2 * w2
    # one spelling per floor, so it cancels against the shapes it came from
    assert sp.expand(simplify_expr(e) - 9536 * B * h2 * w2) == 0
    # a valid conv reads with positive factors: (H - K + 1)(W - K + 1), no leading minus
    flops = nn.Conv2d(C_in, C_out, K).cost((B, C_in, H, W)).flops
    assert flops == 2 * B * C_in * C_out * K**2 * (H - K + 1) * (W - K + 1)
    assert not str(flops).startswith("-")


_SHAPE_FACTORS = {
    "B": B, "H": H, "W": W, "H+1": H + 1, "H-3+1": H - 3 + 1, "1-H": 1 - H,
    "H_out(s2)": sp.floor((H - 1) / 2) + 1, "W_out(s4)": sp.floor((W - 1) / 4) + 1,
    "ceil": sp.ceiling(H / 3), "W+H": W + H, "min-pool": 3 * sp.floor((H - 1) / 2)
    + sp.Min(3, H - 2 * sp.floor((H - 1) / 2)),
}


@settings(max_examples=60, deadline=None)
@example(coeff=6, names=["1-H"]).via("a sum: nothing to share")
@example(coeff=4, names=["W+H", "H_out(s2)"]).via("a sum times a size")
@given(coeff=st.integers(2, 10**7),
       names=st.lists(st.sampled_from(sorted(_SHAPE_FACTORS)), min_size=1, max_size=3))
def test_simplify_expr_shares_a_shape_across_coefficients(coeff: int, names: list[str]
                                                          ) -> None:
    """A layer's formula ``coeff * shape`` is simplified through its shape (memoised once
    for every coefficient): the result is the same expression, structurally, as the full
    procedure gives the expanded sum (which starts with no coefficient to take out)."""
    from symflops.cost import simplify_expr

    shape = sp.Mul(*(_SHAPE_FACTORS[n] for n in names))
    via_shape = simplify_expr(coeff * shape)
    direct = simplify_expr(sp.expand(coeff * shape))
    assert sp.srepr(via_shape) == sp.srepr(direct)
    for h, w in ((1, 1), (7, 5), (224, 299)):
        at = {B: 3, H: h, W: w}
        assert via_shape.xreplace(at) == (coeff * shape).xreplace(at)


# -------------------------------------------------------------------------- evaluate
def test_evaluate_broadcasts_a_grid() -> None:
    c = nn.Conv2d(3, 8, 3, stride=2, padding=1).cost((B, 3, H, W))
    hs = np.arange(1, 40)[:, None]
    ws = np.arange(1, 30)[None, :]
    grid = c.evaluate(B=1, H=hs, W=ws)
    assert grid.shape == (39, 29) and grid.dtype == np.int64
    assert grid[223 % 39, 5] == int(c.subs(B=1, H=int(hs[223 % 39, 0]), W=6).flops)
    scalar = c.evaluate(B=2, H=224, W=224)
    assert scalar.shape == () and int(scalar) == int(c.subs(B=2, H=224, W=224).flops)
    params = c.evaluate("params")
    assert int(params) == 8 * 28
    kinds = c.evaluate("bias", B=1, H=4, W=4)
    assert int(kinds) == 8 * 2 * 2


def test_evaluate_compiles_once() -> None:
    from symflops.evaluate import _compiled

    c = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU()).cost((B, 3, H, W))
    c.evaluate(B=1, H=np.arange(3, 100), W=64)
    before = _compiled.cache_info().hits
    c.evaluate(B=1, H=np.arange(3, 200), W=64)
    assert _compiled.cache_info().hits > before


# ---------------------------------------------------------------------------- Repeat
def test_repeat_symbolic_depth() -> None:
    block = _block()
    r = nn.Repeat(nn.TransformerBlock(dim, heads, mlp_ratio=4), L).cost((B, N, dim))
    assert len(r.children) == 1 and r.children[0].count == L
    assert _eq(r.flops, L * block.flops) and _eq(r.params, L * block.params)
    assert _eq(r.macs, L * block.macs)
    twelve = r.subs(L=12)
    assert _eq(twelve.flops, 12 * block.flops)
    assert r.output_shape == (B, N, dim)
    nested = nn.Repeat(nn.Repeat(nn.Linear(dim, dim), 2), L).cost((B, dim))
    assert _eq(nested.flops, 2 * L * 2 * B * dim**2)
    assert [n.count for _, n in nested.walk()] == [1, L, 2]


def test_repeat_int_count_and_convention() -> None:
    r = nn.Repeat(nn.Linear(8, 8), 3).cost((B, 8), convention="macs")
    assert r.flops == 3 * 64 * B and r.params == 3 * 72


# -------------------------------------------------------------------------- Residual
def test_residual_children_and_add() -> None:
    body = nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU())
    r = nn.Residual(body).cost((B, C, H, W))
    assert [ch.name for ch in r.children] == ["0", "1", "add"]
    assert _eq(r["add"].work["elementwise"], B * C * H * W)
    assert _eq(r.flops, body.cost((B, C, H, W)).flops + B * C * H * W)
    single = nn.Residual(nn.Linear(dim, dim)).cost((B, N, dim))
    assert [ch.name for ch in single.children] == ["body", "add"]
    sc = nn.Residual(nn.Conv2d(C, 2 * C, 1, stride=2), nn.Conv2d(C, 2 * C, 1, stride=2))
    assert [ch.name for ch in sc.cost((B, C, H, W)).children] == ["body", "shortcut", "add"]
    # residual adds are "elementwise" work: not MACs, not counted by torch
    assert r["add"].with_convention("torch").flops == 0


# ------------------------------------------------------------------------ immutability
FIELDS = ("name", "layer", "spec", "params", "work", "input_shape", "output_shape",
          "children", "count", "derivation", "validity", "convention", "notes", "op")


def _fields(c: sf.Cost) -> list[tuple]:
    """Every field of every node, to compare a tree before and after an operation."""
    return [(p, tuple((f, repr(getattr(n, f))) for f in FIELDS)) for p, n in c.walk()]


@pytest.mark.parametrize("field", ["name", "layer", "spec", "params", "work", "count",
                                   "children", "validity", "convention", "op", "notes",
                                   "output_shape", "flops"])
def test_a_cost_cannot_be_changed_after_construction(field: str) -> None:
    c = nn.Conv2d(3, 8, 3, stride=2).cost((B, 3, H, W))
    before = _fields(c)
    with pytest.raises(SymflopsError, match=f"immutable: {field} cannot be set.*replace"):
        setattr(c, field, 1)
    with pytest.raises(SymflopsError, match="immutable"):
        delattr(c, field)
    assert _fields(c) == before


def test_work_is_read_only() -> None:
    c = nn.Linear(8, 4).cost((B, 8))
    with pytest.raises(TypeError):
        c.work["bias"] = sp.Integer(0)  # type: ignore[index]
    assert c.work["bias"] == 4 * B


@pytest.mark.parametrize("op", [
    pytest.param(lambda c: c.subs(H=32), id="subs"),
    pytest.param(lambda c: c.simplify(), id="simplify"),
    pytest.param(lambda c: c.with_convention("macs"), id="with_convention"),
    pytest.param(lambda c: c.replace(count=L, name="x"), id="replace"),
    pytest.param(lambda c: c.replace(children=c.children[:1]), id="replace_children"),
])
def test_transformations_leave_the_original_unchanged(op) -> None:  # type: ignore[no-untyped-def]
    c = nn.Sequential(nn.Repeat(nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU()), L),
                      nn.Conv2d(C, C, 3, stride=2)).cost((B, C, H, W))
    flops = c.flops  # the lazily computed total is cached before the operation
    before = _fields(c)
    new = op(c)
    assert new is not c and _fields(c) == before and c.flops == flops


def test_replace_recomputes_the_cached_total() -> None:
    c = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).cost((B, 8))
    # Linear 8->8: 2*8*8 = 128 per row; ReLU: 8 per row
    assert c.flops == 136 * B
    assert c.replace(children=c.children[:1]).flops == 128 * B
    assert c.replace(convention="macs").flops == 64 * B
    assert c.flops == 136 * B


def test_subs_settles_conditions_on_the_new_tree_only() -> None:
    c = nn.Conv2d(3, 8, 5).cost((B, 3, H, W))
    assert c.validity  # the kernel must fit: H >= 5, W >= 5
    at = c.subs(H=7)
    assert len(at.validity) == len(c.validity) - 1 and all(H not in v.free_symbols
                                                           for v in at.validity)
    assert any(H in v.free_symbols for v in c.validity)
    with pytest.raises(SymflopsError, match="condition"):
        c.subs(W=4)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_a_cost_pickles_and_copies(how: str) -> None:
    import copy
    import pickle

    c = nn.Repeat(nn.TransformerBlock(dim, heads), L).cost((B, N, dim))
    flops = c.flops
    new = {"pickle": lambda: pickle.loads(pickle.dumps(c)), "deepcopy": lambda: copy.deepcopy(c),
           "copy": lambda: copy.copy(c)}[how]()
    assert _fields(new) == _fields(c) and _eq(new.flops, flops)
    with pytest.raises(SymflopsError, match="immutable"):
        new.count = 2
    with pytest.raises(TypeError):
        new.work["bias"] = 0  # type: ignore[index]
