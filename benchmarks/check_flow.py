"""Check symflops' symbolic traces of torchvision's optical-flow models (RAFT) against torch's
FlopCounterMode (a count nobody here wrote), at sizes RAFT accepts and at sizes it refuses.

RAFT encodes both images at stride 8, builds a 4-level correlation pyramid and refines the
flow ``num_flow_updates`` times (12), looking the pyramid up with ``aten.grid_sampler_2d``
(counted by symflops' grid_sampler handler: 0 under torch/macs, as FlopCounterMode does, and
the bilinear taps under exact). The trace keeps B, H and W symbolic; its domain is torch's
own: H and W multiples of 8 (RAFT raises otherwise) and at least 128 (the pyramid needs 16
cells at stride 8; RAFT raises below). Run it where torchvision imports:

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_flow.py

Exit status 1 if a size inside the domain disagrees, a size RAFT refuses is not refused, an
op is left uncounted, or a size is pinned.
"""

from __future__ import annotations

import sys
import time
import warnings

MODELS = ("raft_small", "raft_large")
#: (B, H, W): the smallest size RAFT accepts, a batch, Sintel (436x1024 padded to 440), wide
SIZES = ((1, 128, 128), (2, 256, 320), (1, 440, 1024), (1, 128, 2048))
#: sizes RAFT itself refuses (off the stride-8 lattice; a pyramid under 16 cells)
REFUSED = ((1, 132, 128), (1, 120, 128))


def main() -> int:
    import torch
    import torchvision.models.optical_flow as flow
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf

    bad = 0
    for name in MODELS:
        with torch.device("meta"):
            model = getattr(flow, name)().eval()
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost = sf.trace(model, {"image1": ("B", 3, "H", "W"), "image2": ("B", 3, "H", "W")},
                            warn=False)
        report = cost.report  # type: ignore[attr-defined]
        fixed, unknown = dict(report.fixed), dict(report.unknown)
        print(f"{name}: traced in {time.perf_counter() - started:.1f} s; domain: {cost.domain}"
              f"{'; FIXED ' + str(fixed) if fixed else ''}"
              f"{'; NOT COUNTED ' + str(unknown) if unknown else ''}")
        bad += bool(fixed) + bool(unknown)
        torch_cost = cost.with_convention("torch")
        for b, h, w in SIZES:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(torch.empty(b, 3, h, w, device="meta"), torch.empty(b, 3, h, w,
                                                                          device="meta"))
            ours, theirs = int(torch_cost.subs(B=b, H=h, W=w).flops), counter.get_total_flops()
            exact = int(cost.subs(B=b, H=h, W=w).flops)
            same = ours == theirs
            bad += not same
            print(f"  B={b}, H={h}, W={w}: symflops {ours:,} FLOPs (torch), FlopCounterMode "
                  f"{theirs:,} {'equal' if same else 'DIFFERS'}; {exact:,} FLOPs (exact)")
        for b, h, w in REFUSED:
            ok = cost.domain.contains(B=b, H=h, W=w)
            try:
                model(torch.empty(b, 3, h, w, device="meta"), torch.empty(b, 3, h, w,
                                                                          device="meta"))
                theirs = "runs"
            except ValueError as err:
                theirs = f"refuses ({str(err)[:60]}...)"
            bad += ok or theirs == "runs"
            print(f"  B={b}, H={h}, W={w}: symflops {'ACCEPTS' if ok else 'refuses'}; "
                  f"RAFT {theirs}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
