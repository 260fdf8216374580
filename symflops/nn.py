"""Symbolic layers that mirror ``torch.nn``: same names, same arguments.

Each layer's ``cost(input_shape)`` propagates the shape and returns a
:class:`~symflops.cost.Cost`. Sizes may be ints or SymPy expressions (names such
as ``"B"`` or ``"H"`` are turned into the canonical symbols).

>>> import symflops as sf
>>> from symflops.symbols import B, C_in, C_out, K, H, W
>>> c = sf.nn.Conv2d(C_in, C_out, K, padding="same").cost((B, C_in, H, W))
>>> c.flops
2*B*C_in*C_out*H*K**2*W
>>> c.params
C_out*(C_in*K**2 + 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import sympy as sp

from symflops import formulas as F
from symflops import symbols as S
from symflops.conventions import Convention
from symflops.cost import Cost, Derivation
from symflops.errors import SymflopsError

__all__ = [
    "Layer", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Linear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm",
    "GroupNorm", "RMSNorm", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "ReLU", "ReLU6", "LeakyReLU",
    "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Dropout",
    "Identity", "Flatten", "Embedding", "MultiheadAttention", "TransformerBlock", "MLP",
    "Sequential", "Residual", "Repeat", "LAYERS",
]

SizeLike: TypeAlias = int | sp.Expr | str
Shape = tuple[sp.Expr, ...]


# ----------------------------------------------------------------------------- helpers
def _size(value: Any, layer: str, arg: str) -> sp.Expr:
    """A user-given size as a SymPy expression: ints, expressions, or symbol names."""
    if isinstance(value, bool):
        raise SymflopsError(f"{arg} must be a size, not a bool", layer=layer, values={arg: value},
                            fix=f"pass {arg} as an int >= 1")
    if isinstance(value, int):
        e: sp.Expr = sp.Integer(value)
    elif isinstance(value, str):
        try:
            e = S.symbol(value)
        except SymflopsError as err:
            raise SymflopsError(err.message, layer=layer, values={arg: repr(value)},
                                fix=err.fix) from None
    elif isinstance(value, sp.Expr):
        e = value
    else:
        raise SymflopsError(f"{arg} must be an int, a SymPy expression or a symbol name",
                            layer=layer, values={arg: repr(value)},
                            fix=f"pass {arg} as an int, a SymPy expression or a name like 'H'")
    if e.is_positive is False or (e.is_number and e.is_integer is False):
        raise SymflopsError(f"{arg} must be a positive integer", layer=layer,
                            values={arg: value}, fix=f"pass {arg} >= 1")
    return e


def _nonneg(value: Any, layer: str, arg: str) -> sp.Expr:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return sp.Integer(0)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise SymflopsError(f"{arg} must be >= 0", layer=layer, values={arg: value},
                            fix=f"pass {arg} >= 0")
    return _size(value, layer, arg)


def _tuple(value: Any, n: int, layer: str, arg: str, *, zero_ok: bool = False) -> Shape:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise SymflopsError(f"{arg} needs {n} values", layer=layer, values={arg: value},
                            fix=f"pass one value or a tuple of {n}")
    conv = _nonneg if zero_ok else _size
    return tuple(conv(v, layer, arg) for v in items)


def _shape(shape: Any, layer: str) -> Shape:
    if isinstance(shape, str):
        shape = shape.split()
    if not isinstance(shape, (tuple, list)):
        raise SymflopsError("input shape must be a tuple of sizes", layer=layer,
                            values={"shape": repr(shape)}, fix='pass e.g. ("B", 3, "H", "W")')
    return tuple(_size(s, layer, "input_shape") for s in shape)


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    return a == b or sp.expand(a - b) == 0


def _fmt(v: Any) -> str:
    if isinstance(v, tuple) and len(set(v)) == 1:
        return str(v[0])
    if isinstance(v, tuple):
        return "(" + ", ".join(str(x) for x in v) + ")"
    return str(v)


def _numel(shape: Shape) -> sp.Expr:
    return sp.Mul(*shape)


def _divides(d: sp.Expr, n: sp.Expr) -> list[sp.Basic]:
    """``d`` divides ``n``, as a validity condition when either is symbolic (concrete
    values are checked when the layer is built)."""
    if d.is_number and n.is_number:
        return []
    cond = sp.Eq(sp.Mod(n, d), 0)
    return [] if cond is sp.true else [cond]


def _positive_output(sizes: Sequence[sp.Expr], layer: str, what: str, shape: Shape
                     ) -> list[sp.Basic]:
    """Concrete output sizes < 1 raise now; symbolic ones become validity conditions."""
    conds: list[sp.Basic] = []
    for s in sizes:
        if s.is_number:
            if s < 1:
                raise SymflopsError(f"{what} is larger than the (padded) input: output size {s}",
                                    layer=layer, values={"input_shape": shape},
                                    fix="use a larger input, more padding or a "
                                    "smaller kernel/stride/dilation")
        else:
            conds.append(sp.Ge(s, 1))
    return conds


# ----------------------------------------------------------------------------- base
class Layer:
    """Base of all symbolic layers. Subclasses implement ``_cost(shape, name)``."""

    #: the ``torch.nn`` class this layer mirrors
    torch_name: str = ""

    def cost(self, input_shape: Any, convention: str | Convention = "exact",
             name: str = "") -> Cost:
        """Cost of this layer on an input of ``input_shape`` under ``convention``.

        ``input_shape`` is a tuple of ints, SymPy expressions or symbol names, or a
        space-separated string of them (``"B 3 H W"``).
        """
        c = self._cost(_shape(input_shape, self.spec()), name)
        return c if convention == "exact" else c.with_convention(convention)

    def _cost(self, shape: Shape, name: str) -> Cost:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> str:
        """A short description like ``Conv2d(3, 64, kernel_size=7, stride=2)``."""
        return type(self).__name__

    def __repr__(self) -> str:
        return self.spec()

    def layer_type(self) -> str:
        """The type name a Cost reports (the class name, as in torch.nn)."""
        return type(self).__name__

    # shared leaf constructor: one derivation, from a general formula
    def _leaf(self, name: str, shape: Shape, out: Shape, general: dict[str, Any],
              general_params: Any, bindings: dict[sp.Symbol, Any], *,
              validity: Sequence[sp.Basic] = (), explanation: str = "",
              rates: Mapping[str, str] | None = None) -> Cost:
        b = {k: sp.sympify(v) for k, v in bindings.items()}
        gen = {k: sp.sympify(v) for k, v in general.items()}
        gp = sp.sympify(general_params)
        work_ = {k: v.xreplace(b) for k, v in gen.items()}
        return Cost(name, self.layer_type(), spec=self.spec(),
                    params=gp.xreplace(b), work=work_, input_shape=shape, output_shape=out,
                    validity=validity,
                    derivation=Derivation(gen, gp, b, explanation, dict(rates or {})))

    def _check_rank(self, shape: Shape, ranks: Sequence[int], layout: str) -> None:
        if len(shape) not in ranks:
            raise SymflopsError(
                f"expects a {' or '.join(str(r) + '-d' for r in ranks)} input ({layout})",
                layer=self.spec(), values={"input_shape": shape},
                fix=f"pass a shape like {layout}")

    def _check_channels(self, shape: Shape, got: sp.Expr, want: sp.Expr,
                        what: str = "channels") -> None:
        if not _same(got, want):
            raise SymflopsError(f"input has {got} {what} but the layer expects {want}",
                                layer=self.spec(), values={"input_shape": shape},
                                fix=f"pass an input with {want} {what}")


# ----------------------------------------------------------------------------- conv
_SPATIAL = {1: (S.T,), 2: (S.H, S.W), 3: (S.D, S.H, S.W)}
_SPATIAL_OUT = {1: (S.T_out,), 2: (S.H_out, S.W_out), 3: (S.D_out, S.H_out, S.W_out)}


def _kernel_symbols(n: int, square: bool) -> tuple[sp.Symbol, ...]:
    if square:
        return (S.K,) * n
    names = {1: ("K_t",), 2: ("K_h", "K_w"), 3: ("K_d", "K_h", "K_w")}[n]
    return tuple(S.symbol(x) for x in names)


class _ConvNd(Layer):
    n = 2
    transposed = False

    def __init__(self, in_channels: SizeLike, out_channels: SizeLike, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: SizeLike = 1,
                 bias: bool = True, padding_mode: str = "zeros", output_padding: Any = 0) -> None:
        name = type(self).__name__
        self.in_channels = _size(in_channels, name, "in_channels")
        self.out_channels = _size(out_channels, name, "out_channels")
        self.kernel_size = _tuple(kernel_size, self.n, name, "kernel_size")
        self.stride = _tuple(stride, self.n, name, "stride")
        self.dilation = _tuple(dilation, self.n, name, "dilation")
        self.groups = _size(groups, name, "groups")
        self.bias = bool(bias)
        self.padding_mode = padding_mode
        self.output_padding = _tuple(output_padding, self.n, name, "output_padding", zero_ok=True)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise SymflopsError("unknown padding_mode", layer=name,
                                values={"padding_mode": padding_mode},
                                fix="use zeros, reflect, replicate or circular")
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self.transposed:
                raise SymflopsError("padding must be 'same', 'valid' or sizes", layer=name,
                                    values={"padding": padding},
                                    fix="use padding='same'/'valid' (direct convs only) or ints")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise SymflopsError("padding='same' needs stride 1 (as in torch)", layer=name,
                                    values={"stride": _fmt(self.stride)},
                                    fix="use stride=1 or explicit padding")
            self.padding_str: str | None = padding
            self.padding = tuple(sp.Integer(0) for _ in range(self.n))
        else:
            self.padding_str = None
            self.padding = _tuple(padding, self.n, name, "padding", zero_ok=True)
        for ch, arg in ((self.in_channels, "in_channels"), (self.out_channels, "out_channels")):
            if ch.is_number and self.groups.is_number and ch % self.groups != 0:
                raise SymflopsError(f"groups must divide {arg}", layer=name,
                                    values={arg: ch, "groups": self.groups},
                                    fix=f"choose groups among the divisors of {ch}")
        if self.transposed:
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
                if op.is_number and s.is_number and d.is_number and op >= max(s, d):
                    raise SymflopsError("output_padding must be smaller than stride or dilation",
                                        layer=name, values={"output_padding": op, "stride": s,
                                                            "dilation": d},
                                        fix="use output_padding < max(stride, dilation)")

    def spec(self) -> str:
        parts = [str(self.in_channels), str(self.out_channels),
                 f"kernel_size={_fmt(self.kernel_size)}"]
        for arg, default in (("stride", 1), ("dilation", 1)):
            v = getattr(self, arg)
            if any(x != default for x in v):
                parts.append(f"{arg}={_fmt(v)}")
        if self.padding_str:
            parts.append(f"padding='{self.padding_str}'")
        elif any(p != 0 for p in self.padding):
            parts.append(f"padding={_fmt(self.padding)}")
        if self.transposed and any(p != 0 for p in self.output_padding):
            parts.append(f"output_padding={_fmt(self.output_padding)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _resolved_padding(self) -> Shape:
        if self.padding_str == "same":
            # torch pads dilation*(k-1) in total; the output keeps the input size
            return tuple(d * (k - 1) / 2
                         for k, d in zip(self.kernel_size, self.dilation, strict=True))
        return self.padding

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        layout = "(B, C, " + ", ".join(str(s) for s in _SPATIAL[n]) + ")"
        self._check_rank(shape, (n + 1, n + 2), layout)
        batched = len(shape) == n + 2
        batch = shape[0] if batched else sp.Integer(1)
        channels, spatial = shape[-n - 1], shape[-n:]
        self._check_channels(shape, channels, self.in_channels)
        square = len(set(self.kernel_size)) == 1
        ksym = _kernel_symbols(n, square)
        if self.transposed:
            return self._cost_transposed(name, shape, batch, batched, spatial, ksym)
        pad = self._resolved_padding()
        if self.padding_str == "same":
            out_sp = tuple(spatial)
        else:
            out_sp = tuple(sp.sympify(F.conv_output_size(s, k, st, p, d))
                           for s, k, st, p, d in zip(spatial, self.kernel_size, self.stride,
                                                     pad, self.dilation, strict=True))
        validity = _positive_output(out_sp, self.spec(), "kernel (with dilation)", shape) + \
            _divides(self.groups, self.in_channels) + _divides(self.groups, self.out_channels)
        out_shape = ((batch,) if batched else ()) + (self.out_channels,) + out_sp
        g_out = _SPATIAL_OUT[n]
        general = F.conv_work(S.B, S.C_in, S.C_out, ksym, g_out, S.groups, self.bias)
        gparams = F.conv_params(S.C_in, S.C_out, ksym, S.groups, self.bias)
        bindings: dict[sp.Symbol, Any] = {S.B: batch, S.C_in: self.in_channels,
                                          S.C_out: self.out_channels, S.groups: self.groups}
        bindings.update(zip(ksym, self.kernel_size, strict=True))
        bindings.update(zip(g_out, out_sp, strict=True))
        expl = ("each output: a dot product of C_in/groups*prod(kernel) products, its adds, "
                "and one bias add" if self.bias else
                "each output: a dot product of C_in/groups*prod(kernel) products and its adds")
        return self._leaf(name, shape, out_shape, general, gparams, bindings,
                          validity=validity, explanation=expl)

    def _cost_transposed(self, name: str, shape: Shape, batch: sp.Expr, batched: bool,
                         spatial: Shape, ksym: tuple[sp.Symbol, ...]) -> Cost:
        n = self.n
        out_sp = tuple(sp.sympify(F.conv_transpose_output_size(s, k, st, p, op, d))
                       for s, k, st, p, op, d in zip(spatial, self.kernel_size, self.stride,
                                                     self.padding, self.output_padding,
                                                     self.dilation, strict=True))
        validity = _positive_output(out_sp, self.spec(), "padding", shape) + \
            _divides(self.groups, self.in_channels) + _divides(self.groups, self.out_channels)
        out_shape = ((batch,) if batched else ()) + (self.out_channels,) + out_sp
        g_in, g_out = _SPATIAL[n], _SPATIAL_OUT[n]
        # stride and dilation enter the general formula as the layer's own values: the
        # count of covered positions depends on how they divide one another
        try:
            general = F.conv_transpose_work(S.B, S.C_in, S.C_out, ksym, g_in, g_out,
                                            self.stride, self.dilation, S.groups, self.bias)
        except SymflopsError as e:
            # stride and dilation that do not divide one another: the covered positions
            # are enumerated, which needs this layer's concrete kernel and input sizes
            if not all(x.is_Integer for x in (*self.kernel_size, *spatial)):
                raise SymflopsError(e.message, layer=self.spec(),
                                    values={"input_shape": shape},
                                    fix="give the input concrete spatial sizes, or use a "
                                        "dilation that divides the stride") from None
            general = F.conv_transpose_work(
                S.B, S.C_in, S.C_out, [int(k) for k in self.kernel_size],
                [int(x) for x in spatial], g_out,
                self.stride, self.dilation, S.groups, self.bias)
        gparams = self.in_channels * F.exact_div(self.out_channels, self.groups) * \
            F.prod(self.kernel_size) + (self.out_channels if self.bias else 0)
        bindings: dict[sp.Symbol, Any] = {S.B: batch, S.C_in: self.in_channels,
                                          S.C_out: self.out_channels, S.groups: self.groups}
        bindings.update(zip(ksym, self.kernel_size, strict=True))
        bindings.update(zip(g_in, spatial, strict=True))
        bindings.update(zip(g_out, out_sp, strict=True))
        return self._leaf(
            name, shape, out_shape, general, gparams, bindings, validity=validity,
            explanation="every input element times every weight of its group (scatter); "
                        "a position collecting n products costs n - 1 adds")


class Conv1d(_ConvNd):
    """``torch.nn.Conv1d`` on ``(B, C_in, T)``."""

    n = 1


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d`` on ``(B, C_in, H, W)``.

    >>> Conv2d(3, 64, 7, stride=2, padding=3).cost(("B", 3, 224, 224)).output_shape
    (B, 64, 112, 112)
    """

    n = 2


class Conv3d(_ConvNd):
    """``torch.nn.Conv3d`` on ``(B, C_in, D, H, W)``."""

    n = 3


class _ConvTransposeNd(_ConvNd):
    transposed = True

    def __init__(self, in_channels: SizeLike, out_channels: SizeLike, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                 groups: SizeLike = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding)


class ConvTranspose1d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose1d``."""

    n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose2d`` (torch's argument order: ..., output_padding, groups,
    bias, dilation)."""

    n = 2


class ConvTranspose3d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose3d``."""

    n = 3


# ----------------------------------------------------------------------------- linear
class Linear(Layer):
    """``torch.nn.Linear`` on ``(..., in_features)``.

    >>> Linear(4096, 1000).cost(("B", 4096)).params
    4097000
    """

    def __init__(self, in_features: SizeLike, out_features: SizeLike, bias: bool = True) -> None:
        self.in_features = _size(in_features, "Linear", "in_features")
        self.out_features = _size(out_features, "Linear", "out_features")
        self.bias = bool(bias)

    def spec(self) -> str:
        b = "" if self.bias else ", bias=False"
        return f"Linear({self.in_features}, {self.out_features}{b})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not shape:
            raise SymflopsError("expects at least a 1-d input (..., in_features)",
                                layer=self.spec(), values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.in_features})")
        self._check_channels(shape, shape[-1], self.in_features, "features")
        rows = _numel(shape[:-1])
        general = F.linear_work(S.M, S.I, S.O, self.bias)
        return self._leaf(name, shape, shape[:-1] + (self.out_features,), general,
                          F.linear_params(S.I, S.O, self.bias),
                          {S.M: rows, S.I: self.in_features, S.O: self.out_features},
                          explanation="each of the M*O outputs: a length-I dot product"
                          + (" and one bias add" if self.bias else ""))


# ----------------------------------------------------------------------------- norms
class _BatchNorm(Layer):
    ranks: tuple[int, ...] = (4,)
    layout = "(B, C, H, W)"

    def __init__(self, num_features: SizeLike, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 training: bool = False) -> None:
        self.num_features = _size(num_features, type(self).__name__, "num_features")
        self.affine = bool(affine)
        self.training = bool(training) or not track_running_stats

    def spec(self) -> str:
        extra = ("" if self.affine else ", affine=False") + (", training" if self.training
                                                             else "")
        return f"{type(self).__name__}({self.num_features}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, self.ranks, self.layout)
        self._check_channels(shape, shape[1], self.num_features)
        numel = _numel(shape)
        general = F.batch_norm_work(S.M, S.C, training=self.training, affine=self.affine)
        expl = ("inference: running statistics and affine folded into a*x + b, "
                "one multiply and one add per element" if not self.training else
                "training: per-channel mean and variance over M/C values, then the affine")
        return self._leaf(name, shape, shape, general, F.norm_params(S.C, affine=self.affine),
                          {S.M: numel, S.C: self.num_features}, explanation=expl)


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on ``(B, C)`` or ``(B, C, T)``; inference by default."""

    ranks = (2, 3)
    layout = "(B, C) or (B, C, T)"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d``; inference (folded, ``2 C H W`` per image) by default,
    ``training=True`` counts the batch statistics."""

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """``torch.nn.BatchNorm3d``."""

    ranks = (5,)
    layout = "(B, C, D, H, W)"


class LayerNorm(Layer):
    """``torch.nn.LayerNorm`` over the trailing ``normalized_shape``."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        ns = normalized_shape if isinstance(normalized_shape, (tuple, list)) else \
            (normalized_shape,)
        self.normalized_shape = tuple(_size(v, "LayerNorm", "normalized_shape") for v in ns)
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        extra += "" if self.bias else ", bias=False"
        return f"LayerNorm({_fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(_same(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {_fmt(self.normalized_shape)})")
        n = _numel(self.normalized_shape)
        general = F.layer_norm_work(S.M, S.dim, affine=self.elementwise_affine, bias=self.bias)
        return self._leaf(name, shape, shape, general,
                          F.norm_params(S.dim, affine=self.elementwise_affine, bias=self.bias),
                          {S.M: _numel(shape[:-k]), S.dim: n},
                          explanation="per row of dim: mean, variance, rsqrt, normalize "
                          "(5 dim + 2), then the affine x*w + b")


class RMSNorm(Layer):
    """``torch.nn.RMSNorm`` over the trailing ``normalized_shape`` (weight only)."""

    def __init__(self, normalized_shape: Any, eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        ns = normalized_shape if isinstance(normalized_shape, (tuple, list)) else \
            (normalized_shape,)
        self.normalized_shape = tuple(_size(v, "RMSNorm", "normalized_shape") for v in ns)
        self.elementwise_affine = bool(elementwise_affine)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"RMSNorm({_fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(_same(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {_fmt(self.normalized_shape)})")
        general = F.rms_norm_work(S.M, S.dim, affine=self.elementwise_affine)
        return self._leaf(name, shape, shape, general,
                          F.norm_params(S.dim, affine=self.elementwise_affine, bias=False),
                          {S.M: _numel(shape[:-k]), S.dim: _numel(self.normalized_shape)},
                          explanation="per row of dim: squares, sum, mean, + eps, rsqrt, "
                          "scale (3 dim + 2), then the weight")


class GroupNorm(Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels)`` on ``(B, C, *)``."""

    def __init__(self, num_groups: SizeLike, num_channels: SizeLike, eps: float = 1e-5,
                 affine: bool = True) -> None:
        self.num_groups = _size(num_groups, "GroupNorm", "num_groups")
        self.num_channels = _size(num_channels, "GroupNorm", "num_channels")
        self.affine = bool(affine)
        if self.num_groups.is_number and self.num_channels.is_number and \
                self.num_channels % self.num_groups != 0:
            raise SymflopsError("num_groups must divide num_channels", layer="GroupNorm",
                                values={"num_groups": num_groups, "num_channels": num_channels},
                                fix="choose num_groups among the divisors of num_channels")

    def spec(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}" + \
            ("" if self.affine else ", affine=False") + ")"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) < 2:
            raise SymflopsError("expects (B, C, *)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.num_channels}, H, W)")
        self._check_channels(shape, shape[1], self.num_channels)
        spatial = S.symbol("P")
        general = F.group_norm_work(S.B, S.groups, S.C, spatial, affine=self.affine)
        return self._leaf(name, shape, shape, general, F.norm_params(S.C, affine=self.affine),
                          {S.B: shape[0], S.groups: self.num_groups, S.C: self.num_channels,
                           spatial: _numel(shape[2:])},
                          validity=_divides(self.num_groups, self.num_channels),
                          explanation="statistics over each of B*groups groups of C/groups*P "
                          "values (P = spatial positions), then the per-channel affine")


# ----------------------------------------------------------------------------- pooling
class _PoolNd(Layer):
    n = 2
    kind = "max"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, ceil_mode: bool = False, **kwargs: Any) -> None:
        name = type(self).__name__
        self.kernel_size = _tuple(kernel_size, self.n, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else _tuple(stride, self.n, name,
                                                                     "stride")
        self.padding = _tuple(padding, self.n, name, "padding", zero_ok=True)
        self.dilation = _tuple(dilation, self.n, name, "dilation")
        self.ceil_mode = bool(ceil_mode)
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if p.is_number and k.is_number and 2 * p > k:
                raise SymflopsError("padding must be at most half the kernel size (as in torch)",
                                    layer=name, values={"padding": p, "kernel_size": k},
                                    fix="use padding <= kernel_size // 2")

    def spec(self) -> str:
        parts = [f"kernel_size={_fmt(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={_fmt(self.stride)}")
        if any(p != 0 for p in self.padding):
            parts.append(f"padding={_fmt(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={_fmt(self.dilation)}")
        if self.ceil_mode:
            parts.append("ceil_mode=True")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        self._check_rank(shape, (n + 1, n + 2),
                         "(B, C, " + ", ".join(str(s) for s in _SPATIAL[n]) + ")")
        spatial = shape[-n:]
        out_sp = tuple(sp.sympify(F.pool_output_size(s, k, st, p, d, self.ceil_mode))
                       for s, k, st, p, d in zip(spatial, self.kernel_size, self.stride,
                                                 self.padding, self.dilation, strict=True))
        validity = _positive_output(out_sp, self.spec(), "window", shape)
        out_shape = tuple(shape[:-n]) + out_sp
        ksym = _kernel_symbols(n, len(set(self.kernel_size)) == 1)
        fn = F.max_pool_work if self.kind == "max" else F.avg_pool_work
        bindings: dict[sp.Symbol, Any] = {S.M: _numel(shape[:-n])}
        bindings.update(zip(_SPATIAL_OUT[n], out_sp, strict=True))
        expl = ("window - 1 compares per output" if self.kind == "max" else
                "window - 1 adds and one divide per output")
        if self.ceil_mode:
            # the last window along a dim may stick out past the padded input: sum the
            # window lengths exactly (E = elements of all windows along one dim)
            esym = tuple(S.symbol(f"E_{s}") for s in _SPATIAL[n])
            outputs = S.M * F.prod(_SPATIAL_OUT[n])
            elements = S.M * F.prod(esym)
            general = F.work(pooling=elements - outputs if self.kind == "max" else elements)
            bindings.update(zip(esym, (
                F.pool_window_total(s, k, st, p, d, True) for s, k, st, p, d in zip(
                    spatial, self.kernel_size, self.stride, self.padding, self.dilation,
                    strict=True)), strict=True))
            expl += "; ceil_mode: a last window past the padded input counts only its elements"
        else:
            general = fn(S.M * F.prod(_SPATIAL_OUT[n]), F.prod(ksym))
            bindings.update(zip(ksym, self.kernel_size, strict=True))
        return self._leaf(name, shape, out_shape, general, 0, bindings, validity=validity,
                          explanation=expl + "; M = batch*channels planes")


class MaxPool1d(_PoolNd):
    """``torch.nn.MaxPool1d``."""

    n = 1


class MaxPool2d(_PoolNd):
    """``torch.nn.MaxPool2d``: ``K^2 - 1`` compares per output."""

    n = 2


class AvgPool1d(_PoolNd):
    """``torch.nn.AvgPool1d``."""

    n = 1
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class AvgPool2d(_PoolNd):
    """``torch.nn.AvgPool2d``: ``K^2`` per output (adds and one divide)."""

    n = 2
    kind = "avg"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)


class _AdaptivePoolNd(Layer):
    n = 2
    kind = "avg"

    def __init__(self, output_size: Any) -> None:
        items = tuple(output_size) if isinstance(output_size, (tuple, list)) else \
            (output_size,) * self.n
        if len(items) != self.n or not all(isinstance(v, int) and not isinstance(v, bool)
                                           and v > 0 for v in items):
            raise SymflopsError("output_size must be positive ints", layer=type(self).__name__,
                                values={"output_size": output_size},
                                fix=f"pass {self.n} int(s) >= 1")
        self.output_size = tuple(int(v) for v in items)

    def spec(self) -> str:
        return f"{type(self).__name__}({_fmt(self.output_size)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = self.n
        self._check_rank(shape, (n + 1, n + 2),
                         "(B, C, " + ", ".join(str(s) for s in _SPATIAL[n]) + ")")
        spatial = shape[-n:]
        out_shape = tuple(shape[:-n]) + tuple(sp.Integer(o) for o in self.output_size)
        fn = F.adaptive_avg_pool_work if self.kind == "avg" else F.adaptive_max_pool_work
        gin = _SPATIAL[n]
        if all(o == 1 for o in self.output_size):
            general = fn(S.M, gin, self.output_size)
            bindings: dict[sp.Symbol, Any] = {S.M: _numel(shape[:-n])}
            bindings.update(zip(gin, spatial, strict=True))
            expl = "one window over the whole plane per output"
        else:  # windows of varying length: the formula is the exact sum of their lengths
            general = fn(_numel(shape[:-n]), spatial, self.output_size)
            bindings = {}
            expl = "windows from floor(i*in/out) to ceil((i+1)*in/out), summed exactly"
        return self._leaf(name, shape, out_shape, general, 0, bindings,
                          explanation=expl + ("; window - 1 adds and a divide per output"
                                              if self.kind == "avg" else
                                              "; window - 1 compares per output"))


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool1d``."""

    n = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveAvgPool2d``; ``(1, 1)`` costs ``H W`` per plane."""

    n = 2


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """``torch.nn.AdaptiveMaxPool2d``."""

    n = 2
    kind = "max"


# ----------------------------------------------------------------------------- pointwise
class _Activation(Layer):
    activation = "relu"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _cost(self, shape: Shape, name: str) -> Cost:
        rate, why = F.ACTIVATION_RATES[self.activation]
        return self._leaf(name, shape, shape, F.activation_work(self.activation, S.M), 0,
                          {S.M: _numel(shape)},
                          explanation=f"{rate} per element: {why}",
                          rates={"activation": f"{rate} per element ({why})"})


class ReLU(_Activation):
    """``torch.nn.ReLU``: one compare per element."""

    activation = "relu"


class ReLU6(_Activation):
    """``torch.nn.ReLU6``: two compares per element."""

    activation = "relu6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU``: compare and multiply."""

    activation = "leaky_relu"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``."""

    activation = "sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh``."""

    activation = "tanh"


class SiLU(_Activation):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``."""

    activation = "silu"


class Hardswish(_Activation):
    """``torch.nn.Hardswish``."""

    activation = "hardswish"


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid``."""

    activation = "hardsigmoid"


class GELU(_Activation):
    """``torch.nn.GELU(approximate="none" | "tanh")``."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise SymflopsError("approximate must be 'none' or 'tanh'", layer="GELU",
                                values={"approximate": approximate},
                                fix="use approximate='none' or 'tanh'")
        self.approximate = approximate
        self.activation = "gelu" if approximate == "none" else "gelu_tanh"

    def spec(self) -> str:
        return "GELU()" if self.approximate == "none" else "GELU(approximate='tanh')"


class Softmax(Layer):
    """``torch.nn.Softmax(dim)``: ``5 n - 2`` per row of ``n``."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def spec(self) -> str:
        return f"Softmax(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not -len(shape) <= self.dim < len(shape):
            raise SymflopsError("dim is out of range for the input", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"use a dim in [-{len(shape)}, {len(shape) - 1}]")
        n = shape[self.dim]
        return self._leaf(name, shape, shape, F.softmax_work(S.M, S.N), 0,
                          {S.M: _numel(shape) / n, S.N: n},
                          explanation="per row of N: N - 1 compares (max), N subtracts, N exps, "
                          "N - 1 adds, N divides")


class _Free(Layer):
    """A layer that moves or keeps data and does no arithmetic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _out(self, shape: Shape) -> Shape:
        return shape

    def _cost(self, shape: Shape, name: str) -> Cost:
        return Cost(name, type(self).__name__, spec=self.spec(), params=0, work={},
                    input_shape=shape, output_shape=self._out(shape),
                    derivation=Derivation({}, sp.Integer(0), {}, "no arithmetic"))


class Dropout(_Free):
    """``torch.nn.Dropout``: free at inference."""


class Identity(_Free):
    """``torch.nn.Identity``."""


class Flatten(_Free):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def _out(self, shape: Shape) -> Shape:
        s, e = self.start_dim % len(shape), self.end_dim % len(shape)
        if s > e:
            raise SymflopsError("start_dim comes after end_dim", layer="Flatten",
                                values={"start_dim": self.start_dim, "end_dim": self.end_dim,
                                        "input_shape": shape},
                                fix="use start_dim <= end_dim")
        return tuple(shape[:s]) + (_numel(shape[s:e + 1]),) + tuple(shape[e + 1:])


class Embedding(Layer):
    """``torch.nn.Embedding(num_embeddings, embedding_dim)``: a lookup, ``V * dim``
    parameters and no arithmetic."""

    def __init__(self, num_embeddings: SizeLike, embedding_dim: SizeLike,
                 padding_idx: int | None = None) -> None:
        self.num_embeddings = _size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = _size(embedding_dim, "Embedding", "embedding_dim")

    def spec(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape + (self.embedding_dim,), {}, S.V * S.dim,
                          {S.V: self.num_embeddings, S.dim: self.embedding_dim},
                          explanation="a table lookup: no arithmetic")


# ----------------------------------------------------------------------------- attention
class MultiheadAttention(Layer):
    """Multi-head self-attention on ``(B, N, dim)`` (``batch_first``) or ``(N, dim)``.

    Children: ``qkv`` (one fused projection, the same count as three), ``scores``
    (``Q K^T``), ``scale``, ``softmax``, ``context`` (``A V``) and ``out_proj``.
    ``kv_heads`` < ``heads`` gives grouped-query attention (smaller K/V projections);
    ``causal=True`` masks, and ``skip_masked=True`` counts only the unmasked half, as
    kernels that skip masked blocks do (the default counts the dense product, as torch
    computes and counts it).
    """

    def __init__(self, embed_dim: SizeLike, num_heads: SizeLike, dropout: float = 0.0,
                 bias: bool = True, *, kv_heads: SizeLike | None = None, causal: bool = False,
                 skip_masked: bool = False, batch_first: bool = True) -> None:
        self.embed_dim = _size(embed_dim, "MultiheadAttention", "embed_dim")
        self.num_heads = _size(num_heads, "MultiheadAttention", "num_heads")
        self.kv_heads = self.num_heads if kv_heads is None else \
            _size(kv_heads, "MultiheadAttention", "kv_heads")
        self.bias, self.causal, self.skip_masked = bool(bias), bool(causal), bool(skip_masked)
        self.batch_first = bool(batch_first)
        if self.embed_dim.is_number and self.num_heads.is_number and \
                self.embed_dim % self.num_heads != 0:
            raise SymflopsError("num_heads must divide embed_dim", layer="MultiheadAttention",
                                values={"embed_dim": embed_dim, "num_heads": num_heads},
                                fix="choose num_heads among the divisors of embed_dim")
        if self.kv_heads.is_number and self.num_heads.is_number and \
                self.num_heads % self.kv_heads != 0:
            raise SymflopsError("kv_heads must divide num_heads", layer="MultiheadAttention",
                                values={"num_heads": num_heads, "kv_heads": kv_heads},
                                fix="choose kv_heads among the divisors of num_heads")
        if self.skip_masked and not self.causal:
            raise SymflopsError("skip_masked only applies to causal attention",
                                layer="MultiheadAttention", values={"causal": causal},
                                fix="pass causal=True")
        self.head_dim = F.exact_div(self.embed_dim, self.num_heads)

    def spec(self) -> str:
        parts = [str(self.embed_dim), str(self.num_heads)]
        if self.kv_heads != self.num_heads:
            parts.append(f"kv_heads={self.kv_heads}")
        if not self.bias:
            parts.append("bias=False")
        if self.causal:
            parts.append("causal=True")
        if self.skip_masked:
            parts.append("skip_masked=True")
        return f"MultiheadAttention({', '.join(parts)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (2, 3), "(B, N, dim) or (N, dim)")
        self._check_channels(shape, shape[-1], self.embed_dim, "features")
        if len(shape) == 3 and not self.batch_first:
            n, batch = shape[0], shape[1]
        else:
            n = shape[-2]
            batch = shape[0] if len(shape) == 3 else sp.Integer(1)
        kv_dim = self.kv_heads * self.head_dim
        qkv = Linear(self.embed_dim, self.embed_dim + 2 * kv_dim, bias=self.bias)
        children = [qkv._cost(shape, "qkv")]
        parts = F.attention_parts(S.B, S.heads, S.N, S.N, S.head_dim, causal=self.causal,
                                  skip_masked=self.skip_masked)
        bindings = {S.B: batch, S.heads: self.num_heads, S.N: n, S.head_dim: self.head_dim}
        heads_shape = (batch, self.num_heads, n)
        explain = {
            "scores": "Q K^T: B*heads*N*N dot products of length head_dim",
            "scale": "scores times 1/sqrt(head_dim): one multiply per score",
            "softmax": "softmax over each of B*heads*N rows of N scores (5N - 2 per row)",
            "context": "A V: B*heads*N*head_dim dot products of length N",
        }
        if self.skip_masked:
            explain = {k: v + "; only the N(N+1)/2 unmasked pairs" for k, v in explain.items()}
        for part, general in parts.items():
            out = heads_shape + ((n,) if part != "context" else (self.head_dim,))
            children.append(_Part(part, explain[part])._leaf(
                part, shape, out, general, 0, bindings, explanation=explain[part]))
        children.append(Linear(self.embed_dim, self.embed_dim, bias=self.bias)
                        ._cost(shape, "out_proj"))
        return Cost(name, "MultiheadAttention", spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape,
                    validity=_divides(self.num_heads, self.embed_dim)
                    + _divides(self.kv_heads, self.num_heads))


class _Part(Layer):
    """A named piece of a composite layer (attention's scores, softmax, ...)."""

    def __init__(self, part: str, description: str) -> None:
        self.part, self.description = part, description

    def spec(self) -> str:
        return f"attention.{self.part}"

    def layer_type(self) -> str:
        return "Attention" + self.part.capitalize()


# ----------------------------------------------------------------------------- containers
class Sequential(Layer):
    """``torch.nn.Sequential``: layers applied in order, children named ``0, 1, ...``
    or by the keys of a dict.

    >>> net = Sequential(Conv2d(3, 8, 3), ReLU())
    >>> [c.name for c in net.cost(("B", 3, "H", "W")).children]
    ['0', '1']
    """

    def __init__(self, *layers: Layer | Mapping[str, Layer]) -> None:
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            items = list(layers[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(layers)]  # type: ignore[misc]
        for key, layer in items:
            if not isinstance(layer, Layer):
                raise SymflopsError("Sequential takes symflops layers", layer="Sequential",
                                    values={key: type(layer).__name__},
                                    fix="use sf.nn layers, or sf.trace for torch modules")
        self.layers: OrderedDict[str, Layer] = OrderedDict(items)

    def spec(self) -> str:
        return f"Sequential({len(self.layers)} layers)"

    def _children(self, shape: Shape) -> tuple[list[Cost], Shape]:
        children = []
        for key, layer in self.layers.items():
            try:
                c = layer._cost(shape, key)
            except SymflopsError as e:
                raise e.at(key) from None
            children.append(c)
            shape = c.output_shape
        return children, shape

    def _cost(self, shape: Shape, name: str) -> Cost:
        children, out = self._children(shape)
        return Cost(name, self.layer_type(), spec=self.spec(), children=children,
                    input_shape=shape, output_shape=out)


class MLP(Sequential):
    """Two linear layers with an activation: ``fc1 -> act -> fc2`` (as in transformers)."""

    def __init__(self, in_features: SizeLike, hidden_features: SizeLike,
                 out_features: SizeLike | None = None, activation: str = "gelu",
                 bias: bool = True) -> None:
        acts: dict[str, type[Layer]] = {"gelu": GELU, "relu": ReLU, "silu": SiLU}
        if activation not in acts:
            raise SymflopsError("unknown MLP activation", layer="MLP",
                                values={"activation": activation}, fix="use gelu, relu or silu")
        out = in_features if out_features is None else out_features
        super().__init__({"fc1": Linear(in_features, hidden_features, bias),
                          "act": acts[activation](),
                          "fc2": Linear(hidden_features, out, bias)})
        self.activation = activation

    def spec(self) -> str:
        fc1 = self.layers["fc1"]
        assert isinstance(fc1, Linear)
        return f"MLP({fc1.in_features}, {fc1.out_features}, {self.activation})"


class Residual(Layer):
    """``body(x) + shortcut(x)``: the body's cost, the shortcut's (Identity by default)
    and one add per output element.

    A Sequential body's children appear directly under the Residual, then
    ``shortcut`` (if any) and ``add``.
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None) -> None:
        self.body, self.shortcut = body, shortcut

    def spec(self) -> str:
        return f"Residual({self.body.spec()})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if isinstance(self.body, Sequential):
            children, out = self.body._children(shape)
        else:
            body = self.body._cost(shape, "body")
            children, out = [body], body.output_shape
        skip_out = shape
        if self.shortcut is not None:
            try:
                sc = self.shortcut._cost(shape, "shortcut")
            except SymflopsError as e:
                raise e.at("shortcut") from None
            children.append(sc)
            skip_out = sc.output_shape
        if len(out) != len(skip_out) or not all(
                _same(a, b) for a, b in zip(out, skip_out, strict=True)):
            raise SymflopsError("body and shortcut give different shapes", layer=self.spec(),
                                values={"body": out, "shortcut": skip_out},
                                fix="add a shortcut layer that matches the body's output")
        children.append(Cost("add", "Add", spec="add", work=F.elementwise_work(_numel(out)),
                             input_shape=out, output_shape=out,
                             derivation=Derivation(F.elementwise_work(S.M), sp.Integer(0),
                                                   {S.M: _numel(out)},
                                                   "one add per output element")))
        return Cost(name, "Residual", spec=self.spec(), children=children, input_shape=shape,
                    output_shape=out)


class Repeat(Layer):
    """``block`` applied ``n`` times; ``n`` may be a symbol (``L`` layers).

    The block is costed once and multiplied, so a symbolic depth costs what one block
    costs. The block must keep its input shape.

    >>> from symflops.symbols import L
    >>> Repeat(Linear(8, 8), L).cost(("B", 8)).params
    72*L
    """

    def __init__(self, block: Layer, n: SizeLike) -> None:
        self.block = block
        self.n = _size(n, "Repeat", "n")

    def spec(self) -> str:
        return f"Repeat({self.block.spec()}, {self.n})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        try:
            inner = self.block._cost(shape, "block")
        except SymflopsError as e:
            raise e.at("block") from None
        if len(inner.output_shape) != len(shape) or not all(
                _same(a, b) for a, b in zip(inner.output_shape, shape, strict=True)):
            raise SymflopsError("a repeated block must keep its input shape", layer=self.spec(),
                                values={"input": shape, "output": inner.output_shape},
                                fix="repeat a shape-preserving block, or list the layers in a "
                                    "Sequential")
        return Cost(name, "Repeat", spec=self.spec(), children=[inner.replace(count=self.n)],
                    input_shape=shape, output_shape=shape)


class TransformerBlock(Sequential):
    """The standard pre-norm transformer block on ``(B, N, dim)``.

    ``x + MHA(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))`` with an MLP
    ``dim -> mlp_ratio*dim -> dim`` (GELU, biases). Children: ``attention``
    (``norm``, ``mha``, ``add``) and ``mlp`` (``norm``, ``fc1``, ``act``, ``fc2``, ``add``).
    """

    def __init__(self, dim: SizeLike, heads: SizeLike, mlp_ratio: SizeLike = 4, *,
                 kv_heads: SizeLike | None = None, causal: bool = False,
                 skip_masked: bool = False, activation: str = "gelu", norm: str = "layernorm",
                 bias: bool = True) -> None:
        d = _size(dim, "TransformerBlock", "dim")
        ratio = _size(mlp_ratio, "TransformerBlock", "mlp_ratio")
        norms: dict[str, type[LayerNorm] | type[RMSNorm]] = {"layernorm": LayerNorm,
                                                             "rmsnorm": RMSNorm}
        if norm not in norms:
            raise SymflopsError("unknown norm", layer="TransformerBlock", values={"norm": norm},
                                fix="use layernorm or rmsnorm")
        mha = MultiheadAttention(d, heads, bias=bias, kv_heads=kv_heads, causal=causal,
                                 skip_masked=skip_masked)
        mlp = MLP(d, ratio * d, d, activation=activation, bias=bias)
        super().__init__({
            "attention": Residual(Sequential({"norm": norms[norm](d), "mha": mha})),
            "mlp": Residual(Sequential({"norm": norms[norm](d), **mlp.layers})),
        })
        self.dim, self.heads, self.mlp_ratio = d, mha.num_heads, ratio
        self.mha = mha

    def spec(self) -> str:
        extra = "" if self.mha.kv_heads == self.mha.num_heads else \
            f", kv_heads={self.mha.kv_heads}"
        extra += ", causal=True" if self.mha.causal else ""
        return f"TransformerBlock({self.dim}, {self.heads}, mlp_ratio={self.mlp_ratio}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return super()._cost(shape, name).replace(layer="TransformerBlock", spec=self.spec())


#: Every layer class by name (the formula reference and the CLI look layers up here).
LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (
        Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, Linear,
        BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, GroupNorm, RMSNorm, MaxPool1d,
        MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d,
        ReLU, ReLU6, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, Hardswish, Hardsigmoid, Softmax,
        Dropout, Identity, Flatten, Embedding, MultiheadAttention, TransformerBlock, MLP,
        Sequential, Residual, Repeat)
}
