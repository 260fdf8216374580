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
from symflops.formulas.arith import Size, Work, exact_div, work
from symflops.formulas.derivation import Derivation

__all__ = ["row_stats", "batch_norm_work", "layer_norm_work", "group_norm_work",
           "rms_norm_work", "norm_params", "batch_norm_derivation", "layer_norm_derivation",
           "group_norm_derivation", "rms_norm_derivation", "layer_norm_grad_derivations",
           "batch_norm_grad_derivations", "group_norm_grad_derivations",
           "rms_norm_grad_derivations", "running_stats_derivation"]

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


# ------------------------------------------------------------------ the other gradients
# Gradients of BatchNorm, GroupNorm and RMSNorm, counted op by op as torch's
# decompositions compute them (``torch/_decomp/decompositions.py``:
# ``native_batch_norm_backward``, ``native_group_norm_backward``,
# ``_fused_rms_norm_backward``).
#
# Counting convention (the same as LayerNorm's gradient in :mod:`symflops.formulas.norm`):
# an elementwise op counts once per element of its (broadcast) result, a sum of ``n``
# values into one counts ``n - 1`` adds, dtype casts and views count nothing. Only what a
# requested output needs is counted (the CPU kernels skip the rest), and an intermediate
# that several requested outputs share is counted once, in the first of ``grad_input``,
# ``grad_weight``, ``grad_bias`` that is requested.

#: spatial positions of a group norm (the same symbol as its forward's)
P = sym.symbol("P")

Mask = tuple[bool, bool, bool]


def _parts(general: dict[str, Work], bindings: dict[sp.Symbol, Size],
           explain: dict[str, str]) -> dict[str, Derivation]:
    """One Derivation per part with arithmetic left to count (a part whose every value a
    previous part already computed, e.g. BatchNorm's grad_bias after grad_input, is none)."""
    return {part: Derivation(dict(w), sp.Integer(0), dict(bindings), explain[part])
            for part, w in general.items() if w}


@cache
def _batch_norm_grad_general(training: bool, mask: Mask) -> dict[str, Work]:
    m, c = sym.M, sym.C
    inp, weight, bias = mask
    # Per channel of M/C values (hand count of native_batch_norm_backward):
    #   grad_output_sum = sum(g)                            M - C
    #   dot_p = sum(g * (x - mean))                         3M - C
    # training, grad_input:
    #   grad_mean = grad_output_sum * norm                  C
    #   proj_scale = (dot_p * norm) * (invstd * invstd)     3C
    #   grad_scale = invstd * weight (or * 1.0)             C
    #   proj = (x - mean) * proj_scale                      2M
    #   ((g - proj) - grad_mean) * grad_scale               3M
    #   with both sums: 9M + 3C; grad_weight = dot_p * invstd (C); grad_bias the sum.
    # inference (running statistics): invstd = rsqrt(var + eps) (2C), grad_scale (C),
    #   g * grad_scale (M): M + 3C; grad_weight needs dot_p and invstd.
    out: dict[str, Work] = {}
    if training:
        if inp:
            out["grad_input"] = work(elementwise=9 * m + 3 * c)
        if weight:
            out["grad_weight"] = work(elementwise=c if inp else 3 * m)
        if bias:
            out["grad_bias"] = work(elementwise=0 if inp else m - c)
    else:
        if inp:
            out["grad_input"] = work(elementwise=m + 3 * c)
        if weight:
            out["grad_weight"] = work(elementwise=3 * m if inp else 3 * m + 2 * c)
        if bias:
            out["grad_bias"] = work(elementwise=m - c)
    return out


def batch_norm_grad_derivations(numel: Size, channels: Size, *, training: bool = True,
                                weight: bool = True, bias: bool = True,
                                output_mask: Mask = (True, True, True)
                                ) -> dict[str, Derivation]:
    """BatchNorm's gradients over ``M = numel`` elements in ``C = channels`` channels
    (``native_batch_norm_backward``), one per requested output with arithmetic of its own:

    * training, ``grad_input``: the two per-channel sums of ``g`` and ``g (x - mean)``
      (``4M - 2C``), the projection and the fused update: ``9M + 3C``; ``grad_weight``
      then ``dot_p * invstd`` (``C``), and ``grad_bias`` is the sum already made;
    * inference statistics: ``grad_input = g * invstd * w``: ``M + 3C`` (the rsqrt of the
      running variance included);
    * alone, ``grad_weight`` is ``3M`` and ``grad_bias`` ``M - C``.

    >>> d = batch_norm_grad_derivations(180, 6, output_mask=(False, True, True))
    >>> d["grad_weight"].work, d["grad_bias"].work
    ({'elementwise': 540}, {'elementwise': 174})

    >>> d = batch_norm_grad_derivations(180, 6)
    >>> {k: v.work for k, v in d.items()}
    {'grad_input': {'elementwise': 1638}, 'grad_weight': {'elementwise': 6}}
    """
    mask = (bool(output_mask[0]), bool(output_mask[1]) and weight,
            bool(output_mask[2]) and bias)
    stats = "batch" if training else "running"
    explain = {"grad_input": f"grad_input ({stats} statistics): per-channel sums of g and "
                             "g (x - mean), then the fused update"
                             + (" (9 M + 3 C)" if training else " g invstd w (M + 3 C)"),
               "grad_weight": "grad_weight: sum of g (x - mean), times invstd, per channel",
               "grad_bias": "grad_bias: g summed per channel"}
    return _parts(_batch_norm_grad_general(bool(training), mask),
                  {sym.M: numel, sym.C: channels}, explain)


@cache
def _group_norm_grad_general(weight: bool, mask: Mask) -> dict[str, Work]:
    b, g, c = sym.B, sym.groups, sym.C
    t = b * c * P
    inp, dw, db = mask
    w = 1 if weight else 0
    # native_group_norm_backward, hand count (T = B C P elements, B C channel rows, B G
    # groups):
    #   ds = sum_P(g * x): 2T - BC;  db = sum_P(g): T - BC  (shared; ds not for grad_bias)
    #   grad_input: ds_val, db_val = sum over the C/G channels of ds (* gamma), db (* gamma):
    #     2 (BC - BG) + 2 w BC;  c1 = rstd * gamma (or * ones): BC;
    #     c2 = (db_val mean - ds_val) rstd rstd rstd s: 6 BG;
    #     c3 = -c2 mean - db_val rstd s: 5 BG;  g c1 + x c2 + c3: 4T
    #     -> 4T + (3 + 2w) BC + 9 BG, and 7T + (1 + 2w) BC + 9 BG with ds and db
    #   grad_weight: ((ds - db mean) rstd) summed over B: 3BC + (B - 1) C
    #   grad_bias: db summed over B: (B - 1) C
    out: dict[str, Work] = {}
    if inp:
        out["grad_input"] = work(elementwise=7 * t + (1 + 2 * w) * b * c + 9 * b * g)
    if dw:
        out["grad_weight"] = work(elementwise=(0 if inp else 3 * t - 2 * b * c)
                                  + 3 * b * c + (b - 1) * c)
    if db:
        out["grad_bias"] = work(elementwise=(0 if inp or dw else t - b * c) + (b - 1) * c)
    return out


def group_norm_grad_derivations(batch: Size, num_groups: Size, channels: Size,
                                spatial: Size, *, weight: bool = True,
                                output_mask: Mask = (True, True, True)
                                ) -> dict[str, Derivation]:
    """GroupNorm's gradients (``native_group_norm_backward``): ``B`` images, ``groups``
    groups of ``C/groups`` channels of ``P`` positions, ``T = B C P`` elements.

    * ``grad_input``: per channel the sums of ``g x`` and ``g`` (``3T - 2BC``), per group
      the reduced coefficients (``2BC - 2BG``, ``+ 2BC`` with a weight, ``+ BC`` for
      ``rstd * gamma``, ``11 BG``), then ``g c1 + x c2 + c3`` (``4T``):
      ``7T + (1 + 2w) BC + 9 BG``;
    * ``grad_weight``: ``(ds - db mean) rstd`` summed over the batch: ``3BC + (B - 1) C``
      (plus the sums ``3T - 2BC`` alone);
    * ``grad_bias``: ``db`` summed over the batch: ``(B - 1) C`` (plus ``T - BC`` alone).

    >>> d = group_norm_grad_derivations(2, 3, 6, 5)
    >>> [v.work["elementwise"] for v in d.values()]
    [510, 42, 6]
    """
    mask = (bool(output_mask[0]), bool(output_mask[1]) and weight, bool(output_mask[2]))
    explain = {"grad_input": "grad_input: per-channel sums of g x and g, per-group "
                             "coefficients, then g c1 + x c2 + c3",
               "grad_weight": "grad_weight: (sum g x - mean sum g) rstd, summed over the batch",
               "grad_bias": "grad_bias: g summed per channel"}
    return _parts(_group_norm_grad_general(bool(weight), mask),
                  {sym.B: batch, sym.groups: num_groups, sym.C: channels, P: spatial}, explain)


@cache
def _rms_norm_grad_general(weight: bool, inp: bool, dw: bool) -> dict[str, Work]:
    m, n = sym.M, sym.dim
    w = 1 if weight else 0
    # _fused_rms_norm_backward, hand count per row of n:
    #   g' = g * weight (w n), x_hat = x * rstd (n, shared with grad_weight),
    #   sum(x_hat * g') (n + n - 1), (g' - (x_hat / n) * sum) * rstd (4n)
    #   -> grad_input (7 + w) n - 1 per row
    #   grad_weight: g * x_hat summed over the M rows: (2M - 1) n (+ M n for x_hat alone)
    out: dict[str, Work] = {}
    if inp:
        out["grad_input"] = work(elementwise=m * ((7 + w) * n - 1))
    if dw:
        out["grad_weight"] = work(elementwise=(2 * m - 1) * n + (0 if inp else m * n))
    return out


def rms_norm_grad_derivations(rows: Size, n: Size, *, weight: bool = True,
                              output_mask: tuple[bool, bool] = (True, True)
                              ) -> dict[str, Derivation]:
    """RMSNorm's gradients over ``M = rows`` rows of ``dim = n`` (``_fused_rms_norm_backward``):

    * ``grad_input``: ``x_hat = x rstd`` (1), ``g w`` (w), ``x_hat g'`` and its row sum
      (``2 dim - 1`` per row), ``(g' - x_hat / dim * sum) * rstd`` (4): ``M ((7 + w) dim - 1)``;
    * ``grad_weight``: ``g x_hat`` summed over rows: ``(2M - 1) dim`` (``+ M dim`` for
      ``x_hat`` when grad_input is not requested).

    >>> d = rms_norm_grad_derivations(4, 6)
    >>> d["grad_input"].work, d["grad_weight"].work
    ({'elementwise': 188}, {'elementwise': 42})
    """
    inp, dw = bool(output_mask[0]), bool(output_mask[1]) and weight
    explain = {"grad_input": "grad_input: (7 + w) dim - 1 per row of dim (w = 1 with a "
                             "weight): x_hat, the row sum of g' x_hat and the update",
               "grad_weight": "grad_weight: grad times x_hat, summed over the M rows"}
    return _parts(_rms_norm_grad_general(bool(weight), inp, dw), {sym.M: rows, sym.dim: n},
                  explain)


@cache
def _running_stats_general() -> Work:
    return work(elementwise=7 * sym.C)


def running_stats_derivation(channels: Size) -> Derivation:
    """The running-statistics update of a BatchNorm forward in training (torch's
    ``native_batch_norm`` decomposition), per channel: ``momentum * mean + (1 - momentum)
    * running_mean`` (3), the unbiased variance ``var * n / (n - 1)`` (1) and ``momentum *
    var + (1 - momentum) * running_var`` (3): ``7 C``.

    >>> running_stats_derivation(6).work
    {'elementwise': 42}
    """
    return Derivation(dict(_running_stats_general()), sp.Integer(0), {sym.C: channels},
                      "running statistics update in training: 3 for the mean, 4 for the "
                      "unbiased variance, per channel (7 C)")
