"""Ops whose meta kernels expand with concrete-only sizes and fail on symbolic ones, kept
symbolic by shape rules: ``addcmul`` (timm's ResMLP ``Affine``: ``alpha * x + beta`` with
per-channel vectors) and ``baddbmm`` with a broadcast bias (BLOOM's ALiBi scores)."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import B, N  # noqa: E402


class Affine(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.alpha, self.beta = torch.nn.Parameter(torch.ones(8)), torch.nn.Parameter(
            torch.zeros(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.alpha, x)


class BiasedScores(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1, 1))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, q, k.transpose(1, 2))


def test_addcmul_broadcast_is_symbolic() -> None:
    traced = sf.trace(Affine(), "B N 8", warn=False)
    assert not traced.report.fixed
    # a fused multiply-add per output element: 2 B N 8
    assert sp.expand(traced.flops - 2 * 8 * B * N) == 0


def test_baddbmm_with_a_broadcast_bias_is_symbolic_and_counted_as_torch() -> None:
    traced = sf.trace(BiasedScores(), ["B N 16", "B N 16"], warn=False, convention="torch")
    assert not traced.report.fixed
    for b, n in ((4, 3), (8, 11)):
        q, k = torch.randn(b, n, 16), torch.randn(b, n, 16)
        model = BiasedScores()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(q, k)
        assert traced.subs(B=b, N=n).flops == fc.get_total_flops()
