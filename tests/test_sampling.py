"""``aten.grid_sampler_2d/3d`` (``F.grid_sample``): a brute-force sampler written from the
formula's hand count reproduces torch's values for every mode, padding and align_corners,
and the operations it counts equal the traced formula at sizes far from the trace's hints;
0 under torch and macs (FlopCounterMode does not count grid_sampler)."""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.formulas.sampling import grid_sample_rates

A = -0.75  # torch's bicubic coefficient


class Ops:
    """An operation counter: ``ops.n`` counts, each method does one counted operation."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, k: int = 1) -> None:
        self.n += k


def unnormalize(g: float, size: int, align: bool, ops: Ops) -> float:
    if align:  # (g + 1) * (size - 1) / 2: an add, a multiply by the precomputed scale
        ops(2)
        return (g + 1) * ((size - 1) / 2)
    ops(3)  # (g + 1) * size / 2 - 1/2
    return (g + 1) * (size / 2) - 0.5


def clip(x: float, size: int, ops: Ops) -> float:
    ops(2)
    return min(max(x, 0.0), size - 1.0)


def reflect(x: float, twice_low: int, twice_high: int, ops: Ops) -> float:
    ops(8)  # subtract, abs, fmod, divide, parity compare, extra + low, span - extra + low
    if twice_low == twice_high:
        return 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    x = abs(x - low)
    extra = math.fmod(x, span)
    flips = math.floor(x / span)
    return extra + low if flips % 2 == 0 else span - extra + low


def pad(x: float, size: int, padding: str, align: bool, ops: Ops) -> float:
    if padding == "border":
        return clip(x, size, ops)
    if padding == "reflection":
        x = reflect(x, 0, 2 * (size - 1), ops) if align else reflect(x, -1, 2 * size - 1, ops)
        return clip(x, size, ops)
    return x


def taps_value(img: torch.Tensor, c: int, index: tuple[int, ...]) -> float:
    if all(0 <= i < s for i, s in zip(index, img.shape[1:], strict=True)):
        return float(img[(c, *index)])
    return 0.0


def cubic_coefficients(t: float, ops: Ops) -> list[float]:
    def cc1(x: float) -> float:
        ops(5)  # ((A + 2) x - (A + 3)) x x + 1, the constants folded
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def cc2(x: float) -> float:
        ops(6)  # ((A x - 5A) x + 8A) x - 4A
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    ops(3)  # t + 1, 1 - t, (1 - t) + 1
    return [cc2(t + 1), cc1(t), cc1(1 - t), cc2(1 - t + 1)]


def sample_location(img: torch.Tensor, g: list[float], mode: str, padding: str, align: bool,
                    ops: Ops) -> list[float]:
    """Every channel of ``img`` (C, *spatial) at the grid point ``g`` (x first, as torch)."""
    sizes = list(img.shape[1:])[::-1]  # x runs along the last dim
    channels = img.shape[0]
    if mode == "bicubic":
        x = [unnormalize(gi, s, align, ops) for gi, s in zip(g, sizes, strict=True)]
        floors = [math.floor(v) for v in x]
        ops(2)  # the fractions t = x - floor(x)
        coeffs = [cubic_coefficients(v - f, ops) for v, f in zip(x, floors, strict=True)]
        # each of the 4 tap positions along each coordinate padded (zeros: unchanged)
        pos = [[pad(float(f - 1 + i), s, padding, align, ops) for i in range(4)]
               for f, s in zip(floors, sizes, strict=True)]
        out = []
        for c in range(channels):
            rows = []
            for j in range(4):
                vals = [taps_value(img, c, (int(pos[1][j]), int(pos[0][i]))) for i in range(4)]
                ops(7)  # 4 multiplies and 3 adds along x
                rows.append(sum(w * v for w, v in zip(coeffs[0], vals, strict=True)))
            ops(7)  # and along y
            out.append(sum(w * v for w, v in zip(coeffs[1], rows, strict=True)))
        return out
    x = [pad(unnormalize(gi, s, align, ops), s, padding, align, ops)
         for gi, s in zip(g, sizes, strict=True)]
    if mode == "nearest":
        index = tuple(int(round(v)) for v in reversed(x))  # round half to even, as torch
        return [taps_value(img, c, index) for c in range(channels)]
    floors = [math.floor(v) for v in x]
    ops(2 * len(x))  # t = x - floor(x) and 1 - t per coordinate
    weights = [(1 - (v - f), v - f) for v, f in zip(x, floors, strict=True)]
    corners, cw = [()], [1.0]
    for d, (w0, w1) in enumerate(weights):  # products built coordinate by coordinate
        if d:
            ops(2 * len(corners))  # 2-d: 4 products; 3-d: 4 x y products, then 8 with z
        corners = [c + (k,) for c in corners for k in (0, 1)]
        cw = [w * (w0, w1)[k[-1]] for w, k in zip([p for p in cw for _ in (0, 1)], corners,
                                                    strict=True)]
    out = []
    for c in range(channels):
        ops(2 * len(corners) - 1)  # 2^d multiplies, 2^d - 1 adds
        out.append(sum(w * taps_value(img, c, tuple(f + k for f, k in
                                                     zip(reversed(floors), reversed(corner),
                                                         strict=True)))
                       for w, corner in zip(cw, corners, strict=True)))
    return out


def brute_force(x: torch.Tensor, grid: torch.Tensor, mode: str, padding: str, align: bool
                ) -> tuple[torch.Tensor, int]:
    ops = Ops()
    n, c = x.shape[:2]
    out = torch.zeros((n, c, *grid.shape[1:-1]), dtype=torch.float64)
    for b in range(n):
        for loc in itertools.product(*(range(s) for s in grid.shape[1:-1])):
            g = [float(v) for v in grid[(b, *loc)]]
            for ch, v in enumerate(sample_location(x[b], g, mode, padding, align, ops)):
                out[(b, ch, *loc)] = v
    return out, ops.n


class Sample(torch.nn.Module):
    def __init__(self, mode: str, padding: str, align: bool) -> None:
        super().__init__()
        self.mode, self.padding, self.align = mode, padding, align

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(x, grid, mode=self.mode, padding_mode=self.padding,
                             align_corners=self.align)


CASES_2D = list(itertools.product(("bilinear", "nearest", "bicubic"),
                                  ("zeros", "border", "reflection"), (False, True)))
CASES_3D = list(itertools.product(("bilinear", "nearest"), ("zeros", "border", "reflection"),
                                  (False, True)))
INPUTS = {2: {"x": ("B", "C", "H", "W"), "grid": ("B", "P", "Q", 2)},
          3: {"x": ("B", "C", "D", "H", "W"), "grid": ("B", "P", "Q", "R", 3)}}


@pytest.mark.parametrize("dims,mode,padding,align",
                         [(2, *c) for c in CASES_2D] + [(3, *c) for c in CASES_3D], ids=str)
def test_bruteforce_values_and_count(dims: int, mode: str, padding: str, align: bool) -> None:
    gen = torch.Generator().manual_seed(7)
    if dims == 2:
        x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
        grid = torch.rand(2, 4, 7, 2, generator=gen, dtype=torch.float64) * 2.6 - 1.3
        at = {"B": 2, "C": 3, "H": 5, "W": 6, "P": 4, "Q": 7}
    else:
        x = torch.randn(1, 2, 3, 4, 5, generator=gen, dtype=torch.float64)
        grid = torch.rand(1, 2, 3, 4, 3, generator=gen, dtype=torch.float64) * 2.6 - 1.3
        at = {"B": 1, "C": 2, "D": 3, "H": 4, "W": 5, "P": 2, "Q": 3, "R": 4}
    want = F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)
    got, ops = brute_force(x, grid, mode, padding, align)
    assert torch.allclose(got, want, atol=1e-9), (got - want).abs().max()
    # traced at symbolic sizes (hints far from these), then substituted
    c = sf.trace(Sample(mode, padding, align), INPUTS[dims], warn=False)
    assert not c.report.unknown
    assert c.subs(**at).flops == ops
    per_location, per_channel = grid_sample_rates(dims, mode, padding, align)
    locations = sp.Mul(*(sp.Symbol(s, integer=True, positive=True) for s in
                         ("B", "P", "Q", "R")[:dims + 1]))
    channels = sp.Symbol("C", integer=True, positive=True)
    assert sp.expand(c.flops.subs({s: sp.Symbol(s.name, integer=True, positive=True)
                                   for s in c.flops.free_symbols})
                     - locations * (per_location + per_channel * channels)) == 0


def test_torch_convention_is_flop_counter_mode() -> None:
    # FlopCounterMode has no grid_sampler formula: it counts 0, as symflops' torch and macs
    x, grid = torch.randn(2, 3, 8, 8), torch.rand(2, 5, 5, 2) * 2 - 1
    with FlopCounterMode(display=False) as fc:
        F.grid_sample(x, grid, align_corners=False)
    assert fc.get_total_flops() == 0
    c = sf.trace(Sample("bilinear", "zeros", False), INPUTS[2], convention="torch", warn=False)
    assert c.flops == 0 and c.with_convention("macs").flops == 0
    assert "0 under torch and macs" in c.children[0].derivation.explanation


def test_refusals() -> None:
    with pytest.raises(sf.SymflopsError, match="2-d only"):
        grid_sample_rates(3, "bicubic", "zeros", False)
    with pytest.raises(sf.SymflopsError, match="padding"):
        grid_sample_rates(2, "bilinear", "circular", False)
    with pytest.raises(sf.SymflopsError, match="2-d or 3-d"):
        grid_sample_rates(1, "bilinear", "zeros", False)

