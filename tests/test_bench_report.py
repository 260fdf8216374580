"""BENCHMARKS.md's format (benchmarks/report.py) and the verified disagreement sentences
(benchmarks/agreement.py), from small fake measurements: no peer, no torch, no timing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


report = load("report")
agreement = load("agreement")


def fake() -> dict[str, Any]:
    """One of every section, with round numbers whose ratios are easy to check by hand."""
    tools = {"symflops": {"device": "cpu", "seconds": 3.0, "runs": 3, "count": 200,
                          "why": "the same count"},
             "symflops_floor": {"device": "cpu", "seconds": 1.5, "runs": 3, "count": 200},
             "fvcore": {"device": "cpu", "seconds": 1.5, "runs": 3, "count": 107,
                        "why": "MACs (1 per multiply-accumulate) + 1 per normalization "
                               "element (7): matches exactly"},
             "export": {"device": "cpu", "error": "RuntimeError: boom"}}
    peers = {"symflops": {"convention": "torch"}, "symflops_floor": {"convention": "torch"},
             "fvcore": {"convention": "MACs + norms"}, "export": {"convention": "torch"},
             "calflops": {"convention": "2 x MACs", "missing": "calflops not importable"}}
    case = {"label": "ResNet-50", "source": "examples/resnet.py", "size_name": "H = W = 224",
            "build_s": 0.5, "meta_build_s": 0.1, "tools": tools,
            "symflops": {"exact": 399, "torch": 200, "macs": 100, "params": 10, "free": ["B"],
                         "fixed": ""}}
    zoo_rows = [{"name": "a", "status": "symbolic", "trace_s": 4.0, "fcm_s": 1.0, "agree": True,
                 "alone_s": 3.0},
                {"name": "b", "status": "fixed", "trace_s": 1.0, "fcm_s": 1.0, "agree": True,
                 "fixed": "H=224", "device": "cpu", "alone_s": 0.5},
                {"name": "c", "status": "failed", "error": "ValueError: no"}]
    return {
        "meta": {"date": "2026-11-30 05:00 UTC", "command": "python benchmarks/run.py",
                 "machine": {"cpu": "Fake CPU", "cores": 2, "ram_gb": 23.0,
                             "load_before": "1.0", "load_after": "2.0"},
                 "versions": {"python": "3.11", "fvcore": "0.1", "calflops": None},
                 "reps": 3, "quick": False, "note": "shared machine"},
        "models": {"reps": 3, "peers": peers, "cases": {"resnet50": case}},
        "resolutions": {"resnet50": {"sizes": "64..1024", "ours_s": 0.5, "theirs_s": 40.0,
                                     "runs": 1, "equal": True},
                        "vit_b_16": {"skipped": "the model fixes H"}},
        "evaluate": {"points": 10**6, "reps": 5,
                     "rows": [{"what": "net", "first_s": 0.2, "run_s": 0.04}]},
        "depth": {"reps": 3, "series": {
            "composition (sf.nn)": [{"layers": 102, "seconds": 0.05},
                                    {"layers": 1002, "seconds": 0.6}],
            "trace conv+relu blocks": [{"layers": 100, "seconds": 1.0},
                                       {"layers": 10000, "seconds": 200.0}]}},
        "render": {"reps": 3, "rows": [{"what": "cnn", "format": "latex", "build_s": 0.2,
                                        "seconds": 0.1, "chars": 1234}]},
        "memory": {"resnet50": {"baseline_mb": 100.0, "symflops_mb": 400.0, "fcm_mb": 200.0}},
        "zoo": {"torchvision": "0.29", "models": zoo_rows, "not_reached": ["d", "e"]},
    }


@pytest.fixture(scope="module")
def text() -> str:
    return str(report.build_report(fake()))


@pytest.mark.parametrize("heading", [
    "# Benchmarks", "## Targets (issue 12)", "## Speed and agreement per model",
    "### ResNet-50", "## FLOPs at 100 sizes", "## Evaluation throughput",
    "## Growth with depth", "## Rendering", "## Peak memory",
    "## The torchvision classification zoo"], ids=lambda h: h.strip("# "))
def test_every_section_is_written(text: str, heading: str) -> None:
    assert f"\n{heading}" in "\n" + text


@pytest.mark.parametrize("row", [
    # machine and versions, a missing peer named as missing
    "Fake CPU, 2 cores, 23.0 GB RAM", "calflops missing", "> shared machine",
    # a missing peer's column is skipped, and said so
    "Peers missing here (their columns are skipped): `calflops` (calflops not importable)",
    # symflops 3.0 s / fvcore 1.5 s = 2.00x; a failed tool says why
    "| fvcore | cpu | 1.50 s | 2.00x | 107 | MACs + norms | MACs (1 per",
    "| export | cpu | - | - | failed | torch | RuntimeError: boom |",
    # 40 s / 0.5 s = 80x faster; a skipped model says why
    "| resnet50 | 64..1024 | 500.0 ms | 40.00 s | 80.00x | yes |",
    "| vit_b_16 | - | - | - | - | skipped: the model fixes H |",
    # 10^6 points / 0.04 s = 25 M points/s
    "| net | 200.0 ms | 40.0 ms | 25.0 M |",
    # per layer 200 s / 10,000 = 20 ms against 1 s / 100 = 10 ms: growth 2.00
    "| trace conv+relu blocks | 10,000 | 200.00 s | 20.000 ms | 2.00 |",
    # above the baseline: (400 - 100) / (200 - 100) = 3.00x
    "| resnet50 | 100 MB | 400 MB | 200 MB | 3.00x |",
    # zoo: the failed model is left out of the totals: (4 + 1) / (1 + 1) = 2.50x
    "symflops 5.00 s, FlopCounterMode 2.00 s: ratio 2.50x",
    "1 failed, 1 fixed, 1 symbolic", "| a | symbolic | 4.00 s | 1.00 s | 4.00x |",
    # torch alone: a only (b was built on CPU): 3 s against FlopCounterMode's 1 s, and
    # symflops' 4 s is 4 / 3 = 1.33x of it
    "over the 1 models built on meta that it ran: 3.00 s against FlopCounterMode's 1.00 s "
    "(3.00x), symflops 4.00 s (1.33x of torch alone)",
    # 3 > 2 * 1 and 4 > 2 * 1; 4 s is not below 3 s
    "above 2x FlopCounterMode: torch alone in 1 of 1; symflops in 1 of 1; symflops' whole "
    "trace (every check included) faster than torch alone in 0 of 1",
    "| a | symbolic | 4.00 s | 1.00 s | 4.00x | 3.00 s | 3.00x |",
    # b was built on CPU: the meta-only total is a alone, 4 / 1
    "over the 1 models built on meta only: symflops 4.00 s, FlopCounterMode 1.00 s: ratio 4.00x",
    "| b (built on CPU) | fixed |",
    "Not counted: c (ValueError: no)",
    # a zoo run stopped early names the models it did not reach
    "Partial: the run stopped before 2 models: d, e.",
])
def test_rows(text: str, row: str) -> None:
    assert row in text


@pytest.mark.parametrize("target", [
    # 3.0 / 1.5 = 2.00x the floor against 1.5x: missed by 2.00 / 1.5 = 1.33x
    "| resnet50: symbolic trace <= 1.5x the concrete-recording floor | 2.00x | missed by 1.33x |",
    # 80x against >= 60x
    "| resnet50: 100 sizes >= 60x faster than 100 FlopCounterMode counts | 80.0x | met |",
    # only a (b was built on CPU, c failed): 4 / 1
    "| zoo traced symbolically in less total time than FlopCounterMode counts it once on meta "
    "(ratio < 1; the 1 models built on meta) | 4.00x | missed by 4.00x |",
    # a: 4 s > 2 x 1 s, and torch alone's 3 s is above 2 x 1 s too
    "| every torchvision classifier traced in at most 2x FlopCounterMode's time on meta (the 1 "
    "built on meta) | 1 above 2x | missed; torch's symbolic forward alone is above 2x in 1 of "
    "the 1 it runs |",
    # growth 2.00 against 1.5: missed by 1.33x
    "| trace conv+relu blocks: 10,000 blocks within 1.5x the time per op of 100 | 2.00x | "
    "missed by 1.33x |",
    "| 1,000-layer composition under 0.5 s | 600.0 ms | missed by 1.20x |",
    "| 10^6-point sweep under 50 ms after compilation (net) | 40.0 ms | met |",
])
def test_targets(text: str, target: str) -> None:
    assert target in text


def test_torch_alone_names_what_it_could_not_run() -> None:
    rows = [{"name": "a", "trace_s": 1.0, "fcm_s": 1.0, "alone_s": 1.5},
            {"name": "s", "trace_s": 3.0, "fcm_s": 1.0,
             "alone_error": "RuntimeError: SymIntArrayRef expected to contain only concrete"},
            {"name": "m", "trace_s": 2.0, "fcm_s": 1.0, "alone_error": "over 30 s"}]
    lines = report.torch_alone(rows)
    # only a ran: 1.5 s is not above 2 x 1 s; a's 1 s is below torch alone's 1.5 s
    assert "- above 2x FlopCounterMode: torch alone in 0 of 1; symflops in 1 of 3; symflops' " \
           "whole trace (every check included) faster than torch alone in 1 of 1" in lines
    assert "- torch alone did not run 2 models: RuntimeError: SymIntArrayRef expected to " \
           "contain only concrete; over 30 s" in lines
    # a row without a figure says why in its cell, with no table-breaking bar
    assert report._alone({"alone_error": "a | b"}) == "a / b"


def test_a_missing_section_names_its_command() -> None:
    results = fake()
    del results["zoo"]
    text = report.build_report(results)
    assert "## The torchvision classification zoo\n\n_Not measured in this run: " \
           "`python benchmarks/run.py --only zoo`._" in text


TERMS = {"macs": 1000, "bias": 10, "norm_el": 50, "act_el": 30, "attn_macs": 200,
         "add_el": 7, "maxpool_in_el": 7}


@pytest.mark.parametrize("peer, value, want", [
    # torch convention 2 x 1000 = 2000: nothing to explain
    ("fcm_meta", 2000, "the same count"),
    # 1000 MACs + 1 per norm element (50) = 1050
    ("fvcore", 1050, "MACs (1 per multiply-accumulate) + 1 per normalization element (50): "
                     "matches exactly"),
    # 2000 - 2 x 200 MACs of SDPA = 1600
    ("fcm_cpu", 1600, "torch convention + counts 0 for attention's QK^T and AV "
                      "(scaled_dot_product_attention): 200 MACs lost (2 per MAC): matches "
                      "exactly"),
    # 1000 + 10 bias + 2 x 50 norm elements + 30 activations = 1140
    ("ptflops", 1140, "MACs (1 per multiply-accumulate) + 1 per bias add (10) + 2 per "
                      "normalization element (50) + 1 per activation element (30): matches "
                      "exactly"),
    # 1003 is no combination of the terms: the residual +3 is printed as unexplained
    ("fvcore", 1003, "MACs (1 per multiply-accumulate): +3 (+0.30%) not explained"),
    # 1000 + 7 = 7 max-pool inputs or 7 residual-add elements: both are said, none chosen
    ("fvcore", 1007, "MACs (1 per multiply-accumulate) + 1 per max-pool input element (7); "
                     "or equally 1 per residual-add element (7): matches exactly"),
], ids=["same", "fvcore-norms", "sdpa-lost", "ptflops-several", "unexplained", "ambiguous"])
def test_explain(peer: str, value: int, want: str) -> None:
    assert agreement.explain(peer, value, TERMS).startswith(want)


def test_a_failed_section_says_why() -> None:
    results = fake()
    results["memory"] = {"error": "CalledProcessError: boom"}
    text = report.build_report(results)
    assert "## Peak memory\n\n_The measurement failed: CalledProcessError: boom (rerun " \
           "`python benchmarks/run.py --only memory`)._" in text


def test_a_skipped_section_says_what_is_missing() -> None:
    results = fake()
    results["zoo"] = {"error": "skipped: torchvision not importable"}
    text = report.build_report(results)
    assert "## The torchvision classification zoo\n\n_Skipped: torchvision not importable " \
           "(rerun `python benchmarks/run.py --only zoo`)._" in text
