"""BENCHMARKS.md from the measurements ``run.py`` collects (pure formatting: no torch).

``build_report(results)`` takes the JSON-able dict ``run.py`` writes to
``benchmarks/results.json`` and returns the Markdown. Each section is one function in
``SECTIONS``; a section missing from ``results`` says so and names the command that measures
it, so a partial run never silently drops a table.

>>> text = build_report({"meta": {"date": "2026-01-01", "machine": {}, "versions": {}}})
>>> "## Targets" in text and "not measured in this run" in text
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Lines = list[str]

#: the heading of each measured section
TITLES = {"models": "## Speed and agreement per model", "resolutions": "## FLOPs at 100 sizes",
          "evaluate": "## Evaluation throughput", "depth": "## Growth with depth",
          "render": "## Rendering", "memory": "## Peak memory",
          "zoo": "## The torchvision classification zoo",
          "hard": "## Where torch's symbolic shapes give up (issue 20)"}


def secs(s: float | None) -> str:
    """Seconds for a table cell: 3 significant figures, ms below 1 s."""
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``1.23x``, or ``-`` when either is missing."""
    return "-" if not a or not b else f"{a / b:.2f}x"


def _missing(name: str) -> Lines:
    return [f"_Not measured in this run: `python benchmarks/run.py --only {name}`._", ""]


def failed(results: dict[str, Any], name: str) -> Lines | None:
    """The lines saying a section's measurement raised, or None when it did not."""
    err = (results.get(name) or {}).get("error")
    if not isinstance(err, str):
        return None
    what = "Skipped" if err.startswith("skipped: ") else "The measurement failed"
    err = err.removeprefix("skipped: ")
    return [f"_{what}: {err} (rerun `python benchmarks/run.py --only {name}`)._", ""]


def header(results: dict[str, Any]) -> Lines:
    meta = results["meta"]
    m, v = meta.get("machine", {}), meta.get("versions", {})
    lines = ["# Benchmarks", "",
             "Written by `python benchmarks/run.py` (see benchmarks/README.md); do not edit by "
             "hand. Every ratio compares two figures measured in the same run, one after the "
             "other; every figure is the median of the number of runs its section states.", "",
             f"- date: {meta.get('date', '?')}; command: `{meta.get('command', '?')}`",
             f"- machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
             f"{m.get('ram_gb', '?')} GB RAM; load average {m.get('load_before', '?')} before, "
             f"{m.get('load_after', '?')} after",
             "- versions: " + ", ".join(f"{k} {val or 'missing'}" for k, val in v.items()),
             f"- torch threads: {meta.get('threads', '?')}; runs per figure: "
             f"{meta.get('reps', '?')}"
             + (" (`--quick`: one run, noisy)" if meta.get("quick") else ""), ""]
    if meta.get("note"):
        lines += [f"> {meta['note']}", ""]
    return lines


def models(results: dict[str, Any]) -> Lines:
    data = results.get("models")
    if not data:
        return [TITLES["models"], "", *_missing("models")]
    peers = data["peers"]
    lines = [TITLES["models"], "",
             f"Each tool counts each model once at B = 1 and H = W = 224 (vision) or "
             f"N = 1024 (language); time is the median of {data['reps']} runs (one when the "
             "first takes over 20 s), after one untimed call of each tool (its imports); "
             "model construction is excluded (listed apart). 'symflops / tool' is symflops' "
             "symbolic trace time over the tool's time: below 1, symflops is faster. 'why' is "
             "verified: each sentence closes to the last unit against the terms of symflops' "
             "own trace (benchmarks/agreement.py); an unexplained residual is printed as "
             "such.", ""]
    absent = [f"`{p}` ({info['missing']})" for p, info in peers.items() if info.get("missing")]
    if absent:
        lines += ["Peers missing here (their columns are skipped): " + "; ".join(absent), ""]
    lines += ["Conventions: " + "; ".join(f"**{p}** = {info['convention']}"
                                          for p, info in peers.items()), ""]
    lines += glance(data)
    for c in data["cases"].values():
        sym = c["symflops"]
        base = c["tools"].get("symflops", {}).get("seconds")
        lines += [f"### {c['label']} ({c['source']}; {c['size_name']})", "",
                  f"Built in {secs(c.get('build_s'))} (CPU) / {secs(c.get('meta_build_s'))} "
                  f"(meta). symflops at this size: exact {sym['exact']:,}, torch "
                  f"{sym['torch']:,}, macs {sym['macs']:,}; params {sym['params']:,}; "
                  f"symbols left free: {', '.join(sym['free']) or 'none'}"
                  + (f"; fixed by the model: {sym['fixed']}" if sym.get("fixed") else "")
                  + ".", "",
                  "| tool | device | time | symflops / tool | count | convention | why it "
                  "differs |", "|---|---|---:|---:|---:|---|---|"]
        for p, row in c["tools"].items():
            if row.get("error"):
                count = "n/a" if row["error"].startswith("n/a") else "failed"
                why = row["error"]
            else:
                count, why = f"{row['count']:,}", row.get("why", "")
            lines.append(f"| {p} | {row.get('device', '-')} | {secs(row.get('seconds'))} | "
                         f"{ratio(base, row.get('seconds')) if p != 'symflops' else '1'} | "
                         f"{count} | {peers[p]['convention']} | {why} |")
        lines.append("")
    return lines


def glance(data: dict[str, Any]) -> Lines:
    """Every tool's count for every model in one table (G = 10^9), with symflops' own
    count in each convention; a mark when the model's 'why' closed exactly."""
    names = [p for p, info in data["peers"].items() if not info.get("missing")]
    lines = ["Every count at a glance (G = 10^9 of the tool's own unit; = same as symflops in "
             "that convention, ~ differs for the verified reason below, ? unexplained, x "
             "failed):", "",
             "| model | symflops exact | symflops macs | " + " | ".join(names) + " |",
             "|---|" + "---:|" * (len(names) + 2)]
    for c in data["cases"].values():
        cells = []
        for p in names:
            r = c["tools"].get(p)
            if not r or r.get("error"):
                cells.append("x" if r else "-")
                continue
            why = r.get("why", "")
            mark = "=" if why == "the same count" or why.endswith(": matches exactly") and \
                "+" not in why else "~" if "matches exactly" in why else "?" if why else ""
            cells.append(f"{r['count'] / 1e9:.3f} {mark}".strip())
        sym = c.get("symflops", {})
        lines.append(f"| {c['label']} | {sym.get('exact', 0) / 1e9:.3f} | "
                     f"{sym.get('macs', 0) / 1e9:.3f} | " + " | ".join(cells) + " |")
    return lines + [""]


def resolutions(results: dict[str, Any]) -> Lines:
    data = results.get("resolutions")
    lines = [TITLES["resolutions"], ""]
    if not data:
        return lines + _missing("resolutions")
    lines += ["One symbolic trace plus one vectorized evaluation at all sizes (compile "
              "included) against FlopCounterMode counting each size on meta; counts compared "
              "element by element (torch convention).", "",
              "| model | sizes | trace + evaluate | FlopCounterMode x 100 (meta) | speed-up | "
              "equal |", "|---|---|---:|---:|---:|---|"]
    for name, r in data.items():
        if r.get("skipped"):
            lines.append(f"| {name} | - | - | - | - | skipped: {r['skipped']} |")
            continue
        lines.append(f"| {name} | {r['sizes']} | {secs(r['ours_s'])} | {secs(r['theirs_s'])} | "
                     f"{ratio(r['theirs_s'], r['ours_s'])} | {'yes' if r['equal'] else 'NO'} |")
    return lines + [""]


def evaluate(results: dict[str, Any]) -> Lines:
    data = results.get("evaluate")
    lines = [TITLES["evaluate"], ""]
    if not data:
        return lines + _missing("evaluate")
    lines += [f"`Cost.evaluate` of a formula over {data['points']:,} points (exact int64), "
              f"median of {data['reps']} runs after the first (compiling) call.", "",
              "| formula | first call (compiles) | compiled | points / s |",
              "|---|---:|---:|---:|"]
    for r in data["rows"]:
        lines.append(f"| {r['what']} | {secs(r['first_s'])} | {secs(r['run_s'])} | "
                     f"{data['points'] / r['run_s'] / 1e6:.1f} M |")
    return lines + [""]


def depth(results: dict[str, Any]) -> Lines:
    data = results.get("depth")
    lines = [TITLES["depth"], ""]
    if not data:
        return lines + _missing("depth")
    lines += ["Composition: an `sf.nn.Sequential` of conv/bn/relu layers, cost + simplify "
              "(benchmarks/bench_core.py `conv_stack`). Trace: `sf.trace` of n blocks of "
              "Conv2d(8, 8, 3)+ReLU or Linear(64, 64)+ReLU (bench_trace.py `blocks`). Growth = "
              "time per layer at this depth over time per layer at the smallest depth (1 is "
              f"linear). Medians of {data['reps']} runs ({data.get('trace_reps', 1)} for the "
              "traces).", "", "| what | layers | time | per layer | growth |",
              "|---|---:|---:|---:|---:|"]
    for what, rows in data["series"].items():
        first = rows[0]["seconds"] / rows[0]["layers"]
        for r in rows:
            per = r["seconds"] / r["layers"]
            lines.append(f"| {what} | {r['layers']:,} | {secs(r['seconds'])} | "
                         f"{per * 1e3:.3f} ms | {per / first:.2f} |")
    return lines + [""]


def render(results: dict[str, Any]) -> Lines:
    data = results.get("render")
    lines = [TITLES["render"], ""]
    if not data:
        return lines + _missing("render")
    lines += ["`sf.render` from cold caches (benchmarks/bench_render.py), CPU seconds, median "
              f"of {data['reps']} runs; 'build' is making the Cost itself.", "",
              "| cost | format | build | render | render / build | characters |",
              "|---|---|---:|---:|---:|---:|"]
    for r in data["rows"]:
        lines.append(f"| {r['what']} | {r['format']} | {secs(r['build_s'])} | "
                     f"{secs(r['seconds'])} | {ratio(r['seconds'], r['build_s'])} | "
                     f"{r['chars']:,} |")
    return lines + [""]


def memory(results: dict[str, Any]) -> Lines:
    data = results.get("memory")
    lines = [TITLES["memory"], ""]
    if not data:
        return lines + _missing("memory")
    lines += ["Peak resident set size (`VmHWM`) of a fresh child process that builds the "
              "model on meta and counts it once; 'baseline' is the same process after "
              "building, before counting.", "",
              "| model | baseline | symflops trace | FlopCounterMode (meta) | symflops / FCM "
              "(above baseline) |", "|---|---:|---:|---:|---:|"]
    for name, r in data.items():
        if r.get("error"):
            lines.append(f"| {name} | - | - | - | failed: {r['error']} |")
            continue
        base = r["baseline_mb"]
        extra = ratio(r["symflops_mb"] - base, r["fcm_mb"] - base)
        lines.append(f"| {name} | {base:.0f} MB | {r['symflops_mb']:.0f} MB | "
                     f"{r['fcm_mb']:.0f} MB | {extra} |")
    return lines + [""]


def zoo(results: dict[str, Any]) -> Lines:
    data = results.get("zoo")
    lines = [TITLES["zoo"], ""]
    if not data:
        return lines + _missing("zoo")
    rows = data["models"]
    ok = [r for r in rows if r["status"] != "failed" and r.get("fcm_s")]
    t_sym = sum(r["trace_s"] for r in ok)
    t_fcm = sum(r["fcm_s"] for r in ok)
    by: dict[str, int] = {}
    for r in rows:
        by[r["status"]] = by.get(r["status"], 0) + 1
    lines += [f"{len(rows)} models (torchvision {data.get('torchvision', '?')}); each built on "
              "meta and traced symbolically (`sf.trace(model, \"B 3 H W\")`, `fallback=\"fit\"`)"
              " against built on meta and counted once by FlopCounterMode at its crop size; "
              "construction included in both, one run each. A model whose constructor refuses "
              "meta is built on CPU for both (real weights; FlopCounterMode then runs real "
              "convolutions).", "",
              f"- total over the {len(ok)} models both counted: symflops {secs(t_sym)}, "
              f"FlopCounterMode {secs(t_fcm)}: ratio {ratio(t_sym, t_fcm)}",
              *meta_only(ok),
              "- " + ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
              + " (symbolic: every input dim stays a symbol; fixed: the model pins some dims; "
              "fallback: fitted from concrete traces; failed: no count)", "",
              *torch_alone(ok),
              "Worst ten ratios (symflops / FlopCounterMode):", "",
              "| model | status | symflops | FlopCounterMode | ratio | torch alone | "
              "torch alone / FlopCounterMode |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(ok, key=lambda r: -r["trace_s"] / r["fcm_s"])[:10]:
        lines.append(f"| {r['name']} | {r['status']} | {secs(r['trace_s'])} | "
                     f"{secs(r['fcm_s'])} | {ratio(r['trace_s'], r['fcm_s'])} | "
                     f"{_alone(r)} | {ratio(r.get('alone_s'), r['fcm_s'])} |")
    if data.get("not_reached"):
        lines += ["", f"Partial: the run stopped before {len(data['not_reached'])} models: "
                  + ", ".join(data["not_reached"]) + "."]
    bad = [r for r in rows if r["status"] == "failed"]
    if bad:
        lines += ["", "Not counted: " + "; ".join(f"{r['name']} ({r.get('error', '?')})"
                                                 for r in bad)]
    lines += ["", "<details><summary>every model</summary>", "",
              "| model | status | symflops | FlopCounterMode | ratio | torch alone | fixed |",
              "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['name']}{' (built on CPU)' if r.get('device') == 'cpu' else ''} | "
                     f"{r['status']} | {secs(r.get('trace_s'))} | "
                     f"{secs(r.get('fcm_s'))} | {ratio(r.get('trace_s'), r.get('fcm_s'))} | "
                     f"{_alone(r)} | {r.get('fixed') or ''} |")
    return lines + ["", "</details>", ""]


def hard(results: dict[str, Any]) -> Lines:
    """Each check script's verdict and its report, as the script printed it."""
    data = results.get("hard")
    lines = [TITLES["hard"], ""]
    if not data:
        return lines + _missing("hard")
    lines += ["Each script traces models no one here wrote (torchvision, timm, transformers) "
              "symbolically once, substitutes sizes and compares with FlopCounterMode; a size "
              "outside the formula's domain must be refused. Exit 0: every size inside the "
              "domain agreed. Run one with `PYTHONPATH=. python benchmarks/SCRIPT`.", "",
              "| script | verdict | time |", "|---|---|---:|"]
    for script, row in data.items():
        if "error" in row:
            verdict = f"not run: {row['error']}"
        else:
            verdict = "every size agrees" if row["rc"] == 0 else \
                f"exit {row['rc']}: see below" + (f" ({row['stderr']})" if "stderr" in row
                                                   else "")
        lines.append(f"| {script} | {verdict} | {secs(row.get('seconds'))} |")
    for script, row in data.items():
        if row.get("lines"):
            lines += ["", f"<details><summary>{script}</summary>", "", "```",
                      *row["lines"], "```", "", "</details>"]
    return lines + [""]


def _alone(row: dict[str, Any]) -> str:
    """The torch-alone cell: its time, or why there is none."""
    if row.get("alone_s"):
        return secs(row["alone_s"])
    return str(row.get("alone_error", "-")).replace("|", "/")


def torch_alone(ok: list[dict[str, Any]]) -> Lines:
    """What torch's symbolic shapes cost before any tracer counts anything, over the models
    built on meta that torch could run symbolically: the per-model target (<= 2x
    FlopCounterMode) read against that floor."""
    meta = [r for r in ok if r.get("device") != "cpu"]
    ran = [r for r in meta if r.get("alone_s")]
    if not ran:
        return []
    t_alone, t_fcm = sum(r["alone_s"] for r in ran), sum(r["fcm_s"] for r in ran)
    t_sym = sum(r["trace_s"] for r in ran)
    above = [r for r in ran if r["alone_s"] > 2 * r["fcm_s"]]
    ours = [r for r in meta if r["trace_s"] > 2 * r["fcm_s"]]
    faster = [r for r in ran if r["trace_s"] < r["alone_s"]]
    not_run = {str(r.get("alone_error", "?")) for r in meta if not r.get("alone_s")}
    return [f"- torch alone (build + the model's forward on symbolic fake tensors, nothing "
            f"recorded: the floor of any tracer on torch's symbolic shapes), over the "
            f"{len(ran)} models built on meta that it ran: {secs(t_alone)} against "
            f"FlopCounterMode's {secs(t_fcm)} ({ratio(t_alone, t_fcm)}), symflops "
            f"{secs(t_sym)} ({ratio(t_sym, t_alone)} of torch alone)",
            f"- above 2x FlopCounterMode: torch alone in {len(above)} of {len(ran)}; symflops "
            f"in {len(ours)} of {len(meta)}; symflops' whole trace (every check included) "
            f"faster than torch alone in {len(faster)} of {len(ran)}",
            *([f"- torch alone did not run {len(meta) - len(ran)} models: "
               + "; ".join(sorted(not_run))] if not_run else []), ""]


def meta_only(ok: list[dict[str, Any]]) -> Lines:
    """The zoo's totals without the models built on CPU (where FlopCounterMode runs real
    convolutions, so its time is not a meta count), when there are any."""
    meta = [r for r in ok if r.get("device") != "cpu"]
    if len(meta) == len(ok):
        return []
    t_sym, t_fcm = sum(r["trace_s"] for r in meta), sum(r["fcm_s"] for r in meta)
    return [f"- over the {len(meta)} models built on meta only: symflops {secs(t_sym)}, "
            f"FlopCounterMode {secs(t_fcm)}: ratio {ratio(t_sym, t_fcm)}"]


# --------------------------------------------------------------------------------- targets
def _target_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of issue 12 that this run measured."""
    out: list[tuple[str, str, str]] = []

    def verdict(value: float, limit: float, below: bool) -> str:
        met = value <= limit if below else value >= limit
        by = value / limit if below else limit / value
        return "met" if met else f"missed by {by:.2f}x"

    cases = (results.get("models") or {}).get("cases", {})
    for name, c in cases.items():
        t, floor = (c["tools"].get(k, {}).get("seconds") for k in ("symflops", "symflops_floor"))
        if t and floor:
            out.append((f"{name}: symbolic trace <= 1.5x the concrete-recording floor",
                        f"{t / floor:.2f}x", verdict(t / floor, 1.5, True)))
    for name, r in (results.get("resolutions") or {}).items():
        if isinstance(r, dict) and not r.get("skipped"):
            x = r["theirs_s"] / r["ours_s"]
            out.append((f"{name}: 100 sizes >= 60x faster than 100 FlopCounterMode counts",
                        f"{x:.1f}x", verdict(x, 60, False)))
    z = results.get("zoo")
    if z and "models" in z:
        # models built on CPU are left out: there FlopCounterMode runs real convolutions
        ok = [r for r in z["models"] if r["status"] != "failed" and r.get("fcm_s")
              and r.get("device") != "cpu"]
        x = sum(r["trace_s"] for r in ok) / sum(r["fcm_s"] for r in ok)
        out.append((f"zoo traced symbolically in less total time than FlopCounterMode "
                    f"counts it once on meta (ratio < 1; the {len(ok)} models built on meta)",
                    f"{x:.2f}x", verdict(x, 1.0, True)))
        above = [r for r in ok if r["trace_s"] > 2 * r["fcm_s"]]
        alone = [r for r in ok if r.get("alone_s")]
        floor = [r for r in alone if r["alone_s"] > 2 * r["fcm_s"]]
        out.append((f"every torchvision classifier traced in at most 2x FlopCounterMode's time "
                    f"on meta (the {len(ok)} built on meta)", f"{len(above)} above 2x",
                    "met" if not above else
                    f"missed; torch's symbolic forward alone is above 2x in {len(floor)} of "
                    f"the {len(alone)} it runs"))
    d = (results.get("depth") or {}).get("series", {})
    for what, rows in d.items():
        if what.startswith("trace conv") and len(rows) > 1:
            g = (rows[-1]["seconds"] / rows[-1]["layers"]) / (rows[0]["seconds"]
                                                              / rows[0]["layers"])
            out.append((f"{what}: {rows[-1]['layers']:,} blocks within 1.5x the time per op of "
                        f"{rows[0]['layers']:,}", f"{g:.2f}x", verdict(g, 1.5, True)))
        if what.startswith("composition"):
            for r in rows:
                if r["layers"] in (1000, 1002):
                    out.append(("1,000-layer composition under 0.5 s", secs(r["seconds"]),
                                verdict(r["seconds"], 0.5, True)))
    for r in (results.get("evaluate") or {}).get("rows", []):
        out.append((f"10^6-point sweep under 50 ms after compilation ({r['what']})",
                    secs(r["run_s"]), verdict(r["run_s"], 0.05, True)))
    return out


def targets(results: dict[str, Any]) -> Lines:
    rows = _target_rows(results)
    lines = ["## Targets (issue 12)", ""]
    if not rows:
        return lines + ["_No target was measured in this run: not measured in this run._", ""]
    lines += ["| target | measured | verdict |", "|---|---:|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in rows]
    return lines + [""]


#: the sections of BENCHMARKS.md, in order (name -> builder)
SECTIONS: dict[str, Callable[[dict[str, Any]], Lines]] = {
    "header": header, "targets": targets, "models": models, "resolutions": resolutions,
    "evaluate": evaluate, "depth": depth, "render": render, "memory": memory, "zoo": zoo,
    "hard": hard,
}


def build_report(results: dict[str, Any]) -> str:
    """The whole of BENCHMARKS.md."""
    lines: Lines = []
    for name, build in SECTIONS.items():
        bad = failed(results, name)
        if bad is None:
            lines += build(results)
        else:
            lines += [TITLES[name], "", *bad]
    return "\n".join(lines).rstrip() + "\n"
