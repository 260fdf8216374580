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
