"""Training memory in bytes, as SymPy: parameters, gradients, optimizer state and the
activations autograd saves for backward.

A :class:`Memory` keeps what it was computed from (the parameter counts and every saved
tensor, :class:`Saved`) and weighs it by a :class:`Precision` (bytes per element of each
kind of tensor), an optimizer and an activation accounting, both registered by name:

* optimizers (:func:`register_optimizer`): ``adam`` (the default: fp32 master weights,
  first and second moments, 12 bytes per trainable parameter; with 2-byte parameters and
  gradients, 16 bytes per parameter in all), ``sgd`` (fp32 master weights, 4),
  ``sgd_momentum`` (master weights and momentum, 8), ``adam_fp32`` (parameters already
  fp32: the two moments, 8), ``adafactor`` (fp32 master weights, 4, and the factored
  second moment of ``torch.optim.Adafactor``: for a weight of shape ``(..., r, c)`` a
  row and a column statistic, ``numel/c + numel/r`` fp32 values; a vector its own
  ``numel``: :func:`factored_size`);
* accountings (:func:`register_accounting`): ``torch`` (every tensor torch's autograd
  saves) and ``korthikanti`` (Korthikanti et al. 2022, "Reducing Activation
  Recomputation in Large Transformer Models", section 4: the same tensors without the
  normalization statistics, which the paper leaves out as small).

Tensor parallelism of degree ``t`` (Megatron-LM) splits the tensors saved between a
column-parallel and a row-parallel linear layer (region ``"tensor"``) over ``t``
devices; sequence parallelism splits the rest (region ``"sequence"``) too.

>>> from symflops.symbols import B, N
>>> m = Memory(param_count=10, trainable=10, saved=(Saved("fc", "input", B * N),))
>>> m.params, m.gradients, m.optimizer, m.activations, m.total
(20, 20, 120, 2*B*N, 2*B*N + 160)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError

__all__ = ["Precision", "Saved", "Memory", "Optimizer", "Accounting", "register_optimizer",
           "get_optimizer", "optimizers", "register_accounting", "get_accounting",
           "accountings", "unique", "factored_size", "REGIONS", "DTYPES"]

#: where a saved tensor lives under Megatron-style model parallelism
REGIONS = ("sequence", "tensor")
#: the kinds of saved tensors, each with its own precision
DTYPES = ("float", "mask", "index")


def _bytes(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SymflopsError(f"{what} must be a whole number of bytes >= 1", layer="Precision",
                            values={what: repr(value)}, fix=f"pass {what}=2 (16-bit) or 4")
    return value


@dataclass(frozen=True)
class Precision:
    """Bytes per element: ``params`` and ``grads`` (2: 16-bit mixed precision),
    ``activations`` (floating-point tensors saved for backward, 2), ``masks`` (boolean
    tensors such as dropout masks, 1) and ``indices`` (integer tensors such as max
    pooling's argmax, 8: int64).

    >>> Precision(activations=4).activations
    4
    """

    params: int = 2
    grads: int = 2
    activations: int = 2
    masks: int = 1
    indices: int = 8

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _bytes(getattr(self, f.name), f.name)

    def of(self, dtype: str) -> int:
        """Bytes per element of a saved tensor of kind ``dtype`` (:data:`DTYPES`)."""
        return {"float": self.activations, "mask": self.masks, "index": self.indices}[dtype]


@dataclass(frozen=True)
class Saved:
    """One tensor autograd keeps for backward: the layer that saves it (``where``, its
    path), ``what`` it is (``input``, ``output``, ``mask``, ``stats``, ...), its element
    count, its kind (``float``, ``mask`` or ``index``), its model-parallel region and an
    identity (``tensor``): two entries with the same identity are one tensor, counted
    once (a ReLU's output that the next layer saves as its input)."""

    where: str
    what: str
    numel: Any
    dtype: str = "float"
    region: str = "sequence"
    tensor: int = -1

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES or self.region not in REGIONS:
            raise SymflopsError("unknown kind of saved tensor", layer="Saved",
                                values={"dtype": self.dtype, "region": self.region},
                                fix=f"use dtype in {DTYPES} and region in {REGIONS}")
        object.__setattr__(self, "numel", sp.sympify(self.numel))


@dataclass(frozen=True)
class Optimizer:
    """An optimizer's state: ``bytes_per_param`` of each trainable parameter (master
    weights included) and ``bytes_per_factored`` of each value of a factored second
    moment (:func:`factored_size`), with what they are."""

    name: str
    bytes_per_param: int
    description: str = ""
    bytes_per_factored: int = 0


@dataclass(frozen=True)
class Accounting:
    """Which saved tensors count as activation memory (``keeps``), named."""

    name: str
    keeps: Callable[[Saved], bool]
    description: str = ""


_OPTIMIZERS: dict[str, Optimizer] = {}
_ACCOUNTINGS: dict[str, Accounting] = {}


def _register(table: dict[str, Any], item: Any, kind: str, replace: bool) -> Any:
    if not isinstance(item.name, str) or not item.name.isidentifier():
        raise SymflopsError(f"an {kind} name must be an identifier", layer=kind,
                            values={"name": repr(item.name)}, fix="use letters and _")
    if item.name in table and not replace:
        raise SymflopsError(f"an {kind} with this name is already registered", layer=kind,
                            values={"name": item.name}, fix="pick another name or replace=True")
    table[item.name] = item
    return item


def _get(table: Mapping[str, Any], name: Any, kind: str) -> Any:
    """A registered item by name (an item itself passes through)."""
    if isinstance(name, (Optimizer, Accounting)):
        return name
    try:
        return table[name]
    except (KeyError, TypeError):
        raise SymflopsError(f"unknown {kind}", layer=kind, values={kind: repr(name)},
                            fix="use one of " + ", ".join(sorted(table))) from None


def register_optimizer(optimizer: Optimizer, *, replace: bool = False) -> Optimizer:
    """Make ``optimizer`` available by name (a name registered twice raises)."""
    n = optimizer.bytes_per_param
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SymflopsError("bytes_per_param must be a whole number >= 0", layer="optimizer",
                            values={"bytes_per_param": repr(n)}, fix="e.g. 12 for Adam")
    return _register(_OPTIMIZERS, optimizer, "optimizer", replace)


def get_optimizer(name: str | Optimizer) -> Optimizer:
    """A registered optimizer by name (an :class:`Optimizer` passes through)."""
    return _get(_OPTIMIZERS, name, "optimizer")


def optimizers() -> dict[str, Optimizer]:
    """Every registered optimizer by name."""
    return dict(_OPTIMIZERS)


def register_accounting(accounting: Accounting, *, replace: bool = False) -> Accounting:
    """Make an activation accounting available by name (a name registered twice raises)."""
    return _register(_ACCOUNTINGS, accounting, "accounting", replace)


def get_accounting(name: str | Accounting) -> Accounting:
    """A registered accounting by name (an :class:`Accounting` passes through)."""
    return _get(_ACCOUNTINGS, name, "accounting")


def accountings() -> dict[str, Accounting]:
    """Every registered accounting by name."""
    return dict(_ACCOUNTINGS)


register_optimizer(Optimizer("adam", 12, "fp32 master weights (4), first moment (4), second "
                                         "moment (4) per trainable parameter"))
register_optimizer(Optimizer("adam_fp32", 8, "first and second moments (4 + 4); the "
                                             "parameters are fp32 already"))
register_optimizer(Optimizer("sgd", 4, "fp32 master weights (4) per trainable parameter"))
register_optimizer(Optimizer("sgd_momentum", 8, "fp32 master weights (4) and the momentum "
                                                "buffer (4) per trainable parameter"))
register_optimizer(Optimizer("adafactor", 4, "fp32 master weights (4) per trainable "
                                            "parameter and the factored second moment (4 per "
                                            "row and column statistic)",
                             bytes_per_factored=4))
register_accounting(Accounting("torch", lambda s: True,
                               "every tensor torch's autograd saves for backward"))
register_accounting(Accounting(
    "korthikanti", lambda s: s.what != "stats",
    "Korthikanti et al. 2022, section 4: the tensors saved for backward without the "
    "normalization statistics (mean, rstd), which the paper leaves out"))


def factored_size(shapes: Iterable[Sequence[Any]]) -> Any:
    """The values of a factored second moment (``torch.optim.Adafactor``) of weights of
    ``shapes``: ``numel / c + numel / r`` for a shape ``(..., r, c)``, ``numel`` for a
    vector.

    >>> factored_size([(4096, 1024), (4096,)])
    9216
    """
    total: Any = 0
    for shape in shapes:
        n = sp.Mul(*shape)
        total += n / shape[-1] + n / shape[-2] if len(shape) >= 2 else n
    return sp.sympify(total)


def unique(saved: Iterable[Saved]) -> list[Saved]:
    """``saved`` with each tensor once (the first entry of each identity)."""
    seen: set[int] = set()
    out: list[Saved] = []
    for s in saved:
        if s.tensor >= 0:
            if s.tensor in seen:
                continue
            seen.add(s.tensor)
        out.append(s)
    return out


@dataclass(frozen=True)
class Memory:
    """Training memory in bytes: ``params``, ``gradients``, ``optimizer`` (state),
    ``activations`` (saved for backward) and their ``total``, from the parameter counts
    (``param_count``, ``trainable``) and the saved tensors (``saved``).

    ``tensor_parallel``: the tensor-parallel degree ``t`` (an int or a symbol);
    ``sequence_parallel``: the activations outside the tensor-parallel regions are split
    over ``t`` too. Parameters, gradients and optimizer state are of the whole model.
    """

    param_count: Any = 0
    trainable: Any = 0
    saved: tuple[Saved, ...] = ()
    #: values of a factored second moment of the trainable weights (:func:`factored_size`)
    factored: Any = 0
    precision: Precision = field(default_factory=Precision)
    optimizer_name: str = "adam"
    accounting: str = "korthikanti"
    tensor_parallel: Any = 1
    sequence_parallel: bool = False

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "param_count", sp.sympify(self.param_count))
        put(self, "trainable", sp.sympify(self.trainable))
        put(self, "factored", sp.sympify(self.factored))
        put(self, "saved", tuple(self.saved))
        put(self, "tensor_parallel", sp.sympify(self.tensor_parallel))
        get_optimizer(self.optimizer_name)
        get_accounting(self.accounting)
        if not isinstance(self.precision, Precision):
            raise SymflopsError("precision must be a Precision", layer="Memory",
                                values={"precision": repr(self.precision)},
                                fix="pass symflops.memory.Precision(activations=2, ...)")

    @property
    def params(self) -> sp.Expr:
        """Bytes of the parameters (every parameter, trainable or frozen)."""
        return self.param_count * self.precision.params

    @property
    def gradients(self) -> sp.Expr:
        """Bytes of the gradients (trainable parameters only)."""
        return self.trainable * self.precision.grads

    @property
    def optimizer(self) -> sp.Expr:
        """Bytes of the optimizer state (trainable parameters only)."""
        opt = get_optimizer(self.optimizer_name)
        return self.trainable * opt.bytes_per_param + self.factored * opt.bytes_per_factored

    def split(self, s: Saved) -> sp.Expr:
        """How many ways the tensor ``s`` is split under model parallelism."""
        if s.region == "tensor" or self.sequence_parallel:
            return self.tensor_parallel
        return sp.Integer(1)

    @property
    def kept(self) -> list[Saved]:
        """The saved tensors this accounting counts, each tensor once."""
        keeps = get_accounting(self.accounting).keeps
        return [s for s in unique(self.saved) if keeps(s)]

    @property
    def activations(self) -> sp.Expr:
        """Bytes saved for backward, under the accounting, per tensor-parallel rank."""
        return sp.expand(sp.Add(*(s.numel * self.precision.of(s.dtype) / self.split(s)
                                  for s in self.kept)))

    def by_layer(self) -> dict[str, sp.Expr]:
        """Activation bytes per layer (the path that saved them), under the accounting.

        >>> m = Memory(saved=(Saved("fc1", "input", 8), Saved("act", "input", 32),
        ...                   Saved("fc2", "input", 32)))
        >>> m.by_layer()
        {'fc1': 16, 'act': 64, 'fc2': 64}
        """
        out: dict[str, sp.Expr] = {}
        for s in self.kept:
            out[s.where] = out.get(s.where, sp.Integer(0)) + \
                s.numel * self.precision.of(s.dtype) / self.split(s)
        return {k: sp.expand(v) for k, v in out.items()}

    @property
    def total(self) -> sp.Expr:
        """``params + gradients + optimizer + activations``."""
        return self.params + self.gradients + self.optimizer + self.activations

    @property
    def dropped(self) -> list[Saved]:
        """The saved tensors torch keeps that this accounting leaves out."""
        keeps = get_accounting(self.accounting).keeps
        return [s for s in unique(self.saved) if not keeps(s)]

    def replace(self, **changes: Any) -> Memory:
        """A copy with other options (``precision``, ``optimizer_name``, ``accounting``,
        ``tensor_parallel``, ``sequence_parallel``)."""
        return dataclasses.replace(self, **changes)

    def xreplace(self, mapping: Mapping[sp.Basic, Any]) -> Memory:
        """Symbols replaced in every count (what ``Cost.subs`` does to its memory)."""
        return dataclasses.replace(
            self, param_count=self.param_count.xreplace(mapping),
            trainable=self.trainable.xreplace(mapping),
            factored=self.factored.xreplace(mapping),
            saved=tuple(dataclasses.replace(s, numel=s.numel.xreplace(mapping))
                        for s in self.saved),
            tensor_parallel=self.tensor_parallel.xreplace(mapping))

    def __add__(self, other: Memory) -> Memory:
        return dataclasses.replace(self, param_count=self.param_count + other.param_count,
                                   trainable=self.trainable + other.trainable,
                                   factored=self.factored + other.factored,
                                   saved=self.saved + other.saved)
