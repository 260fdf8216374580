"""Pooling layers (:mod:`symflops.formulas.pool`): max, average and adaptive pools.

>>> MaxPool2d(2).cost((1, 3, 8, 8)).output_shape
(1, 3, 4, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from symflops import formulas as F
from symflops import symbols as S
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.pool import adaptive_pool_derivation, pool_derivation, pool_output_size
from symflops.nn._base import (
    PAD_P,
    STRIDE_S,
    Example,
    Layer,
    Shape,
    fmt,
    numel,
    positive_output,
    size_tuple,
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
    H,
    K,
    T,
    W,
)

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


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

    example = Example(
        "MaxPool1d(K, stride=s, padding=p)", lambda: MaxPool1d(K, stride=STRIDE_S, padding=PAD_P),
        (B, C, T))

    n = 1


class MaxPool2d(_PoolNd):
    """``torch.nn.MaxPool2d``: ``K^2 - 1`` compares per output."""

    example = Example(
        "MaxPool2d(K, stride=s, padding=p)", lambda: MaxPool2d(K, stride=STRIDE_S, padding=PAD_P),
        (B, C, H, W))

    n = 2



class AvgPool1d(_PoolNd):
    """``torch.nn.AvgPool1d``."""

    example = Example(
        "AvgPool1d(K, stride=s, padding=p)", lambda: AvgPool1d(K, stride=STRIDE_S, padding=PAD_P),
        (B, C, T))

    n = 1
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class AvgPool2d(_PoolNd):
    """``torch.nn.AvgPool2d``: ``K^2`` per output (adds and one divide)."""

    example = Example(
        "AvgPool2d(K, stride=s, padding=p)", lambda: AvgPool2d(K, stride=STRIDE_S, padding=PAD_P),
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

    example = Example("AdaptiveAvgPool1d(1)", lambda: AdaptiveAvgPool1d(1), (B, C, T))

    n = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool2d``; ``(1, 1)`` costs ``H W`` per plane."""

    example = Example("AdaptiveAvgPool2d(1)", lambda: AdaptiveAvgPool2d(1), (B, C, H, W))

    n = 2



class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveMaxPool2d``."""

    example = Example("AdaptiveMaxPool2d(1)", lambda: AdaptiveMaxPool2d(1), (B, C, H, W))

    n = 2
    kind = "max"
