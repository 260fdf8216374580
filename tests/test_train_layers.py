"""mode="train" for this round's layers (gated MLP, position embedding, tied LM head,
rotary, class token, views): equal to sf.trace(..., mode="train") of the same plain torch
model kind by kind, activation memory included, and one error where not derived."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import B, N  # noqa: E402

V_, D, HID = 50, 16, 24


class GatedTorch(nn.Module):
    """A linear, then transformers' LlamaMLP: the linear's output feeds gate and up."""

    def __init__(self, act):
        super().__init__()
        self.pre = nn.Linear(D, D)
        self.gate, self.up = nn.Linear(D, HID, bias=False), nn.Linear(D, HID, bias=False)
        self.down, self.act = nn.Linear(HID, D, bias=False), act

    def forward(self, x):
        x = self.pre(x)
        return self.down(self.act(self.gate(x)) * self.up(x))


class PositionsTorch(nn.Module):
    """GPT-2's embeddings with the tied head: wte(ids) + wpe(arange(N)), x @ wte^T."""

    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V_, D), nn.Embedding(32, D)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        return x @ self.wte.weight.t()


class ClassTokenTorch(nn.Module):
    """A linear, then torchvision's class token and a select of it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.token = nn.Parameter(torch.zeros(1, 1, D))

    def forward(self, x):
        x = self.fc(x)
        x = torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
        return x.transpose(1, 2).transpose(1, 2)[:, 0]


class MergeTorch(nn.Module):
    """A linear, then torchvision's Swin PatchMerging (even sizes: no padding)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.norm, self.reduction = nn.LayerNorm(4 * D), nn.Linear(4 * D, 2 * D, bias=False)

    def forward(self, x):
        x = self.fc(x)
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                       x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


def _embeddings():
    wte = sf.nn.Embedding(V_, D)
    return sf.nn.Sequential({"wte": wte, "wpe": sf.nn.PositionEmbedding(32, D),
                             "head": sf.nn.TiedLMHead(wte)})


CASES = {  # id: (sf.nn layer, torch model, trace spec, sf.nn input shape)
    "swiglu": (lambda: sf.nn.Sequential(sf.nn.Linear(D, D), sf.nn.SwiGLU(D, HID)),
               lambda: GatedTorch(nn.SiLU()), "B N 16", (B, N, D)),
    "geglu": (lambda: sf.nn.Sequential(sf.nn.Linear(D, D), sf.nn.GeGLU(D, HID)),
              lambda: GatedTorch(nn.GELU()), "B N 16", (B, N, D)),
    "positions-tied-head": (_embeddings, PositionsTorch, {"ids": ("B", "N")}, (B, N)),
    "class-token-views": (lambda: sf.nn.Sequential(
        sf.nn.Linear(D, D), sf.nn.ClassToken(D), sf.nn.Transpose(1, 2),
        sf.nn.Transpose(1, 2), sf.nn.Select(1, 0)), ClassTokenTorch, "B N 16", (B, N, D)),
    "patch-merging": (lambda: sf.nn.Sequential(sf.nn.Linear(D, D), sf.nn.PatchMerging(D)),
                      MergeTorch, "B 8 6 16", (B, 8, 6, D)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_equals_the_tracer(case):
    # Hand counts the tracer confirms, e.g. the SwiGLU with x needing a gradient: gate
    # and up's grad_input mm, their two gradients added (N D per batch row), the
    # multiply's two gradients (2 N HID), SiLU's gradient; positions: the broadcast add's
    # batch sum (B - 1) N D, embedding_dense_backward N D, the tied weight's two
    # gradients added V D; the class token: the expand's batch sum (B - 1) D; patch
    # merging: the four strided slices' gradients added, 3 B H W D.
    build, model, spec, shape = CASES[case]
    hints = {"N": 8} if "N" in str(spec) else {}
    traced = sf.trace(model(), spec, mode="train", hints=hints, warn=False)
    mine = build().cost(shape, mode="train")
    kinds = set(traced.work) | set(mine.work)
    assert {k: sp.expand(traced.work.get(k, 0) - mine.work.get(k, 0)) for k in kinds} == \
        dict.fromkeys(kinds, 0)
    assert traced.params == mine.params
    # every tensor torch keeps (the "torch" accounting counts LayerNorm's mean and rstd)
    kept = build().cost(shape, mode="train", accounting="torch").memory
    assert sp.expand(traced.memory.activations - kept.activations) == 0


def test_tied_head_counts_the_weight_once_and_its_gradients_added():
    c = _embeddings().cost((B, N), mode="train")
    # head: grad_input mm, grad_weight mm, and the V D add of the two weight gradients
    assert [k.name for k in c["head"].children] == ["forward", "grad_input", "grad_weight",
                                                    "grad_accumulate"]
    assert c["head"]["grad_accumulate"].work == {"elementwise": V_ * D}
    # parameters and trainable parameters: wte (V D) and wpe (32 D) only
    assert c.memory.param_count == c.memory.trainable == (V_ + 32) * D


def test_frozen_positions_and_a_fixed_table_take_no_gradient():
    frozen = _embeddings().cost((B, N), mode="train", frozen=["wpe"])
    assert [k.name for k in frozen["wpe"].children] == ["forward"]
    fixed = sf.nn.Sequential(sf.nn.Embedding(V_, D), sf.nn.PositionEmbedding(32, D, False))
    assert [k.name for k in fixed.cost((B, N), mode="train")["1"].children] == ["forward"]


def test_rotary_table_runs_forward_only():
    c = sf.nn.RotaryEmbedding(8).cost((B, N, 16), mode="train", input_grad=True)
    assert c.work == sf.nn.RotaryEmbedding(8).cost((B, N, 16)).work
    assert c.memory.activations == 0


def test_rotary_attention_gradient_is_nine_halves_per_rotated_element():
    # q: B N heads head_dim = B N 16 elements, k: B N kv_heads head_dim = B N 8; the
    # rotation's gradient 9/2 each (grad*cos, grad*sin, the negated half, two adds)
    mha = sf.nn.MultiheadAttention(16, 4, kv_heads=2, bias=False, rotary=True)
    c = mha.cost((B, N, 16), mode="train", input_grad=True)
    assert c["rotary"]["grad_input"].work == {"elementwise": sp.Rational(9, 2) * B * N * 24}


@pytest.mark.parametrize("layer,match", [
    (sf.nn.MultiheadAttention(16, 4, kv_len=12), "cross-attention"),
    (sf.nn.MultiheadAttention(16, 4, causal=True, skip_masked=True), "skip_masked"),
], ids=["kv_len", "skip_masked"])
def test_not_derived_attention_options_give_one_error(layer, match):
    with pytest.raises(sf.SymflopsError, match=match):
        layer.cost((B, N, 16), mode="train")
