"""Vision presets built from ``sf.nn`` layers only, every size a symbol if you like:
``vit`` (torchvision's VisionTransformer), ``swin`` (Swin v1, torchvision's swin_t/s/b),
``resnet`` (torchvision's ResNet, ResNeXt and wide ResNet) and ``mobilenet_v2``.

>>> from symflops.symbols import B
>>> c = resnet(block="basic", layers=(2, 2, 2, 2)).cost((B, 3, 224, 224), convention="macs")
>>> c.params, c.flops.subs(B, 1)                       # torchvision resnet18
(11689512, 1814073344)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div
from symflops.nn import (
    GELU,
    AdaptiveAvgPool2d,
    BatchNorm2d,
    ClassToken,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    MaxPool2d,
    MultiheadAttention,
    PatchEmbedding,
    PatchMerging,
    Permute,
    PositionEmbedding,
    ReLU,
    ReLU6,
    Repeat,
    Residual,
    Select,
    Sequential,
    SizeLike,
    WindowAttention,
    to_size,
)
from symflops.presets._checks import checked_sizes

__all__ = ["vit", "swin", "resnet", "mobilenet_v2"]


def _mlp(dim: SizeLike, hidden: SizeLike) -> dict[str, Layer]:
    return {"fc1": Linear(dim, hidden), "act": GELU(), "fc2": Linear(hidden, dim)}


def vit(image_size: SizeLike = 224, patch: SizeLike = 16, layers: SizeLike = 12,
        heads: SizeLike = 12, dim: SizeLike = 768, mlp_dim: SizeLike = 3072,
        classes: SizeLike = 1000, channels: SizeLike = 3) -> Sequential:
    """torchvision's ``VisionTransformer`` (``vit_b_16`` by default; ``vit_l_16`` is
    ``layers=24, heads=16, dim=1024, mlp_dim=4096``) on ``(B, channels, image_size,
    image_size)``: patch embedding, class token, learned position embedding over
    ``(image_size/patch)^2 + 1`` tokens, ``layers`` pre-norm encoder blocks (LayerNorm,
    multi-head attention, LayerNorm, MLP with GELU), a final LayerNorm over every token and
    a linear head on the class token. As torchvision, the input must be ``image_size``
    square (the position embedding fixes it).

    >>> from symflops.symbols import B
    >>> c = vit().cost((B, 3, 224, 224), convention="macs")
    >>> c.params, c.flops.subs(B, 1)                    # torchvision vit_b_16
    (86567656, 17563828224)
    """
    checked_sizes("vit", image_size=image_size, patch=patch, layers=layers, heads=heads, dim=dim,
                  mlp_dim=mlp_dim, classes=classes, channels=channels)
    size = to_size(image_size, "vit", "image_size")
    p = to_size(patch, "vit", "patch")
    side = sp.floor(size / p)
    block = Sequential({
        "attention": Residual(Sequential({"norm": LayerNorm(dim), "mha":
                                          MultiheadAttention(dim, heads)})),
        "mlp": Residual(Sequential({"norm": LayerNorm(dim), **_mlp(dim, mlp_dim)})),
    })
    return Sequential({
        "patch_embedding": PatchEmbedding(channels, dim, p),
        "class_token": ClassToken(dim),
        "position_embedding": PositionEmbedding(side * side + 1, dim),
        "layers": Repeat(block, layers),
        "norm": LayerNorm(dim),
        "class_output": Select(1, 0),
        "head": Linear(dim, classes),
    })


def _swin_block(dim: SizeLike, heads: SizeLike, window: SizeLike, shift: SizeLike,
                mlp_ratio: SizeLike) -> Sequential:
    return Sequential({
        "attention": Residual(Sequential({"norm": LayerNorm(dim), "attn":
                                          WindowAttention(dim, heads, window, shift)})),
        "mlp": Residual(Sequential({"norm": LayerNorm(dim),
                                    **_mlp(dim, to_size(mlp_ratio, "swin", "mlp_ratio") *
                                           to_size(dim, "swin", "embed_dim"))})),
    })


def swin(embed_dim: SizeLike = 96, depths: Sequence[SizeLike] = (2, 2, 6, 2),
         heads: Sequence[SizeLike] = (3, 6, 12, 24), window: SizeLike = 7, patch: SizeLike = 4,
         mlp_ratio: SizeLike = 4, classes: SizeLike = 1000, channels: SizeLike = 3
         ) -> Sequential:
    """torchvision's Swin Transformer v1 (``swin_t`` by default; ``swin_s``:
    ``depths=(2, 2, 18, 2)``; ``swin_b``: ``embed_dim=128, depths=(2, 2, 18, 2),
    heads=(4, 8, 16, 32)``) on ``(B, channels, H, W)``, any ``H, W``: a ``patch x patch``
    stride-``patch`` convolution, channels last and LayerNorm; per stage, pairs of blocks
    (window attention, then shifted by ``window // 2``; each ``x + attn(norm(x))``, ``x +
    MLP(norm(x))``), patch merging between stages; final LayerNorm, global average pool
    and a linear head. A stage depth is even (pairs) or a concrete odd number.

    >>> from symflops.symbols import B
    >>> c = swin().cost((B, 3, 224, 224), convention="macs")
    >>> c.params, c.flops.subs(B, 1)                    # torchvision swin_t
    (28288354, 4490566656)
    """
    checked_sizes("swin", embed_dim=embed_dim, depths=depths, heads=heads, window=window,
                  patch=patch, mlp_ratio=mlp_ratio, classes=classes, channels=channels)
    if len(depths) != len(heads) or not depths:
        raise SymflopsError("give one depth and one head count per stage", layer="swin",
                            values={"depths": depths, "heads": heads},
                            fix="pass depths and heads of the same length")
    m = to_size(window, "swin", "window")
    half = sp.floor(m / 2)
    dim = to_size(embed_dim, "swin", "embed_dim")
    stages: dict[str, Layer] = {
        "patch_embedding": Conv2d(channels, dim, patch, stride=patch),
        "channels_last": Permute(0, 2, 3, 1),
        "patch_norm": LayerNorm(dim)}
    for i, (depth, h) in enumerate(zip(depths, heads, strict=True)):
        d = to_size(depth, "swin", "depths")
        pair = Sequential({"block": _swin_block(dim, h, m, 0, mlp_ratio),
                           "shifted": _swin_block(dim, h, m, half, mlp_ratio)})
        if d.is_number and d % 2:
            blocks: Layer = Sequential({"pairs": Repeat(pair, d // 2), "last":
                                        _swin_block(dim, h, m, 0, mlp_ratio)}) \
                if d > 1 else _swin_block(dim, h, m, 0, mlp_ratio)
        else:
            blocks = Repeat(pair, exact_div(d, 2))
        stages[f"stage{i + 1}"] = blocks
        if i < len(depths) - 1:
            stages[f"merge{i + 1}"] = PatchMerging(dim)
            dim = 2 * dim
    stages.update(norm=LayerNorm(dim), channels_first=Permute(0, 3, 1, 2),
                  avgpool=AdaptiveAvgPool2d(1), flatten=Flatten(), head=Linear(dim, classes))
    return Sequential(stages)


def _conv_bn(cin: SizeLike, cout: SizeLike, kernel: int, stride: SizeLike = 1,
             groups: SizeLike = 1) -> list[Layer]:
    return [Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
                   bias=False), BatchNorm2d(cout)]


def _resnet_block(kind: str, cin: SizeLike, planes: SizeLike, stride: SizeLike,
                  groups: SizeLike, width: SizeLike) -> Layer:
    expansion = 4 if kind == "bottleneck" else 1
    out = expansion * to_size(planes, "resnet", "planes")
    if kind == "bottleneck":
        body = Sequential(*_conv_bn(cin, width, 1), ReLU(),
                          *_conv_bn(width, width, 3, stride, groups), ReLU(),
                          *_conv_bn(width, out, 1))
    else:
        body = Sequential(*_conv_bn(cin, planes, 3, stride), ReLU(), *_conv_bn(planes, out, 3))
    needs_shortcut = stride != 1 or sp.sympify(cin) != out
    shortcut = Sequential(*_conv_bn(cin, out, 1, stride)) if needs_shortcut else None
    return Sequential({"residual": Residual(body, shortcut), "relu": ReLU()})


def resnet(block: str = "bottleneck", layers: Sequence[SizeLike] = (3, 4, 6, 3),
           width_per_group: SizeLike = 64, groups: SizeLike = 1, classes: SizeLike = 1000,
           channels: SizeLike = 3) -> Sequential:
    """torchvision's ``ResNet`` on ``(B, channels, H, W)``: ``block="basic"`` (resnet18:
    ``layers=(2, 2, 2, 2)``, resnet34: ``(3, 4, 6, 3)``) or ``"bottleneck"`` (resnet50 by
    default, resnet101 ``(3, 4, 23, 3)``, stride on the 3x3 conv as torchvision's v1.5;
    ``groups=32, width_per_group=4`` is resnext50_32x4d, ``width_per_group=128``
    wide_resnet50_2). Stem: 7x7 stride-2 conv, BatchNorm, ReLU, 3x3 stride-2 max pool;
    stage ``i`` has ``64 * 2^i`` planes (bottleneck width ``planes * width_per_group / 64 *
    groups``), stride 2 from the second stage, a 1x1 projection shortcut where the shape
    changes; global average pool and a linear head. BatchNorm at inference.

    >>> from symflops.symbols import B
    >>> resnet().cost((B, 3, 224, 224)).params          # torchvision resnet50
    25557032
    """
    checked_sizes("resnet", width_per_group=width_per_group, groups=groups, classes=classes,
                  channels=channels)
    if block not in ("basic", "bottleneck"):
        raise SymflopsError("unknown ResNet block", layer="resnet", values={"block": block},
                            fix="use block='basic' or 'bottleneck'")
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise SymflopsError("basic blocks need groups=1 and width_per_group=64 (as in "
                            "torchvision)", layer="resnet",
                            values={"groups": groups, "width_per_group": width_per_group},
                            fix="use block='bottleneck' for grouped or wider blocks")
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise SymflopsError("layers must list the blocks of each stage (at least one stage)",
                            layer="resnet", values={"layers": repr(layers)},
                            fix="pass e.g. layers=(3, 4, 6, 3)")
    expansion = 4 if block == "bottleneck" else 1
    net: dict[str, Layer] = {"conv1": Conv2d(channels, 64, 7, stride=2, padding=3, bias=False),
                             "bn1": BatchNorm2d(64), "relu": ReLU(),
                             "maxpool": MaxPool2d(3, stride=2, padding=1)}
    cin: Any = sp.Integer(64)
    for i, n in enumerate(layers):
        planes = 64 * 2 ** i
        width = exact_div(planes * to_size(width_per_group, "resnet", "width_per_group"), 64) \
            * to_size(groups, "resnet", "groups")
        count = to_size(n, "resnet", "layers")
        first = _resnet_block(block, cin, planes, 1 if i == 0 else 2, groups, width)
        cin = planes * expansion
        stage: dict[str, Layer] = {"0": first}
        if count != 1:
            stage["rest"] = Repeat(_resnet_block(block, cin, planes, 1, groups, width),
                                   count - 1)
        net[f"layer{i + 1}"] = Sequential(stage)
    net.update(avgpool=AdaptiveAvgPool2d(1), flatten=Flatten(), fc=Linear(cin, classes))
    return Sequential(net)


def _divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``divisor``, never below
    90% of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def mobilenet_v2(width_mult: float = 1.0, classes: SizeLike = 1000, round_nearest: int = 8,
                 channels: SizeLike = 3) -> Sequential:
    """torchvision's ``mobilenet_v2`` on ``(B, channels, H, W)``: a 3x3 stride-2 stem,
    inverted residual blocks (1x1 expansion by 6 but in the first, 3x3 depthwise, 1x1
    linear projection; a residual add where stride 1 keeps the channels), a 1x1 conv to
    1280, global average pool, dropout and a linear head; BatchNorm, ReLU6. Channel counts
    follow torchvision's rounding of ``width_mult`` (concrete: it rounds).

    >>> from symflops.symbols import B
    >>> c = mobilenet_v2().cost((B, 3, 224, 224), convention="macs")
    >>> c.params, c.flops.subs(B, 1)                    # torchvision mobilenet_v2
    (3504872, 300774272)
    """
    checked_sizes("mobilenet_v2", classes=classes, channels=channels)
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or \
            not math.isfinite(width_mult) or width_mult <= 0:
        raise SymflopsError("width_mult must be a finite positive number",
                            layer="mobilenet_v2", values={"width_mult": width_mult},
                            fix="pass e.g. 1.0 or 0.5")
    if isinstance(round_nearest, bool) or not isinstance(round_nearest, int) or \
            round_nearest < 1:
        raise SymflopsError("round_nearest must be an int >= 1 (channel counts are rounded "
                            "to its multiples)", layer="mobilenet_v2",
                            values={"round_nearest": round_nearest},
                            fix="pass round_nearest=8 (torchvision's) or another int >= 1")
    cin = _divisible(32 * width_mult, round_nearest)
    last = _divisible(1280 * max(1.0, width_mult), round_nearest)
    features: list[Layer] = [Sequential(*_conv_bn(channels, cin, 3, 2), ReLU6())]
    for t, c, n, s in settings:
        cout = _divisible(c * width_mult, round_nearest)
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), cin * t
            layers: list[Layer] = [] if t == 1 else [*_conv_bn(cin, hidden, 1), ReLU6()]
            layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), ReLU6(),
                       *_conv_bn(hidden, cout, 1)]
            body = Sequential(*layers)
            features.append(Residual(body) if stride == 1 and cin == cout else body)
            cin = cout
    features.append(Sequential(*_conv_bn(cin, last, 1), ReLU6()))
    return Sequential({"features": Sequential(*features), "avgpool": AdaptiveAvgPool2d(1),
                       "flatten": Flatten(), "dropout": Dropout(0.2),
                       "classifier": Linear(last, classes)})
