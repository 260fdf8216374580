"""``mode="train"`` in sf.nn: forward plus the backward derived op by op, equal to the
tracer's train mode on the same torch model, kind by kind; frozen layers; recomputation;
the 3x rule with its exact remainder."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import B, N, dim, heads  # noqa: E402

try:
    from tests import torch_blocks as tb
except ImportError:  # pragma: no cover - run from inside tests/
    import torch_blocks as tb  # type: ignore[no-redef]


def same_work(a: sf.Cost, b: sf.Cost) -> dict[str, sp.Expr]:
    """Kind by kind, the difference of two costs' work (empty when equal)."""
    kinds = set(a.work) | set(b.work)
    diff = {k: sp.expand(a.work.get(k, 0) - b.work.get(k, 0)) for k in kinds}
    return {k: v for k, v in diff.items() if v != 0}


@pytest.mark.parametrize("case", list(tb.CASES))
def test_sfnn_train_equals_the_tracer_kind_by_kind(case):
    traced, mine = tb.traced_case(case)
    assert same_work(traced, mine) == {}
    assert traced.params == mine.params


def test_frozen_layers_have_no_weight_gradient_as_in_torch():
    sym, real = tb.CASES["linear-stack"][0]()
    real[0].requires_grad_(False)
    traced = sf.trace(real, "B 8", mode="train")
    mine = sym.cost((B, 8), mode="train", frozen=["0"])
    assert same_work(traced, mine) == {}
    # layer 0 is frozen and its input needs no gradient: no backward op at all
    assert [c.name for c in mine["0"].children] == ["forward"]
    # its 8*16 + 16 = 144 parameters take no gradient and no optimizer state
    assert mine.memory.trainable == 212 - 144


def test_the_first_layer_takes_no_input_gradient():
    c = sf.nn.Linear(dim, 4 * dim).cost((B, N, dim), mode="train")
    assert [k.name for k in c.children] == ["forward", "grad_weight", "grad_bias"]
    c = sf.nn.Linear(dim, 4 * dim).cost((B, N, dim), mode="train", input_grad=True)
    assert [k.name for k in c.children] == ["forward", "grad_input", "grad_weight",
                                            "grad_bias"]


def test_the_3x_rule_and_its_exact_remainder():
    """Linear(I, H) -> ReLU -> Linear(H, O) on M rows, torch convention (2 per MAC):
    forward 2M(IH + HO); backward: grad_weight of both (2M(IH + HO)) and grad_input of the
    second only (2MHO): the model's input needs none. train / forward - 3 is minus the
    missing product: -IH / (IH + HO)."""
    i, h, o, m = sp.symbols("I H_h O", positive=True, integer=True) + (B,)
    net = sf.nn.Sequential(sf.nn.Linear(i, h), sf.nn.ReLU(), sf.nn.Linear(h, o))
    fwd = net.cost((m, i), convention="torch").flops
    train = net.cost((m, i), convention="torch", mode="train").flops
    assert sp.simplify(train / fwd - 3 - (-i * h / (i * h + h * o))) == 0
    # with an input that needs a gradient (a layer deep in a network) the rule is exact
    deep = net.cost((m, i), convention="torch", mode="train", input_grad=True).flops
    assert sp.expand(deep - 3 * fwd) == 0


def test_the_3x_rule_in_the_exact_convention():
    """Linear(I, O) with bias on M rows whose input needs a gradient, every operation
    counted: forward M O (I + (I - 1) + 1) = 2 M I O; backward grad_input M I dot
    products of length O (M I (2 O - 1)), grad_weight O I of length M (O I (2 M - 1)),
    grad_bias (M - 1) O adds. train = 6 M I O - M I - O I + M O - O, so
    train / forward - 3 = (M O - M I - O I - O) / (2 M I O)."""
    i, o, m = sp.symbols("I O M", positive=True, integer=True)
    layer = sf.nn.Linear(i, o)
    fwd = layer.cost((m, i)).flops
    train = layer.cost((m, i), mode="train", input_grad=True).flops
    assert sp.simplify(train / fwd - 3 - (m * o - m * i - o * i - o) / (2 * m * i * o)) == 0


def test_the_3x_rule_for_a_transformer_block_and_megatron_recompute():
    """Megatron-LM (Narayanan et al. 2021, eq. for F): per layer, forward matmuls
    24 B s h^2 + 4 B s^2 h FLOPs; training 3x that (72 B s h^2 (1 + s/6h)), 4x with full
    recomputation (96 B s h^2 (1 + s/6h)). Here the block's input needs no gradient, but
    its first matmul (qkv) reads LayerNorm's output, which does: the rule is exact."""
    block = sf.nn.TransformerBlock(dim, heads, 4, dropout=0.1)
    fwd = block.cost((B, N, dim), convention="torch").flops
    assert sp.expand(fwd - (24 * B * N * dim**2 + 4 * B * N**2 * dim)) == 0
    train = block.cost((B, N, dim), convention="torch", mode="train").flops
    assert sp.expand(train - 72 * B * N * dim**2 * (1 + N / (6 * dim))) == 0
    full = block.cost((B, N, dim), convention="torch", mode="train", recompute="full").flops
    assert sp.expand(full - 96 * B * N * dim**2 * (1 + N / (6 * dim))) == 0


def test_selective_recompute_adds_the_attention_core_forward():
    """Korthikanti et al.: selective recomputation reruns Q K^T, softmax, dropout and A V:
    in the exact convention the scores and the context (B N^2 (2 dim - heads) and
    B N dim (2N - 1)), the scale (B heads N^2), softmax (B heads N (5N - 2)) and dropout
    (3 B heads N^2)."""
    block = sf.nn.TransformerBlock(dim, heads, 4, dropout=0.1)
    none = block.cost((B, N, dim), mode="train").flops
    sel = block.cost((B, N, dim), mode="train", recompute="selective").flops
    core = (B * N**2 * (2 * dim - heads) + B * N * dim * (2 * N - 1) + B * heads * N**2
            + B * heads * N * (5 * N - 2) + 3 * B * heads * N**2)
    assert sp.expand(sel - none - core) == 0


def test_full_recompute_of_a_model_without_blocks_reruns_its_forward():
    net = sf.nn.Sequential(sf.nn.Linear(8, 16), sf.nn.GELU(), sf.nn.Linear(16, 8))
    fwd = net.cost((B, 8)).flops
    full = net.cost((B, 8), mode="train", recompute="full")
    assert sp.expand(full.flops - net.cost((B, 8), mode="train").flops - fwd) == 0
    assert full["recompute"].flops == fwd


def test_a_repeated_block_trains_its_first_iteration_without_input_gradient():
    """Repeat(Linear(8, 8), L): the first layer takes no input gradient, the other L - 1
    do: torch convention, forward 128 B L, backward 128 B L + 128 B (L - 1)."""
    from symflops.symbols import L

    c = sf.nn.Repeat(sf.nn.Linear(8, 8, bias=False), L).cost((B, 8), convention="torch",
                                                             mode="train")
    assert [k.name for k in c.children] == ["first", "rest"]
    assert sp.expand(c.flops - (3 * 128 * B * L - 128 * B)) == 0
    real = nn.Sequential(*[nn.Linear(8, 8, bias=False) for _ in range(3)])
    traced = sf.trace(real, "B 8", mode="train", convention="torch")
    assert sp.expand(traced.flops - c.flops.subs(L, 3)) == 0


@pytest.mark.parametrize("bad, match", [
    (dict(mode="fit"), "mode must be"),
    (dict(mode="train", recompute="some"), "unknown recompute"),
    (dict(recompute="full"), "training options"),
    (dict(mode="train", frozen="0"), "frozen is True or a list"),
    (dict(mode="train", frozen=["fc9"]), "frozen names parts the layer does not have"),
    (dict(mode="train", optimizer="adamw9"), "unknown optimizer"),
    (dict(mode="train", accounting="paper"), "unknown accounting"),
], ids=["mode", "recompute", "eval-recompute", "frozen-text", "frozen-unknown", "optimizer",
        "accounting"])
def test_bad_training_options_give_one_error(bad, match):
    with pytest.raises(sf.SymflopsError, match=match):
        sf.nn.Linear(8, 4).cost((B, 8), **bad)


def test_layers_without_a_train_derivation_say_why():
    # a registered layer either trains or carries its reason (no_train), which the error
    # gives
    for name, cls in sf.nn.LAYERS.items():
        assert callable(getattr(cls, "_train", None)) != bool(cls.no_train), name
    untrained = [n for n, cls in sf.nn.LAYERS.items() if cls.no_train]
    assert untrained == ["MoE"]
    with pytest.raises(sf.SymflopsError, match="depends on the routing"):
        sf.nn.MoE(8, 16, 4, 2).cost((B, "N", 8), mode="train", input_grad=True)


@settings(max_examples=12, deadline=None)
@given(i=st.integers(1, 64), h=st.integers(1, 64), o=st.integers(1, 64),
       m=st.integers(1, 64), input_grad=st.booleans())
def test_training_costs_at_least_the_forward(i, h, o, m, input_grad):
    net = sf.nn.Sequential(sf.nn.Linear(i, h), sf.nn.GELU(), sf.nn.Linear(h, o))
    fwd = net.cost((m, i)).flops
    train = net.cost((m, i), mode="train", input_grad=input_grad).flops
    assert train >= fwd
    assert train.is_Integer
