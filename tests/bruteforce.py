"""Brute-force operation counters: every op implemented literally with loops over small
integer sizes, counting each scalar multiply, add, compare, divide and exp as it happens.

Nothing here uses a closed-form formula: counts come from walking the index space, and
output shapes from the positions the loops actually produce. Each function returns
``(work, output_shape)`` with ``work`` a dict over symflops' kinds of work
(``matmul_mul``, ``matmul_add``, ``bias``, ``norm_affine``, ``norm_stats``,
``activation``, ``pooling``, ``softmax``, ``elementwise``) and ``params`` where a layer
has weights (counted by enumerating the weight tensors' entries).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

Work = dict[str, int]
Shape = tuple[int, ...]


class Tally:
    """Counts of each kind of work; ``+=`` through :meth:`op`."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, int] = defaultdict(int)

    def op(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n

    def work(self) -> Work:
        return {k: v for k, v in self.counts.items() if v}

    def merge(self, other: Work, times: int = 1) -> None:
        for k, v in other.items():
            self.counts[k] += v * times


def _grid(sizes: Sequence[int]) -> itertools.product[tuple[int, ...]]:
    return itertools.product(*(range(s) for s in sizes))


def _split_batch(shape: Shape, n: int) -> tuple[int, bool, int, Shape]:
    """(batch, batched, channels, spatial) of a (B, C, *spatial) or (C, *spatial) input."""
    batched = len(shape) == n + 2
    return (shape[0] if batched else 1), batched, shape[-n - 1], tuple(shape[-n:])


# ----------------------------------------------------------------------------- conv
def conv(shape: Shape, cout: int, kernel: Sequence[int], stride: Sequence[int],
         padding: Sequence[int] | str, dilation: Sequence[int], groups: int = 1,
         bias: bool = True) -> tuple[Work, Shape, int]:
    """Direct convolution over the zero-padded input: each output is a dot product over
    its group's input channels and every kernel tap (padding zeros are multiplied too,
    as the padded formulation computes them), then a bias add."""
    n = len(kernel)
    b, batched, cin, spatial = _split_batch(shape, n)
    if padding == "same":  # torch pads dilation*(k-1) in total, the extra one on the right
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        padded = [s + t for s, t in zip(spatial, total, strict=True)]
    else:
        assert not isinstance(padding, str)
        padded = [s + 2 * p for s, p in zip(spatial, padding, strict=True)]
    # output positions: every window start (stride apart) whose last tap is inside
    outs = []
    for size, k, s, d in zip(padded, kernel, stride, dilation, strict=True):
        o = 0
        while o * s + d * (k - 1) < size:
            o += 1
        outs.append(o)
    cin_g, cout_g = cin // groups, cout // groups
    t = Tally()
    for _bb, co in itertools.product(range(b), range(cout)):
        g = co // cout_g
        for pos in _grid(outs):
            first = True
            for _ci in range(g * cin_g, (g + 1) * cin_g):
                for tap in _grid(kernel):
                    idx = [p * s + j * d for p, s, j, d in
                           zip(pos, stride, tap, dilation, strict=True)]
                    assert all(0 <= i < size for i, size in zip(idx, padded, strict=True))
                    t.op("matmul_mul")
                    if not first:
                        t.op("matmul_add")
                    first = False
            if bias:
                t.op("bias")
    params = cout * cin_g * math.prod(kernel) + (cout if bias else 0)
    out = ((b,) if batched else ()) + (cout,) + tuple(outs)
    return t.work(), out, params


def conv_transpose(shape: Shape, cout: int, kernel: Sequence[int], stride: Sequence[int],
                   padding: Sequence[int], output_padding: Sequence[int],
                   dilation: Sequence[int], groups: int = 1,
                   bias: bool = True) -> tuple[Work, Shape, int]:
    """Transposed convolution as a scatter: every input element times every weight of its
    group lands at ``i*stride + j*dilation`` of the uncropped output; a position that
    collects ``n`` products costs ``n - 1`` adds. The output is the uncropped buffer
    cropped by ``padding`` on both sides and extended by ``output_padding``."""
    n = len(kernel)
    b, batched, cin, spatial = _split_batch(shape, n)
    cin_g, cout_g = cin // groups, cout // groups
    t = Tally()
    hits: defaultdict[tuple[Any, ...], int] = defaultdict(int)
    extent = [0] * n
    for bb, ci in itertools.product(range(b), range(cin)):
        g = ci // cin_g
        for pos in _grid(spatial):
            for co in range(g * cout_g, (g + 1) * cout_g):
                for tap in _grid(kernel):
                    target = tuple(p * s + j * d for p, s, j, d in
                                   zip(pos, stride, tap, dilation, strict=True))
                    extent = [max(e, x + 1) for e, x in zip(extent, target, strict=True)]
                    t.op("matmul_mul")
                    hits[(bb, co) + target] += 1
    t.op("matmul_add", sum(h - 1 for h in hits.values()))
    outs = tuple(e - 2 * p + op for e, p, op in
                 zip(extent, padding, output_padding, strict=True))
    if bias:
        t.op("bias", b * cout * math.prod(outs))
    params = cin * cout_g * math.prod(kernel) + (cout if bias else 0)
    return t.work(), ((b,) if batched else ()) + (cout,) + outs, params


# ----------------------------------------------------------------------------- linear
def linear(shape: Shape, out_features: int, bias: bool = True) -> tuple[Work, Shape, int]:
    """``y = x W^T + b`` row by row."""
    rows, i_features = math.prod(shape[:-1]), shape[-1]
    t = Tally()
    for _r, _o in itertools.product(range(rows), range(out_features)):
        for i in range(i_features):
            t.op("matmul_mul")
            if i:
                t.op("matmul_add")
        if bias:
            t.op("bias")
    params = i_features * out_features + (out_features if bias else 0)
    return t.work(), tuple(shape[:-1]) + (out_features,), params


# ----------------------------------------------------------------------------- norms
def _row_stats(t: Tally, n: int) -> None:
    """mean, variance, eps, rsqrt and normalize of one row of ``n`` values."""
    for i in range(n):  # mean: sum then divide
        if i:
            t.op("norm_stats")
    t.op("norm_stats")
    for i in range(n):  # variance: (x - mean), square, sum, divide
        t.op("norm_stats")
        t.op("norm_stats")
        if i:
            t.op("norm_stats")
    t.op("norm_stats")
    t.op("norm_stats")  # + eps
    t.op("norm_stats")  # rsqrt
    for _ in range(n):  # (x - mean) * rstd
        t.op("norm_stats")


def batch_norm(shape: Shape, training: bool = False, affine: bool = True
               ) -> tuple[Work, Shape, int]:
    """Inference: ``a * x + b`` per element with folded a, b. Training: per-channel
    statistics over the batch and spatial positions, then the affine."""
    c = shape[1]
    per_channel = math.prod(shape) // c
    t = Tally()
    if not training:
        for _ in range(math.prod(shape)):
            t.op("norm_affine")
            t.op("norm_affine")
    else:
        for _ in range(c):
            _row_stats(t, per_channel)
        if affine:
            for _ in range(math.prod(shape)):
                t.op("norm_affine", 2)
    return t.work(), shape, (2 * c if affine else 0)


def layer_norm(shape: Shape, normalized: Sequence[int], affine: bool = True,
               bias: bool = True) -> tuple[Work, Shape, int]:
    n = math.prod(normalized)
    rows = math.prod(shape) // n
    t = Tally()
    for _ in range(rows):
        _row_stats(t, n)
        if affine:
            for _ in range(n):
                t.op("norm_affine")  # * weight
                if bias:
                    t.op("norm_affine")  # + bias
    return t.work(), shape, (n * (2 if bias else 1) if affine else 0)


def group_norm(shape: Shape, num_groups: int, affine: bool = True) -> tuple[Work, Shape, int]:
    b, c = shape[0], shape[1]
    per_group = c // num_groups * math.prod(shape[2:])
    t = Tally()
    for _ in range(b * num_groups):
        _row_stats(t, per_group)
    if affine:
        for _ in range(math.prod(shape)):
            t.op("norm_affine", 2)
    return t.work(), shape, (2 * c if affine else 0)


def rms_norm(shape: Shape, normalized: Sequence[int], affine: bool = True
             ) -> tuple[Work, Shape, int]:
    n = math.prod(normalized)
    rows = math.prod(shape) // n
    t = Tally()
    for _ in range(rows):
        for i in range(n):  # squares and their sum
            t.op("norm_stats")
            if i:
                t.op("norm_stats")
        t.op("norm_stats")  # divide by n
        t.op("norm_stats")  # + eps
        t.op("norm_stats")  # rsqrt
        for _ in range(n):
            t.op("norm_stats")  # x * rstd
            if affine:
                t.op("norm_affine")  # * weight
    return t.work(), shape, (n if affine else 0)


# ----------------------------------------------------------------------------- pooling
def _pool_windows(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool
                  ) -> list[int]:
    """Elements of each window along one dim, in the padded input of ``size + 2p``.

    Windows start every ``s``. Floor mode keeps windows that fit; ceil mode also keeps
    a last partial window if it starts inside the input or the left padding and
    covers elements no earlier window start reaches (torch's rule)."""
    padded = size + 2 * p
    lengths = []
    o = 0
    while True:
        start = o * s
        fits = start + d * (k - 1) < padded
        if not fits:
            partial_ok = ceil_mode and start < size + p and \
                start - s + d * (k - 1) < padded - 1
            if not partial_ok:
                break
        lengths.append(sum(1 for j in range(k) if start + j * d < padded))
        o += 1
    return lengths


def pool(shape: Shape, kind: str, kernel: Sequence[int], stride: Sequence[int],
         padding: Sequence[int], dilation: Sequence[int], ceil_mode: bool = False
         ) -> tuple[Work, Shape, int]:
    """Max (``window - 1`` compares) or average (``window - 1`` adds and a divide) pooling
    over every window of every plane."""
    n = len(kernel)
    planes = math.prod(shape[:-n])
    windows = [_pool_windows(sz, k, s, p, d, ceil_mode) for sz, k, s, p, d in
               zip(shape[-n:], kernel, stride, padding, dilation, strict=True)]
    t = Tally()
    for _ in range(planes):
        for combo in itertools.product(*windows):
            elements = math.prod(combo)
            for e in range(elements):
                if e:
                    t.op("pooling")  # compare or add
            if kind == "avg":
                t.op("pooling")  # divide
    return t.work(), tuple(shape[:-n]) + tuple(len(w) for w in windows), 0


def adaptive_pool(shape: Shape, kind: str, output_size: Sequence[int]
                  ) -> tuple[Work, Shape, int]:
    """Window ``i`` of ``out`` over ``in`` runs from ``floor(i*in/out)`` to
    ``ceil((i+1)*in/out)`` (torch's adaptive pooling)."""
    n = len(output_size)
    planes = math.prod(shape[:-n])
    windows = []
    for size, out in zip(shape[-n:], output_size, strict=True):
        lens = []
        for i in range(out):
            start, end = (i * size) // out, -(-((i + 1) * size) // out)
            lens.append(end - start)
        windows.append(lens)
    t = Tally()
    for _ in range(planes):
        for combo in itertools.product(*windows):
            elements = math.prod(combo)
            t.op("pooling", elements - 1)
            if kind == "avg":
                t.op("pooling")
    return t.work(), tuple(shape[:-n]) + tuple(output_size), 0


# ----------------------------------------------------------------------------- pointwise
class Scalar:
    """A float that counts every arithmetic operation done on it (kind ``activation``)."""

    def __init__(self, value: float, tally: Tally, kind: str = "activation") -> None:
        self.v, self.t, self.kind = value, tally, kind

    def _wrap(self, v: float) -> Scalar:
        self.t.op(self.kind)
        return Scalar(v, self.t, self.kind)

    @staticmethod
    def _val(x: Any) -> float:
        return x.v if isinstance(x, Scalar) else float(x)

    def __add__(self, o: Any) -> Scalar:
        return self._wrap(self.v + self._val(o))

    __radd__ = __add__

    def __sub__(self, o: Any) -> Scalar:
        return self._wrap(self.v - self._val(o))

    def __rsub__(self, o: Any) -> Scalar:
        return self._wrap(self._val(o) - self.v)

    def __mul__(self, o: Any) -> Scalar:
        return self._wrap(self.v * self._val(o))

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> Scalar:
        return self._wrap(self.v / self._val(o))

    def __rtruediv__(self, o: Any) -> Scalar:
        return self._wrap(self._val(o) / self.v)

    def __neg__(self) -> Scalar:  # a sign flip is not counted
        return Scalar(-self.v, self.t, self.kind)

    def apply(self, fn: Callable[[float], float]) -> Scalar:
        """A transcendental (exp, erf, tanh): one operation."""
        return self._wrap(fn(self.v))

    def maximum(self, o: Any) -> Scalar:
        return self._wrap(max(self.v, self._val(o)))

    def minimum(self, o: Any) -> Scalar:
        return self._wrap(min(self.v, self._val(o)))

    def compare(self, op: Callable[[float, float], bool], o: Any) -> bool:
        """``x < o``, ``x <= o``...: one compare (the select it feeds is free)."""
        self.t.op(self.kind)
        return op(self.v, self._val(o))

    def where_positive(self, other: Scalar) -> Scalar:
        """``x if x > 0 else other``: one compare."""
        return self._wrap(self.v if self.v > 0 else other.v)


def _sigmoid(x: Scalar) -> Scalar:
    return 1 / (1 + (-x).apply(math.exp))


#: Each activation written out literally on a counting scalar.
ACTIVATIONS: dict[str, Callable[[Scalar], Scalar]] = {
    "relu": lambda x: x.maximum(0.0),
    "relu6": lambda x: x.maximum(0.0).minimum(6.0),
    "leaky_relu": lambda x: x.where_positive(x * 0.01),
    "sigmoid": _sigmoid,
    "tanh": lambda x: x.apply(math.tanh),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: x * (0.5 * (1 + (x / math.sqrt(2.0)).apply(math.erf))),
    "gelu_tanh": lambda x: x * (0.5 * (1 + (math.sqrt(2 / math.pi) * (
        x + 0.044715 * (x * x * x))).apply(math.tanh))),
    "hardswish": lambda x: x * (x + 3.0).maximum(0.0).minimum(6.0) / 6.0,
    "hardsigmoid": lambda x: (x + 3.0).maximum(0.0).minimum(6.0) / 6.0,
}


def activation_value(name: str, x: float) -> tuple[float, int]:
    """The activation's value at ``x`` and the operations it took."""
    t = Tally()
    y = ACTIVATIONS[name](Scalar(x, t))
    return y.v, t.counts["activation"]


def activation(shape: Shape, name: str) -> tuple[Work, Shape, int]:
    t = Tally()
    for i in range(math.prod(shape)):
        ACTIVATIONS[name](Scalar(0.1 * i - 1.0, t))
    return t.work(), shape, 0


def glu_value(a: float, b: float) -> tuple[float, int]:
    """``a * sigmoid(b)`` and the operations it took."""
    t = Tally()
    y = Scalar(a, t) * _sigmoid(Scalar(b, t))
    return y.v, t.counts["activation"]


def glu(shape: Shape, dim: int = -1) -> tuple[Work, Shape, int]:
    """GLU: each output pairs element ``i`` of the first half of ``dim`` with element ``i``
    of the second half; the output shape is the positions visited."""
    dim = dim % len(shape)
    half = shape[dim] // 2
    t = Tally()
    seen = set()
    for idx in _grid(shape):
        if idx[dim] < half:  # a in the first half, its gate b at idx[dim] + half
            Scalar(0.1 * idx[dim], t) * _sigmoid(Scalar(0.2 * (idx[dim] + half), t))
            seen.add(idx)
    out = tuple(max(i[d] for i in seen) + 1 for d in range(len(shape)))
    return t.work(), out, 0


def pixel_shuffle(shape: Shape, r: int, inverse: bool = False) -> tuple[Work, Shape, int]:
    """Every input element moved to its place (torch's index map): no arithmetic; the
    output shape is the positions written."""
    *lead, c, h, w = shape
    written = set()
    for ci, hi, wi in _grid((c, h, w)):
        if inverse:  # (C, H r, W r) -> (C r^2, H, W)
            written.add((ci * r * r + (hi % r) * r + wi % r, hi // r, wi // r))
        else:  # (C r^2, H, W) -> (C, H r, W r)
            written.add((ci // (r * r), hi * r + (ci % (r * r)) // r, wi * r + ci % r))
    assert len(written) == c * h * w  # a permutation: every value lands once
    out = tuple(max(x[d] for x in written) + 1 for d in range(3))
    return {}, tuple(lead) + out, 0


def channel_shuffle(shape: Shape, groups: int) -> tuple[Work, Shape, int]:
    """Every channel moved to its place (torch's index map: output channel ``i g + j``
    takes input channel ``j C/g + i``): no arithmetic; the output shape is the positions
    written."""
    b, c, *rest = shape
    per = c // groups
    written = {i * groups + j for j in range(groups) for i in range(per)}
    assert written == set(range(c))  # a permutation of the channels: each lands once
    return {}, (b, max(written) + 1, *rest), 0


def _le(a: float, b: float) -> bool:
    return a <= b


def _lt(a: float, b: float) -> bool:
    return a < b


def _select(cond: bool, a: Scalar | float, b: Scalar | float, t: Tally) -> Scalar:
    """``where(cond, a, b)`` after both branches were computed (as torch's vectorized
    kernels do): a select, not arithmetic."""
    v = a if cond else b
    return v if isinstance(v, Scalar) else Scalar(v, t)


def _gelu_grad(x: Scalar, g: Scalar) -> Scalar:
    cdf = 0.5 * (1 + (x * (1 / math.sqrt(2.0))).apply(math.erf))
    pdf = (2 / math.sqrt(math.pi) / math.sqrt(2.0) * 0.5) * (x * x * -0.5).apply(math.exp)
    return g * (cdf + x * pdf)


def _gelu_tanh_grad(x: Scalar, g: Scalar) -> Scalar:
    beta, kappa = math.sqrt(2.0) * (2 / math.sqrt(math.pi)) * 0.5, 0.044715
    x_sq = x * x
    x_cube = x_sq * x
    tanh_inner = (beta * (x + kappa * x_cube)).apply(math.tanh)
    left, right = 0.5 * x, 1 + tanh_inner
    left_derivative = 0.5 * right
    tanh_derivative = 1 - tanh_inner * tanh_inner
    inner_derivative = beta * (1 + (3 * kappa) * x_sq)
    return g * (left_derivative + left * tanh_derivative * inner_derivative)


def _elu_grad(x: Scalar, g: Scalar) -> Scalar:  # alpha = scale = input_scale = 1
    neg = g * 1.0 * 1.0 * (x * 1.0).apply(math.exp)
    pos = g * 1.0
    return _select(x.compare(_le, 0.0), neg, pos, x.t)


def _hardswish_grad(x: Scalar, g: Scalar) -> Scalar:
    low, mid = x.compare(_le, -3.0), x.compare(_lt, 3.0)
    inner = g * ((x / 3) + 0.5)
    return _select(low, 0.0, _select(mid, inner, g, x.t), x.t)


#: Each activation's gradient written out as torch's kernel computes it, on counting
#: scalars (x the input, g the incoming gradient; sigmoid and tanh use their output y,
#: computed uncounted as the forward's).
ACTIVATION_GRADS: dict[str, Callable[[Scalar, Scalar], Scalar]] = {
    "relu": lambda x, g: _select(x.compare(_le, 0.0), 0.0, g, x.t),
    "relu6": lambda x, g: _select(x.compare(_le, 0.0) | (not x.compare(_lt, 6.0)), 0.0, g,
                                  x.t),
    "leaky_relu": lambda x, g: _select(not x.compare(_le, 0.0), g, g * 0.01, x.t),
    "sigmoid": lambda x, g: g * (_y(x, lambda v: 1 / (1 + math.exp(-v))) *
                                 (1 - _y(x, lambda v: 1 / (1 + math.exp(-v))))),
    "tanh": lambda x, g: g * (1 - _y(x, math.tanh) * _y(x, math.tanh)),
    "silu": lambda x, g: (lambda s: g * s * (1 + x * (1 - s)))(_sigmoid(x)),
    "gelu": _gelu_grad,
    "gelu_tanh": _gelu_tanh_grad,
    "hardswish": _hardswish_grad,
    "hardsigmoid": lambda x, g: _select(x.compare(lambda a, b: a > b, -3.0) &
                                        x.compare(_lt, 3.0), g * (1.0 / 6.0), 0.0, x.t),
    "elu": _elu_grad,
}


def _y(x: Scalar, fn: Callable[[float], float]) -> Scalar:
    """The forward's output at ``x`` (not counted: the gradient reads it)."""
    return Scalar(fn(x.v), x.t)


def activation_grad_value(name: str, x: float, g: float = 1.0) -> tuple[float, int]:
    """The gradient of activation ``name`` at ``x`` times ``g``, and the operations it took."""
    t = Tally()
    y = ACTIVATION_GRADS[name](Scalar(x, t), Scalar(g, t))
    return y.v, t.counts["activation"]


def softmax_grad_row(y: Sequence[float], g: Sequence[float], log: bool = False
                     ) -> tuple[list[float], int]:
    """The softmax (log-softmax: ``y`` is the log-probabilities) gradient of one row, and
    the operations it took: torch's ``(g*y - y*sum(g*y))`` / ``g - exp(y)*sum(g)``."""
    t = Tally()
    ys = [Scalar(v, t) for v in y]
    gs = [Scalar(v, t) for v in g]
    if log:
        total = gs[0]
        for v in gs[1:]:
            total = total + v
        out = [gi - yi.apply(math.exp) * total for gi, yi in zip(gs, ys, strict=True)]
    else:
        prods = [gi * yi for gi, yi in zip(gs, ys, strict=True)]
        total = prods[0]
        for v in prods[1:]:
            total = total + v
        out = [p - yi * total for p, yi in zip(prods, ys, strict=True)]
    return [v.v for v in out], t.counts["activation"]


def layer_norm_grad(x: Sequence[Sequence[float]], g: Sequence[Sequence[float]],
                    w: Sequence[float], eps: float = 1e-5
                    ) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """LayerNorm's gradients (input, weight, bias) over rows of ``x``, written out as
    torch's native_layer_norm_backward computes them; the forward's mean and rstd are
    given (not counted). Returns the values and the operations of each gradient."""
    counts: dict[str, int] = {}
    t = Tally()
    n = len(w)
    rows = []
    for xr, gr in zip(x, g, strict=True):  # grad_input, row by row
        mean = sum(xr) / n
        rstd = 1 / math.sqrt(sum((v - mean) ** 2 for v in xr) / n + eps)
        x_hat = [(Scalar(v, t) - mean) * rstd for v in xr]
        gh = [Scalar(gv, t) * wv for gv, wv in zip(gr, w, strict=True)]
        a = [v * n for v in gh]
        b = gh[0]
        for v in gh[1:]:
            b = b + v
        c1 = [u * v for u, v in zip(gh, x_hat, strict=True)]
        c2 = c1[0]
        for v in c1[1:]:
            c2 = c2 + v
        scale = Scalar(rstd, t) / n
        rows.append(([scale * (ai - b - xh * c2) for ai, xh in zip(a, x_hat, strict=True)],
                     [xh.v for xh in x_hat]))
    counts["grad_input"] = t.counts["activation"]
    t = Tally()
    dw: list[Any] = [None] * n
    db: list[Any] = [None] * n
    for (_, x_hat_values), gr in zip(rows, g, strict=True):
        for j in range(n):
            term = Scalar(gr[j], t) * x_hat_values[j]
            dw[j] = term if dw[j] is None else dw[j] + term
    counts["grad_weight"] = t.counts["activation"]
    t = Tally()
    for gr in g:
        for j in range(n):
            db[j] = Scalar(gr[j], t) if db[j] is None else db[j] + gr[j]
    counts["grad_bias"] = t.counts["activation"]
    values = {"grad_input": [[v.v for v in r] for r, _ in rows],
              "grad_weight": [v.v for v in dw], "grad_bias": [v.v for v in db]}
    return values, counts


#: neighbours per interpolated dim of each mode (nearest reads one value)
_NEIGHBOURS = {"nearest": 1, "linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}


def upsample(shape: Shape, mode: str, size: Sequence[int] | None = None,
             scale: float | None = None) -> tuple[Work, Shape, int]:
    """Resize: each output element a weighted sum of its neighbours (a multiply per
    neighbour, the adds between them); nearest copies one value. Output sizes as torch
    computes them: ``size``, or ``floor(in * scale)``."""
    spatial = shape[2:]
    outs = tuple(size) if size is not None else tuple(
        int(math.floor(s * scale)) for s in spatial)  # type: ignore[operator]
    t = Tally()
    per_dim = _NEIGHBOURS[mode]
    for _ in range(shape[0] * shape[1]):
        for _ in _grid(outs):
            if per_dim == 1:
                continue  # an index lookup
            for i, _ in enumerate(_grid([per_dim] * len(spatial))):
                t.op("elementwise")  # neighbour times its weight
                if i:
                    t.op("elementwise")  # added to the sum
    return t.work(), tuple(shape[:2]) + outs, 0


def _softmax_row(t: Tally, n: int) -> None:
    """max, subtract, exp, sum, divide (the numerically stable form)."""
    for i in range(n):
        if i:
            t.op("softmax")  # compare for the running max
    for _ in range(n):
        t.op("softmax")  # x - max
        t.op("softmax")  # exp
    for i in range(n):
        if i:
            t.op("softmax")  # sum
    for _ in range(n):
        t.op("softmax")  # divide


def softmax(shape: Shape, dim: int = -1) -> tuple[Work, Shape, int]:
    n = shape[dim]
    t = Tally()
    for _ in range(math.prod(shape) // n):
        _softmax_row(t, n)
    return t.work(), shape, 0


# ----------------------------------------------------------------------------- attention
def attention_core(batch: int, heads: int, n: int, head_dim: int, causal: bool = False,
                   skip_masked: bool = False) -> Work:
    """Q K^T, scale, softmax and A V for every query, with a causal mask either computed
    densely (masked scores still computed) or skipped (only keys j <= i)."""
    t = Tally()
    for _b, _h, i in itertools.product(range(batch), range(heads), range(n)):
        keys = [j for j in range(n) if not (causal and skip_masked and j > i)]
        for _j in keys:
            for x in range(head_dim):  # q_i . k_j
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
            t.op("elementwise")  # * 1/sqrt(head_dim)
        _softmax_row(t, len(keys))
        for _v in range(head_dim):  # sum_j a_ij v_j
            for x, _j in enumerate(keys):
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
    return t.work()


def multihead_attention(shape: Shape, embed_dim: int, heads: int, kv_heads: int | None = None,
                        causal: bool = False, skip_masked: bool = False, bias: bool = True
                        ) -> tuple[Work, Shape, int]:
    """Fused QKV projection (K and V with ``kv_heads`` heads), attention per query head
    (K/V shared within a group), output projection."""
    kv = heads if kv_heads is None else kv_heads
    head_dim = embed_dim // heads
    batch, n = (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])
    t = Tally()
    w, _, p1 = linear(shape, embed_dim + 2 * kv * head_dim, bias)
    t.merge(w)
    t.merge(attention_core(batch, heads, n, head_dim, causal, skip_masked))
    w, _, p2 = linear(shape, embed_dim, bias)
    t.merge(w)
    return t.work(), shape, p1 + p2


def residual_add(shape: Shape) -> Work:
    t = Tally()
    for _ in range(math.prod(shape)):
        t.op("elementwise")
    return t.work()


def transformer_block(shape: Shape, dim: int, heads: int, mlp_ratio: int = 4,
                      kv_heads: int | None = None, causal: bool = False,
                      norm: str = "layernorm", act: str = "gelu") -> tuple[Work, Shape, int]:
    """x + MHA(norm(x)); x + fc2(act(fc1(norm(x))))."""
    t = Tally()
    params = 0

    def normed() -> tuple[Work, Shape, int]:
        return layer_norm(shape, (dim,)) if norm == "layernorm" else rms_norm(shape, (dim,))

    for w, _, p in (normed(), multihead_attention(shape, dim, heads, kv_heads, causal)):
        t.merge(w)
        params += p
    t.merge(residual_add(shape))
    w, _, p = normed()
    t.merge(w)
    params += p
    w, hidden, p = linear(shape, mlp_ratio * dim)
    t.merge(w)
    params += p
    t.merge(activation(hidden, act)[0])
    w, _, p = linear(hidden, dim)
    t.merge(w)
    params += p
    t.merge(residual_add(shape))
    return t.work(), shape, params


# ----------------------------------------------------------------------------- vision
def position_embedding(shape: Shape) -> tuple[Work, Shape, int]:
    """A learned (N, dim) table added to each of the B sequences: one add per element."""
    t = Tally()
    for _ in range(math.prod(shape)):
        t.op("elementwise")
    return t.work(), shape, shape[1] * shape[2]


def window_attention(shape: Shape, dim: int, heads: int, window: int, shift: int
                     ) -> tuple[Work, Shape, int]:
    """torchvision's shifted window attention on (B, H, W, dim), loop by loop: pad to
    multiples of the window; qkv; q scale; per window, head, query and key a dot product,
    the bias add and (shifted) the mask add; softmax rows; A V; the shift mask built once
    per window (subtract, two compares per pair); proj."""
    b, h, w, _ = shape
    ph, pw = -(-h // window) * window, -(-w // window) * window
    shifted = shift > 0 and (window < ph or window < pw)
    n, hd, windows = window * window, dim // heads, (ph // window) * (pw // window)
    t = Tally()
    padded = (b, ph, pw, dim)
    work, _, p1 = linear(padded, 3 * dim)
    t.merge(work)
    for _ in range(b * ph * pw * dim):
        t.op("elementwise")  # q * head_dim^-1/2
    if shifted:
        for _ in range(windows * n * n):
            t.op("elementwise", 3)  # mask: subtract, != 0, == 0
    for _b, _w, _h, _i in itertools.product(range(b), range(windows), range(heads), range(n)):
        for _j in range(n):
            for x in range(hd):
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
            t.op("elementwise")  # + relative position bias
            if shifted:
                t.op("elementwise")  # + shift mask
        _softmax_row(t, n)
        for _v in range(hd):
            for x in range(n):
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
    work, _, p2 = linear(padded, dim)
    t.merge(work)
    return t.work(), shape, p1 + p2 + (2 * window - 1) ** 2 * heads


def patch_merging(shape: Shape, dim: int) -> tuple[Work, Shape, int]:
    """Pad to even, concatenate 2 x 2 neighbours (a copy), LayerNorm(4 dim), Linear(4 dim,
    2 dim) without bias."""
    merged = (shape[0], -(-shape[1] // 2), -(-shape[2] // 2), 4 * dim)
    t = Tally()
    w1, _, p1 = layer_norm(merged, (4 * dim,))
    w2, out, p2 = linear(merged, 2 * dim, bias=False)
    t.merge(w1)
    t.merge(w2)
    return t.work(), out, p1 + p2


# ----------------------------------------------------------------------------- recurrent
#: a cell's weights as lists: W_ih (G h x I), W_hh (G h x h), b_ih, b_hh (G h)
Weights = tuple[list[list[float]], list[list[float]], list[float], list[float]]


def _rnn_dot(t: dict[str, int], w: list[float], x: list[float]) -> float:
    s = 0.0
    for j, (a, b) in enumerate(zip(w, x, strict=True)):
        t["matmul_mul"] = t.get("matmul_mul", 0) + 1
        if j:
            t["matmul_add"] = t.get("matmul_add", 0) + 1
        s += a * b
    return s


def _rnn_op(t: dict[str, int], kind: str, n: int = 1) -> None:
    t[kind] = t.get(kind, 0) + n


def _rnn_sigmoid(t: dict[str, int], x: float) -> float:
    _rnn_op(t, "activation", 3)  # exp(-x), add 1, divide
    return 1 / (1 + math.exp(-x))


def _rnn_tanh(t: dict[str, int], x: float) -> float:
    _rnn_op(t, "activation")
    return math.tanh(x)


def _rnn_gates(t: dict[str, int], cell: Weights, x: list[float], h: list[float], n: int,
           bias: bool) -> tuple[list[float], list[float]]:
    """x W_ih^T + b_ih and h W_hh^T + b_hh, counted."""
    w_ih, w_hh, b_ih, b_hh = cell
    gx = [_rnn_dot(t, w_ih[k], x) for k in range(n)]
    gh = [_rnn_dot(t, w_hh[k], h) for k in range(n)]
    if bias:
        _rnn_op(t, "bias", 2 * n)
        gx = [a + b for a, b in zip(gx, b_ih, strict=True)]
        gh = [a + b for a, b in zip(gh, b_hh, strict=True)]
    return gx, gh


def lstm_step(t: dict[str, int], cell: Weights, x: list[float], h: list[float], c: list[float],
              bias: bool) -> tuple[list[float], list[float]]:
    """torch.nn.LSTMCell's equations, every operation counted."""
    hid = len(h)
    gx, gh = _rnn_gates(t, cell, x, h, 4 * hid, bias)
    _rnn_op(t, "elementwise", 4 * hid)
    g = [a + b for a, b in zip(gx, gh, strict=True)]
    i = [_rnn_sigmoid(t, v) for v in g[:hid]]
    f = [_rnn_sigmoid(t, v) for v in g[hid:2 * hid]]
    gg = [_rnn_tanh(t, v) for v in g[2 * hid:3 * hid]]
    o = [_rnn_sigmoid(t, v) for v in g[3 * hid:]]
    _rnn_op(t, "elementwise", 3 * hid)  # f c, i g, +
    c2 = [fk * ck + ik * gk for fk, ck, ik, gk in zip(f, c, i, gg, strict=True)]
    _rnn_op(t, "elementwise", hid)  # o * tanh(c')
    h2 = [ok * _rnn_tanh(t, ck) for ok, ck in zip(o, c2, strict=True)]
    return h2, c2


def gru_step(t: dict[str, int], cell: Weights, x: list[float], h: list[float], bias: bool
             ) -> list[float]:
    """torch.nn.GRUCell's equations (h' = n + z (h - n)), every operation counted."""
    hid = len(h)
    gx, gh = _rnn_gates(t, cell, x, h, 3 * hid, bias)
    _rnn_op(t, "elementwise", 2 * hid)
    r = [_rnn_sigmoid(t, a + b) for a, b in zip(gx[:hid], gh[:hid], strict=True)]
    z = [_rnn_sigmoid(t, a + b) for a, b in zip(gx[hid:2 * hid], gh[hid:2 * hid], strict=True)]
    _rnn_op(t, "elementwise", 2 * hid)  # r * (h W_hn + b_hn), + x part
    n = [_rnn_tanh(t, a + rk * b) for a, rk, b in zip(gx[2 * hid:], r, gh[2 * hid:], strict=True)]
    _rnn_op(t, "elementwise", 3 * hid)  # h - n, z *, n +
    return [nk + zk * (hk - nk) for nk, zk, hk in zip(n, z, h, strict=True)]


def recurrent(shape: Shape, cell: str, hidden: int, bias: bool = True
              ) -> tuple[Work, Shape, int]:
    """A one-layer LSTM or GRU on (T, B, I), every step and row through the counted gate
    equations (weights of ones: the count does not depend on them)."""
    steps, batch, inputs = shape
    g = 4 if cell == "lstm" else 3
    w: Weights = ([[1.0] * inputs for _ in range(g * hidden)],
                  [[1.0] * hidden for _ in range(g * hidden)], [0.0] * (g * hidden),
                  [0.0] * (g * hidden))
    t: dict[str, int] = {}
    for _s, _b in itertools.product(range(steps), range(batch)):
        if cell == "lstm":
            lstm_step(t, w, [0.0] * inputs, [0.0] * hidden, [0.0] * hidden, bias)
        else:
            gru_step(t, w, [0.0] * inputs, [0.0] * hidden, bias)
    params = g * hidden * (inputs + hidden) + (2 * g * hidden if bias else 0)
    return {k: v for k, v in t.items() if v}, (steps, batch, hidden), params
# ----------------------------------------------------------------------------- LM layers
def gated_mlp(shape: Shape, hidden: int, act: str) -> tuple[Work, Shape, int]:
    """down(act(gate(x)) * up(x)), no biases: two projections, the activation, one
    multiply per hidden element, the down projection."""
    t = Tally()
    params = 0
    for _ in ("gate", "up"):
        w, hidden_shape, p = linear(shape, hidden, bias=False)
        t.merge(w)
        params += p
    t.merge(activation(hidden_shape, act)[0])
    t.op("elementwise", math.prod(hidden_shape))  # gate * up
    w, out, p = linear(hidden_shape, shape[-1], bias=False)
    t.merge(w)
    return t.work(), out, params + p


def rotary_table(positions: int, head_dim: int) -> Work:
    """transformers' LlamaRotaryEmbedding for ``positions`` positions, literally."""
    t = Tally()
    inv_freq = [10000.0 ** (-2 * i / head_dim) for i in range(head_dim // 2)]
    for pos in range(positions):
        angles = [Scalar(float(pos), t, "elementwise") * f for f in inv_freq]
        for a in angles + angles:  # emb = cat(freqs, freqs)
            cos, sin = a.apply(math.cos), a.apply(math.sin)
            cos * 1.0, sin * 1.0  # times attention_scaling
    return t.work()


def rotary(vectors: int, head_dim: int) -> Work:
    """``x * cos + rotate_half(x) * sin`` on ``vectors`` vectors; rotate_half's negation
    of the second half is an aten.neg, counted here as the tracer counts it."""
    t = Tally()
    half = head_dim // 2
    for _ in range(vectors):
        x = [Scalar(0.1 * i, t, "elementwise") for i in range(head_dim)]
        t.op("elementwise", half)  # -x2
        rotated = [-v for v in x[half:]] + x[:half]
        for xi, ri in zip(x, rotated, strict=True):
            xi * 0.5 + ri * 0.8
    return t.work()


def moe(shape: Shape, hidden: int, experts: int, k: int) -> tuple[Work, Shape, int]:
    """Router, softmax, top-k by successive maxima, renormalized weights, each token
    through its k experts, the weighted sum."""
    t = Tally()
    tokens, dim = math.prod(shape[:-1]), shape[-1]
    w, logits, router = linear(shape, experts, bias=False)
    t.merge(w)
    t.merge(softmax(logits)[0])
    for _ in range(tokens):
        left = list(range(experts))
        for _ in range(k):  # the largest of what is left: len - 1 compares
            t.op("elementwise", len(left) - 1)
            left.pop()
        t.op("elementwise", (k - 1) + k)  # sum of the k weights, k divides
    w, _, one = gated_mlp((tokens * k, dim), hidden, "silu")
    t.merge(w)
    t.op("elementwise", tokens * dim * (k + k - 1))  # k products, k - 1 adds per output
    return t.work(), shape, router + experts * one


def latent_attention(shape: Shape, heads: int, kv_rank: int, q_rank: int, rope_dim: int,
                     head_dim: int) -> tuple[Work, Shape, int]:
    """Multi-head latent attention as transformers' DeepseekV2Attention runs it, no biases:
    q_a, RMSNorm, q_b; kv_a (latent and shared rope key), RMSNorm on the latent, rotary on
    the rope halves (every query head and the one shared key), kv_b on every key's latent,
    then per head scores over head_dim + rope_dim, scale, softmax, A V over head_dim, o_proj."""
    batch, n, embed = shape
    qk = head_dim + rope_dim
    t = Tally()
    params = 0
    for sub_shape, out, norm in (((batch, n, embed), q_rank, False),
                                 ((batch, n, q_rank), q_rank, True),
                                 ((batch, n, q_rank), heads * qk, False),
                                 ((batch, n, embed), kv_rank + rope_dim, False),
                                 ((batch, n, kv_rank), kv_rank, True),
                                 ((batch, n, kv_rank), heads * 2 * head_dim, False)):
        w, _, p = rms_norm(sub_shape, (out,)) if norm else linear(sub_shape, out, bias=False)
        t.merge(w)
        params += p
    t.merge(rotary(batch * n * (heads + 1), rope_dim))
    for _b, _h, _i in itertools.product(range(batch), range(heads), range(n)):
        for _j in range(n):
            for x in range(qk):
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
            t.op("elementwise")
        _softmax_row(t, n)
        for _v in range(head_dim):
            for x in range(n):
                t.op("matmul_mul")
                if x:
                    t.op("matmul_add")
    w, _, p = linear((batch, n, heads * head_dim), embed, bias=False)
    t.merge(w)
    return t.work(), shape, params + p
