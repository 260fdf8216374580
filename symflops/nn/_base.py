"""The base of ``sf.nn`` layers and the checks every layer applies to its arguments.

>>> from symflops.nn._base import size_tuple, to_size
>>> to_size("H", "Conv2d", "in_channels")
H
>>> size_tuple(3, 2, "Conv2d", "kernel_size")
(3, 3)
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import numpy as np
import sympy as sp

from symflops import symbols as S
from symflops.conventions import Convention
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.memory import Precision
from symflops.parse import parse_int, parse_symbol

__all__ = ["SizeLike", "Shape", "Layer", "to_size", "nonneg_size", "size_tuple",
           "parse_shape", "same_size", "fmt", "numel", "divides_condition", "positive_output",
           "check_dim", "dim_index", "TRAINER", "Example", "REGISTRY", "STRIDE_S", "PAD_P",
           "FACTOR_R", "HIDDEN_F", "CONTEXT_N"]

SizeLike: TypeAlias = int | sp.Expr | str
Shape = tuple[sp.Expr, ...]


def to_size(value: Any, layer: str, arg: str) -> sp.Expr:
    """A user-given size (``>= 1``) as a SymPy expression: an int (numpy ints too), a
    SymPy expression in positive-integer symbols, or a name or integer as text."""
    return _size(value, layer, arg, 1)


def nonneg_size(value: Any, layer: str, arg: str) -> sp.Expr:
    """A user-given size that may be 0 (padding), checked as :func:`to_size`."""
    return _size(value, layer, arg, 0)


def _size(value: Any, layer: str, arg: str, least: int) -> sp.Expr:
    if isinstance(value, (bool, np.bool_)):
        raise SymflopsError(f"{arg} must be a size, not a bool", layer=layer, values={arg: value},
                            fix=f"pass {arg} as an int >= {least}")
    if isinstance(value, (int, np.integer)):
        e: sp.Expr = sp.Integer(int(value))
    elif isinstance(value, str):
        e = _from_text(value, layer, arg)
    elif isinstance(value, sp.Expr):
        e = value
        _check_exact(e, layer, arg)
    else:
        raise SymflopsError(f"{arg} must be an int, a SymPy expression or a symbol name",
                            layer=layer, values={arg: repr(value)},
                            fix=f"pass {arg} as an int, a SymPy expression or a name like 'H'")
    too_small = e.is_positive is False if least else e.is_nonnegative is False
    if too_small or (e.is_number and not e.is_Integer):
        raise SymflopsError(f"{arg} must be {'a positive' if least else 'a non-negative'} "
                            "integer", layer=layer, values={arg: value},
                            fix=f"pass {arg} >= {least}")
    return e


def _from_text(text: str, layer: str, arg: str) -> sp.Expr:
    """A size written as text: an integer literal or a name (never an expression)."""
    try:
        if text.strip().isdigit():
            return sp.Integer(parse_int(text.strip(), arg))
        return parse_symbol(text.strip())
    except SymflopsError as err:
        raise SymflopsError(err.message, layer=layer, values={arg: repr(text)},
                            fix=err.fix or "write a name like 'H' or an integer") from None


def _check_exact(e: sp.Expr, layer: str, arg: str) -> None:
    """Sizes are exact positive integers: no floats, no NaN or infinities, and only
    symbols that SymPy knows are positive integers (else they never combine with
    symflops' own and can come out negative)."""
    if e.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise SymflopsError(f"{arg} is not a finite size", layer=layer, values={arg: e},
                            fix=f"pass {arg} as an int >= 1")
    if e.atoms(sp.Float):
        exact = int(e) if e.is_number and float(e).is_integer() else None
        raise SymflopsError(f"{arg} must be exact, not a float", layer=layer, values={arg: e},
                            fix=f"pass {arg}={exact}" if exact is not None else
                            f"pass {arg} as an int or an expression with integer coefficients")
    for sym in sorted(e.free_symbols, key=str):
        if not (sym.is_integer and sym.is_nonnegative):
            name = getattr(sym, "name", str(sym))
            clash = name in S.canonical()
            raise SymflopsError(
                f"{arg} uses the symbol {name} without the assumptions of a size (a positive "
                "integer)" + (f", so it would not combine with symflops' {name}" if clash
                              else ""),
                layer=layer, values={arg: e}, fix=f"use sf.symbols.symbol({name!r})")


def size_tuple(value: Any, n: int, layer: str, arg: str, *, zero_ok: bool = False) -> Shape:
    """One size per spatial dim (a single value repeats)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise SymflopsError(f"{arg} needs {n} values", layer=layer, values={arg: value},
                            fix=f"pass one value or a tuple of {n}")
    convert = nonneg_size if zero_ok else to_size
    return tuple(convert(v, layer, arg) for v in items)


def parse_shape(shape: Any, layer: str) -> Shape:
    """An input shape: a tuple or list of sizes, or the sizes written in one string
    (``"B 3 H W"``: names and integers separated by spaces)."""
    if isinstance(shape, str):
        shape = shape.split()
    if not isinstance(shape, (tuple, list)):
        raise SymflopsError("input shape must be a tuple of sizes", layer=layer,
                            values={"shape": repr(shape)}, fix='pass e.g. ("B", 3, "H", "W")')
    return tuple(to_size(s, layer, "input_shape") for s in shape)


def same_size(a: sp.Expr, b: sp.Expr) -> bool:
    return a == b or sp.expand(a - b) == 0


def fmt(v: Any) -> str:
    if isinstance(v, tuple) and len(set(v)) == 1:
        return str(v[0])
    if isinstance(v, tuple):
        return "(" + ", ".join(str(x) for x in v) + ")"
    return str(v)


def numel(shape: Shape) -> sp.Expr:
    return sp.Mul(*shape)


def divides_condition(d: sp.Expr, n: sp.Expr) -> list[sp.Basic]:
    """``d`` divides ``n``, as a validity condition when either is symbolic (concrete
    values are checked when the layer is built)."""
    if d.is_number and n.is_number:
        return []
    cond = sp.Eq(sp.Mod(n, d), 0)
    return [] if cond is sp.true else [cond]


def positive_output(sizes: Sequence[sp.Expr], layer: str, what: str, shape: Shape
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


def check_dim(dim: Any, layer: str, arg: str = "dim") -> int:
    """A dimension index given to a layer: an int (numpy ints too), not a bool or a name."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise SymflopsError(f"{arg} must be an int", layer=layer, values={arg: repr(dim)},
                            fix=f"pass {arg} as an int such as -1")
    return int(dim)


def dim_index(dim: int, shape: Shape, layer: str) -> int:
    """``dim`` as an index into ``shape`` (negative dims count from the end)."""
    if not -len(shape) <= dim < len(shape):
        raise SymflopsError("dim is out of range for the input", layer=layer,
                            values={"input_shape": shape},
                            fix=f"use a dim in [-{len(shape)}, {len(shape) - 1}]")
    return dim % len(shape)


@dataclass
class _Trainer:
    """Where ``sf.nn``'s training pass plugs in: :mod:`symflops.nn._train` sets ``run``
    (it needs the layer classes, which import this module)."""

    run: Callable[..., Cost] | None = None


#: the training pass, installed by :mod:`symflops.nn._train` when ``symflops.nn`` loads
TRAINER = _Trainer()

#: during a ``mode="decode"`` cost: the tokens already in the KV cache (self-attention's keys
#: are this many longer than its queries); None otherwise
KV_CONTEXT: contextvars.ContextVar[sp.Expr | None] = contextvars.ContextVar(
    "symflops_kv_context", default=None)

#: during a ``mode="prefill"``/``"decode"`` cost: bytes per element of activations and of
#: the KV cache (attention's parts set their own bytes moved from them); None otherwise
SERVING_BYTES: contextvars.ContextVar[tuple[sp.Expr, sp.Expr] | None] = \
    contextvars.ContextVar("symflops_serving_bytes", default=None)

_SERVING_NOTES = {
    "prefill": "prefill: the forward over the prompt, writing its keys and values to the "
               "cache (memory.kv_cache)",
    "decode": "decode step: each self-attention's keys and values are the cached tokens plus "
              "the new ones (memory.kv_cache: the cache read, before the new tokens' keys "
              "and values are appended)",
}


#: the symbols the reference's examples use beyond :mod:`symflops.symbols`: a stride and a
#: padding (may be 0), a pixel shuffle's factor, a gated MLP's hidden width, the length
#: of a learned position table
STRIDE_S, PAD_P = S.symbol("s"), sp.Symbol("p", integer=True, nonnegative=True)
FACTOR_R, HIDDEN_F, CONTEXT_N = S.symbol("r"), S.symbol("F"), S.symbol("N_ctx")


@dataclass(frozen=True)
class Example:
    """How the formula reference shows a layer: a call in canonical symbols, the layer it
    builds and an input shape (the class's ``example``)."""

    call: str
    build: Callable[[], Layer]
    input_shape: tuple[Any, ...]
    note: str = ""


#: every layer class by name, in the order the classes were defined (``symflops.nn``
#: imports its family modules in the order of the formula reference); a class joins by
#: carrying an ``example``
REGISTRY: dict[str, type[Layer]] = {}


class Layer:
    """Base of all symbolic layers.

    A layer class is registered (:data:`REGISTRY`, hence ``sf.nn.LAYERS``, ``sf.nn``'s
    ``__all__``, the formula reference and the tests' case list) when it carries an
    ``example``: subclasses implement ``_cost(shape, name)`` (the forward) and
    ``_train(shape, name, path, x, tr)`` (its train rule: see :mod:`symflops.nn._train`),
    or say in ``no_train`` why it cannot train. Private bases (no ``example`` of their
    own) are not registered.
    """

    #: the ``torch.nn`` class this layer mirrors
    torch_name: str = ""
    #: the reference's example of this layer (a registered layer has its own)
    example: ClassVar[Example | None] = None
    #: why ``mode="train"`` cannot be derived for this layer ("" when it has ``_train``)
    no_train: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("example") is None:
            return
        name = cls.__name__
        if name in REGISTRY:
            raise SymflopsError("a layer of this name is registered already", layer=name,
                                values={"class": f"{cls.__module__}.{cls.__qualname__}",
                                        "registered": REGISTRY[name].__module__},
                                fix="give the layer class another name")
        if not (callable(getattr(cls, "_train", None)) or cls.no_train):
            raise SymflopsError("a layer needs a train rule (_train) or a reason why it "
                                "cannot train (no_train)", layer=name,
                                fix="define _train(self, shape, name, path, x, tr) beside "
                                    "_cost, or set no_train = '...why...'")
        REGISTRY[name] = cls

    def cost(self, input_shape: Any, convention: str | Convention = "exact",
             name: str = "", *, mode: str = "eval", recompute: str = "none",
             frozen: bool | Sequence[str] = False, input_grad: bool = False,
             optimizer: str = "adam", precision: Precision | str | None = None,
             accounting: str = "korthikanti", tensor_parallel: SizeLike = 1,
             sequence_parallel: bool = False, context: SizeLike | None = None,
             kv_bytes: SizeLike = 2, weight_bytes: SizeLike = 2,
             weight_format: Any = None, zero: int = 0, data_parallel: SizeLike = 1,
             pipeline_parallel: SizeLike = 1) -> Cost:
        """Cost of this layer on an input of ``input_shape`` under ``convention``.

        ``input_shape`` is a tuple of ints, SymPy expressions or symbol names, or a
        space-separated string of them (``"B 3 H W"``).

        ``mode="train"``: the forward pass, the backward pass derived op by op as torch's
        autograd runs it (children ``forward``, ``grad_input``, ``grad_weight``, ...), and
        ``.memory`` (:class:`symflops.memory.Memory`: parameters, gradients, optimizer
        state, activations saved for backward, in bytes). Training options:
        ``recompute`` (``"none"``, ``"selective"``: attention's core recomputed in
        backward, ``"full"``: each TransformerBlock, or the whole layer when it has none,
        recomputed from its input); ``frozen`` (``True`` or the paths of frozen parts,
        e.g. ``["0", "attention.mha.qkv"]``: no weight gradient, no optimizer state);
        ``input_grad`` (whether the input needs a gradient: not for a model's input);
        memory options ``optimizer``, ``precision``, ``accounting`` (``"korthikanti"``:
        the paper's count; ``"torch"``: every tensor torch saves), ``tensor_parallel``
        (a degree ``t``, int or symbol: splits the saved tensors of its regions and the
        parameters Megatron splits), ``sequence_parallel``, ``zero`` (a ZeRO stage, 0-3)
        with ``data_parallel`` (the degree ``N_d`` it partitions over) and
        ``pipeline_parallel`` (``p`` uniform stages): :mod:`symflops.memory`. ``precision``
        is a :class:`symflops.memory.Precision` or a name (``"mixed"``, ``"fp32"``).

        >>> import symflops as sf
        >>> D, B = sf.symbols.symbol("D"), sf.symbols.B
        >>> m = sf.nn.Linear(8, 4).cost((B, 8), mode="train", zero=3, data_parallel=D).memory
        >>> m.model_states          # 36 parameters, (2 + 2 + 12) bytes each, over D ranks
        576/D

        >>> from symflops.symbols import B, N
        >>> import symflops as sf
        >>> c = sf.nn.Linear(8, 4).cost((B, 8), mode="train")
        >>> [k.name for k in c.children], c.flops      # the input needs no gradient
        (['forward', 'grad_weight', 'grad_bias'], 96*B + 36*(B - 1))
        >>> c.memory.activations, c.memory.params + c.memory.gradients + c.memory.optimizer
        (16*B, 576)

        ``mode="prefill"``: the forward pass over a prompt of ``N`` tokens that fills the
        key/value cache; ``mode="decode"`` with ``context=T``: one step of ``N`` new tokens
        (usually 1) attending to the ``T`` cached tokens and to themselves, so every
        self-attention's keys are ``T + N`` long (the mask of a causal layer hides nothing
        from a single new token: the product is counted dense, as torch computes it). Both
        give ``.memory`` (:class:`symflops.serving.ServingMemory`): the weights in
        ``weight_bytes`` per parameter, or in a quantized ``weight_format`` (a name of
        :data:`symflops.serving.WEIGHT_FORMATS` such as ``"nf4-dq"``, its block constants
        counted), and the KV cache in ``kv_bytes`` per element (1 for an 8-bit cache).

        >>> from symflops.symbols import T
        >>> a = sf.nn.MultiheadAttention(8, 2, bias=False)
        >>> d = a.cost((B, 1, 8), mode="decode", context=T)
        >>> d["scores"].macs, d.memory.kv_cache        # 2 heads of 4 over T + 1 keys
        (8*B*(T + 1), 32*B*T)
        """
        shape = parse_shape(input_shape, self.spec())
        if mode == "train" and TRAINER.run is not None:
            c = TRAINER.run(self, shape, name, recompute=recompute, frozen=frozen,
                            input_grad=input_grad, optimizer=optimizer, precision=precision,
                            accounting=accounting, tensor_parallel=tensor_parallel,
                            sequence_parallel=sequence_parallel, zero=zero,
                            data_parallel=data_parallel, pipeline_parallel=pipeline_parallel)
        elif zero != 0 or data_parallel != 1 or pipeline_parallel != 1:
            raise SymflopsError("zero, data_parallel and pipeline_parallel are training "
                                "options", layer=self.spec(), values={"mode": repr(mode)},
                                fix='pass mode="train"')
        elif mode in ("prefill", "decode"):
            c = self._serving_cost(shape, name, mode, context, kv_bytes, weight_bytes,
                                   weight_format)
        elif mode == "eval":
            if recompute != "none" or frozen or input_grad:
                raise SymflopsError("recompute, frozen and input_grad are training options",
                                    layer=self.spec(), values={"mode": mode},
                                    fix='pass mode="train"')
            c = self._cost(shape, name)
        else:
            raise SymflopsError("mode must be 'eval', 'train', 'prefill' or 'decode'",
                                layer=self.spec(), values={"mode": repr(mode)},
                                fix='pass mode="eval", "train", "prefill" or "decode"')
        if context is not None and mode != "decode":
            raise SymflopsError("context= is the cached length of a decode step",
                                layer=self.spec(), values={"mode": repr(mode)},
                                fix='pass mode="decode", or drop context=')
        return c if convention == "exact" else c.with_convention(convention)

    def _serving_cost(self, shape: Shape, name: str, mode: str, context: SizeLike | None,
                      kv_bytes: SizeLike, weight_bytes: SizeLike,
                      weight_format: Any = None) -> Cost:
        """Prefill or a decode step: the forward with self-attention's keys extended by
        the cached ``context`` (decode), and the serving memory."""
        from symflops.serving import serving_memory

        if mode == "decode":
            if context is None:
                raise SymflopsError("a decode step attends to a cache: give its length",
                                    layer=self.spec(), values={"mode": "'decode'"},
                                    fix='pass context=T (the tokens already cached)')
            cached = nonneg_size(context, self.spec(), "context")
        else:
            cached = sp.Integer(0)
        from symflops.serving import ACTIVATION_BYTES, with_traffic

        token = KV_CONTEXT.set(cached if mode == "decode" else None)
        sizes = SERVING_BYTES.set((ACTIVATION_BYTES, to_size(kv_bytes, self.spec(), "kv_bytes")))
        try:
            c = self._cost(shape, name)
        finally:
            KV_CONTEXT.reset(token)
            SERVING_BYTES.reset(sizes)
        memory = serving_memory(self, c, shape, cached, mode, kv_bytes, weight_bytes,
                                weight_format)
        if weight_format is None:
            c = with_traffic(c, to_size(weight_bytes, self.spec(), "weight_bytes"))
        else:
            from symflops.serving import get_weight_format

            c = with_traffic(c, get_weight_format(weight_format).rate(weight_bytes))
        return c.replace(memory=memory, notes=(*c.notes, _SERVING_NOTES[mode]))

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

    def _leaf(self, name: str, shape: Shape, out: Shape, derivation: Derivation, *,
              validity: Sequence[sp.Basic] = ()) -> Cost:
        """The leaf this layer's family derivation describes (work computed once)."""
        return Cost.from_derivation(name, self.layer_type(), derivation, spec=self.spec(),
                                    input_shape=shape, output_shape=out, validity=validity)

    def _check_rank(self, shape: Shape, ranks: Sequence[int], layout: str) -> None:
        if len(shape) not in ranks:
            raise SymflopsError(
                f"expects a {' or '.join(str(r) + '-d' for r in ranks)} input ({layout})",
                layer=self.spec(), values={"input_shape": shape},
                fix=f"pass a shape like {layout}")

    def _check_channels(self, shape: Shape, got: sp.Expr, want: sp.Expr,
                        what: str = "channels") -> None:
        if not same_size(got, want):
            raise SymflopsError(f"input has {got} {what} but the layer expects {want}",
                                layer=self.spec(), values={"input_shape": shape},
                                fix=f"pass an input with {want} {what}")
