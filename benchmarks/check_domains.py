"""Check that traced formulas hold on their stated domain on models no one here wrote (issue
17): timm's LeViT (a reshape naming the batch), a ``dynamic_img_size`` DeiT (a path taken
only at the trained size) and a transformers GPT-2 (a position table of ``n_positions``
rows). (TF "SAME" padding, once fitted here, now traces symbolically at every size:
check_tf_same.py.)

For each: the domain as printed, then the formula against ``FlopCounterMode`` on real CPU
tensors at sizes inside the domain (attention run unfused where the model allows it:
FlopCounterMode on CPU counts no scaled-dot-product attention), and a point outside it,
which must raise ``OutsideDomain``. timm and transformers do not install beside the CPU torch
of the tests; run in the venv that has them, with this worktree first on the path:

    PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/check_domains.py

Exit status 1 if any figure disagrees or a point outside is answered.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.errors import OutsideDomain


def _flops(model: torch.nn.Module, *args: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*args)
    return int(fc.get_total_flops())


def _timm(name: str, **kw: Any) -> torch.nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, **kw).eval()


def _unfused(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    return model


def _gpt2() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=500)
    cfg._attn_implementation = "eager"
    return GPT2Model(cfg).eval()


def _image(b: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    return (torch.randn(b, 3, h, w),)


def _tokens(b: int, n: int) -> tuple[torch.Tensor, ...]:
    return (torch.zeros(b, n, dtype=torch.long),)


#: name -> (build, trace spec, trace options, points inside, a point outside, the inputs)
CASES: dict[str, tuple[Callable[[], torch.nn.Module], Any, dict[str, Any],
                       list[dict[str, int]], dict[str, int],
                       Callable[..., tuple[torch.Tensor, ...]]]] = {
    "levit_128s": (lambda: _timm("levit_128s"), "B 3 H W", {},
                   [{"B": 1, "H": 224, "W": 224}, {"B": 3, "H": 224, "W": 224}],
                   {"B": 1, "H": 256, "W": 256}, _image),
    "deit_tiny_patch16_224 dynamic_img_size": (
        lambda: _unfused(_timm("deit_tiny_patch16_224", dynamic_img_size=True)), "B 3 H W", {},
        [{"B": 1, "H": 384, "W": 384}, {"B": 2, "H": 256, "W": 320},
         {"B": 1, "H": 1024, "W": 512}], {"B": 1, "H": 300, "W": 300}, _image),
    "gpt2 n_positions=128": (_gpt2, {"input_ids": (("B", "N"), torch.long)},
                             {"hints": {"N": 32}},
                             [{"B": 1, "N": 16}, {"B": 2, "N": 128}], {"B": 1, "N": 200},
                             _tokens),
}


def main() -> int:
    bad = 0
    for name, (build, spec, options, inside, outside, inputs) in CASES.items():
        try:
            model = build()
        except ImportError as e:
            print(f"{name}: not checked ({e})")
            continue
        t = time.perf_counter()
        cost = sf.trace(model, spec, convention="torch", warn=False, **options)
        print(f"{name}: traced in {time.perf_counter() - t:.1f} s; domain: {cost.domain}")
        for point in inside:
            ours = int(cost.subs(**point).flops)
            theirs = _flops(model, *inputs(*point.values()))
            ok = ours == theirs
            bad += not ok
            print(f"  {point}: symflops {ours:,} FLOPs, FlopCounterMode {theirs:,} "
                  f"{'ok' if ok else 'DIFFERENT'}")
        try:
            cost.subs(**outside)
        except OutsideDomain as e:
            print(f"  {outside}: refused ({str(e)[:140]}...)")
        else:
            bad += 1
            print(f"  {outside}: ANSWERED outside the domain")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
