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

Run alone: ``python benchmarks/zoo.py [--quick] [MODEL ...]`` (needs torchvision).
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

#: ``--quick``: a dozen models spanning plain, branchy, concatenating and attention nets
QUICK = ("resnet18", "mobilenet_v2", "densenet121", "googlenet", "shufflenet_v2_x1_0",
         "efficientnet_b0", "convnext_tiny", "squeezenet1_0", "regnet_y_400mf", "vit_b_16",
         "swin_t", "alexnet")

#: seconds a symbolic trace may take before the fitted fallback takes over
BUDGET_S = 60.0


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
    return row


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
            f"FlopCounterMode {row.get('fcm_s', 0):.1f} s, agree {row.get('agree')} "
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
