"""EfficientNet (v1) in plain torch, torchvision's ``efficientnet_b0`` op for op (no
torchvision: it does not import beside the torch the tests use), with its compound
scaling arguments.

``efficientnet(width_mult, depth_mult, resolution)``: torchvision's ``_efficientnet_conf``
scaling: every stage's channels ``make_divisible(c * width_mult, 8)``, its block count
``ceil(n * depth_mult)``; ``resolution`` (optional) is the input side the model accepts,
for ``sf.trace_factory``. ``efficientnet_b0()``: width 1.0, depth 1.0 (5,288,548 params).

Blocks as torchvision's MBConv: 1x1 expansion (when the ratio is not 1), depthwise k x k,
squeeze-excitation (squeeze to max(1, in // 4) channels, SiLU, Sigmoid), 1x1 projection,
BatchNorm after each conv, the residual when the stride is 1 and the channels match
(stochastic depth is the identity in eval mode, and left out).
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import nn

__all__ = ["efficientnet", "efficientnet_b0", "make_divisible", "B0_STAGES"]

#: torchvision's B0 stages: (expand ratio, kernel, stride, in, out, blocks)
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
             (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
             (6, 3, 1, 192, 320, 1))


def make_divisible(v: float | Fraction, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to the nearest multiple of
    ``divisor`` (at least ``divisor``), never below 90% of ``v``.

    >>> make_divisible(32 * 1.1), make_divisible(Fraction(52)), make_divisible(4)
    (32, 56, 8)
    """
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
          act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class MBConv(nn.Module):
    def __init__(self, expand: int, k: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        hidden = make_divisible(cin * expand)
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(_conv(cin, hidden, 1))
        layers += [_conv(hidden, hidden, k, stride, groups=hidden),
                   SqueezeExcitation(hidden, max(1, cin // 4)),
                   _conv(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class EfficientNet(nn.Module):
    def __init__(self, width_mult: float | Fraction = 1.0, depth_mult: float | Fraction = 1.0,
                 num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        stages = [(e, k, s, make_divisible(cin * width_mult), make_divisible(cout * width_mult),
                   int(math.ceil(n * depth_mult))) for e, k, s, cin, cout, n in B0_STAGES]
        layers: list[nn.Module] = [_conv(3, stages[0][3], 3, 2)]
        for e, k, s, cin, cout, n in stages:
            layers.append(nn.Sequential(*[MBConv(e, k, s if i == 0 else 1,
                                                 cin if i == 0 else cout, cout)
                                          for i in range(n)]))
        last = 4 * stages[-1][4]
        layers.append(_conv(stages[-1][4], last, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True),
                                        nn.Linear(last, num_classes))
        self.resolution: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resolution is not None and tuple(x.shape[-2:]) != (self.resolution,) * 2:
            raise ValueError(f"built for {self.resolution}x{self.resolution} images, "
                             f"got {tuple(x.shape[-2:])}")
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def efficientnet(width_mult: float | Fraction = 1.0, depth_mult: float | Fraction = 1.0,
                 resolution: int | None = None, num_classes: int = 1000,
                 dropout: float = 0.2) -> EfficientNet:
    """EfficientNet scaled as torchvision's ``_efficientnet_conf`` (B0 at 1.0, 1.0).

    >>> sum(p.numel() for p in efficientnet(1.0, 1.1).parameters())  # efficientnet_b1
    7794184
    """
    model = EfficientNet(width_mult, depth_mult, num_classes, dropout)
    model.resolution = resolution
    return model.eval()


def efficientnet_b0(num_classes: int = 1000) -> EfficientNet:
    """torchvision's efficientnet_b0 (5,288,548 parameters)."""
    return efficientnet(1.0, 1.0, 224, num_classes)
