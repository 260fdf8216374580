"""Convolution (direct and transposed): output sizes, parameters and work.

Hand derivation (direct convolution, one output element): a dot product of
``C_in/groups * prod(kernel)`` products, i.e. that many multiplies and one fewer
adds, then one bias add. Over ``B * C_out * prod(out)`` outputs, with
``n = C_in/groups * K^2``:  exact = (n + (n - 1) + 1) * outputs = 2 n * outputs,
the seed article's ``[C_in K K + (C_in K K - 1) + 1] W H C_out``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import (
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
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import matmul_work
from symflops.formulas.pointwise import elementwise_work

__all__ = ["conv_output_size", "conv_params", "conv_work", "conv_transpose_output_size",
           "conv_transpose_work", "conv_transpose_covered", "conv_derivation",
           "conv_transpose_derivation", "conv_grad_derivations",
           "conv_transpose_grad_derivations", "CONV_EXPLANATION",
           "CONV_TRANSPOSE_EXPLANATION"]

#: what one output of a direct convolution costs (with and without the bias add)
CONV_EXPLANATION = {
    True: "each output: a dot product of C_in/groups*prod(kernel) products, its adds, "
          "and one bias add",
    False: "each output: a dot product of C_in/groups*prod(kernel) products and its adds",
}
CONV_TRANSPOSE_EXPLANATION = ("every input element times every weight of its group (scatter); "
                              "a position collecting n products costs n - 1 adds")


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


def _is_square(kernel: Sequence[Any]) -> bool:
    return len(set(kernel)) == 1


def _bindings(batch: Size, in_channels: Size, out_channels: Size, groups: Size,
              kernel: Sequence[Size]) -> dict[sp.Symbol, Any]:
    b: dict[sp.Symbol, Any] = {sym.B: batch, sym.C_in: in_channels, sym.C_out: out_channels,
                               sym.groups: groups}
    b.update(zip(sym.kernel_symbols(len(kernel), _is_square(kernel)), kernel, strict=True))
    return b


@cache
def _conv_general(n: int, square: bool, bias: bool) -> tuple[Work, sp.Expr]:
    ks = sym.kernel_symbols(n, square)
    general = conv_work(sym.B, sym.C_in, sym.C_out, ks, sym.spatial_out(n), sym.groups, bias)
    return general, sp.sympify(conv_params(sym.C_in, sym.C_out, ks, sym.groups, bias))


def conv_derivation(batch: Size, in_channels: Size, out_channels: Size,
                    kernel: Sequence[Size], out_spatial: Sequence[Size], groups: Size = 1,
                    bias: bool = True) -> Derivation:
    """The derivation of a direct convolution (``sf.nn.Conv*d`` and ``aten.convolution``):
    :func:`conv_work` and :func:`conv_params` in canonical symbols (cached per rank, kernel
    squareness and bias), bound to this layer's sizes.

    >>> d = conv_derivation(1, 3, 64, (3, 3), (8, 8))
    >>> d.general["matmul_mul"], d.work["matmul_mul"], d.params
    (B*C_in*C_out*H_out*K**2*W_out/groups, 110592, 1792)
    """
    n = len(kernel)
    general, params = _conv_general(n, _is_square(kernel), bool(bias))
    b = _bindings(batch, in_channels, out_channels, groups, kernel)
    b.update(zip(sym.spatial_out(n), out_spatial, strict=True))
    return Derivation(dict(general), params, b, CONV_EXPLANATION[bool(bias)])


@cache
def _conv_transpose_general(n: int, square: bool, stride: tuple[Any, ...],
                            dilation: tuple[Any, ...], bias: bool, grad_input: bool) -> Work:
    ks = sym.kernel_symbols(n, square)
    ci, co = (sym.C_out, sym.C_in) if grad_input else (sym.C_in, sym.C_out)
    gin, gout = sym.spatial_in(n), sym.spatial_out(n)
    if grad_input:
        gin, gout = gout, gin
    return conv_transpose_work(sym.B, ci, co, ks, gin, gout, stride, dilation, sym.groups, bias)


def conv_transpose_derivation(batch: Size, in_channels: Size, out_channels: Size,
                              kernel: Sequence[Size], in_spatial: Sequence[Size],
                              out_spatial: Sequence[Size], stride: Sequence[Size],
                              dilation: Sequence[Size], groups: Size = 1, bias: bool = True,
                              *, params: Size | None = None,
                              grad_input: bool = False) -> Derivation:
    """The derivation of a transposed convolution (:func:`conv_transpose_work`).

    Stride and dilation enter the general formula as this layer's values: the count of
    covered positions depends on how they divide one another. ``grad_input=True`` is a
    convolution's input gradient: the sizes are the forward convolution's, and the work is
    a transposed convolution from its output (``C_out`` channels at ``H_out x W_out``) back
    to its input (``C_in`` at ``H x W``).
    ``params`` is the parameter count to report (0 when omitted).

    >>> conv_transpose_derivation(1, 1, 1, (3,), (4,), (9,), (2,), (1,), bias=False).work
    {'matmul_mul': 12, 'matmul_add': 3}
    """
    n = len(kernel)
    general = _conv_transpose_general(n, _is_square(kernel), tuple(stride), tuple(dilation),
                                      bool(bias), grad_input)
    b = _bindings(batch, in_channels, out_channels, groups, kernel)
    b.update(zip(sym.spatial_in(n), in_spatial, strict=True))
    b.update(zip(sym.spatial_out(n), out_spatial, strict=True))
    explanation = "grad_input: a transposed convolution of grad_output with the weight" \
        if grad_input else CONV_TRANSPOSE_EXPLANATION
    return Derivation(dict(general), sp.sympify(0 if params is None else params), b,
                      explanation)


@cache
def _conv_backward_general(n: int, square: bool) -> dict[str, Work]:
    ks = sym.kernel_symbols(n, square)
    rows = sym.B * prod(sym.spatial_out(n))
    return {
        "grad_weight": matmul_work(sym.groups, sym.C_out / sym.groups, rows,
                                   sym.C_in / sym.groups * prod(ks)),
        "grad_bias": elementwise_work(sym.C_out * (rows - 1)),
    }


def conv_grad_derivations(batch: Size, in_channels: Size, out_channels: Size,
                              kernel: Sequence[Size], in_spatial: Sequence[Size],
                              out_spatial: Sequence[Size], stride: Sequence[Size],
                              dilation: Sequence[Size], groups: Size = 1,
                              output_mask: Sequence[bool] = (True, True, True)
                              ) -> dict[str, Derivation]:
    """The gradients of a direct convolution (``aten.convolution_backward``), one per
    requested output.

    * ``grad_input``: a transposed convolution of ``grad_output`` (as many MACs as the
      forward; a position collecting ``n`` products costs ``n - 1`` adds);
    * ``grad_weight``: per weight, a dot product of length ``B*prod(out)`` (``grad_output``
      against the input window): ``C_out*C_in/groups*prod(kernel)`` of them;
    * ``grad_bias``: ``grad_output`` summed per channel: ``B*prod(out) - 1`` adds each.

    >>> d = conv_grad_derivations(2, 3, 4, (3,), (10,), (8,), (1,), (1,))
    >>> d["grad_weight"].work, d["grad_bias"].work
    ({'matmul_mul': 576, 'matmul_add': 540}, {'elementwise': 60})
    """
    n = len(kernel)
    out: dict[str, Derivation] = {}
    if output_mask[0]:
        out["grad_input"] = conv_transpose_derivation(
            batch, in_channels, out_channels, kernel, in_spatial, out_spatial, stride,
            dilation, groups, False, grad_input=True)
    general = _conv_backward_general(n, _is_square(kernel))
    b = _bindings(batch, in_channels, out_channels, groups, kernel)
    b.update(zip(sym.spatial_out(n), out_spatial, strict=True))
    b.update(zip(sym.spatial_in(n), in_spatial, strict=True))
    if output_mask[1]:
        out["grad_weight"] = Derivation(
            dict(general["grad_weight"]), sp.Integer(0), b,
            "grad_weight: per weight a dot product of length B*prod(out) (grad_output "
            "against the input window)")
    if output_mask[2]:
        out["grad_bias"] = Derivation(dict(general["grad_bias"]), sp.Integer(0), b,
                                      "grad_bias: grad_output summed per channel")
    return out


def conv_transpose_grad_derivations(batch: Size, in_channels: Size, out_channels: Size,
                                        kernel: Sequence[Size], in_spatial: Sequence[Size],
                                        out_spatial: Sequence[Size], stride: Sequence[Size],
                                        dilation: Sequence[Size], groups: Size = 1,
                                        output_mask: Sequence[bool] = (True, True, True)
                                        ) -> dict[str, Derivation]:
    """The gradients of a transposed convolution ``z = conv_transpose(x)``
    (``aten.convolution_backward`` with ``transposed=True``), one per requested output.

    A transposed convolution is the adjoint of the direct convolution from ``z``'s sizes
    to ``x``'s, so the roles swap:

    * ``grad_input``: a direct convolution of ``grad_output``: each of the
      ``B C_in prod(in)`` input positions is a dot product of length
      ``C_out/groups prod(kernel)`` (as many MACs as the forward; ``n - 1`` adds each);
    * ``grad_weight``: per weight a dot product of length ``B prod(in)`` (the input
      against the ``grad_output`` window);
    * ``grad_bias``: ``grad_output`` summed per output channel, ``B prod(out) - 1`` adds.

    >>> d = conv_transpose_grad_derivations(1, 1, 1, (3,), (4,), (9,), (2,), (1,))
    >>> {k: v.work for k, v in d.items()}
    {'grad_input': {'matmul_mul': 12, 'matmul_add': 8}, \
'grad_weight': {'matmul_mul': 12, 'matmul_add': 9}, 'grad_bias': {'elementwise': 8}}
    """
    n = len(kernel)
    out: dict[str, Derivation] = {}
    if output_mask[0]:
        d = conv_derivation(batch, out_channels, in_channels, kernel, in_spatial, groups, False)
        out["grad_input"] = dataclasses.replace(
            d, general_params=sp.Integer(0),
            explanation="grad_input: a direct convolution of grad_output with the weight "
                        "(C_in and C_out here are the transposed convolution's C_out and C_in)")
    if output_mask[1]:
        out["grad_weight"] = conv_grad_derivations(
            batch, out_channels, in_channels, kernel, out_spatial, in_spatial, stride,
            dilation, groups, (False, True, False))["grad_weight"]
    if output_mask[2]:
        b = _bindings(batch, in_channels, out_channels, groups, kernel)
        b.update(zip(sym.spatial_out(n), out_spatial, strict=True))
        out["grad_bias"] = Derivation(
            dict(elementwise_work(sym.C_out * (sym.B * prod(sym.spatial_out(n)) - 1))),
            sp.Integer(0), b, "grad_bias: grad_output summed per output channel")
    return out
