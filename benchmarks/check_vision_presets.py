"""Check symflops' vision presets (``symflops.presets.vit/swin/resnet/mobilenet_v2``, built
from ``sf.nn`` layers only) against real torchvision.

For each model: the preset's parameters and MACs at torchvision's crop size against the
weights' published ``meta["num_params"]`` and ``meta["_ops"]`` (GFLOPS as torchvision writes
them: multiply-accumulates), the preset's parameters against ``sum(p.numel())`` of the
torchvision model, and, with ``--trace``, the preset's exact work kind by kind against
``sf.trace`` of the torchvision model at that size (concrete: Swin's window partition
does not trace with symbolic sizes), and for the CNNs and Swin, which take any ``H, W``, the
preset's symbolic formula at 300 x 200 against the trace there.

torchvision does not import beside the CPU torch the tests use; run it in the venv that
has it, with this worktree first on the path:

    PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/check_vision_presets.py --trace

Exit status 1 if any figure disagrees.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from symflops import presets

#: torchvision name -> the preset that claims to match it
PRESETS: dict[str, Callable[[], Any]] = {
    "vit_b_16": lambda: presets.vit(),
    "vit_b_32": lambda: presets.vit(patch=32),
    "vit_l_16": lambda: presets.vit(layers=24, heads=16, dim=1024, mlp_dim=4096),
    "swin_t": lambda: presets.swin(),
    "swin_s": lambda: presets.swin(depths=(2, 2, 18, 2)),
    "swin_b": lambda: presets.swin(embed_dim=128, depths=(2, 2, 18, 2), heads=(4, 8, 16, 32)),
    "resnet18": lambda: presets.resnet("basic", (2, 2, 2, 2)),
    "resnet34": lambda: presets.resnet("basic", (3, 4, 6, 3)),
    "resnet50": lambda: presets.resnet(),
    "resnet101": lambda: presets.resnet(layers=(3, 4, 23, 3)),
    "resnext50_32x4d": lambda: presets.resnet(groups=32, width_per_group=4),
    "wide_resnet50_2": lambda: presets.resnet(width_per_group=128),
    "mobilenet_v2": lambda: presets.mobilenet_v2(),
}


def _work(cost: Any) -> dict[str, int]:
    # global average pooling: ``pooling`` in sf.nn, a mean (``elementwise``) in some traces
    w = {k: int(v) for k, v in cost.work.items() if v != 0}
    w["elementwise"] = w.get("elementwise", 0) + w.pop("pooling", 0)
    return w


def check(name: str, trace: bool) -> tuple[bool, str]:
    import torch
    import torchvision

    import symflops as sf

    weights = torchvision.models.get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size[0]
    started = time.perf_counter()
    cost = PRESETS[name]().cost((1, 3, crop, crop))
    seconds = time.perf_counter() - started
    gmacs = int(cost.macs) / 1e9
    params = int(cost.params)
    model = torchvision.models.get_model(name, weights=None).eval()
    numel = sum(p.numel() for p in model.parameters())
    ok = (round(gmacs, 3) == round(weights.meta["_ops"], 3)
          and params == weights.meta["num_params"] == numel)
    line = (f"{name:16s} crop={crop} MACs {gmacs:7.3f} G (published "
            f"{weights.meta['_ops']:.3f}); params {params:,} (published "
            f"{weights.meta['num_params']:,}, model {numel:,}); preset in {seconds:.2f} s")
    if trace:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            traced = sf.trace(model, (1, 3, crop, crop))
        same = _work(traced) == _work(cost) and int(traced.params) == params
        ok = ok and same
        line += (f"; trace kind by kind {'equal' if same else 'DIFFERS'} "
                 f"({time.perf_counter() - started:.1f} s)")
        if not same:
            line += f"\n    preset {_work(cost)}\n    traced {_work(traced)}"
        if name.startswith(("swin", "resnet", "mobilenet", "wide", "resnext")):
            # any H, W: the preset's symbolic formula at a size torchvision pads (Swin)
            from symflops.symbols import B, H, W

            general = PRESETS[name]().cost((B, 3, H, W)).subs(B=1, H=300, W=200)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                other = sf.trace(model, (1, 3, 300, 200))
            same = _work(general) == _work(other)
            ok = ok and same
            line += f"; symbolic at 300x200 {'equal' if same else 'DIFFERS'}"
    return ok, ("ok      " if ok else "DIFFERS ") + line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(PRESETS))
    p.add_argument("--trace", action="store_true",
                   help="also trace the torchvision model and compare kind by kind")
    args = p.parse_args(argv)
    bad = 0
    for name in args.models:
        ok, line = check(name, args.trace)
        bad += not ok
        print(line, flush=True)
    print(f"{len(args.models) - bad} of {len(args.models)} presets agree with torchvision")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
