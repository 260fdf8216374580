"""Sampling an input at given coordinates: ``grid_sample`` (``aten.grid_sampler_2d`` /
``aten.grid_sampler_3d``: spatial transformers, optical flow's warping in RAFT, deformable
sampling).

An input ``(N, C, *spatial_in)`` is read at the ``d = 2`` (or 3) coordinates, in ``[-1, 1]``,
of each of the ``M = N * prod(spatial_out)`` grid locations; the output is ``(N, C,
*spatial_out)``. The coordinates and the interpolation weights are computed once per
location and shared by the ``C`` channels; the weighted sum of the taps is per location and
channel. Hand count, exact convention (torch's CPU kernel, GridSamplerKernel.cpp; rounding a
coordinate down or to the nearest integer is a conversion, and bounds checks and index
arithmetic on the integer tap positions are not counted, as everywhere in symflops):

per location and coordinate (``d`` of them):

* unnormalize ``g`` in ``[-1, 1]`` to a pixel position: ``align_corners=True``: ``(g + 1) *
  (size - 1) / 2``, an add and a multiply by the precomputed scale (2); ``False``: ``(g + 1) *
  size / 2 - 1/2``, one subtract more (3);
* padding: ``zeros`` 0 (a tap outside reads 0: an index check); ``border`` a clip to ``[0,
  size - 1]``, 2 compares; ``reflection`` reflect then clip: subtract the low edge, abs,
  fmod and divide by the span (the flips), the flips' parity compare, both candidate values
  (``extra + low``: 1, ``span - extra + low``: 2, computed for every value as the vectorized
  kernel does), then the clip (2): 10. Bicubic pads each of its 4 tap positions along the
  coordinate (``floor(x) - 1 .. floor(x) + 2``) rather than ``x`` itself: 4 times that;

per location, the interpolation weights:

* ``nearest``: 0 (a rounding);
* ``bilinear``, 2-d: per coordinate the fraction ``t = x - floor(x)`` and ``1 - t`` (2 each),
  then the 4 corner weights, one product each: ``2 * 2 + 4 = 8``; 3-d (trilinear): 2 per
  coordinate, the 4 ``x y`` products, then each times the ``z`` weight (8): ``6 + 4 + 8 = 18``;
* ``bicubic`` (2-d only): per coordinate the fraction ``t`` (1), the 4 cubic-convolution
  coefficients of ``t + 1, t, 1 - t, 2 - t`` (``A = -0.75``): ``((A + 2) x - (A + 3)) x x + 1``
  (5) for the inner two, ``((A x - 5A) x + 8A) x - 4A`` (6) for the outer two, and the 3
  arguments ``t + 1``, ``1 - t``, ``2 - t`` (3): ``1 + 22 + 3 = 26``; 52 per location;

per location and channel, the weighted sum of the taps: ``nearest`` 0 (a lookup);
``bilinear`` 4 multiplies and 3 adds (7), 3-d 8 and 7 (15); ``bicubic`` as torch computes it,
4 cubic interpolations along ``x`` then one along ``y``, 4 multiplies and 3 adds each: 35.

All of it is ``elementwise`` work: 0 under the ``torch`` and ``macs`` conventions, as
FlopCounterMode, which has no formula for grid_sampler, counts it.

>>> grid_sample_work(10, 3, 2, "bilinear", "zeros", False)
{'elementwise': 350}
>>> grid_sample_work(10, 3, 2, "nearest", "border", True)
{'elementwise': 80}
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["SAMPLE_MODES", "SAMPLE_PADDINGS", "grid_sample_rates", "grid_sample_work",
           "grid_sample_derivation"]

#: per mode: (weights per location for 2-d, for 3-d or None, per channel 2-d, 3-d or None)
SAMPLE_MODES: dict[str, tuple[int, int | None, int, int | None]] = {
    "nearest": (0, 0, 0, 0),
    "bilinear": (8, 18, 7, 15),
    "bicubic": (52, None, 35, None),
}
#: per padding mode: operations per location and coordinate
SAMPLE_PADDINGS: dict[str, int] = {"zeros": 0, "border": 2, "reflection": 10}
#: torch's integer codes of grid_sampler's interpolation and padding modes
MODE_CODES = {0: "bilinear", 1: "nearest", 2: "bicubic"}
PADDING_CODES = {0: "zeros", 1: "border", 2: "reflection"}


def grid_sample_rates(dims: int, mode: str, padding: str, align_corners: bool
                      ) -> tuple[int, int]:
    """(operations per location, per location and channel) of a ``dims``-d grid sample.

    >>> grid_sample_rates(2, "bicubic", "reflection", True), grid_sample_rates(3, "bilinear",
    ...                                                                        "zeros", False)
    ((136, 35), (27, 15))
    """
    if dims not in (2, 3):
        raise SymflopsError("grid sampling is 2-d or 3-d", layer="grid_sample",
                            values={"dims": dims}, fix="sample a 4-d or 5-d input")
    if mode not in SAMPLE_MODES:
        raise SymflopsError("unknown grid_sample mode", layer="grid_sample",
                            values={"mode": mode}, fix="use " + ", ".join(SAMPLE_MODES))
    if padding not in SAMPLE_PADDINGS:
        raise SymflopsError("unknown grid_sample padding mode", layer="grid_sample",
                            values={"padding_mode": padding},
                            fix="use " + ", ".join(SAMPLE_PADDINGS))
    w2, w3, c2, c3 = SAMPLE_MODES[mode]
    weights, taps = (w2, c2) if dims == 2 else (w3, c3)
    if weights is None or taps is None:
        raise SymflopsError("bicubic grid sampling is 2-d only (as in torch)",
                            layer="grid_sample", values={"mode": mode, "dims": dims},
                            fix="use bilinear or nearest for a 5-d input")
    taps_padded = 4 if mode == "bicubic" else 1
    per_coordinate = (2 if align_corners else 3) + taps_padded * SAMPLE_PADDINGS[padding]
    return dims * per_coordinate + weights, taps


def grid_sample_work(locations: Size, channels: Size, dims: int, mode: str, padding: str,
                     align_corners: bool) -> Work:
    """Work of sampling ``channels`` channels at ``locations`` grid locations."""
    per_location, per_channel = grid_sample_rates(dims, mode, padding, align_corners)
    return work(elementwise=locations * (per_location + per_channel * channels))


@cache
def _general(dims: int, mode: str, padding: str, align_corners: bool) -> Work:
    return grid_sample_work(sym.M, sym.C, dims, mode, padding, align_corners)


def grid_sample_derivation(locations: Size, channels: Size, dims: int, mode: str,
                           padding: str = "zeros", align_corners: bool = False) -> Derivation:
    """``C = channels`` channels sampled at ``M = locations`` grid locations (``N`` times the
    output's spatial sizes) with ``mode`` and ``padding``: the count in the module docstring.

    >>> d = grid_sample_derivation(sym.symbol("M"), 3, 2, "bilinear")
    >>> d.general["elementwise"], d.work["elementwise"]
    (M*(7*C + 14), 35*M)
    """
    per_location, per_channel = grid_sample_rates(dims, mode, padding, align_corners)
    return Derivation(dict(_general(dims, mode, padding, align_corners)), sp.Integer(0),
                      {sym.M: locations, sym.C: channels},
                      f"{dims}-d grid sample, {mode}, {padding} padding, align_corners="
                      f"{align_corners}: per location {per_location} (coordinates and "
                      f"weights), per location and channel {per_channel} (the taps' weighted "
                      "sum); 0 under torch and macs (FlopCounterMode does not count it)",
                      {"elementwise": f"{per_location} per location + {per_channel} per "
                                      "location and channel"})
