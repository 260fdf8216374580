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
arithmetic the real model does when it does not resize). See ``docs/detection.md``.

The user's model is not changed: the returned module is a shallow copy sharing its
submodules (and so its parameters).
"""

from __future__ import annotations

import copy
import types
from typing import Any

import torch

from symflops.errors import SymflopsError

__all__ = ["sized_detector", "FixedSizeTransform"]


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
        from torchvision.models.detection.image_list import ImageList

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
        # the real transform's postprocess at an unchanged size (ratios 1/1, computed)
        return self._postprocess(self._inner, result, [(1, 1)] * len(result),
                                 [(1, 1)] * len(result))


def sized_detector(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (a torchvision detector with a ``transform``) taking one batch tensor
    ``(B, 3, H, W)`` at the size the network runs at, without the resize.

    ``B`` is the number of images (torchvision loops over them: trace it as an int), ``H``
    and ``W`` the resized size (``sf.trace(sized_detector(m), "1 3 H W")``).
    """
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
        return forward(self, list(x.unbind(0)))

    clone.forward = types.MethodType(batched, clone)
    return clone
