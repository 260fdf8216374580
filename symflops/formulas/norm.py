"""Normalization layers.

Statistics of one row of ``n`` values, in the exact convention (hand count):
mean ``n - 1`` adds + 1 divide = ``n``; variance ``n`` subtracts + ``n`` squares +
``n - 1`` adds + 1 divide = ``3n``; ``+ eps`` and ``rsqrt`` = 2; normalize ``n``
multiplies. Together ``5n + 2`` per row (kind ``norm_stats``).
The affine part is one multiply and one add per element (kind ``norm_affine``).

BatchNorm at inference folds running statistics and affine into one multiply
and one add per element: ``2 * numel`` (the seed article's ``2 C H W``).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas._arith import Size, Work, exact_div, work
from symflops.formulas.derivation import Derivation

__all__ = ["row_stats", "batch_norm_work", "layer_norm_work", "group_norm_work",
           "rms_norm_work", "norm_params", "batch_norm_derivation", "layer_norm_derivation",
           "group_norm_derivation", "rms_norm_derivation", "layer_norm_grad_derivations"]

#: spatial positions of a group norm (``prod`` of the dims after the channels)
P = sym.symbol("P")


def row_stats(rows: Size, n: Size) -> Size:
    """``rows * (5 n + 2)``: mean, variance, rsqrt and normalize of each row of ``n``."""
    return rows * (5 * n + 2)


def batch_norm_work(numel: Size, channels: Size, *, training: bool = False,
                    affine: bool = True) -> Work:
    """BatchNorm over ``numel`` elements in ``channels`` channels.

    Inference (default): statistics are constants, folded with the affine into a
    per-channel ``a * x + b``: ``2 * numel``. Training: per-channel statistics over
    ``numel / channels`` values, then the affine if present.
    """
    if not training:
        return work(norm_affine=2 * numel)
    return work(norm_stats=row_stats(channels, exact_div(numel, channels)),
                norm_affine=2 * numel if affine else 0)


def layer_norm_work(rows: Size, n: Size, *, affine: bool = True, bias: bool = True) -> Work:
    """LayerNorm of ``rows`` rows of ``n``: statistics, then ``x * w (+ b)`` if affine."""
    per_element = (2 if bias else 1) if affine else 0
    return work(norm_stats=row_stats(rows, n), norm_affine=per_element * rows * n)


def group_norm_work(batch: Size, num_groups: Size, channels: Size, spatial: Size, *,
                    affine: bool = True) -> Work:
    """GroupNorm: statistics over each of ``batch * num_groups`` groups, per-channel affine."""
    numel = batch * channels * spatial
    return work(norm_stats=row_stats(batch * num_groups,
                                               exact_div(channels, num_groups) * spatial),
                norm_affine=2 * numel if affine else 0)


def rms_norm_work(rows: Size, n: Size, *, affine: bool = True) -> Work:
    """RMSNorm of ``rows`` rows of ``n``: ``n`` squares, ``n - 1`` adds, divide, ``+ eps``,
    rsqrt, ``n`` multiplies = ``3n + 2`` per row; the weight is ``n`` more multiplies."""
    return work(norm_stats=rows * (3 * n + 2), norm_affine=rows * n if affine else 0)


def norm_params(features: Size, *, affine: bool = True, bias: bool = True) -> Size:
    """``2 * features`` (weight and bias), ``features`` without bias, 0 without affine.

    The seed article writes LayerNorm's parameters as ``N * 2``; they do not depend on
    the number of tokens: a LayerNorm over ``dim`` has ``2 * dim``.
    """
    if not affine:
        return 0
    return features * (2 if bias else 1)


@cache
def _batch_norm_general(training: bool, affine: bool) -> tuple[Work, sp.Expr]:
    return (batch_norm_work(sym.M, sym.C, training=training, affine=affine),
            sp.sympify(norm_params(sym.C, affine=affine)))


def batch_norm_derivation(numel: Size, channels: Size, *, training: bool = False,
                          affine: bool = True) -> Derivation:
    """The derivation of BatchNorm over ``M = numel`` elements in ``C = channels``.

    >>> batch_norm_derivation(24, 3).work
    {'norm_affine': 48}
    """
    general, params = _batch_norm_general(bool(training), bool(affine))
    explanation = ("training: per-channel mean and variance over M/C values, then the affine"
                   if training else "inference: running statistics and affine folded into "
                   "a*x + b, one multiply and one add per element")
    return Derivation(dict(general), params, {sym.M: numel, sym.C: channels}, explanation)


@cache
def _layer_norm_general(affine: bool, bias: bool) -> tuple[Work, sp.Expr]:
    return (layer_norm_work(sym.M, sym.dim, affine=affine, bias=bias),
            sp.sympify(norm_params(sym.dim, affine=affine, bias=bias)))


def layer_norm_derivation(rows: Size, n: Size, *, affine: bool = True,
                          bias: bool = True) -> Derivation:
    """The derivation of LayerNorm over ``M = rows`` rows of ``dim = n`` values.

    >>> layer_norm_derivation(2, 4).work
    {'norm_stats': 44, 'norm_affine': 16}
    """
    general, params = _layer_norm_general(bool(affine), bool(bias))
    return Derivation(dict(general), params, {sym.M: rows, sym.dim: n},
                      "per row of dim: mean, variance, rsqrt, normalize (5 dim + 2), then the "
                      "affine x*w + b")


@cache
def _group_norm_general(affine: bool) -> tuple[Work, sp.Expr]:
    return (group_norm_work(sym.B, sym.groups, sym.C, P, affine=affine),
            sp.sympify(norm_params(sym.C, affine=affine)))


def group_norm_derivation(batch: Size, num_groups: Size, channels: Size, spatial: Size, *,
                          affine: bool = True) -> Derivation:
    """The derivation of GroupNorm: ``B`` images, ``groups`` groups of ``C/groups``
    channels, ``P = spatial`` positions per channel.

    >>> group_norm_derivation(1, 2, 4, 3).work
    {'norm_stats': 64, 'norm_affine': 24}
    """
    general, params = _group_norm_general(bool(affine))
    return Derivation(dict(general), params,
                      {sym.B: batch, sym.groups: num_groups, sym.C: channels, P: spatial},
                      "statistics over each of B*groups groups of C/groups*P values (P = "
                      "spatial positions), then the per-channel affine")


@cache
def _rms_norm_general(affine: bool) -> tuple[Work, sp.Expr]:
    return (rms_norm_work(sym.M, sym.dim, affine=affine),
            sp.sympify(norm_params(sym.dim, affine=affine, bias=False)))


def rms_norm_derivation(rows: Size, n: Size, *, affine: bool = True) -> Derivation:
    """The derivation of RMSNorm over ``M = rows`` rows of ``dim = n`` values.

    >>> rms_norm_derivation(2, 4).work
    {'norm_stats': 28, 'norm_affine': 8}
    """
    general, params = _rms_norm_general(bool(affine))
    return Derivation(dict(general), params, {sym.M: rows, sym.dim: n},
                      "per row of dim: squares, sum, mean, + eps, rsqrt, scale (3 dim + 2), "
                      "then the weight")


@cache
def _layer_norm_grad_general(weight: bool, weight_computes_x_hat: bool) -> dict[str, Work]:
    m, n = sym.M, sym.dim
    w = 1 if weight else 0
    return {
        # per element: x_hat 2, g*w (w), g' * dim, g' * x_hat, x_hat * sum, two subtracts,
        # times rstd/dim: 8 + w; per row: two sums (2 (dim - 1)) and rstd/dim (1)
        "grad_input": work(elementwise=m * ((10 + w) * n - 1)),
        # g * x_hat per element, summed over the M rows (x_hat: 2 more when grad_input
        # did not compute it)
        "grad_weight": work(elementwise=m * n * (3 if weight_computes_x_hat else 1) + (m - 1) * n),
        "grad_bias": work(elementwise=(m - 1) * n),
    }


def layer_norm_grad_derivations(rows: Size, n: Size, *, weight: bool = True,
                                bias: bool = True, output_mask: tuple[bool, bool, bool] = (
                                    True, True, True)) -> dict[str, Derivation]:
    """LayerNorm's gradients over ``M = rows`` rows of ``dim = n`` (torch's
    ``native_layer_norm_backward``), one per requested output:

    * ``grad_input``: ``x_hat = (x - mean) rstd`` (2), ``g' = g w`` (1 with a weight),
      ``g' dim`` (1), ``g' x_hat`` (1), ``x_hat sum(g' x_hat)`` (1), ``g' dim - sum(g') -
      ...`` (2), times ``rstd / dim`` (1): ``8 + w`` per element, and per row the two sums
      ``2 (dim - 1)`` and ``rstd / dim`` (1): ``M ((10 + w) dim - 1)``;
    * ``grad_weight``: ``g x_hat`` per element, summed over rows: ``(2 M - 1) dim``;
    * ``grad_bias``: ``g`` summed over rows: ``(M - 1) dim``.

    >>> d = layer_norm_grad_derivations(2, 4)
    >>> d["grad_input"].work, d["grad_weight"].work, d["grad_bias"].work
    ({'elementwise': 86}, {'elementwise': 12}, {'elementwise': 4})
    """
    general = _layer_norm_grad_general(bool(weight), not output_mask[0])
    wanted = {"grad_input": output_mask[0], "grad_weight": output_mask[1] and weight,
              "grad_bias": output_mask[2] and bias}
    explain = {"grad_input": "grad_input: (10 + w) dim - 1 per row of dim (w = 1 with a "
                             "weight): x_hat, the two row sums and the fused update",
               "grad_weight": "grad_weight: grad times x_hat, summed over the M rows",
               "grad_bias": "grad_bias: grad summed over the M rows"}
    return {part: Derivation(dict(general[part]), sp.Integer(0), {sym.M: rows, sym.dim: n},
                             explain[part]) for part, on in wanted.items() if on}
