"""What the command line writes, and what it leaves when it fails: no folder created by a
command that fails, LaTeX-safe plot names, one-line errors for odd paths, no silently
ignored flag (in process through symflops.cli.main: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
from symflops.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = f"{ROOT}/examples/resnet.py:tiny"


def test_a_failing_doc_creates_no_folder(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "newdir" / "sub" / "out.md"
    assert main(["doc", f"{ROOT}/examples/resnet.py:nothere", "--input", "B 3 H W",
                 "--output", str(out)]) == 2
    assert not (tmp_path / "newdir").exists()
    capsys.readouterr()
    # the same command that succeeds creates the folders and writes the file and its plot
    assert main(["doc", TINY, "--input", "B 3 H W", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["out-plot.svg", "out.md"]


def test_a_tex_document_names_its_plot_safely(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run%1#a.tex"
    assert main(["doc", TINY, "--input", "B 3 H W", "--output", str(out)]) == 0
    tex = out.read_text()
    (line,) = [x for x in tex.splitlines() if "includegraphics" in x]
    assert line.endswith("{run_1_a-plot.pdf}")        # % would comment out the rest
    assert (tmp_path / "run_1_a-plot.pdf").exists()


def test_a_path_with_a_newline_is_one_line_of_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", TINY, "--input", "B 3 H W", "--output",
                 str(tmp_path / "a\nb.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "control character" in err
    assert list(tmp_path.iterdir()) == []


def test_math_only_and_standalone_together_are_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", TINY, "--input", "B 3 H W", "--format", "latex", "--math-only",
                 "--standalone"]) == 2
    err = capsys.readouterr().err
    assert "--math-only and --standalone" in err and err.count("\n") == 1
