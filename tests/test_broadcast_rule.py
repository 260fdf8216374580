"""``add``/``sub``/``mul``/``div`` of operands that broadcast plainly are sized by the
tracer's own rule (``_shape_rules._broadcast``): per dim one side is the number 1 or both
are the same expression. torch's fake kernel asks of each symbolic size facing a 1 whether
it is 1 (a guard ``Ne(h, 1)``), though the output size is ``h`` either way, and those guards
made settle trace a squeeze-and-excitation model four more times (at B = 1, H = 1, W = 1
and H = W = 1). The rule's output is torch's own (sizes, strides, dtype), and the formula
traced without those checks is still right at every size of 1 (torch's CPU kernels)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.tracing import _torch_compat as C  # noqa: E402
from symflops.tracing._shape_rules import (  # noqa: E402
    _binary,
    _binary_inplace,
    _permuted_broadcast,
)

aten = torch.ops.aten
HINTS = {"B": 3, "N": 17, "H": 5, "W": 6}


def _tensors(*shapes: list[Any], dtype: torch.dtype = torch.float32
             ) -> tuple[C.SymEnv, list[torch.Tensor]]:
    env = C.SymEnv()
    with env.mode:
        return env, [torch.empty([env.symint(d, HINTS[d]) if isinstance(d, str) else d
                                  for d in shape], dtype=dtype, device="meta")
                     for shape in shapes]


def _exprs(t: torch.Tensor) -> tuple[Any, ...]:
    return tuple(C.sym_expr(v) for v in (*t.shape, *t.stride()))


PAIRS = {
    "se-scale": (["B", 8, "H", "W"], ["B", 8, 1, 1]),
    "channel-bias": (["B", 8, "H", "W"], [8, 1, 1]),
    "position-embedding": ([1, "N", 4], ["B", "N", 4]),
    "outer": (["N", 1], [1, "N"]),
    "row": (["B", "N", "N"], ["N"]),
}


@pytest.mark.parametrize("op", [aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor,
                                aten.div.Tensor], ids=["add", "sub", "mul", "div"])
@pytest.mark.parametrize("pair", list(PAIRS.values()), ids=list(PAIRS))
def test_broadcast_rule_is_torchs_output(pair: tuple[list[Any], list[Any]], op: Any) -> None:
    for a_shape, b_shape in (pair, pair[::-1]):
        env, (a, b) = _tensors(a_shape, b_shape)
        with env.mode, torch.no_grad():
            ours = _binary((a, b), {})
            theirs = op(a, b)
        assert ours is not None
        assert _exprs(ours) == _exprs(theirs) and ours.dtype == theirs.dtype


def test_operands_the_rule_does_not_know_take_torchs_path() -> None:
    env, (a, b, h) = _tensors(["B", 8, "H", "W"], ["B", 8, 1, 1], ["B", 8, "H", 1])
    with env.mode:
        assert _binary((a.transpose(2, 3), b), {}) is None  # not contiguous
        assert _binary((a, b.to(torch.float64)), {}) is None  # promoted by torch
        assert _binary((a.to(torch.int64), b.to(torch.int64)), {}) is None  # not floating
        other = torch.empty([env.symint("N", 17)], device="meta")
        assert _binary((a, other), {}) is None  # W against N: torch decides
        assert _binary((a, torch.empty((), device="meta")), {}) is None  # 0-dim
        assert _binary((a, b), {"out": a}) is None
        # in place: b broadcast into a is a itself; a size 1 of a growing is torch's error
        assert _binary_inplace((a, b), {}) is a
        assert _binary_inplace((h, a), {}) is None


class SqueezeExcite(nn.Module):
    """A squeeze-and-excitation block after a conv (MobileNetV3's, EfficientNet's)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return y * s + y


def _flop_counter(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as fc:
        model(x)
    return int(fc.get_total_flops())


def test_a_squeeze_excitation_scale_needs_no_check_at_one_and_is_right_there() -> None:
    # Hand, torch convention at B = 1, H = W = 5: the 3x3 conv 3 -> 8 makes 25 positions x
    # 8 x 27 MACs = 5,400 MACs; the two 1x1 convs 8 x 4 + 4 x 8 = 64 MACs on one position;
    # 2 FLOPs per MAC: 10,928 (elementwise ops count 0 under torch).
    model = SqueezeExcite().eval()
    cost = sf.trace(model, "B 3 H W", convention="torch", warn=False)
    assert not any("= 1 checked" in n or "= 1 refused" in n for n in cost.report.notes)
    assert not any("Ne(" in str(g) for g in cost.report.guards)
    assert str(cost.domain) == "every size"
    with torch.no_grad():
        for b in (1, 2):
            for h in (1, 2, 3, 5, 31):
                for w in (1, 2, 7):
                    x = torch.zeros(b, 3, h, w)
                    assert cost.subs(B=b, H=h, W=w).flops == _flop_counter(model, x), (b, h, w)
    assert cost.subs(B=1, H=5, W=5).flops == 10928


PERMUTED = {  # id -> (first operand, second operand): "cl" a channels-last view
    "layer-scale-times-cl": ("scale", "cl"),
    "cl-times-layer-scale": ("cl", "scale"),
    "cl-plus-channel-bias": ("cl", "bias4"),
    "residual-contiguous-plus-cl": ("contig", "cl"),
    "residual-cl-plus-contiguous": ("cl", "contig"),
    "cl-times-cl": ("cl", "cl"),
    "transposed-hw-times-scale": ("hw", "scale"),
    "transposed-hw-plus-cl": ("hw", "cl"),  # the first full operand decides the order
}


def _operand(kind: str, env: C.SymEnv, b: Any, h: Any, w: Any) -> torch.Tensor:
    c = 8
    return {
        "scale": lambda: env.fake(torch.empty(c, 1, 1, device="meta")),
        "bias4": lambda: torch.empty(1, c, 1, 1, device="meta"),
        "cl": lambda: torch.empty(b, h, w, c, device="meta").permute(0, 3, 1, 2),
        "contig": lambda: torch.empty(b, c, h, w, device="meta"),
        "hw": lambda: torch.empty(b, c, w, h, device="meta").transpose(2, 3),
    }[kind]()


@pytest.mark.parametrize("batch", ["B", 1], ids=["batch-B", "batch-1"])
@pytest.mark.parametrize("op", [aten.mul.Tensor, aten.add.Tensor], ids=["mul", "add"])
@pytest.mark.parametrize("pair", PERMUTED.values(), ids=PERMUTED.keys())
def test_permuted_operands_are_laid_out_as_torch_lays_them_out(pair: tuple[str, str],
                                                               op: Any, batch: Any) -> None:
    # ConvNeXt's layer scale multiplies a (C, 1, 1) parameter into the channels-last view
    # its block returns; torch's output follows that view's dim order
    out = []
    for ours in (True, False):
        env = C.SymEnv()
        with env.mode, torch.no_grad():
            # a batch of the int 1 (settle's check at B = 1) is laid out the same way: the
            # check must not meet questions the symbolic trace did not ask
            b = env.symint("B", 3) if batch == "B" else 1
            h, w = env.symint("H", 5), env.symint("W", 7)
            x, y = (_operand(k, env, b, h, w) for k in pair)
            before = len(env.shape_env.guards)
            got = _permuted_broadcast((x, y), {}) if ours else op(x, y)
            assert got is not None
            out.append((tuple(C.sym_expr(v) for v in (*got.shape, *got.stride())),
                        got.dtype, [g.expr for g in env.shape_env.guards[before:]]))
        env.close()
    (mine, dtype, guards), (theirs, their_dtype, _) = out
    assert mine == theirs and dtype == their_dtype
    assert guards == []  # torch asked B != 1, h != 1, w != 1 and stride orders here


@pytest.mark.parametrize("pair", [("sliced", "scale"), ("plane", "cl")],
                         ids=["not-dense", "two-real-dims-first"])
def test_permuted_operands_torch_must_decide_take_its_path(pair: tuple[str, str]) -> None:
    env = C.SymEnv()
    with env.mode, torch.no_grad():
        b, h, w = env.symint("B", 3), env.symint("H", 5), env.symint("W", 7)
        extra = {"sliced": lambda: torch.empty(b, 8, h, 2 * w, device="meta")[..., ::2],
                 "plane": lambda: torch.empty(8, h, 1, device="meta")}
        x, y = (extra[k]() if k in extra else _operand(k, env, b, h, w) for k in pair)
        assert _permuted_broadcast((x, y), {}) is None
    env.close()


class LayerScaleBlock(nn.Module):
    """ConvNeXt's block in small: a depthwise conv, then norm and MLP on a channels-last
    view, permuted back, scaled per channel by a ``(C, 1, 1)`` parameter, added in place."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(c, c, 2, stride=2)  # sizes floor(H/2): conditions on them
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)  # are not implied by H >= 1
        self.norm, self.fc = nn.LayerNorm(c), nn.Linear(c, c)
        self.scale = nn.Parameter(torch.ones(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.fc(self.norm(self.dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if x.shape[0] > 1:  # a branch of no cost: settle checks the model at B = 1
            y = y.contiguous().permute(0, 2, 3, 1).permute(0, 3, 1, 2)
        y = self.scale * y
        y += x
        return y


def test_a_layer_scale_on_a_channels_last_view_adds_no_layout_condition() -> None:
    # torch's slow path asked here whether one stride is below another (ConvNeXt's domain
    # carried four such always-true conditions, 96*Max(1, h)*Max(1, w) >= 96*Max(1, w))
    model = LayerScaleBlock().eval()
    cost = sf.trace(model, "B 8 H W", convention="torch", warn=False)
    assert not any("Max" in str(c) for c in cost.validity)
    assert str(cost.domain) == "H >= 2; W >= 2"  # the stem's kernel, nothing more
    # the check at B = 1 (an int there) meets the same layout rule, and no question the
    # symbolic trace did not ask (timm's DaVit refused B = 1 when it did)
    assert any(n.startswith("B = 1 checked") for n in cost.report.notes)
    with torch.no_grad():
        for b, h, w in ((1, 2, 2), (2, 2, 5), (1, 6, 3), (3, 9, 4), (1, 40, 33)):
            x = torch.zeros(b, 8, h, w)
            assert cost.subs(B=b, H=h, W=w).flops == _flop_counter(model, x), (b, h, w)
