"""Language-model layers of sf.nn (gated MLPs, rotary and learned positions, the tied LM
head, cross-attention, reshapes): hand derivations, and the same counts from tracing
the equivalent torch code."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.formulas.rotary import rotary_table_work, rotary_work  # noqa: E402
from symflops.symbols import B, N, S, dim, head_dim, symbol  # noqa: E402

try:
    from tests import bruteforce as bf
except ImportError:  # run from tests/
    import bruteforce as bf  # type: ignore[no-redef]

F = symbol("F")


def same_work(a, b):
    kinds = set(a.work) | set(b.work)
    return all(sp.expand(a.work.get(k, 0) - b.work.get(k, 0)) == 0 for k in kinds)


# --------------------------------------------------------------------- gated MLPs
class TorchGated(torch.nn.Module):
    def __init__(self, d, hidden, act):
        super().__init__()
        self.gate_proj = torch.nn.Linear(d, hidden, bias=False)
        self.up_proj = torch.nn.Linear(d, hidden, bias=False)
        self.down_proj = torch.nn.Linear(hidden, d, bias=False)
        self.act = act

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


@pytest.mark.parametrize("layer,act", [
    (sf.nn.SwiGLU(24, 40), torch.nn.SiLU()),
    (sf.nn.GeGLU(24, 40), torch.nn.GELU()),
    (sf.nn.GeGLU(24, 40, approximate="tanh"), torch.nn.GELU(approximate="tanh")),
], ids=["swiglu", "geglu", "geglu-tanh"])
def test_gated_mlp_equals_trace(layer, act):
    mine = layer.cost((B, N, 24))
    traced = sf.trace(TorchGated(24, 40, act), "B N 24", warn=False)
    assert mine.params == traced.params == 3 * 24 * 40
    assert same_work(mine, traced)


def test_swiglu_hand_count():
    c = sf.nn.SwiGLU(dim, F).cost((B, N, dim))
    # three matrices of dim*F weights, no bias: 3 dim F parameters; per token the gate and
    # up projections F dot products of length dim each, down dim dot products of length F:
    # 3 dim F MACs; SiLU 4 per hidden element (sigmoid 3, multiply 1), the gate product 1
    assert c.params == 3 * dim * F
    assert c.macs == 3 * B * N * dim * F
    assert c.work["activation"] == 4 * B * N * F
    assert c.work["elementwise"] == B * N * F
    assert [ch.name for ch in c.children] == ["gate_proj", "act_fn", "up_proj", "mul",
                                              "down_proj"]


# --------------------------------------------------------------------- rotary
def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class TorchRotary(torch.nn.Module):
    """transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb, on q of shape
    (B, heads, N, head_dim)."""

    def __init__(self, hd):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, q):
        freqs = torch.arange(q.shape[2]).float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * 1.0, emb.sin() * 1.0  # times the attention scaling (1)
        return q * cos + rotate_half(q) * sin


def test_rotary_equals_trace():
    hd, h = 16, 3
    traced = sf.trace(TorchRotary(hd), f"B {h} N {hd}", warn=False)
    # rotation: B h N hd elements at 7/2 (2 multiplies, 1 add, half negated):
    # 56 B h N; table: N positions at 9 hd / 2 = 72 per position
    rotation = rotary_work(B * h * N, hd)["elementwise"]
    table = rotary_table_work(N, hd)["elementwise"]
    assert rotation == 56 * h * B * N and table == 72 * N
    assert sp.expand(traced.work["elementwise"] - rotation - table) == 0
    assert traced.flops == rotation + table


def test_rotary_in_attention_and_table():
    mha = sf.nn.MultiheadAttention(dim, 8, kv_heads=2, rotary=True, bias=False)
    c = mha.cost((B, N, dim))
    # q: B N heads vectors, k: B N kv_heads vectors, each head_dim = dim/8 wide at 7/2
    assert sp.expand(c["rotary"].flops - (8 + 2) * B * N * sp.Rational(7, 2) * dim / 8) == 0
    # brute force at B=2, N=3, dim=32 (head width 4): 2*3*(8 + 2) vectors rotated
    assert c.subs({B: 2, N: 3, dim: 32})["rotary"].work == bf.rotary(60, 4)
    t = sf.nn.RotaryEmbedding(head_dim).cost((B, N, dim))
    assert t.flops == sp.Rational(9, 2) * head_dim * N and t.output_shape == (B, N, dim)
    with pytest.raises(sf.SymflopsError, match="even"):
        sf.nn.RotaryEmbedding(7)
    with pytest.raises(sf.SymflopsError, match="even"):
        sf.nn.MultiheadAttention(6, 2, rotary=True)
    # symbolic widths: conditions, checked when values are given (7/2 per element is whole)
    assert sf.nn.RotaryEmbedding(head_dim).cost((B, N, dim)).validity == \
        (sp.Eq(sp.Mod(head_dim, 2), 0),)
    with pytest.raises(sf.SymflopsError):
        c.subs({B: 1, N: 2, dim: 24})


# --------------------------------------------------------------------- positions, tied head
def test_position_embedding_equals_torch():
    c = sf.nn.PositionEmbedding(64, 16).cost((B, N, 16))
    wpe = torch.nn.Embedding(64, 16)
    assert c.params == sum(p.numel() for p in wpe.parameters()) == 64 * 16
    # one add per element of the (B, N, dim) tokens; the lookup is free
    assert c.flops == 16 * B * N
    assert c.validity == (sp.Le(N, 64),)
    with pytest.raises(sf.SymflopsError, match="longer than the position table"):
        sf.nn.PositionEmbedding(8, 16).cost((2, 9, 16))
    # sinusoidal positions (a buffer, as torch registers one): no parameters, the same add
    fixed = sf.nn.PositionEmbedding(64, 16, learned=False).cost((B, N, 16))
    assert fixed.params == 0 and fixed.flops == c.flops


class TorchTied(torch.nn.Module):
    def __init__(self, v, d):
        super().__init__()
        self.wte = torch.nn.Embedding(v, d)
        self.lm_head = torch.nn.Linear(d, v, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, input_ids):
        return self.lm_head(self.wte(input_ids))


def test_tied_head_equals_trace():
    emb = sf.nn.Embedding(50, 12)
    mine = sf.nn.Sequential({"wte": emb, "lm_head": sf.nn.TiedLMHead(emb)}).cost((B, N))
    traced = sf.trace(TorchTied(50, 12), {"input_ids": ("B", "N")}, warn=False)
    # parameters once: 50*12 = 600 (an untied count would say 1200)
    assert mine.params == traced.params == 600
    assert same_work(mine, traced)
    with pytest.raises(sf.SymflopsError, match="Embedding"):
        sf.nn.TiedLMHead(sf.nn.Linear(12, 50))


# --------------------------------------------------------------------- cross-attention
class TorchCross(torch.nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(d, h, batch_first=True)

    def forward(self, q, kv):
        return self.mha(q, kv, kv, need_weights=False)[0]


def test_cross_attention_equals_trace():
    d, h = 16, 4
    mine = sf.nn.MultiheadAttention(d, h, kv_len=S).cost((B, N, d))
    traced = sf.trace(TorchCross(d, h), [f"B N {d}", f"B S {d}"], warn=False)
    assert mine.params == traced.params == 4 * d * d + 4 * d
    # q projection N d^2, k and v projections 2 S d^2, scores and context 2 N S d,
    # output projection N d^2: MACs B (2 N d^2 + 2 S d^2 + 2 N S d)
    assert sp.expand(mine.macs - B * (2 * N * d**2 + 2 * S * d**2 + 2 * N * S * d)) == 0
    assert sp.expand(mine.flops - traced.flops) == 0
    with pytest.raises(sf.SymflopsError, match="not causal"):
        sf.nn.MultiheadAttention(d, h, kv_len=S, causal=True)


# --------------------------------------------------------------------- reshapes
@pytest.mark.parametrize("layer,torch_fn", [
    (sf.nn.Reshape(2, 5, 4, -1), lambda x: x.reshape(2, 5, 4, -1)),
    (sf.nn.Permute(0, 2, 1), lambda x: x.permute(0, 2, 1)),
    (sf.nn.Transpose(-1, 1), lambda x: x.transpose(-1, 1)),
], ids=["reshape", "permute", "transpose"])
def test_reshapes_are_free(layer, torch_fn):
    c = layer.cost((2, 5, 24))
    assert c.flops == 0 and c.params == 0
    assert c.output_shape == tuple(torch_fn(torch.zeros(2, 5, 24)).shape)


@pytest.mark.parametrize("layer,shape,match", [
    (sf.nn.Reshape(7, -1), (2, 5), "element count"),
    (sf.nn.Permute(0, 0), (2, 5), "every input dim"),
    (sf.nn.SwiGLU(8, 16), (2, 9), "features"),
], ids=["reshape", "permute", "swiglu"])
def test_bad_shapes_are_one_error(layer, shape, match):
    with pytest.raises(sf.SymflopsError, match=match):
        layer.cost(shape)


def test_bad_arguments_are_one_error():
    with pytest.raises(sf.SymflopsError, match="gate activation"):
        sf.nn.GatedMLP(8, 16, activation="relu6")
    with pytest.raises(sf.SymflopsError, match="at most one of them -1"):
        sf.nn.Reshape(-1, -1)
