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

Model states (parameters, gradients, optimizer state) per device, under three more
degrees (every quantity here is per device, the mean over the ranks: see
:attr:`Memory.model_states`):

* tensor parallelism ``t`` splits the ``sharded`` parameters (Megatron-LM, Shoeybi et al.
  2019, section 3: the weight matrices of every linear layer and the token embedding
  table, vocab-parallel; the bias of a column-parallel linear layer; a row-parallel
  layer's bias, position tables, the normalization layers and every other parameter
  (convolutions, recurrent layers) replicated): ``replicated + sharded / t``. A linear
  layer is row-parallel where symflops knows its input is split: attention's output
  projection and the second linear layer of a ``TransformerBlock``'s MLP; every other
  linear layer counts as column-parallel (so the second bias of a hand-built MLP, as in
  ``sf.presets.gpt``, counts as split, ``dim (1 - 1/t)`` bytes per layer fewer than
  Megatron keeps);
* ZeRO (Rajbhandari et al. 2020, section 5) partitions over the ``data_parallel`` degree
  ``N_d``: stage 1 the optimizer state, stage 2 the gradients too, stage 3 the parameters
  too (:data:`ZERO_STAGES`); with ``Psi`` parameters and ``K`` optimizer bytes per
  parameter, ``(2 + 2 + K) Psi``, ``2 Psi + 2 Psi + K Psi / N_d``, ``2 Psi + (2 + K) Psi /
  N_d`` and ``(2 + 2 + K) Psi / N_d`` bytes;
* pipeline parallelism ``p`` divides the model states over ``p`` stages, assuming uniform
  stages (each holds ``1/p`` of every parameter count: real stages put the embedding and
  the LM head on the first and last); activations are the first stage's under the 1F1B
  schedule: ``p`` micro-batches in flight through ``L/p`` layers each, so one micro-batch's
  activations of the whole model, as without pipelining (Narayanan et al. 2021, section
  2.2.1; Korthikanti et al. 2022, section 4.2.3). The bubble: :func:`pipeline_bubble`.

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
           "accountings", "unique", "factored_size", "REGIONS", "DTYPES", "ZERO_STAGES",
           "ZeroStage", "get_zero", "PRECISIONS", "get_precision", "degree", "pipeline_bubble",
           "add_known"]

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


#: named precisions (``precision="mixed"``): ``mixed`` is 16-bit parameters, gradients and
#: activations with the fp32 master weights in the optimizer state (pair it with
#: ``optimizer="adam"``: the ZeRO paper's 2 + 2 + 12 bytes); ``fp32`` is 4 bytes
#: everywhere (pair it with ``optimizer="adam_fp32"``: no master copy)
PRECISIONS: dict[str, Precision] = {
    "mixed": Precision(),
    "fp32": Precision(params=4, grads=4, activations=4),
}


def get_precision(value: Precision | str | None) -> Precision:
    """A :class:`Precision`, or one of :data:`PRECISIONS` by name (None: ``"mixed"``)."""
    if value is None:
        return PRECISIONS["mixed"]
    if isinstance(value, Precision):
        return value
    if isinstance(value, str) and value in PRECISIONS:
        return PRECISIONS[value]
    raise SymflopsError("unknown precision", layer="Precision", values={"precision": repr(value)},
                        fix="pass one of " + ", ".join(repr(k) for k in PRECISIONS)
                            + " or symflops.memory.Precision(params=2, ...)")


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


@dataclass(frozen=True)
class ZeroStage:
    """A ZeRO stage (Rajbhandari et al. 2020, section 5.1-5.3, Figure 1): the model states
    it partitions over the data-parallel ranks (``partitions``: among ``optimizer``,
    ``gradients``, ``params``)."""

    stage: int
    name: str
    partitions: frozenset[str]
    description: str


#: ZeRO's stages by number: 0 is plain data parallelism (every state replicated)
ZERO_STAGES: dict[int, ZeroStage] = {z.stage: z for z in (
    ZeroStage(0, "DP", frozenset(), "data parallelism: every model state replicated"),
    ZeroStage(1, "P_os", frozenset({"optimizer"}),
              "optimizer state partitioned over the data-parallel ranks"),
    ZeroStage(2, "P_os+g", frozenset({"optimizer", "gradients"}),
              "optimizer state and gradients partitioned"),
    ZeroStage(3, "P_os+g+p", frozenset({"optimizer", "gradients", "params"}),
              "optimizer state, gradients and parameters partitioned"),
)}


def get_zero(stage: Any) -> ZeroStage:
    """The :class:`ZeroStage` numbered ``stage`` (0, 1, 2 or 3)."""
    if isinstance(stage, bool) or not isinstance(stage, int) or stage not in ZERO_STAGES:
        raise SymflopsError("zero must be a ZeRO stage: 0, 1, 2 or 3", layer="Memory",
                            values={"zero": repr(stage)},
                            fix="pass zero=0 (plain data parallelism), 1 (optimizer state "
                                "partitioned), 2 (and gradients) or 3 (and parameters)")
    return ZERO_STAGES[stage]


def degree(value: Any, what: str) -> sp.Expr:
    """A parallel degree: an int >= 1, a SymPy expression in positive-integer symbols, or
    a name or integer as text (read by symflops' own parser)."""
    from symflops.parse import parse_int, parse_symbol

    if isinstance(value, bool):
        e: Any = None
    elif isinstance(value, int):
        e = sp.Integer(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            e = sp.Integer(parse_int(text, what)) if text.isdigit() else parse_symbol(text)
        except SymflopsError:
            e = None
    elif isinstance(value, sp.Expr) and not value.atoms(sp.Float) and all(
            s.is_integer and s.is_positive for s in value.free_symbols):
        e = value
    else:
        e = None
    if e is None or e.is_positive is False or (e.is_number and not e.is_Integer):
        raise SymflopsError(f"{what} must be a parallel degree: an integer >= 1 or a symbol",
                            layer="Memory", values={what: repr(value)},
                            fix=f"pass {what}=8 or {what}=sf.symbols.symbol('D')")
    return sp.sympify(e)


def pipeline_bubble(p: Any, m: Any, v: Any = 1) -> sp.Expr:
    """The pipeline bubble of ``p`` stages and ``m`` micro-batches per batch: the idle
    time over the ideal time, ``(p - 1) / m`` for GPipe and for 1F1B alike (Narayanan et
    al. 2021, *Efficient Large-Scale Language Model Training on GPU Clusters Using
    Megatron-LM*, section 2.2.1: ``t_pb / t_id = (p - 1) / m``), and ``(p - 1) / (v m)``
    for the interleaved schedule with ``v`` model chunks per device (section 2.2.2). As a
    fraction of the whole batch time it is ``(p - 1) / (v m + p - 1)``: the bubble over
    ``ideal + bubble``.

    >>> pipeline_bubble(8, 32)
    7/32
    >>> from symflops.symbols import symbol
    >>> pipeline_bubble(symbol("p"), symbol("m"), 2)
    (p - 1)/(2*m)
    """
    pp, mm, vv = degree(p, "p"), degree(m, "m"), degree(v, "v")
    return (pp - 1) / (vv * mm)


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
    over ``t`` too. ``sharded`` and ``sharded_trainable``: how many of ``param_count`` and
    of ``trainable`` tensor parallelism splits (None: not known, as for a traced model;
    then a degree ``t`` other than 1 is an error). ``zero`` (a stage of
    :data:`ZERO_STAGES`) with ``data_parallel`` (``N_d``) and ``pipeline_parallel``
    (``p``): see the module docstring. Every quantity is per device.

    >>> m = Memory(param_count=100, trainable=100, sharded=96, sharded_trainable=96,
    ...            tensor_parallel=4, zero=1, data_parallel=8)
    >>> m.params, m.gradients, m.optimizer      # (4 + 96/4) = 28 per rank
    (56, 56, 42)
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
    sharded: Any = None
    sharded_trainable: Any = None
    zero: int = 0
    data_parallel: Any = 1
    pipeline_parallel: Any = 1

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "param_count", sp.sympify(self.param_count))
        put(self, "trainable", sp.sympify(self.trainable))
        put(self, "factored", sp.sympify(self.factored))
        put(self, "saved", tuple(self.saved))
        for what in ("tensor_parallel", "data_parallel", "pipeline_parallel"):
            put(self, what, degree(getattr(self, what), what))
        for what in ("sharded", "sharded_trainable"):
            if getattr(self, what) is not None:
                put(self, what, sp.sympify(getattr(self, what)))
        get_zero(self.zero)
        get_optimizer(self.optimizer_name)
        get_accounting(self.accounting)
        if not isinstance(self.precision, Precision):
            raise SymflopsError("precision must be a Precision", layer="Memory",
                                values={"precision": repr(self.precision)},
                                fix="pass symflops.memory.Precision(activations=2, ...)")

    def _per_device(self, count: sp.Expr, sharded: Any, state: str) -> sp.Expr:
        """``count`` elements of a model state on one device: the tensor-parallel shard
        (``count - sharded + sharded / t``), the pipeline stage's ``1/p``, and ``1/N_d``
        when the ZeRO stage partitions ``state``."""
        t = self.tensor_parallel
        if t != 1:
            if sharded is None:
                raise SymflopsError(
                    "which parameters tensor parallelism splits is not known for this model",
                    layer="Memory", values={"tensor_parallel": t},
                    fix="build the model from sf.nn layers (each knows which of its "
                        "parameters Megatron splits), or pass tensor_parallel=1")
            count = count - sharded + sharded / t
        if state in get_zero(self.zero).partitions:
            count = count / self.data_parallel
        return sp.expand(count / self.pipeline_parallel)

    @property
    def params(self) -> sp.Expr:
        """Bytes of the parameters (every parameter, trainable or frozen), per device."""
        return self._per_device(self.param_count, self.sharded, "params") * \
            self.precision.params

    @property
    def gradients(self) -> sp.Expr:
        """Bytes of the gradients (trainable parameters only), per device."""
        return self._per_device(self.trainable, self.sharded_trainable, "gradients") * \
            self.precision.grads

    @property
    def optimizer(self) -> sp.Expr:
        """Bytes of the optimizer state (trainable parameters only), per device."""
        opt = get_optimizer(self.optimizer_name)
        factored = self.factored * opt.bytes_per_factored
        if factored != 0 and self.tensor_parallel != 1:
            raise SymflopsError("a factored second moment under tensor parallelism is not "
                                "derived (a split matrix's row and column statistics)",
                                layer="Memory", values={"optimizer": self.optimizer_name},
                                fix="pass tensor_parallel=1 or another optimizer")
        per_param = self._per_device(self.trainable, self.sharded_trainable, "optimizer") * \
            opt.bytes_per_param
        return sp.expand(per_param + self._per_device(factored, 0, "optimizer"))

    @property
    def model_states(self) -> sp.Expr:
        """``params + gradients + optimizer`` per device: the ZeRO paper's model states.
        A partitioned or split count is divided evenly: exact when the degree divides it,
        else the mean over the ranks (whose shares then differ: DeepSpeed pads each
        partition to the largest, ``ceil(count / N_d)``)."""
        return sp.expand(self.params + self.gradients + self.optimizer)

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
        """``params + gradients + optimizer + activations`` (per device)."""
        return self.params + self.gradients + self.optimizer + self.activations

    @property
    def dropped(self) -> list[Saved]:
        """The saved tensors torch keeps that this accounting leaves out."""
        keeps = get_accounting(self.accounting).keeps
        return [s for s in unique(self.saved) if not keeps(s)]

    def replace(self, **changes: Any) -> Memory:
        """A copy with other options (``precision``, ``optimizer_name``, ``accounting``,
        ``tensor_parallel``, ``sequence_parallel``, ``zero``, ``data_parallel``,
        ``pipeline_parallel``)."""
        return dataclasses.replace(self, **changes)

    def xreplace(self, mapping: Mapping[sp.Basic, Any]) -> Memory:
        """Symbols replaced in every count (what ``Cost.subs`` does to its memory)."""
        return dataclasses.replace(
            self, param_count=self.param_count.xreplace(mapping),
            trainable=self.trainable.xreplace(mapping),
            factored=self.factored.xreplace(mapping),
            saved=tuple(dataclasses.replace(s, numel=s.numel.xreplace(mapping))
                        for s in self.saved),
            sharded=_map(self.sharded, mapping),
            sharded_trainable=_map(self.sharded_trainable, mapping),
            tensor_parallel=self.tensor_parallel.xreplace(mapping),
            data_parallel=self.data_parallel.xreplace(mapping),
            pipeline_parallel=self.pipeline_parallel.xreplace(mapping))

    def __add__(self, other: Memory) -> Memory:
        return dataclasses.replace(self, param_count=self.param_count + other.param_count,
                                   trainable=self.trainable + other.trainable,
                                   factored=self.factored + other.factored,
                                   saved=self.saved + other.saved,
                                   sharded=add_known(self.sharded, other.sharded),
                                   sharded_trainable=add_known(self.sharded_trainable,
                                                               other.sharded_trainable))


def _map(value: sp.Expr | None, mapping: Mapping[sp.Basic, Any]) -> sp.Expr | None:
    return None if value is None else value.xreplace(mapping)


def add_known(*counts: Any) -> sp.Expr | None:
    """The sum of parameter counts, None (not known) when any is."""
    if any(c is None for c in counts):
        return None
    return sp.sympify(sp.Add(*counts))
