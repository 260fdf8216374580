"""Check symflops' symbolic traces of torchvision's detectors against torch's FlopCounterMode
on a real forward (a count nobody here wrote), at two sizes and two batch sizes.

Each detector is traced once per batch size B on meta, ``sf.trace(sized_detector(m),
"B 3 H W", data_dependent=...)``: symbolic in H and W, the data-dependent sizes as symbols of
their own (``R``: the boxes the RPN's NMS keeps, ``D``: the detections' NMS; per image). The
real forward runs the unchanged torchvision model on CPU (random weights) with its resize
made the identity (``min_size`` and ``max_size`` at the image's own size), so the network
runs at H x W as in the trace; the counts the real forward made are read from its outputs
and substituted. Run it where torchvision imports:

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_detection.py [model ...]

Mask R-CNN and Keypoint R-CNN run a head per detection (D); ``sized_detector`` does not run
their paste of the masks / decoding of the keypoints (work that follows the boxes' sizes
in pixels; FlopCounterMode counts 0 for both, the real forward runs them).

``--exact [model ...]`` checks the exact convention instead (FlopCounterMode counts only
the matmul work): the trace under ``convention="exact"`` at the counts a real forward of
``sized_detector(model)`` made, against :func:`exact_by_ops`, a per-op count of that
forward at its concrete shapes; and that every ``nms`` leaf is noted an upper bound.

Exit status 1 if a size disagrees or a model does not trace symbolically.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

MODELS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn",
          "retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large",
          "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn")
#: the models with a head per detection (Mask R-CNN's mask head, Keypoint R-CNN's keypoint
#: head): random weights score a few boxes very high (the class scores are peaked), so a
#: score threshold near the top lands the detections D well below detections_per_img (100)
#: and varying with the size; without it every row has D = 100, the cut. No resize row for
#: them (the resize is checked on the others; these are the slowest on CPU)
PER_DETECTION = {"maskrcnn_resnet50_fpn": 0.85, "maskrcnn_resnet50_fpn_v2": 0.9,
                 "keypointrcnn_resnet50_fpn": 0.001}
#: (H, W) at B = 1 and B = 2: off the 32-lattice (the transform pads) and on it
SIZES = ((320, 416), (512, 384))
BATCHES = (1, 2)
#: an image through torchvision's own resize (B = 1): the formula at the size it makes
RESIZED = (480, 640)
#: SSDlite's last feature maps are 1x1 up to 512 and larger above: one formula for each
#: side (traced at an example size there, checked there), its own 320x320 included
SSD_REGIMES = (({"H": 320, "W": 320}, ((320, 320), (300, 416))),
               ({"H": 640, "W": 704}, ((544, 608), (700, 520))))


def _names(model: Any, b: int) -> dict[str, Any]:
    """The user names of the counts to substitute: per image, the boxes the first stage's
    NMS keeps (two-stage models) and the detections' NMS."""
    if hasattr(model, "rpn"):
        return {"R": "rpn", "D": "roi_heads"}
    return {"D": ""}  # one stage: the model's own output (its first image's boxes)


def _real(model: Any, b: int, h: int, w: int, resize: bool = False
          ) -> tuple[int, list[int], list[int], tuple[int, int]]:
    """FlopCounterMode's total on a real CPU forward of the unchanged model at (b, 3, h, w),
    per image the RPN's kept proposals and the detections, and the size the network ran at
    (torchvision's resize, before the pad). ``resize=False`` makes the resize the
    identity."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    proposals: list[int] = []
    ran: list[tuple[int, int]] = []
    hooks = [model.transform.register_forward_hook(
        lambda m, i, o: ran.append(tuple(o[0].image_sizes[0])))]
    if hasattr(model, "rpn"):
        hooks.append(model.rpn.register_forward_hook(
            lambda m, i, o: proposals.extend(int(p.shape[0]) for p in o[0])))
    t = model.transform
    keep = t.min_size, t.max_size, t.fixed_size
    if not resize:  # the resize is the identity (SSD's fixed 320x320 size off)
        t.min_size, t.max_size, t.fixed_size = (min(h, w),), max(h, w), None
    torch.manual_seed(h * w + b)
    images = [torch.rand(3, h, w) for _ in range(b)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(images)
    finally:
        t.min_size, t.max_size, t.fixed_size = keep
        for hook in hooks:
            hook.remove()
    return (counter.get_total_flops(), proposals, [int(d["boxes"].shape[0]) for d in out],
            ran[0])


def _subs(cost: Any, h: int, w: int, proposals: list[int], detections: list[int]
          ) -> dict[str, int]:
    """The values of the trace's count symbols from the real forward: image 0's by their
    names, the others' by the order the trace made them (one NMS per stage and image)."""
    values: dict[str, int] = {"H": h, "W": w}
    dd = cost.report.data_dependent
    rpn = [n for n, d in dd.items() if d["op"] == "torchvision.nms" and d["at"] == "rpn"]
    heads = [n for n, d in dd.items() if d["op"] == "torchvision.nms" and d["at"] != "rpn"]
    for names, seen in ((rpn, proposals), (heads, detections)):
        for name, value in zip(names, seen, strict=False):
            values[name] = value
    return values


def _models(name: str) -> tuple[Any, Any]:
    """The torchvision model ``name`` on CPU (random weights, seed 0; the thresholds below)
    and on meta (for the trace)."""
    import torch
    from torchvision.models import detection

    torch.manual_seed(0)
    real = getattr(detection, name)(weights=None, weights_backbone=None).eval()
    # random weights score every box alike (objectness 0.5, class scores ~1/91): keep
    # every score and suppress overlaps harder, so the counts land below the top-k
    # cuts and vary with the size (the thresholds change the counts, not the ops)
    for part in (getattr(real, "rpn", None), getattr(real, "roi_heads", None), real):
        if part is not None and hasattr(part, "nms_thresh"):
            part.nms_thresh = 0.05
        if part is not None and hasattr(part, "score_thresh"):
            part.score_thresh = 0.0
    if name in PER_DETECTION:
        real.roi_heads.score_thresh = PER_DETECTION[name]
    with torch.device("meta"):
        meta = getattr(detection, name)(weights=None, weights_backbone=None).eval()
    return real, meta


#: the ops that make a count (a size read from the data), as symflops' trace logs them
COUNT_OPS = ("aten.nonzero", "aten.argwhere", "aten.masked_select", "aten._unique2",
             "aten.unique_consecutive", "aten._unique", "aten.unique_dim", "torchvision.nms")


def exact_by_ops(model: Any, x: Any) -> dict[str, Any]:
    """An independent count of a real CPU forward ``model(x)``: a dispatch mode that sees
    every aten op the forward runs, at its concrete shapes, and adds up symflops' per-op
    count of each (the handler of the op: the same per-op rates, none of the symbolic
    machinery: no symbols, no data-dependent names, no guards, no cuts, no domain). Ops
    symflops decomposes are decomposed here too (as FlopCounterMode does), ops it declares
    free are free. Returns the exact and torch totals, the counts the forward made (op,
    size) in order, and the ops without a handler."""
    from collections import Counter

    import sympy as sp
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from symflops.conventions import get_convention
    from symflops.tracing._torch_compat import SKIP_OPS
    from symflops.tracing.registry import HANDLERS, ZERO_COST, OpCall, TShape

    exact, torch_rates = get_convention("exact"), get_convention("torch")

    def shape(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return TShape(tuple(sp.Integer(int(s)) for s in v.shape),
                          str(v.dtype).replace("torch.", ""))
        if isinstance(v, (list, tuple)):
            return type(v)(shape(i) for i in v)
        if isinstance(v, dict):
            return {k: shape(i) for k, i in v.items()}
        return v

    def source(name: str, args: Any) -> Any:
        """The tensor whose values the count an op makes is read from (None: no count)."""
        if name in COUNT_OPS:
            return args[0]
        # x[mask]: a boolean mask's count (SSD's, RetinaNet's per-level thresholds)
        if name == "aten.index" and len(args) > 1:
            masks = [m for m in args[1] if isinstance(m, torch.Tensor) and m.dtype == torch.bool]
            return masks[0] if masks else None
        return None

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.exact: Any = sp.Integer(0)
            self.torch: Any = sp.Integer(0)
            self.counts: list[tuple[str, int]] = []
            self.unknown: Counter[str] = Counter()
            #: the tensors counts were read from (kept alive: their ids stay theirs)
            self.read: dict[int, tuple[Any, int]] = {}

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func in SKIP_OPS:
                return func(*args, **kwargs)
            packet = func._overloadpacket
            name = str(packet._qualified_op_name).replace("::", ".")
            if packet in HANDLERS or packet in ZERO_COST:
                out = func(*args, **kwargs)
                made = source(name, args)
                # a mask counted before (unchanged) makes no new count: torch's fake tensors
                # remember a tensor's nonzero count, so the trace has one symbol for
                # x[mask] and torch.where(mask) of the same mask (RetinaNet, FCOS)
                if made is not None and self.read.get(id(made), (None, -1))[1:] != (
                        made._version,):
                    self.read[id(made)] = (made, made._version)
                    self.counts.append((name, int(out.shape[0])))
                if packet in HANDLERS:
                    outs = out if isinstance(out, (tuple, list)) else (out,)
                    call = OpCall(packet.__name__, shape(args), shape(kwargs),
                                  tuple(shape(o) for o in outs if isinstance(o, torch.Tensor)))
                    for part in HANDLERS[packet](call):
                        self.exact += exact.weigh(part.work)
                        self.torch += torch_rates.weigh(part.work)
                return out
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
            self.unknown[name] += 1
            return func(*args, **kwargs)

    counter = Count()
    with torch.no_grad(), counter:
        model(x)
    return {"exact": int(counter.exact), "torch": int(counter.torch),
            "counts": counter.counts, "unknown": dict(counter.unknown)}


#: the detectors the exact convention is checked on, and where
EXACT_MODELS = ("fasterrcnn_mobilenet_v3_large_fpn", "maskrcnn_resnet50_fpn",
                "keypointrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn")
EXACT_AT = ((1, 320, 416), (1, 512, 384), (2, 320, 416))


def exact_main(argv: list[str]) -> int:
    """The exact convention: the symbolic trace (``convention="exact"``, every count a
    symbol) at the counts a real forward of ``sized_detector(model)`` made, against
    :func:`exact_by_ops` on that forward; and its torch total against FlopCounterMode on
    the same forward (the dispatch counter sees what FlopCounterMode sees)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf
    from symflops.errors import SymflopsError
    from symflops.tracing.detection import sized_detector
    from symflops.tracing.handlers.detection import NOT_RUN

    bad = 0
    rows: list[tuple[str, str, str, int, int]] = []
    for name in argv or EXACT_MODELS:
        real, meta = _models(name)
        for b in sorted({b for b, _h, _w in EXACT_AT}):
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cost = sf.trace(sized_detector(meta), f"{b} 3 H W", convention="exact",
                                data_dependent=_names(meta, b), warn=False)
            print(f"{name} B={b}: traced (exact) in {time.perf_counter() - started:.1f} s; "
                  f"{len(cost.report.data_dependent)} counts: "
                  f"{', '.join(cost.report.data_dependent)}")
            leaves = list(cost.leaves())
            nms = [leaf for _, leaf in leaves if leaf.op == "torchvision.nms"]
            bounded = all(any("upper bound" in n for n in leaf.notes) for leaf in nms)
            marks = sorted({step for _, leaf in leaves for step, note in NOT_RUN.items()
                            if note in leaf.notes})
            print(f"  {len(nms)} nms leaves, each noted an upper bound: {bounded}; "
                  f"not run: {marks or 'nothing'}")
            bad += not bounded
            for _b, h, w in [a for a in EXACT_AT if a[0] == b]:
                torch.manual_seed(h * w + b)
                x = torch.rand(b, 3, h, w)
                started = time.perf_counter()
                with FlopCounterMode(display=False) as fc:
                    seen = exact_by_ops(sized_detector(real), x)
                took = time.perf_counter() - started
                dd = cost.report.data_dependent
                ops = [d["op"] for d in dd.values()]
                if ops != [op for op, _ in seen["counts"]]:
                    print(f"  {h}x{w}: the counts differ: trace {ops}, forward "
                          f"{seen['counts']}")
                    bad += 1
                    continue
                values = {"H": h, "W": w, **{n: v for n, (_, v) in zip(dd, seen["counts"],
                                                                       strict=True)}}
                zero = sorted((n for n, v in values.items() if v == 0), key=lambda n: (len(n), n))
                how = f"{', '.join(zero)} = 0" if zero else "every count >= 1"
                try:  # a count may be 0 (an FPN level no box maps to) where every op allows
                    ours = int(cost.subs(**values).flops)
                except SymflopsError as e:
                    print(f"  B={b}, {h}x{w}: refused ({how}): {e}")
                    bad += 1
                    continue
                same = ours == seen["exact"] and seen["torch"] == fc.get_total_flops()
                bad += not same
                print(f"  B={b}, {h}x{w} (forward {took:.1f} s; counts "
                      f"{', '.join(f'{k}={v}' for k, v in values.items() if k not in 'HW')}"
                      f"; {how}): symflops exact {ours:,}, per-op count of the forward "
                      f"{seen['exact']:,} {'equal' if ours == seen['exact'] else 'DIFFERS'}; "
                      f"its torch total {seen['torch']:,}, FlopCounterMode "
                      f"{fc.get_total_flops():,}"
                      f"{'; not counted: ' + str(seen['unknown']) if seen['unknown'] else ''}")
                rows.append((name, f"{b}x3x{h}x{w}", how, ours, seen["exact"]))
    print()
    print("| model | input | counts | symflops (exact) | per-op count of the forward | equal |")
    print("|---|---|---|---:|---:|---|")
    for name, size, how, ours, theirs in rows:
        print(f"| {name} | {size} | {how} | {ours:,} | {theirs:,} | "
              f"{'yes' if ours == theirs else 'NO'} |")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    import symflops as sf
    from symflops.tracing.detection import sized_detector

    if argv[:1] == ["--exact"]:
        return exact_main(argv[1:])
    bad = 0
    rows: list[tuple[str, str, int, int]] = []
    for name in argv or MODELS:
        real, meta = _models(name)
        regimes = SSD_REGIMES if "ssd" in name else ((None, SIZES),)
        for b, (hints, sizes) in [(b, r) for b in BATCHES for r in regimes]:
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cost = sf.trace(sized_detector(meta), f"{b} 3 H W", convention="torch",
                                    hints=hints,
                                    data_dependent=_names(meta, b), warn=False)
            except Exception as e:  # noqa: BLE001 (a failure is reported, then counted)
                print(f"{name} B={b}: does not trace: {type(e).__name__}: {str(e)[:300]}")
                bad += 1
                continue
            fixed = dict(cost.report.fixed)  # type: ignore[attr-defined]
            where = f" at {hints}" if hints else ""
            print(f"{name} B={b}{where}: traced in {time.perf_counter() - started:.1f} s; flops "
                  f"symbols: {sorted(str(s) for s in cost.flops.free_symbols)}"
                  f"{'; FIXED ' + str(fixed) if fixed else ''}")
            bad += bool(fixed)
            for h, w, resize in [(h, w, False) for h, w in sizes] + \
                    ([(RESIZED[0], RESIZED[1], True)] if b == 1 and "ssd" not in name
                     and name not in PER_DETECTION else []):
                theirs, proposals, detections, (hr, wr) = _real(real, b, h, w, resize)
                values = _subs(cost, hr, wr, proposals, detections)
                missing = {str(s) for s in cost.flops.free_symbols} - set(values)
                if missing:
                    print(f"  {h}x{w}: no value for {sorted(missing)}")
                    bad += 1
                    continue
                try:
                    ours = int(cost.subs(**values).flops)
                except Exception as e:  # noqa: BLE001 (outside the domain: reported)
                    print(f"  {h}x{w}: {type(e).__name__}: {str(e)[:200]}")
                    bad += 1
                    continue
                same = ours == theirs
                bad += not same
                counts = ", ".join(f"{k}={v}" for k, v in values.items() if k not in "HW")
                at = f"{h}x{w} resized to {hr}x{wr}" if resize else f"{h}x{w}"
                print(f"  B={b}, {at} ({counts}): symflops {ours:,} FLOPs (torch), "
                      f"FlopCounterMode {theirs:,} {'equal' if same else 'DIFFERS'}")
                rows.append((name, f"{b}x3x{at}", ours, theirs))
    print()
    print("| model | input | symflops (torch) | FlopCounterMode | equal |")
    print("|---|---|---:|---:|---|")
    for name, size, ours, theirs in rows:
        print(f"| {name} | {size} | {ours:,} | {theirs:,} | {'yes' if ours == theirs else 'NO'} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
