"""Check symflops' symbolic traces of torchvision's partitioned attention models, MaxViT
(block and grid partitions) and MViT v2 (pooled attention with relative positions),
against torch's FlopCounterMode at several input sizes.

Both models fix their input size in the constructor: MaxViT's grid partition and
departition use ``grid_size // partition_size`` computed from ``input_size``, and MViT
reshapes its pooled tokens to ``thw`` from ``spatial_size``/``temporal_size``
(``mvit_v2_s`` hard-codes 224 x 16). Traced as built they are exact at that one size
(``sf.trace(maxvit_t, ("B", 3, 224, 224))``). To trace them symbolic in the input size, a
wrapper sets those sizes from the input on every call, the partition sizes as functions
of ``H`` (what ``maxvit_t(input_size=(H, H))`` computes in its constructor); the
reference is FlopCounterMode on a real forward of ``maxvit_t(input_size=(H, H))`` (its
parameters do not depend on the size), and for MViT, whose builder fixes 224 x 16, of the
same wrapper at each size. MViT's ``_add_rel_pos`` calls ``int()`` on sizes
(``int(2 * max(q_h, k_h) - 1)``), which pins a symbolic size: during the trace that
module's ``int`` is the identity (the size stays the SymInt, the same number; ``int()``
of a SymInt would only add the guard that pins it).

Domains (stated by the formulas, refused outside):

- maxvit_t: ``H = W``, a multiple of 224 (every block's grid must split into 7 x 7
  windows and a 7 x 7 grid), ``H >= 448`` (at 224 the last grid partition has size 1,
  where torch takes another path: trace it at its size), ``B >= 2``.
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
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
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
    "maxvit_t": ({"H": 448}, ((2, 448), (2, 672), (3, 1344), (2, 2240))),
    "mvit_v2_s": ({"T": 16, "H": 256, "W": 256},
                  ((1, 32, 320), (1, 8, 512), (2, 24, 160), (1, 20, 1024))),
}


def _half(n: Any) -> Any:
    """A 3x3 stride-2 padding-1 conv's output side: the conv shape rule's own formula."""
    return (n + 2 * 1 - (3 - 1) - 1) // 2 + 1


def follow_size(model: Any) -> Any:
    """``model`` (torchvision MaxVit or MViT) wrapped so its size-dependent attributes
    follow the input on every call."""
    import torch
    from torchvision.models.maxvit import MaxVit, PartitionAttentionLayer
    from torchvision.models.video.mvit import MViT

    class MaxVitSized(torch.nn.Module):
        def __init__(self, m: MaxVit) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x.shape[-2]
            torch._check(h % 224 == 0)  # the lattice: every partition divides evenly
            x = x[:, :, :224 * (h // 224), :224 * (h // 224)]  # the same size, spelt 224q
            h = _half(x.shape[-2])  # the stem
            for block in self.m.blocks:
                h = _half(h)  # each block's first MBConv halves the map
                block.grid_size = (h, h)
                for mod in block.modules():
                    if isinstance(mod, PartitionAttentionLayer):
                        mod.grid_size = (h, h)
                        mod.n_partitions = h // 7
                        mod.p = 7 if mod.partition_type == "window" else h // 7
                        mod.g = h // 7 if mod.partition_type == "window" else 7
            return self.m(x)

    class MViTSized(torch.nn.Module):
        def __init__(self, m: MViT) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c = self.m.conv_proj
            t, h, w = ((n + 2 * p - (k - 1) - 1) // s + 1 for n, k, s, p in
                       zip(x.shape[2:], c.kernel_size, c.stride, c.padding, strict=True))
            self.m.pos_encoding.temporal_size = t
            self.m.pos_encoding.spatial_size = (h, w)
            return self.m(x)

    if isinstance(model, MaxVit):
        return MaxVitSized(model).eval()
    if isinstance(model, MViT):
        return MViTSized(model).eval()
    raise TypeError(f"no size-following wrapper for {type(model).__name__}")


@contextlib.contextmanager
def int_kept_symbolic() -> Iterator[None]:
    """torchvision's MViT module with ``int`` the identity (see the module docstring)."""
    import torchvision.models.video.mvit as mvit

    mvit.int = lambda v: v
    try:
        yield
    finally:
        del mvit.int


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
    from symflops.errors import OutsideDomain

    hints, points = DEFAULT[name]
    with torch.device("meta"):
        model = follow_size(torchvision.models.get_model(name, weights=None).eval())
    video = "T" in hints
    started = time.perf_counter()
    with warnings.catch_warnings(), (int_kept_symbolic() if video
                                     else contextlib.nullcontext()):
        warnings.simplefilter("ignore")
        cost = sf.trace(model, "B 3 T H W" if video else "B 3 H H", hints, convention="macs",
                        time_budget=TIME_BUDGET)
    seconds = time.perf_counter() - started
    fixed = dict(cost.report.fixed)  # type: ignore[attr-defined]
    dims = "B, T, H, W" if video else "B, H (= W)"
    lines = [f"{name}: traced at {hints} in {seconds:.1f} s; "
             f"{'fixed ' + str(fixed) if fixed else 'symbolic in ' + dims}; "
             f"MACs = {_short(cost.macs)}"]
    ok = not fixed
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
