"""Renders for papers (issue 11): the paper and appendix styles (golden files, pdflatex in
a two-column article, Markdown parsed as tables), the style registry and its errors, and
the acceptance list seen on a traced ViT-B/16: a 7-column table overflowing a column,
cramped ``\\frac`` in cells (see test_render_numbers), twelve identical ``layers.N`` rows,
an empty ``parameters | Parameters | $()$`` row, ungrouped integers, ``$$`` in math_only.

Regenerate the golden files after an intended change:
``SYMFLOPS_UPDATE_GOLDEN=1 python -m pytest tests/test_render_paper.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sympy as sp
from example_models import load_example
from hypothesis import given, settings
from hypothesis import strategies as st
from test_render import markdown_tables  # markdown-it table parser
from test_render_numbers import ungrouped_digits

import symflops as sf
from symflops.errors import SymflopsError
from symflops.notation import latex_expr
from symflops.rendering import (
    Style,
    get_style,
    register_style,
    render,
    styles,
    unregister_style,
)
from symflops.rendering._equation import equation_lines, visible_width
from symflops.rendering._styles import collected_terms
from symflops.symbols import B, H, L, N, W, dim, heads

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("SYMFLOPS_UPDATE_GOLDEN") == "1"


def vit_module():  # type: ignore[no-untyped-def]
    """examples/vit.py: a plain-torch mirror of torchvision's ViT (no torchvision needed)."""
    return load_example("vit")


def traced_vit(factory: str, spec: str) -> sf.Cost:
    import torch

    with torch.device("meta"):  # no weights: the trace reads shapes only
        model = getattr(vit_module(), factory)()
    return sf.trace(model, spec)


@pytest.fixture(scope="module")
def vit_b16() -> sf.Cost:
    """ViT-B/16 traced at 224x224 with a symbolic batch."""
    return traced_vit("vit_b_16", "B 3 224 224")


_VIT_TINY: list[sf.Cost] = []


def vit_tiny() -> sf.Cost:
    """examples/vit.py vit_tiny (patch 8, dim 64, 2 layers) traced at 32x32, once."""
    if not _VIT_TINY:
        _VIT_TINY.append(traced_vit("vit_tiny", "B 3 32 32"))
    return _VIT_TINY[0]


def cnn() -> sf.Cost:
    """An sf.nn CNN with symbolic B, H, W: strided conv, BN, ReLU, pool, a block, head."""
    net = sf.nn.Sequential({
        "stem": sf.nn.Conv2d(3, 16, 3, stride=2, padding=1), "bn": sf.nn.BatchNorm2d(16),
        "act": sf.nn.ReLU(), "pool": sf.nn.MaxPool2d(2),
        "block": sf.nn.Sequential(sf.nn.Conv2d(16, 32, 3, padding=1), sf.nn.ReLU()),
        "gap": sf.nn.AdaptiveAvgPool2d(1), "flatten": sf.nn.Flatten(),
        "fc": sf.nn.Linear(32, 10)})
    return net.cost((B, 3, H, W))


def transformer() -> sf.Cost:
    return sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads), L).cost((B, N, dim))


AT_224 = {"B": 1, "H": 224, "W": 224}

#: name -> (cost factory, render keyword arguments)
CASES: dict[str, tuple[Callable[[], sf.Cost], dict]] = {
    "paper_vit_tiny": (vit_tiny, {"style": "paper", "at": {"B": 1}, "title": "ViT-tiny"}),
    "paper_cnn": (cnn, {"style": "paper"}),
    "paper_cnn_si": (cnn, {"style": "paper", "at": AT_224, "numbers": "si"}),
    "paper_transformer_symbols_L_N": (transformer, {"style": "paper", "symbols": ["L", "N"]}),
    "appendix_vit_tiny": (vit_tiny, {"style": "appendix", "at": {"B": 1}}),
    "appendix_cnn": (cnn, {"style": "appendix", "at": AT_224}),
}
SUFFIX = {"latex": "tex", "markdown": "md"}


def _render_case(case: str, fmt: str, **extra: object) -> str:
    factory, kwargs = CASES[case]
    return render(factory(), fmt, **kwargs, **extra)


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("case", sorted(CASES))
def test_style_golden(case: str, fmt: str) -> None:
    out = _render_case(case, fmt, **({"standalone": True} if fmt == "latex" else {}))
    path = GOLDEN / f"{case}.{SUFFIX[fmt]}"
    if UPDATE:
        path.write_text(out, encoding="utf-8")
    assert path.exists(), "golden file missing: run with SYMFLOPS_UPDATE_GOLDEN=1"
    assert out == path.read_text(encoding="utf-8"), f"{path} differs (see module docstring)"


# ----------------------------------------------------------------------------- pdflatex
def _compile(tex: str, tmp_path: Path) -> str:
    """pdflatex ``tex``; the log (a failed compile fails the test)."""
    exe = shutil.which("pdflatex")
    if exe is None:  # the CI script installs texlive; a missing compiler is a failure
        pytest.fail("pdflatex not found: apt-get install texlive-latex-base "
                    "texlive-latex-recommended")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error",
                           "-no-shell-escape", "doc.tex"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    assert not re.search(r"^! ", log, re.M) and "Missing character" not in log
    return log


_OVERFULL = re.compile(r"Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too (?:wide|high)\)")


def overfull(log: str) -> list[float]:
    """Every overfull box's excess (pt) in a pdflatex log.

    >>> overfull("Overfull \\\\hbox (4.69283pt too wide) detected at line 32")
    [4.69283]
    """
    return [float(x) for x in _OVERFULL.findall(log)]


def assert_fits(log: str) -> None:
    """No box over 1 pt too wide (or high), no float too large for the page."""
    too_wide = [x for x in overfull(log) if x > 1.0]
    assert not too_wide, f"overfull boxes (pt): {too_wide}"
    assert "Float too large" not in log


@pytest.mark.parametrize("case", sorted(CASES))
def test_styles_compile_in_a_two_column_article(case: str, tmp_path: Path) -> None:
    # paper and appendix: the equations, table and derivations fit \columnwidth
    tex = (GOLDEN / f"{case}.tex").read_text(encoding="utf-8")
    assert tex.startswith(r"\documentclass[twocolumn]{article}")
    log = _compile(tex, tmp_path)
    assert_fits(log)
    if case.startswith("paper"):
        assert "Overfull \\hbox" not in log


def test_paper_fragment_goes_into_a_users_two_column_paper(tmp_path: Path) -> None:
    # without standalone: a fragment naming the packages it needs, pasted into a paper
    fragment = _render_case("paper_cnn", "latex")
    assert r"\documentclass" not in fragment
    needs = re.search(r"needs \\usepackage\{([a-z,]+)\}", fragment)
    assert needs is not None
    doc = "\n".join(["\\documentclass[twocolumn]{article}",
                     "\\usepackage{" + needs.group(1) + "}", "\\begin{document}",
                     "Some text.", fragment, "More text.", "\\end{document}", ""])
    assert "Overfull \\hbox" not in _compile(doc, tmp_path)


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if c.startswith("paper")])
def test_paper_markdown_table_parses(case: str) -> None:
    factory, kwargs = CASES[case]
    out = render(factory(), "markdown", **kwargs)
    (table,) = markdown_tables(out)
    label = factory().convention.label
    # FLOPs in one column, or one per monomial ("FLOPs per $B ...$") when all are numbers
    header = table[0]
    assert header[:2] == ["module", "params"] and header[-1] == "share"
    assert header[2:-1] == [label] or all(h.startswith(label + " per ") for h in header[2:-1])
    assert all(len(r) == len(header) for r in table) and table[-1][0] == "**total**"
    assert out.startswith("```math\n\\begin{aligned}") and "$$" not in out


# ----------------------------------------------------------------------------- ViT-B/16
def test_vit_b16_paper_table_fits_a_column(vit_b16: sf.Cost, tmp_path: Path) -> None:
    # acceptance: the report's 7-column table overflowed a two-column paper by ~437 pt
    tex = render(vit_b16, "latex", style="paper", at={"B": 1}, standalone=True)
    header = next(line for line in tex.splitlines() if line.startswith("Module &"))
    assert header == r"Module & Params & FLOPs (exact) & Share \\"
    assert r"\begin{tabularx}{\columnwidth}" in tex
    assert "Overfull \\hbox" not in _compile(tex, tmp_path)
    # the totals against torchvision's published ViT_B_16 figures (torchvision docs,
    # models/vit_b_16: num_params 86,567,656; GFLOPS 17.56, i.e. MACs): exact here
    assert r"\text{params} &= 86{,}567{,}656" in tex
    assert r"&= 17{,}563{,}828{,}224" in tex and round(17_563_828_224 / 1e9, 2) == 17.56


def test_vit_b16_twelve_identical_layers_are_one_row(vit_b16: sf.Cost) -> None:
    # acceptance: layers.0 ... layers.11 were twelve identical rows
    md = render(vit_b16, "markdown", depth=2, derivations=False)
    paths = [r[0] for r in markdown_tables(md)[0][1:]]
    assert "`layers.0-11` (×12)" in paths
    assert not any(p.startswith("`layers.1") for p in paths)
    text = render(vit_b16, "text", depth=2, derivations=False)
    assert "layers.0-11 (x12)  EncoderBlock" in text and "layers.3 " not in text
    tex = render(vit_b16, "latex", depth=2, derivations=False)
    assert r"\texttt{layers.0-11} ($\times 12$) & EncoderBlock" in tex
    paper = render(vit_b16, "latex", style="paper")
    assert r"\hspace{0.6em}\texttt{0-11} ($\times 12$) & 7,087,872" in paper
    doc = json.loads(render(vit_b16, "json", depth=2))
    assert doc["fold"] is True
    layers = next(c for c in doc["tree"]["children"] if c["name"] == "layers")
    (run,) = layers["children"]
    assert run["name"] == "0-11" and run["path"] == "layers.0-11" and run["times"] == 12
    assert run["names"] == [str(i) for i in range(12)]
    # one encoder block: 85,054,464 params in the 12 blocks / 12 = 7,087,872 each
    assert run["params"]["expr"]["int"] == 7_087_872
    assert 12 * 7_087_872 == int(vit_b16["layers"].params) == 85_054_464
    # the unfolded table is still there
    unfolded = markdown_tables(render(vit_b16, "markdown", depth=2, derivations=False,
                                      fold=False))[0]
    assert [f"`layers.{i}`" for i in range(12)] == [
        r[0] for r in unfolded if r[0].startswith("`layers.")]


def test_vit_b16_no_empty_parameters_row(vit_b16: sf.Cost) -> None:
    # acceptance: "parameters | Parameters | $()$": the class token and position embedding
    # (152,064 = 768 + 197 * 768 parameters, owned by the model itself) have no output
    report = markdown_tables(render(vit_b16, "markdown", depth=1, derivations=False))[0]
    row = next(r for r in report if r[0] == "`parameters`")
    assert row[1:4] == ["Parameters", "–", "152,064"] and 768 + 197 * 768 == 152_064
    assert "$()$" not in render(vit_b16, "latex", derivations=False)
    paper = markdown_tables(render(vit_b16, "markdown", style="paper"))[0]
    assert all(r[1] != "0" or r[2] != "0" for r in paper[1:])  # no row of nothing


def test_vit_b16_integers_grouped_and_math_only_without_dollars(vit_b16: sf.Cost) -> None:
    # acceptance: 907889152-style integers; math_only wrapped in $$
    for style in ("report", "paper", "appendix"):
        for fmt in ("latex", "markdown"):
            out = render(vit_b16, fmt, style=style, at={"B": 1}, depth=2)
            assert ungrouped_digits(out) == [], (style, fmt)
    for style in ("report", "paper", "appendix"):
        tex = render(vit_b16, "latex", style=style, math_only=True)
        assert "$$" not in tex and r"\begin{aligned}" in tex, style
        assert r"\begin{table}" not in tex and r"\paragraph" not in tex


# ----------------------------------------------------------------------------- registry
def test_unknown_style_is_one_error_listing_the_styles() -> None:
    with pytest.raises(SymflopsError, match="unknown render style") as err:
        render(cnn(), "latex", style="poster")
    msg = str(err.value)
    assert "\n" not in msg and all(f"style={n!r}" in msg for n in styles())
    with pytest.raises(SymflopsError, match="no text template") as err:
        render(cnn(), "text", style="paper")
    assert "latex or markdown" in str(err.value)


def test_symbols_must_name_the_costs_symbols() -> None:
    with pytest.raises(SymflopsError, match="does not have") as err:
        render(transformer(), "latex", style="paper", symbols=["L", "Q"])
    assert "Q" in str(err.value) and "heads" in str(err.value)
    with pytest.raises(SymflopsError, match="does not have"):
        render(transformer(), "latex", style="paper", symbols=["L**2"])  # never parsed


def test_paper_equation_collects_in_the_symbols_named() -> None:
    # FLOPs (exact) of L transformer blocks, by power of N:
    #   B L N^2 (4 d + 5 h) [scores, softmax, context] + B L N (24 d^2 + ...): the
    #   coefficient of each monomial in L, N collected (common factor B pulled out)
    tex = render(transformer(), "latex", style="paper", symbols=["L", "N"])
    lines = tex.split(r"\text{FLOPs (exact)} &= ")[1].split(r"\end{aligned}")[0]
    assert lines.startswith(r"B L N^{2} \bigl(4 d + 5 h\bigr) \\")
    assert lines.endswith("&\\quad + B L N \\bigl(24 d^{2} + 35 d - 2 h + 4\\bigr)\n")


def test_a_new_style_is_a_template_and_one_registration(tmp_path: Path) -> None:
    (tmp_path / "slide.md.j2").write_text("{{ label }}: {{ total.flops | cell }}\n")
    style = register_style(Style("slide_test", "one line", templates={"markdown":
                                                                       "slide.md.j2"}))
    try:
        assert get_style("slide_test") is style
        out = render(cnn(), "markdown", style="slide_test", at=AT_224, template_dir=tmp_path)
        assert out == f"FLOPs (exact): {int(cnn().subs(**AT_224).flops):,}\n"
        with pytest.raises(SymflopsError, match="already registered"):
            register_style(Style("slide_test", "again"))
    finally:
        unregister_style("slide_test")
    with pytest.raises(SymflopsError, match="unknown render style"):
        get_style("slide_test")
    with pytest.raises(SymflopsError, match="built-in"):
        unregister_style("paper")


# ----------------------------------------------------------------------------- algebra
_SYMS = (B, L, N, dim)
_monomials = st.tuples(*(st.integers(0, 2) for _ in _SYMS)).map(
    lambda e: sp.Mul(*(s**k for s, k in zip(_SYMS, e, strict=True))))
_polys = st.lists(st.tuples(st.integers(-50, 50), _monomials), min_size=1, max_size=6).map(
    lambda ts: sp.Add(*(c * m for c, m in ts)))


@settings(max_examples=60, deadline=None)
@given(_polys, st.lists(st.sampled_from(_SYMS), unique=True, max_size=3))
def test_collected_terms_sum_to_the_expression(expr: sp.Expr, named: list) -> None:
    terms = collected_terms(expr, named)
    assert sp.expand(sum((c * m for c, m in terms), sp.Integer(0)) - expr) == 0
    if named and expr.free_symbols:
        # one term per monomial in the named symbols, highest degree first
        monomials = [m for _, m in terms]
        assert len(set(monomials)) == len(monomials)
        assert all(not (c.free_symbols & set(named)) for c, _ in terms)
        degrees = [sum(sp.degree(m, s) for s in named) for m in monomials]
        assert degrees == sorted(degrees, reverse=True)


@settings(max_examples=40, deadline=None)
@given(_polys, st.integers(8, 40))
def test_equation_lines_keep_every_term_and_fit(expr: sp.Expr, width: int) -> None:
    terms = collected_terms(expr, [L, N])
    lines = equation_lines(terms, latex_expr, width)
    # every term printed once, in order, signs kept: the lines joined are the one-line
    # sum (up to the delimiters' size and the \cdot a line starts with)
    def normal(text: str) -> str:
        for a, b in ((r"\bigl(", r"\left("), (r"\bigr)", r"\right)"), (r"\cdot", ""),
                     (" ", "")):
            text = text.replace(a, b)
        return text

    assert normal("".join(lines)) == normal("".join(equation_lines(terms, latex_expr, 10**6)))
    # a short line ends only where the next piece would not fit
    for line, following in zip(lines, lines[1:], strict=False):
        assert visible_width(line + following) > width
