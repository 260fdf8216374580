"""Symbolic layers that mirror ``torch.nn``: same names, same arguments.

Each layer's ``cost(input_shape)`` checks its arguments and the input shape, then calls
its family's derivation in :mod:`symflops.formulas` (the same call the tracer's op
handlers make) and returns a :class:`~symflops.cost.Cost`. Sizes may be ints or SymPy
expressions (names such as ``"B"`` or ``"H"`` are turned into the canonical symbols).

>>> import symflops as sf
>>> from symflops.symbols import B, C_in, C_out, K, H, W
>>> c = sf.nn.Conv2d(C_in, C_out, K, padding="same").cost((B, C_in, H, W))
>>> c.flops
2*B*C_in*C_out*H*K**2*W
>>> c.params
C_out*(C_in*K**2 + 1)
"""

from __future__ import annotations

from symflops.nn import _train  # noqa: F401  (the layers' train rules)
from symflops.nn._base import Layer, SizeLike, to_size
from symflops.nn._composite import (
    MLP,
    MultiheadAttention,
    Repeat,
    Residual,
    Sequential,
    TransformerBlock,
)
from symflops.nn._conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from symflops.nn._layers import (
    GELU,
    GLU,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    Dropout,
    Embedding,
    Flatten,
    GroupNorm,
    Hardsigmoid,
    Hardswish,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool1d,
    MaxPool2d,
    PixelShuffle,
    PixelUnshuffle,
    ReLU,
    ReLU6,
    RMSNorm,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
)
from symflops.nn._moe import MoE
from symflops.nn._recurrent import GRU, LSTM, GRUCell, LSTMCell
from symflops.nn._transformer import (
    GatedMLP,
    GeGLU,
    PositionEmbedding,
    RotaryEmbedding,
    SwiGLU,
    TiedLMHead,
)
from symflops.nn._vision import (
    ClassToken,
    PatchEmbedding,
    Permute,
    Reshape,
    Select,
    Transpose,
)
from symflops.nn._window import PatchMerging, WindowAttention

__all__ = [
    "Layer", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Linear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm",
    "GroupNorm", "RMSNorm", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "ReLU", "ReLU6", "LeakyReLU",
    "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Dropout",
    "Identity", "Flatten", "Embedding", "MultiheadAttention", "TransformerBlock", "MLP",
    "Sequential", "Residual", "Repeat", "GLU", "PixelShuffle", "PixelUnshuffle", "Upsample",
    "LAYERS",
    "Permute", "Transpose", "Reshape", "Select", "PatchEmbedding", "ClassToken",
    "PositionEmbedding", "WindowAttention", "PatchMerging", "SizeLike", "to_size",
    "LSTM", "GRU", "LSTMCell", "GRUCell",
    "GatedMLP", "SwiGLU", "GeGLU", "RotaryEmbedding", "TiedLMHead",
    "MoE",
]

#: Every layer class by name (the formula reference and the CLI look layers up here).
LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (
        Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, Linear,
        BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, GroupNorm, RMSNorm, MaxPool1d,
        MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d,
        ReLU, ReLU6, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, Hardswish, Hardsigmoid, GLU, Softmax,
        Dropout, Identity, Flatten, PixelShuffle, PixelUnshuffle, Upsample, Embedding,
        MultiheadAttention, TransformerBlock, MLP, Sequential, Residual, Repeat,
        Permute, Transpose, Reshape, Select, PatchEmbedding, ClassToken, PositionEmbedding,
        WindowAttention, PatchMerging, LSTM, GRU, LSTMCell, GRUCell, GatedMLP,
        SwiGLU, GeGLU, RotaryEmbedding, TiedLMHead, MoE)
}
