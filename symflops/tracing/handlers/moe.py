"""Mixture of experts: ``aten._grouped_mm`` (the experts of transformers 5.x MoE layers:
Mixtral, Qwen2-MoE) and the routing: ``aten.topk``, ``aten.sort`` and ``aten.histc`` (the
grouped experts sort the ``T k`` expert ids and count them per expert). The routing's
compares and adds count under the exact convention and are 0 under ``torch`` and ``macs``
(:mod:`symflops.formulas.sorting`).

torch's fake kernel of ``aten._grouped_mm`` refuses float32 ("Expected mat_a to be
BFloat16"), the dtype a model built from a config has. A trace does not need the kernel,
only the output's shape: a shape rule (:mod:`symflops.tracing._shape_rules`) gives it,
for this trace's fake tensors only; torch itself is not changed.

Its forms (``offs``: cumulative group ends; the groups split one dim of the product):

==========  ===========  ============  ==============  =====================
``self``    ``mat2``     groups along  output          MACs
==========  ===========  ============  ==============  =====================
(M, K)      (G, K, N)    rows M        (M, N)          M K N
(M, K)      (K, N)       K             (G, M, N)       M K N
(G, M, K)   (K, N)       columns N     (M, N)          M K N
(G, M, K)   (G, K, N)    batch G       (G, M, N)       G M K N
==========  ===========  ============  ==============  =====================

In each form every row (or column, or ``K`` slice) belongs to one group, so the count
is exact however the routed tokens are spread over the experts.
"""

from __future__ import annotations

from typing import Any

import torch

from symflops import formulas
from symflops.tracing._shape_rules import SHAPE_RULES
from symflops.tracing.handlers._common import aten, one
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []


def _grouped_out(a: Any, b: Any) -> list[Any] | None:
    """The output sizes of ``_grouped_mm(a, b)`` (the table above), else None."""
    if a.dim() == 2 and b.dim() == 3:
        return [a.shape[0], b.shape[2]]
    if a.dim() == 2 and b.dim() == 2:
        return None  # groups along K: the group count is offs' length
    if a.dim() == 3 and b.dim() == 2:
        return [a.shape[1], b.shape[1]]
    if a.dim() == 3 and b.dim() == 3:
        return [a.shape[0], a.shape[1], b.shape[2]]
    return None


def _grouped_mm_shape(args: Any, kwargs: Any) -> Any:
    a, b = args[0], args[1]
    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return None
    sizes = _grouped_out(a, b)
    if sizes is None and a.dim() == 2 and b.dim() == 2 and isinstance(offs, torch.Tensor):
        sizes = [offs.shape[0], a.shape[0], b.shape[1]]
    if sizes is None:
        return None
    dtype = args[4] if len(args) > 4 else kwargs.get("out_dtype")
    return a.new_empty(sizes, dtype=dtype or a.dtype)


SHAPE_RULES[aten._grouped_mm] = _grouped_mm_shape


@register(aten._grouped_mm)
def _grouped_mm(call: OpCall) -> list[Part]:
    """``_grouped_mm(self, mat2, offs, bias)``:
    :func:`symflops.formulas.moe.grouped_matmul_derivation` over the routed rows (2-d by 3-d:
    the MoE experts), a product per group otherwise."""
    a, b = call.args[0].shape, call.args[1].shape
    has_bias = call.arg(3, "bias") is not None
    if len(a) == 2 and len(b) == 3:
        return one(formulas.moe.grouped_matmul_derivation(a[0], a[1], b[2], b[0], has_bias))
    if len(a) == 3 and len(b) == 3:
        return one(formulas.linear.matmul_derivation(a[0], a[1], a[2], b[2]))
    if len(a) == 2 and len(b) == 2:  # groups split K
        return one(formulas.moe.grouped_k_derivation(a[0], a[1], b[1], call.out[0].shape[0]))
    return one(formulas.linear.linear_derivation(a[1], a[2], b[1], False))


@register(aten.topk)
def _topk(call: OpCall) -> list[Part]:
    """``topk(x, k, dim)``: :func:`symflops.formulas.moe.topk_derivation`."""
    x, k = call.args[0], call.arg(1, "k")
    dim = call.arg(2, "dim", -1)
    n = x.shape[dim] if x.ndim else 1
    return one(formulas.moe.topk_derivation(x.numel / n, n, k))


@register(aten.sort)
def _sort(call: OpCall) -> list[Part]:
    """``sort(x, dim=-1)`` / ``sort.stable(x, *, stable, dim=-1)`` (and ``argsort``):
    :func:`symflops.formulas.sorting.sort_derivation`, merge sort's worst case per row:
    compares, counted under the exact convention, 0 under torch and macs."""
    x = call.args[0]
    dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 and
                          isinstance(call.args[1], int) and not isinstance(call.args[1], bool)
                          else -1)
    n = x.shape[dim] if x.ndim else 1
    rows = x.numel / n if x.ndim else 1
    return one(formulas.sorting.sort_derivation(rows, n))


@register(aten.histc)
def _histc(call: OpCall) -> list[Part]:
    """``histc(x, bins, min, max)``: :func:`symflops.formulas.sorting.histogram_derivation`,
    5 per value under the exact convention, 0 under torch and macs."""
    return one(formulas.sorting.histogram_derivation(call.args[0].numel))
