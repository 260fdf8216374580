"""Vision papers: MobileNet's depthwise-separable cost, Swin's attention complexities.

Each claim builds the paper's model from ``sf.nn`` layers with every size a symbol and
compares symbolically (see :mod:`symflops.papers`).
"""

from __future__ import annotations

import sympy as sp

from symflops import nn
from symflops.papers._claims import Claim, Paper, register_paper
from symflops.symbols import C, C_in, C_out, H, K, W, heads

__all__: list[str] = []


def _macs(layer: nn.Layer, shape: tuple[sp.Expr, ...]) -> sp.Expr:
    return layer.cost(shape, convention="macs").macs


def _separable_macs() -> sp.Expr:
    """Depthwise K x K (one filter per channel) then pointwise 1 x 1, on one image."""
    shape = (1, C_in, H, W)
    return (_macs(nn.Conv2d(C_in, C_in, K, padding="same", groups=C_in), shape)
            + _macs(nn.Conv2d(C_in, C_out, 1), shape))


def _standard_macs() -> sp.Expr:
    return _macs(nn.Conv2d(C_in, C_out, K, padding="same"), (1, C_in, H, W))


_MOBILENET_HOW = (
    "`sf.nn.Conv2d(C_in, C_in, K, padding='same', groups=C_in)` then `sf.nn.Conv2d(C_in, "
    "C_out, 1)` on one image `(1, C_in, H, W)`, against `sf.nn.Conv2d(C_in, C_out, K, "
    "padding='same')`; the paper's $D_K, M, N, D_F$ are $K, C_{in}, C_{out}$ and $H = W$.")

register_paper(Paper(
    "mobilenet",
    "Howard et al. 2017, *MobileNets: Efficient Convolutional Neural Networks for Mobile "
    "Vision Applications*",
    "Section 3.1, equations (5) and the reduction in computation",
    (
        Claim(
            "Depthwise separable convolution cost (eq. 5)", "multiply-adds", "macs",
            derived=_separable_macs,
            paper=lambda: K * K * C_in * H * W + C_in * C_out * H * W,
            paper_text="D_K \\cdot D_K \\cdot M \\cdot D_F \\cdot D_F + M \\cdot N \\cdot "
                       "D_F \\cdot D_F",
            how=_MOBILENET_HOW,
            example_name="a 14x14x512 MobileNet layer, 3x3 depthwise",
            example={"K": 3, "C_in": 512, "C_out": 512, "H": 14, "W": 14},
        ),
        Claim(
            "Reduction against a standard convolution", "ratio of multiply-adds", "macs",
            derived=lambda: sp.cancel(_separable_macs() / _standard_macs()),
            paper=lambda: 1 / C_out + 1 / K**2,
            paper_text="\\frac{1}{N} + \\frac{1}{D_K^2}",
            how=_MOBILENET_HOW + " The ratio is exact: no term is dropped.",
            example_name="a 14x14x512 MobileNet layer, 3x3 depthwise",
            example={"K": 3, "C_in": 512, "C_out": 512, "H": 14, "W": 14},
            published="8 to 9 times less computation with 3x3 kernels",
        ),
    ),
))


def _msa_macs() -> sp.Expr:
    return _macs(nn.MultiheadAttention(C, heads), (1, H * W, C))


register_paper(Paper(
    "swin",
    "Liu et al. 2021, *Swin Transformer: Hierarchical Vision Transformer using Shifted "
    "Windows*",
    "Section 3.2, equations (1) and (2)",
    (
        Claim(
            "Global multi-head self-attention, Omega(MSA) (eq. 1)", "multiply-adds", "macs",
            derived=_msa_macs,
            paper=lambda: 4 * H * W * C**2 + 2 * (H * W)**2 * C,
            paper_text="4hwC^2 + 2(hw)^2C",
            how="`sf.nn.MultiheadAttention(C, heads)` on the $h \\times w$ patches of one "
                "image, `(1, h w, C)`: the QKV and output projections give $4hwC^2$, $QK^T$ "
                "and $AV$ give $2(hw)^2C$. The paper drops the softmax, which the macs "
                "convention does not count either.",
            example_name="Swin-T stage 1 (56 x 56 patches, C = 96, 3 heads)",
            example={"H": 56, "W": 56, "C": 96, "heads": 3},
        ),
    ),
))

