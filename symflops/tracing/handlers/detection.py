"""torchvision's detection ops: ``torchvision::roi_align`` and ``torchvision::nms``, counted by
:mod:`symflops.formulas.detection` (exact convention: RoIAlign's bilinear samples, NMS's
worst case; 0 under torch and macs, as FlopCounterMode counts them); and
``symflops::not_run``, the mark :func:`symflops.tracing.detection.sized_detector` leaves
where it does not run a step of torchvision's postprocessing (a leaf of cost 0 whose note
says what was left out and why).

The ops exist only once torchvision is imported (its C extension registers them), and
symflops never imports torchvision: :func:`register_torchvision_ops` registers the handlers
when torchvision is loaded (at import of this module, and again from
:func:`symflops.tracing.detection.sized_detector`); it is idempotent."""

from __future__ import annotations

import sys

import sympy as sp
import torch

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.tracing.handlers._common import one
from symflops.tracing.registry import HANDLERS, OpCall, Part, register

__all__ = ["register_torchvision_ops", "not_run", "NOT_RUN"]

#: what each step sized_detector does not run is, and why it is not counted
NOT_RUN = {
    "paste_masks_in_image": (
        "not run, not counted: torchvision's paste_masks_in_image (each detection's 28x28 "
        "mask probabilities resized bilinearly to its box's size in pixels and pasted into "
        "an image-sized canvas, one Python loop iteration per detection). Its work follows "
        "each box's size, a value read from the data, not a shape: no exact formula in H, W, "
        "D exists. FlopCounterMode counts 0 for it (no matmul or conv), so the torch and "
        "macs totals are unchanged; under exact it is left out. The 'masks' output is the "
        "mask head's (D, 1, 28, 28) probabilities (roi_heads' own output)"),
    "heatmaps_to_keypoints": (
        "not run, not counted: torchvision's heatmaps_to_keypoints (each detection's K "
        "heatmaps resized bicubically to its box's size in pixels, then an argmax, one "
        "Python loop iteration per detection). Its work follows each box's size, a value "
        "read from the data, not a shape: no exact formula in H, W, D exists. "
        "FlopCounterMode counts 0 for it (no matmul or conv), so the torch and macs totals "
        "are unchanged; under exact it is left out. The 'keypoints' (D, K, 3) and "
        "'keypoints_scores' (D, K) outputs are zeros of their real shapes"),
}


@torch.library.custom_op("symflops::not_run", mutates_args=())
def not_run(x: torch.Tensor, step: str) -> None:
    """A mark: the step ``step`` (a key of :data:`NOT_RUN`) of the model is not run here.
    Computes nothing."""
    if step not in NOT_RUN:
        raise SymflopsError("not_run of an unknown step", layer="symflops.not_run",
                            values={"step": step}, fix=f"one of {sorted(NOT_RUN)}")


@not_run.register_fake
def _not_run_fake(x: torch.Tensor, step: str) -> None:
    return None


def _not_run(call: OpCall) -> list[Part]:
    """``not_run(x, step)``: cost 0, the step's note (what is left out, and why)."""
    step = call.arg(1, "step")
    if step not in NOT_RUN:
        raise SymflopsError("not_run of an unknown step", layer="symflops.not_run",
                            values={"step": step}, fix=f"one of {sorted(NOT_RUN)}")
    return [Part.of(Derivation({}, sp.Integer(0), {}, f"{step}: not run (see the note)"),
                    notes=(NOT_RUN[step],))]


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


register(torch.ops.symflops.not_run)(_not_run)
register_torchvision_ops()
