"""Check symflops' symbolic traces of timm's TensorFlow-"SAME"-padded models against torch's
FlopCounterMode (a count nobody here wrote), on and off the strides' lattice and far away.

timm computes the padding from the input size on every call (``pad_same``); the trace keeps
it symbolic: one formula in B, H, W with no condition left. Run it where timm imports
(timm needs torchvision; see check_torchvision.py):

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_tf_same.py

Exit status 1 if a size disagrees or a model does not trace symbolically.
"""

from __future__ import annotations

import sys
import time
import warnings

MODELS = ("tf_efficientnetv2_s", "tf_efficientnet_b0", "tf_mobilenetv3_large_100")
#: (B, H, W): small and odd, the crop size, off the lattice with a batch, far away
SIZES = ((1, 33, 47), (1, 224, 224), (3, 301, 225), (1, 2048, 1024))


def main() -> int:
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf

    bad = 0
    for name in MODELS:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False).eval()
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost = sf.trace(model, "B 3 H W", warn=False, convention="torch")
        fixed = dict(cost.report.fixed)  # type: ignore[attr-defined]
        print(f"{name}: traced in {time.perf_counter() - started:.1f} s; domain: "
              f"{cost.domain}{'; FIXED ' + str(fixed) if fixed else ''}")
        bad += bool(fixed)
        for b, h, w in SIZES:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(torch.empty(b, 3, h, w, device="meta"))
            ours, theirs = int(cost.subs(B=b, H=h, W=w).flops), counter.get_total_flops()
            same = ours == theirs
            bad += not same
            print(f"  B={b}, H={h}, W={w}: symflops {ours:,} FLOPs (torch), "
                  f"FlopCounterMode {theirs:,} {'equal' if same else 'DIFFERS'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
