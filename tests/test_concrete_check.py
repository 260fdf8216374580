"""A branch guard's other side is first counted with every size an int: where that count
already differs from the formula, the guard stays without a symbolic trace there; where
it agrees, the symbolic trace decides as before. Either way the Cost is the one the
symbolic trace alone gives (formulas, validity, notes)."""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp
import torch
from torch import nn

import symflops as sf
from symflops.tracing import _branches, _run


class Branchy(nn.Module):
    """Past W = 40 the model runs one more conv (``more``), or the same work another way."""

    def __init__(self, more: bool) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.more = more

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if x.shape[-1] > 40:
            return self.b(y) if self.more else y * 2
        return y * 3


def _trace(model: nn.Module, monkeypatch: pytest.MonkeyPatch, shortcut: bool = True
           ) -> tuple[Any, list[str]]:
    """The Cost, and each run's kind in order (``symbolic`` or ``concrete``)."""
    runs: list[str] = []
    original = _run.run_once

    def spy(ctx: Any) -> Any:
        runs.append("symbolic" if ctx.hint_of else "concrete")
        return original(ctx)

    with monkeypatch.context() as m:
        m.setattr(_run, "run_once", spy)
        if not shortcut:
            m.setattr(_branches, "_differs_concretely", lambda *a, **k: None)
        cost = sf.trace(model, "B 3 H W", hints={"B": 2, "H": 32, "W": 32}, warn=False)
    return cost, runs


def _same(a: Any, b: Any) -> None:
    assert sp.srepr(a.flops) == sp.srepr(b.flops)
    assert list(a.validity) == list(b.validity) and list(a.notes) == list(b.notes)


def test_a_branch_that_changes_the_cost_is_kept_without_a_symbolic_trace_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cost, runs = _trace(Branchy(more=True), monkeypatch)
    assert runs == ["symbolic", "concrete"]
    W = sp.Symbol("W", positive=True, integer=True)
    assert sp.Le(W, 40) in cost.validity
    assert any("W <= 40 kept as a condition: on its other side the cost differs (at B=2, "
               "H=32, W=41)" in n for n in cost.notes)
    again, slow = _trace(Branchy(more=True), monkeypatch, shortcut=False)
    assert slow == ["symbolic", "symbolic"]
    _same(cost, again)
    with pytest.raises(sf.SymflopsError, match="W <= 40"):
        cost.subs(B=1, H=32, W=41)
    model = Branchy(more=True)
    for b, h, w in ((1, 32, 32), (2, 57, 40), (1, 9, 5)):
        assert int(cost.with_convention("torch").subs(B=b, H=h, W=w).flops) == \
            _flop_counter(model, b, h, w)


def _flop_counter(model: nn.Module, b: int, h: int, w: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(b, 3, h, w))
    return int(fc.get_total_flops())


def test_a_branch_with_the_same_cost_is_still_settled_by_a_symbolic_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cost, runs = _trace(Branchy(more=False), monkeypatch)
    assert runs == ["symbolic", "concrete", "symbolic"]
    assert not any(g.free_symbols and "40" in str(g) for g in cost.validity)
    assert any("W <= 40 dropped" in n for n in cost.notes)
    again, slow = _trace(Branchy(more=False), monkeypatch, shortcut=False)
    assert slow == ["symbolic", "symbolic"]
    _same(cost, again)
    assert int(cost.subs(B=1, H=32, W=64).flops) > 0
