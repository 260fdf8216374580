"""Fully connected, normalization, pooling, activation and data-movement layers; each
layer checks its arguments and input shape, then calls its family's derivation in
:mod:`symflops.formulas`.

>>> Linear(8, 4).cost(("B", 8)).flops
64*B
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from symflops import symbols as S
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas import (
    INTERPOLATE_DIMS,
    INTERPOLATE_RATES,
    activation_derivation,
    adaptive_pool_derivation,
    batch_norm_derivation,
    embedding_derivation,
    glu_derivation,
    group_norm_derivation,
    interpolate_derivation,
    layer_norm_derivation,
    linear_derivation,
    pixel_shuffle_derivation,
    pixel_shuffle_shape,
    pool_derivation,
    pool_output_size,
    rms_norm_derivation,
    softmax_derivation,
    upsample_output_size,
)
from symflops.formulas.derivation import Derivation
from symflops.nn._base import (
    Layer,
    Shape,
    SizeLike,
    check_dim,
    dim_index,
    divides_condition,
    fmt,
    numel,
    positive_output,
    same_size,
    size_tuple,
    to_size,
)

__all__ = [
    "Linear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU",
    "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Dropout", "Identity", "Flatten",
    "Embedding", "GLU", "PixelShuffle", "PixelUnshuffle", "Upsample", "dropout_probability",
]


class Linear(Layer):
    """``torch.nn.Linear`` on ``(..., in_features)``.

    >>> Linear(4096, 1000).cost(("B", 4096)).params
    4097000
    """

    def __init__(self, in_features: SizeLike, out_features: SizeLike, bias: bool = True) -> None:
        self.in_features = to_size(in_features, "Linear", "in_features")
        self.out_features = to_size(out_features, "Linear", "out_features")
        self.bias = bool(bias)

    def spec(self) -> str:
        b = "" if self.bias else ", bias=False"
        return f"Linear({self.in_features}, {self.out_features}{b})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not shape:
            raise SymflopsError("expects at least a 1-d input (..., in_features)",
                                layer=self.spec(), values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.in_features})")
        self._check_channels(shape, shape[-1], self.in_features, "features")
        d = linear_derivation(numel(shape[:-1]), self.in_features, self.out_features,
                              self.bias)
        return self._leaf(name, shape, shape[:-1] + (self.out_features,), d)


# ----------------------------------------------------------------------------- norms
class _BatchNorm(Layer):
    ranks: tuple[int, ...] = (4,)
    layout = "(B, C, H, W)"

    def __init__(self, num_features: SizeLike, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 training: bool = False) -> None:
        self.num_features = to_size(num_features, type(self).__name__, "num_features")
        self.affine = bool(affine)
        self.training = bool(training) or not track_running_stats

    def spec(self) -> str:
        extra = ("" if self.affine else ", affine=False") + (", training" if self.training
                                                             else "")
        return f"{type(self).__name__}({self.num_features}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, self.ranks, self.layout)
        self._check_channels(shape, shape[1], self.num_features)
        d = batch_norm_derivation(numel(shape), self.num_features, training=self.training,
                                  affine=self.affine)
        return self._leaf(name, shape, shape, d)


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on ``(B, C)`` or ``(B, C, T)``; inference by default."""

    ranks = (2, 3)
    layout = "(B, C) or (B, C, T)"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d``; inference (folded, ``2 C H W`` per image) by default,
    ``training=True`` counts the batch statistics."""

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """``torch.nn.BatchNorm3d``."""

    ranks = (5,)
    layout = "(B, C, D, H, W)"


def normalized_sizes(value: Any, layer: str) -> Shape:
    """``normalized_shape`` of a LayerNorm or RMSNorm: one size or a non-empty tuple."""
    sizes = value if isinstance(value, (tuple, list)) else (value,)
    if not sizes:
        raise SymflopsError("normalized_shape needs at least one size", layer=layer,
                            values={"normalized_shape": repr(value)},
                            fix="pass the trailing size(s) to normalize, e.g. dim or (H, W)")
    return tuple(to_size(v, layer, "normalized_shape") for v in sizes)


class LayerNorm(Layer):
    """``torch.nn.LayerNorm`` over the trailing ``normalized_shape``."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        self.normalized_shape = normalized_sizes(normalized_shape, "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        extra += "" if self.bias else ", bias=False"
        return f"LayerNorm({fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(same_size(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {fmt(self.normalized_shape)})")
        d = layer_norm_derivation(numel(shape[:-k]), numel(self.normalized_shape),
                                  affine=self.elementwise_affine, bias=self.bias)
        return self._leaf(name, shape, shape, d)


class RMSNorm(Layer):
    """``torch.nn.RMSNorm`` over the trailing ``normalized_shape`` (weight only)."""

    def __init__(self, normalized_shape: Any, eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        self.normalized_shape = normalized_sizes(normalized_shape, "RMSNorm")
        self.elementwise_affine = bool(elementwise_affine)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"RMSNorm({fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(same_size(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {fmt(self.normalized_shape)})")
        d = rms_norm_derivation(numel(shape[:-k]), numel(self.normalized_shape),
                                affine=self.elementwise_affine)
        return self._leaf(name, shape, shape, d)


class GroupNorm(Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels)`` on ``(B, C, *)``."""

    def __init__(self, num_groups: SizeLike, num_channels: SizeLike, eps: float = 1e-5,
                 affine: bool = True) -> None:
        self.num_groups = to_size(num_groups, "GroupNorm", "num_groups")
        self.num_channels = to_size(num_channels, "GroupNorm", "num_channels")
        self.affine = bool(affine)
        if self.num_groups.is_number and self.num_channels.is_number and \
                self.num_channels % self.num_groups != 0:
            raise SymflopsError("num_groups must divide num_channels", layer="GroupNorm",
                                values={"num_groups": num_groups, "num_channels": num_channels},
                                fix="choose num_groups among the divisors of num_channels")

    def spec(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}" + \
            ("" if self.affine else ", affine=False") + ")"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) < 2:
            raise SymflopsError("expects (B, C, *)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.num_channels}, H, W)")
        self._check_channels(shape, shape[1], self.num_channels)
        d = group_norm_derivation(shape[0], self.num_groups, self.num_channels,
                                  numel(shape[2:]), affine=self.affine)
        return self._leaf(name, shape, shape, d,
                          validity=divides_condition(self.num_groups, self.num_channels))


# ----------------------------------------------------------------------------- pooling
class _PoolNd(Layer):
    n = 2
    kind = "max"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, ceil_mode: bool = False, **kwargs: Any) -> None:
        name = type(self).__name__
        self.kernel_size = size_tuple(kernel_size, self.n, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else size_tuple(stride, self.n, name,
                                                                     "stride")
        self.padding = size_tuple(padding, self.n, name, "padding", zero_ok=True)
        self.dilation = size_tuple(dilation, self.n, name, "dilation")
        self.ceil_mode = bool(ceil_mode)
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if p.is_number and k.is_number and 2 * p > k:
                raise SymflopsError("padding must be at most half the kernel size (as in torch)",
                                    layer=name, values={"padding": p, "kernel_size": k},
                                    fix="use padding <= kernel_size // 2")

    def spec(self) -> str:
        parts = [f"kernel_size={fmt(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={fmt(self.stride)}")
        if any(p != 0 for p in self.padding):
            parts.append(f"padding={fmt(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={fmt(self.dilation)}")
        if self.ceil_mode:
            parts.append("ceil_mode=True")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        self._check_rank(shape, (n + 1, n + 2),
                         "(B, C, " + ", ".join(str(s) for s in S.spatial_in(n)) + ")")
        spatial = shape[-n:]
        out_sp = tuple(sp.sympify(pool_output_size(s, k, st, p, d, self.ceil_mode))
                       for s, k, st, p, d in zip(spatial, self.kernel_size, self.stride,
                                                 self.padding, self.dilation, strict=True))
        validity = positive_output(out_sp, self.spec(), "window", shape)
        d = pool_derivation(self.kind, numel(shape[:-n]), spatial, out_sp, self.kernel_size,
                            self.stride, self.padding, self.dilation, self.ceil_mode)
        return self._leaf(name, shape, tuple(shape[:-n]) + out_sp, d, validity=validity)


class MaxPool1d(_PoolNd):
    """``torch.nn.MaxPool1d``."""

    n = 1


class MaxPool2d(_PoolNd):
    """``torch.nn.MaxPool2d``: ``K^2 - 1`` compares per output."""

    n = 2


class AvgPool1d(_PoolNd):
    """``torch.nn.AvgPool1d``."""

    n = 1
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class AvgPool2d(_PoolNd):
    """``torch.nn.AvgPool2d``: ``K^2`` per output (adds and one divide)."""

    n = 2
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class _AdaptivePoolNd(Layer):
    n = 2
    kind = "avg"

    def __init__(self, output_size: Any) -> None:
        items = tuple(output_size) if isinstance(output_size, (tuple, list)) else \
            (output_size,) * self.n
        if len(items) != self.n or not all(
                isinstance(v, (int, np.integer, sp.Integer))
                and not isinstance(v, (bool, np.bool_)) and v > 0 for v in items):
            raise SymflopsError("output_size must be positive ints", layer=type(self).__name__,
                                values={"output_size": output_size},
                                fix=f"pass {self.n} int(s) >= 1")
        self.output_size = tuple(int(v) for v in items)

    def spec(self) -> str:
        return f"{type(self).__name__}({fmt(self.output_size)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        self._check_rank(shape, (n + 1, n + 2),
                         "(B, C, " + ", ".join(str(s) for s in S.spatial_in(n)) + ")")
        spatial = shape[-n:]
        out_shape = tuple(shape[:-n]) + tuple(sp.Integer(o) for o in self.output_size)
        d = adaptive_pool_derivation(self.kind, numel(shape[:-n]), spatial, self.output_size)
        return self._leaf(name, shape, out_shape, d)


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool1d``."""

    n = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool2d``; ``(1, 1)`` costs ``H W`` per plane."""

    n = 2


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveMaxPool2d``."""

    n = 2
    kind = "max"


# ----------------------------------------------------------------------------- pointwise
class _Activation(Layer):
    activation = "relu"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape, activation_derivation(self.activation, numel(shape)))


class ReLU(_Activation):
    """``torch.nn.ReLU``: one compare per element."""

    activation = "relu"


class ReLU6(_Activation):
    """``torch.nn.ReLU6``: two compares per element."""

    activation = "relu6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU``: compare and multiply."""

    activation = "leaky_relu"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``."""

    activation = "sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh``."""

    activation = "tanh"


class SiLU(_Activation):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``."""

    activation = "silu"


class Hardswish(_Activation):
    """``torch.nn.Hardswish``."""

    activation = "hardswish"


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid``."""

    activation = "hardsigmoid"


class GELU(_Activation):
    """``torch.nn.GELU(approximate="none" | "tanh")``."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise SymflopsError("approximate must be 'none' or 'tanh'", layer="GELU",
                                values={"approximate": approximate},
                                fix="use approximate='none' or 'tanh'")
        self.approximate = approximate
        self.activation = "gelu" if approximate == "none" else "gelu_tanh"

    def spec(self) -> str:
        return "GELU()" if self.approximate == "none" else "GELU(approximate='tanh')"


class Softmax(Layer):
    """``torch.nn.Softmax(dim)``: ``5 n - 2`` per row of ``n``."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim(dim, "Softmax")

    def spec(self) -> str:
        return f"Softmax(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = shape[dim_index(self.dim, shape, self.spec())]
        return self._leaf(name, shape, shape, softmax_derivation(numel(shape) / n, n))


class _Free(Layer):
    """A layer that moves or keeps data and does no arithmetic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _out(self, shape: Shape) -> Shape:
        return shape

    def _cost(self, shape: Shape, name: str) -> Cost:
        return Cost(name, type(self).__name__, spec=self.spec(), params=0, work={},
                    input_shape=shape, output_shape=self._out(shape),
                    derivation=Derivation({}, sp.Integer(0), {}, "no arithmetic"))


class Dropout(_Free):
    """``torch.nn.Dropout``: free at inference.

    In training (``mode="train"``): 3 per element and a 1-byte mask saved for backward.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        self.p = dropout_probability(p, "Dropout")

    def spec(self) -> str:
        return f"Dropout(p={self.p})"


def dropout_probability(p: Any, layer: str) -> float:
    """A dropout probability: a number in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise SymflopsError("dropout must be a probability in [0, 1]", layer=layer,
                            values={"p": repr(p)}, fix="pass e.g. 0.1")
    return float(p)


class Identity(_Free):
    """``torch.nn.Identity``."""


class Flatten(_Free):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = check_dim(start_dim, "Flatten", "start_dim")
        self.end_dim = check_dim(end_dim, "Flatten", "end_dim")

    def _out(self, shape: Shape) -> Shape:
        ndim = max(len(shape), 1)  # as torch: a 0-d input flattens like a 1-d one of size 1
        for arg, d in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -ndim <= d < ndim:
                raise SymflopsError(f"{arg} is out of range for a {len(shape)}-d input",
                                    layer=self.spec(), values={arg: d, "input_shape": shape},
                                    fix=f"use a {arg} in [{-ndim}, {ndim - 1}]")
        if not shape:
            return (sp.Integer(1),)
        s, e = self.start_dim % len(shape), self.end_dim % len(shape)
        if s > e:
            raise SymflopsError("start_dim comes after end_dim", layer="Flatten",
                                values={"start_dim": self.start_dim, "end_dim": self.end_dim,
                                        "input_shape": shape},
                                fix="use start_dim <= end_dim")
        return tuple(shape[:s]) + (numel(shape[s:e + 1]),) + tuple(shape[e + 1:])


class GLU(Layer):
    """``torch.nn.GLU(dim=-1)``: ``a * sigmoid(b)`` of the two halves of ``dim``; 4 per
    output element (sigmoid 3, multiply 1).

    >>> GLU().cost(("B", "N", 8)).flops
    16*B*N
    """

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim(dim, "GLU")

    def spec(self) -> str:
        return f"GLU(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        i = dim_index(self.dim, shape, self.spec())
        n = shape[i]
        if n.is_number and n % 2 != 0:
            raise SymflopsError("the split dim must have an even size", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass an input whose dim {self.dim} is even")
        validity = divides_condition(sp.Integer(2), n)
        out = tuple(shape[:i]) + (n / 2,) + tuple(shape[i + 1:])
        return self._leaf(name, shape, out, glu_derivation(numel(out)), validity=validity)


class _PixelShuffle(Layer):
    """``(B, C r^2, H, W) <-> (B, C, H r, W r)``: data movement, no arithmetic."""

    inverse = False
    factor_name = "upscale_factor"

    def __init__(self, factor: SizeLike) -> None:
        self.factor = to_size(factor, type(self).__name__, self.factor_name)

    def spec(self) -> str:
        return f"{type(self).__name__}({self.factor})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) < 3:
            raise SymflopsError("expects (*, C, H, W)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix="pass a shape like (B, C, H, W)")
        c, h, w = shape[-3:]
        r = self.factor
        divisible = ((h, r, "H"), (w, r, "W")) if self.inverse else ((c, r ** 2, "C"),)
        validity: list[sp.Basic] = []
        for size, d, what in divisible:
            if size.is_number and d.is_number and size % d != 0:
                raise SymflopsError(f"{what} must be divisible by {d}", layer=self.spec(),
                                    values={"input_shape": shape},
                                    fix=f"pass an input whose {what} is a multiple of {d}")
            validity += divides_condition(d, size)
        out = tuple(shape[:-3]) + tuple(sp.sympify(x) for x in pixel_shuffle_shape(
            c, h, w, r, inverse=self.inverse))
        return self._leaf(name, shape, out, pixel_shuffle_derivation(self.inverse),
                          validity=validity)


class PixelShuffle(_PixelShuffle):
    """``torch.nn.PixelShuffle(upscale_factor)``: ``(B, C r^2, H, W) -> (B, C, H r, W r)``.

    >>> PixelShuffle(2).cost(("B", 8, "H", "W")).output_shape
    (B, 2, 2*H, 2*W)
    """


class PixelUnshuffle(_PixelShuffle):
    """``torch.nn.PixelUnshuffle(downscale_factor)``: ``(B, C, H r, W r) -> (B, C r^2, H, W)``.

    >>> PixelUnshuffle(2).cost((1, 2, 4, 6)).output_shape
    (1, 8, 2, 3)
    """

    inverse = True
    factor_name = "downscale_factor"


class Upsample(Layer):
    """``torch.nn.Upsample(size=None, scale_factor=None, mode="nearest")`` on ``(B, C,
    *spatial)``: per output element nearest 0, linear 3, bilinear 7, bicubic 31, trilinear
    15 (a weighted sum of the 2^d or 16 neighbours; ``symflops.formulas.INTERPOLATE_RATES``).

    >>> Upsample(scale_factor=2, mode="bilinear").cost(("B", "C", "H", "W")).flops
    28*B*C*H*W
    """

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        if mode not in INTERPOLATE_RATES:
            raise SymflopsError("unknown mode", layer="Upsample", values={"mode": mode},
                                fix="use one of " + ", ".join(INTERPOLATE_RATES))
        if (size is None) == (scale_factor is None):
            raise SymflopsError("give exactly one of size and scale_factor", layer="Upsample",
                                values={"size": size, "scale_factor": scale_factor},
                                fix="pass size=(H_out, W_out) or scale_factor=2")
        self.mode = mode
        self.size = None if size is None else tuple(
            to_size(v, "Upsample", "size")
            for v in (size if isinstance(size, (tuple, list)) else (size,)))
        self.scale_factor = None if scale_factor is None else tuple(
            _exact_scale(v) for v in (scale_factor if isinstance(scale_factor, (tuple, list))
                                      else (scale_factor,)))

    def spec(self) -> str:
        what = f"size={fmt(self.size)}" if self.size is not None else \
            f"scale_factor={fmt(self.scale_factor)}"
        return f"Upsample({what}, mode='{self.mode}')"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = INTERPOLATE_DIMS[self.mode] or len(shape) - 2
        if len(shape) != n + 2 or not 1 <= n <= 3:
            raise SymflopsError(f"mode '{self.mode}' expects a {n + 2}-d input (B, C, "
                                f"{n} spatial dims)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix="pass (B, C, *spatial) with as many spatial dims as the "
                                    "mode resizes")
        given = self.size if self.size is not None else self.scale_factor
        assert given is not None
        if len(given) not in (1, n):
            raise SymflopsError(f"needs 1 or {n} values", layer=self.spec(),
                                values={"input_shape": shape}, fix=f"pass 1 or {n} values")
        given = given * n if len(given) == 1 else given
        if self.size is not None:
            outs = tuple(given)
        else:
            outs = tuple(sp.sympify(upsample_output_size(s, f))
                         for s, f in zip(shape[2:], given, strict=True))
        validity = positive_output(outs, self.spec(), "scale_factor", shape)
        out = tuple(shape[:2]) + outs
        return self._leaf(name, shape, out, interpolate_derivation(numel(out), self.mode),
                          validity=validity)


def _exact_scale(value: Any) -> sp.Rational:
    """A scale factor as an exact positive rational: ints, sympy rationals, and floats that
    are a short binary fraction (1.5, 0.25, 2.0), so that floor(size * scale) is exact."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating, sp.Rational)):
        raise SymflopsError("scale_factor must be a number", layer="Upsample",
                            values={"scale_factor": repr(value)}, fix="pass e.g. 2 or 1.5")
    r = sp.Rational(Fraction(float(value)) if isinstance(value, (float, np.floating))
                    else value)
    if r <= 0 or r.q > 1024:
        raise SymflopsError("scale_factor must be positive and exact (a fraction with a "
                            "small power-of-two denominator)", layer="Upsample",
                            values={"scale_factor": value},
                            fix="pass an int or a float like 1.5, or give size= instead")
    return r


class Embedding(Layer):
    """``torch.nn.Embedding(num_embeddings, embedding_dim)``: a lookup, ``V * dim``
    parameters and no arithmetic."""

    def __init__(self, num_embeddings: SizeLike, embedding_dim: SizeLike,
                 padding_idx: int | None = None) -> None:
        self.num_embeddings = to_size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = to_size(embedding_dim, "Embedding", "embedding_dim")

    def spec(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape + (self.embedding_dim,),
                          embedding_derivation(self.num_embeddings, self.embedding_dim))
