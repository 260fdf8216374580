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


class CrossAttentionTorch(nn.Module):
    """sf.nn.MultiheadAttention(kv_len=S): queries from x, keys and values projected from
    the S encoder states (nn.MultiheadAttention's encoder-decoder path: q and kv
    projections), fewer key/value heads expanded to every query head, native dropout."""

    def __init__(self, dim, heads, p=0.0, kv_heads=None):
        super().__init__()
        from torch_blocks import FusedDropout

        self.h, self.kvh = heads, kv_heads or heads
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(dim, 2 * self.kvh * (dim // heads))
        self.drop, self.out_proj = FusedDropout(p), nn.Linear(dim, dim)

    def forward(self, x, memory):
        b, n, d = x.shape
        s, hd = memory.shape[1], d // self.h
        q = self.q_proj(x).view(b, n, self.h, hd).transpose(1, 2)
        k, v = self.kv_proj(memory).view(b, s, 2, self.kvh, hd).permute(2, 0, 3, 1, 4)
        if self.kvh != self.h:
            k, v = (t[:, :, None].expand(b, self.kvh, self.h // self.kvh, s, hd)
                    .reshape(b, self.h, s, hd) for t in (k, v))
        probs = self.drop(((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(-1))
        return self.out_proj((probs @ v).transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("p,kv_heads", [(0.0, None), (0.1, 2)], ids=["mha", "gqa-dropout"])
def test_cross_attention_trains_as_the_tracer_counts(p, kv_heads):
    # N queries against S keys: q_proj's and kv_proj's weight gradients (their inputs need
    # none), the core's gradients with B h N S scores (grad_probs, grad_v, dropout's,
    # softmax's, the scale's, grad_q, grad_k, and with 2 of 4 heads the expand's sums),
    # out_proj's; saved: x, the encoder states, q (B N d), k and v (B S d), the softmax
    # output, the dropout mask and probabilities, out_proj's input
    from symflops.symbols import S

    traced = sf.trace(CrossAttentionTorch(16, 4, p, kv_heads), ["B N 16", "B S 16"],
                      mode="train", hints={"N": 8, "S": 12}, warn=False)
    mine = sf.nn.MultiheadAttention(16, 4, p, kv_heads=kv_heads, kv_len=S).cost(
        (B, N, 16), mode="train", accounting="torch")
    kinds = set(traced.work) | set(mine.work)
    assert {k: sp.expand(traced.work.get(k, 0) - mine.work.get(k, 0)) for k in kinds} == \
        dict.fromkeys(kinds, 0)
    assert traced.params == mine.params
    assert sp.expand(traced.memory.activations - mine.memory.activations) == 0
    # with input_grad, both inputs get their gradients: q_proj's and kv_proj's grad_input
    grads = sf.nn.MultiheadAttention(16, 4, p, kv_heads=kv_heads, kv_len=S).cost(
        (B, N, 16), mode="train", input_grad=True)
    assert grads["q_proj"]["grad_input"].macs == 16 * 16 * B * N
    assert grads["kv_proj"]["grad_input"].macs == mine["kv_proj"]["forward"].macs


def test_skip_masked_training_says_why_it_is_another_algorithm():
    layer = sf.nn.MultiheadAttention(16, 4, causal=True, skip_masked=True)
    with pytest.raises(sf.SymflopsError, match="recomputes the scores") as e:
        layer.cost((B, N, 16), mode="train")
    assert "without skip_masked" in e.value.fix


# ------------------------------------------------------------------ multi-head latent attention
def _rotate_half(x):
    half = x.shape[-1] // 2  # Llama's form: two slices, the second negated
    return torch.cat((-x[..., half:], x[..., :half]), -1)


class LatentAttentionTorch(nn.Module):
    """transformers' DeepseekV2Attention (eager, no mask, no dropout) with Llama's
    rotate_half rotation and cos/sin tables as buffers: the same ops and splits."""

    def __init__(self, dim, h, dc, dq, dr, dh, dv):
        super().__init__()
        self.h, self.dc, self.dr, self.dh, self.dv = h, dc, dr, dh, dv
        if dq is None:
            self.q_proj = nn.Linear(dim, h * (dh + dr), bias=False)
        else:
            self.q_a_proj = nn.Linear(dim, dq, bias=False)
            self.q_a_layernorm = nn.RMSNorm(dq)
            self.q_b_proj = nn.Linear(dq, h * (dh + dr), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(dim, dc + dr, bias=False)
        self.kv_a_layernorm = nn.RMSNorm(dc)
        self.kv_b_proj = nn.Linear(dc, h * (dh + dv), bias=False)
        self.o_proj = nn.Linear(h * dv, dim, bias=False)
        angles = torch.arange(64.0)[:, None] * torch.arange(1, dr // 2 + 1)[None] / 10
        self.register_buffer("cos", torch.cat((angles, angles), -1).cos())
        self.register_buffer("sin", torch.cat((angles, angles), -1).sin())

    def forward(self, x):
        b, n, _ = x.shape
        h, dh, dr, dv = self.h, self.dh, self.dr, self.dv
        q = (self.q_proj(x) if hasattr(self, "q_proj")
             else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))))
        q_nope, q_pe = q.view(b, n, h, dh + dr).transpose(1, 2).split([dh, dr], -1)
        k_pass, k_pe = self.kv_a_proj_with_mqa(x).split([self.dc, dr], -1)
        kv = self.kv_b_proj(self.kv_a_layernorm(k_pass)).view(b, n, h, dh + dv)
        k_nope, v = kv.transpose(1, 2).split([dh, dv], -1)
        k_pe = k_pe.view(b, 1, n, dr)
        cos, sin = self.cos[:n], self.sin[:n]
        q_pe = q_pe * cos + _rotate_half(q_pe) * sin
        k_pe = k_pe * cos + _rotate_half(k_pe) * sin
        q = torch.cat((q_nope, q_pe), -1)
        k = torch.cat((k_nope, k_pe.expand(b, h, n, dr)), -1)
        w = torch.softmax(q @ k.transpose(2, 3) * (dh + dr) ** -0.5, -1)
        return self.o_proj((w @ v).transpose(1, 2).reshape(b, n, h * dv))


@pytest.mark.parametrize("dq,dv", [(12, 6), (None, 10)], ids=["q-lora", "q-proj-wide-v"])
def test_latent_attention_trains_as_autograd_runs_it(dq, dv):
    # dim 16, 2 heads, latent 8, rope 4, head 6. Against the tracer on the torch mirror,
    # kind by kind; what differs is how the mirror's parts are written, not MLA:
    # - nn.RMSNorm on the CPU runs as six ops (4 d + 2 per token, traced as elementwise,
    #   where sf.nn counts norm_stats 3 d + 2 and norm_affine d), and their autograd
    #   backward does d + 3 per token more than the fused rms_norm gradient sf.nn counts
    #   (the same difference as LlamaRMSNorm in test_train_presets);
    # - activations: each such RMSNorm keeps its normalized input (d per token, 2 bytes),
    #   and the mirror's cos and sin are buffers (sf.nn counts them as the tables the
    #   attention computes: 2 N d_R elements).
    # Everything else agrees op for op: the projections' gradients, the rotation's 9/2
    # per rotated element (B N (h + 1) d_R), the shared rotary key's expand summed back
    # over the heads ((h - 1) B N d_R), the core with keys 10 and values dv wide, and the
    # splits and concats (copies). The latent's norm saves a view of kv_a's output, which
    # keeps its rotary part (d_R per token) alive too.
    layer = sf.nn.MultiheadLatentAttention(16, 2, kv_rank=8, q_rank=dq, rope_dim=4,
                                           head_dim=6, v_head_dim=dv)
    traced = sf.trace(LatentAttentionTorch(16, 2, 8, dq, 4, 6, dv), "B N 16", mode="train",
                      hints={"N": 8}, warn=False)
    mine = layer.cost((B, N, 16), mode="train")
    widths = [8] if dq is None else [dq, 8]
    rows = B * N
    expected = {"norm_stats": -sum(3 * d + 2 for d in widths) * rows,
                "norm_affine": -sum(widths) * rows,
                "elementwise": sum(4 * d + 2 + d + 3 for d in widths) * rows}
    kinds = set(traced.work) | set(mine.work)
    assert {k: sp.expand(traced.work.get(k, 0) - mine.work.get(k, 0)) for k in kinds} == \
        {k: sp.expand(expected.get(k, 0)) for k in kinds}
    assert traced.params == mine.params
    kept = layer.cost((B, N, 16), mode="train", accounting="torch").memory
    assert sp.expand(traced.memory.activations - kept.activations
                     - 2 * (sum(widths) * rows - 2 * N * 4)) == 0
    # x feeds the query and the key/value projections: its two gradients are added
    grad_x = layer.cost((B, N, 16), mode="train", input_grad=True)
    assert grad_x["grad_accumulate"].work == {"elementwise": 16 * B * N}


def test_latent_attention_selective_recompute_keeps_q_k_v_only():
    layer = sf.nn.MultiheadLatentAttention(16, 2, kv_rank=8, q_rank=12, rope_dim=4,
                                           head_dim=6)
    full = layer.cost((B, N, 16), mode="train")["attention"]
    selective = layer.cost((B, N, 16), mode="train", recompute="selective")["attention"]
    assert sorted(s.what for s in selective.memory.saved) == ["k", "q", "v"]
    # the recomputed core is the forward again
    assert sp.expand(selective.flops - full.flops - full["forward"].flops) == 0
