"""Window partitions with padding (Swin's mechanism) trace symbolically: a hand-written
module doing torchvision's ops (``F.pad`` to a multiple of the window with
``(w - W % w) % w``, view/permute into windows, attention per window, reverse, unpad
``x[:, :H, :W].contiguous()``, patch merging with ``F.pad(x, (0, 0, 0, W % 2, 0, H % 2))``
and strided slices). The full-size torchvision Swin models are in
benchmarks/check_windows.py (their own environment)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.tracing._assembly import TracedCost
from symflops.tracing._shape_rules import padded_size


class WindowBlock(torch.nn.Module):
    def __init__(self, dim: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        B, H, W, C = x.shape
        w = self.window
        pad_r = (w - W % w) % w
        pad_b = (w - H % w) % w
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, ph, pw, _ = x.shape
        x = x.view(B, ph // w, w, pw // w, w, C).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(B * (ph // w) * (pw // w), w * w, C)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v)
        x = x.view(B, ph // w, pw // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, ph, pw, C)
        return x[:, :H, :W, :].contiguous()


class Merge(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = torch.nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                       x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(x)


class TinySwin(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.block1 = WindowBlock(8, 3)
        self.merge = Merge(8)
        self.block2 = WindowBlock(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).permute(0, 2, 3, 1)
        return self.block2(self.merge(self.block1(x))).mean((1, 2))


def _macs(model: torch.nn.Module, b: int, h: int, w: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(b, 3, h, w, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.slow
def test_padded_window_partition_symbolic_and_exact() -> None:
    with torch.device("meta"):
        model = TinySwin().eval()
    # hint 40: h = 10 is padded to 12 (4 windows of 3), merged to 5, padded to 6
    cost = sf.trace(model, "B 3 H W", {"H": 40, "W": 44}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    assert not cost.report.fixed
    assert {s.name for s in cost.flops.free_symbols} == {"B", "H", "W"}
    # far from the hint, with and without padding (h = 12: no pad; 25: pad 2; odd merges)
    for b, h, w in [(1, 48, 48), (3, 100, 60), (2, 84, 172), (1, 36, 52)]:
        assert int(cost.subs(B=b, H=h, W=w).macs) == _macs(model, b, h, w), (b, h, w)


def test_padded_size_proof() -> None:
    # the ceil form only where the pad provably rounds up to a multiple; ints add up
    assert padded_size(10, 2) == 12
    from symflops.tracing import _torch_compat as C

    env = C.SymEnv()
    with env.mode:
        n = env.symint("N", 10)
        assert str(C.sym_expr(padded_size(n, (7 - n % 7) % 7))).startswith("7*((")
        assert str(C.sym_expr(padded_size(n, -n % 8))).startswith("8*")
        assert str(C.sym_expr(padded_size(n, n % 2))).startswith("2*")
        # n % 3 does not round n up to a multiple of 3 (10 -> 11): kept as the sum
        assert "Mod" in str(C.sym_expr(padded_size(n, n % 3)))


@pytest.mark.parametrize("pad", [(0, 2, 1, 0), (3, 0, 0, 1)])
def test_symbolic_pad_amounts(pad: tuple[int, int, int, int]) -> None:
    class Pad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            H, W = x.shape[-2:]
            y = F.pad(x, (pad[0] * (W % 2), pad[1], pad[2], pad[3] * (H % 3)))
            return torch.nn.functional.linear(y, torch.ones(7, y.shape[-1]))

    with torch.device("meta"):
        model = Pad()
    cost = sf.trace(model, "B C H W", {"H": 13, "W": 11, "C": 2}, convention="macs",
                    warn=False)
    for b, c, h, w in [(1, 2, 13, 11), (2, 3, 30, 41), (1, 1, 17, 8)]:
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(b, c, h, w, device="meta"))
        assert int(cost.subs(B=b, C=c, H=h, W=w).macs) == counter.get_total_flops() // 2


def test_a_padded_window_count_is_no_branch() -> None:
    # torch asks whether h <= 3*ceil(h/3) at each padded partition (floor(H/4) <=
    # 3*floor(H/12 + 2/3)): true at every size, since both sides rise by 3 every 12 sizes
    # (one period checked). Such a test is no branch of the model: it is neither traced
    # nor kept as a condition in the notes ("no size on its other side") as it once was
    with torch.device("meta"):
        model = TinySwin().eval()
    cost = sf.trace(model, "B 3 H W", {"H": 40, "W": 44}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    assert cost.report.branches == [] and not any("kept as a condition" in n
                                                  for n in cost.notes)
    assert str(cost.domain) == "H >= 4; W >= 4"
    # the guards are still torch's, and hold at each size of a period and far beyond
    padded = [g for g in cost.report.guards if "floor(H/4) <= 3*floor(H/12" in str(g)]
    assert padded
    h = next(iter(padded[0].free_symbols))
    assert all(padded[0].xreplace({h: v}) for v in [*range(1, 13), 1001, 4099])
