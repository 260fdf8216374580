"""``mode="train"`` for ``sf.nn``: each layer's forward, its backward derived op by op as
torch's autograd runs it, and the tensors autograd saves for backward.

Each layer class has one train rule (:data:`TRAIN_RULES`, looked up along the class's
MRO): it receives the layer, its input shape and the input tensor (:class:`Ref`: an
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.memory import Memory, Precision, Saved, unique
from symflops.nn import _conv as C
from symflops.nn import _layers as L
from symflops.nn._base import TRAINER, Layer, Shape, numel, to_size
from symflops.nn._composite import (
    MultiheadAttention,
    Repeat,
    Residual,
    Sequential,
    TransformerBlock,
)

__all__ = ["Ref", "Train", "Step", "TRAIN_RULES", "train_rule", "train_layer", "RECOMPUTE"]

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

    def mem(self, params: Any, trainable: Any, saved: Sequence[Saved]) -> Memory:
        return Memory(params, trainable, tuple(saved), **self.memory)

    def inside(self, region: str) -> Train:
        """The same pass, saving into ``region``."""
        return dataclasses.replace(self, region=region)


@dataclass(frozen=True)
class Step:
    """A layer's training cost (with ``memory``) and its output tensor."""

    cost: Cost
    out: Ref


Rule = Callable[[Any, Shape, str, str, Ref, Train], Step]
#: train rule per layer class
TRAIN_RULES: dict[type, Rule] = {}


def train_rule(*classes: type) -> Callable[[Rule], Rule]:
    """Register the train rule of ``classes`` (one rule per class)."""
    def deco(rule: Rule) -> Rule:
        for cls in classes:
            if cls in TRAIN_RULES:
                raise SymflopsError("a layer class has a train rule already",
                                    layer="train_rule", values={"class": cls.__name__})
            TRAIN_RULES[cls] = rule
        return rule
    return deco


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def train_layer(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """The training step of ``layer`` on ``x`` (its rule, found along the class's MRO)."""
    for cls in type(layer).__mro__:
        rule = TRAIN_RULES.get(cls)
        if rule is not None:
            return rule(layer, shape, name, path, x, tr)
    raise SymflopsError("mode='train' is not derived for this layer yet", layer=layer.spec(),
                        fix="trace the torch module with sf.trace(..., mode='train')")


def _grad_leaves(grads: dict[str, Derivation], layer: str, spec: str, shape: Shape
                 ) -> list[Cost]:
    return [Cost.from_derivation(k, f"{layer}Backward", d, spec=f"{spec} {k}",
                                 input_shape=shape, output_shape=shape)
            for k, d in grads.items()]


def leaf_step(layer: Layer, shape: Shape, name: str, tr: Train, fwd: Cost, *,
              grads: dict[str, Derivation], saved: Sequence[Saved], out: Ref,
              trainable: bool) -> Step:
    """A layer's training node: ``forward`` (its eval cost), the gradient ops and the
    memory."""
    kids = [fwd.replace(name="forward"),
            *_grad_leaves(grads, layer.layer_type(), layer.spec(), fwd.output_shape)]
    mem = tr.mem(fwd.params, fwd.params if trainable else 0, saved)
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
    saved: list[Saved] = []
    for c in children:
        if c.memory is None:
            continue
        params.append(c.memory.param_count)
        trainable.append(c.memory.trainable)
        saved.extend(c.memory.saved)
    return tr.mem(sp.Add(*params), sp.Add(*trainable), saved)


# ----------------------------------------------------------------------------- leaves
@train_rule(L.Linear)
def _linear(layer: L.Linear, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    rows = numel(shape[:-1])
    grads = F.linear_backward_derivations(rows, layer.in_features, layer.out_features,
                                          layer.bias, input_grad=x.grad,
                                          weight_grad=trainable)
    # AddmmBackward keeps the input for the weight's gradient (the weight, for the
    # input's, is a parameter)
    saved = [tr.saved(path, "input", x)] if trainable else []
    out = tr.new(numel(fwd.output_shape), x.grad or trainable)
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=trainable)


@train_rule(C.Conv1d, C.Conv2d, C.Conv3d, C.ConvTranspose1d, C.ConvTranspose2d,
            C.ConvTranspose3d)
def _conv(layer: C.Conv2d, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    if layer.transposed:
        raise SymflopsError("mode='train' is not derived for transposed convolutions yet",
                            layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    n = layer.n
    batch = shape[0] if len(shape) == n + 2 else sp.Integer(1)
    grads = F.conv_backward_derivations(
        batch, layer.in_channels, layer.out_channels, layer.kernel_size, shape[-n:],
        fwd.output_shape[-n:], layer.stride, layer.dilation, layer.groups,
        (x.grad, trainable, trainable and layer.bias))
    saved = [tr.saved(path, "input", x)] if trainable else []
    out = tr.new(numel(fwd.output_shape), x.grad or trainable)
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=trainable)


def _no_grad(layer: Layer, shape: Shape, name: str, tr: Train, fwd: Cost) -> Step:
    """A layer whose input needs no gradient and that has nothing to train: its forward."""
    out = tr.new(numel(fwd.output_shape), False)
    return leaf_step(layer, shape, name, tr, fwd, grads={}, saved=[], out=out,
                     trainable=False)


#: what each activation's autograd node keeps: its input or its output
ACTIVATION_SAVES = {"relu": "output", "sigmoid": "output", "tanh": "output",
                    "relu6": "input", "leaky_relu": "input", "silu": "input", "gelu": "input",
                    "gelu_tanh": "input", "hardswish": "input", "hardsigmoid": "input"}


@train_rule(L.ReLU, L.ReLU6, L.LeakyReLU, L.Sigmoid, L.Tanh, L.SiLU, L.Hardswish,
            L.Hardsigmoid, L.GELU)
def _activation(layer: L.ReLU, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if not x.grad:
        return _no_grad(layer, shape, name, tr, fwd)
    out = tr.new(x.numel, True)
    keeps = ACTIVATION_SAVES[layer.activation]
    saved = [tr.saved(path, keeps, x if keeps == "input" else out)]
    grads = {"grad_input": F.activation_grad_derivation(layer.activation, x.numel)}
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=False)


@train_rule(L.Softmax)
def _softmax(layer: L.Softmax, shape: Shape, name: str, path: str, x: Ref,
             tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if not x.grad:
        return _no_grad(layer, shape, name, tr, fwd)
    n = shape[layer.dim % len(shape)]
    out = tr.new(x.numel, True)
    grads = {"grad_input": F.softmax_grad_derivation(x.numel / n, n)}
    return leaf_step(layer, shape, name, tr, fwd, grads=grads,
                     saved=[tr.saved(path, "output", out)], out=out, trainable=False)


def _norm(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train, *,
          affine: bool, stats: Any, grads: Callable[[tuple[bool, bool, bool]],
                                                    dict[str, Derivation]],
          fwd: Cost | None = None) -> Step:
    """A normalization: it saves its input and ``stats`` statistics per stat tensor
    (``stats`` a list of element counts), and computes the gradients ``grads(mask)``."""
    fwd = layer._cost(shape, name) if fwd is None else fwd
    trainable = affine and not tr.is_frozen(path)
    if not (x.grad or trainable):
        return _no_grad(layer, shape, name, tr, fwd)
    saved = [tr.saved(path, "input", x)] + [tr.saved(path, "stats", s) for s in stats]
    return leaf_step(layer, shape, name, tr, fwd, grads=grads((x.grad, trainable, trainable)),
                     saved=saved, out=tr.new(x.numel, True), trainable=trainable)


@train_rule(L.LayerNorm)
def _layer_norm(layer: L.LayerNorm, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    k = len(layer.normalized_shape)
    rows, n = numel(shape[:-k]), numel(layer.normalized_shape)
    affine = layer.elementwise_affine
    # native_layer_norm keeps the input, the per-row mean and rstd (and its parameters)
    return _norm(layer, shape, name, path, x, tr, affine=affine, stats=[rows, rows],
                 grads=lambda m: F.layer_norm_grad_derivations(
                     rows, n, weight=affine, bias=affine and layer.bias, output_mask=m))


@train_rule(L.RMSNorm)
def _rms_norm(layer: L.RMSNorm, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    k = len(layer.normalized_shape)
    rows, n = numel(shape[:-k]), numel(layer.normalized_shape)
    affine = layer.elementwise_affine
    # _fused_rms_norm keeps the input and the per-row rstd
    return _norm(layer, shape, name, path, x, tr, affine=affine, stats=[rows],
                 grads=lambda m: F.rms_norm_grad_derivations(
                     rows, n, weight=affine, output_mask=(m[0], m[1])))


@train_rule(L.GroupNorm)
def _group_norm(layer: L.GroupNorm, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    batch, groups = shape[0], layer.num_groups
    # native_group_norm keeps the input, the per-group mean and rstd
    return _norm(layer, shape, name, path, x, tr, affine=layer.affine,
                 stats=[batch * groups, batch * groups],
                 grads=lambda m: F.group_norm_grad_derivations(
                     batch, groups, layer.num_channels, numel(shape[2:]),
                     weight=layer.affine, output_mask=m))


@train_rule(L.BatchNorm1d, L.BatchNorm2d, L.BatchNorm3d)
def _batch_norm(layer: L.BatchNorm2d, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    """In training a BatchNorm normalizes with the batch statistics, updates its running
    statistics (7 per channel) and counts the batch (``num_batches_tracked += 1``)."""
    layer._check_rank(shape, layer.ranks, layer.layout)
    layer._check_channels(shape, shape[1], layer.num_features)
    c = layer.num_features
    d = F.batch_norm_derivation(numel(shape), c, training=True, affine=layer.affine)
    fwd = Cost("forward", layer.layer_type(), spec=layer.spec(), input_shape=shape,
               output_shape=shape, children=[
                   layer._leaf("normalize", shape, shape, d),
                   Cost.from_derivation("running_stats", "BatchNormStats",
                                        F.running_stats_derivation(c),
                                        spec="running statistics"),
                   Cost.from_derivation("num_batches_tracked", "Add",
                                        F.elementwise_derivation(1, 1, "num_batches_tracked "
                                                                       "+= 1: one add"),
                                        spec="num_batches_tracked")])
    return _norm(layer, shape, name, path, x, tr, affine=layer.affine, stats=[c, c],
                 grads=lambda m: F.batch_norm_grad_derivations(
                     numel(shape), c, training=True, weight=layer.affine, output_mask=m),
                 fwd=fwd)


@train_rule(L.Dropout)
def _dropout(layer: L.Dropout, shape: Shape, name: str, path: str, x: Ref,
             tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if layer.p == 0:  # torch returns the input itself
        return Step(fwd.replace(memory=tr.mem(0, 0, ())), x)
    train_fwd = Cost.from_derivation("forward", "Dropout", F.dropout_derivation(x.numel),
                                     spec=layer.spec(), input_shape=shape, output_shape=shape)
    if not x.grad:
        return _no_grad(layer, shape, name, tr, train_fwd)
    grads = {"grad_input": F.dropout_grad_derivation(x.numel)}
    return leaf_step(layer, shape, name, tr, train_fwd, grads=grads,
                     saved=[tr.saved(path, "mask", x.numel, "mask")],
                     out=tr.new(x.numel, True), trainable=False)


@train_rule(L.Identity, L.Flatten)
def _view(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """A view: no arithmetic, the output is the input's storage."""
    return Step(layer._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


# ----------------------------------------------------------------------------- containers
@train_rule(Sequential)
def _sequential(layer: Sequential, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    children, shape_out, out = chain(layer.layers.items(), shape, path, x, tr)
    return Step(composite(layer, shape, name, tr, children, shape_out), out)


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


@train_rule(Residual)
def _residual(layer: Residual, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    eval_cost = layer._cost(shape, name)  # checks the shapes
    items = layer.body.layers.items() if isinstance(layer.body, Sequential) else \
        [("body", layer.body)]
    children, out_shape, body_out = chain(items, shape, path, x, tr)
    grad = body_out.grad
    if layer.shortcut is not None:
        sc, _, sc_out = chain([("shortcut", layer.shortcut)], shape, path, x, tr)
        children += sc
        grad = grad or sc_out.grad
    add = eval_cost.children[-1]
    children.append(add.replace(memory=tr.mem(0, 0, ())))
    if x.grad:  # x feeds the body and the shortcut: autograd adds its two gradients
        children.append(Cost.from_derivation(
            "grad_accumulate", "AddBackward", F.grad_accumulation_derivation(x.numel),
            spec="gradient accumulation at the residual's input", input_shape=shape,
            output_shape=shape, validity=()))
    return Step(composite(layer, shape, name, tr, children, out_shape),
                tr.new(numel(out_shape), grad))


@train_rule(Repeat)
def _repeat(layer: Repeat, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    layer._cost(shape, name)  # checks the block keeps its shape
    first = train_layer(layer.block, shape, "block", join(path, "block"), x, tr)
    if first.out.grad == x.grad:  # every iteration is the same
        return _repeated(layer, shape, name, tr, [(first, x, layer.n)])
    rest = train_layer(layer.block, shape, "block", join(path, "block"), first.out, tr)
    return _repeated(layer, shape, name, tr, [(first, x, sp.Integer(1)),
                                              (rest, first.out, layer.n - 1)])


def _repeated(layer: Repeat, shape: Shape, name: str, tr: Train,
              runs: list[tuple[Step, Ref, sp.Expr]]) -> Step:
    """``runs``: (a block's step, its input, how many times it runs in a row). Each
    iteration's output is the next one's input: a tensor both save is counted once."""
    saved: list[Saved] = []
    params: list[sp.Expr] = []
    trainable: list[sp.Expr] = []
    children = []
    for i, (step, x, n) in enumerate(runs):
        mem = step.cost.memory
        assert mem is not None
        params.append(n * mem.param_count)
        trainable.append(n * mem.trainable)
        items = unique(mem.saved)
        out_saved = any(s.tensor == step.out.id for s in items)
        for s in items:
            if s.tensor == x.id:  # the first iteration's input; then the previous output
                saved.append(s)
                if not out_saved:
                    saved.append(dataclasses.replace(s, numel=s.numel * (n - 1), tensor=-1))
            elif s.tensor == step.out.id:  # each iteration's output; the last one is ours
                saved.append(dataclasses.replace(s, numel=s.numel * (n - 1), tensor=-1))
                saved.append(s)
            else:
                saved.append(dataclasses.replace(s, numel=s.numel * n, tensor=-1))
        children.append(step.cost.replace(count=n, name="block" if len(runs) == 1 else
                                          ("first", "rest")[i]))
    memory = tr.mem(sp.Add(*params), sp.Add(*trainable), saved)
    return Step(composite(layer, shape, name, tr, children, shape, memory=memory),
                runs[-1][0].out)


# ----------------------------------------------------------------------------- attention
@train_rule(MultiheadAttention)
def _mha(layer: MultiheadAttention, shape: Shape, name: str, path: str, x: Ref,
         tr: Train) -> Step:
    if layer.kv_heads != layer.num_heads or layer.skip_masked:
        raise SymflopsError("mode='train' is not derived for grouped-query attention or "
                            "skip_masked yet", layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    eval_cost = layer._cost(shape, name)  # checks the shape
    if len(shape) == 3 and not layer.batch_first:
        n, batch = shape[0], shape[1]
    else:
        n, batch = shape[-2], (shape[0] if len(shape) == 3 else sp.Integer(1))
    qkv_linear = L.Linear(layer.embed_dim, 3 * layer.embed_dim, bias=layer.bias)
    qkv = train_layer(qkv_linear, shape, "qkv", join(path, "qkv"), x, tr)
    inner = tr.inside("tensor")  # between the column- and the row-parallel linear layers
    core = _attention_core(layer, shape, batch, n, join(path, "attention"), qkv.out, inner,
                           [c for c in eval_cost.children if c.name not in ("qkv", "out_proj")])
    proj = L.Linear(layer.embed_dim, layer.embed_dim, bias=layer.bias)
    out_proj = train_layer(proj, shape, "out_proj", join(path, "out_proj"), core.out, inner)
    children = [qkv.cost, core.cost, out_proj.cost]
    cost = composite(layer, shape, name, tr, children, shape).replace(
        validity=eval_cost.validity)
    return Step(cost, out_proj.out)


def _attention_core(layer: MultiheadAttention, shape: Shape, batch: sp.Expr, n: sp.Expr,
                    path: str, qkv: Ref, tr: Train, parts: list[Cost]) -> Step:
    """``softmax(Q K^T * scale)``, dropout in training, times ``V``, op by op: the bmm
    of ``Q K^T`` keeps Q and K, the softmax its output, dropout its mask, the bmm with V
    the dropped-out probabilities and V (Q, K and V as contiguous copies of the fused
    projection's output)."""
    heads, hd, p = layer.num_heads, layer.head_dim, layer.dropout
    scores = batch * heads * n * n
    forward = list(parts)
    if p:
        drop = Cost.from_derivation("dropout", "Dropout", F.dropout_derivation(scores),
                                    spec="attention dropout")
        forward.insert(3, drop)
    fwd = Cost("forward", "Attention", spec="attention", children=forward, input_shape=shape,
               output_shape=shape)
    out_numel = batch * n * layer.embed_dim
    if not qkv.grad:
        return Step(Cost("attention", "Attention", spec="attention", children=[fwd],
                         input_shape=shape, output_shape=shape, memory=tr.mem(0, 0, ())),
                    tr.new(out_numel, False))
    grads = F.attention_core_backward_derivations(batch, heads, n, n, hd, dropout=bool(p))
    kids = [fwd, *_grad_leaves(grads, "Attention", "attention", shape)]
    width = batch * n * layer.embed_dim
    probs = tr.new(scores, True)
    saved = [tr.saved(path, "q", width), tr.saved(path, "k", width),
             tr.saved(path, "softmax output", probs)]
    dropped = probs
    if p:
        saved.append(tr.saved(path, "dropout mask", scores, "mask"))
        dropped = tr.new(scores, True)
    saved += [tr.saved(path, "probabilities", dropped), tr.saved(path, "v", width)]
    if tr.recompute == "selective":  # Korthikanti et al.: recompute the core, keep Q K V
        kids.insert(1, fwd.replace(name="recompute"))
        saved = [s for s in saved if s.what in ("q", "k", "v")]
    cost = Cost("attention", "Attention", spec="attention", children=kids, input_shape=shape,
                output_shape=shape, memory=tr.mem(0, 0, saved))
    return Step(cost, tr.new(out_numel, True))


@train_rule(TransformerBlock)
def _block(layer: TransformerBlock, shape: Shape, name: str, path: str, x: Ref,
           tr: Train) -> Step:
    children = []
    out, out_shape = x, shape
    for key, sub in layer.layers.items():
        try:
            step = _parallel_regions(sub, out_shape, key, join(path, key), out, tr)
        except SymflopsError as e:
            raise e.at(key) from None
        children.append(step.cost)
        out, out_shape = step.out, step.cost.output_shape
    cost = composite(layer, shape, name, tr, children, out_shape)
    if tr.recompute == "full":
        tr.checkpoints.append(path)
        cost = checkpointed(cost, x, path, tr)
    return Step(cost, out)


def _parallel_regions(layer: Layer, shape: Shape, name: str, path: str, x: Ref,
                      tr: Train) -> Step:
    """A residual of a transformer block: what is saved from its first linear layer's
    output to its last linear layer lies in the tensor-parallel region (Megatron's
    column- then row-parallel pair, e.g. the MLP's GELU and fc2 inputs)."""
    step = train_layer(layer, shape, name, path, x, tr)
    items = list(layer.body.layers.items()) if isinstance(layer, Residual) and \
        isinstance(layer.body, Sequential) else []
    linears = [i for i, (_, lay) in enumerate(items) if isinstance(lay, L.Linear)]
    if len(linears) < 2:
        return step
    inner = {join(path, k) for k, _ in items[linears[0] + 1:linears[-1] + 1]}
    mem = step.cost.memory
    assert mem is not None
    saved = tuple(dataclasses.replace(s, region="tensor") if s.where in inner else s
                  for s in mem.saved)
    return Step(step.cost.replace(memory=mem.replace(saved=saved)), step.out)


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


# ----------------------------------------------------------------------------- entry
def train_cost(layer: Layer, shape: Shape, name: str, *, recompute: str = "none",
               frozen: bool | Sequence[str] = False, input_grad: bool = False,
               optimizer: str = "adam", precision: Precision | None = None,
               accounting: str = "korthikanti", tensor_parallel: Any = 1,
               sequence_parallel: bool = False) -> Cost:
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
    memory = dict(precision=precision or Precision(), optimizer_name=optimizer,
                  accounting=accounting,
                  tensor_parallel=to_size(tensor_parallel, layer.spec(), "tensor_parallel"),
                  sequence_parallel=bool(sequence_parallel))
    Memory(**memory)  # checks the options now
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


TRAINER.run = train_cost
