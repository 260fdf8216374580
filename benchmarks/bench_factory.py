"""sf.trace_factory: speed of a three-hyperparameter ViT factory on the meta device, and
its formulas checked against torchvision's published figures.

    PYTHONPATH=$PWD python benchmarks/bench_factory.py            # the plain-torch mirror
    PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/bench_factory.py --torchvision

With ``--torchvision`` the factories are torchvision's own constructors
(``VisionTransformer``, ``swin_t``'s ``SwinTransformer``), and the formula is compared with
each weight's ``meta["_ops"]`` (GMACs, three decimals as torchvision rounds) and
``meta["num_params"]``. Exit status 1 if any figure disagrees.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import symflops as sf

VIT = {"image_size": "H", "num_layers": "L", "hidden_dim": "dim", "mlp_dim": "4*dim",
       "num_heads": "dim/64"}
#: (weights name, patch size, H, L, dim)
VIT_POINTS = [("ViT_B_16_Weights.IMAGENET1K_V1", 16, 224, 12, 768),
              ("ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1", 16, 384, 12, 768),
              ("ViT_L_16_Weights.IMAGENET1K_V1", 16, 224, 24, 1024),
              ("ViT_B_32_Weights.IMAGENET1K_V1", 32, 224, 12, 768)]


def _published(name: str) -> tuple[float, int] | None:
    try:
        import torchvision
    except ImportError:
        return None
    group, member = name.split(".")
    meta = getattr(torchvision.models, group)[member].meta
    return meta["_ops"], meta["num_params"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torchvision", action="store_true",
                        help="trace torchvision's constructors and compare with _ops")
    args = parser.parse_args()
    if args.torchvision:
        import torchvision

        make = torchvision.models.VisionTransformer
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from vit import vit as make  # type: ignore[import-not-found]
    started = time.perf_counter()  # torch's first trace pays its one-time set-up
    import torch

    sf.trace(torch.nn.Linear(2, 2), "B 2")
    print(f"warm-up (first trace in the process): {time.perf_counter() - started:.1f} s")
    bad = 0
    formulas = {}
    for patch in (16, 32):
        started = time.perf_counter()
        fixed = {"patch_size": patch}
        if args.torchvision:
            fixed["num_classes"] = 1000
        cost = sf.trace_factory(make, "B 3 H H", VIT, fixed, convention="macs")
        seconds = time.perf_counter() - started
        formulas[patch] = cost
        report = cost.factory
        print(f"ViT patch {patch}: 3 hyperparameters (H, L, dim) + B in {seconds:.1f} s: "
              f"{len(report.solved)} traces in the solve, {report.traces} in all (lattice "
              f"and degree search, {len(report.verified)} verification points)")
        print(f"  MACs = {cost.macs}")
    for name, patch, h, layers, dim in VIT_POINTS:
        at = formulas[patch].subs(B=1, H=h, L=layers, dim=dim)
        macs, params = int(at.macs), int(at.params)
        line = f"{name}: {macs / 1e9:.3f} GMACs, {params:,} params"
        published = _published(name) if args.torchvision else None
        if published is not None:
            ok = round(macs / 1e9, 3) == published[0] and params == published[1]
            bad += not ok
            line += f"; torchvision publishes {published[0]} / {published[1]:,}: " + \
                ("OK" if ok else "MISMATCH")
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
