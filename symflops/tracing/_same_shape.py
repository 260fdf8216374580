"""Shape rules for ops whose output is shaped like their input, where torch's fake
dispatch runs a Python decomposition on symbolic sizes: ``_safe_softmax`` (softmax, a mask
of fully masked rows, ``where``), ``tril``/``triu`` (a mask of ``arange`` comparisons,
``where``) and ``native_layer_norm`` (mean, variance, normalization) cost 20-30 ms each the
first time on symbolic sizes, 15% of a GPT-2 trace; unary float ops and ``pow`` by a number
(RMSNorm's, RoPE's) 2-6 ms each; ``roll`` (Swin's shifted windows) a narrow and a cat
per dim.

On a contiguous input (strides the contiguous ones of its sizes, compared as expressions:
no guard) the output is a new contiguous tensor of the same sizes, in the input's dtype
(or softmax's ``dtype``), which is what torch's decompositions give there (elementwise
ops keep a dense input's layout; ``tests/test_same_shape.py`` compares with torch), made by
``_shape_rules._new`` (under no_grad an earlier output of the same shape stands in, as
for the other shape rules: a rule's output is not repeated by the recorder). Any other
input takes torch's path, except for ``native_layer_norm``, whose outputs torch makes
contiguous for any input strides (a permuted channels-last view too). Registered into
:data:`SHAPE_RULES` unless a rule exists.
Torch's decompositions record 0/1-specialization guards on the way (``N > 1``, ``B*N*N >=
2``: the memory-format checks of their intermediate tensors); a rule records none, and such
guards never enter a formula's validity (:mod:`._assembly` sorts them out).
"""

from __future__ import annotations

from typing import Any

import torch

from symflops.tracing import _torch_compat as C
from symflops.tracing._shape_rules import SHAPE_RULES, _fresh, _new, contiguous_strides

__all__ = ["contiguous_strides"]

aten = torch.ops.aten


def _fake_strided(x: Any) -> bool:
    """A plain fake strided tensor (any strides)."""
    return isinstance(x, torch.Tensor) and C.is_fake(x) and x.layout == torch.strided and \
        type(x).__name__ == "FakeTensor"


def _plain(x: Any) -> bool:
    """A fake strided tensor of a floating or bool dtype whose layout the rules know."""
    return _fake_strided(x) and contiguous_strides(x)


def _softmax(args: Any, kwargs: Any) -> Any:
    """``_safe_softmax(x, dim, dtype=None)``."""
    if not args or "out" in kwargs or len(args) > 3 or set(kwargs) - {"dtype"}:
        return None
    x = args[0]
    dim = args[1] if len(args) > 1 else None
    dtype = args[2] if len(args) > 2 else kwargs.get("dtype")
    if not _plain(x) or not x.is_floating_point() or not isinstance(dim, int) or \
            not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        return None
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        return None
    return _new(x, list(x.shape)) if dtype in (None, x.dtype) else \
        _fresh(x, list(x.shape), dtype)


def _triangle(args: Any, kwargs: Any) -> Any:
    """``tril``/``triu(x, diagonal=0)`` of a matrix or a batch of them."""
    if not args or "out" in kwargs or len(args) > 2 or set(kwargs) - {"diagonal"}:
        return None
    x = args[0]
    diagonal = args[1] if len(args) > 1 else kwargs.get("diagonal", 0)
    if not _plain(x) or x.dim() < 2 or not isinstance(diagonal, int) or \
            isinstance(diagonal, bool):
        return None
    return _new(x, list(x.shape))


def _layer_norm(args: Any, kwargs: Any) -> Any:
    """``native_layer_norm(x, normalized_shape, weight, bias, eps)`` of a float32/float64
    ``x`` whose trailing sizes are the (int) ``normalized_shape``: the output of ``x``'s
    sizes, and mean and rstd of ``x``'s leading sizes with a 1 per normalized dim (float32
    and float64 keep their dtype for mean and rstd on every device), all three contiguous
    whatever ``x``'s strides: torch's own kernel makes them so. A permuted input (Swin's
    and ConvNeXt's channels-last norms) is answered too; torch's decomposition asked of
    each of its sizes whether it is 1 (``Ne(B, 1)``), which made settle trace those models
    again at ``B = 1``."""
    if len(args) != 5 or kwargs:
        return None
    x, shape, weight, bias, _eps = args
    if not _fake_strided(x) or x.dtype not in (torch.float32, torch.float64) or \
            not isinstance(shape, (list, tuple)) or not shape or len(shape) > x.dim() or \
            not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        return None
    axis = x.dim() - len(shape)
    if [C.sym_expr(v) for v in x.shape[axis:]] != list(shape):
        return None
    for t in (weight, bias):  # None, or parameters of the normalized shape in x's dtype
        if t is not None and not (isinstance(t, torch.Tensor) and t.dtype == x.dtype and
                                  [C.sym_expr(v) for v in t.shape] == list(shape)):
            return None
    stats = [*x.shape[:axis], *([1] * len(shape))]
    return _new(x, list(x.shape)), _new(x, stats), _new(x, stats)


def _unary(args: Any, kwargs: Any) -> Any:
    """A unary float op (``rsqrt``, ``exp``, ``cos``...; ``neg``) of a floating tensor: the
    output like it."""
    if len(args) != 1 or kwargs or not _plain(args[0]) or not args[0].is_floating_point():
        return None
    return _new(args[0], list(args[0].shape))


def _pow(args: Any, kwargs: Any) -> Any:
    """``pow(x, exponent)`` of a floating tensor and a Python int or float (the
    ``Tensor_Scalar`` overload): the output like ``x`` (a number does not promote it)."""
    if len(args) != 2 or kwargs or type(args[1]) not in (int, float):
        return None
    return _unary(args[:1], kwargs)


def _roll(args: Any, kwargs: Any) -> Any:
    """``roll(x, shifts, dims)`` with one int dim per int shift (Swin's shifted windows):
    a new tensor like ``x``. torch's fake roll runs its Python reference (a narrow and a
    cat per dim on symbolic sizes, 10% of a swin_t trace); a flattening roll (no dims) or
    anything torch refuses takes torch's path."""
    if len(args) < 2 or kwargs or not _plain(args[0]):
        return None
    x, shifts = args[0], args[1]
    dims = args[2] if len(args) > 2 else ()
    ints = (list, tuple)
    if not isinstance(shifts, ints) or not isinstance(dims, ints) or not dims or \
            len(shifts) != len(dims) or not all(
                type(v) is int for v in (*shifts, *dims)) or \
            not all(-x.dim() <= d < x.dim() for d in dims):
        return None
    return _new(x, list(x.shape))


_UNARY = ("rsqrt", "sqrt", "exp", "cos", "sin", "neg", "log", "reciprocal")

for _op, _rule in ((aten._safe_softmax, _softmax), (aten.tril, _triangle),
                   (aten.triu, _triangle), (aten.native_layer_norm, _layer_norm),
                   (aten.pow, _pow), (aten.roll, _roll),
                   *((getattr(aten, n), _unary) for n in _UNARY)):
    SHAPE_RULES.setdefault(_op, _rule)
