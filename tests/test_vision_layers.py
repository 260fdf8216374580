"""The vision layers beyond their cases in test_layers.py: bad input gives one
SymflopsError naming the layer and the fix, symbolic sizes keep exact conditions, and
Swin's shift is decided as torchvision decides it."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp

import symflops as sf
from symflops import nn
from symflops.symbols import B, C, H, N, W, dim, heads, symbol


@pytest.mark.parametrize("make,shape,layer", [
    (lambda: nn.Permute(0, 1), (B, C, H), "Permute"),
    (lambda: nn.Permute(0, 0, 1), (B, C, H), "Permute"),
    (lambda: nn.Permute("a"), (B,), "Permute"),
    (lambda: nn.Transpose(1, 5), (B, C, H), "Transpose"),
    (lambda: nn.Reshape(-1, -1), (B, C), "Reshape"),
    (lambda: nn.Reshape(2, 5), (2, 4), "Reshape"),
    (lambda: nn.Reshape(3, -1), (2, 4), "Reshape"),
    (lambda: nn.Select(1, 7), (B, 3, H), "Select"),
    (lambda: nn.PatchEmbedding(3, 8, 4), (B, 3, H), "PatchEmbedding"),
    (lambda: nn.PatchEmbedding(3, 8, 4), (B, 4, H, W), "at proj"),
    (lambda: nn.PatchEmbedding(3, 8, 0), (B, 3, H, W), "PatchEmbedding"),
    (lambda: nn.ClassToken(8), (B, N, 4), "ClassToken"),
    (lambda: nn.ClassToken(8), (B, 8), "ClassToken"),
    (lambda: nn.PositionEmbedding(197, 8), (B, 198, 8), "PositionEmbedding"),
    (lambda: nn.WindowAttention(96, 5, 7), (B, H, W, 96), "WindowAttention"),
    (lambda: nn.WindowAttention(96, 3, 7, shift=7), (B, H, W, 96), "WindowAttention"),
    (lambda: nn.WindowAttention(96, 3, 7), (B, 96, H, W), "WindowAttention"),
    (lambda: nn.PatchMerging(96), (B, H, W), "PatchMerging"),
], ids=["permute-short", "permute-repeat", "permute-name", "transpose-range", "reshape-two",
        "reshape-count", "reshape-infer", "select-range", "patch-rank", "patch-channels",
        "patch-zero", "cls-dim", "cls-rank", "pos-tokens", "window-heads", "window-shift",
        "window-layout", "merge-rank"])
def test_bad_input_is_one_error(make: Any, shape: tuple[Any, ...], layer: str) -> None:
    with pytest.raises(sf.SymflopsError) as err:
        make().cost(shape)
    msg = str(err.value)
    assert layer in msg and "fix:" in msg and "\n" not in msg


def test_reshape_symbolic_count_is_a_condition() -> None:
    # B*C*H*W elements into (B, C, N): holds only where N = H*W
    cost = nn.Reshape(B, C, N).cost((B, C, H, W))
    assert cost.output_shape == (B, C, N)
    assert cost.validity == (sp.Eq(B * C * N, B * C * H * W),)
    with pytest.raises(sf.SymflopsError):
        cost.subs(B=1, C=2, H=3, W=4, N=5)
    assert cost.subs(B=1, C=2, H=3, W=4, N=12).flops == 0


def test_position_embedding_fixes_the_token_count() -> None:
    # ViT: (H/16)(W/16) + 1 tokens; a table for 197 tokens takes only 224 x 224 images
    net = nn.Sequential(nn.PatchEmbedding(3, dim, 16), nn.ClassToken(dim),
                        nn.PositionEmbedding(197, dim))
    assert net.cost((B, 3, 224, 224)).params == dim * (3 * 256 + 1) + dim + 197 * dim
    with pytest.raises(sf.SymflopsError, match="tokens"):
        net.cost((B, 3, 240, 224))


@pytest.mark.parametrize("size,shifted", [(7, False), (8, True), (14, True), (3, False)],
                         ids=["covered", "padded-14", "two-windows", "small"])
def test_shift_follows_torchvision(size: int, shifted: bool) -> None:
    # torchvision drops the shift when the window covers the padded map (7 >= 7 * ceil(n/7))
    cost = nn.WindowAttention(32, 2, 7, shift=3).cost((1, size, size, 32))
    assert ("mask" in [c.name for c in cost.children]) is shifted


def test_symbolic_shift_is_piecewise_and_exact() -> None:
    layer = nn.WindowAttention(dim, heads, 7, shift=3)
    cost = layer.cost((B, H, W, dim))
    assert cost.flops.has(sp.Piecewise)
    for h, w in ((7, 7), (7, 9), (20, 5)):
        at = {B: 2, H: h, W: w, dim: 8, heads: 2}
        concrete = nn.WindowAttention(8, 2, 7, shift=3).cost((2, h, w, 8))
        assert cost.subs(at).flops == concrete.flops, (h, w)
        assert int(cost.evaluate("flops", **{str(k): v for k, v in at.items()})) \
            == concrete.flops


def test_window_attention_counts_grow_with_the_window() -> None:
    # per token, MACs 4 dim^2 + 2 M^2 dim: linear in the window's area, not in H W
    m = symbol("window")
    a, b = symbol("a"), symbol("b")
    macs = nn.WindowAttention(dim, heads, m).cost((B, m * a, m * b, dim), convention="macs")
    per_token = sp.simplify(macs.flops / (B * m * a * m * b))
    assert sp.expand(per_token - (4 * dim**2 + 2 * m**2 * dim)) == 0
