"""Issue 21: LaTeX that fits when the formulas have floors, tried as a new user would on a
small torch CNN (a stride-2 conv stem, two residual blocks, attention pooling, a head)
traced with symbolic ``B 3 H W``: golden files for every style, and every LaTeX style
compiled with pdflatex, failing on any overfull box over 1 pt or a float too large.

Before the fix the paper table was 328 pt too tall with every cell broken over four
lines, the appendix ran 100-122 pt into the other column, the report style was 520 pt
too wide and every symbolic share was "–". Regenerate the golden files after an intended
change: ``SYMFLOPS_UPDATE_GOLDEN=1 python -m pytest tests/test_render_cnn.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
from example_models import load_example
from test_render import markdown_tables
from test_render_paper import _compile, assert_fits, overfull

import symflops as sf
from symflops.notation import presenting
from symflops.rendering import render
from symflops.rendering._styles import term_columns
from symflops.symbols import B, H, W

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("SYMFLOPS_UPDATE_GOLDEN") == "1"


def small_cnn() -> Any:
    """The CNN of the issue, in plain torch (32 channels, 4 heads, 10 classes)."""
    import torch
    from torch import nn

    class AttentionPool(nn.Module):
        """A learned query attends over the H*W feature tokens (CLIP-style pooling)."""

        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()
            self.query = nn.Parameter(torch.zeros(1, 1, dim))
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = x.flatten(2).transpose(1, 2)
            q = self.query.expand(x.shape[0], -1, -1)
            out, _ = self.attn(q, tokens, tokens, need_weights=False)
            return out.squeeze(1)

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(self.bn1(self.conv1(x)))
            return self.relu(x + self.bn2(self.conv2(y)))

    class SmallCNN(nn.Module):
        def __init__(self, c: int = 32, classes: int = 10) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(c), nn.ReLU())
            self.blocks = nn.Sequential(Block(c), Block(c))
            self.pool = AttentionPool(c, 4)
            self.head = nn.Linear(c, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.pool(self.blocks(self.stem(x))))

    with torch.device("meta"):  # shapes only
        return SmallCNN()


_TRACED: list[sf.Cost] = []


def cnn() -> sf.Cost:
    """The CNN traced once at symbolic ``B 3 H W`` (about 2 s)."""
    if not _TRACED:
        _TRACED.append(sf.trace(small_cnn(), "B 3 H W"))
    return _TRACED[0]


STYLES = ("report", "paper", "appendix")
SUFFIX = {"latex": "tex", "markdown": "md"}


def _golden(style: str, fmt: str) -> Path:
    return GOLDEN / f"small_cnn_{style}.{SUFFIX[fmt]}"


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("style", STYLES)
def test_small_cnn_golden(style: str, fmt: str) -> None:
    out = render(cnn(), fmt, style=style, standalone=fmt == "latex")
    path = _golden(style, fmt)
    if UPDATE:
        path.write_text(out, encoding="utf-8")
    assert path.exists(), "golden file missing: run with SYMFLOPS_UPDATE_GOLDEN=1"
    assert out == path.read_text(encoding="utf-8"), f"{path} differs (see module docstring)"


@pytest.mark.parametrize("style", STYLES)
def test_small_cnn_latex_fits_its_page(style: str, tmp_path: Path) -> None:
    # paper and appendix in a two-column article (\columnwidth), the report on its own page
    tex = _golden(style, "latex").read_text(encoding="utf-8")
    if style != "report":
        assert tex.startswith(r"\documentclass[twocolumn]{article}")
    assert_fits(_compile(tex, tmp_path))


@pytest.mark.parametrize("style, columns", [("report", 1), ("report", 2), ("paper", 2),
                                            ("appendix", 2)])
def test_small_cnn_fragment_fits_a_users_article(style: str, columns: int,
                                                 tmp_path: Path) -> None:
    # without standalone: pasted into the user's article with the packages it names; the
    # report's table shrinks to the line, its derivations break lines and move a step's
    # name below a line it does not fit beside, in one column or two
    fragment = render(cnn(), "latex", style=style)
    needs = re.search(r"needs \\usepackage\{([a-z,]+)\}", fragment)
    packages = needs.group(1) if needs else "amsmath"
    doc = "\n".join([r"\documentclass" + ("" if columns == 1 else "[twocolumn]")
                     + "{article}", r"\usepackage{" + packages + "}", r"\begin{document}",
                     "Some text.", fragment, "More text.", r"\end{document}", ""])
    assert_fits(_compile(doc, tmp_path))


def test_the_fit_check_fails_on_a_wide_box(tmp_path: Path) -> None:
    # the check itself: a 400 pt box in a column is reported, not passed
    doc = "\n".join([r"\documentclass[twocolumn]{article}", r"\begin{document}",
                     r"\noindent\hbox to 400pt{x\hfil}", r"\end{document}", ""])
    log = _compile(doc, tmp_path)
    assert overfull(log) and max(overfull(log)) > 100
    with pytest.raises(AssertionError, match="overfull"):
        assert_fits(log)


def test_paper_table_cells_are_numbers_on_one_line() -> None:
    tex = render(cnn(), "latex", style="paper")
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) >= 8
    for row in rows:  # module, params, one entry per monomial, share: no formula
        cells = [c.strip() for c in row[:-2].split(" & ")]
        assert all(re.fullmatch(r"[\d,]*", c) for c in cells[1:-1]), row
        assert re.fullmatch(r"\d+\.\d\\,\\%", cells[-1]), row  # a share, never "--"
    assert r"per\\ $B$" in tex or r"per $B$" in tex


def test_term_columns_sum_to_each_rows_formula() -> None:
    # every row = sum(entry * monomial), checked at sizes far from the trace's 224
    cost = cnn()
    exprs = [sp.sympify(c.flops) for _, c in cost.walk()]
    with presenting(cost.domain.lattices()):  # floors as a render presents them
        terms = term_columns(exprs, sp.sympify(cost.flops))
        assert terms is not None and len(terms.monomials) == 2
        table = [terms.coefficients(e) for e in exprs]
    for e, coefficients in zip(exprs, table, strict=True):
        for h, w in ((2, 2), (97, 31), (1001, 640)):
            at = {B: 3, H: h, W: w}
            rebuilt = sum(c * m for c, m in zip(coefficients, terms.monomials, strict=True))
            assert sp.sympify(rebuilt).xreplace(at) == e.xreplace(at)


def test_shares_are_stated_at_a_size_and_match_the_numbers() -> None:
    out = render(cnn(), "markdown", style="paper")
    assert "shares at $B = 1$, $H = 224$, $W = 224$" in out
    (table,) = markdown_tables(out)
    shares = {r[0].replace("&emsp;", ""): r[-1] for r in table[1:]}
    # the blocks' share at 224 x 224, from the numbers themselves
    at = cnn().subs(B=1, H=224, W=224)
    blocks = next(c for c in at.children if c.name == "blocks")
    assert shares["`blocks`"] == f"{100 * blocks.flops / at.flops:.1f} %"


# ----------------------------------------------------------------------------- ResNet-50
def resnet50() -> sf.Cost:
    """examples/sfnn_resnet.py: ResNet-50 in sf.nn layers at symbolic B, H, W (no torch):
    six monomials (one per stage's resolution), more than the table's columns."""
    return load_example("sfnn_resnet").resnet50().cost((B, 3, H, W))


def test_resnet50_paper_table_states_numbers_at_a_size_and_fits(tmp_path: Path) -> None:
    # its FLOPs have six monomials (ceil(H/2^k) ceil(W/2^k), k = 1..5, and B): no term
    # columns; depth 2 gives more rows than a column holds, so depth 1, and the rows are
    # values at B = 1, H = W = 224 under the general formulas in the equation
    tex = render(resnet50(), "latex", style="paper", standalone=True)
    assert "at $B = 1$, $H = 224$, $W = 224$, a typical size" in tex
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert 8 <= len(rows) <= 28 and not any(r"\lceil" in r for r in rows)
    # torchvision's published resnet50: 25,557,032 parameters, 4.09 GMACs at 224 x 224
    assert r"\text{params} &= 25{,}557{,}032" in tex and r"&= 4{,}089{,}184{,}256" in tex
    assert r"\lceil{H / 32}\rceil" in tex  # the general formula is still there
    assert_fits(_compile(tex, tmp_path))


@pytest.mark.parametrize("style", ["appendix", "report"])
def test_resnet50_appendix_and_report_fit(style: str, tmp_path: Path) -> None:
    tex = render(resnet50(), "latex", style=style, standalone=True)
    _compile(tex, tmp_path)  # a longtable settles its column widths on a second run
    assert_fits(_compile(tex, tmp_path))


def test_exact_forms_fit_too(tmp_path: Path) -> None:
    # exact=True keeps floor(H/2 - 1/2) + 1: no term columns (the floors expand into four
    # monomials), so the table is at the stated size; the equation's long product
    # 3,338 floor(H/2 - 1/2) floor(W/2 - 1/2) breaks between its factors (was 5.3 pt wide)
    tex = render(cnn(), "latex", style="paper", exact=True, standalone=True)
    assert r"\lfloor{H / 2 - 1 / 2}\rfloor" in tex and r"\lceil" not in tex
    assert r"&\quad \cdot \lfloor{W / 2 - 1 / 2}\rfloor" in tex
    assert_fits(_compile(tex, tmp_path))


def test_stated_size_moves_onto_the_domain_and_needs_a_typical_size() -> None:
    from symflops.rendering._context import stated_size

    c = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.AdaptiveAvgPool2d(1),
                         sf.nn.Flatten(), sf.nn.Linear(8, 10)).cost((B, 3, H, W))
    assert stated_size(c) == {B: 1, H: 224, W: 224}
    # H on multiples of 48: 224 is not one, the nearest is 240 (224/48 = 4.67 -> 5)
    on48 = c.replace(validity=(sp.Eq(sp.Mod(H, 48), 0),))
    assert stated_size(on48) == {B: 1, H: 240, W: 224}
    out = render(on48, "text", derivations=False)
    assert "shares at: B = 1, H = 240, W = 224" in out
    # the top-level rows' shares at that size add up to the total's 100 %
    shares = [float(x) for x in re.findall(r"(\d+\.\d) %$", out, re.M)]
    assert shares and abs(sum(shares[:-1]) - 100) < 0.5
    # a symbol with no typical size (s): no size is made up, no share is stated
    s = sp.Symbol("s", integer=True, positive=True)
    free = sf.nn.Linear(8, 4).cost((B, 8)).xreplace({B: s})
    assert stated_size(free) is None
    assert "shares at" not in render(free, "text")
