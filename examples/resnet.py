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

__all__ = ["resnet", "resnet50", "resnet18", "tiny", "ResNet"]


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

    def __init__(self, cin: int, width: int, stride: int = 1, inner: int | None = None) -> None:
        super().__init__()
        cout = width * self.expansion
        mid = width if inner is None else inner  # torchvision: planes * width_per_group/64
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
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
                 widths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 64,
                 width_per_group: int = 64) -> None:
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
                extra = {} if width_per_group == 64 else {"inner": w * width_per_group // 64}
                blocks.append(block(cin, w, 2 if (j == 0 and i > 0) else 1, **extra))
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


def resnet(layers: tuple[int, ...] | list[int] = (3, 4, 6, 3), width_per_group: int = 64,
           num_classes: int = 1000) -> ResNet:
    """A bottleneck ResNet from torchvision's ``ResNet`` arguments (``layers``: blocks per
    stage; ``width_per_group``: the bottleneck's inner width per 64 planes, 128 for
    wide_resnet50_2): the factory for ``sf.trace_factory`` and ``--vary``. The defaults
    are ResNet-50."""
    return ResNet(Bottleneck, list(layers), num_classes, width_per_group=width_per_group).eval()


def tiny(num_classes: int = 10) -> ResNet:
    """Two basic-block stages of widths 8 and 16: a fast test model."""
    return ResNet(BasicBlock, [1, 1], num_classes, widths=(8, 16), stem=8).eval()
