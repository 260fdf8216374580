"""The whole torchvision classification zoo: symflops' symbolic trace against one
FlopCounterMode count on meta, model construction on meta included in both.

For each model (``check_torchvision.build``: meta, the published crop size): build + ``sf.trace(
model, "B 3 H W", hints=crop, fallback="fit")``, then build + FlopCounterMode on a meta input at
the crop size. The status says what the trace could keep: ``symbolic`` (every input dim a
symbol), ``fixed`` (the model pins some dims, e.g. ViT's H = W = 224), ``fallback`` (torch could
not trace symbolically; an exact polynomial fitted from concrete traces), ``failed``. MaxViT,
whose constructor fixes its input size (``sf.trace`` refuses it with a symbolic size), is
traced at its crop size and counted ``fixed`` (symbolic in its size through
``follow_input_size``: check_partitions.py). The two
counts (torch convention) are compared at the crop size.

Third, the cost floor of any tracer built on torch's symbolic shapes: build + the model's
forward on fake tensors whose sizes are symbols (``bench_trace_speed.torch_alone``: symflops'
ShapeEnv and FakeTensorMode, nothing recorded, no domain, no check), measured last so the
symflops trace before it has paid every first call (the figure is, if anything, low). A
model torch cannot run on symbolic shapes (Swin's ``F.pad`` by a size computed from H)
says why; one that takes longer than ``ALONE_S`` says so.

Run alone: ``python benchmarks/zoo.py [--quick] [MODEL ...]`` (needs torchvision).
"""

from __future__ import annotations

import argparse
import gc
import logging
import re
import time
from typing import Any

#: ``--quick``: a dozen models spanning plain, branchy, concatenating and attention nets
QUICK = ("resnet18", "mobilenet_v2", "densenet121", "googlenet", "shufflenet_v2_x1_0",
         "efficientnet_b0", "convnext_tiny", "squeezenet1_0", "regnet_y_400mf", "vit_b_16",
         "swin_t", "alexnet")

#: seconds a symbolic trace may take before the fitted fallback takes over
BUDGET_S = 60.0

#: seconds torch's own symbolic forward may take before it is stopped (MaxViT: minutes)
ALONE_S = 30.0


def measure(name: str, budget: float = BUDGET_S) -> dict[str, Any]:
    """One model's row: times, status, fixed dims, and whether the counts agree."""
    import torch
    from check_torchvision import build, trace_symbolic
    from peers import quiet
    from torch.utils.flop_counter import FlopCounterMode

    row: dict[str, Any] = {"name": name}
    gc.collect()
    t = time.perf_counter()
    try:
        model, crop, _ = build(name)
        row["device"] = next(model.parameters()).device.type  # cpu: the constructor refused meta
        with quiet():
            cost, built = trace_symbolic(model, crop, convention="torch", fallback="fit",
                                         warn=False, time_budget=budget)
        if built:
            row["fixed"] = f"H={crop}, W={crop} (built for that size)"
        row["trace_s"] = time.perf_counter() - t
        names = {s.name for s in cost.free_symbols}
        ours = int(cost.subs(**{k: v for k, v in {"B": 1, "H": crop, "W": crop}.items()
                                if k in names}).flops)
    except Exception as e:  # noqa: BLE001 - a report: say why and go on
        return {**row, "status": "failed", "error": f"{type(e).__name__}: {str(e)[:120]}"}
    if cost.layer == "Fitted":
        row["status"] = "fallback"
    else:
        fixed = dict(cost.report.fixed)
        row["status"] = "fixed" if fixed or "fixed" in row else "symbolic"
        row.setdefault("fixed", ", ".join(f"{k}={v}" for k, v in fixed.items()))
    del model
    gc.collect()
    t = time.perf_counter()
    try:
        model, crop, _ = build(name)
        x = torch.zeros(1, 3, crop, crop, device=next(model.parameters()).device)
        with quiet(), torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x)
        row["fcm_s"] = time.perf_counter() - t
        row["agree"] = int(fc.get_total_flops()) == ours
    except Exception as e:  # noqa: BLE001
        row["fcm_error"] = f"{type(e).__name__}: {str(e)[:120]}"
    torch_alone(name, row)
    return row


class _Late(Exception):
    pass


def torch_alone(name: str, row: dict[str, Any], limit: float = ALONE_S) -> None:
    """``row["alone_s"]``: build + torch's symbolic forward of ``name`` with nothing
    recorded, or ``row["alone_error"]`` (torch failed, or took over ``limit`` seconds)."""
    import signal

    import torch
    from bench_trace_speed import torch_alone as forward
    from check_torchvision import build
    from peers import quiet

    from symflops.tracing.input_size import built_for

    def late(*_: Any) -> None:
        raise _Late

    logger = logging.getLogger("torch._subclasses.fake_tensor")  # it logs the failures
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    gc.collect()
    previous = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, limit)
    t = time.perf_counter()
    try:
        model, crop, _ = build(name)
        spec = f"B 3 {crop} {crop}" if built_for(model) is not None else "B 3 H W"
        x = torch.zeros(1, 3, crop, crop, device=next(model.parameters()).device)
        with quiet():
            forward(model, spec, {"x": x}, symbolic=True)
        row["alone_s"] = time.perf_counter() - t
    except _Late:
        row["alone_error"] = f"over {limit:.0f} s"
    except Exception as e:  # noqa: BLE001 - a report: say why and go on
        first = re.sub(r"^\S*\.cpp:\d+: ", "", str(e).splitlines()[0] if str(e) else "")
        row["alone_error"] = f"{type(e).__name__}: {first[:100]}"
    finally:
        logger.setLevel(level)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(quick: bool = False, names: list[str] | None = None, log: Any = print
        ) -> dict[str, Any]:
    """Every classification model (``QUICK`` with ``quick``), one row each."""
    import torchvision
    from check_torchvision import classification_models

    models = names or (list(QUICK) if quick else classification_models())
    measure("squeezenet1_0")  # untimed: the first trace in a process pays imports and inits
    rows = []
    for name in models:
        row = measure(name)
        log(f"zoo {name}: {row.get('status')} trace {row.get('trace_s', 0):.1f} s, "
            f"FlopCounterMode {row.get('fcm_s', 0):.1f} s, agree {row.get('agree')}, torch "
            f"alone {row.get('alone_s', 0):.1f} s {row.get('alone_error', '')} "
            f"{row.get('error', '')}{row.get('fcm_error', '')}")
        rows.append(row)
    return {"torchvision": torchvision.__version__, "budget_s": BUDGET_S, "models": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    run(a.quick, a.models or None)


if __name__ == "__main__":
    main()
