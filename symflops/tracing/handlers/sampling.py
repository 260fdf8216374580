"""Grid sampling: ``aten.grid_sampler_2d`` / ``aten.grid_sampler_3d`` (``F.grid_sample``:
spatial transformers, RAFT's and other optical-flow models' warping), counted by
:func:`symflops.formulas.sampling.grid_sample_derivation`: coordinates and weights per grid
location, the taps' weighted sum per location and channel; all of it ``elementwise``, so 0
under the torch and macs conventions (FlopCounterMode has no formula for grid_sampler)."""

from __future__ import annotations

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.formulas.sampling import MODE_CODES, PADDING_CODES
from symflops.tracing.handlers._common import aten, one
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []


@register(aten.grid_sampler_2d, aten.grid_sampler_3d, aten._grid_sampler_2d_cpu_fallback)
def _grid_sampler(call: OpCall) -> list[Part]:
    """``grid_sampler_2d/3d(input, grid, interpolation_mode, padding_mode, align_corners)``:
    input ``(N, C, *spatial_in)``, grid ``(N, *spatial_out, d)``."""
    x, grid = call.args[0], call.args[1]
    mode, padding = call.arg(2, "interpolation_mode"), call.arg(3, "padding_mode")
    align = bool(call.arg(4, "align_corners"))
    if mode not in MODE_CODES or padding not in PADDING_CODES:
        raise SymflopsError("unknown grid_sampler mode", layer=f"aten.{call.name}",
                            values={"interpolation_mode": mode, "padding_mode": padding},
                            fix="sample with bilinear, nearest or bicubic and zeros, border "
                                "or reflection padding, or report this model")
    dims = x.ndim - 2
    return one(formulas.sampling.grid_sample_derivation(
        grid.numel / grid.shape[-1], x.shape[1], dims, MODE_CODES[mode], PADDING_CODES[padding],
        align))
