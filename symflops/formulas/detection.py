"""Detection ops: ``torchvision::roi_align`` (the RoI pooling of Faster / Mask R-CNN) and
``torchvision::nms`` (non-maximum suppression).

Neither is a multiply-accumulate: both count under the exact convention (kind
``elementwise``) and are 0 under ``torch`` and ``macs``, which is what ``FlopCounterMode``
counts for them (it has no formula for either op).

Hand counts, exact convention, following torchvision's CPU kernels
(``torchvision/csrc/ops/cpu/roi_align_kernel.cpp``, ``nms_kernel.cpp``); index arithmetic,
conversions (rounding a coordinate down to an integer) and bounds checks are not counted, as
everywhere in symflops:

**roi_align** of ``R`` boxes on a ``C``-channel feature map to ``P = ph * pw`` bins, each bin
averaged over ``S = gh * gw`` bilinear samples (``gh = gw = sampling_ratio``; a
``sampling_ratio <= 0`` makes the grid ``ceil(box size / bin)``: a size read from the data,
which this formula refuses):

* per box (``roi_start/end``, ``roi_width/height``, ``bin_size``): the 4 coordinates times
  ``spatial_scale`` (4), minus the offset (4: 0.5 when ``aligned``, else 0.0, subtracted all
  the same), the width and height (2 subtracts), clipped below at 1 when not ``aligned`` (2
  compares), the 2 bin sizes (2 divides): 12 aligned, 14 not;
* per box, bin and sample (the kernel's ``pre_calc``, shared by the channels): each coordinate
  ``start + p * bin + (i + 0.5) * bin / grid`` (a multiply, an add, the ``+ 0.5``, a multiply,
  a divide, an add: 6), 12 for the two; the bilinear weights ``l = y - y_low``, ``h = 1 - l``
  per coordinate (4) and the 4 corner products (4): 8 (grid_sample's bilinear weights); 20 in
  all;
* per box, channel, bin and sample: the 4 weighted corners (4 multiplies, 3 adds) added to the
  bin's sum (1): 8;
* per box, channel and bin: the average, one divide by ``S``.

``R (b + 20 P S + C P (8 S + 1))``, ``b`` = 12 or 14. Checked against a literal loop over the
kernel's operations in tests/test_detection_ops.py.

**nms** of ``N`` boxes: which pairs of boxes the kernel compares depends on which boxes an
earlier box suppressed, so, as for a sort (:mod:`symflops.formulas.sorting`), the count is the
kernel's worst case, no box suppressed: the areas ``(x2 - x1) * (y2 - y1)`` (3 per box), the
descending sort of the scores (merge sort's worst case ``W(N)``), and for each of the
``N (N - 1) / 2`` pairs the IoU test: the intersection's corners (2 max, 2 min), its width
and height (2 subtracts, each clipped at 0: 2 compares), their product (1), the union
``area_i + area_j - inter`` (2), the ratio (1 divide) and the threshold compare (1): 13.
``3 N + W(N) + 13 N (N - 1) / 2``. A kept count ``K`` below ``N`` makes the kernel skip the
pairs of suppressed boxes: the true count is at most this.

>>> roi_align_work(2, 256, 7, 7, 2)["elementwise"] == 2 * (14 + 20 * 49 * 4 + 256 * 49 * 33)
True
>>> nms_work(4)
{'elementwise': 95}
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, is_int, work
from symflops.formulas.derivation import Derivation
from symflops.formulas.sorting import merge_sort_compares

__all__ = ["ROI_BOX_RATE", "ROI_SAMPLE_RATE", "ROI_TAP_RATE", "NMS_PAIR_RATE",
           "roi_align_work", "roi_align_derivation", "nms_work", "nms_derivation"]

#: per box: the scaled and offset corners, sizes and bin sizes (aligned; 2 more clips
#: when not aligned)
ROI_BOX_RATE = 12
#: per box, bin and sample: the two coordinates (12) and the bilinear weights (8)
ROI_SAMPLE_RATE = 20
#: per box, channel, bin and sample: 4 multiplies, 3 adds, 1 accumulate
ROI_TAP_RATE = 8
#: per pair of boxes: the IoU and its compare
NMS_PAIR_RATE = 13
#: per box: its area
NMS_BOX_RATE = 3

#: boxes of a roi_align / nms, bins and samples per bin
n_rois = sym.symbol("R")
n_bins = sym.symbol("P")
n_samples = sym.symbol("S")
n_boxes = sym.symbol("n")


def _check_ratio(sampling_ratio: int) -> None:
    if not isinstance(sampling_ratio, int) or isinstance(sampling_ratio, bool) \
            or sampling_ratio <= 0:
        raise SymflopsError("roi_align with an adaptive sampling grid (sampling_ratio <= 0) "
                            "takes ceil(box size / bin size) samples per bin: a count read "
                            "from the boxes, not from the shapes", layer="roi_align",
                            values={"sampling_ratio": sampling_ratio},
                            fix="count a model whose RoIAlign has a fixed sampling_ratio "
                                "(torchvision's MultiScaleRoIAlign uses 2)")


def _box_rate(aligned: bool) -> int:
    return ROI_BOX_RATE + (0 if aligned else 2)


def roi_align_work(rois: Size, channels: Size, ph: Size, pw: Size, sampling_ratio: int,
                   aligned: bool = False) -> Work:
    """Work of ``roi_align`` of ``rois`` boxes over ``channels`` channels to ``ph x pw`` bins,
    ``sampling_ratio ** 2`` samples per bin (the module docstring's count)."""
    _check_ratio(sampling_ratio)
    bins = ph * pw
    s = sampling_ratio * sampling_ratio
    return work(elementwise=rois * (_box_rate(aligned) + ROI_SAMPLE_RATE * bins * s
                                    + channels * bins * (ROI_TAP_RATE * s + 1)))


@cache
def _roi_general(aligned: bool) -> Work:
    s = n_samples
    return work(elementwise=n_rois * (_box_rate(aligned) + ROI_SAMPLE_RATE * n_bins * s
                                      + sym.C * n_bins * (ROI_TAP_RATE * s + 1)))


def roi_align_derivation(rois: Size, channels: Size, ph: Size, pw: Size,
                         sampling_ratio: int, aligned: bool = False) -> Derivation:
    """``R = rois`` boxes pooled over ``C = channels`` channels to ``P = ph * pw`` bins of ``S =
    sampling_ratio ** 2`` bilinear samples.

    >>> d = roi_align_derivation(sym.symbol("R"), 256, 7, 7, 2)
    >>> d.work["elementwise"]
    417886*R
    """
    _check_ratio(sampling_ratio)
    return Derivation(dict(_roi_general(bool(aligned))), sp.Integer(0),
                      {n_rois: rois, sym.C: channels, n_bins: ph * pw,
                       n_samples: sampling_ratio * sampling_ratio},
                      f"roi_align to {ph}x{pw} bins, {sampling_ratio}x{sampling_ratio} "
                      f"bilinear samples per bin, aligned={bool(aligned)}: per box "
                      f"{_box_rate(bool(aligned))}, per box, bin and "
                      f"sample {ROI_SAMPLE_RATE} (coordinates and weights), per box, channel, "
                      f"bin and sample {ROI_TAP_RATE} (the weighted corners), 1 per box, "
                      "channel and bin (the average); 0 under torch and macs "
                      "(FlopCounterMode does not count it)",
                      {"elementwise": f"R ({_box_rate(bool(aligned))} + {ROI_SAMPLE_RATE} P S "
                                      f"+ C P ({ROI_TAP_RATE} S + 1))"})


def nms_work(boxes: Size) -> Work:
    """The worst case of ``nms`` of ``boxes`` boxes: no box suppressed."""
    if is_int(boxes) and int(boxes) < 0:
        raise SymflopsError("nms of a negative number of boxes", layer="nms",
                            values={"boxes": int(boxes)}, fix="give a size >= 0")
    return work(elementwise=NMS_BOX_RATE * boxes + merge_sort_compares(boxes)
                + sp.Rational(NMS_PAIR_RATE, 2) * boxes * (boxes - 1)
                if not is_int(boxes) else
                NMS_BOX_RATE * int(boxes) + int(merge_sort_compares(boxes))
                + NMS_PAIR_RATE * int(boxes) * (int(boxes) - 1) // 2)


@cache
def _nms_general() -> Work:
    return nms_work(n_boxes)


def nms_derivation(boxes: Size) -> Derivation:
    """``n = boxes`` boxes through ``nms``: the kernel's worst case (the module docstring).

    >>> nms_derivation(10).work
    {'elementwise': 640}
    """
    if is_int(boxes) and int(boxes) == 0:
        return Derivation({}, 0, {}, "nms of no boxes: nothing computed")
    return Derivation(dict(_nms_general()), sp.Integer(0), {n_boxes: boxes},
                      f"nms: the kernel's worst case (no box suppressed): {NMS_BOX_RATE} per "
                      f"box (its area), the scores' sort (merge sort's worst case), "
                      f"{NMS_PAIR_RATE} per pair of boxes (the IoU test); at most this when "
                      "boxes are suppressed; 0 under torch and macs (FlopCounterMode does "
                      "not count it)",
                      {"elementwise": f"{NMS_BOX_RATE} n + W(n) + {NMS_PAIR_RATE} n (n - 1) / 2"})
