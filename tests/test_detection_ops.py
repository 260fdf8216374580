"""torchvision's detection ops counted by symflops.formulas.detection, checked against a
literal walk of torchvision's CPU kernels (roi_align_kernel.cpp, nms_kernel.cpp) that counts
each arithmetic operation as it goes, at small sizes. The ops themselves need torchvision
(not installed here): the formulas are what the handlers call, and the handlers' argument
reading is exercised by benchmarks/check_detection.py on the real models."""

from __future__ import annotations

import itertools
import random

import pytest
import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas import detection as det
from symflops.formulas.sorting import merge_sort_compares
from symflops.symbols import symbol


class Ops:
    """A counter of arithmetic operations on floats (the kernel's float math)."""

    def __init__(self) -> None:
        self.n = 0

    def op(self, value: float) -> float:
        self.n += 1
        return value


def roi_align_loop(rois: list[tuple[float, float, float, float]], channels: int, ph: int,
                   pw: int, ratio: int, scale: float, aligned: bool) -> int:
    """The operations roi_align_kernel.cpp does, counted one by one."""
    c = Ops()
    for x1, y1, x2, y2 in rois:
        off = 0.5 if aligned else 0.0
        sw = c.op(x1 * scale)
        sh = c.op(y1 * scale)
        ew = c.op(x2 * scale)
        eh = c.op(y2 * scale)
        # roi_start_w = offset_rois[1] * spatial_scale - offset: the offset (0.0 when not
        # aligned) is subtracted all the same
        sw, sh, ew, eh = (c.op(v - off) for v in (sw, sh, ew, eh))
        rw = c.op(ew - sw)
        rh = c.op(eh - sh)
        if not aligned:
            rw = c.op(max(rw, 1.0))
            rh = c.op(max(rh, 1.0))
        bh = c.op(rh / ph)
        bw = c.op(rw / pw)
        weights = []
        for p_h, p_w, iy, ix in itertools.product(range(ph), range(pw), range(ratio),
                                                  range(ratio)):
            # yy = roi_start_h + ph * bin_size_h + (iy + .5f) * bin_size_h / grid_h
            y = c.op(c.op(sh + c.op(p_h * bh)) + c.op(c.op(c.op(iy + 0.5) * bh) / ratio))
            x = c.op(c.op(sw + c.op(p_w * bw)) + c.op(c.op(c.op(ix + 0.5) * bw) / ratio))
            ly, lx = c.op(y - int(y)), c.op(x - int(x))
            hy, hx = c.op(1 - ly), c.op(1 - lx)
            weights.append((c.op(hy * hx), c.op(hy * lx), c.op(ly * hx), c.op(ly * lx)))
        for _ch in range(channels):
            for b in range(ph * pw):
                total = 0.0
                for w1, w2, w3, w4 in weights[b * ratio * ratio:(b + 1) * ratio * ratio]:
                    v = c.op(c.op(c.op(c.op(w1 * 1.0) + c.op(w2 * 2.0)) + c.op(w3 * 3.0))
                             + c.op(w4 * 4.0))
                    total = c.op(total + v)
                total = c.op(total / (ratio * ratio))
    return c.n


def nms_loop(boxes: list[tuple[float, float, float, float]], scores: list[float],
             threshold: float) -> tuple[int, int]:
    """nms_kernel.cpp's operations, counted (the sort by the merge sort's compares of these
    scores), and the number of boxes kept."""
    c = Ops()
    areas = [c.op(c.op(x2 - x1) * c.op(y2 - y1)) for x1, y1, x2, y2 in boxes]
    compares = [0]

    def merge_sort(idx: list[int]) -> list[int]:
        if len(idx) <= 1:
            return idx
        left, right = merge_sort(idx[:len(idx) // 2]), merge_sort(idx[len(idx) // 2:])
        out = []
        while left and right:
            compares[0] += 1
            out.append(left.pop(0) if scores[left[0]] >= scores[right[0]] else right.pop(0))
        return out + left + right

    order = merge_sort(list(range(len(boxes))))
    suppressed = [False] * len(boxes)
    kept = 0
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        kept += 1
        ix1, iy1, ix2, iy2 = boxes[i]
        for j in order[a + 1:]:
            if suppressed[j]:
                continue
            x1, y1, x2, y2 = boxes[j]
            xx1, yy1 = c.op(max(ix1, x1)), c.op(max(iy1, y1))
            xx2, yy2 = c.op(min(ix2, x2)), c.op(min(iy2, y2))
            w = c.op(max(0.0, c.op(xx2 - xx1)))
            h = c.op(max(0.0, c.op(yy2 - yy1)))
            inter = c.op(w * h)
            ovr = c.op(inter / c.op(c.op(areas[i] + areas[j]) - inter))
            if c.op(ovr > threshold):
                suppressed[j] = True
    return c.n + compares[0], kept


@pytest.mark.parametrize("rois, channels, ph, pw, ratio", [
    (1, 1, 1, 1, 1), (2, 3, 2, 3, 2), (3, 2, 7, 7, 2), (1, 5, 3, 2, 3)])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_formula_equals_the_kernel_walk(rois, channels, ph, pw, ratio, aligned):
    rng = random.Random(rois * 100 + ph)
    boxes = []
    for _ in range(rois):
        x1, y1 = rng.uniform(0, 20), rng.uniform(0, 20)
        boxes.append((x1, y1, x1 + rng.uniform(1, 30), y1 + rng.uniform(1, 30)))
    walked = roi_align_loop(boxes, channels, ph, pw, ratio, 0.25, aligned)
    assert det.roi_align_work(rois, channels, ph, pw, ratio, aligned) == {"elementwise": walked}
    d = det.roi_align_derivation(rois, channels, ph, pw, ratio, aligned)
    assert d.work == {"elementwise": walked}


def test_roi_align_symbolic_and_far():
    r, c = symbol("R"), symbol("C")
    d = det.roi_align_derivation(r, c, 7, 7, 2)
    assert sp.expand(d.work["elementwise"]) == sp.expand(r * (14 + 20 * 49 * 4 + c * 49 * 33))
    # far from the small sizes: Faster R-CNN's box pooler, 1000 RoIs of 256 channels
    assert d.work["elementwise"].subs({r: 1000, c: 256}) == 1000 * (14 + 3920 + 256 * 49 * 33)


@pytest.mark.parametrize("ratio", [0, -1, True])
def test_roi_align_adaptive_grid_is_refused(ratio):
    with pytest.raises(SymflopsError, match="sampling_ratio"):
        det.roi_align_work(4, 8, 7, 7, ratio)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_nms_formula_is_the_kernel_walk_when_nothing_is_suppressed(n):
    # boxes far apart: no IoU above the threshold, every pair compared; the scores in the
    # order that makes the merge sort do its most compares (found by trying them all for
    # small n, a decreasing run otherwise is not the worst: compare to W(n) directly)
    boxes = [(10.0 * i, 0.0, 10.0 * i + 5, 5.0) for i in range(n)]
    most = 0
    perms = itertools.permutations(range(n)) if n <= 6 else [tuple(range(n))]
    for perm in perms:
        walked, kept = nms_loop(boxes, [float(p) for p in perm], 0.5)
        assert kept == n
        most = max(most, walked)
    pairs_and_areas = 3 * n + 13 * n * (n - 1) // 2
    assert most - pairs_and_areas <= merge_sort_compares(n)
    if n <= 6:   # the sort's worst case is reached
        assert most == det.nms_work(n)["elementwise"]


def test_nms_formula_bounds_the_kernel_walk_with_suppression():
    rng = random.Random(7)
    for n in (4, 9, 20):
        boxes = []
        for _ in range(n):
            x, y = rng.uniform(0, 10), rng.uniform(0, 10)
            boxes.append((x, y, x + 8, y + 8))          # heavy overlaps
        walked, kept = nms_loop(boxes, [rng.random() for _ in range(n)], 0.3)
        assert kept < n
        assert walked < det.nms_work(n)["elementwise"]


def test_nms_symbolic_and_refusals():
    n = symbol("n")
    w = det.nms_derivation(n).work["elementwise"]
    assert w.subs(n, 1000) == det.nms_work(1000)["elementwise"]
    assert det.nms_derivation(0).work == {}
    with pytest.raises(SymflopsError, match="negative"):
        det.nms_work(-1)


def test_the_handlers_read_torchvision_s_arguments():
    """The handlers on hand-built calls (torchvision's schemas: ``roi_align(input, rois,
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)``, ``nms(dets,
    scores, iou_threshold)``); registering needs torchvision, which is not here."""
    from symflops.tracing.handlers import detection as handlers
    from symflops.tracing.registry import OpCall, TShape

    r, c = symbol("R"), symbol("C")
    x, rois = TShape((sp.Integer(2), c, symbol("h"), symbol("w"))), TShape((r, sp.Integer(5)))
    out = (TShape((r, c, sp.Integer(7), sp.Integer(7))),)
    for aligned in (False, True):
        call = OpCall("roi_align", (x, rois, 0.25, 7, 7, 2, aligned), {}, out)
        (part,) = handlers._roi_align(call)
        assert part.derivation.work == det.roi_align_work(r, c, 7, 7, 2, aligned)
    with pytest.raises(SymflopsError, match="sampling_ratio"):
        handlers._roi_align(OpCall("roi_align", (x, rois, 0.25, 7, 7, 0, False), {}, out))
    n = symbol("n")
    (part,) = handlers._nms(OpCall("nms", (TShape((n, sp.Integer(4))), TShape((n,)), 0.5),
                                   {}, (TShape((symbol("k"),), "int64"),)))
    assert part.derivation.work == det.nms_work(n)
