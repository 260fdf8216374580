"""Every library option is a command-line flag: the render flags reach ``sf.render``, the
trace flags reach ``sf.trace`` (each only when given), ``--traceback`` works anywhere,
conventions are read in any case, warnings are one line and error advice speaks flags."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import symflops as sf
from symflops.cli import canonical_layer, main
from symflops.cli._messages import error_line
from symflops.cli._parser import build_parser
from symflops.errors import FLAGS, SymflopsError, cli_option, python_option

ROOT = Path(__file__).resolve().parents[1]

ODD = """
import torch
from torch import nn


class Odd(nn.Module):  # bessel_j0 has no symflops handler: a warning, or an error with --strict
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.special.bessel_j0(self.lin(x))


def odd():
    return Odd()


def linear():
    return nn.Linear(4, 4)


def warns():
    import warnings
    warnings.warn("this factory is deprecated")
    return Odd()
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flags") / "models.py"
    path.write_text(textwrap.dedent(ODD), encoding="utf-8")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symflops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- render flags
class Recorder:
    """Stands in for a library function: records the keywords it was called with."""

    def __init__(self, result: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.result


RENDER_CASES = [
    (["--title", "My net"], {"title": "My net"}),
    (["--numbers", "si"], {"numbers": "si"}),
    (["--numbers", "grouped"], {"numbers": "grouped"}),
    (["--style", "paper"], {"style": "paper"}),
    (["--style", "appendix"], {"style": "appendix"}),
    (["--fold"], {"fold": True}),
    (["--no-fold"], {"fold": False}),
    (["--math-only"], {"math_only": True}),
    (["--standalone"], {"standalone": True}),
    (["--symbols", "H,W"], {"symbols": ["H", "W"]}),
    (["--depth", "2"], {"depth": 2}),
]


@pytest.mark.parametrize("flags, expected", RENDER_CASES,
                         ids=[" ".join(f) for f, _ in RENDER_CASES])
def test_render_flag_reaches_sf_render(flags: list[str], expected: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake = Recorder("rendered\n")
    monkeypatch.setattr("symflops.rendering.render", fake)
    assert main(["formula", "Linear", *flags]) == 0
    assert capsys.readouterr().out == "rendered\n"
    (kwargs,) = fake.calls
    for key, value in expected.items():
        assert kwargs[key] == value
    # the options not typed are not passed: sf.render's own defaults hold
    for key in {"numbers", "style", "fold", "math_only", "standalone", "symbols"} - set(expected):
        assert key not in kwargs


def test_no_render_flag_passes_no_option(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Recorder("x")
    monkeypatch.setattr("symflops.rendering.render", fake)
    assert main(["formula", "Linear"]) == 0
    (kwargs,) = fake.calls
    assert set(kwargs) == {"depth", "at", "title", "inputs"}
    assert kwargs["title"] == "Linear(I, O) -- FLOPs (exact)"


@pytest.mark.parametrize("flags, options", [
    (["--format", "latex", "--math-only"], {"math_only": True}),
    (["--format", "latex", "--standalone"], {"standalone": True}),
    (["--format", "md", "--numbers", "si"], {"numbers": "si"}),
    (["--format", "md", "--title", "A layer"], {"title": "A layer"}),
    (["--format", "latex", "--style", "paper"], {"style": "paper"}),
    (["--format", "md", "--style", "appendix"], {"style": "appendix"}),
    (["--format", "md", "--no-fold"], {"fold": False}),
    (["--format", "latex", "--style", "paper", "--symbols", "H,W"],
     {"style": "paper", "symbols": ["H", "W"]}),
    (["--format", "md", "--numbers", "plain", "--depth", "1"], {"numbers": "plain", "depth": 1}),
], ids=["math-only", "standalone", "numbers-si", "title", "style-paper", "style-appendix",
        "no-fold", "paper-symbols", "numbers-plain-depth"])
def test_render_flags_give_what_the_api_gives(flags: list[str], options: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formula", "Conv2d", "--at", "B=1,C_in=3,C_out=8,K=3,H=32,W=32", *flags]) == 0
    out = capsys.readouterr().out
    layer, shape, call = canonical_layer("Conv2d")
    cost = layer.cost(shape)
    at = {"B": 1, "C_in": 3, "C_out": 8, "K": 3, "H": 32, "W": 32}
    fmt = flags[1]
    kwargs = {"title": f"{call} -- FLOPs (exact)", **options}
    expected = sf.render(cost, fmt, at=at, **kwargs)
    assert out == (expected if expected.endswith("\n") else expected + "\n")


def test_a_render_option_this_build_lacks_is_one_error(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    def render(cost: Any, fmt: str, *, depth: Any = None, at: Any = None, title: Any = None,
               inputs: Any = None) -> str:  # an sf.render without style=
        return "x"

    monkeypatch.setattr("symflops.rendering.render", render)
    assert main(["formula", "Linear", "--style", "paper"]) == 2
    err = capsys.readouterr().err
    assert err == ("symflops: error: --style: sf.render in this version of symflops has no "
                   "style option; fix: leave --style out, or update symflops\n")


# --------------------------------------------------------------------------- trace flags
TRACE_CASES = [
    (["--strict"], {"strict": True}),
    (["--real"], {"real": True}),
    (["--fallback", "fit"], {"fallback": "fit"}),
    (["--skip-masked"], {"skip_masked": True}),
    (["--train"], {"mode": "train"}),
    (["--time-budget", "7"], {"time_budget": 7}),
    (["--hint", "B=8"], {"hints": {"B": 8}}),
]


@pytest.mark.parametrize("flags, expected", TRACE_CASES,
                         ids=[" ".join(f) for f, _ in TRACE_CASES])
def test_trace_flag_reaches_sf_trace(flags: list[str], expected: dict[str, Any], models: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake = Recorder(sf.nn.Linear(4, 4).cost(("B", 4)))
    monkeypatch.setattr("symflops.tracing.trace", fake)
    assert main(["trace", f"{models}:linear", "--input", "B 4", *flags]) == 0
    assert "FLOPs (exact)" in capsys.readouterr().out
    (kwargs,) = fake.calls
    for key, value in expected.items():
        assert kwargs[key] == value
    for key in {"strict", "real", "fallback", "skip_masked", "time_budget"} - set(expected):
        assert key not in kwargs
    assert kwargs["mode"] == ("train" if "--train" in flags else "eval")


@pytest.mark.parametrize("flag", ["--strict", "--real", "--skip-masked"])
def test_trace_flags_on_an_sf_nn_layer_are_refused(flag: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "Linear", "--var", "M", "--range", "1,2", "--at", "I=4,O=4",
                 flag]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"symflops: error: {flag} applies to traced torch models")


def test_strict_and_real_end_to_end(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", f"{models}:odd", "--input", "B 4", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "aten.special_bessel_j0" in err and "leave --strict out" in err
    assert "strict=False" not in err
    assert main(["trace", f"{models}:odd", "--input", "B 4", "--real"]) == 2
    err = capsys.readouterr().err
    # the library says real=True; the command line names its flag
    assert "--real runs the model for real: every size must be an int" in err
    assert "real=True" not in err and "symflops.tracing.fit" not in err
    assert main(["trace", f"{models}:linear", "--input", "2 4", "--real", "--convention",
                 "TORCH"]) == 0
    # Linear(4, 4) on 2 rows: 2 * 4 * 4 = 32 MACs, 2 FLOPs a MAC under torch
    assert "FLOPs (torch)  64" in capsys.readouterr().out


# --------------------------------------------------------------------------- warnings
@pytest.mark.slow  # a subprocess
def test_warnings_are_one_clean_line(models: Path) -> None:
    # the factory's own warning and the tracer's warning for an op it cannot count
    p = run("trace", f"{models}:warns", "--input", "B 4")
    assert p.returncode == 0, p.stderr
    warned = [ln for ln in p.stderr.splitlines() if "warning" in ln.lower()]
    assert warned == ["symflops: warning: this factory is deprecated",
                      "symflops: warning: trace: ops without a handler were NOT counted: "
                      "aten.special_bessel_j0 x1 (at (root))"]
    assert "UserWarning" not in p.stderr


# --------------------------------------------------------------------------- --traceback
@pytest.mark.parametrize("args", [
    ["--traceback", "formula", "NoSuchLayer"],
    ["formula", "--traceback", "NoSuchLayer"],
    ["formula", "NoSuchLayer", "--traceback"],
], ids=["before-command", "after-command", "at-the-end"])
def test_traceback_anywhere(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(sf.SymflopsError, match="unknown layer 'NoSuchLayer'"):
        main(args)  # raised, for Python to print with its traceback
    assert main([a for a in args if a != "--traceback"]) == 2
    assert capsys.readouterr().err.startswith("symflops: error: unknown layer 'NoSuchLayer'")


def test_traceback_is_printed() -> None:
    p = run("formula", "NoSuchLayer", "--traceback")
    assert p.returncode == 1
    assert "Traceback (most recent call last)" in p.stderr
    assert "SymflopsError: unknown layer 'NoSuchLayer'" in p.stderr


# --------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("typed, name", [("MACS", "macs"), ("Torch", "torch"),
                                         ("EXACT", "exact"), ("macs", "macs")])
def test_conventions_in_any_case(typed: str, name: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formula", "linear", "--convention", typed, "--at", "I=8,O=4,M=2"]) == 0
    got = capsys.readouterr().out
    assert main(["formula", "Linear", "--convention", name, "--at", "I=8,O=4,M=2"]) == 0
    assert got == capsys.readouterr().out


def test_unknown_convention_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formula", "Linear", "--convention", "gigaflops"]) == 2
    assert capsys.readouterr().err == (
        "symflops: error: --convention: unknown convention (convention=gigaflops); "
        "fix: use one of chinchilla, exact, macs, torch\n")


# --------------------------------------------------------------------------- advice
# (option, value, how Python writes it, how the command line writes it): one row per
# entry of symflops.errors.FLAGS, each flag checked against the parser below
ADVICE = [
    ("hints", {"H": 32}, "hints={'H': 32}", "--hint H=32"),
    ("hints", {"H": 32, "W": 48}, "hints={'H': 32, 'W': 48}", "--hint H=32 --hint W=48"),
    ("hints", ..., "hints=...", "--hint NAME=SIZE"),
    ("at", {"B": ..., "H": ...}, "at={'B': ..., 'H': ...}", "--at B=...,H=..."),
    ("at", ..., "at=...", "--at NAME=VALUE"),
    ("time_budget", 600, "time_budget=600", "--time-budget 600"),
    ("time_budget", ..., "time_budget=...", "--time-budget SECONDS"),
    ("fallback", "fit", "fallback='fit'", "--fallback fit"),
    ("convention", "macs", "convention='macs'", "--convention macs"),
    ("numbers", "comma", "numbers='comma'", "--numbers comma"),
    ("style", "report", "style='report'", "--style report"),
    ("strict", True, "strict=True", "--strict"),
    ("strict", False, "pass strict=False", "leave --strict out"),
    ("real", True, "real=True", "--real"),
    ("skip_masked", True, "skip_masked=True", "--skip-masked"),
    ("skip_masked", False, "pass skip_masked=False", "leave --skip-masked out"),
    ("math_only", True, "math_only=True", "--math-only"),
    ("mode", "train", "mode='train'", "--train"),
    ("mode", "eval", "pass mode='eval'", "leave --train out"),
    ("zero", 3, "zero=3", "--zero 3"),
    ("data_parallel", "D", "data_parallel='D'", "--data-parallel D"),
    ("tensor_parallel", 8, "tensor_parallel=8", "--tensor-parallel 8"),
    ("pipeline_parallel", ..., "pipeline_parallel=...", "--pipeline-parallel EXPR"),
    ("precision", "fp32", "precision='fp32'", "--precision fp32"),
    ("recompute", "selective", "recompute='selective'", "--recompute selective"),
    ("weight_format", "nf4-dq", "weight_format='nf4-dq'", "--weight-format nf4-dq"),
    ("kv_bytes", 1, "kv_bytes=1", "--kv-bytes 1"),
    ("paths", "all", "paths='all'", "--paths all"),
]


@pytest.mark.parametrize("name, value, python, cli", ADVICE,
                         ids=[f"{n}={v!r}" for n, v, _, _ in ADVICE])
def test_advice_speaks_python_and_cli(name: str, value: Any, python: str, cli: str) -> None:
    assert python_option(name, value) == python
    assert cli_option(name, value) == cli
    e = SymflopsError("bad", layer="trace", fix="try {" + name + "}", options={name: value})
    assert str(e) == f"trace: bad; fix: try {python}"
    assert e.cli_text() == f"trace: bad; fix: try {cli}"


def test_every_flag_in_the_table_is_exercised_and_exists() -> None:
    assert {name for name, *_ in ADVICE} == set(FLAGS)
    known = {s for action in _all_actions(build_parser()) for s in action.option_strings}
    assert {flag.flag for flag in FLAGS.values()} <= known


def _all_actions(parser: Any) -> list[Any]:
    import argparse

    out = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _all_actions(sub)
    return out


def test_an_option_the_fix_does_not_place_is_appended() -> None:
    e = SymflopsError("slow", fix="wait", options={"time_budget": 600})
    assert str(e) == "slow; fix: wait (time_budget=600)"
    assert e.cli_text() == "slow; fix: wait (--time-budget 600)"


def test_the_error_line_speaks_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # sf.trace's error for real=True with symbolic sizes, as Python and the CLI say it
    with pytest.raises(SymflopsError) as info:
        sf.trace(_torch().nn.Linear(4, 4), "B 4", real=True)
    assert str(info.value).startswith("trace: real=True runs the model for real")
    assert "fallback='fit'" in str(info.value)
    assert error_line(info.value) == (
        "symflops: error: trace: --real runs the model for real: every size must be an int; "
        "fix: give every input size as an integer, or pass --fallback fit to fit an exact "
        "formula")


def _torch() -> Any:
    return pytest.importorskip("torch")
