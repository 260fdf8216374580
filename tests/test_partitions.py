"""Block and grid partitions (MaxViT's mechanism) trace symbolically: a hand-written
miniature doing torchvision's ops (``reshape(B, C, H // P, P, W // P, P)``, permute,
``reshape(B, (H // P) * (W // P), P * P, C)``, the grid variant with the partition size
``P = H // G`` a function of the map's side and the two window axes swapped, attention per
partition, and the departition's reshape back), with the feature map's side spelt as a
multiple of the lattice (``x[..., :16 * (H // 16), ...]`` after ``torch._check``), as
benchmarks/check_partitions.py does for torchvision's maxvit_t. torch's own view
reference turned those sizes into nested quotients it could not simplify (the trace of
maxvit_t ran out of its budget); the view shape rule keeps them polynomial."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.errors import OutsideDomain
from symflops.tracing._assembly import TracedCost

# the trace takes ~5 s on a loaded machine
pytestmark = pytest.mark.slow


class PartitionAttention(torch.nn.Module):
    """Attention inside ``P x P`` windows (``grid=False``) or across a ``G x G`` grid of
    stride ``H // G`` (``grid=True``): the tokens attended together are ``P*P`` or
    ``G*G``."""

    def __init__(self, dim: int, size: int, grid: bool) -> None:
        super().__init__()
        self.size, self.grid = size, grid
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        B, C, H, W = x.shape
        p = H // self.size if self.grid else self.size  # torchvision: n_partitions
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(B, (H // p) * (W // p), p * p, C)
        if self.grid:
            x = x.swapaxes(-2, -3)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v)
        if self.grid:
            x = x.swapaxes(-2, -3)
        x = x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)


class TinyMaxViT(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.down1 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.block1 = PartitionAttention(8, 2, grid=False)
        self.grid1 = PartitionAttention(8, 2, grid=True)
        self.down2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.block2 = PartitionAttention(16, 2, grid=False)
        self.grid2 = PartitionAttention(16, 2, grid=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2]
        torch._check(h % 16 == 0)  # every map splits into 2 x 2 windows and a 2 x 2 grid
        x = x[:, :, :16 * (h // 16), :16 * (h // 16)]
        x = self.grid1(self.block1(self.down1(self.stem(x))))
        return self.grid2(self.block2(self.down2(x))).mean((2, 3))


def _macs(model: torch.nn.Module, b: int, h: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(b, 3, h, h, device="meta"))
    return counter.get_total_flops() // 2


def _hand(b: int, h: int) -> int:
    """By hand, q = h/16 (maps 8q, 4q, 2q): convs 27*8 (8q)^2 + 72*8 (4q)^2 + 72*16 (2q)^2;
    a partition layer on n = s^2 tokens of dim d, attending in groups of 4: qkv 3d^2 n,
    proj d^2 n, QK^T and AV 4 d n each."""
    q = h // 16
    convs = 27 * 8 * (8 * q) ** 2 + 72 * 8 * (4 * q) ** 2 + 72 * 16 * (2 * q) ** 2
    layer = sum(2 * (4 * d * d * n + 8 * d * n) for d, n in ((8, (4 * q) ** 2),
                                                              (16, (2 * q) ** 2)))
    return b * (convs + layer)


@pytest.fixture(scope="module")
def traced() -> TracedCost:
    with torch.device("meta"):
        model = TinyMaxViT().eval()
    cost = sf.trace(model, "B 3 H H", {"H": 32}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    return cost


def test_block_and_grid_partitions_symbolic_and_exact(traced: TracedCost) -> None:
    with torch.device("meta"):
        model = TinyMaxViT().eval()
    assert not traced.report.fixed
    assert {s.name for s in traced.macs.free_symbols} == {"B", "H"}
    # far from the hint (H = 32): 3 to 40 times the side
    for b, h in [(2, 48), (3, 160), (2, 1280)]:
        assert int(traced.subs(B=b, H=h).macs) == _macs(model, b, h) == _hand(b, h), (b, h)


def test_partition_domain_is_the_lattice(traced: TracedCost) -> None:
    # off the lattice the model would crop the map: refused, not answered
    with pytest.raises(OutsideDomain):
        traced.subs(B=2, H=40)


def test_view_rule_sizes_and_minus_one() -> None:
    """The view shape rule's own cases: explicit sizes that multiply out, one ``-1``
    divided out, and a split that needs a divisibility torch must check (its path)."""

    class Views(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, 4)
            b, n, c = x.shape
            y = self.lin(x.view(-1, c)).view(b, n, 5)  # -1 = B*N, then explicit sizes
            z = x.reshape(b, n // 2, 2 * c)  # N even: torch's view decides (a guard)
            return y.sum() + self.lin(z[..., :4]).sum()

    with torch.device("meta"):
        model = Views().eval()
    cost = sf.trace(model, "B N 4", {"N": 6}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    assert not cost.report.fixed
    for b, n in [(2, 10), (5, 64)]:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(b, n, 4, device="meta"))
        assert int(cost.subs(B=b, N=n).macs) == counter.get_total_flops() // 2 == \
            b * n * 20 + b * (n // 2) * 20
    with pytest.raises(OutsideDomain):  # odd N: the reshape fails in torch, refused here
        cost.subs(B=2, N=7)
