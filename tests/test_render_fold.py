"""Folding (issue 11): a run of identical consecutive siblings is one row ``layers.0-11
(x12)`` in every format, ``fold=False`` gives the unfolded table, a symbolic ``count``
(sf.nn.Repeat) shows ``x L``."""

from __future__ import annotations

import json

import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.rendering import build_context, render
from symflops.symbols import B, L, N, dim, heads


def stack(n: int) -> sf.Cost:
    """``n`` identical Linear+ReLU blocks then a different Linear (a run, then one more)."""
    blocks = [sf.nn.Sequential(sf.nn.Linear(dim, dim), sf.nn.ReLU()) for _ in range(n)]
    return sf.nn.Sequential(*blocks, sf.nn.Linear(dim, 10)).cost((B, dim))


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


def test_identical_siblings_named_apart_stay_apart() -> None:
    # conv_a and conv_b are the author's two modules, not a numbered run of blocks
    net = sf.nn.Sequential({"conv_a": sf.nn.Linear(8, 8), "conv_b": sf.nn.Linear(8, 8),
                            "block_1": sf.nn.ReLU(), "block_2": sf.nn.ReLU(),
                            "block_4": sf.nn.ReLU()})
    rows = build_context(net.cost((B, 8)))["rows"]
    assert [(r["path"], r["times"]) for r in rows] == [
        ("conv_a", 1), ("conv_b", 1), ("block_1-2", 2), ("block_4", 1)]


def test_fold_must_be_a_bool() -> None:
    with pytest.raises(SymflopsError, match="fold must be True or False"):
        render(stack(2), "markdown", fold="yes")  # type: ignore[arg-type]
