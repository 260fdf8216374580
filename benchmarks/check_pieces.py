"""Check symflops' joined traces (one formula across a model's code paths,
``symflops.tracing.pieces``) against torch's FlopCounterMode, at sizes in each piece.

Each model is traced with ``sf.trace(model, "B 3 H W", paths="all")`` once from the
default example (224 x 224): the trace reads its domain's bounds, traces past them and joins
the pieces into one Piecewise Cost. The joined formula is then evaluated at each size and
compared with FlopCounterMode's count of a real forward on the meta device (FLOPs, torch
convention: 2 per MAC of conv/mm/bmm/attention), square and non-square sizes, in every
piece; a size the joined formula refuses (a gap, or past the pieces) is a failure too.

torchvision and timm live in their own environment:

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_pieces.py
    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_pieces.py swin_t --below

Exit status 1 on any mismatch, refusal or failed trace.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

#: model -> (how to build it, the sizes (H, W) that must be answered (B = 1), the sizes
#: that may fall in no piece: refused there, or answered and then compared like the others).
#: swin_t and swin_s: three pieces, 116 <= H, W <= 227; H >= 228, 116 <= W <= 227;
#: H >= 116, W >= 228 (the middle one's window view check, one window column in the last
#: stage, is read as W <= 227: symflops.tracing._assembly._split_interval; it pinned H and
#: W before); sizes below 116 have no piece (refused; --below --max-pieces 16 traces there:
#: 14 pieces covering H, W >= 36, 100 x 100 and 600 x 100 then answered and equal).
MODELS: dict[str, tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]] = {
    "swin_t": ("torchvision", ((224, 224), (256, 256), (320, 320), (512, 512), (160, 160),
                               (224, 320), (1024, 768), (200, 900), (512, 200), (1024, 160),
                               (300, 224), (229, 117), (228, 227), (4000, 116), (117, 4000)),
               ((100, 100), (600, 100))),
    "swin_s": ("torchvision", ((224, 224), (320, 320), (512, 200), (300, 224), (229, 117),
                               (160, 700)), ((100, 100),)),
    #: swin_v2_t: windows of 8, so the bounds are 132 and 259 (8 * 32 + 3)
    "swin_v2_t": ("torchvision", ((224, 224), (256, 256), (384, 384), (512, 200),
                                  (1024, 160), (260, 259), (261, 133), (200, 900)),
                  ((100, 100), (600, 120))),
    "davit_tiny": ("timm", ((224, 224), (256, 256), (384, 384), (160, 192), (224, 384),
                            (800, 608), (97, 131)), ()),
}


def build(name: str, source: str) -> Any:
    import torch

    with torch.device("meta"):
        if source == "torchvision":
            import torchvision

            return torchvision.models.get_model(name, weights=None).eval()
        import timm

        return timm.create_model(name, pretrained=False).eval()


def counter_flops(model: Any, h: int, w: int) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, h, w, device="meta"))
    return int(counter.get_total_flops())


def check(name: str, below: bool, max_pieces: int) -> bool:
    import symflops as sf
    from symflops.tracing.pieces import PiecewiseCost

    source, sizes, gaps = MODELS[name]
    model = build(name, source)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.tracing.trace_pieces(model, "B 3 H W", convention="torch", below=below,
                                       max_pieces=max_pieces)
    seconds = time.perf_counter() - started
    pieces = cost.pieces if isinstance(cost, PiecewiseCost) else (cost,)
    print(f"== {name}: {len(pieces)} code paths joined in {seconds:.1f} s "
          f"(below={below}, max_pieces={max_pieces})")
    for i, (piece, point) in enumerate(zip(pieces, cost.report.points, strict=True)
                                       if isinstance(cost, PiecewiseCost) else
                                       [(cost, cost.report.hints)], 1):
        at = ", ".join(f"{k}={v}" for k, v in point.items())
        print(f"   piece {i}: traced at {at}; domain: {piece.domain}")
    for note in cost.notes:
        if note.startswith(("past the pieces", "one code path", "the code path traced")):
            print(f"   {note[:300]}")
    if isinstance(cost, PiecewiseCost):
        for point, what in cost.report.tried:
            print(f"   tried {', '.join(f'{k}={v}' for k, v in point.items())}: {what[:120]}")
    ok = True
    for h, w in (*sizes, *gaps):
        expected = counter_flops(model, h, w)
        try:
            got = int(cost.evaluate("flops", B=1, H=h, W=w))
        except sf.SymflopsError as e:
            must = (h, w) in sizes
            print(f"   H={h} W={w}: refused{' (FAILURE: must be answered)' if must else ''}: "
                  f"{str(e)[:160]}...")
            ok &= not must
            continue
        which = cost.domain.which({sf.symbols.symbol("B"): 1, sf.symbols.symbol("H"): h,
                                   sf.symbols.symbol("W"): w}) \
            if isinstance(cost, PiecewiseCost) else 0
        same = got == expected
        ok &= same
        print(f"   H={h} W={w} (piece {None if which is None else which + 1}): symflops "
              f"{got:,} FLOPs (torch convention), FlopCounterMode {expected:,}: "
              f"{'equal' if same else 'MISMATCH'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help=f"default: all of {', '.join(MODELS)}")
    parser.add_argument("--below", action="store_true",
                        help="also trace below the lower bounds (more pieces)")
    parser.add_argument("--max-pieces", type=int, default=8)
    args = parser.parse_args(argv)
    ok = True
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}: choose from {', '.join(MODELS)}")
    for name in args.models or list(MODELS):
        try:
            ok &= check(name, args.below, args.max_pieces)
        except Exception as e:  # a failed trace is a failure of this check, said in one line
            print(f"== {name}: FAILED {type(e).__name__}: {str(e)[:300]}")
            ok = False
    print("all equal" if ok else "MISMATCH or failure")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
