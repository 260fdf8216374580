"""TensorFlow "SAME" padding as timm computes it (``pad_same``: per dim
``max((ceil(x/s) - 1) s + (k - 1) d + 1 - x, 0)`` split in two halves, then ``F.pad``):
symbolic in H and W at every size, no condition left, equal to FlopCounterMode on meta on
and off the strides' lattice and far from the example sizes."""

from __future__ import annotations

import math

import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.symbols import B, H, W


def _same_padding(x: int, k: int, s: int, d: int) -> int:
    return max((math.ceil(x / s) - 1) * s + (k - 1) * d + 1 - x, 0)


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: the padding computed from the input size on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.size()[-2:]
        ph = _same_padding(ih, self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = _same_padding(iw, self.kernel_size[1], self.stride[1], self.dilation[1])
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation,
                        self.groups)


def _net() -> nn.Module:
    with torch.device("meta"):
        return nn.Sequential(Conv2dSame(3, 8, 3, stride=2), nn.ReLU(),
                             Conv2dSame(8, 8, 5, stride=2, groups=8),
                             Conv2dSame(8, 4, 3, stride=1, dilation=2)).eval()


NET = _net()
COST = sf.trace(NET, "B 3 H W", warn=False, convention="torch")


def _fcm(b: int, h: int, w: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        NET(torch.empty(b, 3, h, w, device="meta"))
    return int(counter.get_total_flops())


def test_same_padding_is_symbolic_without_conditions() -> None:
    # by hand, the first conv: SAME keeps ceil(H/2) x ceil(W/2) outputs of 3*3*3 MACs each
    # for 8 channels: 2 * 216 = 432 FLOPs per output position
    assert COST.flops.free_symbols == {B, H, W}
    assert str(COST.domain) == "every size" and not COST.report.fixed
    first = COST["0"]
    assert first.flops == 432 * B * sp.ceiling(H / 2) * sp.ceiling(W / 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 600), st.integers(1, 600))
def test_equals_flop_counter_mode_anywhere(b: int, h: int, w: int) -> None:
    assert COST.subs(B=b, H=h, W=w).flops == _fcm(b, h, w)


def test_far_from_the_example_sizes() -> None:
    for b, h, w in ((2, 4096, 3001), (1, 8191, 17)):
        assert COST.subs(B=b, H=h, W=w).flops == _fcm(b, h, w)
