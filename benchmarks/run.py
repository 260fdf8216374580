"""Run every benchmark and write BENCHMARKS.md at the repository root.

    python benchmarks/run.py [--quick] [--only SECTION ...]

Sections (``SECTIONS``): ``models`` (speed and agreement of symflops and its peers on
ResNet-50, MobileNetV2, ViT-B/16, GPT-2 small and a 32-layer Llama), ``resolutions`` (FLOPs at
100 sizes), ``evaluate`` (10^6 points), ``depth`` (composition and trace against depth),
``render``, ``memory`` (peak RSS in child processes), ``zoo`` (every torchvision
classifier) and ``hard`` (the ``check_*.py`` scripts of the models where torch's symbolic shapes
give up: windows, domains, mixtures of experts, detection, TF "SAME" padding).
Measurements go to ``benchmarks/results.json``; ``--only`` re-measures the named sections
and keeps the others from that file, then BENCHMARKS.md is rebuilt from all of it
(``report.build_report``). Peers (fvcore, ptflops, calflops, torchvision, transformers: the
``[bench]`` extra) are optional: a missing one is named in the report and its column skipped.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import agreement  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402

RESULTS = HERE / "results.json"
NOTE = ("The machine is shared: other jobs ran on the same cores while this was measured, so "
        "absolute times are inflated and noisy; the ratios (two figures measured back to back "
        "in the same process) are what to read.")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- environment
def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        ram = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        ram = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram, "os": platform.platform(),
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("symflops", "torch", "torchvision", "transformers", "sympy", "numpy",
                 "fvcore", "ptflops", "calflops"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# ---------------------------------------------------------------------------------- models
#: a measurement whose first run takes longer than this is not repeated
SLOW_S = 20.0


def timed_runs(fn: Callable[[], Any], reps: int) -> tuple[float, int, Any]:
    """:func:`peers.median_seconds` with the SLOW_S cut-off."""
    return peers.median_seconds(fn, reps, SLOW_S)


def model_section(reps: int, quick: bool) -> dict[str, Any]:
    import torch

    peers.register_cases()
    names = CASES or (["resnet50", "mobilenet_v2", "vit_b_16"] if quick else list(peers.CASES))
    info = {p.name: {"label": p.label, "convention": p.convention,
                     "missing": peers.available(p)} for p in peers.PEERS.values()}
    cases: dict[str, Any] = {}
    warmed: set[str] = set()
    for name in names:
        case = peers.CASES[name]
        row: dict[str, Any] = {"label": case.label, "source": case.source,
                               "size_name": ("B = 1, H = W = " if case.family == "vision"
                                             else "B = 1, N = ") + str(case.size)}
        t = time.perf_counter()
        cpu = case.build() if case.cpu else None
        row["build_s"] = time.perf_counter() - t if case.cpu else None
        t = time.perf_counter()
        with torch.device("meta"):
            meta = case.build()
        row["meta_build_s"] = time.perf_counter() - t
        log(f"models {name}: built ({case.source})")
        tools: dict[str, Any] = {}
        traced = None
        for p in peers.PEERS.values():
            device = peers.device_for(p, case)
            if info[p.name]["missing"]:
                continue
            if device is None:
                tools[p.name] = {"device": "cpu", "error": "n/a: real weights do not fit in RAM"}
                continue
            model = meta if device == "meta" else cpu
            if p.name not in warmed:  # the first call in a process pays imports and inits
                warmed.add(p.name)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        p.count(case, model, device)
                except Exception:  # noqa: BLE001, S110 - the timed call reports the error
                    pass
            try:
                if p.name == "symflops":  # keep the Cost: its terms explain the others
                    s, n, traced = timed_runs(
                        lambda c=case, m=model: peers.symflops_trace(c, m), reps)
                    count = int(peers.at_size(traced, case).flops)
                else:
                    s, n, count = timed_runs(
                        lambda p=p, c=case, m=model, d=device: p.count(c, m, d), reps)
                tools[p.name] = {"device": device, "seconds": s, "runs": n, "count": count}
            except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not fatal
                tools[p.name] = {"device": device,
                                 "error": f"{type(e).__name__}: {str(e).splitlines()[0][:140]}"}
            log(f"models {name} {p.name}: {tools[p.name]}")
        if traced is not None:
            at = peers.at_size(traced, case)
            terms = agreement.terms(peers.at_size(peers.symflops_trace(case, meta), case))
            terms["mha_fast_macs"] = agreement.terms(at)["mha_fast_macs"]
            row["symflops"] = {
                "exact": int(at.with_convention("exact").flops), "torch": int(at.flops),
                "macs": int(at.macs), "params": int(at.params),
                "free": sorted(s.name for s in traced.free_symbols),
                "fixed": ", ".join(f"{k}={v}" for k, v in traced.report.fixed.items())}
            row["terms"] = terms
        row["tools"] = tools
        cases[name] = row
        explain_all({"cases": {name: row}})
        del cpu, meta
        gc.collect()
    return {"reps": reps, "peers": info, "cases": cases}


def explain_all(models: dict[str, Any]) -> None:
    """Fill each tool's 'why' from the case's stored terms, and its convention from
    ``peers.PEERS`` (so an improved explanation applies to stored measurements:
    ``--report-only`` calls it too)."""
    for p_name, info in models.get("peers", {}).items():
        if p_name in peers.PEERS:
            info["convention"] = peers.PEERS[p_name].convention
    for row in models.get("cases", {}).values():
        for p_name, r in row.get("tools", {}).items():
            if "count" in r and "terms" in row and p_name in agreement.BASES:
                r["why"] = agreement.explain(p_name, r["count"], row["terms"])


# ----------------------------------------------------------------------------- resolutions
def resolution_section(reps: int, quick: bool) -> dict[str, Any]:
    """One trace + one vectorized evaluation at 100 image sizes against 100 FlopCounterMode
    counts on meta."""
    import numpy as np
    import torch

    peers.register_cases()
    out: dict[str, Any] = {}
    names = ["resnet50"] if quick else ["resnet50", "mobilenet_v2", "vit_b_16"]
    for name in names:
        case = peers.CASES[name]
        with torch.device("meta"):
            model = case.build()
        lo, hi = (64, 1024) if case.family == "vision" else (16, 1024)
        sizes = np.linspace(lo, hi, 100).astype(np.int64)
        traced = peers.symflops_trace(case, model)
        if traced.report.fixed:
            out[name] = {"skipped": f"the model fixes {dict(traced.report.fixed)}: one size only"}
            continue

        def ours(model: Any = model, case: Any = case, sizes: Any = sizes) -> Any:
            cost = peers.symflops_trace(case, model)
            dims = {k: sizes for k in ("H", "W", "N") if k in {s.name for s in cost.free_symbols}}
            return cost.evaluate("flops", B=1, **dims)

        def theirs(model: Any = model, case: Any = case, sizes: Any = sizes) -> list[int]:
            return [peers.fcm_count(case, model, "meta", int(s)) for s in sizes]

        t_ours, _, got = timed_runs(ours, reps)
        t_theirs, runs, want = timed_runs(theirs, reps if not quick else 1)
        out[name] = {"sizes": f"{lo}..{hi}", "ours_s": t_ours, "theirs_s": t_theirs,
                     "runs": runs, "equal": got.tolist() == want}
        log(f"resolutions {name}: {out[name]}")
    return out


# -------------------------------------------------------------------------------- evaluate
def evaluate_section(reps: int, quick: bool) -> dict[str, Any]:
    """Cost.evaluate over 10^6 (H, W) points: bench_core's 50-layer net and traced ResNet-50."""
    import numpy as np
    from bench_core import conv_stack

    import symflops as sf

    rng = np.random.default_rng(0)
    hs, ws = rng.integers(32, 2048, 10**6), rng.integers(32, 2048, 10**6)
    costs = {"sf.nn 50-layer conv/bn/relu (bench_core), FLOPs exact":
             sf.nn.Sequential(*list(conv_stack(51, stride_every=4).layers.values())[:50]
                              ).cost(("B", 3, "H", "W"))}
    try:
        import torch

        peers.register_cases()
        case = peers.CASES["resnet50"]
        with torch.device("meta"):
            costs["traced ResNet-50, FLOPs torch"] = peers.symflops_trace(case, case.build())
    except ImportError:
        pass
    rows = []
    for what, cost in costs.items():
        t = time.perf_counter()
        cost.evaluate("flops", B=1, H=hs, W=ws)
        first = time.perf_counter() - t
        run_s, _, _ = peers.median_seconds(
            lambda c=cost: c.evaluate("flops", B=1, H=hs, W=ws), max(reps, 5))
        rows.append({"what": what, "first_s": first, "run_s": run_s})
        log(f"evaluate {what}: {rows[-1]}")
    return {"points": 10**6, "reps": max(reps, 5), "rows": rows}


# ----------------------------------------------------------------------------------- depth
def depth_section(reps: int, quick: bool) -> dict[str, Any]:
    """sf.nn composition (bench_core.conv_stack, cost + simplify) and sf.trace of Conv+ReLU
    and Linear+ReLU blocks (bench_trace.blocks) at growing depth."""
    from bench_core import conv_stack
    from bench_trace import blocks

    sizes = (102, 1002) if quick else (102, 1002, 10002)
    series: dict[str, list[dict[str, Any]]] = {"composition (sf.nn)": []}
    for n in sizes:
        net = conv_stack(n)
        s, _, _ = peers.median_seconds(
            lambda net=net: net.cost(("B", 3, "H", "W")).simplify().flops, reps)
        series["composition (sf.nn)"].append({"layers": n, "seconds": s})
        log(f"depth composition {n}: {s:.2f} s")
    blocks(10, "conv")  # warm imports
    for kind in ("conv", "linear"):
        key = f"trace {kind}+relu blocks"
        series[key] = []
        for n in ((100, 1000) if quick else (100, 1000, 10000)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = statistics.median(blocks(n, kind) for _ in range(reps if n <= 1000 else 1))
            series[key].append({"layers": n, "seconds": s})
            log(f"depth {key} {n}: {s:.2f} s")
    return {"reps": reps, "trace_reps": f"{reps} up to 1,000 blocks, 1 at 10,000",
            "series": series}


# ---------------------------------------------------------------------------------- render
def render_section(reps: int, quick: bool) -> dict[str, Any]:
    """bench_render's 200-leaf CNN and traced models, rendered from cold caches."""
    import bench_render as br

    br.render(br.sf.nn.Linear(4, 4).cost(("B", 4)), "latex")  # import jinja2 etc. once
    models = [("sf.nn CNN, 200 leaves", *br.cnn_200_leaves())]
    if not quick:
        models += br.traced_models()
    rows = []
    for what, build_s, cost in models:
        for fmt in ("latex", "markdown"):
            times, text = [], ""
            for _ in range(reps):
                br.clear_caches()
                c = br.fresh(cost)
                s, text = br.timed(lambda fmt=fmt, c=c: br.render(c, fmt))
                times.append(s)
            rows.append({"what": what, "format": fmt, "build_s": build_s,
                         "seconds": statistics.median(times), "chars": len(text)})
            log(f"render {what} {fmt}: {rows[-1]['seconds']:.3f} s")
    return {"reps": reps, "rows": rows}


# ---------------------------------------------------------------------------------- memory
def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: ``VmHWM`` of /proc/self/status where
    Linux has it (it belongs to the process image, so it starts afresh at exec), else
    ``ru_maxrss``. (``ru_maxrss`` survives ``fork`` + ``exec``: a child started by a big
    parent would report the parent's size as its own baseline.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(case_name: str, tool: str) -> None:
    """In a fresh process: build the case on meta, count it once, print peak RSS (MB)."""
    import torch

    peers.register_cases()
    case = peers.CASES[case_name]
    with torch.device("meta"):
        model = case.build()
    base = peak_rss_mb()
    if tool == "symflops":
        peers.symflops_trace(case, model)
    else:
        peers.fcm_count(case, model, "meta")
    peak = peak_rss_mb()
    print(json.dumps({"baseline_mb": base, "peak_mb": peak}))


def memory_section(reps: int, quick: bool) -> dict[str, Any]:
    peers.register_cases()
    names = ["resnet50", "gpt2"] if quick else list(peers.CASES)
    out: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {}
        for tool, key in (("symflops", "symflops_mb"), ("fcm", "fcm_mb")):
            proc = subprocess.run([sys.executable, __file__, "--memory-child", name, tool],
                                  capture_output=True, text=True, timeout=1200)
            if proc.returncode:
                row = {"error": proc.stderr.strip().splitlines()[-1][:140]}
                break
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            row[key] = got["peak_mb"]
            row["baseline_mb"] = min(row.get("baseline_mb", got["baseline_mb"]),
                                     got["baseline_mb"])
        out[name] = row
        log(f"memory {name}: {row}")
    return out


def zoo_section(reps: int, quick: bool) -> dict[str, Any]:
    import zoo

    return zoo.run(quick, log=log)


#: the check scripts the ``hard`` section runs, each comparing symflops' formulas with
#: FlopCounterMode on models no one here wrote (a script exits 1 when a size disagrees)
CHECKS = ("check_windows.py", "check_partitions.py", "check_domains.py", "check_moe.py",
          "check_detection.py", "check_tf_same.py", "check_transformers.py", "check_timm.py",
          "check_flow.py", "check_pieces.py")


def hard_section(reps: int, quick: bool) -> dict[str, Any]:
    """Run each of ``CHECKS`` in its own process and keep its report (one run each: these
    are agreement checks, their times are a guide only)."""
    out: dict[str, Any] = {}
    for script in CHECKS:
        path = HERE / script
        if not path.exists():
            out[script] = {"error": "no such script"}
            continue
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                              timeout=3 * 3600, env=env)
        lines = proc.stdout.strip().splitlines()
        row: dict[str, Any] = {"rc": proc.returncode, "seconds": time.perf_counter() - started,
                               "lines": lines[-80:]}
        if proc.returncode and proc.stderr.strip():
            row["stderr"] = proc.stderr.strip().splitlines()[-1][:200]
        out[script] = row
        log(f"hard {script}: exit {proc.returncode} in {row['seconds']:.0f} s")
    return out


#: section name -> measurement (reps, quick) -> JSON-able dict
SECTIONS: dict[str, Callable[[int, bool], dict[str, Any]]] = {
    "models": model_section, "resolutions": resolution_section, "evaluate": evaluate_section,
    "depth": depth_section, "render": render_section, "memory": memory_section,
    "zoo": zoo_section, "hard": hard_section,
}
#: ``--cases``: the models section measures only these (default: all, or three with --quick)
CASES: list[str] = []
#: what each section needs beyond symflops and torch
NEEDS = {"zoo": "torchvision", "hard": "torchvision"}


def section_in_child(name: str, quick: bool) -> dict[str, Any]:
    """One section measured in a fresh process. The peers patch torch while they count
    (ptflops and calflops replace torch.nn.functional calls; a count that fails can leave
    them patched) and a section's state must not reach the next: in one process, the zoo
    run after the peers traced every model with its dims fixed and wrong counts."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, __file__, "--section-child", name, str(out),
               *(["--quick"] if quick else []), *(["--cases", *CASES] if CASES else [])]
        proc = subprocess.run(cmd, timeout=3 * 3600)
        if proc.returncode or not out.exists():
            return {"error": f"the section's process exited with status {proc.returncode}"}
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one run per figure, fewer models")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="SECTION",
                    help=f"measure only these ({', '.join(SECTIONS)}); keep the rest")
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--cases", nargs="+", default=[], metavar="CASE",
                    help="the models section measures only these cases (see peers.CASES)")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rebuild BENCHMARKS.md from the results file")
    ap.add_argument("--note", default="", help="a sentence added to the report's note")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--section-child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    CASES[:] = a.cases
    if a.memory_child:
        memory_child(*a.memory_child)
        return 0
    if a.section_child:
        import torch

        torch.set_num_threads(1)
        name, path = a.section_child
        try:
            data = SECTIONS[name](1 if a.quick else 3, a.quick)
        except Exception as e:  # noqa: BLE001 - reported in the results, not raised
            log(f"{name}: FAILED {type(e).__name__}: {e}")
            data = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        Path(path).write_text(json.dumps(data, default=str))
        return 0
    if a.report_only:
        results = json.loads(a.results.read_text())
        explain_all(results.get("models", {}))
        a.out.write_text(report.build_report(results))
        log(f"wrote {a.out} from {a.results}")
        return 0
    import torch

    # one thread: on a loaded machine, torch's thread pool spinning beside other jobs made
    # real-tensor counts (FlopCounterMode on CPU, fvcore, ptflops) 100x slower than alone
    torch.set_num_threads(1)
    reps = 1 if a.quick else 3
    results: dict[str, Any] = {}
    if a.only and a.results.exists():
        results = json.loads(a.results.read_text())
    command = "python benchmarks/run.py" + (" --quick" if a.quick else "") + (
        f" --only {' '.join(a.only)}" if a.only else "")
    mach = machine()
    for name in SECTIONS:
        if a.only and name not in a.only:
            continue
        need = NEEDS.get(name)
        if need and peers.missing(need):
            log(f"{name}: skipped, {peers.missing(need)}")
            results[name] = {"error": f"skipped: {peers.missing(need)}"}
            continue
        log(f"{name}: measuring (in its own process)")
        results[name] = section_in_child(name, a.quick)
        a.results.write_text(json.dumps(results, indent=1, default=str))
    mach["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results["meta"] = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"), "machine": mach, "versions": versions(), "reps": reps,
        "quick": a.quick, "threads": torch.get_num_threads(), "command": command,
        "note": f"{NOTE} {a.note}".strip()}
    a.results.write_text(json.dumps(results, indent=1, default=str))
    a.out.write_text(report.build_report(results))
    log(f"wrote {a.out} and {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
