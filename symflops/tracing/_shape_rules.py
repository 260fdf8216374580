"""Shape rules: outputs of common ops computed from their inputs' shapes, skipping torch's
fake-tensor kernels (whose symbolic arithmetic dominates a trace). A rule returns
``None`` to let torch run the op; guards a rule needs (``H >= 7``) are still recorded.

>>> import torch
>>> torch.ops.aten.convolution in SHAPE_RULES
True
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

import sympy as sp
import torch
from torch.utils._sympy.functions import Max as _TorchMax

from symflops.tracing import _torch_compat as C

__all__ = ["RawShape", "shape_of", "SHAPE_RULES", "forget_shapes", "ceil_pool_size",
           "contiguous_strides"]


@dataclass(frozen=True)
class RawShape:
    """A tensor's shape as torch-SymPy sizes (converted to user symbols later) and dtype."""

    shape: tuple[Any, ...]
    dtype: str


def shape_of(t: torch.Tensor) -> RawShape:
    """The shape and dtype of ``t``, sizes as ints or torch-SymPy expressions."""
    return RawShape(tuple(C.sym_expr(s) for s in t.shape), str(t.dtype).replace("torch.", ""))


def _bn_eval(args: Any, kwargs: Any) -> Any:
    """Inference batch norm: the output is shaped like the input, the saved statistics
    are empty. Skips torch's Python decomposition of native_batch_norm on fake tensors
    (symbolic arithmetic per element-wise step), which dominates a CNN trace."""
    training = args[5] if len(args) > 5 else kwargs.get("training", False)
    if training:
        return None
    return _bn_legit_eval(args, kwargs)


def _bn_legit_eval(args: Any, kwargs: Any) -> Any:
    x = args[0]
    key = (x.dtype, x.device)
    empty = _EMPTY.get(key)
    if empty is None or empty.fake_mode is not getattr(x, "fake_mode", None):
        empty = _EMPTY[key] = _fresh(x, (0,))
    return (_like(x), empty, empty)


# one empty tensor per dtype/device stands for the unused saved statistics of inference
# batch norm (x.new_empty costs ~2 ms on a symbolic fake tensor)
_EMPTY: dict[Any, Any] = {}


#: torch's and SymPy's Max: a stride torch writes ``Max(1, size)`` (:func:`contiguous_strides`)
_MAX_TYPES = (sp.Max, _TorchMax)


def contiguous_strides(x: torch.Tensor) -> bool:
    """``x``'s strides are the contiguous strides of its sizes, as expressions (a size-1
    dim's stride too: anything else answers False). torch writes the stride after a size
    it cannot prove positive as ``Max(1, size)`` (Swin's ``384*Max(1, floor(H/16))``): the
    same stride wherever the tensor has an element, so it counts as the size."""
    sizes = [C.sym_expr(v) for v in x.shape]
    strides = [C.sym_expr(v) for v in x.stride()]
    want: Any = 1
    for size, stride in zip(reversed(sizes), reversed(strides), strict=True):
        if not _stride_is(stride, want):
            return False
        want = want * size
    return True


def _stride_is(stride: Any, want: Any) -> bool:
    """``stride`` is ``want`` as an expression, ``Max(1, size)`` read as the size."""
    return stride == want or _without_max_one(stride) == want


def _without_max_one(e: Any) -> Any:
    """``e`` with each ``Max(1, size)`` (torch's or SymPy's) read as ``size``."""
    if not isinstance(e, sp.Basic) or not e.has(*_MAX_TYPES):
        return e
    return e.replace(lambda a: type(a).__name__ == "Max" and len(a.args) == 2 and
                     sp.Integer(1) in a.args,
                     lambda a: a.args[1] if a.args[0] == 1 else a.args[0])


def _like(x: torch.Tensor) -> torch.Tensor:
    # Under no_grad nothing reads values or aliasing, so the input itself can stand for
    # a same-shaped output: torch.empty_like on symbolic strides costs ~10 ms per call.
    return x if not torch.is_grad_enabled() else torch.empty_like(x)


def _unary_inplace(args: Any, kwargs: Any) -> Any:
    return args[0] if isinstance(args[0], torch.Tensor) else None


def _unary(args: Any, kwargs: Any) -> Any:
    x = args[0]
    if not isinstance(x, torch.Tensor) or "out" in kwargs:
        return None
    return _like(x)


def _same_operands(args: Any, kwargs: Any) -> bool:
    """``a (op) b`` whose output is shaped, strided and typed like ``a``: a floating
    tensor with a Python number, or with a tensor of the same dtype, device, sizes and
    strides (compared as expressions: no guard is recorded)."""
    if len(args) < 2 or "out" in kwargs:
        return False
    a, b = args[0], args[1]
    if not isinstance(a, torch.Tensor) or not a.is_floating_point():
        return False
    if not isinstance(b, torch.Tensor):
        return isinstance(b, (int, float)) and not isinstance(b, bool)
    return (b.dtype == a.dtype and b.device == a.device and b.dim() == a.dim() and
            _exprs(b.shape) == _exprs(a.shape) and _exprs(b.stride()) == _exprs(a.stride()))


def _float_pair(args: Any, kwargs: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(a, b)`` of ``a (op) b`` when both are fake strided floating tensors of one dtype
    and device (no ``out=``): the operands the elementwise rules below know; else None."""
    if len(args) < 2 or "out" in kwargs:
        return None
    a, b = args[0], args[1]
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or \
            not a.is_floating_point() or b.dtype != a.dtype or b.device != a.device or \
            not (C.is_fake(a) and C.is_fake(b)) or \
            a.layout != torch.strided or b.layout != torch.strided:
        return None
    return a, b


def _broadcast(args: Any, kwargs: Any) -> list[Any] | None:
    """The output sizes of ``a (op) b`` for two contiguous floating tensors of one dtype
    and device whose sizes broadcast plainly: per dim (aligned from the right) one side
    the number 1 or both the same expression. None otherwise (torch's path).

    torch asks of each symbolic size ``h`` facing a 1 whether ``h == 1`` (a guard ``Ne(h,
    1)``: a squeeze-and-excitation scale, ``(B, C, 1, 1) * (B, C, h, w)``), though the
    output size is ``h`` either way; such guards made settle trace the model again at
    ``H = 1``, ``W = 1``, both, and ``B = 1``. The output of contiguous operands is
    contiguous (torch's elementwise layout follows the operands')."""
    pair = _float_pair(args, kwargs)
    if pair is None:
        return None
    a, b = pair
    if a.dim() == 0 or b.dim() == 0 or not contiguous_strides(a) or not contiguous_strides(b):
        return None
    n = max(a.dim(), b.dim())
    out: list[Any] = []
    for x, y in zip([1] * (n - a.dim()) + list(a.shape), [1] * (n - b.dim()) + list(b.shape),
                    strict=True):
        ex, ey = C.sym_expr(x), C.sym_expr(y)
        if ex == 1:
            out.append(y)
        elif ey == 1 or ex == ey:
            out.append(x)
        else:
            return None
    return out


def _binary(args: Any, kwargs: Any) -> Any:
    """``add``/``sub``/``mul``/``div`` of same-shaped operands (a residual ``x + y``), or
    of operands that broadcast plainly (:func:`_broadcast`): torch's fake kernel derives
    the broadcast shape and strides symbolically (a third of a ResNet-50 trace); other
    operands take torch's path."""
    if _same_operands(args, kwargs):
        return _like(args[0])
    sizes = _broadcast(args, kwargs)
    if sizes is not None:
        return _new(args[0], sizes)
    return _permuted_broadcast(args, kwargs)


def _permuted_broadcast(args: Any, kwargs: Any) -> Any:
    """``a (op) b`` where an operand of the output's sizes is a permuted contiguous tensor
    (a channels-last view: ConvNeXt's ``permute(0, 3, 1, 2)`` back from its norm and MLP)
    and every operand before it in the call either has at most one dim that is not a
    broadcast 1 (a layer scale ``(C, 1, 1)``) or is that one: a new tensor laid out in
    that operand's dim order, as torch's elementwise layout rule lays it out. That rule
    sorts the dims by the first operand whose two strides there are not 0, and such an
    operand decides every pair; an operand with one real dim decides none.

    torch's fake kernel takes its slow path here: the broadcast asks of each size facing
    a 1 whether it is 1 (``B != 1``, ``h != 1``, ``w != 1``) and the sort whether one
    stride is below another, guards that change no count but made settle trace ConvNeXt
    again at ``B = 1``. The same layout is answered for a batch of the int 1 (settle's
    check there must not meet questions the symbolic trace did not ask). Anything else (two
    operands with real dims that disagree, two strides that tie, a size that is 1 at its
    example, other dtypes or devices) takes torch's path."""
    pair = _float_pair(args, kwargs)
    if pair is None or torch.is_grad_enabled():
        return None
    a, b = pair
    n = max(a.dim(), b.dim())
    if n < 2:
        return None
    shapes = [[1] * (n - t.dim()) + [C.sym_expr(v) for v in t.shape] for t in (a, b)]
    out: list[Any] = []
    for ex, ey in zip(*shapes, strict=True):
        if ex == ey or ey == 1:
            out.append(ex)
        elif ex == 1:
            out.append(ey)
        else:
            return None
    if any(isinstance(v, torch.SymInt) and v.node.hint == 1 for t in (a, b) for v in t.shape):
        return None  # a size that is 1 at its example ties two strides: torch's sort then
        # reads the sizes, and records what it found. A size written as the number 1 ties
        # them as expressions, and _dense_order finds no order then: torch's path too
    order = None
    for t, shape in zip((a, b), shapes, strict=True):
        if shape == out:
            order = _dense_order(t)
            if order is not None:
                break
            return None  # a full operand not densely laid out: torch's path
        if sum(1 for e in shape if e != 1) > 1 or not contiguous_strides(t):
            return None  # an operand that would decide some pairs of dims
    if order is None:
        return None
    x = a if shapes[0] == out else b
    return _new(x, list(x.shape), order=None if order == list(range(n)) else order)


def _dense_order(t: torch.Tensor) -> list[int] | None:
    """The dims of ``t``, outermost first, when its strides are the contiguous strides of
    its sizes taken in that order (a permuted contiguous tensor; ``Max(1, size)`` read as
    the size, as :func:`contiguous_strides` reads it); else None."""
    sizes = [C.sym_expr(v) for v in t.shape]
    strides = [C.sym_expr(v) for v in t.stride()]
    left = list(range(t.dim()))
    inner: list[int] = []
    want: Any = 1
    while left:
        found = [d for d in left if _stride_is(strides[d], want)]
        if len(found) != 1:
            return None
        inner.append(found[0])
        left.remove(found[0])
        want = want * sizes[found[0]]
    return inner[::-1]


def _binary_inplace(args: Any, kwargs: Any) -> Any:
    """In place: same-shaped operands, or ``b`` broadcast to ``a``'s own sizes, or ``b``
    of ``a``'s sizes in another layout with ``a`` dense (ConvNeXt's ``result += input``, a
    channels-last view plus a contiguous tensor: torch's fake kernel asks of each size
    whether it is 1)."""
    if _same_operands(args, kwargs) or _same_sizes_dense_self(args, kwargs):
        return args[0]
    sizes = _broadcast(args, kwargs)
    if sizes is None or _exprs(sizes) != _exprs(args[0].shape):
        return None
    return args[0]


def _same_sizes_dense_self(args: Any, kwargs: Any) -> bool:
    """``a`` and ``b`` fake floating tensors of one dtype and device and the same sizes
    (as expressions), ``a`` a permuted contiguous tensor (no element written twice) on a
    storage ``b`` does not share (no overlap to refuse)."""
    pair = _float_pair(args, kwargs)
    if pair is None:
        return False
    a, b = pair
    return _exprs(a.shape) == _exprs(b.shape) and _dense_order(a) is not None and \
        a.untyped_storage()._cdata != b.untyped_storage()._cdata


def _cat(args: Any, kwargs: Any) -> Any:
    """Concatenation: the sizes along ``dim`` add up, the others agree (compared as
    expressions: no guard is recorded). torch's fake ``cat`` runs a Python reference
    that builds and clones symbolic strides per input: 12.8 of 17 s of a DenseNet trace.
    Inputs torch treats specially (legacy empty 1-D tensors, mixed dtypes or devices,
    sizes that are not plainly equal) take torch's path."""
    if "out" in kwargs or not args or not isinstance(args[0], (list, tuple)) or not args[0]:
        return None
    ts = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    x = ts[0]
    if not all(isinstance(t, torch.Tensor) for t in ts) or not isinstance(dim, int) or \
            x.dim() == 0:
        return None
    n = x.dim()
    dim = dim + n if dim < 0 else dim
    if not 0 <= dim < n:
        return None
    shapes = [_exprs(t.shape) for t in ts]
    rest = shapes[0][:dim] + shapes[0][dim + 1:]
    if any(t.dtype != x.dtype or t.device != x.device or len(sh) != n or
           sh[:dim] + sh[dim + 1:] != rest for t, sh in zip(ts, shapes, strict=True)):
        return None
    total = x.shape[dim]
    for t in ts[1:]:
        total = total + t.shape[dim]
    return _new(x, [*x.shape[:dim], total, *x.shape[dim + 1:]])


def _reduce(args: Any, kwargs: Any) -> Any:
    """``sum``/``mean`` of a floating tensor over listed dims (or all of them): those
    dims dropped, or kept as 1 with ``keepdim``. torch's fake kernel runs a Python
    reference (a global average pool was 0.19 s of a ResNet-50 trace under cProfile)."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or "out" in kwargs or \
            kwargs.get("dtype") is not None or len(args) > 3:
        return None
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    n = x.dim()
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        dims = list(range(n))
    if isinstance(dims, int):
        dims = [dims]
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims) or \
            not all(-n <= d < n for d in dims) or not isinstance(keep, bool) or n == 0:
        return None
    gone = {d % n for d in dims}
    if len(gone) != len(dims):
        return None  # torch's error: a dim named twice
    sizes = [1 if i in gone else v for i, v in enumerate(x.shape) if keep or i not in gone]
    return _new(x, sizes)


def _matmul(ndim: int) -> Any:
    """The rule of ``mm(a, b)`` and ``addmm(bias, a, b)`` (``ndim`` 2) or ``bmm(a, b)``
    (3): floating operands of one dtype whose inner sizes agree as expressions, and a
    bias shaped like a row of the output or like the output, give ``(..., n, p)``."""

    def rule(args: Any, kwargs: Any) -> Any:
        if kwargs.get("out") is not None or len(args) < 2:
            return None
        bias, (a, b) = (args[0], args[1:3]) if len(args) >= 3 else (None, args[:2])
        if not all(isinstance(t, torch.Tensor) for t in (a, b)) or \
                not a.is_floating_point() or b.dtype != a.dtype or a.dim() != ndim or \
                b.dim() != ndim:
            return None
        return _product(bias, a, b)

    return rule


def _product(bias: Any, a: torch.Tensor, b: torch.Tensor) -> Any:
    sa, sb = _exprs(a.shape), _exprs(b.shape)
    if sa[-1] != sb[-2] or sa[:-2] != sb[:-2]:
        return None
    sizes = [*a.shape[:-1], b.shape[-1]]
    if bias is None:
        return _new(a, sizes)
    if not isinstance(bias, torch.Tensor) or bias.dtype != a.dtype or \
            _exprs(bias.shape) not in ((sb[-1],), _exprs(sizes)):
        return None
    return _new(a, sizes)


# Shape rules that skip torch's fake-tensor evaluation: unary pointwise ops return a
# tensor shaped (and strided) like their input, in place or not. torch has no meta
# kernel for some of them (hardtanh: ReLU6) and runs a Python reference decomposition
# whose symbolic arithmetic dominated a MobileNetV2 trace (4.6 of 7 s).
def _convolution(args: Any, kwargs: Any) -> Any:
    """A direct convolution's output size, ``(size + 2p - d(k - 1) - 1) // s + 1`` per
    spatial dim, without torch's fake conv kernel (which derives strides and memory
    formats through many more symbolic operations). Transposed convs take torch's path.
    The sizes are computed once per input shape, weight shape and arguments (the guards
    they record are the same every time)."""
    if kwargs or len(args) < 9 or args[6]:
        return None
    x, w = args[0], args[1]
    n = w.dim() - 2
    if x.dim() != n + 2:
        return None
    key = (_exprs(x.shape), _exprs(w.shape), *(_exprs(_ntuple(args[i], n)) for i in (3, 4, 5)),
           C.sym_expr(args[8]))
    sizes = _CONV_SIZES.get(key)
    if sizes is None:
        sizes = _conv_sizes(x, w, args, n)
        if sizes is None:
            return None
        _CONV_SIZES[key] = sizes
    return _new(x, sizes)


def _exprs(sizes: Any) -> tuple[Any, ...]:
    return tuple(C.sym_expr(v) for v in sizes)


def _conv_sizes(x: torch.Tensor, w: torch.Tensor, args: Any, n: int) -> list[Any] | None:
    stride, padding, dilation = (_ntuple(args[i], n) for i in (3, 4, 5))
    sizes = [x.shape[0], w.shape[0]]
    for i in range(n):
        k = w.shape[2 + i]
        need = dilation[i] * (k - 1) + 1 - 2 * padding[i]  # output >= 1 <=> input >= need
        if need > 1 and not x.shape[2 + i] >= need:  # records a guard (H >= 7): validity
            return None
        sizes.append((x.shape[2 + i] + 2 * padding[i] - dilation[i] * (k - 1) - 1)
                     // stride[i] + 1)
    if x.shape[1] != w.shape[1] * args[8]:
        return None  # let torch raise its own error
    return sizes


def _new(x: torch.Tensor, sizes: list[Any], dtype: torch.dtype | None = None,
         order: list[int] | None = None) -> torch.Tensor:
    """A fresh fake tensor of ``sizes`` like ``x`` (of ``dtype`` if given; laid out in
    ``order``, see :func:`_fresh`). Under no_grad an earlier output of the same symbolic
    shape, dtype and layout stands in (values and aliasing are never read there): building
    symbolic strides costs ~10 ms per tensor."""
    if torch.is_grad_enabled() and order is None:
        return x.new_empty(sizes, dtype=dtype)
    key = (tuple(C.sym_expr(v) for v in sizes), x.dtype if dtype is None else dtype,
           x.device, None if order is None else tuple(order))
    hit = _SHAPED.get(key)
    if hit is None or hit.fake_mode is not getattr(x, "fake_mode", None):
        hit = _SHAPED[key] = _fresh(x, sizes, dtype, order)
    return hit


def _fresh(x: torch.Tensor, sizes: Any, dtype: torch.dtype | None = None,
           order: list[int] | None = None) -> torch.Tensor:
    """``x.new_empty(sizes, dtype=dtype)`` of a fake ``x`` made as the fake mode's
    constructors make it (a contiguous meta tensor inside its kernel context, wrapped),
    without its dispatch, decomposition and op cache (a new shape misses the cache, and
    filling an entry derives the memory format of symbolic strides: 4x the cost of making
    the tensor; the dispatch is a quarter of what is left). With ``order`` (dims outermost
    first) it is laid out in that order instead: the strides of a contiguous tensor of the
    sizes taken in that order, as torch's ``empty_permuted`` makes them."""
    from torch._subclasses.fake_tensor import FakeTensor, in_kernel_invocation_manager

    mode = getattr(x, "fake_mode", None)
    if mode is None or not C.is_fake(x) or x.layout != torch.strided:
        assert order is None, "a permuted layout is made for fake strided tensors only"
        return x.new_empty(sizes, dtype=dtype)
    dtype = x.dtype if dtype is None else dtype
    with in_kernel_invocation_manager(mode):
        if order is None:
            meta = torch.empty(sizes, dtype=dtype, device="meta")
        else:
            inner = torch.empty([sizes[d] for d in order], dtype=dtype, device="meta")
            strides = [inner.stride()[order.index(d)] for d in range(len(sizes))]
            meta = torch.empty_strided(list(sizes), strides, dtype=dtype, device="meta")
    return FakeTensor(mode, meta, x.device)


_SHAPED: dict[Any, Any] = {}
# (input shape, weight shape, stride, padding, dilation, groups) -> output sizes
_CONV_SIZES: dict[Any, list[Any]] = {}


def ceil_pool_size(size: Any, kernel: int, stride: int, padding: int, dilation: int) -> Any:
    """A ceil_mode pool's output size without a branch (ints and torch SymInts alike).

    torch computes ``out = ceil(n / s) + 1`` with ``n = L + 2p - d(k - 1) - 1``, then drops
    the last window when it would start in the right padding: ``if (out - 1) s >= L + p:
    out -= 1``. On symbolic sizes that ``if`` is a guard (``3*floor(H/3) < H``) that holds
    at the example size and not at others. Without the branch: the last window starts at
    ``(out - 1) s``, and it is kept exactly when ``out - 1 < ceil((L + p) / s)``; since
    torch requires ``p <= k / 2``, ``n <= L + p - 1`` and so ``ceil(n / s) <= ceil((L + p)
    / s)``: the drop removes at most the one window past that bound, hence

        out = min(floor((n + 2s - 1) / s), floor((L + p + s - 1) / s))
            = floor((L + min(2p - d(k - 1) + 2s - 2, p + s - 1)) / s)

    (floor is monotone, so the min moves inside onto the two constants): one floor, no
    branch. Checked against torch's own output sizes in tests/test_trace_domain.py.

    >>> [ceil_pool_size(L, 2, 3, 0, 1) for L in (23, 24, 25)]   # torch: 8, 8, 9
    [8, 8, 9]
    """
    shift = min(2 * padding - dilation * (kernel - 1) + 2 * stride - 2, padding + stride - 1)
    return (size + shift) // stride


#: pooling op -> (spatial dims, has dilation, returns indices)
_POOLS = {
    "max_pool1d": (1, True, False), "max_pool2d": (2, True, False),
    "max_pool3d": (3, True, False), "max_pool1d_with_indices": (1, True, True),
    "max_pool2d_with_indices": (2, True, True), "max_pool3d_with_indices": (3, True, True),
    "avg_pool1d": (1, False, False), "avg_pool2d": (2, False, False),
    "avg_pool3d": (3, False, False)}


def _pool(name: str) -> Any:
    n, dilated, indices = _POOLS[name]
    keys = ["kernel_size", "stride", "padding", "dilation" if dilated else "ceil_mode"]
    keys += ["ceil_mode"] if dilated else []
    extra = [] if dilated else ["count_include_pad", "divisor_override"]
    # torch's avg_pool3d also refuses an input smaller than the kernel, padding or not
    # (``pool3d_shape_check(..., check_input_size=True)``): "input image smaller than kernel"
    whole_kernel = name == "avg_pool3d"

    def rule(args: Any, kwargs: Any) -> Any:
        """A pool's output: ceil_mode sized by :func:`ceil_pool_size` (no guard on the
        branch torch takes for the last window), floor mode by ``(size + 2p - d(k - 1) -
        1) // s + 1``, torch's own formula. Either records the one guard the output's
        existence needs (``size >= d(k - 1) + 1 - 2p``, where that is above 1), as the
        convolution rule does; torch's meta kernel checks ``output >= 1`` through
        ``expect_true``, which tried to refine every new guard into a range (two thirds of
        a warm VGG-13 trace, its five max pools). Arguments torch refuses (a kernel, stride
        or dilation below 1, a padding over half the kernel, a divisor_override of 0) take
        torch's path, which raises its own error."""
        if "out" in kwargs or not args or not isinstance(args[0], torch.Tensor):
            return None
        given = {**dict(zip(["input", *keys, *extra], args, strict=False)), **kwargs}
        ceil = given.get("ceil_mode", False)
        if not isinstance(ceil, bool) or given.get("divisor_override") == 0:
            return None
        x = args[0]
        if x.dim() not in (n + 1, n + 2) or 0 in x.shape[-n - 1:]:
            return None
        kernel = _ntuple(given["kernel_size"], n)
        stride = _ntuple(given.get("stride") or kernel, n)
        padding = _ntuple(given.get("padding", 0), n)
        dilation = _ntuple(given.get("dilation", 1), n) if dilated else [1] * n
        if not all(isinstance(v, int) for v in (*kernel, *stride, *padding, *dilation)):
            return None
        if any(2 * p > k or k < 1 or s < 1 or d < 1 or p < 0
               for k, s, p, d in zip(kernel, stride, padding, dilation, strict=True)):
            return None  # torch raises its own error
        sizes = list(x.shape[:-n])
        for i in range(n):
            size = x.shape[x.dim() - n + i]
            need = dilation[i] * (kernel[i] - 1) + 1 - 2 * padding[i]
            least = max(need, kernel[i]) if whole_kernel else need
            if least > 1 and not size >= least:  # records a guard (H >= k): validity
                return None
            sizes.append(ceil_pool_size(size, kernel[i], stride[i], padding[i], dilation[i])
                         if ceil else (size - need) // stride[i] + 1)
        out = _pool_output(x, sizes)
        return (out, _pool_output(x, sizes, torch.int64)) if indices else out

    return rule


def _pool_output(x: torch.Tensor, sizes: list[Any], dtype: torch.dtype | None = None
                 ) -> torch.Tensor:
    """A pool's output (or its int64 indices): under no_grad an earlier output of
    the same sizes and dtype stands in, as for every other shape rule (:func:`_new`). Why:
    a fresh tensor derives its symbolic strides anew (GoogLeNet's and Inception's pools, a
    twentieth of a trace); with grad enabled a fresh one as before."""
    return _fresh(x, sizes, dtype) if torch.is_grad_enabled() else _new(x, sizes, dtype)


def _upsample(args: Any, kwargs: Any) -> Any:
    """Upsampling: ``(B, C, *output_size)``. torch's fake kernels for the linear modes
    decompose into index arithmetic that cannot take symbolic sizes."""
    x, size = args[0], args[1] if len(args) > 1 else kwargs.get("output_size")
    if size is None or not isinstance(x, torch.Tensor):
        return None
    return _new(x, [*x.shape[:2], *size])


def _upsample_backward(args: Any, kwargs: Any) -> Any:
    """The gradient of an upsample is shaped like its input (``input_size``)."""
    g = args[0]
    size = args[2] if len(args) > 2 else kwargs.get("input_size")
    if size is None or not isinstance(g, torch.Tensor):
        return None
    return g.new_empty(tuple(size))


def _constant_pad(args: Any, kwargs: Any) -> Any:
    """``constant_pad_nd(x, pad)``: the last ``len(pad) // 2`` dims grow by their two pads
    (``pad`` lists the last dim's left and right first). torch's kernel refuses pads
    that are symbolic expressions (Swin pads ``H`` to a multiple of its window with
    ``(w - H % w) % w``: "SymIntArrayRef expected to contain only concrete integers");
    here they add to the size as expressions. A negative pad crops: the output must not
    be negative (a guard, or torch's error)."""
    if "out" in kwargs or len(args) < 2 or not isinstance(args[0], torch.Tensor):
        return None
    x, pad = args[0], args[1]
    if not isinstance(pad, (list, tuple)) or len(pad) % 2 or len(pad) // 2 > x.dim() or \
            not all(isinstance(p, (int, torch.SymInt)) and not isinstance(p, bool)
                    for p in pad):
        return None
    sizes = list(x.shape)
    for k in range(len(pad) // 2):
        i = x.dim() - 1 - k
        lo, hi = pad[2 * k], pad[2 * k + 1]
        if any(isinstance(p, int) and p < 0 for p in (lo, hi)):
            new = sizes[i] + lo + hi
            if not new >= 0:
                return None  # torch raises its own error
        else:
            new = padded_size(sizes[i], lo + hi)
        sizes[i] = new
    return _new(x, sizes)


def _slice(args: Any, kwargs: Any) -> Any:
    """``slice`` under no_grad: torch's own slice (its sizes and guards), then a fresh
    contiguous tensor of those sizes stands for the view. A view's strides are the
    input's, and a later ``.contiguous()`` asks torch whether they are contiguous: Swin's
    unpad ``x[:, :H, :W].contiguous()`` is contiguous exactly when no padding was added, a
    guard (``Eq(7*ceil(h/7), h)``) that pins the dims though it changes no count. Values
    and aliasing are never read under no_grad (see :func:`_new`)."""
    if torch.is_grad_enabled() or not args or not isinstance(args[0], torch.Tensor):
        return None
    sizes = _slice_sizes(*args, **kwargs)
    if sizes is None:
        sizes = list(torch.ops.aten.slice.Tensor(*args, **kwargs).shape)
    return _fresh(args[0], sizes)  # not _new: a view output must be unshared


def _slice_sizes(x: torch.Tensor, dim: int = 0, start: Any = None, end: Any = None,
                 step: Any = 1) -> list[Any] | None:
    """The sizes of ``x[..., start:end:step]`` on ``dim`` as torch's fake ``slice`` finds
    them: its own index clamping (``_compute_slice_index``), so the same questions, the same
    guards and the same expressions, without the fake dispatch, its op cache and the
    ``as_strided`` view it builds (two thirds of a slice's cost on Swin's padded maps).
    None where torch must answer: a symbolic input torch would give an unbacked size, a
    step that is not a positive int, a dim out of range (torch's error), or a torch
    without that helper."""
    try:
        from torch._subclasses.fake_impls import _compute_slice_index
        from torch.fx.experimental.symbolic_shapes import guard_or_false, statically_known_true
    except ImportError:  # pragma: no cover - another torch: its own slice
        return None
    if not isinstance(dim, int) or isinstance(dim, bool) or not -x.dim() <= dim < x.dim() or \
            not isinstance(step, int) or isinstance(step, bool) or step <= 0:
        return None
    sizes = list(x.shape)
    dim %= x.dim()
    size = sizes[dim]
    first = 0 if start is None else _compute_slice_index(size, start)
    last = size if end is None or statically_known_true(end == sys.maxsize) \
        else _compute_slice_index(size, end)
    if first is None or last is None:
        return None
    if guard_or_false(last >= first):
        sizes[dim] = (last - first + step - 1) // step
    elif guard_or_false(first >= last):
        sizes[dim] = 0
    else:
        sizes[dim] = (torch.sym_max(last - first, 0) + step - 1) // step
    return sizes


def _view(args: Any, kwargs: Any) -> Any:
    """``view(x, sizes)`` / ``_unsafe_view`` under no_grad whose sizes multiply out to the
    input's, as polynomials in the size atoms: a fresh tensor of those sizes. torch's
    fake view runs a Python reference that splits and merges dims with symbolic products
    and quotients: a partition ``reshape(B, C, H // P, P, W // P, P)`` of a feature map
    whose side is a floor expression of the input came back as ``7*((8*q**2)//q)`` and
    the next partition spent minutes proving guards on it (MaxViT: the trace ran out of
    its 300 s). When the sizes are plainly the same number nothing needs proving. One
    ``-1`` is the input's product divided by the others when torch's ``//`` leaves a
    quotient that multiplies back to it; anything else takes torch's path (its sizes,
    guards and errors).
    Values and aliasing are never read under no_grad (see :func:`_new`)."""
    import sympy as sp

    if torch.is_grad_enabled() or kwargs or len(args) != 2 or \
            not isinstance(args[0], torch.Tensor):
        return None
    x, size = args
    if not isinstance(size, (list, tuple)) or \
            not all(isinstance(v, (int, torch.SymInt)) and not isinstance(v, bool)
                    for v in size):
        return None
    if not any(isinstance(v, torch.SymInt) for v in (*size, *x.shape)):
        return None  # concrete: torch's kernel is cheap and exact
    numel = sp.expand(sp.Mul(*_exprs(x.shape)))
    free = [i for i, v in enumerate(size) if isinstance(v, int) and v == -1]
    if len(free) > 1 or any(isinstance(v, int) and v < -1 for v in size):
        return None
    sizes = list(size)
    if free:
        rest = sp.expand(sp.Mul(*(C.sym_expr(v) for i, v in enumerate(size) if i != free[0])))
        if rest == 0:
            return None
        other = 1
        for i, v in enumerate(size):
            if i != free[0]:
                other = other * v
        total = 1
        for v in x.shape:
            total = total * v
        sizes[free[0]] = total // other
        if sp.expand(C.sym_expr(sizes[free[0]]) * rest - numel) != 0:
            return None  # torch did not divide it out exactly: let torch's view decide
    elif sp.expand(sp.Mul(*_exprs(sizes)) - numel) != 0:
        return None
    return _fresh(x, sizes)


def padded_size(size: Any, pad: Any) -> Any:
    """``size + pad``, spelled ``m * ceil(size / m)`` when ``pad`` provably rounds ``size``
    up to a multiple of a constant ``m`` (ints and torch SymInts alike).

    Swin pads a feature map to a multiple of its window, ``pad = (w - L % w) % w``, and
    its patch merging to a multiple of 2, ``pad = L % 2``. Added as they are, torch's
    ``L + Mod(7 - Mod(L, 7), 7)`` is a size its symbolic reasoning cannot divide by 7:
    the window partition's ``view`` then records guards (``Eq(floor(Lp / floor(Lp/7)),
    7)``) that it cannot prove and that pin the dims. ``7 * ((L + 6) // 7)`` is the same
    number, and ``// 7`` of it simplifies.

    The proof, per pad: every occurrence of ``L`` in ``pad`` sits in a ``Mod(a*L + b, m)``
    (integers ``a, b``, ``m > 0``), so ``pad`` depends on ``L`` only through ``L mod M``
    (``M`` the lcm of the ``m``); then ``pad(r)`` for each residue ``r`` in ``0..M-1``
    satisfying ``0 <= pad(r) < M`` and ``M | r + pad(r)`` is ``size + pad = M ceil(size /
    M)`` for every integer size. Otherwise (or for plain ints) the plain sum.

    >>> padded_size(10, 4)
    14
    """
    if not isinstance(size, torch.SymInt) or not isinstance(pad, torch.SymInt):
        return size + pad
    m = _rounding_modulus(C.sym_expr(size), C.sym_expr(pad))
    return size + pad if m is None else m * ((size + m - 1) // m)


@functools.lru_cache(maxsize=4096)
def _rounding_modulus(size: Any, pad: Any) -> int | None:
    """The ``M`` of :func:`padded_size` when its proof goes through, else ``None``
    (remembered per pair of expressions: Swin pads every block of a stage alike)."""
    import math

    import sympy as sp
    from torch.utils._sympy.functions import Mod, PythonMod

    if not isinstance(size, sp.Expr) or not isinstance(pad, sp.Expr):
        return None
    s = sp.Dummy("L", integer=True)
    p = pad.xreplace({size: s})
    if p.free_symbols != {s}:
        return None
    inner: dict[Any, Any] = {}
    for atom in p.atoms(Mod, PythonMod):
        arg, mod = atom.args
        if not (mod.is_Integer and mod > 0) or s not in arg.free_symbols:
            continue
        poly = sp.Poly(arg, s) if arg.is_polynomial(s) else None
        if poly is not None and poly.degree() <= 1 and all(c.is_Integer
                                                            for c in poly.all_coeffs()):
            inner[atom] = sp.Dummy()
    if not inner or s in p.xreplace(inner).free_symbols:
        return None
    m = math.lcm(*(int(a.args[1]) for a in inner))
    if m > 4096:
        return None
    for r in range(m):
        v = p.xreplace({s: sp.Integer(r)})
        if not v.is_Integer or not 0 <= int(v) < m or (r + int(v)) % m:
            return None
    return m


def _ntuple(v: Any, n: int) -> list[Any]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v


#: aten overload packet -> rule ``(args, kwargs) -> output | None``
SHAPE_RULES: dict[Any, Any] = {
    torch.ops.aten.convolution: _convolution,
    torch.ops.aten.cat: _cat,
    torch.ops.aten.constant_pad_nd: _constant_pad,
    torch.ops.aten.slice: _slice,
    torch.ops.aten.view: _view,
    torch.ops.aten._unsafe_view: _view,
    torch.ops.aten.sum: _reduce,
    torch.ops.aten.mean: _reduce,
    torch.ops.aten.mm: _matmul(2),
    torch.ops.aten.addmm: _matmul(2),
    torch.ops.aten.bmm: _matmul(3),
    torch.ops.aten.native_batch_norm: _bn_eval,
    torch.ops.aten._native_batch_norm_legit_no_training: _bn_legit_eval}
for _n in ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
           "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
           "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d",
           "upsample_bicubic2d"):
    if hasattr(torch.ops.aten, _n):
        SHAPE_RULES[getattr(torch.ops.aten, _n)] = _upsample
    if hasattr(torch.ops.aten, _n + "_backward"):
        SHAPE_RULES[getattr(torch.ops.aten, _n + "_backward")] = _upsample_backward
for _n in _POOLS:
    if hasattr(torch.ops.aten, _n):
        SHAPE_RULES[getattr(torch.ops.aten, _n)] = _pool(_n)
for _n in ("add", "sub", "mul", "div"):
    SHAPE_RULES[getattr(torch.ops.aten, _n)] = _binary
    SHAPE_RULES[getattr(torch.ops.aten, _n + "_")] = _binary_inplace
for _n in ("relu", "hardtanh", "silu", "gelu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
           "leaky_relu", "elu", "mish"):
    SHAPE_RULES[getattr(torch.ops.aten, _n)] = _unary
    if hasattr(torch.ops.aten, _n + "_"):
        SHAPE_RULES[getattr(torch.ops.aten, _n + "_")] = _unary_inplace


def _polar(args: Any, kwargs: Any) -> Any:
    """``polar(abs, angle)`` of same-shaped float tensors: a complex tensor of that shape
    (torch's fake kernel specializes every size)."""
    if len(args) != 2 or kwargs or not all(isinstance(a, torch.Tensor) for a in args):
        return None
    a, b = args
    complex_of = {torch.float32: torch.complex64, torch.float64: torch.complex128}
    if a.dtype != b.dtype or a.dtype not in complex_of or a.shape != b.shape:
        return None
    mode = getattr(a, "fake_mode", None)
    if mode is None:
        return None
    return a.new_empty(a.shape, dtype=complex_of[a.dtype])


SHAPE_RULES[torch.ops.aten.polar] = _polar


def _baddbmm(args: Any, kwargs: Any) -> Any:
    """``baddbmm(self, batch1, batch2)``: ``(b, n, p)`` from ``(b, n, m) @ (b, m, p)``
    (torch's meta kernel expands ``self`` to that shape with concrete-only sizes and fails
    on symbolic ones: BLOOM's ALiBi scores)."""
    if len(args) < 3 or "out" in kwargs or not all(isinstance(a, torch.Tensor)
                                                   for a in args[:3]):
        return None
    x, b1, b2 = args[:3]
    if b1.dim() != 3 or b2.dim() != 3 or x.dim() > 3 or not (x.dtype == b1.dtype == b2.dtype):
        return None
    out = (b1.shape[0], b1.shape[1], b2.shape[2])
    # self must broadcast to the output: each of its sizes 1 or the output's (compared as
    # expressions, no guard); anything else takes torch's path
    for have, want in zip(reversed(tuple(x.shape)), reversed(out), strict=False):
        if not (isinstance(have, int) and have == 1) and _exprs((have,)) != _exprs((want,)):
            return None
    return _fresh(b1, out)


SHAPE_RULES[torch.ops.aten.baddbmm] = _baddbmm


def _addcmul(args: Any, kwargs: Any) -> Any:
    """``addcmul``/``addcdiv(self, t1, t2)`` of floating tensors of one dtype: their
    broadcast shape (torch's meta kernel expands with concrete-only sizes and fails on
    symbolic ones: timm's ResMLP ``Affine``)."""
    ts = args[:3]
    if len(ts) < 3 or "out" in kwargs or not all(isinstance(t, torch.Tensor) for t in ts):
        return None
    if not all(t.is_floating_point() and t.dtype == ts[0].dtype and t.device == ts[0].device
               for t in ts):
        return None
    n = max(t.dim() for t in ts)
    shape: list[Any] = []
    for i in range(n):  # from the last dim: each size 1, or equal as expressions
        sizes = [t.shape[t.dim() - 1 - i] for t in ts if t.dim() > i]
        wide = [z for z in sizes if not (isinstance(z, int) and z == 1)]
        if any(_exprs((z,)) != _exprs((wide[0],)) for z in wide):
            return None
        shape.append(wide[0] if wide else 1)
    biggest = max(ts, key=lambda t: t.dim())
    return _fresh(biggest, tuple(reversed(shape)))


def _im2col(args: Any, kwargs: Any) -> Any:
    """``im2col`` (``nn.Unfold``): ``(N, C, H, W)`` to ``(N, C kh kw, L)``, ``L`` the blocks
    along H times those along W (torch's meta kernel fixes every size)."""
    if kwargs or len(args) != 5 or not isinstance(args[0], torch.Tensor) or \
            args[0].dim() not in (3, 4):
        return None
    x, kernel, dilation, padding, stride = args
    *lead, c, h, w = x.shape
    blocks = 1
    for n, k, d, p, s in zip((h, w), kernel, dilation, padding, stride, strict=True):
        need = d * (k - 1) + 1 - 2 * p  # at least one block <=> size >= need
        if need > 1 and not n >= need:  # records a guard (H >= 16): validity
            return None
        blocks = blocks * ((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return _fresh(x, (*lead, c * kernel[0] * kernel[1], blocks))


def _col2im(args: Any, kwargs: Any) -> Any:
    """``col2im`` (``nn.Fold``): ``(N, C kh kw, L)`` to ``(N, C, *output_size)``."""
    if kwargs or len(args) != 6 or not isinstance(args[0], torch.Tensor) or \
            args[0].dim() not in (2, 3):
        return None
    x, size, kernel = args[0], args[1], args[2]
    *lead, ck, _ = x.shape
    per = kernel[0] * kernel[1]
    if not isinstance(ck, int) or ck % per:
        return None
    return _fresh(x, (*lead, ck // per, *size))


SHAPE_RULES[torch.ops.aten.addcmul] = _addcmul
SHAPE_RULES[torch.ops.aten.im2col] = _im2col
SHAPE_RULES[torch.ops.aten.col2im] = _col2im
SHAPE_RULES[torch.ops.aten.addcdiv] = _addcmul


def forget_shapes() -> None:
    """Drop the tensors cached for reuse (they belong to one trace's fake mode)."""
    _EMPTY.clear()
    _SHAPED.clear()
    _CONV_SIZES.clear()
