"""torchvision detection models at a chosen input size: :func:`sized_detector`.

torchvision's detectors (Faster R-CNN, RetinaNet, FCOS, SSD) take a *list* of images and
run them through ``GeneralizedRCNNTransform`` first: normalize, resize each image so its
short side is ``min_size`` (long side at most ``max_size``), pad the batch to a multiple of
``size_divisible`` (32). The resize is a choice of the input size: the network then runs at
the resized size. :func:`sized_detector` returns a model that takes a batch tensor
``(B, 3, H, W)`` already at that size and runs the detector's own ``forward`` with a
transform that normalizes and pads exactly as torchvision does (the padding to a multiple
of ``size_divisible`` is symbolic: ``H`` need not be a multiple of 32) and skips the
resize; the boxes go through torchvision's own ``resize_boxes`` with ratio 1 (the
arithmetic the real model does when it does not resize). During the forward, four spots of
torchvision's code are rerouted so that the trace stays symbolic (:func:`rerouted`: the
NMS path, ``min(k, size)`` before a top-k, the RoI pooler's scales and its RoI count).

Two steps of the postprocessing are not run (Mask R-CNN's ``paste_masks_in_image``,
Keypoint R-CNN's ``heatmaps_to_keypoints``): per detection they resize a map to the box's
size in pixels, a value read from the data, so their work has no formula in the shapes. A
``symflops::not_run`` mark (a leaf of cost 0 whose note says what was left out and why)
stands where each would run; FlopCounterMode counts 0 for both, so the torch and macs
totals are the real model's. See ``docs/detection.md``.

The user's model is not changed: the returned module is a shallow copy sharing its
submodules (and so its parameters).
"""

from __future__ import annotations

import contextlib
import copy
import types
from collections.abc import Iterator
from typing import Any

import torch

from symflops.errors import SymflopsError

__all__ = ["sized_detector", "FixedSizeTransform", "rerouted"]


class FixedSizeTransform(torch.nn.Module):
    """``GeneralizedRCNNTransform`` without the resize: normalize (``(x - mean) / std`` per
    element, torchvision's own arithmetic), pad each image on the bottom and right to a
    multiple of ``size_divisible`` (a symbolic pad), stack; ``postprocess`` maps the boxes
    through ``resize_boxes`` at ratio 1, as torchvision does when the size is unchanged."""

    def __init__(self, transform: Any) -> None:
        super().__init__()
        self.image_mean = list(transform.image_mean)
        self.image_std = list(transform.image_std)
        self.size_divisible = int(transform.size_divisible)
        self._normalize = transform.normalize
        self._postprocess = type(transform).postprocess
        self._inner = transform

    def forward(self, images: list[torch.Tensor], targets: Any = None) -> tuple[Any, Any]:
        try:
            from torchvision.models.detection.image_list import ImageList
        except ImportError:  # a stand-in detector without torchvision: the same fields
            ImageList = _ImageList  # noqa: N806
        if targets is not None:
            raise SymflopsError("sized_detector traces inference: targets are not taken",
                                layer="sized_detector",
                                fix="trace in eval mode without targets")
        out: list[torch.Tensor] = []
        sizes: list[tuple[Any, Any]] = []
        d = self.size_divisible
        for img in images:
            img = self._normalize(img)
            h, w = img.shape[-2], img.shape[-1]
            sizes.append((h, w))
            # torchvision pads to ceil(size / d) * d: (-size) mod d more rows / columns
            out.append(torch.nn.functional.pad(img, (0, (-w) % d, 0, (-h) % d)))
        return ImageList(torch.stack(out), sizes), None

    def postprocess(self, result: list[dict[str, torch.Tensor]], image_shapes: Any,
                    original_image_sizes: Any) -> list[dict[str, torch.Tensor]]:
        """The real transform's postprocess at an unchanged size (ratios 1/1, computed),
        without the paste of the masks into the image (``paste_masks_in_image``): its work
        follows each box's size in pixels, a value read from the data. The ``masks`` stay
        the mask head's per-detection probabilities, and a ``symflops::not_run`` mark says
        so in the cost (a leaf of cost 0 with the note)."""
        from symflops.tracing.handlers.detection import not_run

        masks = [r.pop("masks", None) if isinstance(r, dict) else None for r in result]
        for m in masks:
            if m is not None:
                not_run(m, "paste_masks_in_image")
        out = self._postprocess(self._inner, result, [(1, 1)] * len(result),
                                [(1, 1)] * len(result))
        for r, m in zip(out, masks, strict=True):
            if m is not None:
                r["masks"] = m
        return out


class _ImageList:
    """torchvision's ``ImageList`` (the padded batch and each image's size before the pad),
    for a detector written without torchvision."""

    def __init__(self, tensors: torch.Tensor, image_sizes: list[tuple[Any, Any]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes


@contextlib.contextmanager
def rerouted() -> Iterator[None]:
    """Five spots of torchvision's detection code rerouted for the duration of a forward
    (restored on exit, also on error), each so that the trace stays symbolic; none changes
    an op FlopCounterMode counts:

    * ``batched_nms`` runs its coordinate trick. It switches on the number of coordinates
      it gets (a data-dependent size): at most 4,000 on CPU (100,000 elsewhere), and always
      when exporting, it offsets each class's boxes so that classes never overlap and runs
      one ``nms``; above, it loops over the classes present (``torch.unique``: a count of its
      own, which a trace could follow only at one example value). Both keep the same boxes.
      Under torch and macs both cost 0; under exact, the trick's max over the coordinates
      and its offsets are counted, the loop's compares per class are not.
    * ``_topk_min`` (``min(k, size)`` before a top-k) is ``torch.sym_min``: Python's ``min``
      decides at the example size, and the formula would hold on one side of ``k`` only.
    * the pooler's scales (each level's stride, which torchvision infers from the first
      image it sees and keeps) are read at the example sizes without a guard on them, and
      outside the count: torchvision computes them on a model's first forward only (a few
      ``log2`` and ``round``, 0 under torch and macs), not per forward.
    * ``_multiscale_roi_align`` reads the number of RoIs as a size, where torchvision's
      ``len(rois)`` makes the count a Python int, fixed at its example value.
    * ``heatmaps_to_keypoints`` (Keypoint R-CNN) is not run (:func:`_keypoints_not_run`):
      its work follows each box's size in pixels, and its loop over ``len(rois)`` would fix
      the detections at their example count.

    Without torchvision (a stand-in detector) nothing is rerouted."""
    try:
        from torchvision.models.detection import _utils as det_utils
        from torchvision.ops import boxes as box_ops
        from torchvision.ops import poolers
    except ImportError:  # a stand-in detector without torchvision: nothing to reroute
        yield
        return

    from torchvision.models.detection import roi_heads

    original, setup = box_ops.batched_nms, poolers._setup_scales
    pool, topk_min = poolers._multiscale_roi_align, det_utils._topk_min
    keypoints = roi_heads.heatmaps_to_keypoints

    def symbolic_topk_min(input: torch.Tensor, orig_kval: int, axis: int) -> Any:
        # min(k, size) kept symbolic (torch.sym_min): Python's min decides at the example
        # size, so the formula would hold only on one side of k
        return torch.sym_min(orig_kval, input.size(axis))

    def coordinate_trick(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                         iou_threshold: float) -> torch.Tensor:
        return box_ops._batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold)

    def scales_at_example(features: list[torch.Tensor], image_shapes: list[Any],
                          canonical_scale: int, canonical_level: int) -> Any:
        # the scales are the levels' strides (torchvision reads them at the first image it
        # sees and keeps them): read at the example sizes, without a guard on them, and
        # outside the count (plain CPU tensors, no mode sees them): torchvision computes them
        # on a model's first forward only, a few log2 and round ops that are not per-forward
        # work, so every forward counts the same (the steady state)
        from torch.utils._python_dispatch import _disable_current_modes

        shapes = [types.SimpleNamespace(shape=tuple(_example(s) for s in f.shape))
                  for f in features]
        with _disable_current_modes():
            return setup(shapes, [tuple(_example(s) for s in shape) for shape in image_shapes],
                         canonical_scale, canonical_level)

    box_ops.batched_nms = coordinate_trick
    poolers._setup_scales = scales_at_example
    poolers._multiscale_roi_align = _multiscale_roi_align
    det_utils._topk_min = symbolic_topk_min
    roi_heads.heatmaps_to_keypoints = _keypoints_not_run
    try:
        yield
    finally:
        roi_heads.heatmaps_to_keypoints = keypoints
        det_utils._topk_min = topk_min
        box_ops.batched_nms = original
        poolers._setup_scales = setup
        poolers._multiscale_roi_align = pool


def _multiscale_roi_align(x_filtered: list[torch.Tensor], boxes: list[torch.Tensor],
                          output_size: list[int], sampling_ratio: int, scales: Any,
                          mapper: Any) -> torch.Tensor:
    """torchvision's ``poolers._multiscale_roi_align`` (eager path), the number of RoIs read
    as a size (``rois.shape[0]``) where torchvision calls ``len(rois)``: ``len`` makes a
    data-dependent count a Python int, fixing it at its example value for the rest of the
    trace. The ops are torchvision's, in its order."""
    from torchvision.ops import poolers, roi_align

    if scales is None or mapper is None:
        raise ValueError("scales and mapper should not be None")
    rois = poolers._convert_to_roi_format(boxes)
    if len(x_filtered) == 1:
        return roi_align(x_filtered[0], rois, output_size=output_size,
                         spatial_scale=scales[0], sampling_ratio=sampling_ratio)
    levels = mapper(boxes)
    first = x_filtered[0]
    result = torch.zeros((rois.shape[0], first.shape[1]) + tuple(output_size),
                         dtype=first.dtype, device=first.device)
    for level, (per_level_feature, scale) in enumerate(zip(x_filtered, scales, strict=True)):
        idx_in_level = torch.where(levels == level)[0]
        result_idx_in_level = roi_align(per_level_feature, rois[idx_in_level],
                                        output_size=output_size, spatial_scale=scale,
                                        sampling_ratio=sampling_ratio)
        result[idx_in_level] = result_idx_in_level.to(result.dtype)
    return result


def _keypoints_not_run(maps: torch.Tensor, rois: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """In place of torchvision's ``heatmaps_to_keypoints`` (Keypoint R-CNN's decoding of
    the heatmaps, ``(D, K, 56, 56)``, into ``D x K`` keypoints): not run. Per detection it
    resizes the K heatmaps bicubically to the box's size in pixels (``ceil`` of the box's
    width and height, values read from the data) and takes an argmax: work with no formula
    in the shapes. A ``symflops::not_run`` mark says so in the cost; the keypoints
    ``(D, K, 3)`` and their scores ``(D, K)`` are zeros of the real shapes (torchvision's
    own dtype, float32), so the postprocess after it runs the same ops."""
    from symflops.tracing.handlers.detection import not_run

    not_run(maps, "heatmaps_to_keypoints")
    d, k = maps.shape[0], maps.shape[1]
    return (maps.new_zeros((d, k, 3), dtype=torch.float32),
            maps.new_zeros((d, k), dtype=torch.float32))


def _example(size: Any) -> Any:
    """A size's value at the example sizes, read without a guard (the int itself when
    concrete)."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        if hint is None:
            raise SymflopsError("a detector's pooler scale depends on a data-dependent size",
                                layer="sized_detector", values={"size": str(size)})
        return int(hint)
    return size


def sized_detector(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (a torchvision detector with a ``transform``) taking one batch tensor
    ``(B, 3, H, W)`` at the size the network runs at, without the resize.

    ``B`` is the number of images (torchvision loops over them: trace it as an int), ``H``
    and ``W`` the resized size (``sf.trace(sized_detector(m), "1 3 H W")``).
    """
    from symflops.tracing.handlers.detection import register_torchvision_ops

    register_torchvision_ops()
    transform = getattr(model, "transform", None)
    if transform is None or not all(hasattr(transform, a) for a in
                                    ("image_mean", "image_std", "size_divisible",
                                     "normalize", "postprocess")):
        raise SymflopsError("sized_detector needs a torchvision detector (a model with a "
                            "GeneralizedRCNNTransform as .transform)", layer="sized_detector",
                            values={"model": type(model).__name__},
                            fix="pass a torchvision.models.detection model, or trace your "
                                "model's backbone and heads directly")
    clone = copy.copy(model)
    clone._modules = dict(model._modules)
    clone._modules["transform"] = FixedSizeTransform(transform)
    forward = type(model).forward

    def batched(self: torch.nn.Module, x: torch.Tensor) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise SymflopsError("sized_detector takes one (B, 3, H, W) batch tensor",
                                layer="sized_detector",
                                values={"input": getattr(x, "shape", type(x).__name__)})
        with rerouted():
            return forward(self, list(x.unbind(0)))

    clone.forward = types.MethodType(batched, clone)
    return clone
