"""The exact evaluator settle tries guards with (``_branches._exact_value``) agrees with
SymPy's substitution: the same truth value, or None (then SymPy decides)."""

from __future__ import annotations

import random
from typing import Any

import sympy as sp
import torch

import symflops as sf
from symflops.exact import at_point
from symflops.exact import exact_value as _exact_value
from symflops.tracing import _branches
from symflops.tracing._branches import _differ, _false_at

B, H, W = sp.symbols("B H W", integer=True, positive=True)


def _random_expr(rng: random.Random, depth: int) -> sp.Expr:
    if depth == 0 or rng.random() < 0.25:
        return rng.choice([B, H, W, sp.Integer(rng.randint(-9, 9)),
                           sp.Rational(rng.randint(-9, 9), rng.randint(1, 7))])
    a, b = _random_expr(rng, depth - 1), _random_expr(rng, depth - 1)
    pick = rng.randrange(8)
    if pick == 0:
        return a + b
    if pick == 1:
        return a * b
    if pick == 2:
        return sp.floor(a / 3 + b / 5)
    if pick == 3:
        return sp.ceiling(a / 2 - b)
    if pick == 4:
        return sp.Mod(a, rng.randint(2, 9))
    if pick == 5:
        return sp.Min(a, b)
    if pick == 6:
        return sp.Max(a, b) ** rng.randint(0, 2)
    return a - b


def _random_guard(rng: random.Random) -> sp.Basic:
    while True:
        lhs, rhs = _random_expr(rng, 3), _random_expr(rng, 2)
        rel = rng.choice([sp.Eq, sp.Ne, sp.Lt, sp.Le, sp.Gt, sp.Ge])(lhs, rhs)
        if isinstance(rel, sp.Rel):  # not already decided without the point
            break
    pick = rng.randrange(4)
    if pick == 0:
        other = sp.Ge(_random_expr(rng, 2), rng.randint(0, 9))
        return sp.And(rel, other) if rng.random() < 0.5 else sp.Or(rel, other)
    if pick == 1:
        return sp.Not(rel)
    return rel


def test_exact_value_agrees_with_sympy_on_random_guards() -> None:
    rng = random.Random(7)
    decided = 0
    for _ in range(400):
        guard = _random_guard(rng)
        point = {s: sp.Integer(rng.randint(1, 300)) for s in (B, H, W)}
        fast = _exact_value(guard, point)
        slow = guard.xreplace(point)
        if fast is None:
            continue
        decided += 1
        assert slow in (sp.true, sp.false), guard  # every symbol is given
        assert fast == (slow is sp.true), (guard, point)
        assert _false_at(guard, point) == (slow is sp.false)
        assert at_point(guard, point) is slow
        assert _false_at(guard, {s: int(v) for s, v in point.items()}) == (slow is sp.false)
    assert decided > 300  # the fast path answers nearly all of them


def test_exact_value_of_a_size_and_its_fallbacks() -> None:
    h_out = sp.floor((H - 1) / 2) + 1
    assert _exact_value(3 * B * h_out**2, {B: sp.Integer(2), H: sp.Integer(224)}) == \
        3 * 2 * 112**2
    assert _exact_value(sp.Ne(B * h_out, 0), {B: sp.Integer(2), H: sp.Integer(1)}) is True
    # a symbol missing from the point, a division by zero, a non-integer power: SymPy's
    assert _exact_value(H + W, {H: sp.Integer(3)}) is None
    assert _exact_value(1 / (H - 3), {H: sp.Integer(3)}) is None
    assert _exact_value(sp.sqrt(H), {H: sp.Integer(4)}) is None
    assert _false_at(sp.Lt(1 / (H - 3), 1), {H: sp.Integer(3)}) is False  # zoo: not false
    assert _differ(H**2, H * H + 0 * W, {H: sp.Integer(5), W: sp.Integer(1)}) is False
    assert _differ(sp.floor(H / 2), H / 2, {H: sp.Integer(5)}) is True
    assert _differ(sp.sqrt(H), sp.Integer(2), {H: sp.Integer(4)}) is False  # SymPy decides


class _Positions(torch.nn.Module):
    """Tokens plus learned positions from a table of 64 rows (GPT-2's pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = torch.nn.Embedding(100, 16)
        self.pos = torch.nn.Embedding(64, 16)
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        p = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
        return self.fc(self.tok(ids) + self.pos(p))


def test_a_table_bound_is_settled_without_the_trace_that_fails(monkeypatch: Any) -> None:
    """``N <= 64`` from a lookup of positions: the trace at N = 65 stops at that lookup,
    which settle knows from the recorded guards (every earlier one holds there); the
    result, notes included, is the one the trace there gives."""
    import symflops.tracing._run as run_module

    spec = (("B", "N"), torch.long)
    calls: list[dict[str, int]] = []
    real_run_once = run_module.run_once

    def counted(ctx: Any) -> Any:
        calls.append(dict(ctx.hint_of))
        return real_run_once(ctx)

    monkeypatch.setattr(run_module, "run_once", counted)
    fast = sf.trace(_Positions(), spec, hints={"N": 16}, warn=False)
    # besides the traces with a size the int 1 (checks of torch's 0/1 specialization)
    calls[:] = [c for c in calls if set(c) == {"B", "N"}]
    assert calls == [{"B": 2, "N": 16}]  # no trace at N = 65
    monkeypatch.setattr(_branches, "_fails_at_table", lambda *a: None)
    calls.clear()
    slow = sf.trace(_Positions(), spec, hints={"N": 16}, warn=False)
    calls[:] = [c for c in calls if set(c) == {"B", "N"}]
    assert calls == [{"B": 2, "N": 16}, {"B": 2, "N": 65}]  # run, and failed there
    assert fast.notes == slow.notes and any("index a table of 64 rows" in n for n in fast.notes)
    assert sp.srepr(fast.flops) == sp.srepr(slow.flops)
    assert fast.validity == slow.validity and sp.Le(sp.Symbol("N", integer=True,
                                                             positive=True), 64) in fast.validity
