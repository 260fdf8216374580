"""Convolution (direct and transposed): output sizes, parameters and work.

Hand derivation (direct convolution, one output element): a dot product of
``C_in/groups * prod(kernel)`` products, i.e. that many multiplies and one fewer
adds, then one bias add. Over ``B * C_out * prod(out)`` outputs, with
``n = C_in/groups * K^2``:  exact = (n + (n - 1) + 1) * outputs = 2 n * outputs,
the seed article's ``[C_in K K + (C_in K K - 1) + 1] W H C_out``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas._arith import (
    Size,
    Work,
    ceildiv,
    exact_div,
    floordiv,
    is_int,
    prod,
    smin,
    work,
)

__all__ = ["conv_output_size", "conv_params", "conv_work", "conv_transpose_output_size",
           "conv_transpose_work", "conv_transpose_covered"]


def conv_output_size(
    size: Size, kernel: Size, stride: Size = 1, padding: Size = 0, dilation: Size = 1
) -> Size:
    """``floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1`` (torch.nn.Conv*d).

    >>> conv_output_size(224, 7, 2, 3)
    112
    """
    return floordiv(size + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1


def conv_params(in_channels: Size, out_channels: Size, kernel: Sequence[Size], groups: Size = 1,
                bias: bool = True) -> Size:
    """``C_out * (C_in/groups * prod(kernel) + bias)``.

    The seed article writes ``C_in * (C_out K K + 1)``: that counts one bias per
    *input* channel; a conv has one bias per output channel.
    """
    weights = out_channels * exact_div(in_channels, groups) * prod(kernel)
    return weights + (out_channels if bias else 0)


def conv_work(batch: Size, in_channels: Size, out_channels: Size, kernel: Sequence[Size],
              out_spatial: Sequence[Size], groups: Size = 1, bias: bool = True) -> Work:
    """Work of a direct convolution producing ``batch x out_channels x out_spatial``."""
    n = exact_div(in_channels, groups) * prod(kernel)
    outputs = batch * out_channels * prod(out_spatial)
    return work(matmul_mul=n * outputs, matmul_add=(n - 1) * outputs,
                bias=outputs if bias else 0)


def conv_transpose_output_size(size: Size, kernel: Size, stride: Size = 1, padding: Size = 0,
                               output_padding: Size = 0, dilation: Size = 1) -> Size:
    """``(size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose_covered(size: Size, kernel: Size, stride: Size, dilation: Size) -> Size:
    """How many positions of the uncropped transposed-conv output receive a contribution.

    Input position ``i < size`` writes to ``i*stride + j*dilation`` for ``j < kernel``.
    When ``dilation`` divides ``stride`` (``m = stride/dilation``) the windows are runs of
    ``kernel`` starting every ``m`` (in units of ``dilation``):
    ``(size - 1) * min(m, kernel) + kernel``; when ``stride`` divides ``dilation`` the same
    holds with the roles of size and kernel exchanged. Other concrete strides and
    dilations go by residue classes (:func:`_covered_coprime`).

    >>> conv_transpose_covered(4, 3, 2, 1), conv_transpose_covered(3, 3, 1, 2)
    (9, 7)
    """
    if _divides(dilation, stride):
        return (size - 1) * smin(exact_div(stride, dilation), kernel) + kernel
    if _divides(stride, dilation):
        return (kernel - 1) * smin(exact_div(dilation, stride), size) + size
    if is_int(stride) and is_int(dilation):
        return _covered_coprime(size, kernel, int(stride), int(dilation))
    raise SymflopsError(
        "the exact add count of a transposed conv with a symbolic stride or dilation that "
        "do not divide one another is not supported",
        layer="ConvTranspose", values={"size": size, "kernel": kernel, "stride": stride,
                                       "dilation": dilation},
        fix="use concrete stride and dilation",
    )


def _covered_coprime(size: Size, kernel: Size, stride: int, dilation: int) -> Size:
    """Covered positions for any concrete stride and dilation.

    With ``g = gcd(stride, dilation)``, ``s = stride/g``, ``d = dilation/g`` (coprime),
    positions are ``g (i s + j d)``. Taps ``j`` in one residue class ``j0`` mod ``s``
    (``j = j0 + m s``, ``m < M = ceil((kernel - j0)/s)``) reach ``s (i + m d) + j0 d``:
    a stride-1, dilation-``d`` pattern with ``M`` taps, ``(M - 1) min(d, size) + size``
    positions; different classes never meet (``d`` is invertible mod ``s``).
    """
    g = math.gcd(stride, dilation)
    s, d = stride // g, dilation // g
    total: Size = 0
    for j0 in range(s):
        taps = ceildiv(kernel - j0, s)
        term = (taps - 1) * smin(d, size) + size
        if is_int(kernel):
            total = total + (term if j0 < int(kernel) else 0)
        else:
            total = total + sp.Piecewise((term, sp.Gt(kernel, j0)), (0, True))
    return total


def conv_transpose_work(batch: Size, in_channels: Size, out_channels: Size,
                        kernel: Sequence[Size], in_spatial: Sequence[Size],
                        out_spatial: Sequence[Size], stride: Sequence[Size],
                        dilation: Sequence[Size], groups: Size = 1, bias: bool = True) -> Work:
    """Work of a transposed convolution, counted the way it is computed (scatter).

    Every input element is multiplied by every weight of its group:
    ``B * C_in * prod(in) * C_out/groups * prod(kernel)`` MACs (the count torch's
    FlopCounterMode uses). A position that collects ``n`` contributions costs ``n - 1``
    adds, so adds = MACs - (covered positions) per output channel and batch.
    """
    macs = batch * in_channels * prod(in_spatial) * exact_div(out_channels, groups) * prod(kernel)
    covered = prod(conv_transpose_covered(s, k, st, d)
                   for s, k, st, d in zip(in_spatial, kernel, stride, dilation, strict=True))
    outputs = batch * out_channels * prod(out_spatial)
    return work(matmul_mul=macs, matmul_add=macs - batch * out_channels * covered,
                bias=outputs if bias else 0)


def _divides(d: Size, n: Size) -> bool:
    """True when ``d`` certainly divides ``n`` (1 divides everything; ints are checked)."""
    if d == 1 or d == n:
        return True
    return is_int(d) and is_int(n) and int(n) % int(d) == 0
