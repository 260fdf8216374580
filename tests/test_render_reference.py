"""The formula reference page: complete, correct about the seed article, and not stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.formulas.pointwise import ACTIVATION_RATES
from symflops.reference import EXAMPLES, formula_reference, main, write_reference
from symflops.symbols import C_in, C_out, K, N, dim

DOCS = Path(__file__).resolve().parent.parent / "docs" / "formulas.md"


@pytest.fixture(scope="module")
def page() -> str:
    return formula_reference()


def test_committed_docs_are_not_stale(page: str) -> None:
    assert DOCS.exists(), "docs/formulas.md missing: run python -m symflops.reference"
    assert DOCS.read_text(encoding="utf-8") == page, (
        "docs/formulas.md is stale: regenerate it with python -m symflops.reference")


def test_every_layer_has_a_section(page: str) -> None:
    assert set(EXAMPLES) == set(sf.nn.LAYERS)
    for name in sf.nn.LAYERS:
        assert f"\n### {name}\n" in page, name


def test_every_convention_and_kind_listed(page: str) -> None:
    for label in ("FLOPs (exact)", "FLOPs (torch)", "MACs"):
        assert f"| {label} |" in page
    for kind in sf.KINDS:
        assert f"| `{kind}` |" in page
    for act in ACTIVATION_RATES:
        assert f"| `{act}` |" in page


def _table_rows(page: str, heading: str) -> list[list[str]]:
    from markdown_it import MarkdownIt

    section = page.split(heading, 1)[1]
    tokens = MarkdownIt("commonmark").enable("table").parse(section)
    rows, row, inside = [], None, False
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            inside = True
        elif tok.type == "table_close":
            break
        elif inside and tok.type == "tr_open":
            row = []
        elif inside and tok.type in ("td_open", "th_open"):
            row.append(tokens[i + 1].content)
        elif inside and tok.type == "tr_close":
            rows.append(row)
    return rows


def test_article_corrections(page: str) -> None:
    rows = _table_rows(page, "## The seed article's formulas, checked")
    header, *body = rows
    assert header[0] == "formula" and header[-1] == "check"
    differs = {r[0] for r in body if r[-1].startswith("**differs")}
    # exactly the article's two wrong parameter formulas and its attention sum without the
    # output projection
    assert differs == {"Conv params", "LayerNorm params", "Attention total"}
    conv = next(r for r in body if r[0] == "Conv params")
    # the correct count: C_out filters of C_in K^2 weights, plus C_out biases
    params = sf.nn.Conv2d(C_in, C_out, K).cost(("B", C_in, "H", "W")).params
    assert sp.expand(params - C_out * (C_in * K * K + 1)) == 0
    assert "C_{\\mathrm{out}} \\left(C_{\\mathrm{in}} K^{2} + 1\\right)" in conv[4]
    ln = next(r for r in body if r[0] == "LayerNorm params")
    assert ln[4] == "$2 d$"
    assert sf.nn.LayerNorm(dim).cost((1, N, dim)).params == 2 * dim
    assert "output projection" in page and "softmax" in page


def test_layer_tables_parse(page: str) -> None:
    rows = _table_rows(page, "\n### Conv2d\n")
    assert rows[0] == ["quantity", "formula"]
    quantities = [r[0] for r in rows[1:]]
    assert quantities[0] == "params"
    assert quantities[-3:] == ["FLOPs (exact)", "FLOPs (torch)", "MACs"]
    # 2 C_in C_out K^2 H_out W_out / g under torch: two per MAC
    torch_row = rows[-2][1]
    assert torch_row.startswith("$\\frac{2 B C_{\\mathrm{in}} C_{\\mathrm{out}} H_{\\mathrm{out}}")


def test_write_and_check_cli(tmp_path: Path, page: str) -> None:
    target = write_reference(tmp_path / "sub" / "formulas.md")
    assert target.read_text(encoding="utf-8") == page
    assert main([str(target), "--check"]) == 0
    target.write_text(page + "edited\n", encoding="utf-8")
    assert main([str(target), "--check"]) == 1


def test_reference_formats(tmp_path: Path) -> None:
    with pytest.raises(SymflopsError, match="no formula reference template"):
        formula_reference("text")
    tex = formula_reference("tex")
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    for name in sf.nn.LAYERS:
        assert "\\subsubsection*{" + name + "}" in tex
    assert "differs: corrected" in tex
    _compile(tmp_path, "reference.tex", tex)


def _compile(tmp_path: Path, name: str, text: str) -> None:
    import shutil
    import subprocess

    (tmp_path / name).write_text(text, encoding="utf-8")
    exe = shutil.which("pdflatex")
    if exe is None:
        pytest.fail("pdflatex not found: apt-get install texlive-latex-base "
                    "texlive-latex-recommended")
    proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                           name], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / name.replace(".tex", ".log")).read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]


def test_every_layer_renders_in_every_format_and_compiles(tmp_path: Path) -> None:
    """Each layer's canonical example through all four formats; all LaTeX in one document
    that a real pdflatex compiles (symbols like K_h, min(K, s), floors, user symbols)."""
    import json

    from symflops.rendering import render

    parts = []
    for name, example in EXAMPLES.items():
        cost = example.build().cost(example.input_shape)
        for fmt in ("markdown", "text"):
            out = render(cost, fmt)
            assert name in out or cost.layer in out
        json.loads(render(cost, "json"))
        parts.append(r"\section*{" + name + "}\n" + render(cost, "latex"))
        parts.append(render(cost, "latex", math_only=True, depth=1))
    doc = render(sf.nn.Linear(2, 2).cost((1, 2)), "latex", standalone=True)
    doc = doc.replace(r"\end{document}", "\n".join(parts) + "\n\\end{document}")
    _compile(tmp_path, "all.tex", doc)
