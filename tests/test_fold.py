"""``nn.Unfold`` and ``nn.Fold`` traced symbolic (shape rules for ``im2col`` and
``col2im``, whose meta kernels fix every size), and Fold's sum of overlapping blocks counted
exactly: against a literal fold that counts the values reaching each output position
(``n - 1`` adds for ``n`` values) and reproduces torch's output, at sizes far apart."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.errors import SymflopsError  # noqa: E402
from symflops.formulas.resize import fold_derivation  # noqa: E402


def literal_fold(cols: torch.Tensor, size: tuple[int, int], k: int, p: int, s: int
                 ) -> tuple[torch.Tensor, int]:
    """col2im by hand: block (bh, bw)'s value at kernel offset (i, j) lands at
    ``(bh s - p + i, bw s - p + j)`` when inside; returns the output and the adds."""
    n, ck, _ = cols.shape
    c = ck // (k * k)
    h, w = size
    lh, lw = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.zeros(n, c, h, w, dtype=cols.dtype)
    hits = torch.zeros(h, w, dtype=torch.long)
    for bh, bw, i, j in itertools.product(range(lh), range(lw), range(k), range(k)):
        y, x = bh * s - p + i, bw * s - p + j
        if 0 <= y < h and 0 <= x < w:
            hits[y, x] += 1
            rows = [ch * k * k + i * k + j for ch in range(c)]
            out[:, :, y, x] += cols[:, rows, bh * lw + bw]
    adds = n * c * int((hits - 1).clamp(min=0).sum())
    return out, adds


class FoldBack(torch.nn.Module):
    """Unfold then fold back to the input's size (the pattern of T2T-ViT and TNT)."""

    def __init__(self, k: int, p: int, s: int) -> None:
        super().__init__()
        self.k, self.p, self.s = k, p, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = torch.nn.functional.unfold(x, self.k, padding=self.p, stride=self.s)
        return torch.nn.functional.fold(cols, x.shape[-2:], self.k, padding=self.p,
                                        stride=self.s)


@pytest.mark.parametrize("k,p,s", [(4, 1, 2), (3, 1, 1), (3, 0, 2), (2, 0, 2), (5, 2, 3)],
                         ids=lambda v: str(v))
def test_fold_is_symbolic_and_equals_a_literal_count(k: int, p: int, s: int) -> None:
    traced = sf.trace(FoldBack(k, p, s), "B 2 H W", warn=False)
    assert not traced.report.fixed and not traced.report.unknown
    for h, w in ((k + 1, k + 2), (9, 14), (31, 17), (64, 7 + k)):
        if h + 2 * p < k or w + 2 * p < k:
            continue
        x = torch.randn(1, 2, h, w)
        cols = torch.nn.functional.unfold(x, k, padding=p, stride=s)
        out, adds = literal_fold(cols, (h, w), k, p, s)
        torch.testing.assert_close(out, torch.nn.functional.fold(cols, (h, w), k, padding=p,
                                                                 stride=s))
        assert traced.subs(B=3, H=h, W=w).flops == 3 * adds


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 5), p=st.integers(0, 2), s=st.integers(1, 4),
       h=st.integers(1, 40), w=st.integers(1, 40))
def test_fold_formula_equals_the_literal_count(k: int, p: int, s: int, h: int, w: int) -> None:
    if p > k // 2 or h + 2 * p < k or w + 2 * p < k:
        return  # torch refuses these (padding over half the kernel, no block)
    lh, lw = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    cols = torch.randn(1, 2 * k * k, lh * lw)
    _, adds = literal_fold(cols, (h, w), k, p, s)
    d = fold_derivation(2, (h, w), (k, k), (1, 1), (p, p), (s, s))
    assert d.work.get("elementwise", 0) == adds


def test_unfold_keeps_its_block_bound_and_dilated_overlap_is_refused() -> None:
    traced = sf.trace(torch.nn.Unfold(kernel_size=16, stride=16), "B 3 H W", warn=False)
    assert not traced.report.fixed
    assert traced.subs(B=2, H=64, W=32).output_shape == (2, 768, 8)
    assert {str(c) for c in traced.validity} == {"H >= 16", "W >= 16"}
    with pytest.raises(SymflopsError, match="dilated"):
        fold_derivation(1, (9, 9), (3, 3), (2, 2), (0, 0), (1, 1))
