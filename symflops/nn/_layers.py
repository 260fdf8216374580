"""Fully connected, normalization, pooling, activation and data-movement layers; each
layer checks its arguments and input shape, then calls its family's derivation in
:mod:`symflops.formulas`.

>>> Linear(8, 4).cost(("B", 8)).flops
64*B
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from symflops import formulas as F
from symflops import symbols as S
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.embedding import embedding_derivation
from symflops.formulas.linear import linear_derivation
from symflops.formulas.norm import (
    batch_norm_derivation,
    group_norm_derivation,
    layer_norm_derivation,
    rms_norm_derivation,
)
from symflops.formulas.pointwise import (
    ACTIVATION_RATES,
    activation_derivation,
    glu_derivation,
    softmax_derivation,
)
from symflops.formulas.pool import adaptive_pool_derivation, pool_derivation, pool_output_size
from symflops.formulas.resize import (
    INTERPOLATE_DIMS,
    INTERPOLATE_RATES,
    interpolate_derivation,
    pixel_shuffle_derivation,
    pixel_shuffle_shape,
    upsample_output_size,
)
from symflops.nn._base import (
    FACTOR_R,
    PAD_P,
    STRIDE_S,
    Example,
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
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
    no_grad,
)
from symflops.symbols import (
    B,
    C,
    D,
    H,
    I,
    K,
    M,
    N,
    O,
    T,
    V,
    W,
    dim,
    groups,
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

    example = Example("Linear(I, O)", lambda: Linear(I, O), (M, I),
        "M rows: every leading dimension of the input multiplied together")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        rows = numel(shape[:-1])
        grads = F.linear.linear_grad_derivations(rows, self.in_features, self.out_features,
                                              self.bias, input_grad=x.grad,
                                              weight_grad=trainable)
        # AddmmBackward keeps the input for the weight's gradient (the weight, for the
        # input's, is a parameter)
        saved = [tr.saved(path, "input", x)] if trainable else []
        out = tr.new(numel(fwd.output_shape), x.grad or trainable)
        weights = [(self.out_features, self.in_features)] + \
            ([(self.out_features,)] if self.bias else [])
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                         trainable=trainable, weights=weights)


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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        """In training a BatchNorm normalizes with the batch statistics, updates its running
        statistics (7 per channel) and counts the batch (``num_batches_tracked += 1``)."""
        self._check_rank(shape, self.ranks, self.layout)
        self._check_channels(shape, shape[1], self.num_features)
        c = self.num_features
        d = F.norm.batch_norm_derivation(numel(shape), c, training=True, affine=self.affine)
        fwd = Cost("forward", self.layer_type(), spec=self.spec(), input_shape=shape,
                   output_shape=shape, children=[
                       self._leaf("normalize", shape, shape, d),
                       Cost.from_derivation("running_stats", "BatchNormStats",
                                            F.norm.running_stats_derivation(c),
                                            spec="running statistics"),
                       Cost.from_derivation("num_batches_tracked", "Add",
                                            F.pointwise.elementwise_derivation(
                                                1, 1, "num_batches_tracked += 1: one add"),
                                            spec="num_batches_tracked")])
        return _norm(self, shape, name, path, x, tr, affine=self.affine, stats=[c, c],
                     grads=lambda m: F.norm.batch_norm_grad_derivations(
                         numel(shape), c, training=True, weight=self.affine, output_mask=m),
                     fwd=fwd)


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on ``(B, C)`` or ``(B, C, T)``; inference by default."""

    example = Example("BatchNorm1d(C)", lambda: BatchNorm1d(C), (B, C, T),
        "inference (folded); training=True counts the batch statistics")

    ranks = (2, 3)
    layout = "(B, C) or (B, C, T)"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d``; inference (folded, ``2 C H W`` per image) by default,
    ``training=True`` counts the batch statistics."""

    example = Example("BatchNorm2d(C)", lambda: BatchNorm2d(C), (B, C, H, W),
        "inference (folded); training=True counts the batch statistics")

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """``torch.nn.BatchNorm3d``."""

    example = Example("BatchNorm3d(C)", lambda: BatchNorm3d(C), (B, C, D, H, W),
        "inference (folded); training=True counts the batch statistics")

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

    example = Example("LayerNorm(dim)", lambda: LayerNorm(dim), (M, dim))

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        k = len(self.normalized_shape)
        rows, n = numel(shape[:-k]), numel(self.normalized_shape)
        affine = self.elementwise_affine
        # native_layer_norm keeps the input, the per-row mean and rstd (and its parameters)
        return _norm(self, shape, name, path, x, tr, affine=affine, stats=[rows, rows],
                     grads=lambda m: F.norm.layer_norm_grad_derivations(
                         rows, n, weight=affine, bias=affine and self.bias, output_mask=m))


class GroupNorm(Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels)`` on ``(B, C, *)``."""

    example = Example("GroupNorm(g, C)", lambda: GroupNorm(groups, C), (B, C, H, W))

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        batch, groups = shape[0], self.num_groups
        # native_group_norm keeps the input, the per-group mean and rstd
        return _norm(self, shape, name, path, x, tr, affine=self.affine,
                     stats=[batch * groups, batch * groups],
                     grads=lambda m: F.norm.group_norm_grad_derivations(
                         batch, groups, self.num_channels, numel(shape[2:]),
                         weight=self.affine, output_mask=m))


class RMSNorm(Layer):
    """``torch.nn.RMSNorm`` over the trailing ``normalized_shape`` (weight only)."""

    example = Example("RMSNorm(dim)", lambda: RMSNorm(dim), (M, dim))

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                  tr: Train) -> Step:
        k = len(self.normalized_shape)
        rows, n = numel(shape[:-k]), numel(self.normalized_shape)
        affine = self.elementwise_affine
        # _fused_rms_norm keeps the input and the per-row rstd
        return _norm(self, shape, name, path, x, tr, affine=affine, stats=[rows],
                     grads=lambda m: F.norm.rms_norm_grad_derivations(
                         rows, n, weight=affine, output_mask=(m[0], m[1])))


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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """Max pooling (``max_pool2d_with_indices``; a 1-d pool runs it on ``(C, 1, T)``)
        keeps its input and the argmax indices (int64); its gradient adds each output
        gradient at its argmax. Average pooling (``avg_pool2d``, the same for 1-d) keeps
        its input; its gradient divides each output gradient and adds it into its window
        (:func:`symflops.formulas.pool.avg_pool_grad_derivation`)."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        outs = numel(fwd.output_shape)
        if self.kind == "max":
            grads = {"grad_input": F.pool.scatter_grad_derivation(outs, "max pooling")}
            saved = [tr.saved(path, "input", x), tr.saved(path, "indices", outs, "index")]
            return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                             out=tr.new(outs, True), trainable=False)
        n, window = self.n, F.arith.prod(self.kernel_size)
        if any(p != 0 for p in self.padding) or self.ceil_mode:
            sizes = (*self.kernel_size, *self.stride, *self.padding)
            if not all(v.is_number for v in sizes):
                raise SymflopsError("mode='train' of a padded or ceil_mode average pooling needs "
                                    "int kernel, stride and padding", layer=self.spec(),
                                    fix="pass ints, or no padding and ceil_mode=False")
            d = F.pool.avg_pool_grad_derivation(
                outs, window, planes=numel(shape[:-n]), in_spatial=shape[-n:],
                out_spatial=fwd.output_shape[-n:], kernel=[int(k) for k in self.kernel_size],
                stride=[int(k) for k in self.stride], padding=[int(k) for k in self.padding])
        else:
            d = F.pool.avg_pool_grad_derivation(outs, window)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": d},
                         saved=[tr.saved(path, "input", x)], out=tr.new(outs, True),
                         trainable=False)


class MaxPool1d(_PoolNd):
    """``torch.nn.MaxPool1d``."""

    example = Example("MaxPool1d(K, stride=s, padding=p)", lambda: MaxPool1d(K, stride=STRIDE_S,
                                                                 padding=PAD_P),
        (B, C, T))

    n = 1


class MaxPool2d(_PoolNd):
    """``torch.nn.MaxPool2d``: ``K^2 - 1`` compares per output."""

    example = Example("MaxPool2d(K, stride=s, padding=p)", lambda: MaxPool2d(K, stride=STRIDE_S,
                                                                 padding=PAD_P),
        (B, C, H, W))

    n = 2



class AvgPool1d(_PoolNd):
    """``torch.nn.AvgPool1d``."""

    example = Example("AvgPool1d(K, stride=s, padding=p)", lambda: AvgPool1d(K, stride=STRIDE_S,
                                                                 padding=PAD_P),
        (B, C, T))

    n = 1
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class AvgPool2d(_PoolNd):
    """``torch.nn.AvgPool2d``: ``K^2`` per output (adds and one divide)."""

    example = Example("AvgPool2d(K, stride=s, padding=p)", lambda: AvgPool2d(K, stride=STRIDE_S,
                                                                 padding=PAD_P),
        (B, C, H, W))

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """Average: ``_adaptive_avg_pool2d`` (a 1-d pool runs it on ``(C, 1, T)``) keeps its
        input; its gradient spreads each output gradient over its window. A global average
        pool (output 1) is torch's ``mean`` over the plane (the same count, as a
        reduction): it keeps nothing, and its gradient divides the expanded output
        gradient (one divide per input element). Max: ``adaptive_max_pool2d`` keeps its
        input and the argmax indices (int64), at every output size; its gradient adds
        each output gradient at its argmax."""
        fwd = self._cost(shape, name)
        n, outs = self.n, numel(fwd.output_shape)
        if self.kind == "max":
            if not x.grad:
                return no_grad(self, shape, name, tr, fwd)
            grads = {"grad_input": F.pool.scatter_grad_derivation(outs, "max pooling")}
            saved = [tr.saved(path, "input", x), tr.saved(path, "indices", outs, "index")]
            return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                             out=tr.new(outs, True), trainable=False)
        if all(o == 1 for o in self.output_size):
            mean = F.resize.reduction_derivation("mean", x.numel, numel(shape[:-n]))
            fwd = Cost.from_derivation(name, self.layer_type(), mean, spec=self.spec(),
                                       input_shape=shape, output_shape=fwd.output_shape)
            if not x.grad:
                return no_grad(self, shape, name, tr, fwd)
            grad = F.pointwise.elementwise_derivation(x.numel, 1,
                                                      "mean's gradient: the output gradient "
                                                        "expanded and divided by the count")
            return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": grad}, saved=[],
                             out=tr.new(outs, True), trainable=False)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        d = F.pool.adaptive_avg_pool_grad_derivation(numel(shape[:-n]), shape[-n:],
                                                list(self.output_size))
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": d},
                         saved=[tr.saved(path, "input", x)], out=tr.new(outs, True),
                         trainable=False)


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool1d``."""

    example = Example("AdaptiveAvgPool1d(1)", lambda: AdaptiveAvgPool1d(1),
        (B, C, T))

    n = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool2d``; ``(1, 1)`` costs ``H W`` per plane."""

    example = Example("AdaptiveAvgPool2d(1)", lambda: AdaptiveAvgPool2d(1),
        (B, C, H, W))

    n = 2



class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveMaxPool2d``."""

    example = Example("AdaptiveMaxPool2d(1)", lambda: AdaptiveMaxPool2d(1),
        (B, C, H, W))

    n = 2
    kind = "max"


# ----------------------------------------------------------------------------- pointwise
#: what each activation's autograd node keeps: its input or its output
ACTIVATION_SAVES = {"relu": "output", "sigmoid": "output", "tanh": "output",
                    "relu6": "input", "leaky_relu": "input", "silu": "input", "gelu": "input",
                    "gelu_tanh": "input", "hardswish": "input", "hardsigmoid": "input"}


class _Activation(Layer):
    activation = "relu"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape, activation_derivation(self.activation, numel(shape)))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        out = tr.new(x.numel, True)
        keeps = ACTIVATION_SAVES[self.activation]
        saved = [tr.saved(path, keeps, x if keeps == "input" else out)]
        grads = {"grad_input": F.pointwise.activation_grad_derivation(self.activation, x.numel)}
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                         trainable=False)


class ReLU(_Activation):
    """``torch.nn.ReLU``: one compare per element."""

    example = Example("ReLU()", lambda: ReLU(), (B, C, H, W))

    activation = "relu"


class ReLU6(_Activation):
    """``torch.nn.ReLU6``: two compares per element."""

    example = Example("ReLU6()", lambda: ReLU6(), (B, C, H, W))

    activation = "relu6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU``: compare and multiply."""

    example = Example("LeakyReLU()", lambda: LeakyReLU(), (B, C, H, W))

    activation = "leaky_relu"


class GELU(_Activation):
    """``torch.nn.GELU(approximate="none" | "tanh")``."""

    example = Example("GELU()", lambda: GELU(), (B, C, H, W),
        "GELU(approximate='tanh') costs "
        f"{ACTIVATION_RATES['gelu_tanh'][0]} per element")

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise SymflopsError("approximate must be 'none' or 'tanh'", layer="GELU",
                                values={"approximate": approximate},
                                fix="use approximate='none' or 'tanh'")
        self.approximate = approximate
        self.activation = "gelu" if approximate == "none" else "gelu_tanh"

    def spec(self) -> str:
        return "GELU()" if self.approximate == "none" else "GELU(approximate='tanh')"


class SiLU(_Activation):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``."""

    example = Example("SiLU()", lambda: SiLU(), (B, C, H, W))

    activation = "silu"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``."""

    example = Example("Sigmoid()", lambda: Sigmoid(), (B, C, H, W))

    activation = "sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh``."""

    example = Example("Tanh()", lambda: Tanh(), (B, C, H, W))

    activation = "tanh"


class Hardswish(_Activation):
    """``torch.nn.Hardswish``."""

    example = Example("Hardswish()", lambda: Hardswish(), (B, C, H, W))

    activation = "hardswish"


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid``."""

    example = Example("Hardsigmoid()", lambda: Hardsigmoid(), (B, C, H, W))

    activation = "hardsigmoid"


class GLU(Layer):
    """``torch.nn.GLU(dim=-1)``: ``a * sigmoid(b)`` of the two halves of ``dim``; 4 per
    output element (sigmoid 3, multiply 1).

    >>> GLU().cost(("B", "N", 8)).flops
    16*B*N
    """

    example = Example("GLU(dim=-1)", lambda: GLU(-1), (B, N, 2 * dim),
        "a * sigmoid(b) of the two halves a, b of the last dim")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """``aten.glu`` keeps its input; ``glu_backward`` costs 8 per output element
        (:func:`symflops.formulas.pointwise.glu_grad_derivation`)."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        outs = numel(fwd.output_shape)
        return leaf_step(self, shape, name, tr, fwd,
                         grads={"grad_input": F.pointwise.glu_grad_derivation(outs)},
                         saved=[tr.saved(path, "input", x)], out=tr.new(outs, True),
                         trainable=False)


class Softmax(Layer):
    """``torch.nn.Softmax(dim)``: ``5 n - 2`` per row of ``n``."""

    example = Example("Softmax(dim=-1)", lambda: Softmax(-1), (M, N))

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim(dim, "Softmax")

    def spec(self) -> str:
        return f"Softmax(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = shape[dim_index(self.dim, shape, self.spec())]
        return self._leaf(name, shape, shape, softmax_derivation(numel(shape) / n, n))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                 tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        n = shape[self.dim % len(shape)]
        out = tr.new(x.numel, True)
        grads = {"grad_input": F.pointwise.softmax_grad_derivation(x.numel / n, n)}
        return leaf_step(self, shape, name, tr, fwd, grads=grads,
                         saved=[tr.saved(path, "output", out)], out=out, trainable=False)


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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """A view: no arithmetic, the output is the input's storage."""
        return Step(self._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


class Dropout(_Free):
    """``torch.nn.Dropout``: free at inference.

    In training (``mode="train"``): 3 per element and a 1-byte mask saved for backward.
    """

    example = Example("Dropout(p)", lambda: Dropout(), (B, C, H, W),
        "free at inference")

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        self.p = dropout_probability(p, "Dropout")

    def spec(self) -> str:
        return f"Dropout(p={self.p})"

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                 tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if self.p == 0:  # torch returns the input itself
            return Step(fwd.replace(memory=tr.mem(0, 0, ())), x)
        train_fwd = Cost.from_derivation("forward", "Dropout",
                                         F.pointwise.dropout_derivation(x.numel),
                                         spec=self.spec(), input_shape=shape, output_shape=shape)
        if not x.grad:
            return no_grad(self, shape, name, tr, train_fwd)
        grads = {"grad_input": F.pointwise.dropout_grad_derivation(x.numel)}
        return leaf_step(self, shape, name, tr, train_fwd, grads=grads,
                         saved=[tr.saved(path, "mask", x.numel, "mask")],
                         out=tr.new(x.numel, True), trainable=False)


def dropout_probability(p: Any, layer: str) -> float:
    """A dropout probability: a number in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise SymflopsError("dropout must be a probability in [0, 1]", layer=layer,
                            values={"p": repr(p)}, fix="pass e.g. 0.1")
    return float(p)


class Identity(_Free):
    """``torch.nn.Identity``."""

    example = Example("Identity()", lambda: Identity(), (B, C, H, W))


class Flatten(_Free):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    example = Example("Flatten()", lambda: Flatten(), (B, C, H, W))

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """The gradient of a pixel shuffle is the inverse shuffle of the output gradient
        (``pixel_unshuffle``, and the other way round): data movement, no arithmetic;
        nothing saved."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        inverse = pixel_shuffle_derivation(not self.inverse)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": inverse}, saved=[],
                         out=tr.new(x.numel, True), trainable=False)


class PixelShuffle(_PixelShuffle):
    """``torch.nn.PixelShuffle(upscale_factor)``: ``(B, C r^2, H, W) -> (B, C, H r, W r)``.

    >>> PixelShuffle(2).cost(("B", 8, "H", "W")).output_shape
    (B, 2, 2*H, 2*W)
    """

    example = Example("PixelShuffle(r)", lambda: PixelShuffle(FACTOR_R), (B, C * FACTOR_R**2, H, W),
        "data movement: (C r^2, H, W) -> (C, H r, W r)")


class PixelUnshuffle(_PixelShuffle):
    """``torch.nn.PixelUnshuffle(downscale_factor)``: ``(B, C, H r, W r) -> (B, C r^2, H, W)``.

    >>> PixelUnshuffle(2).cost((1, 2, 4, 6)).output_shape
    (1, 8, 2, 3)
    """

    example = Example("PixelUnshuffle(r)", lambda: PixelUnshuffle(FACTOR_R),
        (B, C, H * FACTOR_R, W * FACTOR_R),
        "data movement: (C, H r, W r) -> (C r^2, H, W)")

    inverse = True
    factor_name = "downscale_factor"


class Upsample(Layer):
    """``torch.nn.Upsample(size=None, scale_factor=None, mode="nearest")`` on ``(B, C,
    *spatial)``: per output element nearest 0, linear 3, bilinear 7, bicubic 31, trilinear
    15 (a weighted sum of the 2^d or 16 neighbours; ``symflops.formulas.resize.INTERPOLATE_RATES``).

    >>> Upsample(scale_factor=2, mode="bilinear").cost(("B", "C", "H", "W")).flops
    28*B*C*H*W
    """

    example = Example("Upsample(scale_factor=2, mode='bilinear')",
        lambda: Upsample(scale_factor=2, mode="bilinear"), (B, C, H, W),
        "mode='nearest' costs 0; size= gives the output size directly")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """``upsample_*_backward`` spreads each output gradient over the input elements it
        came from (:func:`symflops.formulas.resize.interpolate_grad_derivation`); the
        forward keeps nothing (its gradient needs only the sizes)."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        outs = numel(fwd.output_shape)
        grad = F.resize.interpolate_grad_derivation(outs, self.mode)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": grad}, saved=[],
                         out=tr.new(outs, True), trainable=False)


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

    example = Example("Embedding(V, dim)", lambda: Embedding(V, dim), (B, N))

    def __init__(self, num_embeddings: SizeLike, embedding_dim: SizeLike,
                 padding_idx: int | None = None) -> None:
        self.num_embeddings = to_size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = to_size(embedding_dim, "Embedding", "embedding_dim")

    def spec(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape + (self.embedding_dim,),
                          embedding_derivation(self.num_embeddings, self.embedding_dim))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                   tr: Train) -> Step:
        """A lookup: no input gradient (token ids); the weight's gradient adds each token's
        output gradient into its row (``embedding_dense_backward``), from the ids it keeps
        (int64)."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not trainable:
            return no_grad(self, shape, name, tr, fwd)
        d = F.embedding.embedding_grad_derivation(x.numel, self.embedding_dim)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_weight": d},
                         saved=[tr.saved(path, "indices", x, "index")],
                         out=tr.new(numel(fwd.output_shape), True), trainable=True,
                         weights=[(self.num_embeddings, self.embedding_dim)])


def _norm(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train, *,
          affine: bool, stats: Any, grads: Callable[[tuple[bool, bool, bool]],
                                                    dict[str, Derivation]],
          fwd: Cost | None = None) -> Step:
    """A normalization: it saves its input and ``stats`` statistics per stat tensor
    (``stats`` a list of element counts), and computes the gradients ``grads(mask)``."""
    fwd = layer._cost(shape, name) if fwd is None else fwd
    trainable = affine and not tr.is_frozen(path)
    if not (x.grad or trainable):
        return no_grad(layer, shape, name, tr, fwd)
    saved = [tr.saved(path, "input", x)] + [tr.saved(path, "stats", s) for s in stats]
    return leaf_step(layer, shape, name, tr, fwd, grads=grads((x.grad, trainable, trainable)),
                     saved=saved, out=tr.new(x.numel, True), trainable=trainable)
