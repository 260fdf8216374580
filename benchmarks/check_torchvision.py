"""Check symflops against torchvision's published figures (a reference nobody here wrote).

torchvision's weights carry ``meta["_ops"]`` (GFLOPS as torchvision writes it: multiply-
accumulates of conv/linear at the weights' crop size, i.e. symflops' ``macs`` convention)
and ``meta["num_params"]``. This script traces each model ONCE with symbolic ``B, H, W``,
substitutes the crop size and compares, three decimals as torchvision rounds.

torchvision does not import beside the CPU torch the tests use, so this is not a test: run
it in a separate environment (see README, Development):

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tv/bin/pip install -e . && /tmp/tv/bin/python benchmarks/check_torchvision.py

Exit status 1 if any model disagrees; models torch cannot trace symbolically are listed
with the reason (they need ``sf.tracing.fit``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

#: constructor arguments that match the published figures: googlenet's num_params leaves its
#: auxiliary classifiers out, inception_v3's counts its AuxLogits (neither runs in eval)
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
          "inception_v3": {"init_weights": False},
          "vit_h_14": {"image_size": 518}}  # its published weights are for 518 x 518

DEFAULT = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "vgg16",
           "densenet121", "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0",
           "squeezenet1_0", "alexnet", "convnext_tiny", "resnext50_32x4d", "wide_resnet50_2",
           "mnasnet1_0", "googlenet", "inception_v3")


def build(name: str) -> tuple[Any, int, Any]:
    """torchvision's ``name`` built on meta (no weight memory; on CPU when the constructor
    computes sizes with tensors), its weights' crop size and the weights' metadata."""
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    kwargs = KWARGS.get(name, {})
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    except NotImplementedError:
        model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    return model, weights.transforms().crop_size[0], weights.meta


def classification_models() -> list[str]:
    """Every classification model torchvision lists."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def trace_symbolic(model: Any, crop: int, **options: Any) -> tuple[Any, bool]:
    """``sf.trace(model, "B 3 H W")`` hinted at the crop size, and whether the model fixed
    its size in its constructor: MaxViT, which ``sf.trace`` refuses at once with a symbolic
    size (symbolic through ``follow_input_size``: check_partitions.py), is traced at the
    crop size instead."""
    import symflops as sf
    from symflops.tracing.input_size import built_for

    if built_for(model) is None:
        return sf.trace(model, "B 3 H W", {"H": crop, "W": crop}, **options), False
    options.pop("fallback", None)
    return sf.trace(model, f"B 3 {crop} {crop}", **options), True


def check(name: str) -> tuple[bool, str]:
    model, crop, meta = build(name)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost, built = trace_symbolic(model, crop, convention="macs")
    seconds = time.perf_counter() - started
    names = {s.name for s in cost.free_symbols}
    at = cost.subs(**{k: v for k, v in {"B": 1, "H": crop, "W": crop}.items() if k in names})
    gmacs = int(at.macs) / 1e9
    params = int(at.params)
    ok_ops = round(gmacs, 3) == round(meta["_ops"], 3)
    ok_params = params == meta["num_params"]
    fixed = f" fixed={dict(cost.report.fixed)}" if cost.report.fixed else \
        f" fixed H=W={crop} (built for it)" if built else ""
    line = (f"{name:22s} crop={crop:3d} MACs {gmacs:8.3f} G (published {meta['_ops']:.3f})"
            f" {'ok' if ok_ops else 'DIFFERS'}; params {params:,} (published "
            f"{meta['num_params']:,}) {'ok' if ok_params else 'DIFFERS'}; "
            f"traced in {seconds:.1f} s{fixed}")
    return ok_ops and ok_params, line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(DEFAULT))
    p.add_argument("--all", action="store_true",
                   help="every classification model torchvision lists")
    args = p.parse_args(argv)
    if args.all:
        args.models = classification_models()
    bad = 0
    for name in args.models:
        try:
            ok, line = check(name)
        except Exception as e:  # noqa: BLE001 - a report, not a test: say why and go on
            ok, line = False, f"{name:22s} NOT TRACED: {type(e).__name__}: {str(e)[:160]}"
        bad += not ok
        print(line, flush=True)
    print(f"{len(args.models) - bad} of {len(args.models)} agree with torchvision's figures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
