"""The seed article's formulas (DESIGN.md section 1), each under the convention it uses,
with its two wrong parameter formulas shown to differ from symflops' where they are wrong.

N = H*W tokens, dim the model width, one image (B = 1) as in the article.
"""

from __future__ import annotations

import sympy as sp

import symflops as sf
from symflops.conventions import (
    KINDS,
    Convention,
    get_convention,
    register_convention,
    unregister_convention,
)
from symflops.symbols import C, C_in, C_out, H, I, K, N, O, W, dim, heads, mlp_ratio


def _eq(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.expand(a - b) == 0


# ------------------------------------------------------------------------------- conv
def test_conv_flops_exact_is_the_articles() -> None:
    # article: [C_in K K + (C_in K K - 1) + 1] W H C_out  (multiplies, adds, bias)
    article = ((C_in * K * K) + (C_in * K * K - 1) + 1) * W * H * C_out
    c = sf.nn.Conv2d(C_in, C_out, K, padding="same").cost((1, C_in, H, W))
    assert _eq(c.flops, article)
    assert _eq(c.flops, 2 * C_in * K**2 * H * W * C_out)


def test_conv_vision_macs_drop_the_2() -> None:
    # vision papers: C_in K^2 H W C_out ("FLOPs" that are MACs)
    c = sf.nn.Conv2d(C_in, C_out, K, padding="same").cost((1, C_in, H, W), convention="macs")
    assert _eq(c.flops, C_in * K**2 * H * W * C_out)
    assert c.convention.label == "MACs"
    # torch counts 2 per MAC: equal to the article's exact count when the bias is on
    t = c.with_convention("torch")
    assert _eq(t.flops, 2 * C_in * K**2 * H * W * C_out)


def test_conv_params_article_formula_is_wrong() -> None:
    c = sf.nn.Conv2d(C_in, C_out, K).cost((1, C_in, H, W))
    ours = C_out * (C_in * K * K + 1)  # one bias per output channel
    article = C_in * (C_out * K * K + 1)  # the article's: one bias per input channel
    assert _eq(c.params, ours)
    assert not _eq(c.params, article)
    # they agree only when C_in == C_out: e.g. 3 -> 64 channels, 3x3 differ by 61
    at = {C_in: 3, C_out: 64, K: 3}
    assert c.params.xreplace(at) == 64 * 28 == 1792
    assert article.xreplace(at) == 3 * (64 * 9 + 1) == 1731


# ---------------------------------------------------------------------------- pooling
def test_pooling_no_params_flops_are_window_reductions() -> None:
    p = sf.nn.MaxPool2d(2).cost((1, C, H, W))
    assert p.params == 0
    # 2x2 window: 3 compares per output, H/2 x W/2 outputs per channel
    assert _eq(p.flops, 3 * C * sp.floor(H / 2) * sp.floor(W / 2))
    assert p.with_convention("macs").flops == 0


# ----------------------------------------------------------------------------- linear
def test_fully_connected() -> None:
    c = sf.nn.Linear(I, O).cost((1, I))
    # params (I + 1) O; FLOPs [I + (I - 1) + 1] O = 2 I O
    assert _eq(c.params, (I + 1) * O)
    assert _eq(c.flops, (I + (I - 1) + 1) * O)
    assert _eq(c.flops, 2 * I * O)
    assert _eq(c.with_convention("macs").flops, I * O)


# -------------------------------------------------------------------------- batchnorm
def test_batchnorm_inference() -> None:
    c = sf.nn.BatchNorm2d(C).cost((1, C, H, W))
    # one multiply and one add per element: 2 C H W; params 2 C
    assert _eq(c.flops, 2 * C * H * W)
    assert _eq(c.params, 2 * C)
    assert c.with_convention("macs").flops == 0


# ------------------------------------------------------------------------ transformer
def test_transformer_macs_article_terms_plus_out_projection() -> None:
    """MACs of one block's attention and FFN with N = H*W tokens (the article's setting)."""
    block = sf.nn.TransformerBlock(dim, heads, mlp_ratio=mlp_ratio)
    c = block.cost((1, N, dim), convention="macs")
    att = c["attention"]
    qkv = 3 * N * dim**2                       # article: QKV projections
    scores = heads * N * (dim / heads) * N     # article: Q K^T
    context = heads * N * (dim / heads) * N    # article: attention . V, the same
    ffn = 2 * N * dim**2 * mlp_ratio           # article: FFN
    out_proj = N * dim**2                      # the article leaves this out
    assert _eq(att["mha"]["qkv"].flops, qkv)
    assert _eq(att["mha"]["scores"].flops, scores)
    assert _eq(att["mha"]["context"].flops, context)
    assert _eq(att["mha"]["out_proj"].flops, out_proj)
    assert _eq(c["mlp"].flops, ffn)
    assert _eq(c.flops, qkv + scores + context + ffn + out_proj)
    # the article's sum is short by exactly the output projection
    assert _eq(c.flops - (qkv + scores + context + ffn), N * dim**2)
    # with N = H*W tokens
    hw = c.subs(N=H * W)
    assert _eq(hw.flops, (qkv + scores + context + ffn + out_proj).xreplace({N: H * W}))


def test_transformer_exact_includes_softmax() -> None:
    c = sf.nn.MultiheadAttention(dim, heads).cost((1, N, dim))
    # the exact count has the softmax the article leaves out: heads N rows of 5N - 2
    assert _eq(c["softmax"].flops, heads * N * (5 * N - 2))
    assert c["softmax"].with_convention("torch").flops == 0


# ------------------------------------------------------------------------- layernorm
def test_layernorm_affine_under_a_user_convention() -> None:
    conv = Convention("article_no_stats", {k: 1 for k in KINDS if k != "norm_stats"},
                      "exact without normalization statistics")
    register_convention(conv, replace=True)
    try:
        assert get_convention("article_no_stats") is conv
        c = sf.nn.LayerNorm(dim).cost((N, dim), convention="article_no_stats")
        # the article: FLOPs 2 N dim (the affine part only)
        assert _eq(c.flops, 2 * N * dim)
        # the exact convention adds the statistics, 5 dim + 2 per row
        assert _eq(c.with_convention("exact").flops, 2 * N * dim + N * (5 * dim + 2))
    finally:
        unregister_convention("article_no_stats")


def test_layernorm_params_article_formula_is_wrong() -> None:
    c = sf.nn.LayerNorm(dim).cost((N, dim))
    assert _eq(c.params, 2 * dim)      # weight and bias, dim each
    article = N * 2                    # the article: 2 per token
    assert not _eq(c.params, article)
    assert N not in c.params.free_symbols
