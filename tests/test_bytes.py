"""Bytes moved, intensity and the roofline: symflops' traced formulas against an independent
dispatch-mode count over real tensors (tests/bytes_counter.py) at two sizes each, by hand
for sf.nn, and the roofline's per-op max by hand."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
import transformers
from torch import nn

import symflops as sf
from symflops import devices
from symflops.errors import SymflopsError

try:
    from tests.bytes_counter import BytesCounter
except ImportError:  # run from tests/
    from bytes_counter import BytesCounter  # type: ignore[no-redef]

transformers.logging.set_verbosity_error()


class _SmallCNN(nn.Module):
    """conv, batch norm, ReLU, max pool, a mean, a linear and a cat (data movement)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x).reshape(x.shape[0], 8, -1).mean(-1)
        return torch.cat([self.fc(y), y.contiguous()], 1)


class _Broadcast(nn.Module):
    """An expanded (stride 0) input read by a copy, as repeat_kv does, and a product."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, 1, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, 6)
        y = x[:, None].expand(x.shape[0], 4, x.shape[1], 6).reshape(x.shape[0], -1, 6)
        return y * self.scale


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=64,
                                  n_positions=64, attn_implementation="eager")
    return transformers.GPT2LMHeadModel(cfg).eval()


CASES = {
    "small-cnn": (_SmallCNN, "B 3 H W", [(2, 8, 10), (3, 17, 12)], torch.float32),
    "broadcast-copy": (_Broadcast, "B N 6", [(2, 5), (3, 9)], torch.float32),
    # (B >= 2: at B = 1 torch's reshape of a transposed (1, h, N, d) is a view, at B >= 2 a
    # copy; the formula follows the general path, as for every count)
    "gpt2-eager": (_gpt2, "B N", [(2, 7), (3, 16)], torch.long),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_traced_bytes_equal_a_dispatch_count_of_real_tensors(case: str) -> None:
    build, spec, sizes, dtype = CASES[case]
    torch.manual_seed(0)
    model = build().eval()
    dims = spec.split()
    cost = sf.trace(model, (tuple(dims), dtype) if dtype is torch.long else spec, warn=False)
    named = [d for d in dims if not d.isdigit()]
    for values in sizes:
        shape = []
        it = iter(values)
        for d in dims:
            shape.append(int(d) if d.isdigit() else next(it))
        x = torch.randint(0, 64, shape) if dtype is torch.long else torch.randn(shape)
        counter = BytesCounter(model)
        with torch.no_grad(), counter:
            model(x)
        ours = cost.subs(**dict(zip(named, values, strict=True))).bytes_by("both")
        assert ours == counter.total, values


def test_linear_bytes_by_hand_and_roles() -> None:
    # y = x W^T + b in float32: read x (B*8), W (8*4) and b (4), write y (B*4): 4 bytes each
    c = sf.trace(nn.Linear(8, 4), "B 8", warn=False)
    b = sf.symbols.B
    assert c.bytes_by("role") == {"activations": 48 * b, "weights": 144}
    assert c.bytes_by("direction") == {"read": 32 * b + 144, "write": 16 * b}
    assert c.bytes == 48 * b + 144
    # intensity: 2*8*4*B multiply-adds + 4*B bias adds over the bytes, exact
    assert c.with_convention("torch").intensity == 64 * b / (48 * b + 144)


def test_roofline_is_the_per_op_max_summed() -> None:
    model = _SmallCNN().eval()
    cost = sf.trace(model, "B 3 H W", warn=False, convention="torch").subs(B=2, H=32, W=32)
    h100 = devices.get_device("H100-SXM5-80GB")
    peak, bw = h100.peak["fp32"], h100.bandwidth
    by_hand = sp.Integer(0)
    for _, node in cost.walk():  # every counted op once, plus the uncounted copies
        if node.op and not node.children:
            by_hand += sp.Max(node.flops / peak, node.bytes / bw)
        elif node.children and node.io:
            by_hand += sp.Add(*node.io.values()) / bw
    assert cost.roofline(h100, "fp32") == by_hand
    assert isinstance(by_hand, sp.Rational) and by_hand >= cost.bytes / bw
    with pytest.raises(SymflopsError, match="MACs"):
        cost.with_convention("macs").roofline(h100, "fp32")


def test_roofline_keeps_device_symbols() -> None:
    bw = sp.Symbol("BW", positive=True)
    d = devices.Device(name="what-if", peak={"fp32": 10**15}, bandwidth=bw)
    c = sf.trace(nn.Linear(8, 4), "B 8", warn=False, convention="torch").subs(B=1)
    t = c.roofline(d, "fp32")
    # 48 + 144 bytes, memory-bound at any sane bandwidth: 192/BW
    assert t.subs(bw, 10**12) == sp.Rational(192, 10**12)


def test_train_bytes_count_the_backward_ops_too() -> None:
    # forward and backward (torch.autograd.grad of the outputs with ones, as the tracer
    # runs it): weights are read again by the input gradients; the weight gradients are
    # new tensors (activations)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).train()
    cost = sf.trace(model, "B 6", mode="train", warn=False)
    for b in (2, 7):
        x = torch.randn(b, 6)
        counter = BytesCounter(model)
        with counter:
            out = model(x)
            torch.autograd.grad([out], list(model.parameters()), [torch.ones_like(out)])
        # (the ones_like seed is written in both runs)
        assert cost.subs(B=b).bytes_by("both") == counter.total


class _DecodeStep(nn.Module):
    """One decoder layer's decode step written in plain torch, in bf16, with a
    preallocated KV cache: embedding, RMSNorm, q/k/v projections (GQA), the new key and
    value copied into the cache, attention over the T + 1 cached tokens, o_proj, a
    residual, a final RMSNorm and the LM head."""

    def __init__(self, dim: int, heads: int, kv_heads: int, vocab: int, max_len: int,
                 batch: int) -> None:
        super().__init__()
        self.h, self.kvh, self.d = heads, kv_heads, dim // heads
        self.embed = nn.Embedding(vocab, dim)
        self.norm1, self.norm2 = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.ones(dim))
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.d, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.d, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.cache_k = torch.zeros(batch, kv_heads, max_len, self.d, dtype=torch.bfloat16)
        self.cache_v = torch.zeros(batch, kv_heads, max_len, self.d, dtype=torch.bfloat16)

    @staticmethod
    def _norm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    def forward(self, ids: torch.Tensor, t: int) -> torch.Tensor:
        b = ids.shape[0]
        x = self.embed(ids)
        y = self._norm(x, self.norm1)
        q = self.q(y).view(b, 1, self.kvh, self.h // self.kvh, self.d).permute(0, 2, 3, 1, 4)
        self.cache_k[:, :, t] = self.k(y).view(b, self.kvh, self.d)
        self.cache_v[:, :, t] = self.v(y).view(b, self.kvh, self.d)
        k = self.cache_k[:, :, None, : t + 1]
        v = self.cache_v[:, :, None, : t + 1]
        p = torch.softmax(q @ k.transpose(-1, -2) / self.d ** 0.5, -1)
        ctx = (p @ v).permute(0, 3, 1, 2, 4).reshape(b, 1, -1)
        x = x + self.o(ctx)
        return self.head(self._norm(x, self.norm2))


def test_sfnn_decode_reads_every_weight_and_the_cache_as_a_torch_decode_step() -> None:
    # the roles every implementation shares: each weight read once (the embedding's rows
    # gathered), the cache read at T + 1 tokens and the new token's key and value written
    # (activations differ by how finely the ops are split: sf.nn counts a layer as one op)
    dim, heads, kvh, vocab = 32, 4, 2, 50
    layer = sf.nn.Sequential({
        "embed": sf.nn.Embedding(vocab, dim),
        "block": sf.nn.Residual(sf.nn.Sequential({
            "norm": sf.nn.RMSNorm(dim),
            "attn": sf.nn.MultiheadAttention(dim, heads, kv_heads=kvh, bias=False,
                                             batch_first=True)})),
        "norm": sf.nn.RMSNorm(dim), "head": sf.nn.Linear(dim, vocab, bias=False)})
    b_, t_ = sf.symbols.B, sp.Symbol("T", integer=True, nonnegative=True)
    dec = layer.cost((b_, 1), mode="decode", context=t_).bytes_by("both")
    for b, t in ((1, 5), (3, 12)):
        torch.manual_seed(0)
        step = _DecodeStep(dim, heads, kvh, vocab, 16, b).to(torch.bfloat16)
        ids = torch.randint(0, vocab, (b, 1))
        counter = BytesCounter(step, (step.cache_k, step.cache_v))
        with torch.no_grad(), counter:
            step(ids, t)
        ours = {k: v.subs({b_: b, t_: t}) for k, v in dec.items()}
        for key in ("weights.read", "kv_cache.read", "kv_cache.write"):
            assert ours[key] == counter.total[key], (key, b, t)
