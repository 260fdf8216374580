"""Vision Transformer in plain torch (no downloads, no torchvision).

Factories:
- ``vit_b_16()``: ViT-B/16-like (patch 16, dim 768, 12 layers, 12 heads, MLP 3072,
  a class token and a learned position embedding for 224x224 images). Like
  torchvision's, its forward checks ``H == W == image_size``, so tracing reports H and
  W as fixed at 224;
- ``vit_tiny()``: patch 8, dim 64, 2 layers, 4 heads, 32x32 images (fast tests).

Attention is ``nn.MultiheadAttention`` (its inference fast path runs under no_grad).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["vit", "vit_b_16", "vit_tiny", "VisionTransformer"]


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int = 224, patch_size: int = 16, layers: int = 12,
                 heads: int = 12, dim: int = 768, mlp: int = 3072,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.image_size, self.patch_size = image_size, patch_size
        self.conv_proj = nn.Conv2d(3, dim, patch_size, patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        n = (image_size // patch_size) ** 2 + 1
        self.pos_embedding = nn.Parameter(torch.empty(1, n, dim).normal_(std=0.02))
        self.layers = nn.Sequential(*[EncoderBlock(dim, heads, mlp) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        torch._assert(h == self.image_size, "wrong image height")
        torch._assert(w == self.image_size, "wrong image width")
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(b, -1, -1), x], dim=1) + self.pos_embedding
        x = self.ln(self.layers(x))
        return self.head(x[:, 0])


def vit_b_16(num_classes: int = 1000) -> VisionTransformer:
    """ViT-B/16-like for 224x224 images (86.6 M parameters)."""
    return VisionTransformer(num_classes=num_classes).eval()


def vit_tiny(num_classes: int = 10) -> VisionTransformer:
    """A 2-layer ViT on 32x32 images, patch 8, dim 64."""
    return VisionTransformer(32, 8, 2, 4, 64, 128, num_classes).eval()


def vit(image_size: int = 224, patch_size: int = 16, num_layers: int = 12, num_heads: int = 12,
        hidden_dim: int = 768, mlp_dim: int = 3072, num_classes: int = 1000
        ) -> VisionTransformer:
    """A ViT from torchvision's constructor arguments (``VisionTransformer(image_size,
    patch_size, num_layers, num_heads, hidden_dim, mlp_dim)``): the factory for
    ``sf.trace_factory`` and ``--vary``. The defaults are ViT-B/16."""
    return VisionTransformer(image_size, patch_size, num_layers, num_heads, hidden_dim,
                             mlp_dim, num_classes).eval()
