"""Resizing and reductions: upsample/interpolate and their gradients, pixel shuffle and
unshuffle (data movement), reductions (``sum``, ``mean``, ``amax``, ...)."""

from __future__ import annotations

from symflops import formulas
from symflops.tracing.handlers._common import (
    aten,
    one,
)
from symflops.tracing.registry import OpCall, Part, TShape, register

__all__: list[str] = []


@register(aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d,
          aten._upsample_nearest_exact1d, aten._upsample_nearest_exact2d,
          aten._upsample_nearest_exact3d, aten.upsample_linear1d, aten.upsample_bilinear2d,
          aten.upsample_trilinear3d, aten.upsample_bicubic2d, aten._upsample_bilinear2d_aa,
          aten._upsample_bicubic2d_aa)
def _upsample(call: OpCall) -> list[Part]:
    """Interpolate/upsample: per output, a weighted sum of the neighbours (0 for nearest)."""
    name = call.name.lstrip("_")
    mode = ("nearest" if "nearest" in name else "bicubic" if "bicubic" in name else
            "trilinear" if "trilinear" in name else "bilinear" if "bilinear" in name else
            "linear")
    return one(formulas.resize.interpolate_derivation(call.out[0].numel, mode))


@register(aten.upsample_nearest1d_backward, aten.upsample_nearest2d_backward,
          aten.upsample_nearest3d_backward, aten._upsample_nearest_exact2d_backward,
          aten.upsample_linear1d_backward, aten.upsample_bilinear2d_backward,
          aten.upsample_trilinear3d_backward, aten.upsample_bicubic2d_backward)
def _upsample_backward(call: OpCall) -> list[Part]:
    """Resize gradients: each output gradient spread over the neighbours it came from."""
    name = call.name
    mode = ("nearest" if "nearest" in name else "bicubic" if "bicubic" in name else
            "trilinear" if "trilinear" in name else "bilinear" if "bilinear" in name else
            "linear")
    return one(formulas.resize.interpolate_grad_derivation(call.args[0].numel, mode))


@register(aten.pixel_shuffle)
def _pixel_shuffle(call: OpCall) -> list[Part]:
    """Pixel shuffle: a reshape and a permute, no arithmetic."""
    return one(formulas.resize.pixel_shuffle_derivation())


@register(aten.pixel_unshuffle)
def _pixel_unshuffle(call: OpCall) -> list[Part]:
    """Pixel unshuffle: a reshape and a permute, no arithmetic."""
    return one(formulas.resize.pixel_shuffle_derivation(inverse=True))


@register(aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.prod,
          aten.logsumexp, aten.var, aten.std, aten.var_mean, aten.std_mean, aten.norm,
          aten.linalg_vector_norm, aten.argmax, aten.argmin, aten.any, aten.all, aten.cumsum)
def _reduce(call: OpCall) -> list[Part]:
    """Reductions: :func:`symflops.formulas.resize.reduction_derivation`."""
    x = call.args[0]
    if not isinstance(x, TShape):
        return []
    return one(formulas.resize.reduction_derivation(call.name, x.numel,
                                              call.out[0].numel if call.out else 1))


@register(aten.channel_shuffle, aten.native_channel_shuffle)
def _channel_shuffle(call: OpCall) -> list[Part]:
    """Channel shuffle: a view, a transpose and a copy, no arithmetic (its gradient is
    another channel shuffle)."""
    return one(formulas.resize.channel_shuffle_derivation(call.arg(1, "groups")))


@register(aten.col2im)
def _col2im(call: OpCall) -> list[Part]:
    """``nn.Fold``: the overlapping blocks' values summed
    (:func:`symflops.formulas.resize.fold_derivation`)."""
    x = call.args[0].shape
    out = call.out[0].shape
    size, kernel, dilation, padding, stride = (list(call.arg(i, n)) for i, n in enumerate(
        ("output_size", "kernel_size", "dilation", "padding", "stride"), start=1))
    batch = x[0] if len(x) == 3 else 1
    channels = out[-3]
    return one(formulas.resize.fold_derivation(
        channels, tuple(out[-2:]), tuple(kernel), tuple(dilation), tuple(padding),
        tuple(stride), batch))
