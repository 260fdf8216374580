"""Check symflops' symbolic traces of timm image classifiers against torch's FlopCounterMode
(a count nobody here wrote), built on the meta device with random-init weights.

Each model is traced ONCE with ``"B 3 H W"`` and its entry in ``MODELS`` says what to expect:

- ``symbolic``: no dim fixed, every op counted, and under the torch convention equal to
  FlopCounterMode at B = 1, 224 x 224 and at B = 3 at a second size (288 x 320 unless the
  entry names another the model accepts);
- ``pinned``: the model itself fixes H and W (a position table of the trained grid, a
  reshape naming it: the reason is in the entry); B stays symbolic and the formula equals
  FlopCounterMode at B = 1 and B = 3 at that size;
- ``gap``: a known failure of symflops, with the error or pin it gives today.

Exit status 1 on any disagreement and on any change from what the entry expects (a gap
that closes too: update its entry). timm does not install beside the CPU torch of the
tests; run in the venv that has it, with this worktree first on the path:

    PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/check_timm.py [--only a,b] [--all]

By default the models whose trace takes over a minute on a loaded 2-core machine (``SLOW``,
the known gaps among them) are left out and named; ``--all`` runs them too (about 20 minutes
more; benchmarks/run.py's ``hard`` section runs the default set). Prints one row
per model: name | what the trace gave | ops not counted | sizes
equal to FlopCounterMode | seconds | verdict.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

#: (B, H, W) compared for a symbolic model unless its entry names other sizes
SYMBOLIC_SIZES = ((1, 224, 224), (3, 288, 320))


@dataclass(frozen=True)
class Case:
    """What one timm model is expected to give."""

    expect: str  # "symbolic" | "pinned" | "gap"
    why: str = ""  # pinned: what pins the size; gap: what is missing
    at: int = 224  # pinned: the size the model fixes
    sizes: tuple[tuple[int, int, int], ...] = ()  # (B, H, W) compared; default by ``expect``
    hints: dict[str, int] = field(default_factory=dict)
    budget: float = 600.0  # seconds the trace may take
    gives: str = ""  # gap: a piece of the row it gives today
    #: (B, H, W) the symbolic formula must refuse (a branch the trace did not take there)
    refused: tuple[tuple[int, int, int], ...] = ()
    #: square sizes traced once more with H = W fixed (B symbolic) and compared at B = 1, 3:
    #: the points the symbolic formula refuses
    concrete: tuple[int, ...] = ()


def _sym(*sizes: tuple[int, int, int], **hints: int) -> Case:
    return Case("symbolic", sizes=sizes or SYMBOLIC_SIZES, hints=hints)


def _pin(why: str, at: int = 224) -> Case:
    return Case("pinned", why, at, ((1, at, at), (3, at, at)), {"H": at, "W": at})


POS = "a learned position table of the trained grid, added without resampling"
STRICT = "timm's PatchEmbed asserts the trained image size (strict_img_size)"
MODELS: dict[str, Case] = {
    # convolutional networks: every size
    "convnext_tiny": _sym(),
    "efficientnet_b0": _sym(),
    "regnety_002": _sym(),
    "resnest14d": _sym(),
    "res2net50_14w_8s": _sym(),
    "dla34": _sym(),
    "dpn68": _sym(),
    "hrnet_w18_small": _sym(),
    "cspdarknet53": _sym(),
    "ghostnet_100": _sym(),
    "mixnet_s": _sym(),
    "poolformer_s12": _sym(),
    "edgenext_xx_small": _sym(),
    "fastvit_t8": _sym(),
    "repvit_m1": _sym(),
    "tinynet_a": _sym(),
    "nfnet_f0": _sym(),
    "rexnet_100": _sym(),
    "selecsls42b": _sym(),
    "vovnet39a": _sym(),
    "densenet121": _sym(),
    "inception_v3": _sym(),
    "resnet50": _sym(),
    "mobilenetv3_large_100": _sym(),
    "efficientvit_b0": _sym(),
    # attention at every size
    # windows of 7 over the stride-4 map, padded: the formula holds where the padding
    # rounds the same way as at 224 (H/4 a multiple of 7 and so on), e.g. 448 x 672
    "twins_svt_small": _sym((1, 224, 224), (3, 448, 672)),
    "xcit_nano_12_p16_224": _sym(),
    "sequencer2d_s": _sym(),
    # at 224 its last stage is one 7 x 7 window: the formula holds for H, W <= 224 (a
    # trace with larger hints covers larger sizes), 288 x 320 refused
    "davit_tiny": Case("symbolic", sizes=((1, 224, 224), (3, 160, 192)),
                       refused=((1, 288, 320),)),
    "focalnet_tiny_srf": _sym(),
    # the last MobileViT block rounds its 7 x 7 map (at 224) up to 8 x 8 by interpolation:
    # the formula holds where ceil(H/32) is odd and ceil(H/8), ceil(H/16) even (both axes);
    # 256 (8 x 8 there, no interpolation) is another code path, refused
    "mobilevit_xxs": Case("symbolic", sizes=((1, 224, 224), (3, 288, 352)),
                          refused=((1, 256, 256),)),
    # interpolates the input to 240 x 240 and 224 x 224 (one branch each) unless it is that
    # size already: one formula off those sizes (refused there), traced again at each
    "crossvit_tiny_240": Case("symbolic", sizes=((1, 288, 320), (3, 256, 256), (2, 200, 264)),
                              refused=((1, 224, 224), (1, 240, 240)), concrete=(224, 240)),
    # trained grid fixed by the model
    "coat_lite_tiny": _pin(STRICT),
    "pit_ti_224": _pin(POS),
    "visformer_tiny": _pin(POS),
    "cait_xxs24_224": _pin(POS),
    "convit_tiny": _pin(STRICT),
    "tnt_s_patch16_224": _pin("the pixel embedding's reshape names the trained patch grid"),
    "volo_d1_224": _pin(POS),
    "efficientformer_l1": _pin("the last stage's attention bias table of the trained grid"),
    "swin_tiny_patch4_window7_224": _pin("relative position bias and the attention mask of "
                                         "the trained window grid"),
    "eva02_tiny_patch14_224": _pin(POS + " (and rotary tables of it)"),
    "beit_base_patch16_224": _pin("relative position bias of the trained grid"),
    "deit_tiny_patch16_224": _pin(POS),
    "vit_tiny_patch16_224": _pin(POS),
    "gmlp_ti16_224": _pin("the spatial gating unit's Linear over the trained token count"),
    "levit_128s": _pin("attention bias tables and a reshape naming the trained grid"),
    "coatnet_nano_rw_224": _pin("relative position bias of the trained window"),
    "resmlp_12_224": _pin("the token-mixing Linear over the trained token count"),
    "mixer_b16_224": _pin("the token-mixing Linear over the trained token count"),
    # windows of 8 at every stage: H, W multiples of 256; traced from its own 256 (hints: at
    # the default 224 torch refuses the partition, and the error suggests 256). The trace
    # moves off 256 (one window at the last stage pins it) and the formula refuses the
    # one-window size, 256 x 256, which a trace there answers
    "maxvit_nano_rw_256": Case("symbolic", sizes=((1, 512, 512), (3, 512, 768)),
                               hints={"H": 256, "W": 256},
                               refused=((1, 224, 224), (1, 256, 256)), concrete=(256,),
                               budget=1200.0),
    # pinned by the model, traces over a minute
    # GCViT's global query is made at the trained 7 x 7 window grid and read over every
    # window: it runs at 221..224 only (B once pinned too: fixed in _assembly._pinned_by)
    "gcvit_xxtiny": Case("pinned", "its global query is the trained 7 x 7 window grid, "
                         "repeated over the windows", 224, ((1, 224, 224), (3, 224, 224)),
                         {"H": 224, "W": 224}, budget=2400.0),
    # Hiera's Unroll/Reroll reshape the token grid sized at construction (56 x 56)
    "hiera_tiny_224": Case("pinned", "Unroll/Reroll of the 56 x 56 token grid fixed at "
                           "construction", 224, ((1, 224, 224), (3, 224, 224)),
                           {"H": 224, "W": 224}, budget=2400.0),
}

#: traces that take over a minute on a loaded 2-core machine (run with ``--all``)
SLOW = {"gcvit_xxtiny", "hiera_tiny_224", "mobilevit_xxs", "maxvit_nano_rw_256"}


def _build(name: str) -> Any:
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    return model.eval().requires_grad_(False)


def _reference(model: Any, b: int, h: int, w: int) -> int:
    """FlopCounterMode's count of one forward on meta at (b, 3, h, w)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.empty(b, 3, h, w, device="meta"))
    return int(fc.get_total_flops())


def check(name: str, case: Case) -> tuple[list[str], bool]:
    """The row printed for ``name`` and whether it is what ``case`` expects."""
    import symflops as sf
    import symflops.errors
    from symflops.tracing._assembly import TracedCost

    start = time.perf_counter()
    try:
        model = _build(name)
    except Exception as e:  # noqa: BLE001 - timm itself: reported, not raised
        return [name, "not built", f"{type(e).__name__}: {e}"[:80], "", "", "FAIL"], False
    try:
        cost = sf.trace(model, "B 3 H W", case.hints or None, warn=False, time_budget=case.budget)
    except sf.SymflopsError as e:
        seconds = f"{time.perf_counter() - start:.1f}"
        got = f"error {type(e).__name__}: {e.message[:70]}"
        ok = case.expect == "gap" and case.gives == "error"
        return [name, got, "", "", seconds, "known gap" if ok else "FAIL"], ok
    seconds = f"{time.perf_counter() - start:.1f}"
    assert isinstance(cost, TracedCost)
    report = cost.report
    fixed = dict(report.fixed)
    shown = "fixes " + ", ".join(f"{k}={v}" for k, v in sorted(fixed.items())) if fixed \
        else "symbolic"
    unknown = ", ".join(sorted(report.unknown)) or "-"
    if case.expect == "gap":
        ok = case.gives == "fixes" and bool(fixed)
        return [name, shown, unknown, "", seconds, "known gap" if ok else "CHANGED"], ok
    want_fixed = {} if case.expect == "symbolic" else {"H": case.at, "W": case.at}
    torch_flops = cost.with_convention("torch")
    equal: list[str] = []
    bad: list[str] = []
    for b, h, w in case.sizes:
        try:
            ours = int(torch_flops.subs(B=b, H=h, W=w).flops)
        except sf.SymflopsError as e:
            bad.append(f"{b}x{h}x{w}: refused ({e.message[:60]})")
            continue
        theirs = _reference(model, b, h, w)
        (equal if ours == theirs else bad).append(
            f"{b}x{h}x{w}" if ours == theirs else f"{b}x{h}x{w}: {ours} vs {theirs}")
    for b, h, w in case.refused:
        try:
            torch_flops.subs(B=b, H=h, W=w)
            bad.append(f"{b}x{h}x{w}: answered outside the domain")
        except sf.errors.OutsideDomain:
            equal.append(f"{b}x{h}x{w} refused")
    for s in case.concrete:
        at = sf.trace(model, f"B 3 {s} {s}", warn=False, time_budget=case.budget)
        for b in (1, 3):
            ours, theirs = int(at.with_convention("torch").subs(B=b).flops), \
                _reference(model, b, s, s)
            (equal if ours == theirs else bad).append(
                f"{b}x{s}x{s} traced there" if ours == theirs else
                f"{b}x{s}x{s} traced there: {ours} vs {theirs}")
    ok = fixed == want_fixed and unknown == "-" and not bad
    verdict = "ok" if ok else "FAIL" + ("" if fixed == want_fixed else
                                        f" (expected {case.expect})")
    return [name, shown, unknown, ", ".join(equal) + ("; NOT " + "; ".join(bad) if bad else ""),
            seconds, verdict], ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated timm model names")
    p.add_argument("--all", action="store_true", help="the SLOW models too")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    try:
        import timm
    except ImportError as e:
        print(f"timm is not installed here: not checked ({e})")
        return 0
    print(f"timm {timm.__version__}")
    names = args.only.split(",") if args.only else [
        n for n in MODELS if args.all or n not in SLOW]
    if not args.only and not args.all:
        print(f"left out (over a minute each; --all runs them): {', '.join(sorted(SLOW))}")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"no entry for {unknown}: add one to MODELS")
        return 1
    failed = []
    for name in names:
        row, ok = check(name, MODELS[name])
        print(" | ".join(row), flush=True)
        if not ok:
            failed.append(name)
    gaps = [n for n in names if MODELS[n].expect == "gap"]
    print(f"{len(names) - len(failed)} of {len(names)} as expected "
          f"({len(names) - len(gaps)} equal to FlopCounterMode at two sizes or more, "
          f"{len(gaps)} known gaps: {', '.join(gaps) or 'none'})"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
