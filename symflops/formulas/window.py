"""Window attention (Swin) and patch merging.

Swin's window attention on a ``B x H x W x C`` map, ``M x M`` windows, ``h`` heads (``H``
and ``W`` already padded up to multiples of ``M``: ``n_W = H W / M^2`` windows of ``M^2``
tokens each), counted as torchvision's ``shifted_window_attention`` computes it:

* ``qkv`` and ``proj``: linear layers over the ``B H W`` tokens (``3 C^2`` and ``C^2``
  MACs per token);
* ``q_scale``: ``q`` times ``head_dim^-1/2``, one multiply per element of ``q``: ``B H W C``;
* ``scores`` ``Q K^T`` and ``context`` ``A V`` per window and head: ``B n_W h M^2 M^2
  (C/h) = B H W M^2 C`` MACs each;
* ``bias``: the relative position bias (a learned ``(2M - 1)^2 x h`` table, gathered: a
  copy) added to every score: ``B H W h M^2`` adds;
* ``mask`` (shifted windows only): the shift mask is built per forward (for each of the
  ``n_W M^4`` token pairs a subtract and two compares, batch-independent) and added to
  every score: ``H W M^2 (B h + 3)``;
* ``softmax`` over each of the ``B H W h`` rows of ``M^2`` scores: ``5 M^2 - 2`` each.

In MACs (``macs`` convention) this is Swin's ``Omega(W-MSA) = 4 h w C^2 + 2 M^2 h w C``
(Liu et al. 2021, eq. 2, per image), next to global attention's ``Omega(MSA) = 4 h w C^2
+ 2 (h w)^2 C`` (eq. 1).

Patch merging concatenates each 2 x 2 neighbourhood (after padding ``H``, ``W`` to even):
a copy, then a LayerNorm over ``4 C`` and a ``4 C -> 2 C`` linear layer without bias.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, ceildiv, exact_div, work
from symflops.formulas.attention import attention_parts
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import matmul_grad_derivations
from symflops.formulas.pointwise import elementwise_derivation, softmax_grad_derivation
from symflops.formulas.resize import reduction_derivation

__all__ = ["window", "window_padded", "window_attention_parts",
           "window_attention_derivations", "relative_bias_params", "patch_merging_size",
           "window_attention_grad_derivations"]

#: the side ``M`` of a square attention window (Swin writes M)
window = sym.symbol("window")


def window_padded(size: Size, window_size: Size) -> Size:
    """``size`` padded up to a multiple of the window, as torchvision pads.

    >>> window_padded(56, 7), window_padded(30, 7)
    (56, 35)
    """
    return ceildiv(size, window_size) * window_size


def patch_merging_size(size: Size) -> Size:
    """The size after patch merging: padded to even, then halved (``ceil(size / 2)``).

    >>> patch_merging_size(56), patch_merging_size(7)
    (28, 4)
    """
    return ceildiv(size, 2)


def relative_bias_params(window_size: Size, heads: Size) -> Size:
    """The relative position bias table: ``(2M - 1)^2`` offsets per head.

    >>> relative_bias_params(7, 3)
    507
    """
    return (2 * window_size - 1) ** 2 * heads


def window_attention_parts(batch: Size, height: Size, width: Size, dim: Size, heads: Size,
                           window_size: Size, *, shifted: bool = False) -> dict[str, Work]:
    """Work of the parts of window attention between its two projections, on a
    ``batch x height x width x dim`` map already padded to multiples of ``window_size``.

    >>> parts = window_attention_parts(1, 14, 14, 96, 3, 7)
    >>> parts["scores"]["matmul_mul"] == 14 * 14 * 7**2 * 96
    True
    """
    tokens = batch * height * width
    n = window_size ** 2
    att = attention_parts(batch * exact_div(height * width, n), heads, n, n,
                          exact_div(dim, heads), scale=False)
    scores = tokens * heads * n
    parts = {"q_scale": work(elementwise=tokens * dim), "scores": att["scores"],
             "bias": work(elementwise=scores)}
    if shifted:
        parts["mask"] = work(elementwise=scores + 3 * height * width * n)
    parts.update(softmax=att["softmax"], context=att["context"])
    return parts


@cache
def _window_general(shifted: bool) -> dict[str, Work]:
    return window_attention_parts(sym.B, sym.H, sym.W, sym.dim, sym.heads, window,
                                  shifted=shifted)


_EXPLAIN = {
    "q_scale": "q times head_dim^-1/2: one multiply per element of q (B*H*W*dim)",
    "scores": "Q K^T in each of the H*W/window^2 windows: window^2 x window^2 scores per "
              "head, dot products of length dim/heads",
    "bias": "the relative position bias (a (2 window - 1)^2 x heads table, gathered: a copy) "
            "added to every score",
    "mask": "the shift mask built per forward (a subtract and two compares per token pair "
            "of each window, batch-independent) and added to every score",
    "softmax": "softmax over each row of window^2 scores (5 window^2 - 2 per row)",
    "context": "A V in each window: window^2 x dim/heads outputs per head, dot products of "
               "length window^2",
}


def window_attention_derivations(batch: Size, height: Size, width: Size, dim: Size,
                                  heads: Size, window_size: Size, *,
                                  shifted: bool = False) -> dict[str, Derivation]:
    """The derivations of window attention's parts (:func:`window_attention_parts`),
    written in ``B, H, W, dim, heads, window`` (``H, W`` padded to multiples of the
    window); the relative position bias table's parameters sit on ``bias``.

    >>> d = window_attention_derivations(1, 56, 56, 96, 3, 7)
    >>> d["bias"].general_params, d["bias"].params
    (heads*(2*window - 1)**2, 507)
    """
    bindings = {sym.B: batch, sym.H: height, sym.W: width, sym.dim: dim, sym.heads: heads,
                window: window_size}
    general = _window_general(bool(shifted))
    return {part: Derivation(dict(g), sp.sympify(relative_bias_params(window, sym.heads))
                             if part == "bias" else sp.Integer(0), bindings, _EXPLAIN[part])
            for part, g in general.items()}


def window_attention_grad_derivations(batch: Size, height: Size, width: Size, dim: Size,
                                      heads: Size, window_size: Size
                                      ) -> dict[str, Derivation]:
    """The gradients of window attention between its two projections, on a map padded to
    multiples of the window, as autograd runs torchvision's ``shifted_window_attention``
    (``T = B H W`` tokens in windows of ``n = M^2``, ``S = T heads n`` scores):

    * ``A V``: ``grad_probs = dO V^T`` and ``grad_v = A^T dO`` (two bmm);
    * the softmax's gradient, ``4 n - 1`` per row of ``n``;
    * the relative position bias, broadcast over the windows: its gradient summed over
      them (``S - heads n^2`` adds; gathering it back into the table moves values);
    * ``Q K^T``: ``grad_q = dS K``, ``grad_k = dS^T Q`` (two bmm);
    * the query's scale, one multiply per query element (``T dim``);
    * ``q, k, v`` sliced from the fused projection: their gradients written into one
      tensor of ``3 T dim`` elements and added, 2 adds per element.

    The shift's mask and roll and the window partition move values or add constants:
    nothing to differentiate.

    >>> d = window_attention_grad_derivations(1, 4, 4, 8, 2, 2)
    >>> d["grad_bias"].work, d["grad_qkv_split"].work
    ({'elementwise': 96}, {'elementwise': 768})
    """
    tokens, n = batch * height * width, window_size ** 2
    rows = exact_div(tokens, n) * heads
    head_dim = exact_div(dim, heads)
    out = matmul_grad_derivations(rows, n, n, head_dim, names=("grad_probs", "grad_v"))
    out["grad_softmax"] = softmax_grad_derivation(rows * n, n)
    out["grad_bias"] = reduction_derivation("sum", rows * n * n, heads * n * n)
    out.update(matmul_grad_derivations(rows, n, head_dim, n, names=("grad_q", "grad_k")))
    out["grad_q_scale"] = elementwise_derivation(tokens * dim, 1, "the query scale's "
                                                                  "gradient: 1 per element")
    out["grad_qkv_split"] = elementwise_derivation(
        tokens * 3 * dim, 2, "q, k, v's gradients written into the fused projection's "
                             "output and added: 2 per element")
    return out
