"""``mode="train"`` for ``sf.nn``: each layer's forward, its backward derived op by op as
torch's autograd runs it, and the tensors autograd saves for backward.

Each layer class has its train rule beside its forward (``Layer._train``): it receives
its input shape and the input tensor (:class:`Ref`: an
identity, its size, whether it needs a gradient) and returns a :class:`Step` (the Cost,
with ``memory``, and the output tensor). What torch does decides each count:

* a gradient op runs only for what needs it: no ``grad_input`` for an input that needs
  no gradient (a model's input), no ``grad_weight`` for a frozen layer, nothing at all
  when neither;
* each layer saves what its autograd node saves (Linear and Conv their input, GELU and
  SiLU their input, ReLU, Sigmoid, Tanh and Softmax their output, Dropout its mask,
  LayerNorm its input and the row statistics, ...), and a tensor saved twice counts once.

>>> from symflops.symbols import B, N
>>> from symflops.nn import Sequential, Linear, ReLU
>>> c = Sequential(Linear(8, 16), ReLU(), Linear(16, 4)).cost((B, 8), mode="train")
>>> c.memory.activations          # x (8), the ReLU's output (16): 2 bytes each
48*B
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.pointwise import elementwise_derivation, grad_accumulation_derivation
from symflops.memory import Memory, Precision, Saved, add_known, factored_size, get_precision
from symflops.nn._base import TRAINER, Layer, Shape, numel, to_size

__all__ = ["Ref", "Train", "Step", "train_layer", "RECOMPUTE", "join", "grad_leaves",
           "leaf_step", "composite", "sum_memory", "no_grad", "forward_work", "checkpointed",
           "train_cost", "op_step", "mul_step", "accumulate", "rotary_step", "chain"]


#: recomputation policies
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Ref:
    """A tensor in the training pass: its identity, element count and whether it needs
    a gradient."""

    id: int
    numel: sp.Expr
    grad: bool


@dataclass
class Train:
    """The options of one training pass and its tensor identities."""

    frozen: bool | frozenset[str] = False
    recompute: str = "none"
    memory: dict[str, Any] = field(default_factory=dict)
    region: str = "sequence"
    ids: Iterator[int] = field(default_factory=itertools.count)
    checkpoints: list[str] = field(default_factory=list)
    matched: set[str] = field(default_factory=set)

    def new(self, numel: Any, grad: bool) -> Ref:
        return Ref(next(self.ids), sp.sympify(numel), bool(grad))

    def is_frozen(self, path: str) -> bool:
        if isinstance(self.frozen, bool):
            return self.frozen
        hits = {f for f in self.frozen if path == f or path.startswith(f + ".")}
        self.matched |= hits
        return bool(hits)

    def saved(self, path: str, what: str, t: Ref | Any, dtype: str = "float") -> Saved:
        """A saved tensor: ``t`` a :class:`Ref` (its identity kept) or an element count."""
        if isinstance(t, Ref):
            return Saved(path, what, t.numel, dtype, self.region, t.id)
        return Saved(path, what, t, dtype, self.region)

    def mem(self, params: Any, trainable: Any, saved: Sequence[Saved],
            factored: Any = 0, sharded: tuple[Any, Any] | None = None) -> Memory:
        """A Memory with these options. ``sharded``: how many of ``params`` and of
        ``trainable`` tensor parallelism splits; not given: none when there are no
        parameters, else not known (a tensor-parallel degree then raises)."""
        if sharded is None:
            none = sp.sympify(params) == 0 and sp.sympify(trainable) == 0
            sharded = (0, 0) if none else (None, None)
        return Memory(params, trainable, tuple(saved), factored, **self.memory,
                      sharded=sharded[0], sharded_trainable=sharded[1])

    def inside(self, region: str) -> Train:
        """The same pass, saving into ``region``."""
        return dataclasses.replace(self, region=region)


@dataclass(frozen=True)
class Step:
    """A layer's training cost (with ``memory``) and its output tensor."""

    cost: Cost
    out: Ref


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def train_layer(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """The training step of ``layer`` on ``x``: its class's ``_train`` (every registered
    layer has one, or says in ``no_train`` why it cannot train)."""
    rule = getattr(layer, "_train", None)
    if rule is None:
        raise SymflopsError(f"mode='train' is not available: {layer.no_train}",
                            layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    step: Step = rule(shape, name, path, x, tr)
    return step


def grad_leaves(grads: dict[str, Derivation], layer: str, spec: str, shape: Shape
                 ) -> list[Cost]:
    return [Cost.from_derivation(k, f"{layer}Backward", d, spec=f"{spec} {k}",
                                 input_shape=shape, output_shape=shape)
            for k, d in grads.items()]


def leaf_step(layer: Layer, shape: Shape, name: str, tr: Train, fwd: Cost, *,
              grads: dict[str, Derivation], saved: Sequence[Saved], out: Ref,
              trainable: bool, weights: Sequence[Sequence[Any]] | None = None,
              sharded: Any = 0) -> Step:
    """A layer's training node: ``forward`` (its eval cost), the gradient ops and the
    memory. ``weights``: the shapes of its parameters (default: vectors only);
    ``sharded``: how many of its parameters tensor parallelism splits (Megatron: a
    linear layer's weight, a column-parallel one's bias, an embedding table; default
    none: replicated)."""
    kids = [fwd.replace(name="forward"),
            *grad_leaves(grads, layer.layer_type(), layer.spec(), fwd.output_shape)]
    factored = (fwd.params if weights is None else factored_size(weights)) if trainable else 0
    mem = tr.mem(fwd.params, fwd.params if trainable else 0, saved, factored,
                 (sharded, sharded if trainable else 0))
    cost = Cost(name, layer.layer_type(), spec=layer.spec(), children=kids,
                input_shape=shape, output_shape=fwd.output_shape, memory=mem)
    return Step(cost, out)


def composite(layer: Layer, shape: Shape, name: str, tr: Train, children: Sequence[Cost],
              out_shape: Shape, *, memory: Memory | None = None,
              layer_type: str = "") -> Cost:
    """A composite node whose memory sums its children's (each child once)."""
    if memory is None:
        memory = sum_memory(tr, children)
    return Cost(name, layer_type or layer.layer_type(), spec=layer.spec(), children=children,
                input_shape=shape, output_shape=out_shape, memory=memory)


def sum_memory(tr: Train, children: Sequence[Cost]) -> Memory:
    params: list[sp.Expr] = []
    trainable: list[sp.Expr] = []
    factored: list[sp.Expr] = []
    saved: list[Saved] = []
    sharded: list[Any] = []
    sharded_trainable: list[Any] = []
    for c in children:
        if c.memory is None:
            continue
        params.append(c.memory.param_count)
        trainable.append(c.memory.trainable)
        factored.append(c.memory.factored)
        saved.extend(c.memory.saved)
        sharded.append(c.memory.sharded)
        sharded_trainable.append(c.memory.sharded_trainable)
    return tr.mem(sp.Add(*params), sp.Add(*trainable), saved, sp.Add(*factored),
                  (add_known(*sharded), add_known(*sharded_trainable)))


def no_grad(layer: Layer, shape: Shape, name: str, tr: Train, fwd: Cost) -> Step:
    """A layer whose input needs no gradient and that has nothing to train: its forward."""
    out = tr.new(numel(fwd.output_shape), False)
    return leaf_step(layer, shape, name, tr, fwd, grads={}, saved=[], out=out,
                     trainable=False)


def forward_work(cost: Cost) -> dict[str, sp.Expr]:
    """The work of every ``forward`` node under ``cost`` (what recomputing it costs)."""
    if cost.name == "forward":
        return dict(cost.work)
    total: dict[str, list[sp.Expr]] = {}
    for c in cost.children:
        if c.name == "recompute":
            continue
        for k, v in forward_work(c).items():
            total.setdefault(k, []).append(c.count * v)
    return {k: sp.Add(*v) for k, v in total.items()}


def checkpointed(cost: Cost, x: Ref, path: str, tr: Train) -> Cost:
    """``cost`` under full recomputation: only its input is kept; its forward runs again
    in backward (``recompute``)."""
    mem = cost.memory
    assert mem is not None
    again = Cost("recompute", "Recompute", spec="forward recomputed in backward",
                 work=forward_work(cost), input_shape=cost.input_shape,
                 output_shape=cost.output_shape)
    saved = (tr.saved(path, "checkpoint input", x),) if mem.trainable != 0 or x.grad else ()
    return cost.replace(children=[*cost.children, again], memory=mem.replace(saved=saved))


def train_cost(layer: Layer, shape: Shape, name: str, *, recompute: str = "none",
               frozen: bool | Sequence[str] = False, input_grad: bool = False,
               optimizer: str = "adam", precision: Precision | str | None = None,
               accounting: str = "korthikanti", tensor_parallel: Any = 1,
               sequence_parallel: bool = False, zero: int = 0, data_parallel: Any = 1,
               pipeline_parallel: Any = 1) -> Cost:
    """``layer.cost(shape, mode="train", ...)``: see :meth:`symflops.nn.Layer.cost`."""
    if recompute not in RECOMPUTE:
        raise SymflopsError("unknown recompute policy", layer=layer.spec(),
                            values={"recompute": repr(recompute)},
                            fix="use " + ", ".join(repr(r) for r in RECOMPUTE))
    paths: bool | frozenset[str] = frozen if isinstance(frozen, bool) else frozenset()
    if not isinstance(frozen, bool):
        if isinstance(frozen, str) or not all(isinstance(f, str) for f in frozen):
            raise SymflopsError("frozen is True or a list of paths", layer=layer.spec(),
                                values={"frozen": repr(frozen)},
                                fix='pass frozen=True or frozen=["0", "mlp.fc1"]')
        paths = frozenset(frozen)
    memory = dict(precision=get_precision(precision), optimizer_name=optimizer,
                  accounting=accounting,
                  tensor_parallel=to_size(tensor_parallel, layer.spec(), "tensor_parallel"),
                  sequence_parallel=bool(sequence_parallel), zero=zero,
                  data_parallel=to_size(data_parallel, layer.spec(), "data_parallel"),
                  pipeline_parallel=to_size(pipeline_parallel, layer.spec(),
                                            "pipeline_parallel"))
    try:
        Memory(**memory)  # checks the options now
    except SymflopsError as e:
        raise SymflopsError(e.message, layer=layer.spec(), values=e.values, fix=e.fix) from None
    tr = Train(frozen=paths, recompute=recompute, memory=memory)
    x = tr.new(numel(shape), input_grad)
    step = train_layer(layer, shape, name, "", x, tr)
    cost = step.cost
    if isinstance(paths, frozenset) and paths - tr.matched:
        raise SymflopsError("frozen names parts the layer does not have", layer=layer.spec(),
                            values={"frozen": sorted(paths - tr.matched)},
                            fix="use the paths of its parts with parameters, as in "
                                "[p for p, _ in cost.walk()]")
    if recompute == "full" and not tr.checkpoints:
        cost = checkpointed(cost, x, "", tr)
    mem = cost.memory
    assert mem is not None
    if mem.dropped:
        left = sp.expand(sp.Add(*(s.numel * mem.precision.of(s.dtype) for s in mem.dropped)))
        cost = cost.replace(notes=(*cost.notes, (
            f"activations under the {mem.accounting} accounting; torch also saves "
            f"{left} bytes of normalization statistics (accounting='torch' counts them)")))
    return cost


def op_step(name: str, layer_type: str, shape: Shape, out_shape: Shape, tr: Train,
            fwd: Derivation, grads: dict[str, Derivation], saved: Sequence[Saved],
            out: Ref) -> Step:
    """One aten op in training without parameters: ``forward`` and its gradient ops."""
    kids = [Cost.from_derivation("forward", layer_type, fwd, spec=name, input_shape=shape,
                                 output_shape=out_shape),
            *grad_leaves(grads, layer_type, name, out_shape)]
    return Step(Cost(name, layer_type, spec=name, children=kids, input_shape=shape,
                     output_shape=out_shape, memory=tr.mem(0, 0, saved)), out)


def mul_step(name: str, shape: Shape, path: str, a: Ref, b: Ref, tr: Train) -> Step:
    """``a * b`` (same sizes): ``MulBackward0`` keeps ``b`` for ``a``'s gradient and ``a``
    for ``b``'s, one multiply per element each."""
    n = a.numel
    fwd = elementwise_derivation(n, 1, "one multiply per element")
    grads: dict[str, Derivation] = {}
    saved = []
    if a.grad:
        grads["grad_a"] = elementwise_derivation(n, 1, "grad_a = grad * b")
        saved.append(tr.saved(path, "other", b))
    if b.grad:
        grads["grad_b"] = elementwise_derivation(n, 1, "grad_b = grad * a")
        saved.append(tr.saved(path, "self", a))
    return op_step(name, "Mul", shape, shape, tr, fwd, grads, saved,
                   tr.new(n, a.grad or b.grad))


def accumulate(x: Ref, shape: Shape, what: str) -> list[Cost]:
    """The add of a tensor's two gradients (it feeds two ops), when it needs one."""
    if not x.grad:
        return []
    return [Cost.from_derivation("grad_accumulate", "AddBackward",
                                 grad_accumulation_derivation(x.numel),
                                 spec=f"gradient accumulation at {what}", input_shape=shape,
                                 output_shape=shape, validity=())]


def rotary_step(forward: Cost, vectors: sp.Expr, head_dim: sp.Expr, positions: sp.Expr,
                path: str, x: Ref, tr: Train) -> Step:
    """The rotation ``q cos + rotate_half(q) sin`` of ``vectors`` query and key vectors
    (``forward``: the eval cost's ``rotary`` part). Its backward per element, as autograd
    runs transformers' ``apply_rotary_pos_emb``: ``grad cos`` (1), ``grad sin`` (1), the
    negation's gradient on half (1/2), the two halves' gradients added (1) and the two
    paths' gradients added (1): 9/2. The muls keep ``cos`` and ``sin`` (``positions x
    head_dim`` each, shared by q and k)."""
    if not x.grad:
        return Step(forward.replace(memory=tr.mem(0, 0, ())), x)
    n = vectors * head_dim
    grads = {"grad_input": elementwise_derivation(
        n, sp.Rational(9, 2), "rotary gradient: grad*cos, grad*sin, the negated half, the "
        "halves added and the two paths added: 9/2 per element")}
    saved = [tr.saved(path, "cos", positions * head_dim),
             tr.saved(path, "sin", positions * head_dim)]
    kids = [forward.replace(name="forward"),
            *grad_leaves(grads, "Rotary", forward.spec, forward.output_shape)]
    cost = Cost("rotary", "Rotary", spec=forward.spec, children=kids,
                input_shape=forward.input_shape, output_shape=forward.output_shape,
                memory=tr.mem(0, 0, saved))
    return Step(cost, tr.new(x.numel, True))


def chain(items: Any, shape: Shape, path: str, x: Ref, tr: Train
          ) -> tuple[list[Cost], Shape, Ref]:
    """Layers applied in order: their steps, the output shape and tensor."""
    children = []
    for key, sub in items:
        try:
            step = train_layer(sub, shape, key, join(path, key), x, tr)
        except SymflopsError as e:
            raise e.at(key) from None
        children.append(step.cost)
        shape, x = step.cost.output_shape, step.out
    return children, shape, x


TRAINER.run = train_cost
