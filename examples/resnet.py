"""ResNet-style CNNs in plain torch (no downloads, no torchvision).

Factories:
- ``resnet50()``: a ResNet-50-like network (bottleneck blocks [3, 4, 6, 3], widths
  64..2048, 1000 classes), the layer structure and names of torchvision's resnet50;
- ``resnet18()``: the basic-block variant ([2, 2, 2, 2]);
- ``tiny()``: a two-stage miniature for fast tests.

Trace one: ``symflops trace examples/resnet.py:resnet50 --input "B 3 H W"``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["resnet50", "resnet18", "tiny", "ResNet"]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000,
                 widths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        stages = []
        for i, (n, w) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w * block.expansion  # type: ignore[attr-defined]
            stages.append(nn.Sequential(*blocks))
        for i, s in enumerate(stages):
            self.add_module(f"layer{i + 1}", s)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            if hasattr(self, name):
                x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50-like: bottlenecks [3, 4, 6, 3] (25.6 M parameters, 4.1 GMACs at 224)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes).eval()


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18-like: basic blocks [2, 2, 2, 2]."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes).eval()


def tiny(num_classes: int = 10) -> ResNet:
    """Two basic-block stages of widths 8 and 16: a fast test model."""
    return ResNet(BasicBlock, [1, 1], num_classes, widths=(8, 16), stem=8).eval()
