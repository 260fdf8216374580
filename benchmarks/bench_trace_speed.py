"""Symbolic trace time over its floor, per model, in one process.

Run: ``PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/bench_trace_speed.py [--reps 5]
[--models gpt2 llama vit_b_16 resnet50]`` (torchvision models need torchvision; the language
models need transformers; a model whose package is missing is skipped with a note).

For each model: the median of ``reps`` symbolic traces (``"B 3 H W"``, or ``input_ids`` of
``(B, N)``), the median of ``reps`` traces of the same model at concrete sizes (every size
an int: the floor a custom shape propagation could reach, torch's fake dispatch alone), and
one FlopCounterMode count on meta. Prints symbolic / floor (target <= 1.5x for transformers)
and symbolic / FlopCounterMode on meta (target <= 2x for torchvision classifiers). Models
are built on meta from small configs; the runs are back to back so the ratios are what to
read on a shared machine.

Measured (``--reps 5``, torch 2.14.1 in /work/tvenv, 2 shared cores; GPT-2 12 layers, Llama 8
layers d 512, seconds symbolic / floor -> ratio, and the ratio to FlopCounterMode on meta):

=============  =====================  =====================  ============
model          before (0d8b33b)       after                  after / FCM
=============  =====================  =====================  ============
gpt2           0.689 / 0.114 -> 6.1x  0.262 / 0.089 -> 2.9x  3.6x
llama          0.829 / 0.129 -> 6.4x  0.252 / 0.088 -> 2.9x  5.2x
vit_b_16       0.563 / 0.097 -> 5.8x  0.219 / 0.083 -> 2.7x  3.6x
resnet50       0.076 / 0.053 -> 1.4x  0.076 / 0.057 -> 1.3x  1.9x
googlenet      0.242 / 0.074 -> 3.3x  0.214 / 0.073 -> 2.9x  5.1x
densenet121    0.431 / 0.132 -> 3.3x  0.415 / 0.134 -> 3.1x  4.5x
=============  =====================  =====================  ============

What made the difference (``py-spy record -f raw`` of repeated traces; cProfile hangs on
the trace's watchdog): a transformer's blocks call the same ops on inputs of the same
symbolic metadata, and torch's fake dispatch rebuilt each symbolic output (~0.7 ms a
``view``); the recorder now repeats such calls itself under no_grad
(``_Recorder._repeat``), with the fake mode's op cache off for the first call. What is
left: the first call of each op-and-shape (torch's Python references: view, layer_norm,
softmax, tril, avg_pool's shape checks), a second trace ``settle`` runs to check a branch
(GPT-2, DenseNet), and SymPy work in assembly (pool derivations, ``Cost`` simplification:
40% of a GoogLeNet trace).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf


def _gpt2() -> tuple[torch.nn.Module, Any, Any, Any]:
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        m = GPT2LMHeadModel(GPT2Config(n_layer=12)).eval()
    return m, {"input_ids": ("B", "N")}, {"input_ids": (1, 128)}, \
        {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


def _llama() -> tuple[torch.nn.Module, Any, Any, Any]:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, vocab_size=32000)
    with torch.device("meta"):
        m = LlamaForCausalLM(cfg).eval()
    return m, {"input_ids": ("B", "N")}, {"input_ids": (1, 128)}, \
        {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


def _tv(name: str, side: int = 224) -> Callable[[], tuple[torch.nn.Module, Any, Any, Any]]:
    def build() -> tuple[torch.nn.Module, Any, Any, Any]:
        import torchvision

        with torch.device("meta"):
            m = getattr(torchvision.models, name)().eval()
        return m, "B 3 H W", (1, 3, side, side), \
            {"x": torch.zeros(1, 3, side, side, device="meta")}
    return build


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, Any, Any, Any]]] = {
    "gpt2": _gpt2, "llama": _llama, "vit_b_16": _tv("vit_b_16"), "resnet50": _tv("resnet50"),
    "googlenet": _tv("googlenet"), "densenet121": _tv("densenet121"),
    "mobilenet_v2": _tv("mobilenet_v2"), "inception_v3": _tv("inception_v3", 299),
}


def median_time(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def trace(model: torch.nn.Module, spec: Any) -> sf.Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(model, spec, convention="torch", warn=False)


def fcm_meta(model: torch.nn.Module, kwargs: dict[str, Any]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(**kwargs)
    return int(fc.get_total_flops())


def measure(name: str, reps: int) -> tuple[float, float, float]:
    """(symbolic s, floor s, FlopCounterMode on meta s), medians of ``reps``."""
    model, spec, concrete, example = MODELS[name]()
    trace(model, spec)  # warm imports and caches
    trace(model, concrete)
    fcm_meta(model, example)
    t_sym = median_time(lambda: trace(model, spec), reps)
    t_floor = median_time(lambda: trace(model, concrete), reps)
    t_fcm = median_time(lambda: fcm_meta(model, example), reps)
    return t_sym, t_floor, t_fcm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=list(MODELS),
                    choices=sorted(MODELS))
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, symflops {sf.__version__}, median of {a.reps}")
    for name in a.models:
        try:
            s, f, m = measure(name, a.reps)
        except ImportError as e:
            print(f"{name}: skipped ({e})")
            continue
        print(f"{name:13s} symbolic {s:6.3f} s | floor {f:6.3f} s -> {s / f:4.2f}x "
              f"| FlopCounterMode meta {m:6.3f} s -> {s / m:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
