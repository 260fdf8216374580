"""ResNet-50 written with symflops' own layers (``sf.nn``), no torch needed.

torchvision's resnet50 layer for layer. ``resnet50()`` returns an ``sf.nn.Sequential``;
its cost is a formula in B, H and W straight away:

    >>> from symflops.symbols import B, H, W
    >>> cost = resnet50().cost((B, 3, H, W), convention="macs")
    >>> cost.subs(B=1, H=224, W=224).flops
    4089184256

The command line takes it like a torch factory:
``symflops trace examples/sfnn_resnet.py:resnet50 --input "B 3 H W" --at B=1,H=224,W=224``.
"""

from __future__ import annotations

from symflops import nn


def bottleneck(cin: int, width: int, stride: int, down: bool) -> nn.Layer:
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a projection shortcut if ``down``."""
    out = width * 4
    body = nn.Sequential(
        nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))
    shortcut = nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False),
                             nn.BatchNorm2d(out)) if down else None
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def resnet50() -> nn.Sequential:
    """torchvision's resnet50 as sf.nn layers (25,557,032 parameters)."""
    layers: list[nn.Layer] = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
                              nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(bottleneck(cin, width, stride if i == 0 else 1, i == 0))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers)
