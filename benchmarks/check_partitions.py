"""Check symflops' symbolic traces of torchvision's partitioned attention models, MaxViT
(block and grid partitions) and MViT v2 (pooled attention with relative positions),
against torch's FlopCounterMode at several input sizes.

Both models fix their input size in the constructor: MaxViT's grid partition and
departition use ``grid_size // partition_size`` computed from ``input_size``, and MViT
reshapes its pooled tokens to ``thw`` from ``spatial_size``/``temporal_size``
(``mvit_v2_s`` hard-codes 224 x 16). Traced as built they are exact at that one size
(``sf.trace(maxvit_t, ("B", 3, 224, 224))``; with a symbolic size ``sf.trace`` refuses
them at once and names the helper). To trace them symbolic in the input size,
``symflops.tracing.input_size.follow_input_size`` sets those sizes from the input on
every call, the partition sizes as functions of ``H`` (what ``maxvit_t(input_size=(H,
H))`` computes in its constructor), and keeps MViT's ``int()`` on sizes symbolic during
its forward (see docs/partitions.md). The reference is FlopCounterMode on a real forward
of ``maxvit_t(input_size=(H, H))`` (its parameters do not depend on the size), and for
MViT, whose builder fixes 224 x 16, of the followed model at each size.

Domains (stated by the formulas, refused outside):

- maxvit_t: ``H = W``, a multiple of 224 (every block's grid must split into 7 x 7
  windows and a 7 x 7 grid), ``H >= 448`` (at 224 the last grid partition has size 1,
  where torch takes another path: trace it at its size); ``B = 1`` is checked by a trace
  with the batch the number 1 (torch's reshapes branch on it) and compared here.
- mvit_v2_s: ``T, H, W`` off the sizes where the relative-position tables need no
  resizing (``T = 16``, ``H = 224``...: the exact convention counts the resize
  elsewhere; trace those at their size), lower bounds.

torchvision does not import beside the CPU torch the tests use, so this is not a test: run
it in the environment with torchvision:

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_partitions.py
    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_partitions.py maxvit_t

Exit status 1 if a size in the domain disagrees or a model does not trace.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

#: points the formula must refuse (off the lattice, or where torch takes another path)
REFUSED: dict[str, tuple[dict[str, int], ...]] = {
    "maxvit_t": ({"B": 2, "H": 224}, {"B": 2, "H": 500}),
    "mvit_v2_s": ({"B": 1, "T": 16, "H": 224, "W": 224},),
}
#: seconds per trace: MViT's relative-position branches are settled by extra traces
#: (~100 s alone here, 260 s beside other jobs on two cores)
TIME_BUDGET = 1200.0
#: model -> (trace hints, sizes compared: (B, T, H) or (B, H))
DEFAULT: dict[str, tuple[dict[str, int], tuple[tuple[int, ...], ...]]] = {
    "maxvit_t": ({"H": 448}, ((1, 448), (2, 672), (3, 1344), (1, 2240))),
    "mvit_v2_s": ({"T": 16, "H": 256, "W": 256},
                  ((1, 32, 320), (1, 8, 512), (2, 24, 160), (1, 20, 1024))),
}


def _short(expr: Any, limit: int = 160) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def flop_counter_macs(model: Any, shape: tuple[int, ...]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(*shape, device="meta"))
    return int(counter.get_total_flops()) // 2


def check(name: str) -> tuple[bool, list[str]]:
    import torch
    import torchvision

    import symflops as sf
    from symflops.errors import OutsideDomain, SymflopsError
    from symflops.tracing.input_size import follow_input_size

    hints, points = DEFAULT[name]
    with torch.device("meta"):
        bare = torchvision.models.get_model(name, weights=None).eval()
    model = follow_input_size(bare)
    video = "T" in hints
    spec = "B 3 T H W" if video else "B 3 H H"
    started = time.perf_counter()
    refused = False
    try:  # the bare model with a symbolic size: refused at once, naming the helper
        sf.trace(bare, spec, hints, convention="macs", warn=False)
    except SymflopsError as e:
        refused = "follow_input_size" in e.message + (e.fix or "")
    lines = [f"{name} as built, {spec}: {'refused' if refused else 'NOT REFUSED'} in "
             f"{time.perf_counter() - started:.2f} s"]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(model, spec, hints, convention="macs", time_budget=TIME_BUDGET)
    seconds = time.perf_counter() - started
    fixed = dict(cost.report.fixed)  # type: ignore[attr-defined]
    dims = "B, T, H, W" if video else "B, H (= W)"
    lines.append(f"{name}: follow_input_size traced at {hints} in {seconds:.1f} s; "
                 f"{'fixed ' + str(fixed) if fixed else 'symbolic in ' + dims}; "
                 f"MACs = {_short(cost.macs)}")
    ok = refused and not fixed
    for point in points:
        shape: tuple[int, ...]
        if video:
            b, t, s = point
            shape, at = (b, 3, t, s, s), {"B": b, "T": t, "H": s, "W": s}
        else:
            b, s = point
            shape, at = (b, 3, s, s), {"B": b, "H": s}
        reference = model
        if not video:  # torchvision's own model built for that size
            with torch.device("meta"):
                reference = torchvision.models.get_model(name, weights=None,
                                                         input_size=(s, s)).eval()
        ref = flop_counter_macs(reference, shape)
        say = ", ".join(f"{k}={v}" for k, v in at.items())
        try:
            ours = int(cost.subs(**at).macs)
        except OutsideDomain as e:
            ok = False  # every point listed is meant to be inside the domain
            lines.append(f"  {say}: outside the domain ({e.message}); FlopCounterMode {ref:,}")
            continue
        same = ours == ref
        ok = ok and same
        lines.append(f"  {say}: symflops {ours:,} MACs, FlopCounterMode {ref:,} "
                     f"{'equal' if same else 'DIFFERS'}")
    for at in REFUSED.get(name, ()):
        say = ", ".join(f"{k}={v}" for k, v in at.items())
        try:
            ours = int(cost.subs(**at).macs)
        except OutsideDomain as e:
            lines.append(f"  {say}: refused ({e.message[:150]})")
            continue
        ok = False
        lines.append(f"  {say}: NOT REFUSED ({ours:,} MACs)")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(DEFAULT))
    args = p.parse_args(argv)
    bad = 0
    for name in args.models:
        try:
            ok, lines = check(name)
        except Exception as e:  # noqa: BLE001 - a report, not a test: say why and go on
            ok, lines = False, [f"{name}: NOT TRACED: {type(e).__name__}: {str(e)[:300]}"]
        bad += not ok
        print("\n".join(lines), flush=True)
    print(f"{len(args.models) - bad} of {len(args.models)} agree with FlopCounterMode")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
