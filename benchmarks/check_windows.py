"""Check symflops' symbolic traces of torchvision's windowed vision transformers against
torch's FlopCounterMode (a count nobody here wrote), at several input sizes.

Each model is traced ONCE with symbolic ``B, H, W`` at a hint size, then the formula is
substituted at each size and compared with FlopCounterMode's count of a real forward on
the meta device (MACs: FlopCounterMode's FLOPs / 2). A size outside the formula's domain is
reported with the domain's own message (it is refused, not answered).

torchvision does not import beside the CPU torch the tests use, so this is not a test: run
it in the environment with torchvision (see check_torchvision.py):

    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_windows.py
    PYTHONPATH=. /work/tvenv/bin/python benchmarks/check_windows.py swin_t --hint 320 \\
        --sizes 256,320,448

Exit status 1 if a size in the domain disagrees or a model does not trace.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

#: model -> (hint, sizes compared). Swin's last stage has one 7x7 (v2: 8x8) window up to
#: H = 224 (256): the shifted-window branch starts above, so the hint sits above it
DEFAULT: dict[str, tuple[int, tuple[int, ...]]] = {
    "swin_t": (320, (224, 256, 320, 384, 448, 520)),
    "swin_s": (320, (256, 320, 448)),
    "swin_v2_t": (320, (256, 320, 384, 512)),
    "swin3d_t": (320, (256, 320, 384, 640)),  # video: T traced at 32, compared at T = 32, 48
}
#: video models: their input is ``B 3 T H W``, T traced at 32 (the temporal window of 8 is
#: shifted above T = 16: the domain says T >= 17)
VIDEO = {"swin3d_t": (32, (32, 48))}


def flop_counter_macs(model: Any, size: int, t: int | None = None) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shape = (1, 3, size, size) if t is None else (1, 3, t, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(*shape, device="meta"))
    return int(counter.get_total_flops()) // 2


def check(name: str, hint: int, sizes: tuple[int, ...]) -> tuple[bool, list[str]]:
    import torch
    import torchvision

    import symflops as sf
    from symflops.errors import OutsideDomain

    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None).eval()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in VIDEO:
            cost = sf.trace(model, "B 3 T H W", {"T": VIDEO[name][0], "H": hint, "W": hint},
                            convention="macs")
        else:
            cost = sf.trace(model, "B 3 H W", {"H": hint, "W": hint}, convention="macs")
    seconds = time.perf_counter() - started
    fixed = dict(cost.report.fixed)  # type: ignore[attr-defined]
    dims = "B, T, H, W" if name in VIDEO else "B, H, W"
    lines = [f"{name}: traced at H=W={hint} in {seconds:.1f} s; "
             f"{'fixed ' + str(fixed) if fixed else 'symbolic in ' + dims}"]
    ok = not fixed
    for t in VIDEO.get(name, (None, (None,)))[1]:
        at = {} if t is None else {"T": t}
        say = "" if t is None else f"T={t}, "
        for size in sizes:
            ref = flop_counter_macs(model, size, t)
            try:
                ours = int(cost.subs(B=1, H=size, W=size, **at).macs)
            except OutsideDomain as e:
                lines.append(f"  {say}H=W={size}: outside the domain ({e.message}); "
                             f"FlopCounterMode {ref:,}")
                continue
            same = ours == ref
            ok = ok and same
            lines.append(f"  {say}H=W={size}: symflops {ours:,} MACs, FlopCounterMode "
                         f"{ref:,} {'equal' if same else 'DIFFERS'}")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(DEFAULT))
    p.add_argument("--hint", type=int, default=None)
    p.add_argument("--sizes", default=None, help="comma-separated input sizes")
    args = p.parse_args(argv)
    bad = 0
    for name in args.models:
        hint, sizes = DEFAULT.get(name, (320, (256, 320)))
        hint = args.hint or hint
        if args.sizes:
            sizes = tuple(int(v) for v in args.sizes.split(","))
        try:
            ok, lines = check(name, hint, sizes)
        except Exception as e:  # noqa: BLE001 - a report, not a test: say why and go on
            ok, lines = False, [f"{name}: NOT TRACED: {type(e).__name__}: {str(e)[:200]}"]
        bad += not ok
        print("\n".join(lines), flush=True)
    print(f"{len(args.models) - bad} of {len(args.models)} agree with FlopCounterMode")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
