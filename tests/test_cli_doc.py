"""``symflops doc MODEL.py:make``: a model's formula document (total, growth orders, plot,
per-block formulas with derivations) in Markdown or LaTeX, checked against the API, parsed
as Markdown tables, compiled with pdflatex, and kept fresh with ``--check``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import symflops as sf
from symflops.cli import main

MODEL = """
import symflops as sf


def net():
    return sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.ReLU(),
                            sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(), sf.nn.Linear(8, {out}))
"""


def api_cost(out: int = 10) -> sf.Cost:
    net = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.ReLU(),
                           sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(), sf.nn.Linear(8, out))
    return net.cost(("B", 3, "H", "W"))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(MODEL.format(out=10), encoding="utf-8")
    return path


def doc(model: Path, output: Path, *extra: str) -> int:
    return main(["doc", f"{model}:net", "--input", "B 3 H W", "--output", str(output),
                 "--range", "16:128:*2", *extra])


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text`` as rows of cell texts (header first)."""
    tokens = MarkdownIt().enable("table").parse(text)
    found: list[list[list[str]]] = []
    row: list[str] = []
    for i, t in enumerate(tokens):
        if t.type == "table_open":
            found.append([])
        elif t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            row.append(tokens[i + 1].content)
        elif t.type == "tr_close":
            found[-1].append(row)
    return found


def test_markdown_document(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs" / "net.md"
    assert doc(model, out) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# net: parameters, MACs and FLOPs\n")
    cost = api_cost()
    # the total: the API's own display of the totals
    assert sf.render(cost, "markdown", math_only=True).strip() in text
    growth, blocks = tables(text)
    # MACs = 8*B*(27*H*W + 10): order 1 in H, 1 in W, 2 in H = W jointly, 1 in B;
    # params = 314 do not grow
    assert growth[0] == ["quantity", "order in H", "order in W", "order in H = W",
                         "order in B"]
    assert growth[1] == ["params", "0", "0", "0", "0"]
    assert growth[2] == ["MACs", "1", "1", "2", "1"]
    assert growth[3] == ["FLOPs (exact)", "1", "1", "2", "1"]
    # one row per block, then the total; each block's derivation follows
    assert [r[0] for r in blocks[1:]] == ["`0`", "`1`", "`2`", "`3`", "`4`", "**total**"]
    assert "#### Derivations" in text and "**`4`** `Linear(8, 10)`" in text
    plot = tmp_path / "docs" / "net-plot.svg"
    assert "![FLOPs (exact) of net](net-plot.svg)" in text
    assert plot.read_bytes().startswith(b"<?xml")


def test_latex_document_compiles(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "net.tex"
    assert doc(model, out) == 0
    text = out.read_text(encoding="utf-8")
    assert "\\includegraphics[width=0.8\\linewidth]{net-plot.pdf}" in text
    assert (tmp_path / "net-plot.pdf").read_bytes().startswith(b"%PDF")
    assert sf.render(api_cost(), "latex", math_only=True).strip() in text
    pdflatex = shutil.which("pdflatex")
    assert pdflatex is not None, "pdflatex is part of the development environment"
    p = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", out.name],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:]
    assert (tmp_path / "net.pdf").read_bytes().startswith(b"%PDF")


def test_check_says_when_the_document_is_stale(model: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "net.md"
    assert doc(model, out) == 0
    capsys.readouterr()
    plot = tmp_path / "net-plot.svg"
    plot.unlink()
    assert doc(model, out, "--check") == 0
    assert capsys.readouterr().err == f"symflops: {out} is up to date\n"
    assert not plot.exists()  # --check writes nothing
    model.write_text(MODEL.format(out=20), encoding="utf-8")  # the model changed
    assert doc(model, out, "--check") == 1
    assert capsys.readouterr().err.startswith(f"symflops: {out} is stale; run: symflops doc")


def test_to_stdout_without_a_plot(model: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doc", f"{model}:net", "--input", "B 3 H W"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# net: parameters, MACs and FLOPs")
    assert "![" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py"]


@pytest.mark.parametrize("extra, message", [
    (["--input", "B 3 H W", "--output", "x.txt"], "--output: symflops doc writes a model's"),
    ([], "doc: a model's document needs its input"),
    (["--input", "B 3 H W", "--var", "Q"], "--var: net does not depend on Q"),
], ids=["txt-suffix", "no-input", "unknown-var"])
def test_doc_errors(extra: list[str], message: str, model: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doc", f"{model}:net", *extra]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"symflops: error: {message}")


@pytest.mark.parametrize("flag", [["--input", "B 3 H W"], ["--strict"], ["--train"],
                                  ["--hint", "H=8"], ["--var", "H"], ["--depth", "2"]],
                         ids=lambda f: f[0])
def test_reference_flags_are_for_a_model(flag: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doc", *flag]) == 2
    assert f"{flag[0]} applies to a model's document" in capsys.readouterr().err
