"""The ``symflops`` command line, end to end through ``python -m symflops`` subprocesses,
its printed numbers checked against the Python API."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops import analysis as A
from symflops.parse import parse_expr
from symflops.reference import EXAMPLES
from symflops.symbols import B, H, W

# left out of the fast lane: the command line end to end in subprocesses (87 s here)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symflops", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def ok(*args: str, cwd: Path = ROOT) -> str:
    p = run(*args, cwd=cwd)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p.stdout


def fails(*args: str, cwd: Path = ROOT) -> str:
    """Run a command that must fail: exit 2, one line on stderr, no traceback."""
    p = run(*args, cwd=cwd)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("symflops: error")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def row(text: str, label: str) -> str:
    """The value printed after ``label`` in a summary (``FLOPs (exact)  2*I*M*O``)."""
    m = re.search(rf"^{re.escape(label)}\s+(.+)$", text, re.M)
    assert m, (label, text)
    return m.group(1).strip()


def number(text: str, label: str) -> int:
    """An exact integer row: ``5,160,960 (5.16 M)`` -> 5160960 (checking the SI form)."""
    value = row(text, label)
    m = re.fullmatch(r"([\d,]+)(?: \((\d+(?:\.\d+)?) ([kMGTPE])\))?", value)
    assert m, value
    n = int(m.group(1).replace(",", ""))
    if m.group(2):
        scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}[m.group(3)]
        assert abs(float(m.group(2)) * scale - n) <= 0.01 * n
    return n


def factory_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- formula
def test_formula_prints_the_api_expressions() -> None:
    out = ok("formula", "Linear")
    ex = EXAMPLES["Linear"]
    cost = ex.build().cost(ex.input_shape)
    assert out.startswith("Linear(I, O) -- FLOPs (exact)")
    assert parse_expr(row(out, "FLOPs (exact)")) == cost.flops
    assert parse_expr(row(out, "params")) == cost.params
    assert parse_expr(row(out, "MACs")) == cost.macs


@pytest.mark.parametrize("convention, label", [("exact", "FLOPs (exact)"),
                                               ("torch", "FLOPs (torch)"), ("macs", "MACs")])
def test_formula_at_values_with_convention(convention: str, label: str) -> None:
    at = "B=1,C_in=3,C_out=64,K=3,H=224,W=224,s=1,p=1,groups=1"
    out = ok("formula", "Conv2d", "--convention", convention, "--at", at)
    ex = EXAMPLES["Conv2d"]
    cost = ex.build().cost(ex.input_shape, convention=convention)
    values = {"B": 1, "C_in": 3, "C_out": 64, "K": 3, "H": 224, "W": 224, "s": 1, "p": 1,
              "groups": 1}
    expected = cost.subs(values)
    assert number(out, label) == expected.flops
    assert number(out, "params") == expected.params == 1792   # 64 * (3*9 + 1)
    assert number(out, "MACs") == 86_704_128                  # 64*224*224 * 27
    assert label in out.splitlines()[0]
    if convention == "macs":
        assert "FLOPs" not in out.split("general formula")[0]  # MACs are never called FLOPs


def test_formula_other_formats() -> None:
    doc = json.loads(ok("formula", "Linear", "--format", "json", "--at", "M=4,I=8,O=2"))
    assert doc["convention"]["label"] == "FLOPs (exact)"
    md = ok("formula", "TransformerBlock", "--format", "md")
    assert md == sf.render(EXAMPLES["TransformerBlock"].build().cost((B, sf.symbols.N,
                                                                      sf.symbols.dim)),
                           "markdown")
    tex = ok("formula", "Conv2d", "--format", "latex", "--convention", "macs")
    assert "MACs" in tex and "\\lfloor" in tex


def test_formula_errors() -> None:
    assert "unknown layer 'Conv9d'" in fails("formula", "Conv9d")
    assert "fix: use one of" in fails("formula", "Conv9d")
    assert "unknown convention" in fails("formula", "Conv2d", "--convention", "flops")
    line = fails("formula", "Linear", "--at", "X=1")
    assert "unknown symbol 'X'" in line and "I, M, O" in line
    assert "exponents" in fails("formula", "Linear", "--at", "I=2**M")


def test_nothing_typed_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for hostile in (f"I=__import__('os').system('touch {marker}')",
                    f"I=exec(\"open('{marker}','w')\")", "I=().__class__", "I=lambda: 1",
                    "I=1;import os"):
        line = fails("formula", "Linear", "--at", hostile)
        assert "--at" in line and "fix:" in line
    fails("scale", "Linear", "--var", "I", "--range", f"__import__('os').system('touch {marker}')")
    fails("scale", "Linear", "--var", "().__class__", "--range", "1:4")
    assert not marker.exists()


# --------------------------------------------------------------------------- trace (sf.nn)
NN_FACTORY = """
    import time
    import symflops as sf

    def small():
        return sf.nn.Sequential(sf.nn.Conv2d(3, 16, 3, stride=2, padding=1), sf.nn.ReLU(),
                                sf.nn.Conv2d(16, 32, 3, stride=2, padding=1),
                                sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(),
                                sf.nn.Linear(32, 10))

    def slow():
        time.sleep(2.2)
        return small()

    def broken():
        raise RuntimeError("no weights here")

    NOT_CALLABLE = 3
"""


def test_trace_of_an_sf_nn_factory(tmp_path: Path) -> None:
    path = factory_file(tmp_path, NN_FACTORY)
    target = f"{path}:small"
    out = ok("trace", target, "--input", "B 3 H W", "--at", "B=2,H=64,W=48")
    spec = importlib.util.spec_from_file_location("models_for_test", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cost = mod.small().cost((B, 3, H, W))
    assert number(out, "FLOPs (exact)") == cost.subs(B=2, H=64, W=48).flops
    assert number(out, "params") == cost.params
    aligned = ok("trace", target, "--input", "B 3 H W", "--aligned", "--convention", "macs")
    assert "H a multiple of 4" in aligned
    expected = A.aligned(cost.with_convention("macs"), {H: 4, W: 4}).flops
    assert sp.expand(parse_expr(row(aligned, "MACs")) - expected) == 0
    # --output writes the same text to a file
    dest = tmp_path / "out.txt"
    ok("trace", target, "--input", "B 3 H W", "--at", "B=2,H=64,W=48", "--output", str(dest))
    assert dest.read_text() == out


def test_trace_of_a_module_factory(tmp_path: Path) -> None:
    # package.module:FACTORY is imported like any module (python -m puts the cwd on the path)
    factory_file(tmp_path, NN_FACTORY)
    by_module = ok("trace", "models:small", "--input", "B 3 H W", "--at", "B=1,H=32,W=32",
                   cwd=tmp_path)
    by_file = ok("trace", "models.py:small", "--input", "B 3 H W", "--at", "B=1,H=32,W=32",
                 cwd=tmp_path)
    assert by_module.splitlines()[1:] == by_file.splitlines()[1:]
    assert "no factory 'nope'" in fails("trace", "models:nope", "--input", "B 3 H W",
                                        cwd=tmp_path)
    assert "is not a name" in fails("trace", "models;rm:small", "--input", "B 3 H W",
                                    cwd=tmp_path)


def test_trace_depth_breakdown(tmp_path: Path) -> None:
    path = factory_file(tmp_path, NN_FACTORY)
    out = ok("trace", f"{path}:small", "--input", "B 3 H W", "--at", "B=1,H=32,W=32",
             "--depth", "1")
    shares = [float(x) for x in re.findall(r"(\d+\.\d)%$", out, re.M)]
    assert len(shares) == 6 and abs(sum(shares) - 100) < 0.5
    assert shares == sorted(shares, reverse=True)


def test_trace_errors(tmp_path: Path) -> None:
    path = factory_file(tmp_path, NN_FACTORY)
    line = fails("trace", f"{path}:nothere", "--input", "B 3 H W")
    assert "has no factory 'nothere'" in line and "broken, slow, small" in line
    assert "not callable" not in fails("trace", f"{path}:NOT_CALLABLE", "--input", "B 3 H W")
    assert "no such file" in fails("trace", f"{tmp_path}/missing.py:f", "--input", "B 3 H W")
    assert "FILE.py:FACTORY" in fails("trace", "resnet50", "--input", "B 3 H W")
    assert "cannot import module" in fails("trace", "no_such_pkg.mod:f", "--input", "B 3 H W")
    line = fails("trace", f"{path}:broken", "--input", "B 3 H W")
    assert "RuntimeError: no weights here" in line
    assert "decimal point" in fails("trace", f"{path}:small", "--input", "B 3.5 H W")
    assert "'W!' is not a name" in fails("trace", f"{path}:small", "--input", "B 3 H W!")
    assert "needs an input" in fails("trace", f"{path}:small")
    assert "hints must be positive integers" in fails("trace", f"{path}:small", "--input",
                                                      "B 3 H W", "--hint", "H=W")
    assert "decimal point" in fails("trace", f"{path}:small", "--input", "B 3 H W", "--hint",
                                    "H=2.5")
    line = fails("trace", f"{path}:small", "--input", "B 3 H W", "--at", "Q=3")
    assert "unknown symbol 'Q'" in line and "B, H, W" in line
    assert "positive" in fails("trace", f"{path}:small", "--input", "B 3 H W", "--at", "H=0")


def test_slow_factory_shows_progress(tmp_path: Path) -> None:
    path = factory_file(tmp_path, NN_FACTORY)
    p = run("trace", f"{path}:slow", "--input", "B 3 H W")
    assert p.returncode == 0
    assert "building and costing" in p.stderr and "done in" in p.stderr
    fast = run("trace", f"{path}:small", "--input", "B 3 H W")
    assert fast.stderr == ""


# --------------------------------------------------------------------------- scale
def test_scale_table_matches_sweep() -> None:
    out = ok("scale", "TransformerBlock", "--var", "N", "--range", "64:1024:*2", "--at",
             "B=1,dim=768,heads=12,mlp_ratio=4")
    ex = EXAMPLES["TransformerBlock"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, dim=768, heads=12, mlp_ratio=4)
    expected = A.sweep(cost, {"N": [64, 128, 256, 512, 1024]}).results["flops"]
    table = re.findall(r"^\s*([\d,]+)\s+([\d,]+)$", out, re.M)
    assert [int(n.replace(",", "")) for n, _ in table] == [64, 128, 256, 512, 1024]
    assert [int(v.replace(",", "")) for _, v in table] == expected.tolist()
    assert "growth order in N: 2" in out
    assert "FLOPs (exact)" in out


def test_scale_crossover_and_largest_part() -> None:
    at = "B=1,dim=768,heads=12,mlp_ratio=4"
    out = ok("scale", "TransformerBlock", "--var", "N", "--range", "64:8192:*2", "--at", at,
             "--crossover", "attention.mha,mlp")
    ex = EXAMPLES["TransformerBlock"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, dim=768, heads=12, mlp_ratio=4)
    (x,) = A.crossings(cost["attention.mha"], cost["mlp"], "N")
    solution = x.root
    assert f"crossover: attention.mha equals mlp at N = {solution}" in out
    assert "largest part at N = 64: mlp" in out        # short sequences: the MLP
    assert "largest part at N = 8192: attention" in out  # long ones: attention's N^2
    doc = json.loads(ok("scale", "TransformerBlock", "--var", "N", "--range", "64:8192:*2",
                        "--at", at, "--crossover", "attention.mha,mlp", "--format", "json"))
    assert doc["crossover"]["method"] == "symbolic"
    assert doc["crossover"]["values"] == [pytest.approx(float(solution))]
    assert doc["end_slope"] > doc["fitted_slope"] > 1
    assert "two module paths" in fails("scale", "TransformerBlock", "--var", "N", "--range",
                                       "1:4", "--at", at, "--crossover", "mlp")
    assert "no child called 'nope'" in fails("scale", "TransformerBlock", "--var", "N",
                                             "--range", "1:4", "--at", at, "--crossover",
                                             "mlp,nope")


def test_scale_json_and_tied_symbols() -> None:
    doc = json.loads(ok("scale", "Conv2d", "--var", "H,W", "--range", "32:128:32", "--at",
                        "B=1,C_in=3,C_out=8,K=3,s=2,p=1,groups=1", "--format", "json",
                        "--convention", "macs"))
    assert doc["label"] == "MACs" and doc["variables"] == ["H", "W"]
    ex = EXAMPLES["Conv2d"]
    cost = ex.build().cost(ex.input_shape, convention="macs")
    assert doc["results"] == [cost.subs(B=1, C_in=3, C_out=8, K=3, s=2, p=1, groups=1, H=h,
                                        W=h).flops for h in (32, 64, 96, 128)]
    assert doc["growth_order"] == "2" and doc["alignment"] == {"H": 2, "W": 2}
    assert abs(doc["fitted_slope"] - 2) < 0.05


def test_scale_over_code_paths_gives_each_its_own_order(tmp_path: Path, capsys) -> None:
    # with --paths all the cost is a Piecewise: scale stopped at "not a polynomial" (the
    # refusal without --paths had advised it); now each path speaks for itself
    pytest.importorskip("torch")
    from symflops.cli import main

    (tmp_path / "small.py").write_text(
        "from tests.test_trace_domain import _SmallInputsElsewhere\n"
        "def make():\n    return _SmallInputsElsewhere()\n", encoding="utf-8")
    args = ["scale", f"{tmp_path / 'small.py'}:make", "--input", "B 3 H W", "--hint", "H=32",
            "--hint", "W=32", "--var", "H", "--range", "8:40:8", "--at", "B=1,W=32"]
    assert main([*args, "--paths", "all"]) == 0
    out = capsys.readouterr().out
    # x * 2 above 16: 3 * 32 * H = 96 H; a sigmoid (3 each) up to 16: 288 H
    assert "where H >= 17: growth order 1, leading term 96*H" in out
    assert "where H <= 16: growth order 1, leading term 288*H" in out
    table = re.findall(r"^\s*(\d+)\s+([\d,]+)$", out, re.M)
    assert [(int(h), int(v.replace(",", ""))) for h, v in table] == \
        [(8, 288 * 8), (16, 288 * 16), (24, 96 * 24), (32, 96 * 32), (40, 96 * 40)]
    assert main([*args, "--paths", "all", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["growth_order"] for p in doc["paths"]] == ["1", "1"]
    assert doc["results"] == [288 * 8, 288 * 16, 96 * 24, 96 * 32, 96 * 40]
    # a crossover or a roofline is a root of one formula: refused, not silently dropped
    assert main([*args, "--paths", "all", "--crossover", "a,b"]) == 2
    assert "joined over code paths: --crossover needs one formula" in capsys.readouterr().err
    assert main([*args, "--paths", "all", "--device", "L4"]) == 2
    assert "fix: trace one path: --paths one, or --hint NAME=SIZE" in capsys.readouterr().err


def test_scale_plot_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    ok("scale", "TransformerBlock", "MultiheadAttention", "--var", "N", "--range",
       "64:4096:*2", "--at", "B=1,dim=768,heads=12,mlp_ratio=4", "--plot", str(png))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_scale_defaults_batch_to_one() -> None:
    out = ok("scale", "MultiheadAttention", "--var", "N", "--range", "4:8:4", "--at",
             "dim=8,heads=2")
    assert out.startswith("batch B = 1 (the default for scale")
    ex = EXAMPLES["MultiheadAttention"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, dim=8, heads=2)
    table = re.findall(r"^\s*(\d+)\s+([\d,]+)$", out, re.M)
    assert [int(v.replace(",", "")) for _, v in table] == [cost.subs(N=4).flops,
                                                          cost.subs(N=8).flops]
    doc = json.loads(ok("scale", "MultiheadAttention", "--var", "N", "--range", "4:8:4",
                        "--at", "dim=8,heads=2", "--format", "json"))
    assert doc["at"] == {"dim": "8", "heads": "2", "B": "1"}
    explicit = ok("scale", "MultiheadAttention", "--var", "N", "--range", "4:8:4", "--at",
                  "B=3,dim=8,heads=2")
    assert "batch B = 1" not in explicit


def test_scale_errors() -> None:
    line = fails("scale", "Linear", "--var", "H", "--range", "1:4", "--at", "I=2,O=3")
    assert "does not depend on H" in line and "fix: sweep one of: M" in line
    line = fails("scale", "Linear", "--var", "M", "--range", "1:4", "--at", "I=2")
    assert "also depends on O" in line and "--at O=..." in line and "--var M,O" in line
    # tying W to H through --at works as the message says
    out = ok("scale", "Conv2d", "--var", "H", "--range", "8:16:8", "--at",
             "B=1,C_in=1,C_out=1,K=1,s=1,p=1,groups=1,W=H")
    assert re.search(r"^\s*16\s+648$", out, re.M)  # 2 FLOPs (mul + bias) * 18 * 18
    assert "range stop is below" in fails("scale", "Linear", "--var", "M", "--range", "4:1")


# --------------------------------------------------------------------------- doc
def test_doc_writes_the_reference(tmp_path: Path) -> None:
    from symflops.reference import formula_reference

    dest = tmp_path / "docs" / "formulas.md"
    ok("doc", "--output", str(dest))
    assert dest.read_text(encoding="utf-8") == formula_reference()
    assert ok("doc") == formula_reference()
    ok("doc", "--check", "--output", str(dest))
    dest.write_text("stale", encoding="utf-8")
    p = run("doc", "--check", "--output", str(dest))
    assert p.returncode == 1 and "is stale" in p.stderr


# --------------------------------------------------------------------------- torch examples
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is an optional extra")


def _example(name: str) -> object:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES_DIR / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def traced_resnet50() -> sf.Cost:
    return sf.trace(_example("resnet").resnet50(), "B 3 H W", convention="macs")  # type: ignore


@needs_torch
def test_trace_resnet50_example(traced_resnet50: sf.Cost) -> None:
    out = ok("trace", "examples/resnet.py:resnet50", "--input", "B 3 H W", "--at",
             "B=1,H=224,W=224", "--convention", "macs")
    at = traced_resnet50.subs(B=1, H=224, W=224)
    assert number(out, "MACs") == at.flops == 4_089_184_256   # torchvision's 4.09 GFLOPS
    assert number(out, "params") == at.params == 25_557_032   # torchvision's resnet50
    assert "4,089,184,256 (4.09 G)" in out


@needs_torch
def test_trace_aligned_example() -> None:
    aligned = ok("trace", "examples/resnet.py:tiny", "--input", "B 3 H W", "--aligned",
                 "--convention", "macs")
    cost = sf.trace(_example("resnet").tiny(), "B 3 H W", convention="macs")  # type: ignore
    ((_, m),) = {k.name: v for k, v in A.alignment(cost, H).items()}.items()
    assert m > 1 and f"H a multiple of {m}" in aligned
    expected = A.aligned(cost, {H: m, W: m}).flops
    assert not expected.atoms(sp.floor)
    assert sp.expand(parse_expr(row(aligned, "MACs")) - expected) == 0


@needs_torch
def test_scale_traced_models_plot(tmp_path: Path, traced_resnet50: sf.Cost) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "cnn.png"
    out = ok("scale", "examples/resnet.py:resnet50", "examples/mobilenet.py:mobilenet_v2",
             "--input", "B 3 H W", "--var", "H,W", "--range", "64:1024:64", "--at", "B=1",
             "--convention", "macs", "--plot", str(png))
    assert png.read_bytes().startswith(b"\x89PNG")
    first = out.split("\n\n")[0]
    values = np.arange(64, 1025, 64)
    expected = A.sweep(traced_resnet50, {("H", "W"): values}, at={"B": 1}).results["flops"]
    table = re.findall(r"^\s*([\d,]+)\s+([\d,]+)$", first, re.M)
    assert [int(v.replace(",", "")) for _, v in table] == expected.tolist()
    assert "growth order in H, W: 2" in first
    poly = A.terms(traced_resnet50.subs(B=1), [H, W])
    printed = row(first, "polynomial (H a multiple of 32, W a multiple of 32):")
    assert sp.expand(parse_expr(printed) - sum(t.expr for t in poly)) == 0
    assert "examples/mobilenet.py:mobilenet_v2 -- MACs" in out


@needs_torch
def test_trace_train_mode_matches_api(tmp_path: Path) -> None:
    out = ok("trace", "examples/resnet.py:tiny", "--input", "B 3 H W", "--train", "--at",
             "B=2,H=32,W=32", "--convention", "torch")
    cost = sf.trace(_example("resnet").tiny(), "B 3 H W", convention="torch",  # type: ignore
                    mode="train")
    assert number(out, "FLOPs (torch)") == cost.subs(B=2, H=32, W=32).flops
    fwd = ok("trace", "examples/resnet.py:tiny", "--input", "B 3 H W", "--at",
             "B=2,H=32,W=32", "--convention", "torch")
    assert number(out, "FLOPs (torch)") > 2 * number(fwd, "FLOPs (torch)")


@pytest.fixture(scope="module")
def traced_tiny() -> sf.Cost:
    return sf.trace(_example("resnet").tiny(), "B 3 H W", convention="macs")  # type: ignore


@needs_torch
@pytest.mark.parametrize("fmt, name", [("summary", None), ("md", "markdown"),
                                       ("latex", "latex"), ("text", "text"), ("json", "json")])
def test_trace_every_format_matches_the_api(fmt: str, name: str | None,
                                             traced_tiny: sf.Cost) -> None:
    # the README's `symflops trace ... --format ...` from a fresh process, against sf.render
    out = ok("trace", "examples/resnet.py:tiny", "--input", "B 3 H W", "--at",
             "B=2,H=32,W=32", "--depth", "1", "--format", fmt, "--convention", "macs")
    at = {B: 2, H: 32, W: 32}
    if name is None:
        assert number(out, "MACs") == traced_tiny.subs(at).flops
        assert number(out, "params") == traced_tiny.params
        assert "FLOPs" not in out.split("general formula")[0]  # MACs are never FLOPs
        return
    expected = sf.render(traced_tiny, name, depth=1, at=at)
    assert out == (expected if expected.endswith("\n") else expected + "\n")
    if fmt == "json":
        assert json.loads(out)["convention"]["label"] == "MACs"


@needs_torch
def test_trace_bad_input_spec_for_torch_model() -> None:
    line = fails("trace", "examples/resnet.py:tiny", "--input", "B 3 H")
    assert line.startswith("symflops: error")


@needs_torch
def test_symbolic_expression_printing_parses_back(traced_resnet50: sf.Cost) -> None:
    # the summary prints plain SymPy text; the aligned total must round-trip through parse
    al = A.aligned(traced_resnet50, {H: 32, W: 32}).flops
    assert sp.expand(parse_expr(str(al)) - al) == 0


@needs_torch
def test_trace_gpt_keyword_input() -> None:
    out = ok("trace", "examples/gpt.py:gpt_tiny", "--input", "input_ids=B N", "--at",
             "B=2,N=64", "--convention", "torch")
    cost = sf.trace(_example("gpt").gpt_tiny(), {"input_ids": ("B", "N")},  # type: ignore
                    convention="torch")
    at = cost.subs(B=2, N=64)
    assert number(out, "FLOPs (torch)") == at.flops and number(out, "params") == at.params
    assert "input input_ids=(B N)" in out
    sc = ok("scale", "examples/gpt.py:gpt_tiny", "--input", "input_ids=B N", "--var", "N",
            "--range", "16:64:16", "--at", "B=1", "--format", "json")
    assert json.loads(sc)["results"] == [cost.with_convention("exact").subs(B=1, N=n).flops
                                         for n in (16, 32, 48, 64)]
    # gpt_tiny has 64 positions: past them the sweep is refused, not answered
    bad = run("scale", "examples/gpt.py:gpt_tiny", "--input", "input_ids=B N", "--var", "N",
              "--range", "32:128:32", "--at", "B=1")
    assert bad.returncode == 2 and "N <= 64" in bad.stderr
    assert json.loads(sc)["growth_order"] == "2"   # attention's N^2


@needs_torch
def test_trace_vit_with_fixed_resolution() -> None:
    # vit_tiny checks H == W == 32 in its forward: symbolic H fails with one clear line,
    # fixed sizes work
    line = fails("trace", "examples/vit.py:vit_tiny", "--input", "B 3 H W")
    assert "fix:" in line
    out = ok("trace", "examples/vit.py:vit_tiny", "--input", "B 3 32 32", "--at", "B=2",
             "--convention", "macs")
    cost = sf.trace(_example("vit").vit_tiny(), "B 3 32 32", convention="macs")  # type: ignore
    assert number(out, "MACs") == cost.subs(B=2).flops
