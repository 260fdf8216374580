"""One case (or more) per layer in ``symflops.nn.LAYERS``, checked three ways:

1. symbolically, against a hand derivation written in a comment above each expected value;
2. at a few concrete sizes, kind by kind, against brute-force integer counting
   (``tests/bruteforce.py``: loops that count every scalar operation, and the output shape
   the loops produce) under the ``exact`` convention;
3. against ``torch.utils.flop_counter.FlopCounterMode`` on the equivalent real torch layer
   (convention ``torch``) and the real layer's output shape.

Symbols in the hand derivations: ``Ho = floor((H + 2p - d(K - 1) - 1)/s) + 1`` and so on,
written out in each comment.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sympy as sp

import symflops as sf
from symflops import nn
from symflops.conventions import get_convention
from symflops.symbols import (
    B,
    C,
    C_in,
    C_out,
    D,
    H,
    I,
    K,
    L,
    N,
    O,
    T,
    V,
    W,
    dim,
    groups,
    head_dim,
    heads,
    symbol,
)

try:  # python -m pytest (the repository root on sys.path)
    from tests import bruteforce as bf
except ImportError:  # plain pytest: tests/ itself is on sys.path
    import bruteforce as bf  # type: ignore[no-redef]

floor, ceiling = sp.floor, sp.ceiling


@dataclass
class Case:
    """A layer, its symbolic input, the hand-derived expectations and how to check them."""

    id: str
    layer: Callable[[], nn.Layer]
    shape: tuple[Any, ...]
    params: Any
    exact: Any
    macs: Any
    out: tuple[Any, ...]
    points: list[dict[sp.Symbol, int]]
    brute: Callable[[dict[sp.Symbol, int]], tuple[dict[str, int], tuple[int, ...], int]]
    torch: Callable[[dict[sp.Symbol, int]], tuple[Any, tuple[Any, ...]]] | None = None
    kinds: dict[str, Any] = field(default_factory=dict)  # extra per-kind expectations


def _v(p: dict[sp.Symbol, int], *syms: sp.Symbol) -> list[int]:
    return [p[s] for s in syms]


def _tnn() -> Any:
    torch = pytest.importorskip("torch")
    return torch, torch.nn


CASES: list[Case] = []


def case(c: Case) -> None:
    CASES.append(c)


# ============================================================================ convolution
# Conv1d(C_in, C_out, K) on (B, C_in, T): To = T - K + 1.
# Each of the B*C_out*To outputs: C_in*K multiplies, C_in*K - 1 adds, one bias add.
case(Case(
    "Conv1d", lambda: nn.Conv1d(C_in, C_out, K), (B, C_in, T),
    # weights C_out*C_in*K, one bias per output channel
    params=C_out * (C_in * K + 1),
    # (C_in K + (C_in K - 1) + 1) per output
    exact=2 * C_in * K * B * C_out * (T - K + 1),
    macs=C_in * K * B * C_out * (T - K + 1),
    out=(B, C_out, T - K + 1),
    points=[{B: 2, C_in: 3, C_out: 4, K: 3, T: 7}, {B: 1, C_in: 1, C_out: 2, K: 5, T: 5}],
    brute=lambda p: bf.conv((p[B], p[C_in], p[T]), p[C_out], [p[K]], [1], [0], [1]),
    torch=lambda p: (_tnn()[1].Conv1d(p[C_in], p[C_out], p[K]), (p[B], p[C_in], p[T])),
))

# Conv2d(C_in, C_out, K, padding="same"): Ho = H, Wo = W (torch pads K - 1 in total, the odd
# one on the right for even K). Per output 2*C_in*K^2: the seed article's formula.
case(Case(
    "Conv2d-same", lambda: nn.Conv2d(C_in, C_out, K, padding="same"), (B, C_in, H, W),
    params=C_out * (C_in * K**2 + 1),
    exact=2 * B * C_in * C_out * K**2 * H * W,
    macs=B * C_in * C_out * K**2 * H * W,
    out=(B, C_out, H, W),
    points=[{B: 1, C_in: 2, C_out: 3, K: 3, H: 5, W: 4},
            {B: 2, C_in: 2, C_out: 2, K: 4, H: 5, W: 6}],  # even kernel
    brute=lambda p: bf.conv((p[B], p[C_in], p[H], p[W]), p[C_out], [p[K]] * 2, [1, 1],
                            "same", [1, 1]),
    torch=lambda p: (_tnn()[1].Conv2d(p[C_in], p[C_out], p[K], padding="same"),
                     (p[B], p[C_in], p[H], p[W])),
))

# Depthwise Conv2d(C, C, 3, stride=2, padding=1, groups=C): Ho = floor((H + 2 - 2 - 1)/2) + 1
# = floor((H - 1)/2) + 1. Each output: 9 multiplies, 8 adds, 1 bias = 18.
_ho = floor((H - 1) / 2) + 1
_wo = floor((W - 1) / 2) + 1
case(Case(
    "Conv2d-depthwise-stride2", lambda: nn.Conv2d(C, C, 3, stride=2, padding=1, groups=C),
    (B, C, H, W),
    params=C * (1 * 9 + 1),
    exact=18 * B * C * _ho * _wo,
    macs=9 * B * C * _ho * _wo,
    out=(B, C, _ho, _wo),
    points=[{B: 1, C: 3, H: 7, W: 8}, {B: 2, C: 2, H: 1, W: 2}],
    brute=lambda p: bf.conv((p[B], p[C], p[H], p[W]), p[C], [3, 3], [2, 2], [1, 1], [1, 1],
                            groups=p[C]),
    torch=lambda p: (_tnn()[1].Conv2d(p[C], p[C], 3, stride=2, padding=1, groups=p[C]),
                     (p[B], p[C], p[H], p[W])),
))

# Conv2d(4, 6, (3, 5), stride=(1, 2), dilation=2, groups=2, bias=False):
# Ho = H - 2*(3-1) - 1 + 1 = H - 4; Wo = floor((W - 2*(5-1) - 1)/2) + 1 = floor((W - 9)/2) + 1.
# Dot product length 4/2 * 15 = 30: 30 multiplies + 29 adds, no bias.
_ho2, _wo2 = H - 4, floor((W - 9) / 2) + 1
case(Case(
    "Conv2d-rect-dilated-grouped-nobias",
    lambda: nn.Conv2d(4, 6, (3, 5), stride=(1, 2), dilation=2, groups=2, bias=False),
    (B, 4, H, W),
    params=6 * 2 * 15,
    exact=(30 + 29) * B * 6 * _ho2 * _wo2,
    macs=30 * B * 6 * _ho2 * _wo2,
    out=(B, 6, _ho2, _wo2),
    points=[{B: 1, H: 5, W: 9}, {B: 2, H: 7, W: 12}],
    brute=lambda p: bf.conv((p[B], 4, p[H], p[W]), 6, [3, 5], [1, 2], [0, 0], [2, 2], groups=2,
                            bias=False),
    torch=lambda p: (_tnn()[1].Conv2d(4, 6, (3, 5), stride=(1, 2), dilation=2, groups=2,
                                      bias=False), (p[B], 4, p[H], p[W])),
))

# Conv3d(C_in, C_out, K, stride=2) on (B, C_in, D, H, W): Do = floor((D - K)/2) + 1, etc.
# Per output 2*C_in*K^3.
_o3 = [floor((x - K) / 2) + 1 for x in (D, H, W)]
case(Case(
    "Conv3d-stride2", lambda: nn.Conv3d(C_in, C_out, K, stride=2), (B, C_in, D, H, W),
    params=C_out * (C_in * K**3 + 1),
    exact=2 * C_in * K**3 * B * C_out * math.prod(_o3),
    macs=C_in * K**3 * B * C_out * math.prod(_o3),
    out=(B, C_out, *_o3),
    points=[{B: 1, C_in: 2, C_out: 2, K: 2, D: 3, H: 4, W: 5}],
    brute=lambda p: bf.conv((p[B], p[C_in], p[D], p[H], p[W]), p[C_out], [p[K]] * 3, [2] * 3,
                            [0] * 3, [1] * 3),
    torch=lambda p: (_tnn()[1].Conv3d(p[C_in], p[C_out], p[K], stride=2),
                     (p[B], p[C_in], p[D], p[H], p[W])),
))

# Unbatched Conv1d on (C_in, T): same count with B = 1, output (C_out, T - K + 1).
case(Case(
    "Conv1d-unbatched", lambda: nn.Conv1d(C_in, C_out, K), (C_in, T),
    params=C_out * (C_in * K + 1),
    exact=2 * C_in * K * C_out * (T - K + 1),
    macs=C_in * K * C_out * (T - K + 1),
    out=(C_out, T - K + 1),
    points=[{C_in: 2, C_out: 3, K: 2, T: 4}],
    brute=lambda p: bf.conv((p[C_in], p[T]), p[C_out], [p[K]], [1], [0], [1]),
    torch=lambda p: (_tnn()[1].Conv1d(p[C_in], p[C_out], p[K]), (p[C_in], p[T])),
))

# ConvTranspose1d(C_in, C_out, K, stride=2) on (B, C_in, T): To = (T - 1)*2 + K.
# Scatter: every input element times every weight: B*C_in*T*C_out*K multiplies.
# Input i writes to 2i .. 2i + K - 1: covered positions (T - 1)*min(2, K) + K; each
# covered position collecting n products costs n - 1 adds.
_tmac = B * C_in * T * C_out * K
case(Case(
    "ConvTranspose1d-stride2", lambda: nn.ConvTranspose1d(C_in, C_out, K, stride=2),
    (B, C_in, T),
    params=C_in * C_out * K + C_out,
    exact=_tmac + (_tmac - B * C_out * ((T - 1) * sp.Min(2, K) + K))
    + B * C_out * (2 * (T - 1) + K),
    macs=_tmac,
    out=(B, C_out, 2 * (T - 1) + K),
    points=[{B: 1, C_in: 2, C_out: 3, K: 3, T: 4}, {B: 2, C_in: 1, C_out: 2, K: 1, T: 3}],
    brute=lambda p: bf.conv_transpose((p[B], p[C_in], p[T]), p[C_out], [p[K]], [2], [0], [0],
                                      [1]),
    torch=lambda p: (_tnn()[1].ConvTranspose1d(p[C_in], p[C_out], p[K], stride=2),
                     (p[B], p[C_in], p[T])),
))

# ConvTranspose1d(2, 3, 3, stride=2, dilation=3, padding=1): To = (T - 1)*2 - 2 + 3*2 + 1
# = 2T + 3. Multiplies B*2*T*3*3 = 18 B T. Input i writes 2i + 3j (j < 3); stride and
# dilation coprime: taps j = 0, 2 (even) reach 2(i + 3m), a stride-1 dilation-3 pattern of 2
# taps: min(3, T) + T positions; tap j = 1 reaches 2i + 3: T positions. Covered:
# 2T + min(3, T) per output channel.
case(Case(
    "ConvTranspose1d-coprime-stride-dilation",
    lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, dilation=3, padding=1), (B, 2, T),
    params=2 * 3 * 3 + 3,
    exact=18 * B * T + (18 * B * T - 3 * B * (2 * T + sp.Min(3, T))) + 3 * B * (2 * T + 3),
    macs=18 * B * T,
    out=(B, 3, 2 * T + 3),
    points=[{B: 1, T: 1}, {B: 2, T: 2}, {B: 1, T: 5}],
    brute=lambda p: bf.conv_transpose((p[B], 2, p[T]), 3, [3], [2], [1], [0], [3]),
    torch=lambda p: (_tnn()[1].ConvTranspose1d(2, 3, 3, stride=2, dilation=3, padding=1),
                     (p[B], 2, p[T])),
))

# ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2):
# Ho = (H - 1)*2 - 2 + 2 + 1 + 1 = 2H. Multiplies B*4*H*W*(6/2)*9 = 108 B H W.
# Uncropped covered positions per dim (H - 1)*min(2, 3) + 3 = 2H + 1, per output channel.
case(Case(
    "ConvTranspose2d-grouped-outpad",
    lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
    (B, 4, H, W),
    params=4 * 3 * 9 + 6,
    exact=108 * B * H * W + (108 * B * H * W - 6 * B * (2 * H + 1) * (2 * W + 1))
    + 6 * B * 2 * H * 2 * W,
    macs=108 * B * H * W,
    out=(B, 6, 2 * H, 2 * W),
    points=[{B: 1, H: 2, W: 3}, {B: 2, H: 3, W: 3}],
    brute=lambda p: bf.conv_transpose((p[B], 4, p[H], p[W]), 6, [3, 3], [2, 2], [1, 1],
                                      [1, 1], [1, 1], groups=2),
    torch=lambda p: (_tnn()[1].ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                               groups=2), (p[B], 4, p[H], p[W])),
))

# ConvTranspose2d(2, 3, 3, dilation=2, bias=False): Ho = H - 1 + 2*2 + 1 = H + 4.
# Multiplies B*2*H*W*3*9; input i writes i + 2j (j < 3): covered (3 - 1)*min(2, H) + H.
_cov = lambda x: 2 * sp.Min(2, x) + x  # noqa: E731
case(Case(
    "ConvTranspose2d-dilated",
    lambda: nn.ConvTranspose2d(2, 3, 3, dilation=2, bias=False), (B, 2, H, W),
    params=2 * 3 * 9,
    exact=54 * B * H * W + (54 * B * H * W - 3 * B * _cov(H) * _cov(W)),
    macs=54 * B * H * W,
    out=(B, 3, H + 4, W + 4),
    points=[{B: 1, H: 1, W: 4}, {B: 1, H: 3, W: 2}],
    brute=lambda p: bf.conv_transpose((p[B], 2, p[H], p[W]), 3, [3, 3], [1, 1], [0, 0],
                                      [0, 0], [2, 2], bias=False),
    torch=lambda p: (_tnn()[1].ConvTranspose2d(2, 3, 3, dilation=2, bias=False),
                     (p[B], 2, p[H], p[W])),
))

# ConvTranspose3d(2, 2, 2, stride=2) on (1, 2, D, H, W): no overlap (stride = kernel), each of
# the 8DHW positions per channel gets C_in = 2 products: 1 add. Multiplies 2*DHW*2*8 = 32DHW.
case(Case(
    "ConvTranspose3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), (1, 2, D, H, W),
    params=2 * 2 * 8 + 2,
    exact=32 * D * H * W + (32 * D * H * W - 2 * 8 * D * H * W) + 2 * 8 * D * H * W,
    macs=32 * D * H * W,
    out=(1, 2, 2 * D, 2 * H, 2 * W),
    points=[{D: 1, H: 2, W: 2}],
    brute=lambda p: bf.conv_transpose((1, 2, p[D], p[H], p[W]), 2, [2] * 3, [2] * 3, [0] * 3,
                                      [0] * 3, [1] * 3),
    torch=lambda p: (_tnn()[1].ConvTranspose3d(2, 2, 2, stride=2), (1, 2, p[D], p[H], p[W])),
))

# ================================================================================ linear
# Linear(I, O) on (B, N, I): B*N*O outputs, each I multiplies + (I - 1) adds + 1 bias = 2I.
case(Case(
    "Linear", lambda: nn.Linear(I, O), (B, N, I),
    params=(I + 1) * O,
    exact=2 * I * O * B * N,
    macs=I * O * B * N,
    out=(B, N, O),
    points=[{B: 2, N: 3, I: 4, O: 5}],
    brute=lambda p: bf.linear((p[B], p[N], p[I]), p[O]),
    torch=lambda p: (_tnn()[1].Linear(p[I], p[O]), (p[B], p[N], p[I])),
))

# Linear(I, O, bias=False) on (B, I): I multiplies + (I - 1) adds per output.
case(Case(
    "Linear-nobias", lambda: nn.Linear(I, O, bias=False), (B, I),
    params=I * O,
    exact=(2 * I - 1) * O * B,
    macs=I * O * B,
    out=(B, O),
    points=[{B: 3, I: 1, O: 2}, {B: 1, I: 5, O: 3}],
    brute=lambda p: bf.linear((p[B], p[I]), p[O], bias=False),
    torch=lambda p: (_tnn()[1].Linear(p[I], p[O], bias=False), (p[B], p[I])),
))

# ================================================================================= norms
# BatchNorm (inference): running stats and affine folded into a*x + b: 2 per element.
case(Case(
    "BatchNorm1d", lambda: nn.BatchNorm1d(C), (B, C, T),
    params=2 * C, exact=2 * B * C * T, macs=0, out=(B, C, T),
    points=[{B: 2, C: 3, T: 4}],
    brute=lambda p: bf.batch_norm((p[B], p[C], p[T])),
    torch=lambda p: (_tnn()[1].BatchNorm1d(p[C]).eval(), (p[B], p[C], p[T])),
))
case(Case(
    "BatchNorm2d", lambda: nn.BatchNorm2d(C), (B, C, H, W),
    # the seed article: 2*C*H*W per image, params 2C
    params=2 * C, exact=2 * B * C * H * W, macs=0, out=(B, C, H, W),
    points=[{B: 1, C: 2, H: 3, W: 4}],
    brute=lambda p: bf.batch_norm((p[B], p[C], p[H], p[W])),
    torch=lambda p: (_tnn()[1].BatchNorm2d(p[C]).eval(), (p[B], p[C], p[H], p[W])),
))
# Training BatchNorm2d: per channel, statistics over M = B*H*W values: 5M + 2; affine 2/elem.
case(Case(
    "BatchNorm2d-training", lambda: nn.BatchNorm2d(C, training=True), (B, C, H, W),
    params=2 * C, exact=C * (5 * B * H * W + 2) + 2 * B * C * H * W, macs=0,
    out=(B, C, H, W),
    points=[{B: 2, C: 2, H: 2, W: 3}],
    brute=lambda p: bf.batch_norm((p[B], p[C], p[H], p[W]), training=True),
    torch=lambda p: (_tnn()[1].BatchNorm2d(p[C]).train(), (p[B], p[C], p[H], p[W])),
))
case(Case(
    "BatchNorm3d", lambda: nn.BatchNorm3d(C, affine=False), (B, C, D, H, W),
    # no affine parameters; inference still subtracts the mean and scales: 2 per element
    params=0, exact=2 * B * C * D * H * W, macs=0, out=(B, C, D, H, W),
    points=[{B: 1, C: 2, D: 2, H: 2, W: 3}],
    brute=lambda p: bf.batch_norm((p[B], p[C], p[D], p[H], p[W]), affine=False),
    torch=lambda p: (_tnn()[1].BatchNorm3d(p[C], affine=False).eval(),
                     (p[B], p[C], p[D], p[H], p[W])),
))

# LayerNorm(dim) on (B, N, dim): per row 5 dim + 2 (mean dim, variance 3 dim, eps + rsqrt 2,
# normalize dim), then x*w + b: 2 per element. Params 2 dim (not the article's N*2).
case(Case(
    "LayerNorm", lambda: nn.LayerNorm(dim), (B, N, dim),
    params=2 * dim, exact=B * N * (5 * dim + 2) + 2 * B * N * dim, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 4}],
    brute=lambda p: bf.layer_norm((p[B], p[N], p[dim]), (p[dim],)),
    torch=lambda p: (_tnn()[1].LayerNorm(p[dim]), (p[B], p[N], p[dim])),
    kinds={"norm_affine": 2 * B * N * dim, "norm_stats": B * N * (5 * dim + 2)},
))
# LayerNorm((H, W), bias=False) on (B, C, H, W): rows B*C of n = H*W; weight only: 1/elem.
case(Case(
    "LayerNorm-2d-nobias", lambda: nn.LayerNorm((H, W), bias=False), (B, C, H, W),
    params=H * W, exact=B * C * (5 * H * W + 2) + B * C * H * W, macs=0, out=(B, C, H, W),
    points=[{B: 1, C: 2, H: 2, W: 3}],
    brute=lambda p: bf.layer_norm((p[B], p[C], p[H], p[W]), (p[H], p[W]), bias=False),
    torch=lambda p: (_tnn()[1].LayerNorm((p[H], p[W]), bias=False), (p[B], p[C], p[H], p[W])),
))

# GroupNorm(groups, C) on (B, C, H, W): statistics over B*groups groups of C/groups*H*W
# values (5n + 2 each), then the per-channel affine, 2 per element. Params 2C.
case(Case(
    "GroupNorm", lambda: nn.GroupNorm(groups, C), (B, C, H, W),
    params=2 * C, exact=B * groups * (5 * C / groups * H * W + 2) + 2 * B * C * H * W,
    macs=0, out=(B, C, H, W),
    points=[{B: 2, groups: 2, C: 4, H: 2, W: 3}, {B: 1, groups: 1, C: 3, H: 1, W: 2}],
    brute=lambda p: bf.group_norm((p[B], p[C], p[H], p[W]), p[groups]),
    torch=lambda p: (_tnn()[1].GroupNorm(p[groups], p[C]), (p[B], p[C], p[H], p[W])),
))

# RMSNorm(dim): per row dim squares, dim - 1 adds, divide, + eps, rsqrt, dim multiplies
# = 3 dim + 2; then the weight, dim multiplies. Params dim.
case(Case(
    "RMSNorm", lambda: nn.RMSNorm(dim), (B, N, dim),
    params=dim, exact=B * N * (3 * dim + 2) + B * N * dim, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 4}],
    brute=lambda p: bf.rms_norm((p[B], p[N], p[dim]), (p[dim],)),
    torch=lambda p: (_tnn()[1].RMSNorm(p[dim]), (p[B], p[N], p[dim])),
))

# =============================================================================== pooling
# MaxPool1d(K) (stride K) on (B, C, T): To = floor((T - K)/K) + 1 = floor(T/K); K - 1
# compares per output.
case(Case(
    "MaxPool1d", lambda: nn.MaxPool1d(K), (B, C, T),
    params=0, exact=B * C * floor(T / K) * (K - 1), macs=0, out=(B, C, floor(T / K)),
    points=[{B: 1, C: 2, K: 2, T: 7}, {B: 2, C: 1, K: 3, T: 9}],
    brute=lambda p: bf.pool((p[B], p[C], p[T]), "max", [p[K]], [p[K]], [0], [1]),
    torch=lambda p: (_tnn()[1].MaxPool1d(p[K]), (p[B], p[C], p[T])),
))
# MaxPool2d(3, stride=2, padding=1): Ho = floor((H + 2 - 2 - 1)/2) + 1 = floor((H - 1)/2) + 1;
# 3*3 - 1 = 8 compares per output (padding positions count as -inf window elements).
case(Case(
    "MaxPool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1), (B, C, H, W),
    params=0, exact=8 * B * C * _ho * _wo, macs=0, out=(B, C, _ho, _wo),
    points=[{B: 1, C: 2, H: 7, W: 8}, {B: 1, C: 1, H: 2, W: 3}],
    brute=lambda p: bf.pool((p[B], p[C], p[H], p[W]), "max", [3, 3], [2, 2], [1, 1], [1, 1]),
    torch=lambda p: (_tnn()[1].MaxPool2d(3, stride=2, padding=1), (p[B], p[C], p[H], p[W])),
))
# MaxPool2d(3, stride=2, dilation=2): Ho = floor((H - 2*2 - 1)/2) + 1 = floor((H - 5)/2) + 1.
_hd, _wd = floor((H - 5) / 2) + 1, floor((W - 5) / 2) + 1
case(Case(
    "MaxPool2d-dilated", lambda: nn.MaxPool2d(3, stride=2, dilation=2), (B, C, H, W),
    params=0, exact=8 * B * C * _hd * _wd, macs=0, out=(B, C, _hd, _wd),
    points=[{B: 1, C: 1, H: 5, W: 8}],
    brute=lambda p: bf.pool((p[B], p[C], p[H], p[W]), "max", [3, 3], [2, 2], [0, 0], [2, 2]),
    torch=lambda p: (_tnn()[1].MaxPool2d(3, stride=2, dilation=2), (p[B], p[C], p[H], p[W])),
))
# MaxPool2d(2, stride=2, ceil_mode=True) on (1, 1, 5, 5): Ho = ceil((5 - 2)/2) + 1 = 3; the
# windows along a dim hold 2, 2 and 1 elements (the last one sticks out): 5*5 = 25 elements
# over 9 outputs: 25 - 9 = 16 compares.
case(Case(
    "MaxPool2d-ceil", lambda: nn.MaxPool2d(2, stride=2, ceil_mode=True), (1, 1, 5, 5),
    params=0, exact=16, macs=0, out=(1, 1, 3, 3),
    points=[{}],
    brute=lambda p: bf.pool((1, 1, 5, 5), "max", [2, 2], [2, 2], [0, 0], [1, 1], True),
    torch=lambda p: (_tnn()[1].MaxPool2d(2, stride=2, ceil_mode=True), (1, 1, 5, 5)),
))
# Symbolic ceil_mode, checked at sizes where the last window fits and where it sticks out
# (MaxPool2d(3, stride=2, padding=1, ceil_mode=True), H in 4..9).
case(Case(
    "MaxPool2d-ceil-symbolic", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    (B, C, H, W), params=0, exact=None, macs=0, out=None,
    points=[{B: 1, C: 1, H: h, W: w} for h, w in ((4, 5), (6, 7), (8, 9), (1, 2))],
    brute=lambda p: bf.pool((p[B], p[C], p[H], p[W]), "max", [3, 3], [2, 2], [1, 1], [1, 1],
                            True),
    torch=lambda p: (_tnn()[1].MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                     (p[B], p[C], p[H], p[W])),
))
# AvgPool1d(3, stride=2, padding=1): To = floor((T - 1)/2) + 1; 2 adds + 1 divide = 3/output.
_to = floor((T - 1) / 2) + 1
case(Case(
    "AvgPool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), (B, C, T),
    params=0, exact=3 * B * C * _to, macs=0, out=(B, C, _to),
    points=[{B: 2, C: 1, T: 6}, {B: 1, C: 1, T: 1}],
    brute=lambda p: bf.pool((p[B], p[C], p[T]), "avg", [3], [2], [1], [1]),
    torch=lambda p: (_tnn()[1].AvgPool1d(3, stride=2, padding=1), (p[B], p[C], p[T])),
))
# AvgPool2d(2): Ho = floor(H/2); 3 adds + 1 divide = 4 per output.
case(Case(
    "AvgPool2d", lambda: nn.AvgPool2d(2), (B, C, H, W),
    params=0, exact=4 * B * C * floor(H / 2) * floor(W / 2), macs=0,
    out=(B, C, floor(H / 2), floor(W / 2)),
    points=[{B: 1, C: 2, H: 5, W: 4}],
    brute=lambda p: bf.pool((p[B], p[C], p[H], p[W]), "avg", [2, 2], [2, 2], [0, 0], [1, 1]),
    torch=lambda p: (_tnn()[1].AvgPool2d(2), (p[B], p[C], p[H], p[W])),
))
# AvgPool2d(3, stride=2, ceil_mode=True), symbolic, at sizes with a partial last window.
case(Case(
    "AvgPool2d-ceil-symbolic", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True),
    (B, C, H, W), params=0, exact=None, macs=0, out=None,
    points=[{B: 1, C: 1, H: h, W: w} for h, w in ((4, 5), (6, 8), (3, 10))],
    brute=lambda p: bf.pool((p[B], p[C], p[H], p[W]), "avg", [3, 3], [2, 2], [0, 0], [1, 1],
                            True),
    torch=lambda p: (_tnn()[1].AvgPool2d(3, stride=2, ceil_mode=True),
                     (p[B], p[C], p[H], p[W])),
))

# AdaptiveAvgPool1d(1): one window of T per plane: T - 1 adds + 1 divide.
case(Case(
    "AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(1), (B, C, T),
    params=0, exact=B * C * T, macs=0, out=(B, C, 1),
    points=[{B: 2, C: 3, T: 5}],
    brute=lambda p: bf.adaptive_pool((p[B], p[C], p[T]), "avg", [1]),
    torch=lambda p: (_tnn()[1].AdaptiveAvgPool1d(1), (p[B], p[C], p[T])),
))
# AdaptiveAvgPool2d((1, 1)): H*W per plane (global average pooling).
case(Case(
    "AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((1, 1)), (B, C, H, W),
    params=0, exact=B * C * H * W, macs=0, out=(B, C, 1, 1),
    points=[{B: 1, C: 2, H: 3, W: 4}],
    brute=lambda p: bf.adaptive_pool((p[B], p[C], p[H], p[W]), "avg", [1, 1]),
    torch=lambda p: (_tnn()[1].AdaptiveAvgPool2d((1, 1)), (p[B], p[C], p[H], p[W])),
))
# AdaptiveAvgPool2d((3, 5)) on 7 x 11 (sizes that do not divide): windows along 7 -> 3 are
# [0,3) [2,5) [4,7): lengths 3+3+3 = 9; along 11 -> 5: [0,3) [2,5) [4,7) [6,9) [8,11): 15.
# Sum of window sizes 9*15 = 135 (adds + one divide per output = window size).
case(Case(
    "AdaptiveAvgPool2d-nondividing", lambda: nn.AdaptiveAvgPool2d((3, 5)), (B, C, H, W),
    params=0, exact=None, macs=0, out=(B, C, 3, 5),
    points=[{B: 1, C: 1, H: 7, W: 11}, {B: 2, C: 1, H: 3, W: 5}, {B: 1, C: 2, H: 2, W: 13}],
    brute=lambda p: bf.adaptive_pool((p[B], p[C], p[H], p[W]), "avg", [3, 5]),
    torch=lambda p: (_tnn()[1].AdaptiveAvgPool2d((3, 5)), (p[B], p[C], p[H], p[W])),
))
# AdaptiveMaxPool2d((1, 1)): H*W - 1 compares per plane.
case(Case(
    "AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d((1, 1)), (B, C, H, W),
    params=0, exact=B * C * (H * W - 1), macs=0, out=(B, C, 1, 1),
    points=[{B: 2, C: 2, H: 3, W: 3}],
    brute=lambda p: bf.adaptive_pool((p[B], p[C], p[H], p[W]), "max", [1, 1]),
    torch=lambda p: (_tnn()[1].AdaptiveMaxPool2d((1, 1)), (p[B], p[C], p[H], p[W])),
))
# AdaptiveMaxPool2d((2, 3)) on 5 x 7: windows [0,3) [2,5) -> 6; [0,3) [2,5) [4,7) -> 9;
# 54 elements over 6 outputs: 48 compares per plane.
case(Case(
    "AdaptiveMaxPool2d-nondividing", lambda: nn.AdaptiveMaxPool2d((2, 3)), (B, C, 5, 7),
    params=0, exact=48 * B * C, macs=0, out=(B, C, 2, 3),
    points=[{B: 1, C: 2}],
    brute=lambda p: bf.adaptive_pool((p[B], p[C], 5, 7), "max", [2, 3]),
    torch=lambda p: (_tnn()[1].AdaptiveMaxPool2d((2, 3)), (p[B], p[C], 5, 7)),
))

# ============================================================================= pointwise
# Activations: rate * elements, the rate counted literally in tests/bruteforce.ACTIVATIONS
# (relu: 1 compare; relu6: 2 compares; leaky_relu: compare + multiply; sigmoid: exp, add,
# divide; tanh: 1; silu: sigmoid + multiply; gelu: x/sqrt2, erf, +1, *0.5, *x; gelu tanh: 9;
# hardswish: +3, 2 compares, *, /6; hardsigmoid: +3, 2 compares, /6).
_ACTS = [("ReLU", "relu", 1, {}), ("ReLU6", "relu6", 2, {}), ("LeakyReLU", "leaky_relu", 2, {}),
         ("Sigmoid", "sigmoid", 3, {}), ("Tanh", "tanh", 1, {}), ("SiLU", "silu", 4, {}),
         ("GELU", "gelu", 5, {}), ("GELU", "gelu_tanh", 9, {"approximate": "tanh"}),
         ("Hardswish", "hardswish", 5, {}), ("Hardsigmoid", "hardsigmoid", 4, {})]
for _cls, _act, _rate, _kw in _ACTS:
    case(Case(
        f"{_cls}-{_act}", (lambda c=_cls, kw=_kw: getattr(nn, c)(**kw)), (B, C, H, W),
        params=0, exact=_rate * B * C * H * W, macs=0, out=(B, C, H, W),
        points=[{B: 1, C: 2, H: 2, W: 3}],
        brute=(lambda p, a=_act: bf.activation((p[B], p[C], p[H], p[W]), a)),
        torch=(lambda p, c=_cls, kw=_kw: (getattr(_tnn()[1], c)(**kw),
                                          (p[B], p[C], p[H], p[W]))),
    ))

# Softmax(dim=-1) on (B, N, V): B*N rows of V: V - 1 compares, V subtracts, V exps, V - 1
# adds, V divides = 5V - 2 per row.
case(Case(
    "Softmax", lambda: nn.Softmax(dim=-1), (B, N, V),
    params=0, exact=B * N * (5 * V - 2), macs=0, out=(B, N, V),
    points=[{B: 2, N: 3, V: 4}, {B: 1, N: 1, V: 1}],
    brute=lambda p: bf.softmax((p[B], p[N], p[V])),
    torch=lambda p: (_tnn()[1].Softmax(dim=-1), (p[B], p[N], p[V])),
))
# Softmax(dim=1) on (B, C, H): rows B*H of C.
case(Case(
    "Softmax-dim1", lambda: nn.Softmax(dim=1), (B, C, H),
    params=0, exact=B * H * (5 * C - 2), macs=0, out=(B, C, H),
    points=[{B: 2, C: 3, H: 2}],
    brute=lambda p: bf.softmax((p[B], p[C], p[H]), dim=1),
    torch=lambda p: (_tnn()[1].Softmax(dim=1), (p[B], p[C], p[H])),
))


# GLU(dim=-1) on (B, N, 2*dim): halves a, b of the last dim; a * sigmoid(b) per output:
# sigmoid = exp(-b), add 1, divide (3), then the multiply: 4 per output, B*N*dim outputs.
case(Case(
    "GLU", lambda: nn.GLU(), (B, N, 2 * dim),
    params=0, exact=4 * B * N * dim, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 4}, {B: 1, N: 1, dim: 1}],
    brute=lambda p: bf.glu((p[B], p[N], 2 * p[dim])),
    torch=lambda p: (_tnn()[1].GLU(), (p[B], p[N], 2 * p[dim])),
    kinds={"activation": 4 * B * N * dim},
))
# GLU(dim=1) on (B, C, H) with C even: (B, C/2, H); C/2*B*H outputs, 4 each; valid only
# for even C (a validity condition).
case(Case(
    "GLU-dim1", lambda: nn.GLU(dim=1), (B, C, H),
    params=0, exact=2 * B * C * H, macs=0, out=(B, C / 2, H),
    points=[{B: 2, C: 6, H: 3}],
    brute=lambda p: bf.glu((p[B], p[C], p[H]), dim=1),
    torch=lambda p: (_tnn()[1].GLU(dim=1), (p[B], p[C], p[H])),
))
# PixelShuffle(2) on (B, 4C, H, W) -> (B, C, 2H, 2W); PixelUnshuffle(2) back: a
# permutation of the values, no arithmetic.
case(Case(
    "PixelShuffle", lambda: nn.PixelShuffle(2), (B, 4 * C, H, W),
    params=0, exact=0, macs=0, out=(B, C, 2 * H, 2 * W),
    points=[{B: 1, C: 2, H: 3, W: 2}],
    brute=lambda p: bf.pixel_shuffle((p[B], 4 * p[C], p[H], p[W]), 2),
    torch=lambda p: (_tnn()[1].PixelShuffle(2), (p[B], 4 * p[C], p[H], p[W])),
))
case(Case(
    "PixelUnshuffle", lambda: nn.PixelUnshuffle(3), (B, C, 3 * H, 3 * W),
    params=0, exact=0, macs=0, out=(B, 9 * C, H, W),
    points=[{B: 2, C: 1, H: 2, W: 1}],
    brute=lambda p: bf.pixel_shuffle((p[B], p[C], 3 * p[H], 3 * p[W]), 3, inverse=True),
    torch=lambda p: (_tnn()[1].PixelUnshuffle(3), (p[B], p[C], 3 * p[H], 3 * p[W])),
))

# ChannelShuffle(g) on (B, C, H, W): the channels viewed as (g, C/g), transposed, and
# flattened back: a permutation of the channels, no arithmetic, no parameters; valid
# when g divides C (a validity condition for a symbolic C).
case(Case(
    "ChannelShuffle", lambda: nn.ChannelShuffle(3), (B, C, H, W),
    params=0, exact=0, macs=0, out=(B, C, H, W),
    points=[{B: 2, C: 6, H: 3, W: 5}, {B: 1, C: 12, H: 1, W: 2}],
    brute=lambda p: bf.channel_shuffle((p[B], p[C], p[H], p[W]), 3),
    torch=lambda p: (_tnn()[1].ChannelShuffle(3), (p[B], p[C], p[H], p[W])),
))


# Upsample(scale_factor=2, mode="bilinear") on (B, C, H, W): 2H x 2W outputs, each a
# weighted sum of 4 neighbours: 4 multiplies + 3 adds = 7.
case(Case(
    "Upsample-bilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (B, C, H, W),
    params=0, exact=7 * B * C * 4 * H * W, macs=0, out=(B, C, 2 * H, 2 * W),
    points=[{B: 1, C: 2, H: 3, W: 4}],
    brute=lambda p: bf.upsample((p[B], p[C], p[H], p[W]), "bilinear", scale=2),
    torch=lambda p: (_tnn()[1].Upsample(scale_factor=2, mode="bilinear"),
                     (p[B], p[C], p[H], p[W])),
))
# Upsample(scale_factor=1.5) (nearest) on (B, C, T): floor(3T/2) outputs, index lookups: 0.
case(Case(
    "Upsample-nearest-1.5", lambda: nn.Upsample(scale_factor=1.5), (B, C, T),
    params=0, exact=0, macs=0, out=(B, C, floor(3 * T / 2)),
    points=[{B: 2, C: 1, T: 5}, {B: 1, C: 1, T: 1}],
    brute=lambda p: bf.upsample((p[B], p[C], p[T]), "nearest", scale=1.5),
    torch=lambda p: (_tnn()[1].Upsample(scale_factor=1.5), (p[B], p[C], p[T])),
))
# Upsample(size=(5, 7), mode="bicubic") on (B, C, 3, 3): 35 outputs per plane, each a
# weighted sum of 16 neighbours: 16 multiplies + 15 adds = 31.
case(Case(
    "Upsample-bicubic-size", lambda: nn.Upsample(size=(5, 7), mode="bicubic"), (B, C, 3, 3),
    params=0, exact=31 * 35 * B * C, macs=0, out=(B, C, 5, 7),
    points=[{B: 1, C: 2}],
    brute=lambda p: bf.upsample((p[B], p[C], 3, 3), "bicubic", size=(5, 7)),
    torch=lambda p: (_tnn()[1].Upsample(size=(5, 7), mode="bicubic"), (p[B], p[C], 3, 3)),
))


def _free(shape: tuple[int, ...]) -> tuple[dict[str, int], tuple[int, ...], int]:
    return {}, shape, 0


# Dropout (inference) and Identity: no arithmetic, shape kept.
for _cls in ("Dropout", "Identity"):
    case(Case(
        _cls, (lambda c=_cls: getattr(nn, c)()), (B, C, H, W),
        params=0, exact=0, macs=0, out=(B, C, H, W),
        points=[{B: 1, C: 2, H: 3, W: 4}],
        brute=lambda p: _free((p[B], p[C], p[H], p[W])),
        torch=(lambda p, c=_cls: (getattr(_tnn()[1], c)(), (p[B], p[C], p[H], p[W]))),
    ))
# Flatten(): (B, C, H, W) -> (B, C*H*W), free.
case(Case(
    "Flatten", lambda: nn.Flatten(), (B, C, H, W),
    params=0, exact=0, macs=0, out=(B, C * H * W),
    points=[{B: 2, C: 2, H: 3, W: 4}],
    brute=lambda p: ({}, (p[B], p[C] * p[H] * p[W]), 0),
    torch=lambda p: (_tnn()[1].Flatten(), (p[B], p[C], p[H], p[W])),
))
# Embedding(V, dim) on (B, N): a lookup, V*dim parameters, output (B, N, dim).
case(Case(
    "Embedding", lambda: nn.Embedding(V, dim), (B, N),
    params=V * dim, exact=0, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, V: 10, dim: 4}],
    brute=lambda p: ({}, (p[B], p[N], p[dim]), p[V] * p[dim]),
    torch=lambda p: (_tnn()[1].Embedding(p[V], p[dim]), (p[B], p[N])),
))

# ============================================================================= attention
# MultiheadAttention(dim, heads) on (B, N, dim), head width dim/heads:
# qkv  Linear(dim, 3 dim): 2 dim * 3 dim per token (bias on)           = 6 B N dim^2
# QK^T B heads N N dot products of length dim/heads: (2 dim/heads - 1) each
# scale one multiply per score                                         = B heads N^2
# softmax B heads N rows of N: 5N - 2 each
# AV   B heads N (dim/heads) dot products of length N: 2N - 1 each      = B N dim (2N - 1)
# out  Linear(dim, dim)                                                = 2 B N dim^2
# MACs: 3 B N dim^2 + B N^2 dim + B N^2 dim + B N dim^2 = 4 B N dim^2 + 2 B N^2 dim.
_mha_exact = (6 * B * N * dim**2 + B * heads * N**2 * (2 * dim / heads - 1)
              + B * heads * N**2 + B * heads * N * (5 * N - 2) + B * N * dim * (2 * N - 1)
              + 2 * B * N * dim**2)


def _torch_mha(p: dict[sp.Symbol, int], causal: bool = False) -> tuple[Any, tuple[int, ...]]:
    torch, tnn = _tnn()

    class M(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.mha = tnn.MultiheadAttention(p[dim], p[heads], batch_first=True)

        def forward(self, x: Any) -> Any:
            mask = (torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), 1)
                    if causal else None)
            return self.mha(x, x, x, attn_mask=mask, need_weights=True)[0]

    return M(), (p[B], p[N], p[dim])


case(Case(
    "MultiheadAttention", lambda: nn.MultiheadAttention(dim, heads), (B, N, dim),
    params=4 * dim**2 + 4 * dim,
    exact=_mha_exact,
    macs=4 * B * N * dim**2 + 2 * B * N**2 * dim,
    out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 4, heads: 2}, {B: 1, N: 1, dim: 3, heads: 1}],
    brute=lambda p: bf.multihead_attention((p[B], p[N], p[dim]), p[dim], p[heads]),
    torch=_torch_mha,
))
# Sequence-first (batch_first=False) on (N, B, dim), no biases: qkv 3 dim^2 and out dim^2
# weights; each projection output is a dot product without a bias add: 2 dim - 1.
case(Case(
    "MultiheadAttention-seqfirst-nobias",
    lambda: nn.MultiheadAttention(dim, heads, bias=False, batch_first=False), (N, B, dim),
    params=4 * dim**2,
    exact=_mha_exact - 4 * B * N * dim,
    macs=4 * B * N * dim**2 + 2 * B * N**2 * dim,
    out=(N, B, dim),
    points=[{B: 2, N: 3, dim: 4, heads: 2}],
    brute=lambda p: (bf.multihead_attention((p[B], p[N], p[dim]), p[dim], p[heads],
                                            bias=False)[0], (p[N], p[B], p[dim]),
                     4 * p[dim] ** 2),
    torch=lambda p: (_SelfAttention(_tnn()[1].MultiheadAttention(p[dim], p[heads], bias=False)),
                     (p[N], p[B], p[dim])),
))


def _SelfAttention(mha: Any) -> Any:  # noqa: N802 - a module factory
    _, tnn = _tnn()

    class SelfAttention(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: Any) -> Any:
            return self.mha(x, x, x)[0]

    return SelfAttention()


# Causal, dense (default): the mask is a select; every score is computed (as torch does).
case(Case(
    "MultiheadAttention-causal-dense", lambda: nn.MultiheadAttention(dim, heads, causal=True),
    (B, N, dim), params=4 * dim**2 + 4 * dim, exact=_mha_exact,
    macs=4 * B * N * dim**2 + 2 * B * N**2 * dim, out=(B, N, dim),
    points=[{B: 1, N: 4, dim: 4, heads: 2}],
    brute=lambda p: bf.multihead_attention((p[B], p[N], p[dim]), p[dim], p[heads], causal=True),
    torch=lambda p: _torch_mha(p, causal=True),
))
# Causal with skip_masked: only the N(N+1)/2 pairs j <= i. QK^T and AV MACs each
# B heads (N(N+1)/2) (dim/heads) = B dim N(N+1)/2; no torch equivalent (torch counts dense).
_pairs = N * (N + 1) / 2
case(Case(
    "MultiheadAttention-causal-skip",
    lambda: nn.MultiheadAttention(dim, heads, causal=True, skip_masked=True), (B, N, dim),
    params=4 * dim**2 + 4 * dim,
    # qkv + out 8 B N dim^2; scores B heads pairs (2 dim/heads - 1); scale B heads pairs;
    # softmax row i has i + 1 keys: sum (5(i+1) - 2) = 5 pairs - 2N per head;
    # AV: row i, dim/heads dot products of length i + 1: 2 pairs - N each
    exact=(8 * B * N * dim**2 + B * heads * _pairs * (2 * dim / heads - 1)
           + B * heads * _pairs + B * heads * (5 * _pairs - 2 * N)
           + B * dim * (2 * _pairs - N)),
    macs=4 * B * N * dim**2 + 2 * B * dim * _pairs,
    out=(B, N, dim),
    points=[{B: 1, N: 5, dim: 4, heads: 2}, {B: 2, N: 1, dim: 2, heads: 2}],
    brute=lambda p: bf.multihead_attention((p[B], p[N], p[dim]), p[dim], p[heads], causal=True,
                                           skip_masked=True),
))


# MultiheadLatentAttention(dim, heads, kv_rank=6, q_rank=5, rope_dim=2, head_dim=4) on
# (B, N, dim), no biases (DeepSeek-V2's attention as transformers runs it), per token:
# q_a Linear(dim, 5): 5 (2 dim - 1); q_a_layernorm RMSNorm(5): 3*5 + 2 + 5 = 22;
# q_b Linear(5, 6 heads): 6 heads (2*5 - 1) = 54 heads; kv_a Linear(dim, 6 + 2): 8 (2 dim - 1);
# kv_a_layernorm RMSNorm(6): 3*6 + 2 + 6 = 26; rotary on heads + 1 vectors of 2: 7 (heads + 1);
# kv_b Linear(6, 8 heads): 8 heads (2*6 - 1) = 88 heads; o_proj Linear(4 heads, dim):
# dim (8 heads - 1). Per (query, key) pair and head: scores 2*6 - 1 = 11, scale 1; softmax
# 5N - 2 per row; A V: 4 dot products of length N per row.
# MACs: B N (5 dim + 30 heads + 8 dim + 48 heads + 4 heads dim) + B heads N^2 (6 + 4).
# Params: 5 dim + 5 + 30 heads + 8 dim + 6 + 48 heads + 4 heads dim.
case(Case(
    "MultiheadLatentAttention",
    lambda: nn.MultiheadLatentAttention(dim, heads, kv_rank=6, q_rank=5, rope_dim=2, head_dim=4),
    (B, N, dim),
    params=13 * dim + 78 * heads + 4 * heads * dim + 11,
    exact=(B * N * (5 * (2 * dim - 1) + 22 + 54 * heads + 8 * (2 * dim - 1) + 26
                    + 7 * (heads + 1) + 88 * heads + dim * (8 * heads - 1))
           + B * heads * N**2 * 12 + B * heads * N * (5 * N - 2) + B * heads * N * 4 * (2 * N - 1)),
    macs=B * N * (13 * dim + 78 * heads + 4 * heads * dim) + 10 * B * heads * N**2,
    out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 5, heads: 2}, {B: 1, N: 1, dim: 3, heads: 1}],
    brute=lambda p: bf.latent_attention((p[B], p[N], p[dim]), p[heads], 6, 5, 2, 4),
))


def _torch_gqa(p: dict[sp.Symbol, int], d: int, h: int, kv: int
               ) -> tuple[Any, tuple[int, ...]]:
    torch, tnn = _tnn()
    hd = d // h

    class GQA(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k = tnn.Linear(d, d), tnn.Linear(d, kv * hd)
            self.v, self.o = tnn.Linear(d, kv * hd), tnn.Linear(d, d)

        def forward(self, x: Any) -> Any:
            b, n, _ = x.shape
            q = self.q(x).view(b, n, h, hd).transpose(1, 2)
            k = self.k(x).view(b, n, kv, hd).transpose(1, 2).repeat_interleave(h // kv, 1)
            v = self.v(x).view(b, n, kv, hd).transpose(1, 2).repeat_interleave(h // kv, 1)
            a = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, -1)
            return self.o((a @ v).transpose(1, 2).reshape(b, n, d))

    return GQA(), (p[B], p[N], d)


# Grouped-query attention MultiheadAttention(8, 4, kv_heads=2) on (B, N, 8), head width 2:
# qkv Linear(8, 8 + 2*2*2 = 16): params 8*16 + 16 = 144; out 8*8 + 8 = 72.
# Products still per query head: MACs 16 B N * 8 ... = 128 B N (qkv) + 2 * B*4*N*N*2 (QK^T, AV)
# + 64 B N (out).
case(Case(
    "MultiheadAttention-gqa", lambda: nn.MultiheadAttention(8, 4, kv_heads=2), (B, N, 8),
    params=144 + 72,
    # qkv 2*8*16 B N; scores 4 B N^2 (2*2 - 1); scale 4 B N^2; softmax 4 B N (5N - 2);
    # AV 4*2 B N (2N - 1); out 2*8*8 B N
    exact=(256 * B * N + 12 * B * N**2 + 4 * B * N**2 + 4 * B * N * (5 * N - 2)
           + 8 * B * N * (2 * N - 1) + 128 * B * N),
    macs=128 * B * N + 16 * B * N**2 + 64 * B * N,
    out=(B, N, 8),
    points=[{B: 2, N: 3}],
    brute=lambda p: bf.multihead_attention((p[B], p[N], 8), 8, 4, kv_heads=2),
    torch=lambda p: _torch_gqa(p, 8, 4, 2),
))


def _torch_block(p: dict[sp.Symbol, int], ratio: int = 4) -> tuple[Any, tuple[int, ...]]:
    torch, tnn = _tnn()
    d = p[dim]

    class Block(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.n1, self.n2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
            self.mha = tnn.MultiheadAttention(d, p[heads], batch_first=True)
            self.mlp = tnn.Sequential(tnn.Linear(d, ratio * d), tnn.GELU(),
                                      tnn.Linear(ratio * d, d))

        def forward(self, x: Any) -> Any:
            y = self.n1(x)
            x = x + self.mha(y, y, y, need_weights=True)[0]
            return x + self.mlp(self.n2(x))

    return Block(), (p[B], p[N], d)


# TransformerBlock(dim, heads, mlp_ratio=4), pre-norm:
# LN: B N (5 dim + 2) + 2 B N dim; MHA: as above; add: B N dim;
# LN again; fc1 Linear(dim, 4 dim): 8 B N dim^2; GELU 5 * 4 B N dim; fc2: 8 B N dim^2; add.
# Params: 2 LN (4 dim) + MHA (4 dim^2 + 4 dim) + fc1 (4 dim^2 + 4 dim) + fc2 (4 dim^2 + dim).
_ln = B * N * (5 * dim + 2) + 2 * B * N * dim
case(Case(
    "TransformerBlock", lambda: nn.TransformerBlock(dim, heads, mlp_ratio=4), (B, N, dim),
    params=4 * dim + 4 * dim**2 + 4 * dim + 4 * dim**2 + 4 * dim + 4 * dim**2 + dim,
    exact=(2 * _ln + _mha_exact + 2 * B * N * dim + 16 * B * N * dim**2
           + 20 * B * N * dim),
    macs=4 * B * N * dim**2 + 2 * B * N**2 * dim + 8 * B * N * dim**2,
    out=(B, N, dim),
    points=[{B: 1, N: 3, dim: 4, heads: 2}],
    brute=lambda p: bf.transformer_block((p[B], p[N], p[dim]), p[dim], p[heads]),
    torch=_torch_block,
))


# A Llama-style block: TransformerBlock(8, 4, mlp_ratio=2, kv_heads=2, causal=True,
# norm="rmsnorm", activation="silu") on (B, N, 8), head width 2:
# 2 RMSNorms: 2 B N (3*8 + 2) stats + 2 * 8 B N weight; attention as the GQA case above (qkv
# Linear(8, 16)), add 8 B N; fc1 Linear(8, 16): 2*8*16 B N; SiLU 4*16 B N;
# fc2 Linear(16, 8): 2*16*8 B N; add 8 B N.
# Params: 2*8 (norms) + 144 + 72 (attention) + (8*16 + 16) + (16*8 + 8).
case(Case(
    "TransformerBlock-llama-style",
    lambda: nn.TransformerBlock(8, 4, mlp_ratio=2, kv_heads=2, causal=True, norm="rmsnorm",
                                activation="silu"), (B, N, 8),
    params=16 + 144 + 72 + 144 + 136,
    exact=(2 * B * N * (3 * 8 + 2) + 16 * B * N
           + 256 * B * N + 12 * B * N**2 + 4 * B * N**2 + 4 * B * N * (5 * N - 2)
           + 8 * B * N * (2 * N - 1) + 128 * B * N
           + 8 * B * N + 256 * B * N + 64 * B * N + 256 * B * N + 8 * B * N),
    macs=128 * B * N + 16 * B * N**2 + 64 * B * N + 128 * B * N + 128 * B * N,
    out=(B, N, 8),
    points=[{B: 1, N: 3}, {B: 2, N: 1}],
    brute=lambda p: bf.transformer_block((p[B], p[N], 8), 8, 4, 2, kv_heads=2, causal=True,
                                         norm="rmsnorm", act="silu"),
))

# Conv2d(C_in, C_out, K, padding="valid", padding_mode="circular"): no padding, the
# padding mode does not change the count: Ho = H - K + 1.
case(Case(
    "Conv2d-valid", lambda: nn.Conv2d(C_in, C_out, K, padding="valid", padding_mode="circular"),
    (B, C_in, H, W),
    params=C_out * (C_in * K**2 + 1),
    exact=2 * C_in * K**2 * B * C_out * (H - K + 1) * (W - K + 1),
    macs=C_in * K**2 * B * C_out * (H - K + 1) * (W - K + 1),
    out=(B, C_out, H - K + 1, W - K + 1),
    points=[{B: 1, C_in: 2, C_out: 2, K: 2, H: 3, W: 4}],
    brute=lambda p: bf.conv((p[B], p[C_in], p[H], p[W]), p[C_out], [p[K]] * 2, [1, 1], [0, 0],
                            [1, 1]),
    torch=lambda p: (_tnn()[1].Conv2d(p[C_in], p[C_out], p[K], padding="valid",
                                      padding_mode="circular"), (p[B], p[C_in], p[H], p[W])),
))

# BatchNorm1d(C) on (B, C) and LayerNorm(dim, elementwise_affine=False): BN 2 per element;
# LN statistics only, 5 dim + 2 per row, no parameters.
case(Case(
    "BatchNorm1d-2d-input", lambda: nn.BatchNorm1d(C), (B, C),
    params=2 * C, exact=2 * B * C, macs=0, out=(B, C),
    points=[{B: 3, C: 2}],
    brute=lambda p: bf.batch_norm((p[B], p[C])),
    torch=lambda p: (_tnn()[1].BatchNorm1d(p[C]).eval(), (p[B], p[C])),
))
case(Case(
    "LayerNorm-no-affine", lambda: nn.LayerNorm(dim, elementwise_affine=False), (B, N, dim),
    params=0, exact=B * N * (5 * dim + 2), macs=0, out=(B, N, dim),
    points=[{B: 1, N: 2, dim: 3}],
    brute=lambda p: bf.layer_norm((p[B], p[N], p[dim]), (p[dim],), affine=False),
    torch=lambda p: (_tnn()[1].LayerNorm(p[dim], elementwise_affine=False),
                     (p[B], p[N], p[dim])),
))
# Flatten(1, 2) on (B, C, H, W): (B, C*H, W).
case(Case(
    "Flatten-partial", lambda: nn.Flatten(1, 2), (B, C, H, W),
    params=0, exact=0, macs=0, out=(B, C * H, W),
    points=[{B: 2, C: 2, H: 3, W: 4}],
    brute=lambda p: ({}, (p[B], p[C] * p[H], p[W]), 0),
    torch=lambda p: (_tnn()[1].Flatten(1, 2), (p[B], p[C], p[H], p[W])),
))


def _merge(*parts: tuple[dict[str, int], tuple[int, ...], int]
           ) -> tuple[dict[str, int], tuple[int, ...], int]:
    t = bf.Tally()
    for w, _, _ in parts:
        t.merge(w)
    return t.work(), parts[-1][1], sum(p for _, _, p in parts)


# MLP(dim, 4 dim) on (B, N, dim): fc1 2 dim * 4 dim per token (bias on), GELU 5 per hidden
# element, fc2 2 * 4 dim * dim. Params (dim + 1) 4 dim + (4 dim + 1) dim.
case(Case(
    "MLP", lambda: nn.MLP(dim, 4 * dim), (B, N, dim),
    params=(dim + 1) * 4 * dim + (4 * dim + 1) * dim,
    exact=8 * B * N * dim**2 + 20 * B * N * dim + 8 * B * N * dim**2,
    macs=8 * B * N * dim**2, out=(B, N, dim),
    points=[{B: 2, N: 2, dim: 3}],
    brute=lambda p: _merge(bf.linear((p[B], p[N], p[dim]), 4 * p[dim]),
                           bf.activation((p[B], p[N], 4 * p[dim]), "gelu"),
                           bf.linear((p[B], p[N], 4 * p[dim]), p[dim])),
    torch=lambda p: (_tnn()[1].Sequential(_tnn()[1].Linear(p[dim], 4 * p[dim]), _tnn()[1].GELU(),
                                          _tnn()[1].Linear(4 * p[dim], p[dim])),
                     (p[B], p[N], p[dim])),
))

# Sequential(Conv2d(3, 8, 3, stride=2, padding=1), BatchNorm2d(8), ReLU()) on (B, 3, H, W):
# conv: Ho = floor((H - 1)/2) + 1, 2*27 per output * 8 channels; BN 2/elem; ReLU 1/elem.
case(Case(
    "Sequential", lambda: nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                        nn.BatchNorm2d(8), nn.ReLU()), (B, 3, H, W),
    params=8 * (27 + 1) + 16,
    exact=(54 + 2 + 1) * 8 * B * _ho * _wo,
    macs=27 * 8 * B * _ho * _wo, out=(B, 8, _ho, _wo),
    points=[{B: 1, H: 6, W: 5}],
    brute=lambda p: _merge(
        bf.conv((p[B], 3, p[H], p[W]), 8, [3, 3], [2, 2], [1, 1], [1, 1]),
        bf.batch_norm((p[B], 8, (p[H] + 1) // 2, (p[W] + 1) // 2)),
        bf.activation((p[B], 8, (p[H] + 1) // 2, (p[W] + 1) // 2), "relu")),
    torch=lambda p: (_tnn()[1].Sequential(_tnn()[1].Conv2d(3, 8, 3, stride=2, padding=1),
                                          _tnn()[1].BatchNorm2d(8).eval(), _tnn()[1].ReLU()),
                     (p[B], 3, p[H], p[W])),
))


def _torch_residual(p: dict[sp.Symbol, int]) -> tuple[Any, tuple[int, ...]]:
    _, tnn = _tnn()

    class Res(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = tnn.Sequential(tnn.Conv2d(p[C], p[C], 3, padding=1), tnn.ReLU())

        def forward(self, x: Any) -> Any:
            return self.body(x) + x

    return Res(), (p[B], p[C], p[H], p[W])


# Residual(Sequential(Conv2d(C, C, 3, padding=1), ReLU())): conv 2*9C per output, ReLU 1,
# the add 1 per element.
case(Case(
    "Residual", lambda: nn.Residual(nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU())),
    (B, C, H, W),
    params=C * (9 * C + 1),
    exact=18 * C * B * C * H * W + B * C * H * W + B * C * H * W,
    macs=9 * C * B * C * H * W, out=(B, C, H, W),
    points=[{B: 1, C: 2, H: 3, W: 4}],
    brute=lambda p: _merge(
        bf.conv((p[B], p[C], p[H], p[W]), p[C], [3, 3], [1, 1], [1, 1], [1, 1]),
        bf.activation((p[B], p[C], p[H], p[W]), "relu"),
        ({"elementwise": p[B] * p[C] * p[H] * p[W]}, (p[B], p[C], p[H], p[W]), 0)),
    torch=_torch_residual,
))
# Residual with a projection shortcut: body Conv2d(C, 2C, 3, stride 2, padding 1), shortcut
# Conv2d(C, 2C, 1, stride 2): both give floor((H - 1)/2) + 1; add 1 per output element.
case(Case(
    "Residual-shortcut",
    lambda: nn.Residual(nn.Conv2d(C, 2 * C, 3, stride=2, padding=1),
                        nn.Conv2d(C, 2 * C, 1, stride=2, bias=False)), (B, C, H, W),
    params=2 * C * (9 * C + 1) + 2 * C * C,
    exact=(18 * C + (2 * C - 1) + 1) * B * 2 * C * _ho * _wo,
    macs=(9 * C + C) * B * 2 * C * _ho * _wo, out=(B, 2 * C, _ho, _wo),
    points=[{B: 1, C: 2, H: 5, W: 4}],
    brute=lambda p: _merge(
        bf.conv((p[B], p[C], p[H], p[W]), 2 * p[C], [3, 3], [2, 2], [1, 1], [1, 1]),
        bf.conv((p[B], p[C], p[H], p[W]), 2 * p[C], [1, 1], [2, 2], [0, 0], [1, 1],
                bias=False),
        ({"elementwise": p[B] * 2 * p[C] * ((p[H] + 1) // 2) * ((p[W] + 1) // 2)},
         (p[B], 2 * p[C], (p[H] + 1) // 2, (p[W] + 1) // 2), 0)),
))


def _repeat_brute(p: dict[sp.Symbol, int]) -> tuple[dict[str, int], tuple[int, ...], int]:
    w, out, params = bf.linear((p[B], p[dim]), p[dim])
    return {k: v * p[L] for k, v in w.items()}, out, params * p[L]


# Repeat(Linear(dim, dim), L): L times one layer: params L (dim^2 + dim), exact 2 L B dim^2.
case(Case(
    "Repeat", lambda: nn.Repeat(nn.Linear(dim, dim), L), (B, dim),
    params=L * (dim**2 + dim), exact=2 * L * B * dim**2, macs=L * B * dim**2, out=(B, dim),
    points=[{B: 2, dim: 3, L: 4}],
    brute=_repeat_brute,
    torch=lambda p: (_tnn()[1].Sequential(*[_tnn()[1].Linear(p[dim], p[dim])
                                            for _ in range(p[L])]), (p[B], p[dim])),
))


# ================================================================================ vision
def _tmod(fn: Callable[..., Any], **params: Any) -> Any:
    """A torch module running ``fn(self, x)``, with the given parameters."""
    _, tnn = _tnn()

    class Fn(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            for k, v in params.items():
                setattr(self, k, tnn.Parameter(v))

        def forward(self, x: Any) -> Any:
            return fn(self, x)

    return Fn()


def _swin_mirror() -> Any:
    from example_models import load_example

    return load_example("swin_mirror")


_NCHW_POINTS = [{B: 2, C: 2, H: 3, W: 4}]
# Permute(0, 2, 3, 1), Transpose(1, 3), Reshape(B, -1, W), Select(1, 0): data movement, free.
for _id, _layer, _out, _fn in (
        ("Permute", lambda: nn.Permute(0, 2, 3, 1), (B, H, W, C),
         lambda s, x: x.permute(0, 2, 3, 1)),
        ("Transpose", lambda: nn.Transpose(1, 3), (B, W, H, C), lambda s, x: x.transpose(1, 3)),
        ("Reshape", lambda: nn.Reshape(B, -1, W), (B, C * H, W),
         lambda s, x: x.reshape(x.shape[0], -1, x.shape[3])),
        ("Select", lambda: nn.Select(1, 0), (B, H, W), lambda s, x: x.select(1, 0))):
    case(Case(
        _id, _layer, (B, C, H, W), params=0, exact=0, macs=0, out=_out, points=_NCHW_POINTS,
        brute=lambda p, o=_out: ({}, tuple(int(sp.sympify(s).subs(p)) for s in o), 0),
        torch=lambda p, f=_fn: (_tmod(f), (p[B], p[C], p[H], p[W])),
    ))
# PatchEmbedding(C, dim, 2) on (B, C, H, W): conv k=2 s=2 -> (B, dim, floor(H/2), floor(W/2)),
# then flatten + transpose (free): N = floor(H/2) floor(W/2) tokens; each output a length
# 4C dot product and a bias add: 2 * 4C per output; params dim (4C + 1).
_np = floor(H / 2) * floor(W / 2)
case(Case(
    "PatchEmbedding", lambda: nn.PatchEmbedding(C, dim, 2), (B, C, H, W),
    params=dim * (4 * C + 1), exact=8 * C * B * dim * _np, macs=4 * C * B * dim * _np,
    out=(B, _np, dim), points=[{B: 2, C: 3, H: 5, W: 4, dim: 4}],
    brute=lambda p: (lambda w: (w[0], (p[B], (p[H] // 2) * (p[W] // 2), p[dim]), w[2]))(
        bf.conv((p[B], p[C], p[H], p[W]), p[dim], [2, 2], [2, 2], [0, 0], [1, 1])),
    torch=lambda p: (_tnn()[1].Sequential(
        _tnn()[1].Conv2d(p[C], p[dim], 2, 2), _tnn()[1].Flatten(2),
        _tmod(lambda s, x: x.transpose(1, 2))), (p[B], p[C], p[H], p[W])),
))
# ClassToken(dim) on (B, N, dim): cat a learned token: (B, N + 1, dim), dim params, free.
case(Case(
    "ClassToken", lambda: nn.ClassToken(dim), (B, N, dim), params=dim, exact=0, macs=0,
    out=(B, N + 1, dim), points=[{B: 2, N: 3, dim: 4}],
    brute=lambda p: ({}, (p[B], p[N] + 1, p[dim]), p[dim]),
    torch=lambda p: (_tmod(lambda s, x: _tnn()[0].cat([s.cls.expand(x.shape[0], -1, -1), x], 1),
                           cls=_tnn()[0].zeros(1, 1, p[dim])), (p[B], p[N], p[dim])),
))
# PositionEmbedding(N, dim) on (B, N, dim): x + table: N dim params, B N dim adds.
case(Case(
    "PositionEmbedding", lambda: nn.PositionEmbedding(N, dim), (B, N, dim), params=N * dim,
    exact=B * N * dim, macs=0, out=(B, N, dim), points=[{B: 2, N: 3, dim: 4}],
    brute=lambda p: bf.position_embedding((p[B], p[N], p[dim])),
    torch=lambda p: (_tmod(lambda s, x: x + s.pos, pos=_tnn()[0].zeros(1, p[N], p[dim])),
                     (p[B], p[N], p[dim])),
))
# WindowAttention(dim, heads, window=2, shift=1) on (B, H, W, dim): padded Hp = 2 ceil(H/2),
# Wp = 2 ceil(W/2); T = B Hp Wp tokens, each in a window of n = 4 tokens:
# qkv 2 dim * 3 dim per token (bias); q scale dim per token; scores heads n dot products of
# length dim/heads per token: n dim mul + n (dim - heads) add; bias heads n adds per token;
# softmax heads rows of n per token: heads (5n - 2); context dim outputs of length n per
# token: n dim mul + (n - 1) dim add; proj 2 dim^2 per token; the shift mask (only when a
# window does not cover the padded map, Hp > 2 or Wp > 2): heads n adds per token plus 3 n
# per (batch-free) position Hp Wp. Params 4 dim^2 + 4 dim + (2*2 - 1)^2 heads.
_hp, _wp = 2 * ceiling(H / 2), 2 * ceiling(W / 2)
_tw = B * _hp * _wp
_wa_exact = (_tw * (6 * dim**2 + dim + 4 * dim + 4 * (dim - heads) + 4 * heads
                    + heads * 18 + 4 * dim + 3 * dim + 2 * dim**2)
             + sp.Piecewise((1, (_hp > 2) | (_wp > 2)), (0, True))
             * (_tw * heads * 4 + 12 * _hp * _wp))
case(Case(
    "WindowAttention", lambda: nn.WindowAttention(dim, heads, 2, shift=1), (B, H, W, dim),
    params=4 * dim**2 + 4 * dim + 9 * heads, exact=_wa_exact,
    macs=_tw * (4 * dim**2 + 8 * dim), out=(B, H, W, dim),
    points=[{B: 1, H: 5, W: 4, dim: 4, heads: 2}, {B: 2, H: 2, W: 1, dim: 2, heads: 1}],
    brute=lambda p: bf.window_attention((p[B], p[H], p[W], p[dim]), p[dim], p[heads], 2, 1),
    torch=lambda p: (_swin_mirror().ShiftedWindowAttention(p[dim], 2, 1, p[heads]),
                     (p[B], p[H], p[W], p[dim])),
))
# PatchMerging(dim) on (B, H, W, dim): pad to even, cat 2x2 (free) -> (B, h, w, 4 dim) with
# h = ceil(H/2), w = ceil(W/2); LayerNorm(4 dim): (5 * 4 dim + 2) stats + 2 * 4 dim affine
# per row; Linear(4 dim, 2 dim, bias=False): 2 dim outputs of length 4 dim: (8 dim - 1) 2 dim.
_h2, _w2 = ceiling(H / 2), ceiling(W / 2)
case(Case(
    "PatchMerging", lambda: nn.PatchMerging(dim), (B, H, W, dim),
    params=8 * dim + 8 * dim**2,
    exact=B * _h2 * _w2 * (20 * dim + 2 + 8 * dim + 2 * dim * (8 * dim - 1)),
    macs=8 * dim**2 * B * _h2 * _w2, out=(B, _h2, _w2, 2 * dim),
    points=[{B: 2, H: 3, W: 4, dim: 2}],
    brute=lambda p: bf.patch_merging((p[B], p[H], p[W], p[dim]), p[dim]),
    torch=lambda p: (_swin_mirror().PatchMerging(p[dim]), (p[B], p[H], p[W], p[dim])),
))


# ============================================================================== recurrent
# LSTM(I, h) on (T, B, I): T steps of B rows; per row 4h outputs of x W_ih^T (length I) and
# h W_hh^T (length h), their biases (8h), gate sums 4h + cell 4h elementwise, 3h sigmoids
# (3 each) + 2h tanh. Params 4h (I + h) + 8h. (torch runs the fused aten.mkldnn_rnn_layer,
# which FlopCounterMode does not count: tests/test_recurrent.py checks the trace.)
_hs = symbol("h")
case(Case(
    "LSTM", lambda: nn.LSTM(I, _hs), (T, B, I), params=4 * _hs * (I + _hs) + 8 * _hs,
    exact=T * B * (8 * _hs * I + 8 * _hs * _hs - 8 * _hs + 8 * _hs + 8 * _hs + 11 * _hs),
    macs=4 * T * B * _hs * (I + _hs), out=(T, B, _hs), points=[{T: 3, B: 2, I: 3, _hs: 4}],
    brute=lambda p: bf.recurrent((p[T], p[B], p[I]), "lstm", p[_hs]),
))
# GRU(I, h): per row 3h (I + h) MACs, 6h bias, 7h elementwise (r, z sums, r * hn, + x part,
# n + z (h - n)), 7h activation (2h sigmoids at 3, h tanh). Params 3h (I + h) + 6h.
case(Case(
    "GRU", lambda: nn.GRU(I, _hs), (T, B, I), params=3 * _hs * (I + _hs) + 6 * _hs,
    exact=T * B * (6 * _hs * I + 6 * _hs * _hs - 6 * _hs + 6 * _hs + 7 * _hs + 7 * _hs),
    macs=3 * T * B * _hs * (I + _hs), out=(T, B, _hs), points=[{T: 3, B: 2, I: 3, _hs: 4}],
    brute=lambda p: bf.recurrent((p[T], p[B], p[I]), "gru", p[_hs]),
))
def _hidden_out(cell: Any) -> Any:
    """The cell as a module whose output is h' (LSTMCell returns (h', c'))."""
    _, tnn = _tnn()

    class Hidden(tnn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, x: Any) -> Any:
            out = self.cell(x)
            return out[0] if isinstance(out, tuple) else out

    return Hidden()


# LSTMCell / GRUCell on (B, I): one step of the above (T = 1); torch decomposes them into
# addmm and pointwise ops, counted kind by kind.
for _cls, _g, _ew, _act in (("LSTMCell", 4, 8, 11), ("GRUCell", 3, 7, 7)):
    case(Case(
        _cls, lambda c=_cls: getattr(nn, c)(I, _hs), (B, I),
        params=_g * _hs * (I + _hs) + 2 * _g * _hs,
        exact=B * (2 * _g * _hs * (I + _hs) - 2 * _g * _hs + 2 * _g * _hs + (_ew + _act) * _hs),
        macs=_g * B * _hs * (I + _hs), out=(B, _hs), points=[{B: 2, I: 3, _hs: 4}],
        brute=lambda p, c=_cls: (lambda r: (r[0], (p[B], p[_hs]), r[2]))(bf.recurrent(
            (1, p[B], p[I]), "lstm" if c == "LSTMCell" else "gru", p[_hs])),
        torch=lambda p, c=_cls: (_hidden_out(getattr(_tnn()[1], c)(p[I], p[_hs])),
                                 (p[B], p[I])),
    ))


# ============================================================================ LM layers
_F, _ctx = symbol("F"), symbol("N_ctx")


def _torch_gated(p: dict[sp.Symbol, int], act: str) -> tuple[Any, tuple[Any, ...]]:
    _, tnn = _tnn()
    fn = {"silu": tnn.SiLU(), "gelu": tnn.GELU()}[act]

    class Gated(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.g, self.u = tnn.Linear(p[dim], p[_F], False), tnn.Linear(p[dim], p[_F], False)
            self.d = tnn.Linear(p[_F], p[dim], False)

        def forward(self, x: Any) -> Any:
            return self.d(fn(self.g(x)) * self.u(x))

    return Gated(), (p[B], p[N], p[dim])


# GatedMLP(dim, F) on (B, N, dim): gate and up B N F dot products of length dim each
# (2 dim - 1, no bias), SiLU 4 and the gate product 1 per hidden element, down B N dim
# dot products of length F. Params 3 dim F. GeGLU: GELU's 5 instead of SiLU's 4.
for _id, _mk, _act, _rate in (
        ("GatedMLP", lambda: nn.GatedMLP(dim, _F), "silu", 4),
        ("SwiGLU", lambda: nn.SwiGLU(dim, _F), "silu", 4),
        ("GeGLU", lambda: nn.GeGLU(dim, _F), "gelu", 5)):
    case(Case(
        _id, _mk, (B, N, dim), params=3 * dim * _F,
        exact=(2 * B * N * _F * (2 * dim - 1) + (_rate + 1) * B * N * _F
               + B * N * dim * (2 * _F - 1)),
        macs=3 * B * N * dim * _F, out=(B, N, dim),
        points=[{B: 2, N: 3, dim: 4, _F: 5}],
        brute=lambda p, a=_act: bf.gated_mlp((p[B], p[N], p[dim]), p[_F], a),
        torch=lambda p, a=_act: _torch_gated(p, a),
    ))
# RotaryEmbedding(head_dim) on (B, N, dim): the cos/sin table of N positions, 9/2 per
# position and head_dim (angles head_dim/2, cos and sin 2 head_dim, scaling 2 head_dim).
case(Case(
    "RotaryEmbedding", lambda: nn.RotaryEmbedding(head_dim), (B, N, dim),
    params=0, exact=sp.Rational(9, 2) * N * head_dim, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 5, head_dim: 4}],
    brute=lambda p: (bf.rotary_table(p[N], p[head_dim]), (p[B], p[N], p[dim]), 0),
))
# PositionEmbedding(N_ctx, dim) on (B, N, dim): N_ctx dim parameters, one add per element.
case(Case(
    "PositionEmbedding-context", lambda: nn.PositionEmbedding(_ctx, dim), (B, N, dim),
    params=_ctx * dim, exact=B * N * dim, macs=0, out=(B, N, dim),
    points=[{B: 2, N: 3, dim: 4, _ctx: 5}],
    brute=lambda p: (bf.residual_add((p[B], p[N], p[dim])), (p[B], p[N], p[dim]),
                     p[_ctx] * p[dim]),
))
# TiedLMHead(Embedding(V, dim)) on (B, N, dim): B N V dot products of length dim, no bias;
# no parameters of its own (the embedding's weight).
case(Case(
    "TiedLMHead", lambda: nn.TiedLMHead(nn.Embedding(V, dim)), (B, N, dim),
    params=0, exact=B * N * V * (2 * dim - 1), macs=B * N * V * dim, out=(B, N, V),
    points=[{B: 2, N: 3, dim: 4, V: 5}],
    brute=lambda p: (bf.linear((p[B], p[N], p[dim]), p[V], bias=False)[0],
                     (p[B], p[N], p[V]), 0),
))
# Reshape, Permute, Transpose: data movement, no arithmetic.
for _id, _mk, _out, _pt in (
        ("Reshape-heads", lambda: nn.Reshape(B, N, heads, -1), (B, N, heads, dim / heads),
         {B: 2, N: 3, dim: 4, heads: 2}),
        ("Permute-3d", lambda: nn.Permute(0, 2, 1), (B, dim, N), {B: 2, N: 3, dim: 4}),
        ("Transpose-3d", lambda: nn.Transpose(1, 2), (B, dim, N), {B: 2, N: 3, dim: 4})):
    case(Case(
        _id, _mk, (B, N, dim), params=0, exact=0, macs=0, out=_out, points=[_pt],
        brute=lambda p, o=_out: ({}, tuple(int(sp.sympify(s).subs(p)) for s in o), 0),
    ))

# MoE(dim, F, E, k) on (T, dim): router T E dot products of length dim (no bias); softmax
# T (5E - 2); top-k T k (2E - k - 1)/2 compares; renormalize T (2k - 1); the T k routed
# copies through a SwiGLU expert; combine T dim (2k - 1). Params E dim + 3 E dim F.
_E, _k = symbol("E"), symbol("k")
case(Case(
    "MoE", lambda: nn.MoE(dim, _F, _E, _k), (T, dim),
    params=_E * dim + 3 * _E * dim * _F,
    exact=(T * _E * (2 * dim - 1) + T * (5 * _E - 2) + T * _k * (2 * _E - _k - 1) / 2
           + T * (2 * _k - 1) + 2 * T * _k * _F * (2 * dim - 1) + 5 * T * _k * _F
           + T * _k * dim * (2 * _F - 1) + T * dim * (2 * _k - 1)),
    macs=T * _E * dim + 3 * T * _k * dim * _F, out=(T, dim),
    points=[{T: 3, dim: 4, _F: 5, _E: 4, _k: 2}, {T: 2, dim: 3, _F: 2, _E: 3, _k: 3}],
    brute=lambda p: bf.moe((p[T], p[dim]), p[_F], p[_E], p[_k]),
))


# ================================================================================= tests
def _eq(a: Any, b: Any) -> bool:
    d = sp.sympify(a) - sp.sympify(b)
    return sp.expand(d) == 0 or sp.simplify(d) == 0


def _layer_name(c: Case) -> str:
    return c.id.split("-")[0]


IDS = [c.id for c in CASES]


def test_every_layer_has_a_case() -> None:
    covered = {_layer_name(c) for c in CASES}
    assert set(nn.LAYERS) <= covered, sorted(set(nn.LAYERS) - covered)


def test_case_ids_unique() -> None:
    assert len(IDS) == len(set(IDS))


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_symbolic_hand_derivation(c: Case) -> None:
    cost = c.layer().cost(c.shape)
    assert cost.layer == _layer_name(c)
    assert _eq(cost.params, c.params), cost.params
    assert _eq(cost.macs, c.macs), cost.macs
    if c.exact is not None:
        assert _eq(cost.flops, c.exact), cost.flops
        assert _eq(cost.simplify().flops, c.exact)
    # torch counts 2 per MAC and nothing else; "macs" is the MAC count itself
    assert _eq(cost.with_convention("torch").flops, 2 * c.macs)
    assert _eq(c.layer().cost(c.shape, convention="macs").flops, c.macs)
    if c.out is not None:
        assert len(cost.output_shape) == len(c.out)
        for got, want in zip(cost.output_shape, c.out, strict=True):
            assert _eq(got, want), (cost.output_shape, c.out)
    for kind, want in c.kinds.items():
        assert _eq(cost.work.get(kind, 0), want), kind


def _concrete(c: Case, p: dict[sp.Symbol, int]) -> sf.Cost:
    cost = c.layer().cost(c.shape)
    return cost.subs(p) if p else cost


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_bruteforce(c: Case) -> None:
    for p in c.points:
        cost = _concrete(c, p)
        work, shape, params = c.brute(p)
        got = {k: int(v) for k, v in cost.work.items() if v != 0}
        assert got == work, (p, got, work)
        assert int(cost.flops) == sum(work.values())
        assert int(cost.params) == params, p
        assert tuple(int(s) for s in cost.output_shape) == tuple(shape), p
        # the symbolic expectation at this point agrees too
        if c.exact is not None:
            assert int(sp.sympify(c.exact).subs(p)) == sum(work.values())


@pytest.mark.parametrize("c", [c for c in CASES if c.torch is not None],
                         ids=[c.id for c in CASES if c.torch is not None])
def test_torch_flop_counter(c: Case) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    assert c.torch is not None
    for p in c.points:
        torch.manual_seed(0)
        module, in_shape = c.torch(p)
        x = (torch.randint(0, int(p[V]), in_shape) if c.id == "Embedding"
             else torch.randn(*in_shape))
        with FlopCounterMode(display=False) as counter:
            y = module(x)
        cost = _concrete(c, p).with_convention("torch")
        assert int(cost.flops) == counter.get_total_flops(), p
        assert tuple(int(s) for s in cost.output_shape) == tuple(y.shape), p
        n_params = sum(t.numel() for t in module.parameters())
        assert int(cost.params) == n_params, p


@pytest.mark.parametrize("name", sorted(bf.ACTIVATIONS))
def test_bruteforce_activations_compute_the_real_function(name: str) -> None:
    """The literal activations in bruteforce.py are the functions torch computes."""
    torch = pytest.importorskip("torch")
    fn = {"relu": torch.relu, "relu6": torch.nn.functional.relu6,
          "leaky_relu": torch.nn.functional.leaky_relu, "sigmoid": torch.sigmoid,
          "tanh": torch.tanh, "silu": torch.nn.functional.silu,
          "gelu": torch.nn.functional.gelu,
          "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
          "hardswish": torch.nn.functional.hardswish,
          "hardsigmoid": torch.nn.functional.hardsigmoid}[name]
    for x in (-4.0, -1.5, -0.2, 0.3, 2.0, 7.0):
        value, ops = bf.activation_value(name, x)
        assert value == pytest.approx(float(fn(torch.tensor(x, dtype=torch.float64))), abs=1e-9)
        assert ops == sf.formulas.pointwise.ACTIVATION_RATES[name][0]


@pytest.mark.parametrize("ab", [(-2.0, -3.0), (0.5, 0.0), (1.5, 4.0)], ids=str)
def test_bruteforce_glu_computes_torch_glu(ab: tuple[float, float]) -> None:
    """bruteforce.glu counts the function torch computes: a * sigmoid(b), 4 operations."""
    torch = pytest.importorskip("torch")
    value, ops = bf.glu_value(*ab)
    want = torch.nn.functional.glu(torch.tensor(ab, dtype=torch.float64), dim=0)
    assert value == pytest.approx(float(want), abs=1e-12)
    assert ops == sf.formulas.pointwise.GLU_RATE[0]


@pytest.mark.parametrize("c, g", [(6, 3), (12, 4), (5, 5)])
def test_bruteforce_channel_shuffle_is_torchs_index_map(c: int, g: int) -> None:
    """bruteforce.channel_shuffle's map is where torch moves each channel (distinct
    values), and a symbolic C gets the divisibility as a validity condition."""
    torch = pytest.importorskip("torch")
    x = torch.arange(2 * c * 3, dtype=torch.float64).reshape(2, c, 3)
    y = torch.nn.functional.channel_shuffle(x, g)
    per = c // g
    for i in range(per):
        for j in range(g):
            assert torch.equal(y[:, i * g + j], x[:, j * per + i])
    assert bf.channel_shuffle((2, c, 3), g)[1] == tuple(y.shape)
    assert nn.ChannelShuffle(g).cost((B, C, H)).validity == (sp.Eq(sp.Mod(C, g), 0),)
    with pytest.raises(sf.SymflopsError, match="divisible"):
        nn.ChannelShuffle(4).cost((B, 6, H))


@pytest.mark.parametrize("shape,r", [((1, 8, 2, 3), 2), ((2, 9, 1, 2), 3)], ids=str)
def test_bruteforce_pixel_shuffle_is_torchs_index_map(shape: tuple[int, ...], r: int) -> None:
    """bruteforce.pixel_shuffle moves values where torch does (checked on distinct values)."""
    torch = pytest.importorskip("torch")
    x = torch.arange(math.prod(shape)).reshape(shape)
    y = torch.nn.functional.pixel_shuffle(x, r)
    *_, c, h, w = shape
    for ci, hi, wi in itertools.product(range(c), range(h), range(w)):
        assert int(y[0, ci // (r * r), hi * r + (ci % (r * r)) // r, wi * r + ci % r]) == \
            int(x[0, ci, hi, wi])
    assert torch.equal(torch.nn.functional.pixel_unshuffle(y, r), x)


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_derivation_reproduces_the_counts(c: Case) -> None:
    """Each leaf's general formula, with its bindings substituted, is the leaf's count."""
    for path, leaf in c.layer().cost(c.shape).leaves():
        d = leaf.derivation
        assert d is not None, path
        for kind in set(d.general) | set(leaf.work):
            general = sp.sympify(d.general.get(kind, 0)).xreplace(dict(d.bindings))
            assert _eq(general, leaf.work.get(kind, 0)), (path, kind)
        assert _eq(sp.sympify(d.general_params).xreplace(dict(d.bindings)), leaf.params), path
        for conv in ("exact", "torch", "macs"):
            flops = d.general_flops(get_convention(conv))
            assert _eq(flops.xreplace(dict(d.bindings)), leaf.with_convention(conv).flops)


def _random_configs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Seeded random conv / transposed conv / pooling configurations at small sizes."""
    import random

    rng = random.Random(seed)
    out = []
    while len(out) < n:
        g = rng.choice([1, 1, 2, 3])
        cfg: dict[str, Any] = dict(
            kind=rng.choice(["conv", "convT", "max", "avg"]), g=g,
            cin=g * rng.randint(1, 2), cout=g * rng.randint(1, 2), k=rng.randint(1, 4),
            s=rng.randint(1, 3), d=rng.randint(1, 3), p=rng.randint(0, 2),
            h=rng.randint(1, 9), w=rng.randint(1, 9), ceil=rng.random() < 0.5,
            same=rng.random() < 0.2, op=0)
        cfg["same"] = cfg["same"] and cfg["kind"] == "conv"
        if cfg["same"]:
            cfg["s"] = 1
        if cfg["kind"] in ("max", "avg"):
            cfg["p"] = min(cfg["p"], cfg["k"] // 2)
        if cfg["kind"] == "avg":
            cfg["d"] = 1
        if cfg["kind"] == "convT":
            cfg["op"] = rng.randint(0, max(cfg["s"], cfg["d"]) - 1)
        out.append(cfg)
    return out


def _build(cfg: dict[str, Any], lib: Any) -> Any:
    c = cfg
    if c["kind"] == "conv":
        return lib.Conv2d(c["cin"], c["cout"], c["k"], stride=c["s"],
                          padding="same" if c["same"] else c["p"], dilation=c["d"],
                          groups=c["g"])
    if c["kind"] == "convT":
        return lib.ConvTranspose2d(c["cin"], c["cout"], c["k"], stride=c["s"], padding=c["p"],
                                   output_padding=c["op"], groups=c["g"], dilation=c["d"])
    if c["kind"] == "max":
        return lib.MaxPool2d(c["k"], c["s"], c["p"], c["d"], ceil_mode=c["ceil"])
    return lib.AvgPool2d(c["k"], c["s"], c["p"], ceil_mode=c["ceil"])


def _brute_cfg(cfg: dict[str, Any]) -> tuple[dict[str, int], tuple[int, ...], int]:
    c = cfg
    shape = (2, c["cin"], c["h"], c["w"])
    k2, s2, p2, d2 = [c["k"]] * 2, [c["s"]] * 2, [c["p"]] * 2, [c["d"]] * 2
    if c["kind"] == "conv":
        return bf.conv(shape, c["cout"], k2, s2, "same" if c["same"] else p2, d2, c["g"])
    if c["kind"] == "convT":
        return bf.conv_transpose(shape, c["cout"], k2, s2, p2, [c["op"]] * 2, d2, c["g"])
    return bf.pool(shape, c["kind"], k2, s2, p2, d2, c["ceil"])


_RANDOM = _random_configs(120)


@pytest.mark.parametrize("cfg", _RANDOM, ids=[f"{i}-{c['kind']}" for i, c in enumerate(_RANDOM)])
def test_random_configs_match_torch_and_bruteforce(cfg: dict[str, Any]) -> None:
    """Random strides, paddings, dilations, groups, ceil_mode: the symbolic cost (then subs),
    the concrete cost, brute force (exact) and torch (shape, FlopCounterMode) agree, and an
    input too small raises where torch raises."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, cfg["cin"], cfg["h"], cfg["w"])
    try:
        with FlopCounterMode(display=False) as counter:
            y = _build(cfg, torch.nn)(x)
        torch_shape: tuple[int, ...] | None = tuple(y.shape)
    except RuntimeError:
        torch_shape = None
    layer = _build(cfg, nn)
    if torch_shape is None or min(torch_shape) == 0:
        with pytest.raises(sf.SymflopsError):
            layer.cost((2, cfg["cin"], cfg["h"], cfg["w"]))
        return
    concrete = layer.cost((2, cfg["cin"], cfg["h"], cfg["w"]))
    symbolic = layer.cost((B, cfg["cin"], H, W)).subs(B=2, H=cfg["h"], W=cfg["w"])
    for cost in (concrete, symbolic):
        assert tuple(int(s) for s in cost.output_shape) == torch_shape
        assert int(cost.with_convention("torch").flops) == counter.get_total_flops()
    work, shape, params = _brute_cfg(cfg)
    assert shape == torch_shape
    for cost in (concrete, symbolic):
        assert {k: int(v) for k, v in cost.work.items() if v != 0} == work
        assert int(cost.params) == params


# ============================================================================ trace == sf.nn
# sf.nn layers and the tracer's op handlers call the same family derivation, so tracing the
# equivalent torch layer at a concrete size gives sf.nn's work kind by kind. Left out, with
# the reason: training-mode layers (traced here in eval), and layers torch runs as a
# different decomposition (RMSNorm and global average pooling become pointwise ops and a
# mean: the same total, checked below; MultiheadAttention off its fast path adds the mask
# and splits heads with extra pointwise ops).
_SAME_TOTAL_ONLY = {"RMSNorm", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d"}
_OTHER_DECOMPOSITION = {"BatchNorm2d-training", "MultiheadAttention-seqfirst-nobias",
                        "MultiheadAttention-causal-dense", "Embedding"}
_TRACEABLE = [c for c in CASES if c.torch is not None and c.id not in _OTHER_DECOMPOSITION]


def _traced(module: Any, shape: tuple[int, ...]) -> sf.Cost:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(module, shape)


@pytest.mark.parametrize("c", _TRACEABLE, ids=[c.id for c in _TRACEABLE])
def test_trace_equals_sfnn(c: Case) -> None:
    assert c.torch is not None
    p = c.points[0]
    module, in_shape = c.torch(p)
    traced = _traced(module.eval(), tuple(int(s) for s in in_shape))
    cost = _concrete(c, p)
    got = {k: int(v) for k, v in traced.work.items() if v != 0}
    want = {k: int(v) for k, v in cost.work.items() if v != 0}
    if c.id in _SAME_TOTAL_ONLY:
        assert sum(got.values()) == sum(want.values()), (got, want)
    else:
        assert got == want
    assert int(traced.params) == int(cost.params)


def _fits(cfg: dict[str, Any]) -> bool:
    """The input is large enough for the window (torch refuses the others, as sf.nn does:
    test_random_configs_match_torch_and_bruteforce checks both)."""
    try:
        _build(cfg, nn).cost((2, cfg["cin"], cfg["h"], cfg["w"]))
    except sf.SymflopsError:
        return False
    return True


_RANDOM_POOLS = [c for c in _RANDOM if c["kind"] in ("max", "avg") and _fits(c)][:30]


@pytest.mark.parametrize("cfg", _RANDOM_POOLS,
                         ids=[f"{i}-{c['kind']}{'-ceil' if c['ceil'] else ''}"
                              for i, c in enumerate(_RANDOM_POOLS)])
def test_random_pools_trace_equals_sfnn(cfg: dict[str, Any]) -> None:
    """ceil_mode windows clipped by the padded input count only their elements in a trace
    too (the handler calls pool_derivation as sf.nn does)."""
    torch = pytest.importorskip("torch")
    assert any(c["ceil"] for c in _RANDOM_POOLS)
    shape = (2, cfg["cin"], cfg["h"], cfg["w"])
    traced = _traced(_build(cfg, torch.nn), shape)
    assert {k: int(v) for k, v in traced.work.items() if v != 0} == \
        {k: int(v) for k, v in _build(cfg, nn).cost(shape).work.items() if v != 0}


# ============================================================================ backward rates
# Each gradient op is counted as torch's CPU kernel computes it (torch/_decomp writes the
# same formulas): the literal formulas in bruteforce.ACTIVATION_GRADS / softmax_grad_row
# give torch's gradient values and take the documented number of operations.
@pytest.mark.parametrize("name", sorted(bf.ACTIVATION_GRADS))
def test_bruteforce_activation_grads_are_torchs(name: str) -> None:
    torch = pytest.importorskip("torch")
    fn = {"relu": torch.relu, "relu6": torch.nn.functional.relu6,
          "leaky_relu": torch.nn.functional.leaky_relu, "sigmoid": torch.sigmoid,
          "tanh": torch.tanh, "silu": torch.nn.functional.silu,
          "gelu": torch.nn.functional.gelu,
          "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
          "hardswish": torch.nn.functional.hardswish,
          "hardsigmoid": torch.nn.functional.hardsigmoid,
          "elu": torch.nn.functional.elu}[name]
    for x in (-4.0, -1.5, -0.2, 0.3, 2.0, 7.0):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        fn(t).backward(torch.tensor(1.7, dtype=torch.float64))
        value, ops = bf.activation_grad_value(name, x, 1.7)
        # (torch's hardsigmoid kernel multiplies by a float32 1/6, hence 1e-6)
        assert value == pytest.approx(float(t.grad), abs=1e-6), x
        assert ops == sf.formulas.pointwise.ACTIVATION_GRAD_RATES[name][0]


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_bruteforce_softmax_grad_is_torchs(log: bool) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.3, -1.2, 2.0, 0.5, 0.1], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1.0, -0.5, 0.25, 2.0, -1.0], dtype=torch.float64)
    y = torch.log_softmax(x, 0) if log else torch.softmax(x, 0)
    y.backward(g)
    values, ops = bf.softmax_grad_row(y.tolist(), g.tolist(), log=log)
    assert values == pytest.approx(x.grad.tolist(), abs=1e-12)
    # one row of N = 5: 4 N - 1 = 19
    assert ops == 19
    assert sf.formulas.pointwise.softmax_grad_derivation(1, 5, log=log).work == {"elementwise": 19}


def test_bruteforce_layer_norm_grad_is_torchs() -> None:
    """LayerNorm's three gradients written out as torch computes them give autograd's
    values; their op counts are layer_norm_grad_derivations' (M = 3 rows of dim = 4:
    grad_input 3 (11*4 - 1) = 129, grad_weight (2*3 - 1) 4 = 20, grad_bias (3 - 1) 4 = 8)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 4, dtype=torch.float64)
    ln = torch.nn.LayerNorm(4).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(4))
    ln(x).backward(g)
    values, ops = bf.layer_norm_grad(x.tolist(), g.tolist(), ln.weight.tolist())
    for got, want in zip(values["grad_input"], x.grad.tolist(), strict=True):
        assert got == pytest.approx(want, abs=1e-9)
    assert values["grad_weight"] == pytest.approx(ln.weight.grad.tolist(), abs=1e-9)
    assert values["grad_bias"] == pytest.approx(ln.bias.grad.tolist(), abs=1e-9)
    assert ops == {"grad_input": 129, "grad_weight": 20, "grad_bias": 8}
    d = sf.formulas.norm.layer_norm_grad_derivations(3, 4)
    assert {k: v.work["elementwise"] for k, v in d.items()} == ops


def _embedding_model() -> Any:
    """Embedding called on ``input_ids`` (an int64 input for sf.trace)."""
    torch = pytest.importorskip("torch")

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)

        def forward(self, input_ids: Any) -> Any:
            return self.emb(input_ids)

    return Model()


def _seq(*layers: Callable[[Any], Any]) -> Callable[[], Any]:
    def make() -> Any:
        tnn = _tnn()[1]
        return tnn.Sequential(*(f(tnn) for f in layers))
    return make


def _lin(tnn: Any) -> Any:
    return tnn.Linear(8, 8)


def _conv1(channels: int) -> Callable[[Any], Any]:
    return lambda tnn: tnn.Conv2d(1, channels, 1)


#: id -> (model factory, input, aten op, its work in a train trace), hand count above each
BACKWARD: dict[str, tuple[Callable[[], Any], Any, str, int]] = {
    # activations after Linear(8, 8) on (2, 8): 16 gradient elements times the rate
    "relu-1": (_seq(_lin, lambda t: t.ReLU()), (2, 8), "threshold_backward", 16 * 1),
    "relu6-2": (_seq(_lin, lambda t: t.ReLU6()), (2, 8), "hardtanh_backward", 16 * 2),
    "leaky_relu-2": (_seq(_lin, lambda t: t.LeakyReLU()), (2, 8), "leaky_relu_backward",
                     16 * 2),
    "sigmoid-3": (_seq(_lin, lambda t: t.Sigmoid()), (2, 8), "sigmoid_backward", 16 * 3),
    "tanh-3": (_seq(_lin, lambda t: t.Tanh()), (2, 8), "tanh_backward", 16 * 3),
    "silu-8": (_seq(_lin, lambda t: t.SiLU()), (2, 8), "silu_backward", 16 * 8),
    "gelu-11": (_seq(_lin, lambda t: t.GELU()), (2, 8), "gelu_backward", 16 * 11),
    "gelu_tanh-18": (_seq(_lin, lambda t: t.GELU(approximate="tanh")), (2, 8),
                     "gelu_backward", 16 * 18),
    "hardswish-5": (_seq(_lin, lambda t: t.Hardswish()), (2, 8), "hardswish_backward",
                    16 * 5),
    "hardsigmoid-3": (_seq(_lin, lambda t: t.Hardsigmoid()), (2, 8), "hardsigmoid_backward",
                      16 * 3),
    "elu-7": (_seq(_lin, lambda t: t.ELU()), (2, 8), "elu_backward", 16 * 7),
    # GLU: (2, 8) -> (2, 4): 8 output gradients; sigmoid 3, grad_a 1, grad_b 4: 8 each
    "glu-8": (_seq(_lin, lambda t: t.GLU()), (2, 8), "glu_backward", 8 * 8),
    # softmax over rows of N = 8, 2 rows: 2 * (4*8 - 1)
    # LayerNorm(8) on (2, 8): M = 2, dim = 8; grad_input 2 (11*8 - 1) = 174 (the
    # weight and bias gradients are separate parts)
    "layer_norm-input": (_seq(_lin, lambda t: t.LayerNorm(8)), (2, 8),
                         "native_layer_norm_backward (grad_input)", 174),
    "layer_norm-weight": (_seq(_lin, lambda t: t.LayerNorm(8)), (2, 8),
                          "native_layer_norm_backward (grad_weight)", (2 * 2 - 1) * 8),
    "softmax-4N-1": (_seq(_lin, lambda t: t.Softmax(-1)), (2, 8), "_softmax_backward_data",
                     2 * 31),
    "log_softmax-4N-1": (_seq(_lin, lambda t: t.LogSoftmax(-1)), (2, 8),
                         "_log_softmax_backward_data", 2 * 31),
    # embedding: B*N = 6 lookups of dim 4 scatter-added: 24 (not V*dim = 40)
    "embedding-BNdim": (_embedding_model, {"input_ids": (2, 3)}, "embedding_dense_backward",
                        2 * 3 * 4),
    # MaxPool2d(2) on (1, 2, 4, 4) -> (1, 2, 2, 2): 8 gradients, each added at its argmax
    "maxpool-scatter": (_seq(_conv1(2), lambda t: t.MaxPool2d(2)), (1, 1, 4, 4),
                        "max_pool2d_with_indices_backward", 8),
    # AvgPool2d(2): 8 gradients, one divide and 4 adds each
    "avgpool-1+window": (_seq(_conv1(2), lambda t: t.AvgPool2d(2)), (1, 1, 4, 4),
                         "avg_pool2d_backward", 8 * (1 + 4)),
    # AdaptiveAvgPool2d(2) on 3 x 3: windows [0,2) [1,3) per dim, 2*2 = 4 outputs of
    # 4 elements per plane: 4 divides + 16 adds, 2 planes
    "adaptive-avgpool": (_seq(_conv1(2), lambda t: t.AdaptiveAvgPool2d(2)), (1, 1, 3, 3),
                         "_adaptive_avg_pool2d_backward", 2 * (4 + 16)),
    # bilinear x2 on 3 x 3 -> 6 x 6: 36 gradients spread over 4 neighbours: 4 mul + 4 add
    "upsample-bilinear-8": (_seq(_conv1(1), lambda t: t.Upsample(scale_factor=2,
                                                                 mode="bilinear")),
                            (1, 1, 3, 3), "upsample_bilinear2d_backward", 36 * 8),
    "upsample-nearest-1": (_seq(_conv1(1), lambda t: t.Upsample(scale_factor=2)),
                           (1, 1, 3, 3), "upsample_nearest2d_backward", 36),
}


@pytest.mark.parametrize("case", sorted(BACKWARD))
def test_traced_backward_rates(case: str) -> None:
    import warnings

    make, inputs, op, want = BACKWARD[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(make(), inputs, mode="train")
    found = [leaf for _, leaf in cost.leaves() if leaf.spec == f"aten.{op}"]
    assert len(found) == 1, [leaf.spec for _, leaf in cost.leaves()]
    assert sum(int(v) for v in found[0].work.values()) == want


# ============================================================================ registries
def test_a_layer_class_registers_itself_and_must_train_or_say_why() -> None:
    from symflops.nn._base import REGISTRY, Example

    # LAYERS, nn.__all__ and the reference's examples are the registry
    from symflops.reference import EXAMPLES
    assert list(nn.LAYERS) == list(REGISTRY) == list(EXAMPLES)
    assert set(nn.LAYERS) <= set(nn.__all__)
    assert all(getattr(nn, name) is cls for name, cls in nn.LAYERS.items())
    with pytest.raises(TypeError):
        nn.LAYERS["Linear"] = nn.Linear  # type: ignore[index]
    example = Example("X()", lambda: nn.Identity(), (B, C))
    with pytest.raises(sf.SymflopsError, match="train rule"):
        type("Untrained", (nn.Layer,), {"example": example})
    with pytest.raises(sf.SymflopsError, match="registered already"):
        type("Linear", (nn.Layer,), {"example": example, "no_train": "a test"})
    # a private base (no example of its own) is not registered
    type("_Base", (nn.Layer,), {})
    assert "_Base" not in REGISTRY and "Untrained" not in REGISTRY


def test_handler_tables_are_read_only_and_describe_is_current() -> None:
    torch = pytest.importorskip("torch")
    from symflops.tracing.handlers import describe
    from symflops.tracing.registry import HANDLERS, ZERO_COST, register, unregister

    with pytest.raises(TypeError):
        HANDLERS[torch.ops.aten.lgamma] = None  # type: ignore[index]
    assert not hasattr(ZERO_COST, "add")
    before = describe()["counted"]
    register(torch.ops.aten.lgamma)(lambda call: [])
    try:
        assert describe()["counted"] == sorted([*before, "aten.lgamma"])
    finally:
        unregister(torch.ops.aten.lgamma)
    assert describe()["counted"] == before
