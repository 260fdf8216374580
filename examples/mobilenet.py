"""MobileNetV2-like CNN in plain torch (no downloads, no torchvision).

Factories:
- ``mobilenet_v2()``: inverted residual blocks with depthwise convolutions and ReLU6,
  torchvision's layout (``features.N.conv...``), 1000 classes;
- ``tiny()``: a few blocks at width 0.25 for fast tests.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["mobilenet_v2", "tiny", "MobileNetV2"]


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_cbr(cin, hidden, 1))
        layers += [_cbr(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def _div8(v: float) -> int:
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0,
                 settings: list[list[int]] | None = None) -> None:
        super().__init__()
        settings = settings or [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                                [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        cin = _div8(32 * width)
        last = _div8(1280 * max(1.0, width))
        feats: list[nn.Module] = [_cbr(3, cin, 3, 2)]
        for t, c, n, s in settings:
            cout = _div8(c * width)
            for i in range(n):
                feats.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        feats.append(_cbr(cin, last, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNetV2-like (3.5 M parameters, about 0.3 GMACs at 224); ``width_mult`` scales
    every width, rounded to a multiple of 8 as torchvision's ``_make_divisible`` does
    (exact fractions work: ``Fraction(3, 4)``)."""
    return MobileNetV2(num_classes, width_mult).eval()


def tiny(num_classes: int = 10) -> MobileNetV2:
    """Width 0.25, three inverted-residual stages: a fast test model."""
    return MobileNetV2(num_classes, 0.25, [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]).eval()
