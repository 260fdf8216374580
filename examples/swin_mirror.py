"""Swin Transformer (v1) in plain torch, torchvision's ``swin_t/s/b`` op for op (no
torchvision: it does not import beside the torch the tests use).

Factories:
- ``swin_t()``, ``swin_s()``, ``swin_b()``: torchvision's configurations (patch 4, window
  7; embed 96/96/128, depths [2, 2, 6, 2] / [2, 2, 18, 2] / [2, 2, 18, 2]);
- ``tiny(image_size)``: embed 16, depths [2, 2], heads [1, 2], window 2 (fast tests);
- ``swin(image_size, patch_size, embed_dim, depths, num_heads, window_size, ...)``: the
  constructor with torchvision's argument names (ints for its one-value lists) for
  ``sf.trace_factory``; ``image_size`` only checks the input side the formula is tied to
  (torchvision's Swin takes any size).

Each forward does what torchvision's does: pad to a multiple of the window, roll by half a
window in every other block (not when the window covers the padded input), build the
shift mask, add the relative position bias gathered from its table, and merge patches
(pad to even, concatenate the four 2x2 neighbours, LayerNorm, Linear 4C -> 2C).
Stochastic depth is the identity in eval mode, and left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["swin_t", "swin_s", "swin_b", "tiny", "swin", "SwinTransformer"]


def _relative_position_index(window: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1).flatten()


class ShiftedWindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, shift: int, heads: int) -> None:
        super().__init__()
        self.window, self.shift, self.heads = window, shift, heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", _relative_position_index(window),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, heads = self.window, self.heads
        n = m * m
        bias = self.relative_position_bias_table[self.relative_position_index]
        bias = bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        b, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, (m - w % m) % m, 0, (m - h % m) % m))
        _, ph, pw, _ = x.shape
        sh = 0 if m >= ph else self.shift
        sw = 0 if m >= pw else self.shift
        if sh + sw > 0:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        windows = (ph // m) * (pw // m)
        x = x.view(b, ph // m, m, pw // m, m, c).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(b * windows, n, c)
        qkv = self.qkv(x).reshape(x.size(0), n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (c // heads) ** -0.5
        attn = q.matmul(k.transpose(-2, -1))
        attn = attn + bias
        if sh + sw > 0:
            mask = x.new_zeros((ph, pw))
            hs = ((0, -m), (-m, -sh), (-sh, None))
            ws = ((0, -m), (-m, -sw), (-sw, None))
            count = 0
            for h0, h1 in hs:
                for w0, w1 in ws:
                    mask[h0:h1, w0:w1] = count
                    count += 1
            mask = mask.view(ph // m, m, pw // m, m).permute(0, 2, 1, 3).reshape(windows, n)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = attn.view(x.size(0) // windows, windows, heads, n, n)
            attn = attn + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        attn = F.softmax(attn, dim=-1)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), n, c)
        x = self.proj(x)
        x = x.view(b, ph // m, pw // m, m, m, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if sh + sw > 0:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = ShiftedWindowAttention(dim, window, shift, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(4 * dim, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                       x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    def __init__(self, patch: int = 4, embed: int = 96, depths: tuple[int, ...] = (2, 2, 6, 2),
                 heads: tuple[int, ...] = (3, 6, 12, 24), window: int = 7,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, embed, patch, patch)
        self.stem_norm = nn.LayerNorm(embed)
        stages: list[nn.Module] = []
        dim = embed
        for i, (depth, h) in enumerate(zip(depths, heads, strict=True)):
            stages.append(nn.Sequential(*[SwinBlock(dim, h, window, 0 if j % 2 == 0
                                                    else window // 2) for j in range(depth)]))
            if i < len(depths) - 1:
                stages.append(PatchMerging(dim))
                dim *= 2
        self.features = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dim)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(dim, num_classes)
        self.image_size: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f"built for {self.image_size}x{self.image_size} images, "
                             f"got {tuple(x.shape[-2:])}")
        x = self.stem_norm(self.stem(x).permute(0, 2, 3, 1))
        x = self.norm(self.features(x)).permute(0, 3, 1, 2)
        return self.head(torch.flatten(self.avgpool(x), 1))


def swin_t(num_classes: int = 1000) -> SwinTransformer:
    """torchvision's swin_t (28,288,354 parameters)."""
    return SwinTransformer(num_classes=num_classes).eval()


def swin_s(num_classes: int = 1000) -> SwinTransformer:
    """torchvision's swin_s (49,606,258 parameters)."""
    return SwinTransformer(depths=(2, 2, 18, 2), num_classes=num_classes).eval()


def swin_b(num_classes: int = 1000) -> SwinTransformer:
    """torchvision's swin_b."""
    return SwinTransformer(embed=128, depths=(2, 2, 18, 2), heads=(4, 8, 16, 32),
                           num_classes=num_classes).eval()


def tiny(num_classes: int = 10) -> SwinTransformer:
    """Embed 16, depths [2, 2], heads [1, 2], window 2, patch 2: a fast test model."""
    return SwinTransformer(2, 16, (2, 2), (1, 2), 2, num_classes).eval()


def swin(image_size: int | None = None, patch_size: int = 4, embed_dim: int = 96,
         depths: tuple[int, ...] = (2, 2, 6, 2), num_heads: tuple[int, ...] = (3, 6, 12, 24),
         window_size: int = 7, num_classes: int = 1000) -> SwinTransformer:
    """torchvision's ``SwinTransformer`` arguments (defaults: swin_t); ``image_size``
    (optional) is the input side the model accepts, for ``sf.trace_factory``.

    >>> swin(224).image_size, sum(p.numel() for p in swin().parameters())
    (224, 28288354)
    """
    model = SwinTransformer(patch_size, embed_dim, tuple(depths), tuple(num_heads),
                            window_size, num_classes)
    model.image_size = image_size
    return model.eval()
