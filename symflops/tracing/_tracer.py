"""Record aten ops on symbolic fake tensors, attribute them to modules, build the Cost tree."""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
import torch

from symflops import symbols as S
from symflops.conventions import Convention, get_convention
from symflops.cost import Cost, Derivation
from symflops.errors import SymflopsError
from symflops.tracing import _torch_compat as C
from symflops.tracing import handlers as _handlers  # noqa: F401  (registers the built-ins)
from symflops.tracing.registry import HANDLERS, ZERO_COST, OpCall, Part, TShape, op_name

__all__ = ["trace", "TraceReport", "TracedCost", "InputSpec", "parse_inputs"]

_ROOT = ()
_META_KEY = "symflops_path"


# ----------------------------------------------------------------------------- report
@dataclass
class TraceReport:
    """What a trace saw besides the costs.

    ``unknown``: ops without a handler, by name and count (they add nothing to the
    totals: read the warning); ``zero_cost``: ops known to do no arithmetic;
    ``fixed``: dims the model pins to one value; ``constraints``: equalities torch
    needed to follow the model's code path; ``ranges``: each dim's valid range as torch
    inferred it; ``guards``: every guard torch recorded (user symbols); ``seconds``.
    """

    symbols: dict[str, sp.Symbol] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    unknown: Counter[str] = field(default_factory=Counter)
    unknown_at: dict[str, list[str]] = field(default_factory=dict)
    zero_cost: Counter[str] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)
    fixed: dict[str, int] = field(default_factory=dict)
    constraints: list[sp.Basic] = field(default_factory=list)
    ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    guards: list[sp.Basic] = field(default_factory=list)
    mode: str = "eval"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: whether F.interpolate was rerouted to keep sizes symbolic (see SymbolicResize)
    resize_mode: bool = False

    def summary(self) -> str:
        """A few readable lines."""
        lines = [f"traced in {self.seconds:.2f} s ({self.mode}); "
                 f"{sum(self.counted.values())} ops counted, "
                 f"{sum(self.zero_cost.values())} zero-cost"]
        if self.unknown:
            lines.append("NOT counted (no handler): " + ", ".join(
                f"{k} x{v}" for k, v in self.unknown.most_common()))
        lines += self.notes
        return "\n".join(lines)


# ----------------------------------------------------------------------------- input specs
_DEFAULT_HINTS = {"B": 2, "H": 224, "W": 224, "D": 16, "T": 128, "N": 128, "S": 128,
                  "L": 128}
_LONG_NAMES = ("input_ids", "ids", "tokens", "token_ids", "labels", "position_ids",
               "decoder_input_ids", "idx")


@dataclass(frozen=True)
class InputSpec:
    """One tensor input: sizes (ints or dim names) and a dtype."""

    dims: tuple[int | str, ...]
    dtype: Any = None


def _is_dim(x: Any) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or \
        (isinstance(x, str) and x.isidentifier())


def _one_spec(spec: Any, name: str = "") -> InputSpec:
    dtype = None
    if isinstance(spec, InputSpec):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], torch.dtype):
        spec, dtype = spec
    if isinstance(spec, str):
        dims: list[Any] = []
        for tok in spec.split():
            dims.append(int(tok) if tok.isdigit() else tok)
        spec = tuple(dims)
    if not isinstance(spec, (tuple, list)) or not all(_is_dim(d) for d in spec):
        raise SymflopsError("an input spec must be sizes and dim names", layer="trace",
                            values={"input": repr(spec)},
                            fix='pass e.g. "B 3 H W", ("B", 3, "H", "W") or '
                                '(("B", "N"), torch.long)')
    for d in spec:
        if isinstance(d, str) and not d.isidentifier():
            raise SymflopsError("dim names must be identifiers", layer="trace",
                                values={"dim": d})
        if isinstance(d, int) and d < 0:
            raise SymflopsError("sizes must be >= 0", layer="trace", values={"size": d})
    if dtype is None and name in _LONG_NAMES:
        dtype = torch.long
    return InputSpec(tuple(spec), dtype)


def parse_inputs(inputs: Any) -> tuple[list[InputSpec], dict[str, InputSpec]]:
    """Positional and keyword input specs from what the user passed.

    >>> pos, kw = parse_inputs("B 3 H W")
    >>> pos[0].dims
    ('B', 3, 'H', 'W')
    >>> parse_inputs({"input_ids": ("B", "N")})[1]["input_ids"].dtype
    torch.int64
    """
    if isinstance(inputs, Mapping):
        return [], {k: _one_spec(v, k) for k, v in inputs.items()}
    if isinstance(inputs, (str, InputSpec)):
        return [_one_spec(inputs)], {}
    if isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], torch.dtype):
        return [_one_spec(inputs)], {}
    if isinstance(inputs, (tuple, list)):
        if all(_is_dim(d) for d in inputs):
            return [_one_spec(tuple(inputs))], {}
        pos: list[InputSpec] = []
        kw: dict[str, InputSpec] = {}
        for item in inputs:
            if isinstance(item, Mapping):
                kw.update({k: _one_spec(v, k) for k, v in item.items()})
            else:
                pos.append(_one_spec(item))
        return pos, kw
    raise SymflopsError("cannot read the input spec", layer="trace",
                        values={"inputs": repr(inputs)},
                        fix='pass "B 3 H W", a tuple of sizes, a list of those or a dict')


# ----------------------------------------------------------------------------- recording
@dataclass
class _Rec:
    packet: Any
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: tuple[Any, ...]
    path: tuple[str, ...]
    backward: bool


def _shape_of(t: torch.Tensor) -> tuple[tuple[Any, ...], str]:
    return tuple(C.sym_expr(s) for s in t.shape), str(t.dtype).replace("torch.", "")


def _capture(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return _RawT(*_shape_of(x))
    if isinstance(x, (list, tuple)):
        return type(x)(_capture(v) for v in x)
    if isinstance(x, torch.SymInt):
        return C.sym_expr(x)
    if isinstance(x, (torch.SymFloat, torch.SymBool)):
        return x.node.expr
    return x


@dataclass(frozen=True)
class _RawT:
    shape: tuple[Any, ...]
    dtype: str


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
        empty = _EMPTY[key] = x.new_empty((0,))
    return (_like(x), empty, empty)


# one empty tensor per dtype/device stands for the unused saved statistics of inference
# batch norm (x.new_empty costs ~2 ms on a symbolic fake tensor)
_EMPTY: dict[Any, Any] = {}


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


# Shape rules that skip torch's fake-tensor evaluation: unary pointwise ops return a
# tensor shaped (and strided) like their input, in place or not. torch has no meta
# kernel for some of them (hardtanh: ReLU6) and runs a Python reference decomposition
# whose symbolic arithmetic dominated a MobileNetV2 trace (4.6 of 7 s).
def _conv(args: Any, kwargs: Any) -> Any:
    """A direct convolution's output size, ``(size + 2p - d(k - 1) - 1) // s + 1`` per
    spatial dim, without torch's fake conv kernel (which derives strides and memory
    formats through many more symbolic operations). Transposed convs take torch's path."""
    if kwargs or len(args) < 9 or args[6]:
        return None
    x, w = args[0], args[1]
    n = w.dim() - 2
    if x.dim() != n + 2:
        return None
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
    return _new(x, sizes)


def _new(x: torch.Tensor, sizes: list[Any]) -> torch.Tensor:
    """A fresh fake tensor of ``sizes`` like ``x``. Under no_grad an earlier output of the
    same symbolic shape stands in (values and aliasing are never read there): building
    symbolic strides costs ~10 ms per tensor."""
    if torch.is_grad_enabled():
        return x.new_empty(sizes)
    key = (tuple(C.sym_expr(v) for v in sizes), x.dtype, x.device)
    hit = _SHAPED.get(key)
    if hit is None or hit.fake_mode is not getattr(x, "fake_mode", None):
        hit = _SHAPED[key] = x.new_empty(sizes)
    return hit


_SHAPED: dict[Any, Any] = {}


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


def _ntuple(v: Any, n: int) -> list[Any]:
    v = list(v)
    return v * n if len(v) == 1 else v


_FAST: dict[Any, Any] = {torch.ops.aten.convolution: _conv,
                         torch.ops.aten.native_batch_norm: _bn_eval,
                         torch.ops.aten._native_batch_norm_legit_no_training: _bn_legit_eval}
for _n in ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
           "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
           "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d",
           "upsample_bicubic2d"):
    if hasattr(torch.ops.aten, _n):
        _FAST[getattr(torch.ops.aten, _n)] = _upsample
    if hasattr(torch.ops.aten, _n + "_backward"):
        _FAST[getattr(torch.ops.aten, _n + "_backward")] = _upsample_backward
for _n in ("relu", "hardtanh", "silu", "gelu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
           "leaky_relu", "elu", "mish"):
    _FAST[getattr(torch.ops.aten, _n)] = _unary
    if hasattr(torch.ops.aten, _n + "_"):
        _FAST[getattr(torch.ops.aten, _n + "_")] = _unary_inplace


class _Recorder(C.TorchDispatchMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        if func in C.SKIP_OPS:
            return func(*args, **kwargs)
        packet = func._overloadpacket
        t = self.t
        if packet in HANDLERS:
            fast = _FAST.get(packet) if not t.real else None
            out = fast(args, kwargs) if fast is not None else None
            if out is None:
                out = func(*args, **kwargs)
            node = C.current_autograd_node() if t.train else None
            if node is not None:
                path = C.node_metadata(node).get(_META_KEY, _ROOT)
                bw = True
            else:
                path, bw = t.stack[-1], False
            outs = out if isinstance(out, (tuple, list)) else (out,)
            t.records.append(_Rec(packet, packet.__name__, _capture(args), _capture(kwargs),
                                  tuple(_RawT(*_shape_of(o)) for o in outs
                                        if isinstance(o, torch.Tensor)), path, bw))
            return out
        if packet in ZERO_COST:
            t.zero[op_name(packet)] += 1
            return func(*args, **kwargs)
        # like FlopCounterMode: composite ops decompose into ops we may know
        with self:
            r = func.decompose(*args, **kwargs)
        if r is not NotImplemented:
            return r
        name = op_name(packet)
        t.unknown[name] += 1
        t.unknown_at.setdefault(name, [])
        if len(t.unknown_at[name]) < 5:
            t.unknown_at[name].append(".".join(t.stack[-1]) or "(root)")
        return func(*args, **kwargs)


class _Tracer:
    def __init__(self, model: torch.nn.Module, train: bool, real: bool = False) -> None:
        self.train = train
        self.real = real
        self.names: dict[int, tuple[str, ...]] = {}
        self.types: dict[tuple[str, ...], str] = {_ROOT: type(model).__name__}
        self.specs: dict[tuple[str, ...], str] = {}
        self.modules: dict[tuple[str, ...], torch.nn.Module] = {_ROOT: model}
        for name, mod in model.named_modules():
            key = tuple(name.split(".")) if name else _ROOT
            self.names.setdefault(id(mod), key)
            self.types.setdefault(key, type(mod).__name__)
            self.modules.setdefault(key, mod)
        self.child_names: dict[tuple[str, ...], set[str]] = {}
        for key in self.types:
            if key:
                self.child_names.setdefault(key[:-1], set()).add(key[-1])
        self.stack: list[tuple[str, ...]] = [_ROOT]
        self.io_in: dict[tuple[str, ...], _RawT | None] = {}
        self.io_out: dict[tuple[str, ...], _RawT | None] = {}
        self.pushed: list[bool] = []
        self.bounds: list[set[Any]] = []
        self.records: list[_Rec] = []
        self.zero: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.unknown_at: dict[str, list[str]] = {}

    # global module hooks (never on the user's model)
    def pre(self, module: torch.nn.Module, args: Any) -> None:
        key = self.names.get(id(module))
        self.pushed.append(key is not None)
        if key is not None:
            self.stack.append(key)
            if key not in self.io_in:
                ts = _tensors(args)
                self.io_in[key] = _RawT(*_shape_of(ts[0])) if ts else None
            if self.train and torch.is_grad_enabled():
                self.bounds.append({a.grad_fn for a in _tensors(args)
                                    if a.grad_fn is not None})

    def post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if not self.pushed:
            return
        if self.pushed.pop():
            key = self.stack.pop()
            if key not in self.io_out:
                ts = _tensors(output)
                self.io_out[key] = _RawT(*_shape_of(ts[0])) if ts else None
            if self.train and torch.is_grad_enabled() and self.bounds:
                self._tag(output, key, self.bounds.pop())

    def _tag(self, output: Any, key: tuple[str, ...], bounds: set[Any]) -> None:
        todo = [t.grad_fn for t in _tensors(output) if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node is None or node in bounds:
                continue
            meta = C.node_metadata(node)
            if _META_KEY in meta:
                continue
            meta[_META_KEY] = key
            todo.extend(n for n, _ in node.next_functions if n is not None)


def _tensors(x: Any) -> list[torch.Tensor]:
    """Every tensor in ``x`` (nested tuples, lists, dicts, dataclasses), in order."""
    out: list[torch.Tensor] = []
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
        elif hasattr(v, "__dataclass_fields__"):
            stack.extend(reversed([getattr(v, k) for k in v.__dataclass_fields__]))
    return out


# ----------------------------------------------------------------------------- model state
def _snapshot(model: torch.nn.Module) -> dict[str, Any]:
    return {
        "training": {id(m): m.training for m in model.modules()},
        "requires_grad": {id(p): p.requires_grad for p in model.parameters()},
    }


def _restore(model: torch.nn.Module, snap: dict[str, Any]) -> None:
    for m in model.modules():
        if id(m) in snap["training"]:
            m.training = snap["training"][id(m)]
    for p in model.parameters():
        if id(p) in snap["requires_grad"]:
            p.requires_grad_(snap["requires_grad"][id(p)])


def _device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _default_dtype(model: torch.nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


# ----------------------------------------------------------------------------- trace
def trace(model: torch.nn.Module, inputs: Any, hints: Mapping[str, int] | None = None, *,
          convention: str | Convention = "exact", mode: str = "eval", strict: bool = False,
          aligned: bool | Mapping[str, int] = False,
          warn: bool = True, real: bool = False, fallback: str | None = None) -> Cost:
    """Trace ``model`` on symbolic fake inputs into a Cost tree in the named dims.

    ``inputs``: ``"B 3 H W"``, ``("B", 3, "H", "W")``, a list of those (positional
    inputs), a dict ``{name: spec}`` (keyword inputs; ``input_ids``-like names are int64),
    or ``(spec, torch.long)`` for a dtype. ``hints``: example sizes (defaults: B=2,
    H=W=224, N=T=S=128, others 64). ``real=True`` (concrete sizes only) runs the model on
    real random tensors instead of fake ones, for data-dependent control flow.
    ``mode="train"`` traces forward and backward. ``fallback="fit"``: when torch cannot
    run the model on symbolic shapes, return :func:`symflops.tracing.fit`'s exact fitted
    polynomial instead of raising (with a warning saying so).
    Ops without a handler are reported (``cost.notes``, a warning, ``.report``) and
    counted as 0; ``strict=True`` raises instead. ``aligned=True`` returns the aligned
    form (dims multiples of the model's total stride; see :func:`aligned`).

    The model is never modified: it runs through ``torch.func.functional_call`` on fake
    copies of its parameters and buffers; training flags are restored.

    >>> import torch, symflops as sf
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    >>> c = sf.trace(net, "B 3 H W", convention="macs")
    >>> c.flops
    216*B*H*W
    >>> [p for p, _ in c.walk()]
    ['', '0', '1']
    """
    if fallback not in (None, "fit"):
        raise SymflopsError("fallback must be None or 'fit'", layer="trace",
                            values={"fallback": fallback})
    if mode not in ("eval", "train"):
        raise SymflopsError("mode must be 'eval' or 'train'", layer="trace",
                            values={"mode": mode})
    if not isinstance(model, torch.nn.Module):
        raise SymflopsError("trace needs a torch.nn.Module", layer="trace",
                            values={"model": type(model).__name__})
    conv = get_convention(convention)
    pos, kw = parse_inputs(inputs)
    hints = dict(hints or {})
    for k, v in hints.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SymflopsError("hints must be positive ints", layer="trace",
                                values={k: v})
    started = time.perf_counter()
    if real and any(isinstance(d, str) for s in [*pos, *kw.values()] for d in s.dims):
        raise SymflopsError("real=True runs the model for real: every size must be an int",
                            layer="trace", fix="substitute the dims, or use symflops.tracing.fit")
    train = mode == "train"
    # First without the interpolate rerouting: an active TorchFunctionMode makes
    # nn.MultiheadAttention and nn.TransformerEncoderLayer skip their inference fast
    # paths, so it is used only when torch pinned dims or failed and resizing ran.
    try:
        result = _run(model, pos, kw, hints, conv, train, strict, warn, real)
        retry = bool(result[1].fixed) and any("upsample" in k for k in result[1].counted)
        first_error: SymflopsError | None = None
    except SymflopsError as e:
        if real or "symbolic shapes" not in e.message:
            raise
        retry, first_error = True, e
    if retry:
        try:
            again = _run(model, pos, kw, hints, conv, train, strict, warn, real, resize=True)
        except SymflopsError:
            if first_error is not None:
                if fallback == "fit":
                    return _fit_fallback(model, inputs, conv, mode, first_error, warn)
                raise first_error from None
            again = None
        if again is not None and (first_error is not None or
                                  len(again[1].fixed) < len(result[1].fixed)):
            result = again
            result[1].resize_mode = True
    if warn:
        for msg in result[1].warnings:
            warnings.warn("sf.trace: " + msg, stacklevel=2)
    report = result[1]
    report.seconds = time.perf_counter() - started
    cost = result[0]
    if aligned:
        from symflops.tracing._aligned import aligned as _al

        forms = _al(cost, None if aligned is True else aligned)
        cost = forms.aligned
    return TracedCost.attach(cost, report)


def _fit_fallback(model: torch.nn.Module, inputs: Any, conv: Convention, mode: str,
                  error: SymflopsError, warn: bool) -> Cost:
    from symflops.tracing._fit import fit

    try:
        cost = fit(model, inputs, convention=conv, mode=mode)
    except SymflopsError:
        if _device(model).type == "meta":
            raise error from None
        try:  # control flow that reads values: run the concrete traces on real tensors
            cost = fit(model, inputs, convention=conv, mode=mode, real=True)
        except SymflopsError:
            raise error from None
    if warn:
        warnings.warn(f"sf.trace: {error.message}; returning an exact polynomial "
                      "fitted from concrete traces instead (see its notes)", stacklevel=3)
    return cost


class TracedCost(Cost):
    """The Cost :func:`trace` returns, with the :class:`TraceReport` as ``.report``
    (kept by ``subs``, ``simplify`` and ``with_convention``)."""

    __slots__ = ("report",)
    report: TraceReport

    @classmethod
    def attach(cls, cost: Cost, report: TraceReport) -> TracedCost:
        new = object.__new__(cls)
        for slot in Cost.__slots__:
            object.__setattr__(new, slot, getattr(cost, slot))
        object.__setattr__(new, "report", report)  # a Cost's fields are set once, here
        return new


def _run(model: torch.nn.Module, pos: Sequence[InputSpec], kw: Mapping[str, InputSpec],
         hints: dict[str, int], conv: Convention, train: bool, strict: bool, warn: bool,
         real: bool = False, resize: bool = False) -> tuple[Cost, TraceReport]:
    env = C.SymEnv()
    names: list[str] = []
    for spec in [*pos, *kw.values()]:
        for d in spec.dims:
            if isinstance(d, str) and d not in names:
                names.append(d)
    hint_of = {n: hints.get(n, _DEFAULT_HINTS.get(n, 64)) for n in names}
    user_syms = {n: S.symbol(n) for n in names}
    device = _device(model)
    fdtype = _default_dtype(model)
    snap = _snapshot(model)
    tracer = _Tracer(model, train, real)
    try:
        model.train(train)
        with env.mode if not real else contextlib.nullcontext():
            def make(spec: InputSpec) -> torch.Tensor:
                sizes = [env.symint(d, hint_of[d]) if isinstance(d, str) else d
                         for d in spec.dims]
                dtype = spec.dtype or fdtype
                if real:  # values matter only for data-dependent control flow
                    return torch.randn(sizes, device=device).to(dtype) \
                        if dtype.is_floating_point else torch.zeros(sizes, dtype=dtype,
                                                                   device=device)
                return torch.empty(sizes, dtype=dtype, device=device)

            args = [make(s) for s in pos]
            kwargs = {k: make(s) for k, s in kw.items()}
            first = [*args, *kwargs.values()]
            if first:  # the root's input shape, also when the input is a keyword
                tracer.io_in[_ROOT] = _RawT(*_shape_of(first[0]))
            state: dict[str, torch.Tensor] = {}
            for n, p in model.named_parameters(remove_duplicate=False):
                state[n] = env.fake(p) if not real else p
            for n, b in model.named_buffers(remove_duplicate=False):
                state[n] = env.fake(b) if not real else b.clone()
            resizing = C.SymbolicResize() if resize else contextlib.nullcontext()
            with C.module_hooks(tracer.pre, tracer.post), resizing, _Recorder(tracer):
                with torch.set_grad_enabled(train):
                    out = torch.func.functional_call(model, state, tuple(args), kwargs,
                                                     strict=False)
                if train:
                    outs = [t for t in _tensors(out) if t.requires_grad]
                    wrt = [t for t in state.values() if t.requires_grad]
                    if outs and wrt:
                        torch.autograd.grad(outs, wrt, [torch.ones_like(t) for t in outs],
                                            allow_unused=True)
    except SymflopsError:
        raise
    except Exception as e:  # torch could not run the model symbolically
        said = str(e).splitlines()[0][:300] if str(e) else ""
        for torch_sym, name in env.torch_syms.items():  # torch's s0, s1 -> the user's names
            said = re.sub(rf"\b{re.escape(str(torch_sym))}\b", name, said)
        raise SymflopsError(
            f"torch could not run the model on symbolic shapes: {type(e).__name__}: "
            f"{said}", layer="trace",
            values={"inputs": [s.dims for s in [*pos, *kw.values()]]},
            fix="give hints (example sizes) the model accepts, e.g. hints={'H': 32}; fix "
                "some dims to ints; or use symflops.tracing.fit(...) to fit an exact formula "
                "from concrete traces") from e
    finally:
        _restore(model, snap)
        _EMPTY.clear()
        _SHAPED.clear()
    return _build(model, tracer, env, user_syms, hint_of, conv, train, strict, warn)


def _convert(x: Any, smap: C.SymbolMap) -> Any:
    if isinstance(x, _RawT):
        return TShape(tuple(smap(s) for s in x.shape), x.dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(_convert(v, smap) for v in x)
    if isinstance(x, dict):
        return {k: _convert(v, smap) for k, v in x.items()}
    if isinstance(x, sp.Basic):
        return smap(x)
    return x


def _build(model: torch.nn.Module, tracer: _Tracer, env: C.SymEnv,
           user_syms: dict[str, sp.Symbol], hint_of: dict[str, int], conv: Convention,
           train: bool, strict: bool, warn: bool) -> tuple[Cost, TraceReport]:
    report = TraceReport(symbols=dict(user_syms), hints=dict(hint_of),
                         mode="train" if train else "eval")
    report.unknown, report.unknown_at = tracer.unknown, tracer.unknown_at
    report.zero_cost = tracer.zero
    if tracer.unknown:
        msg = ("ops without a handler were NOT counted: " + ", ".join(
            f"{k} x{v} (at {', '.join(tracer.unknown_at.get(k, []))})"
            for k, v in tracer.unknown.most_common()))
        if strict:
            raise SymflopsError(msg, layer="trace", fix="register a handler with "
                                "symflops.tracing.register(...) or pass strict=False")
        report.notes.append(msg)
        report.warnings.append(msg)
    # dims torch pinned to a value, and equalities the code path needs
    fixed = env.fixed()
    smap = C.SymbolMap(env, user_syms)
    guards = [smap(g) for g in env.guards()]
    report.guards = guards
    constraints = [g for g in guards if isinstance(g, sp.Eq) and g.free_symbols]
    report.constraints = constraints
    conditions: list[sp.Basic] = []  # equalities that hold at many sizes (H even, say)
    for g in constraints:
        if _holds_widely(g, hint_of):
            conditions.append(g)
            continue
        for s in g.free_symbols:
            if s.name in hint_of and s.name not in fixed:
                fixed[s.name] = hint_of[s.name]
    if conditions:
        report.notes.append("the traced code path needs " + "; ".join(
            str(c) for c in conditions) + " (kept as conditions of the formula)")
    report.fixed = fixed
    subs_fixed = {user_syms[n]: sp.Integer(v) for n, v in fixed.items() if n in user_syms}
    if fixed:
        msg = ("the model fixes " + ", ".join(f"{n} = {v}" for n, v in fixed.items()) +
               (" (it requires " + "; ".join(str(c) for c in constraints) + ")"
                if constraints else "") +
               ": the result holds only at that size; the other dims stay symbolic")
        report.notes.append(msg)
        report.warnings.append(msg)
    ranges = env.ranges()
    report.ranges = ranges
    validity: list[sp.Basic] = list(conditions)
    for g in guards:  # the inequalities the traced code path needs, e.g. H >= 7
        if _lower_bound(g) and not _size_not_one(g):
            g = g.xreplace(subs_fixed_early(fixed, user_syms))
            if g is not sp.true and g not in validity:
                validity.append(g)
    for n, (lo, _hi) in ranges.items():  # torch's default lower bound for a size is 2
        if n in fixed:
            continue
        if lo > 2 and sp.Ge(user_syms[n], lo) not in validity:
            validity.append(sp.Ge(user_syms[n], lo))
    # per-module lists of leaves, in call order
    children: dict[tuple[str, ...], list[tuple[str, Any]]] = {}
    seen: set[tuple[str, ...]] = set()

    def node(path: tuple[str, ...]) -> list[tuple[str, Any]]:
        if path not in children:
            children[path] = []
            if path:
                parent = path[:-1]
                node(parent).append(("module", path))
        return children[path]

    node(_ROOT)
    opcount: dict[tuple[str, ...], Counter[str]] = {}
    for rec in tracer.records:
        call = OpCall(rec.name, _convert(rec.args, smap), _convert(rec.kwargs, smap),
                      tuple(_convert(o, smap) for o in rec.out), tracer.types.get(rec.path, ""))
        try:
            parts = HANDLERS[rec.packet](call)
        except SymflopsError as e:
            raise e.at(".".join(rec.path) or "(root)") from None
        except Exception as e:
            raise SymflopsError(f"the handler of {op_name(rec.packet)} failed: {e}",
                                layer="trace", values={"at": ".".join(rec.path)}) from e
        report.counted[op_name(rec.packet)] += 1
        base = rec.name + ("_backward" if rec.backward and "backward" not in rec.name else "")
        cnt = opcount.setdefault(rec.path, Counter())
        k = cnt[base]
        cnt[base] += 1
        leaf_name = base if k == 0 else f"{base}_{k}"
        in_shape = next((a.shape for a in call.args if isinstance(a, TShape)), ())
        out_shape = call.out[0].shape if call.out else ()
        items = [(leaf_name if not part.name else part.name, rec, part, in_shape, out_shape)
                 for part in parts]
        if len(parts) > 1 and rec.packet not in _SPLIT_OPS:  # e.g. grad_input, grad_weight
            node(rec.path).append(("group", (leaf_name, op_name(rec.packet), items)))
        else:
            for it in items:
                node(rec.path).append(("leaf", it))
        seen.add(rec.path)
    root = _assemble(_ROOT, children, tracer, subs_fixed, conv, validity, smap)
    notes = list(root.notes) + report.notes
    if subs_fixed or notes:
        root = _with(root, notes=notes)
    return root, report


# ops whose parts become sibling leaves named by part (attention: scores, softmax, ...)
_SPLIT_OPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu,
              torch.ops.aten._native_multi_head_attention,
              torch.ops.aten._transformer_encoder_layer_fwd,
              torch.ops.aten._scaled_dot_product_flash_attention,
              torch.ops.aten._scaled_dot_product_efficient_attention,
              torch.ops.aten._scaled_dot_product_cudnn_attention,
              torch.ops.aten.scaled_dot_product_attention}


def _holds_widely(g: sp.Basic, hints: Mapping[str, int]) -> bool:
    """An equality guard torch could not solve: a divisibility-like condition (``H`` even)
    holds at twice and three times the example sizes; a pin (``floor(H/16)**2 == 196``)
    does not."""
    syms = [s for s in g.free_symbols if s.name in hints]
    if len(syms) != len(g.free_symbols):
        return False
    return all(g.xreplace({s: sp.Integer(k * hints[s.name]) for s in syms}) is sp.true
               for k in (2, 3, 5))


def _lower_bound(g: sp.Basic) -> bool:
    """``expr >= c`` with the dims in ``expr``: a size condition (kernel fits, output
    >= 1). Upper bounds come from backend heuristics (e.g. a batch-size cutoff for a
    kernel choice) and stay in ``report.guards``."""
    if isinstance(g, (sp.Ge, sp.Gt)):
        return bool(g.lhs.free_symbols) and not g.rhs.free_symbols
    if isinstance(g, (sp.Le, sp.Lt)):
        return bool(g.rhs.free_symbols) and not g.lhs.free_symbols
    return False


def _size_not_one(g: sp.Basic) -> bool:
    """``B > 1`` or ``8*B*N > 8``: torch's 0/1-specialization checks on sizes (a size or
    numel is not 1), not a condition of the formula."""
    lhs, rhs = (g.lhs, g.rhs) if isinstance(g, (sp.Gt, sp.Ge)) else (g.rhs, g.lhs)
    coeff, mono = sp.sympify(lhs).as_coeff_Mul()
    if not (coeff.is_Integer and coeff > 0 and rhs.is_Integer):
        return False
    if not all(f.is_Symbol or (f.is_Pow and f.base.is_Symbol) for f in sp.Mul.make_args(mono)):
        return False
    strict = isinstance(g, (sp.Gt, sp.Lt))
    if g.xreplace({v: sp.Integer(1) for v in g.free_symbols}) is sp.true:
        return True  # a positive monomial that holds at all ones holds everywhere
    return bool(rhs == coeff) if strict else bool(rhs == 2 * coeff)


def subs_fixed_early(fixed: Mapping[str, int], user_syms: Mapping[str, sp.Symbol]
                     ) -> dict[sp.Symbol, sp.Expr]:
    return {user_syms[n]: sp.Integer(v) for n, v in fixed.items() if n in user_syms}


def _with(cost: Cost, **changes: Any) -> Cost:
    kw: dict[str, Any] = dict(name=cost.name, layer=cost.layer, spec=cost.spec,
                              children=cost.children, count=cost.count,
                              input_shape=cost.input_shape, output_shape=cost.output_shape,
                              validity=cost.validity, convention=cost.convention,
                              notes=cost.notes)
    kw.update(changes)
    return Cost(**kw)


def _fix(e: Any, subs: Mapping[sp.Symbol, sp.Expr]) -> Any:
    e = sp.sympify(e)
    return e.xreplace(subs) if subs and e.free_symbols else e


def _own_params(mod: torch.nn.Module, seen: set[int]) -> int:
    n = 0
    for p in mod.parameters(recurse=False):
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def _module_spec(mod: torch.nn.Module) -> str:
    if next(iter(mod.children()), None) is None:
        text = repr(mod)
        return text if len(text) <= 120 else text[:117] + "..."
    return type(mod).__name__


def io_shape(raw: _RawT | None, smap: C.SymbolMap, subs: Mapping[sp.Symbol, sp.Expr]
             ) -> tuple[Any, ...]:
    if raw is None:
        return ()
    return tuple(_fix(smap(s), subs) for s in raw.shape)


def _assemble(path: tuple[str, ...], children: dict[tuple[str, ...], list[tuple[str, Any]]],
              tracer: _Tracer, subs: Mapping[sp.Symbol, sp.Expr], conv: Convention,
              validity: Sequence[sp.Basic], smap: C.SymbolMap,
              seen_params: set[int] | None = None) -> Cost:
    seen_params = set() if seen_params is None else seen_params
    mod = tracer.modules.get(path)
    own = _own_params(mod, seen_params) if mod is not None else 0
    # submodules that never ran (e.g. MultiheadAttention's out_proj on its fast path)
    # still own parameters: they count here
    for key, sub in tracer.modules.items():
        if len(key) > len(path) and key[:len(path)] == path and key not in children and \
                not any(key[:i] in children for i in range(len(path) + 1, len(key))):
            own += _own_params(sub, seen_params)
    kids: list[Cost] = []
    leaf_gp: dict[int, Any] = {}
    for kind, item in children.get(path, []):
        if kind == "module":
            kids.append(_assemble(item, children, tracer, subs, conv, (), smap, seen_params))
        elif kind == "group":
            gname, gop, gitems = item
            parts = [_leaf(it, subs, conv) for it in gitems]
            kids.append(Cost(gname, gop, spec=gop, children=parts, convention=conv,
                             input_shape=parts[0].input_shape,
                             output_shape=parts[0].output_shape))
        else:
            leaf = _leaf(item, subs, conv)
            leaf_gp[id(leaf)] = item[2].general_params
            kids.append(leaf)
    name = path[-1] if path else ""
    layer = tracer.types.get(path, "Module")
    spec = _module_spec(mod) if mod is not None else layer
    own_leaves = [k for k in kids if k.derivation is not None and not k.children
                  and k.name not in tracer.child_names.get(path, ())]
    if own and len(kids) == 1 and own_leaves:
        kids[0] = _leaf_with_params(kids[0], own, leaf_gp.get(id(kids[0])))
    elif own:
        kids.insert(0, Cost("parameters", "Parameters", params=own, work={},
                            convention=conv, spec=f"{layer} parameters",
                            derivation=Derivation({}, sp.Integer(own), {},
                                                  "parameters the module owns directly")))
    if path and len(kids) == 1 and not kids[0].children:
        k = kids[0]
        return Cost(name, layer, spec=spec, params=k.params, work=k.work,
                    input_shape=io_shape(tracer.io_in.get(path), smap, subs) or k.input_shape,
                    output_shape=io_shape(tracer.io_out.get(path), smap, subs) or
                    k.output_shape,
                    derivation=k.derivation, convention=conv, validity=k.validity,
                    notes=(f"aten op: {k.name}",) + k.notes)
    kin = io_shape(tracer.io_in.get(path), smap, subs)
    kout = io_shape(tracer.io_out.get(path), smap, subs)
    return Cost(name, layer, spec=spec, children=kids, input_shape=kin, output_shape=kout,
                convention=conv, validity=validity)


def _leaf_with_params(c: Cost, params: int, general: Any = None) -> Cost:
    d = c.derivation
    assert d is not None
    gp: sp.Expr = sp.Integer(params)
    if general is not None:
        g = sp.sympify(general)
        if g.xreplace(dict(d.bindings)) == params:  # the formula explains this module's count
            gp = g
    return Cost(c.name, c.layer, spec=c.spec, params=params, work=c.work,
                input_shape=c.input_shape, output_shape=c.output_shape,
                derivation=Derivation(d.general, gp, d.bindings, d.explanation, d.rates),
                convention=c.convention, validity=c.validity, notes=c.notes)


def _leaf(item: tuple[str, _Rec, Part, Any, Any], subs: Mapping[sp.Symbol, sp.Expr],
          conv: Convention) -> Cost:
    nm, rec, part, in_shape, out_shape = item
    work = {k: _fix(v, subs) for k, v in part.work.items()}
    bindings = {k: _fix(v, subs) for k, v in part.bindings.items()}
    general = {k: sp.sympify(v) for k, v in part.general.items()}
    layer = part.layer or op_name(rec.packet)
    return Cost(nm, layer, spec=op_name(rec.packet) + (f" ({part.name})" if part.name else ""),
                work=work, params=0,
                input_shape=tuple(_fix(s, subs) for s in in_shape),
                output_shape=tuple(_fix(s, subs) for s in out_shape),
                derivation=Derivation(general, sp.Integer(0), bindings, part.explanation,
                                      dict(part.rates)),
                convention=conv)
