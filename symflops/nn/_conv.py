"""Convolutions, direct and transposed, on ``(B, C, *spatial)``; their counts come from
:func:`symflops.formulas.conv.conv_derivation` and ``conv_transpose_derivation``.

>>> Conv1d(4, 8, 3).cost(("B", 4, "T")).output_shape
(B, 8, T - 2)
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops import symbols as S
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div, prod
from symflops.formulas.conv import (
    conv_derivation,
    conv_output_size,
    conv_transpose_derivation,
    conv_transpose_output_size,
)
from symflops.nn._base import (
    PAD_P,
    STRIDE_S,
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    fmt,
    numel,
    positive_output,
    size_tuple,
    to_size,
)
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
)
from symflops.symbols import (
    B,
    C_in,
    C_out,
    D,
    H,
    K,
    T,
    W,
    groups,
)

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]


class _ConvNd(Layer):
    """A direct (or, in subclasses, transposed) n-d convolution, as ``torch.nn.Conv*d``."""

    n = 2
    transposed = False

    def __init__(self, in_channels: SizeLike, out_channels: SizeLike, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: SizeLike = 1,
                 bias: bool = True, padding_mode: str = "zeros", output_padding: Any = 0) -> None:
        name = type(self).__name__
        self.in_channels = to_size(in_channels, name, "in_channels")
        self.out_channels = to_size(out_channels, name, "out_channels")
        self.kernel_size = size_tuple(kernel_size, self.n, name, "kernel_size")
        self.stride = size_tuple(stride, self.n, name, "stride")
        self.dilation = size_tuple(dilation, self.n, name, "dilation")
        self.groups = to_size(groups, name, "groups")
        self.bias = bool(bias)
        self.padding_mode = padding_mode
        self.output_padding = size_tuple(output_padding, self.n, name, "output_padding",
                                         zero_ok=True)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise SymflopsError("unknown padding_mode", layer=name,
                                values={"padding_mode": padding_mode},
                                fix="use zeros, reflect, replicate or circular")
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self.transposed:
                raise SymflopsError("padding must be 'same', 'valid' or sizes", layer=name,
                                    values={"padding": padding},
                                    fix="use padding='same'/'valid' (direct convs only) or ints")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise SymflopsError("padding='same' needs stride 1 (as in torch)", layer=name,
                                    values={"stride": fmt(self.stride)},
                                    fix="use stride=1 or explicit padding")
            self.padding_str: str | None = padding
            self.padding = tuple(sp.Integer(0) for _ in range(self.n))
        else:
            self.padding_str = None
            self.padding = size_tuple(padding, self.n, name, "padding", zero_ok=True)
        for ch, arg in ((self.in_channels, "in_channels"), (self.out_channels, "out_channels")):
            if ch.is_number and self.groups.is_number and ch % self.groups != 0:
                raise SymflopsError(f"groups must divide {arg}", layer=name,
                                    values={arg: ch, "groups": self.groups},
                                    fix=f"choose groups among the divisors of {ch}")
        if self.transposed:
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
                if op.is_number and s.is_number and d.is_number and op >= max(s, d):
                    raise SymflopsError("output_padding must be smaller than stride or dilation",
                                        layer=name, values={"output_padding": op, "stride": s,
                                                            "dilation": d},
                                        fix="use output_padding < max(stride, dilation)")

    def spec(self) -> str:
        parts = [str(self.in_channels), str(self.out_channels),
                 f"kernel_size={fmt(self.kernel_size)}"]
        for arg, default in (("stride", 1), ("dilation", 1)):
            v = getattr(self, arg)
            if any(x != default for x in v):
                parts.append(f"{arg}={fmt(v)}")
        if self.padding_str:
            parts.append(f"padding='{self.padding_str}'")
        elif any(p != 0 for p in self.padding):
            parts.append(f"padding={fmt(self.padding)}")
        if self.transposed and any(p != 0 for p in self.output_padding):
            parts.append(f"output_padding={fmt(self.output_padding)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _resolved_padding(self) -> Shape:
        if self.padding_str == "same":
            # torch pads dilation*(k-1) in total; the output keeps the input size
            return tuple(d * (k - 1) / 2
                         for k, d in zip(self.kernel_size, self.dilation, strict=True))
        return self.padding

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        layout = "(B, C, " + ", ".join(str(s) for s in S.spatial_in(n)) + ")"
        self._check_rank(shape, (n + 1, n + 2), layout)
        batched = len(shape) == n + 2
        batch = shape[0] if batched else sp.Integer(1)
        channels, spatial = shape[-n - 1], shape[-n:]
        self._check_channels(shape, channels, self.in_channels)
        if self.transposed:
            return self._cost_transposed(name, shape, batch, batched, spatial)
        pad = self._resolved_padding()
        if self.padding_str == "same":
            out_sp = tuple(spatial)
        else:
            out_sp = tuple(sp.sympify(conv_output_size(s, k, st, p, d))
                           for s, k, st, p, d in zip(spatial, self.kernel_size, self.stride,
                                                     pad, self.dilation, strict=True))
        validity = positive_output(out_sp, self.spec(), "kernel (with dilation)", shape) + \
            divides_condition(self.groups, self.in_channels) + \
            divides_condition(self.groups, self.out_channels)
        out_shape = ((batch,) if batched else ()) + (self.out_channels,) + out_sp
        d = conv_derivation(batch, self.in_channels, self.out_channels, self.kernel_size, out_sp,
                            self.groups, self.bias)
        return self._leaf(name, shape, out_shape, d, validity=validity)

    def _cost_transposed(self, name: str, shape: Shape, batch: sp.Expr, batched: bool,
                         spatial: Shape) -> Cost:
        out_sp = tuple(sp.sympify(conv_transpose_output_size(s, k, st, p, op, d))
                       for s, k, st, p, op, d in zip(spatial, self.kernel_size, self.stride,
                                                     self.padding, self.output_padding,
                                                     self.dilation, strict=True))
        validity = positive_output(out_sp, self.spec(), "padding", shape) + \
            divides_condition(self.groups, self.in_channels) + \
            divides_condition(self.groups, self.out_channels)
        out_shape = ((batch,) if batched else ()) + (self.out_channels,) + out_sp
        params = self.in_channels * exact_div(self.out_channels, self.groups) * \
            prod(self.kernel_size) + (self.out_channels if self.bias else 0)
        try:
            d = conv_transpose_derivation(batch, self.in_channels, self.out_channels,
                                          self.kernel_size, spatial, out_sp, self.stride,
                                          self.dilation, self.groups, self.bias, params=params)
        except SymflopsError as e:  # symbolic stride and dilation that do not divide
            raise SymflopsError(e.message, layer=self.spec(), values=e.values,
                                fix=e.fix, options=e.options) from None
        return self._leaf(name, shape, out_shape, d, validity=validity)

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """``convolution_backward``: the input's gradient (when it needs one), the weight's
        and the bias's (unless frozen), each as the tracer counts that op
        (:func:`symflops.formulas.conv.conv_grad_derivations`, and for a transposed
        convolution ``conv_transpose_grad_derivations``); the op keeps its input for
        the weight's gradient."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        n = self.n
        batch = shape[0] if len(shape) == n + 2 else sp.Integer(1)
        backward = F.conv.conv_transpose_grad_derivations if self.transposed else \
            F.conv.conv_grad_derivations
        grads = backward(batch, self.in_channels, self.out_channels, self.kernel_size,
                         shape[-n:], fwd.output_shape[-n:], self.stride, self.dilation,
                         self.groups, (x.grad, trainable, trainable and self.bias))
        saved = [tr.saved(path, "input", x)] if trainable else []
        out = tr.new(numel(fwd.output_shape), x.grad or trainable)
        weight = (self.in_channels, F.arith.exact_div(self.out_channels, self.groups)) \
            if self.transposed else (self.out_channels, F.arith.exact_div(self.in_channels,
                                                                    self.groups))
        weights = [(*weight, *self.kernel_size)] + \
            ([(self.out_channels,)] if self.bias else [])
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                         trainable=trainable, weights=weights)


class Conv1d(_ConvNd):
    """``torch.nn.Conv1d`` on ``(B, C_in, T)``."""

    example = Example(
        "Conv1d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: Conv1d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups), (B, C_in, T))

    n = 1


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d`` on ``(B, C_in, H, W)``.

    >>> Conv2d(3, 64, 7, stride=2, padding=3).cost(("B", 3, 224, 224)).output_shape
    (B, 64, 112, 112)
    """

    example = Example(
        "Conv2d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: Conv2d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups),
        (B, C_in, H, W))

    n = 2


class Conv3d(_ConvNd):
    """``torch.nn.Conv3d`` on ``(B, C_in, D, H, W)``."""

    example = Example(
        "Conv3d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: Conv3d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups),
        (B, C_in, D, H, W))

    n = 3


class _ConvTransposeNd(_ConvNd):
    """``torch.nn.ConvTranspose*d`` (torch's argument order)."""

    transposed = True

    def __init__(self, in_channels: SizeLike, out_channels: SizeLike, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                 groups: SizeLike = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding)


class ConvTranspose1d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose1d``."""

    example = Example(
        "ConvTranspose1d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: ConvTranspose1d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups),
        (B, C_in, T))

    n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose2d`` (torch's argument order: ..., output_padding, groups,
    bias, dilation)."""

    example = Example(
        "ConvTranspose2d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: ConvTranspose2d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups),
        (B, C_in, H, W))

    n = 2


class ConvTranspose3d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose3d``."""

    example = Example(
        "ConvTranspose3d(C_in, C_out, K, stride=s, padding=p, groups=g)",
        lambda: ConvTranspose3d(C_in, C_out, K, stride=STRIDE_S, padding=PAD_P, groups=groups),
        (B, C_in, D, H, W))

    n = 3
