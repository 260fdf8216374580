"""docs/papers.md: each paper's formula derived from symflops' own layers, checked as an
identity (derived == paper + dropped terms), cross-checked against torch at concrete sizes,
and the committed page never stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp

from symflops.errors import SymflopsError
from symflops.papers import PAPERS, Claim, Term, main, papers_document
from symflops.symbols import C_in, K, symbol

DOCS = Path(__file__).resolve().parent.parent / "docs" / "papers.md"

def at(expr: sp.Expr, **values: int) -> sp.Expr:
    return expr.xreplace({symbol(k): v for k, v in values.items()})


CLAIMS = [pytest.param(c, id=f"{key}-{i}") for key, p in PAPERS.items()
          for i, c in enumerate(p.claims)]


@pytest.mark.parametrize("claim", CLAIMS)
def test_derived_equals_paper_plus_dropped(claim: Claim) -> None:
    assert claim.remainder() == 0


@pytest.mark.parametrize("claim", CLAIMS)
def test_dropped_terms_are_not_zero(claim: Claim) -> None:
    # a dropped term that simplifies to 0 says nothing: the page would list a non-difference
    for t in claim.terms:
        assert sp.simplify(t.expr) != 0, t.why


def test_committed_page_is_not_stale() -> None:
    assert DOCS.exists(), "docs/papers.md missing: run python -m symflops.papers"
    assert DOCS.read_text(encoding="utf-8") == papers_document(), (
        "docs/papers.md is stale: regenerate it with python -m symflops.papers")


def test_check_flag_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    stale = tmp_path / "papers.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--output", str(stale), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(stale)]) == 0
    assert main(["--output", str(stale), "--check"]) == 0


def test_a_wrong_dropped_term_is_caught() -> None:
    # the depthwise-separable cost with a made-up dropped term: the identity fails
    good = PAPERS["mobilenet"].claims[0]
    bad = Claim(good.name, good.quantity, good.convention, derived=good.derived,
                paper=good.paper, dropped=lambda: (Term(C_in * K, "made up"),))
    assert bad.remainder() == -C_in * K


def test_example_must_give_every_symbol() -> None:
    good = PAPERS["mobilenet"].claims[0]
    bad = Claim(good.name, good.quantity, good.convention, derived=good.derived,
                paper=good.paper, example={"K": 3})
    with pytest.raises(SymflopsError, match="every symbol"):
        bad.at_example(bad.derived_expr)


def test_mobilenet_separable_cost_matches_torch() -> None:
    # FlopCounterMode counts 2 per MAC of each conv; the claim is in MACs (bias not a MAC)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cin, cout, k, hw = 8, 16, 3, 10
    net = torch.nn.Sequential(torch.nn.Conv2d(cin, cin, k, padding="same", groups=cin),
                              torch.nn.Conv2d(cin, cout, 1))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.zeros(1, cin, hw, hw))
    claim = PAPERS["mobilenet"].claims[0]
    value = at(claim.derived_expr, C_in=cin, C_out=cout, K=k, H=hw, W=hw)
    # by hand: depthwise 8*9*100 = 7,200; pointwise 8*16*100 = 12,800; 20,000 MACs
    assert value == 20_000 == fc.get_total_flops() // 2


def test_swin_msa_matches_torch() -> None:
    # torch's MultiheadAttention with need_weights=True runs explicit bmm (counted), not
    # the CPU SDPA kernel (which FlopCounterMode counts as 0)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    c, nh, h, w = 32, 4, 4, 6
    mha = torch.nn.MultiheadAttention(c, nh, batch_first=True)
    x = torch.zeros(1, h * w, c)
    with FlopCounterMode(display=False) as fc:
        mha(x, x, x, need_weights=True)
    claim = PAPERS["swin"].claims[0]
    value = at(claim.derived_expr, C=c, H=h, W=w, heads=nh)
    # by hand: 4*24*32^2 = 98,304 projections + 2*24^2*32 = 36,864 scores and context
    assert value == 98_304 + 36_864 == fc.get_total_flops() // 2


ROWS = [pytest.param(c, r, id=f"{key}-{r.name.split(':')[0]}") for key, p in PAPERS.items()
        for c in p.claims for r in c.rows]


@pytest.mark.parametrize("claim,row", ROWS)
def test_table_rows_round_to_the_printed_figure(claim: Claim, row) -> None:
    # the papers print parameters in billions: Megatron-LM with one decimal (1,652,230,656
    # rounds to 1.7), PaLM with two (8,632,143,872 to 8.63); the paper's formula too
    text = row.published.split()[0]
    places = len(text.partition(".")[2])
    printed = sp.Rational(text)
    for value in (claim.at_example(claim.derived_expr, row.values),
                  claim.at_example(claim.paper_expr, row.values)):
        scaled = sp.floor(sp.Rational(value, 10**(9 - places)) + sp.Rational(1, 2))
        assert scaled == printed * 10**places, (row.name, value)
