"""Folding (issue 11): a run of identical consecutive siblings is one row ``layers.0-11
(x12)`` in every format, ``fold=False`` gives the unfolded table, a symbolic ``count``
(sf.nn.Repeat) shows ``x L``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import sympy as sp
from test_render import markdown_tables  # markdown-it table parser

import symflops as sf
from symflops.errors import SymflopsError
from symflops.rendering import build_context, render
from symflops.symbols import B, L, N, dim, heads

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def vit_module():  # type: ignore[no-untyped-def]
    """examples/vit.py: a plain-torch mirror of torchvision's ViT (no torchvision needed)."""
    spec = importlib.util.spec_from_file_location("_example_vit", EXAMPLES / "vit.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def vit_b16() -> sf.Cost:
    """ViT-B/16 traced at 224x224 with a symbolic batch (on the meta device: no weights)."""
    import torch

    with torch.device("meta"):
        model = vit_module().vit_b_16()
    return sf.trace(model, "B 3 224 224")


def stack(n: int) -> sf.Cost:
    """``n`` identical Linear+ReLU blocks then a different Linear (a run, then one more)."""
    blocks = [sf.nn.Sequential(sf.nn.Linear(dim, dim), sf.nn.ReLU()) for _ in range(n)]
    return sf.nn.Sequential(*blocks, sf.nn.Linear(dim, 10)).cost((B, dim))


def test_vit_b16_twelve_layers_fold_into_one_row_in_every_format(vit_b16: sf.Cost) -> None:
    # acceptance (issue 11): layers.0 ... layers.11 were twelve identical rows
    md = render(vit_b16, "markdown", depth=2, derivations=False)
    paths = [r[0] for r in markdown_tables(md)[0][1:]]
    assert "`layers.0-11` (×12)" in paths
    assert not any(p.startswith("`layers.1") for p in paths)
    text = render(vit_b16, "text", depth=2, derivations=False)
    assert "layers.0-11 (x12)  EncoderBlock" in text and "layers.3 " not in text
    tex = render(vit_b16, "latex", depth=2, derivations=False)
    assert r"\texttt{layers.0-11} ($\times 12$) & EncoderBlock" in tex
    doc = json.loads(render(vit_b16, "json", depth=2))
    assert doc["fold"] is True
    layers = next(c for c in doc["tree"]["children"] if c["name"] == "layers")
    (run,) = layers["children"]
    assert run["name"] == "0-11" and run["path"] == "layers.0-11" and run["times"] == 12
    assert run["names"] == [str(i) for i in range(12)]
    # one instance's numbers x 12 = the Sequential's (ViT-B/16: 85,054,464 params in the
    # encoder blocks, 7,087,872 each; 12 * 7,087,872 = 85,054,464)
    assert int(run["params"]["expr"]["int"]) == 7_087_872
    assert 12 * 7_087_872 == int(vit_b16["layers"].params) == 85_054_464


def test_vit_b16_unfolded_table_still_available(vit_b16: sf.Cost) -> None:
    md = render(vit_b16, "markdown", depth=2, derivations=False, fold=False)
    paths = [r[0] for r in markdown_tables(md)[0][1:]]
    assert [f"`layers.{i}`" for i in range(12)] == [p for p in paths if p.startswith("`layers.")]
    doc = json.loads(render(vit_b16, "json", depth=2, fold=False))
    layers = next(c for c in doc["tree"]["children"] if c["name"] == "layers")
    assert doc["fold"] is False and len(layers["children"]) == 12
    assert all("times" not in c for c in layers["children"])


@pytest.mark.parametrize("n", [2, 5], ids=["two-blocks", "five-blocks"])
def test_folded_rows_times_count_add_up_to_the_parent(n: int) -> None:
    c = stack(n)
    rows = build_context(c, at={"B": 3, "dim": 16})["rows"]
    run, *inside, last = rows
    assert run["path"] == f"0-{n - 1}" and run["times"] == n
    assert [r["path"] for r in inside] == [f"0-{n - 1}.0", f"0-{n - 1}.1"]
    assert last["path"] == str(n) and last["times"] == 1
    # the run's per-instance FLOPs times n, plus the last Linear, is the total: a Linear
    # 16 -> 16 on 3 rows costs 3 * 16 * (2 * 16) = 1536 (exact, bias included), ReLU 3 * 16
    one_block = 3 * 16 * 2 * 16 + 3 * 16
    assert run["flops"].value == one_block
    total = build_context(c, at={"B": 3, "dim": 16})["total"]["flops"].value
    assert n * run["flops"].value + last["flops"].value == total == int(
        c.subs(B=3, dim=16).flops)
    # the share counts every instance; derivations name the run and its multiplier
    assert run["share"] == pytest.approx(n * one_block / int(total))
    derivs = build_context(c)["derivations"]
    assert [d["path"] for d in derivs] == [f"0-{n - 1}.0", f"0-{n - 1}.1", str(n)]
    assert [d["multiplier"] for d in derivs] == [n, n, 1]


def test_different_siblings_do_not_fold() -> None:
    net = sf.nn.Sequential(sf.nn.Linear(8, 8), sf.nn.Linear(8, 8, bias=False),
                           sf.nn.Linear(8, 8))
    rows = build_context(net.cost((B, 8)))["rows"]
    assert [(r["path"], r["times"]) for r in rows] == [("0", 1), ("1", 1), ("2", 1)]


def test_symbolic_repeat_count_shows_times_L_in_every_format() -> None:
    c = sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads), L).cost((B, N, dim))
    assert "TransformerBlock x L" in render(c, "text", derivations=False)
    assert r"TransformerBlock $\times L$" in render(c, "markdown", derivations=False)
    assert r"TransformerBlock $\times L$" in render(c, "latex", derivations=False)
    node = json.loads(render(c, "json"))["tree"]["children"][0]
    assert sp.sympify(node["count"]["srepr"]) == L


def test_fold_must_be_a_bool() -> None:
    with pytest.raises(SymflopsError, match="fold must be True or False"):
        render(stack(2), "markdown", fold="yes")  # type: ignore[arg-type]
