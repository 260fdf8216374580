"""The tracer's memo of torch's ``ShapeEnv.simplify`` (symflops.tracing._torch_compat
.SimplifyMemo): on only while a trace runs, on that trace's ShapeEnv only, and the formula of
a window-attention model (the reshapes that made torch re-simplify every axiom) is the one
torch's own ``simplify`` gives, equal to FlopCounterMode."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from torch.fx.experimental.symbolic_shapes import ShapeEnv  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
import symflops.tracing._torch_compat as C  # noqa: E402


class WindowAttention(torch.nn.Module):
    """Swin-style: the map cut into 4 x 4 windows, attention inside each, put back."""

    def __init__(self, c: int = 8, w: int = 4, blocks: int = 1) -> None:
        super().__init__()
        self.w = w
        self.qkv = torch.nn.ModuleList(torch.nn.Linear(c, 3 * c) for _ in range(blocks))
        self.proj = torch.nn.ModuleList(torch.nn.Linear(c, c) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w_ = x.shape
        w = self.w
        x = x.permute(0, 2, 3, 1)
        for qkv, proj in zip(self.qkv, self.proj, strict=True):
            t = x.reshape(b, h // w, w, w_ // w, w, c).permute(0, 1, 3, 2, 4, 5)
            q, k, v = qkv(t.reshape(-1, w * w, c)).chunk(3, -1)
            a = proj((q @ k.transpose(-1, -2)).softmax(-1) @ v)
            a = a.reshape(b, h // w, w_ // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
            x = x + a.reshape(b, h, w_, c)
        return x


def _trace(monkeypatch: pytest.MonkeyPatch, memo: bool) -> tuple[sf.Cost, list[C.SymEnv]]:
    envs: list[C.SymEnv] = []

    class Recorded(C.SymEnv):
        def __init__(self) -> None:
            super().__init__()
            envs.append(self)

    with monkeypatch.context() as m:
        m.setattr(C, "MEMO_SIMPLIFY", memo)
        m.setattr(C, "SymEnv", Recorded)
        cost = sf.trace(WindowAttention(), "B 8 H W", {"H": 16, "W": 16},
                        convention="torch", warn=False)
    return cost, envs


def _fingerprint(cost: sf.Cost) -> list[str]:
    return [sp.srepr(cost.with_convention(c).flops) for c in ("exact", "torch", "macs")] + \
        [sp.srepr(sp.sympify(cost.params))] + [sp.srepr(v) for v in cost.validity]


def test_memo_is_scoped_to_the_trace_and_changes_no_formula(monkeypatch):
    cost, envs = _trace(monkeypatch, memo=True)
    memos = [e.simplify_memo for e in envs if e.simplify_memo is not None]
    assert memos, "the memo was not installed on this torch"
    assert sum(m.hits for m in memos) > 0  # it answered some of torch's calls
    for env in envs:  # after the trace: torch's own methods, torch's own set
        assert "simplify" not in env.shape_env.__dict__
        assert "evaluate_expr" not in env.shape_env.__dict__
        assert type(env.shape_env.divisible) is set
        assert env.shape_env.simplify.__func__ is ShapeEnv.simplify
    plain, plain_envs = _trace(monkeypatch, memo=False)
    assert all(e.simplify_memo is None for e in plain_envs)
    assert _fingerprint(cost) == _fingerprint(plain)
    model = WindowAttention()
    for b, h, w in ((1, 16, 16), (2, 12, 20)):
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(torch.randn(b, 8, h, w))
        assert cost.subs(B=b, H=h, W=w).flops == fc.get_total_flops()


def test_a_max_is_memoized_with_the_answers_torch_proved_it_by(monkeypatch):
    """torch's Min/Max step reads the whole state only through ``_maybe_evaluate_static``
    (torch 2.13: for every ``Max(0/1, x)``; 2.14: only when ``x``'s ranges do not decide
    it): an entry keeps the answers its run got there and is reused only while torch,
    asked again, answers the same; a Max the ranges decide asks nothing."""
    from torch._dynamo.source import ConstantSource
    from torch.fx.experimental.symbolic_shapes import DimDynamic
    from torch.utils._sympy.functions import FloorDiv, Max
    from torch.utils._sympy.value_ranges import ValueRanges

    env = ShapeEnv(duck_shape=False)
    s = env.create_symbol(10, ConstantSource("memo_s"), dynamic_dim=DimDynamic.DYNAMIC)
    memo = C.SimplifyMemo.install(env)
    assert memo is not None, "the memo was not installed on this torch"
    asked: list[sp.Basic] = []
    flip: list[sp.Basic] = []  # the facts answered true from now on (a new axiom, say)
    static = ShapeEnv._maybe_evaluate_static

    def counted(self: ShapeEnv, expr: sp.Basic, *args: object, **kwargs: object) -> object:
        asked.append(expr)
        return sp.true if expr in flip else static(self, expr, *args, **kwargs)

    monkeypatch.setattr(ShapeEnv, "_maybe_evaluate_static", counted)
    env._update_divisible()  # its first call replaces the set (no entry is kept then)
    decided = FloorDiv(Max(1, s - 1), 2)    # s >= 2 by its range: Max(1, s - 1) = s - 1
    undecided = FloorDiv(Max(1, s - 5), 2)  # not by the range: torch asks the whole state
    for expr, simplified in ((decided, FloorDiv(s - 1, 2)), (undecided, undecided)):
        asked.clear()
        assert env.simplify(expr) == simplified
        assert (expr, False) in memo.entries
        first = list(asked)
        asked.clear()
        hits = memo.hits
        assert env.simplify(expr) == simplified
        assert memo.hits == hits + 1
        assert asked == first  # the hit asked torch what its run asked, in order
    assert asked, "torch decided Max(1, s - 5) without its whole state"
    # torch's answer changes (a fact it did not have): the entry does not answer
    flip.extend(asked)
    ShapeEnv.simplify.cache_clear()  # as a new axiom's version bump would
    misses = memo.misses
    changed = env.simplify(undecided)
    assert memo.misses == misses + 1
    assert changed != undecided  # torch's own simplify, on the new answer
    if not memo.entries[(decided, False)][4]:  # torch 2.14: the ranges decided it
        # another range of s: the entry no longer answers, torch's simplify is asked
        env.var_to_range[s] = ValueRanges(0, 100)
        misses = memo.misses
        env.simplify(decided)
        assert memo.misses == misses + 1
