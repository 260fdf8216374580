"""torchvision's detection ops: ``torchvision::roi_align`` and ``torchvision::nms``, counted by
:mod:`symflops.formulas.detection` (exact convention: RoIAlign's bilinear samples, NMS's
worst case; 0 under torch and macs, as FlopCounterMode counts them).

The ops exist only once torchvision is imported (its C extension registers them), and
symflops never imports torchvision: :func:`register_torchvision_ops` registers the handlers
when torchvision is loaded (at import of this module, and again from
:func:`symflops.tracing.detection.sized_detector`); it is idempotent."""

from __future__ import annotations

import sys

import torch

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.tracing.handlers._common import one
from symflops.tracing.registry import HANDLERS, OpCall, Part, register

__all__ = ["register_torchvision_ops"]


def _roi_align(call: OpCall) -> list[Part]:
    """``roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio,
    aligned)``: input ``(N, C, H, W)``, rois ``(R, 5)``, output ``(R, C, ph, pw)``."""
    x, rois = call.args[0], call.args[1]
    ph, pw = call.arg(3, "pooled_height"), call.arg(4, "pooled_width")
    ratio = call.arg(5, "sampling_ratio")
    if not isinstance(ratio, int) or ratio <= 0:
        raise SymflopsError("roi_align with an adaptive sampling grid (sampling_ratio <= 0): "
                            "its samples per bin are read from the boxes",
                            layer="torchvision.roi_align", values={"sampling_ratio": ratio},
                            fix="count a model whose RoIAlign has a fixed sampling_ratio "
                                "(torchvision's MultiScaleRoIAlign uses 2)")
    aligned = bool(call.arg(6, "aligned", False))
    return one(formulas.detection.roi_align_derivation(rois.shape[0], x.shape[1], ph, pw,
                                                       ratio, aligned))


def _nms(call: OpCall) -> list[Part]:
    """``nms(boxes, scores, iou_threshold)``: boxes ``(n, 4)``. The count is the kernel's
    worst case (no box suppressed), an upper bound, and the leaf's notes say so."""
    d = formulas.detection.nms_derivation(call.args[0].shape[0])
    return [Part.of(d, notes=("nms: an upper bound, the kernel's worst case (no box "
                              "suppressed); how many boxes a real run suppresses depends "
                              "on the data",))]


def register_torchvision_ops() -> bool:
    """Register the handlers of torchvision's ops if torchvision is loaded (True when they
    are registered, now or before)."""
    if "torchvision" not in sys.modules:
        return False
    ns = torch.ops.torchvision
    try:
        packets = {"roi_align": ns.roi_align, "nms": ns.nms}
    except (AttributeError, RuntimeError):  # torchvision without its C extension
        return False
    for name, fn in (("roi_align", _roi_align), ("nms", _nms)):
        if packets[name] not in HANDLERS:
            register(packets[name])(fn)
    return True


register_torchvision_ops()
