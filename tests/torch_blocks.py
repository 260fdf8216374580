"""Plain torch modules that compute what ``sf.nn`` layers describe, op by op, for the
training tests (``sf.nn`` train mode == ``sf.trace(..., mode="train")`` on these).

Dropout: on CPU ``F.dropout`` draws a float noise tensor (``bernoulli_``, ``div_``,
``mul``) and saves it; CUDA runs the fused ``native_dropout`` (a bool mask, 1 byte per
element), which is what ``sf.nn`` and Korthikanti et al. count. :class:`FusedDropout`
calls ``native_dropout`` so that the CPU trace runs the same kernel.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

import symflops as sf
from symflops.symbols import B, H, N, W


class FusedDropout(nn.Module):
    """``nn.Dropout`` through ``aten.native_dropout`` (CUDA's path) in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return torch.native_dropout(x, self.p, True)[0]


class Attention(nn.Module):
    """``sf.nn.MultiheadAttention``: a fused q, k, v projection, ``Q K^T``, the scale,
    (``causal``: a mask from a buffer), softmax, dropout on the probabilities, ``A V`` and
    the output projection."""

    def __init__(self, dim: int, heads: int, p: float = 0.0, causal: bool = False,
                 kv_heads: int | None = None) -> None:
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads or heads
        self.register_buffer("mask", torch.ones(64, 64, dtype=torch.bool).triu(1)
                             if causal else None)
        self.qkv = nn.Linear(dim, dim + 2 * self.kv_heads * (dim // heads))
        self.drop = FusedDropout(p)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        hd, kvh = d // self.heads, self.kv_heads
        if kvh == self.heads:
            q, k, v = self.qkv(x).view(b, n, 3, kvh, hd).permute(2, 0, 3, 1, 4)
        else:  # grouped-query attention: K and V expanded to every query head (repeat_kv)
            q, k, v = self.qkv(x).split([d, kvh * hd, kvh * hd], -1)
            q = q.view(b, n, self.heads, hd).transpose(1, 2)
            k, v = (t.view(b, n, kvh, hd).transpose(1, 2)[:, :, None]
                    .expand(b, kvh, self.heads // kvh, n, hd).reshape(b, self.heads, n, hd)
                    for t in (k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        if self.mask is not None:
            scores = scores.masked_fill(self.mask[:n, :n], float("-inf"))
        probs = self.drop(scores.softmax(-1))
        return self.out_proj((probs @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """``sf.nn.TransformerBlock(dim, heads, ratio, dropout=p)``: pre-norm attention and
    GELU MLP residuals, dropout after each."""

    def __init__(self, dim: int, heads: int, ratio: int = 4, p: float = 0.0,
                 causal: bool = False, kv_heads: int | None = None) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, p, causal, kv_heads)
        self.fc1, self.act = nn.Linear(dim, ratio * dim), nn.GELU()
        self.fc2 = nn.Linear(ratio * dim, dim)
        self.drop1, self.drop2 = FusedDropout(p), FusedDropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop1(self.attn(self.norm1(x)))
        return x + self.drop2(self.fc2(self.act(self.fc1(self.norm2(x)))))


def conv_net() -> tuple[sf.nn.Layer, nn.Module]:
    sym = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.BatchNorm2d(8),
                           sf.nn.ReLU(), sf.nn.Conv2d(8, 8, 3, stride=2, bias=False),
                           sf.nn.GroupNorm(2, 8), sf.nn.SiLU())
    real = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, bias=False), nn.GroupNorm(2, 8),
                         nn.SiLU())
    return sym, real


def pool_net() -> tuple[sf.nn.Layer, nn.Module]:
    sym = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.ReLU(),
                           sf.nn.MaxPool2d(2), sf.nn.Conv2d(8, 8, 3, padding=1),
                           sf.nn.AvgPool2d(2), sf.nn.Hardswish(),
                           sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(), sf.nn.Linear(8, 10))
    real = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.AvgPool2d(2), nn.Hardswish(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    return sym, real


def token_net() -> tuple[sf.nn.Layer, nn.Module]:
    sym = sf.nn.Sequential(sf.nn.Embedding(50, 16),
                           sf.nn.TransformerBlock(16, 4, 2, causal=True, dropout=0.1),
                           sf.nn.LayerNorm(16), sf.nn.Linear(16, 50, bias=False))
    real = nn.Sequential(nn.Embedding(50, 16), Block(16, 4, 2, 0.1, causal=True),
                         nn.LayerNorm(16), nn.Linear(16, 50, bias=False))
    return sym, real


CASES = {
    "linear-stack": (lambda: (sf.nn.Sequential(sf.nn.Linear(8, 16), sf.nn.ReLU(),
                                               sf.nn.Linear(16, 4)),
                              nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))),
                     "B 8", (B, 8)),
    "mlp-tokens": (lambda: (sf.nn.MLP(8, 32, activation="gelu"),
                            nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))),
                   "B N 8", (B, N, 8)),
    "norms": (lambda: (sf.nn.Sequential(sf.nn.LayerNorm(8), sf.nn.Linear(8, 8, bias=False),
                                        sf.nn.Tanh(), sf.nn.Softmax(-1)),
                       nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8, bias=False), nn.Tanh(),
                                     nn.Softmax(-1))),
              "B N 8", (B, N, 8)),
    "transformer-block": (lambda: (sf.nn.TransformerBlock(16, 4, 4), Block(16, 4, 4)),
                          "B N 16", (B, N, 16)),
    "transformer-block-dropout": (lambda: (sf.nn.TransformerBlock(16, 4, 4, dropout=0.1),
                                           Block(16, 4, 4, 0.1)),
                                  "B N 16", (B, N, 16)),
    "conv-net": (conv_net, "B 3 H W", (B, 3, H, W)),
    "pool-net": (pool_net, "B 3 H W", (B, 3, H, W)),
    "token-net": (token_net, ("B N", torch.long), (B, N)),
    "grouped-query-block": (lambda: (sf.nn.TransformerBlock(16, 4, 2, kv_heads=2, dropout=0.1),
                                     Block(16, 4, 2, 0.1, kv_heads=2)), "B N 16", (B, N, 16)),
}


@functools.cache
def traced_case(case: str) -> tuple[sf.Cost, sf.Cost]:
    """``(sf.trace of the torch model in mode="train", its sf.nn twin's train cost with
    the torch accounting)`` of ``CASES[case]``, computed once per test session."""
    build, spec, shape = CASES[case]
    sym, real = build()
    names = (spec if isinstance(spec, str) else spec[0]).split()
    hints = {k: v for k, v in {"N": 8, "H": 16, "W": 16}.items() if k in names}
    return (sf.trace(real, spec, mode="train", hints=hints),
            sym.cost(shape, mode="train", accounting="torch"))
