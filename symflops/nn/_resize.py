"""Resizing layers (:mod:`symflops.formulas.resize`): pixel shuffle and unshuffle (data
movement) and Upsample.

>>> PixelShuffle(2).cost((1, 8, 3, 3)).output_shape
(1, 2, 6, 6)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.resize import (
    INTERPOLATE_DIMS,
    INTERPOLATE_RATES,
    channel_shuffle_derivation,
    interpolate_derivation,
    pixel_shuffle_derivation,
    pixel_shuffle_shape,
    upsample_output_size,
)
from symflops.nn._base import (
    FACTOR_R,
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    fmt,
    numel,
    positive_output,
    to_size,
)
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
    no_grad,
)
from symflops.symbols import B, C, H, W, groups

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle", "Upsample"]


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

    example = Example(
        "PixelShuffle(r)", lambda: PixelShuffle(FACTOR_R), (B, C * FACTOR_R**2, H, W),
        "data movement: (C r^2, H, W) -> (C, H r, W r)")


class PixelUnshuffle(_PixelShuffle):
    """``torch.nn.PixelUnshuffle(downscale_factor)``: ``(B, C, H r, W r) -> (B, C r^2, H, W)``.

    >>> PixelUnshuffle(2).cost((1, 2, 4, 6)).output_shape
    (1, 8, 2, 3)
    """

    example = Example(
        "PixelUnshuffle(r)", lambda: PixelUnshuffle(FACTOR_R), (B, C, H * FACTOR_R, W * FACTOR_R),
        "data movement: (C, H r, W r) -> (C r^2, H, W)")

    inverse = True
    factor_name = "downscale_factor"


class ChannelShuffle(Layer):
    """``torch.nn.ChannelShuffle(groups)`` on ``(B, C, *)``: the ``C`` channels regrouped
    as ShuffleNet does (``(g, C/g)`` transposed to ``(C/g, g)``); data movement, no
    arithmetic. ``C`` must be divisible by ``groups``.

    >>> ChannelShuffle(3).cost(("B", 6, "H", "W")).output_shape
    (B, 6, H, W)
    """

    example = Example(
        "ChannelShuffle(g)", lambda: ChannelShuffle(groups), (B, groups * C, H, W),
        "data movement: channel i g + j <- channel j C + i")

    def __init__(self, groups: SizeLike) -> None:
        self.groups = to_size(groups, "ChannelShuffle", "groups")

    def spec(self) -> str:
        return f"ChannelShuffle({self.groups})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) < 3:
            raise SymflopsError("expects (B, C, *) with at least one dim after C",
                                layer=self.spec(), values={"input_shape": shape},
                                fix="pass a shape like (B, C, H, W)")
        c, g = shape[1], self.groups
        if c.is_number and g.is_number and c % g != 0:
            raise SymflopsError(f"C must be divisible by groups={g}", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass an input whose C is a multiple of {g}")
        return self._leaf(name, shape, shape, channel_shuffle_derivation(g),
                          validity=divides_condition(g, c))

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """The gradient is the inverse shuffle of the output gradient (a channel shuffle
        into ``C/g`` groups): data movement; nothing saved."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        inverse = channel_shuffle_derivation(shape[1] / self.groups)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_input": inverse},
                         saved=[], out=tr.new(x.numel, True), trainable=False)


class Upsample(Layer):
    """``torch.nn.Upsample(size=None, scale_factor=None, mode="nearest")`` on ``(B, C,
    *spatial)``: per output element nearest 0, linear 3, bilinear 7, bicubic 31, trilinear
    15 (a weighted sum of the 2^d or 16 neighbours; ``symflops.formulas.resize.INTERPOLATE_RATES``).

    >>> Upsample(scale_factor=2, mode="bilinear").cost(("B", "C", "H", "W")).flops
    28*B*C*H*W
    """

    example = Example(
        "Upsample(scale_factor=2, mode='bilinear')",
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
