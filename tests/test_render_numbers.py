"""Number styles and display math (issue 11): big integers grouped in LaTeX and Markdown
(cells and formulas), ``plain`` and ``si`` on request with the exact totals still in the
document, ``math_only`` as ``\\[ ... \\]`` (LaTeX) or a fenced math block (Markdown), never
``$$``."""

from __future__ import annotations

import re

import pytest
from test_render import markdown_tables  # markdown-it table parser

import symflops as sf
from symflops.errors import SymflopsError
from symflops.notation import NUMBER_STYLES, format_number, group_digits, latex_expr
from symflops.rendering import render
from symflops.symbols import B, H, dim


def mlp() -> sf.Cost:
    """Linear 768 -> 3072 -> 768 on B x 197 tokens (a ViT-B/16 MLP block)."""
    return sf.nn.Sequential(sf.nn.Linear(768, 3072), sf.nn.GELU(),
                            sf.nn.Linear(3072, 768)).cost((B, 197, 768))


# params: (768 + 1) * 3072 + (3072 + 1) * 768 = 2,362,368 + 2,360,064 = 4,722,432
MLP_PARAMS = 4_722_432
# MACs per token: 768 * 3072 * 2 = 4,718,592; times 197 tokens = 929,562,624 per image
MLP_MACS = 929_562_624


def test_mlp_reference_numbers() -> None:
    c = mlp()
    assert c.params == MLP_PARAMS and c.macs == MLP_MACS * B


def ungrouped_digits(text: str) -> list[str]:
    """Runs of 4+ digits not part of a grouped number (``12{,}345`` or ``12,345``), outside
    code (a layer's spec ``Linear(768, 3072)`` is the user's text, shown as written)."""
    text = re.sub(r"\\texttt\{[^}]*\}|`[^`]*`", "", text)
    return re.findall(r"(?<![\d,}])\d{4,}(?![\d{,])", text)


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_grouped_is_the_default_in_cells_and_formulas(fmt: str) -> None:
    out = render(mlp(), fmt, at={"B": 1})
    assert ungrouped_digits(out) == []
    # the formula's coefficient and the value, digit-grouped in math (LaTeX {,})
    assert r"929{,}562{,}624 B" in out and "4,722,432" in out
    symbolic = render(mlp(), fmt, derivations=False)
    assert r"929{,}562{,}624 B" in symbolic and "929562624" not in symbolic


@pytest.mark.parametrize("fmt", ["latex", "markdown", "text"])
def test_plain_numbers_have_no_separators(fmt: str) -> None:
    out = render(mlp(), fmt, at={"B": 1}, numbers="plain", derivations=False)
    assert str(MLP_PARAMS) in out and str(MLP_MACS) in out
    assert "4,722,432" not in out and "{,}" not in out


@pytest.mark.parametrize("fmt", ["latex", "markdown", "text"])
def test_si_is_rounded_and_the_exact_totals_stay_in_the_document(fmt: str) -> None:
    out = render(mlp(), fmt, at={"B": 1}, numbers="si", derivations=False)
    # 4,722,432 -> 4.72 M; 929,562,624 -> 930 M (three significant digits)
    assert "4.72 M" in out and "930 M" in out
    assert "rounded to three significant digits" in out.lower()
    assert "4,722,432" in out and "929,562,624" in out


def test_number_styles_registry_and_unknown_style() -> None:
    assert set(NUMBER_STYLES) == {"grouped", "plain", "si"}
    n = 907_889_152
    assert [format_number(n, s) for s in ("grouped", "plain", "si")] == [
        "907,889,152", "907889152", "908 M"]
    assert group_digits(n, "{,}") == "907{,}889{,}152"
    with pytest.raises(SymflopsError, match="unknown number style") as err:
        render(mlp(), "latex", numbers="comma")
    msg = str(err.value)
    assert "\n" not in msg and all(s in msg for s in NUMBER_STYLES) and "numbers=comma" in msg


def test_table_cells_never_use_a_full_size_frac() -> None:
    # acceptance (issue 11): inline \frac in cells cramped the rows; cells fold short
    # fractions to a / b and write longer ones as \tfrac
    c = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, stride=2), sf.nn.MaxPool2d(3, stride=3)).cost(
        (B, 3, H, H))
    for fmt in ("latex", "markdown"):
        out = render(c, fmt, derivations=False)
        start = out.index("Module" if fmt == "latex" else "| module")
        end = out.index(r"\end{tabular}" if fmt == "latex" else "| **total**")
        table = out[start:out.index("\n", end)]
        assert r"\frac" not in table, fmt
        # (H - 1) // 2 + 1 shown as ceiling(H/2), fixed-size delimiters
        assert r"\lceil{H / 2}\rceil" in table and r"\left\lceil" not in table
        exact = render(c, fmt, derivations=False, exact=True)
        assert r"\lfloor{H / 2 - 3 / 2}\rfloor" in exact  # (H - 3) // 2, fixed-size floor
    assert latex_expr(H / (dim + 1), inline=True) == r"\tfrac{H}{d + 1}"


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_math_only_is_never_double_dollar(fmt: str) -> None:
    # acceptance (issue 11): math_only=True wrapped its block in $$
    out = render(mlp(), fmt, math_only=True, at={"B": 1})
    assert "$$" not in out
    opening, *body, closing = out.strip().splitlines()
    assert (opening, closing) == ((r"\[", r"\]") if fmt == "latex" else ("```math", "```"))
    assert body[0] == r"\begin{aligned}" and body[-1] == r"\end{aligned}"
    # params is a number already: no "= 4,722,432 = 4,722,432"
    assert body[1] == r"\text{params} &= 4{,}722{,}432 \\"
    assert body[2] == r"\text{MACs} &= 929{,}562{,}624 B = 929{,}562{,}624 \\"


def test_markdown_tables_still_parse_with_grouped_numbers() -> None:
    table = markdown_tables(render(mlp(), "markdown", at={"B": 1}))[0]
    assert table[-1][3] == "4,722,432" and table[-1][4] == "929,562,624"
