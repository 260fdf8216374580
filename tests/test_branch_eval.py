"""The exact evaluator settle tries guards with (``_branches._exact_value``) agrees with
SymPy's substitution: the same truth value, or None (then SymPy decides)."""

from __future__ import annotations

import random

import sympy as sp

from symflops.tracing._branches import _differ, _false_at
from symflops.tracing._exact import at_point
from symflops.tracing._exact import exact_value as _exact_value

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
