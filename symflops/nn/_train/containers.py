"""Train rules of the containers and of attention."""

from __future__ import annotations

import dataclasses
from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.memory import Saved, unique
from symflops.nn import _layers as L
from symflops.nn._base import Layer, Shape, numel
from symflops.nn._composite import (
    MultiheadAttention,
    Repeat,
    Residual,
    Sequential,
    TransformerBlock,
)
from symflops.nn._train.core import (
    Ref,
    Step,
    Train,
    checkpointed,
    composite,
    grad_leaves,
    join,
    train_layer,
    train_rule,
)
from symflops.nn._train.lm import rotary_step

__all__ = ["chain"]


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
    first = _block_step(layer, path, shape, x, tr)
    if first.out.grad == x.grad:  # every iteration is the same
        return _repeated(layer, shape, name, tr, [(first, x, layer.n)])
    rest = _block_step(layer, path, shape, first.out, tr)
    return _repeated(layer, shape, name, tr, [(first, x, sp.Integer(1)),
                                              (rest, first.out, layer.n - 1)])


def _block_step(layer: Repeat, path: str, shape: Shape, x: Ref, tr: Train) -> Step:
    """One iteration of a Repeat's block; under ``recompute="full"`` the block is the
    checkpoint unit (Megatron's per-layer checkpointing) unless it holds checkpoints."""
    before = len(tr.checkpoints)
    step = train_layer(layer.block, shape, "block", join(path, "block"), x, tr)
    if tr.recompute != "full" or len(tr.checkpoints) > before:
        return step
    tr.checkpoints.append(join(path, "block"))
    return Step(checkpointed(step.cost, x, join(path, "block"), tr), step.out)


def _repeated(layer: Repeat, shape: Shape, name: str, tr: Train,
              runs: list[tuple[Step, Ref, sp.Expr]]) -> Step:
    """``runs``: (a block's step, its input, how many times it runs in a row). Each
    iteration's output is the next one's input: a tensor both save is counted once."""
    saved: list[Saved] = []
    params: list[sp.Expr] = []
    trainable: list[sp.Expr] = []
    factored: list[sp.Expr] = []
    children = []
    for i, (step, x, n) in enumerate(runs):
        mem = step.cost.memory
        assert mem is not None
        params.append(n * mem.param_count)
        trainable.append(n * mem.trainable)
        factored.append(n * mem.factored)
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
    memory = tr.mem(sp.Add(*params), sp.Add(*trainable), saved, sp.Add(*factored))
    return Step(composite(layer, shape, name, tr, children, shape, memory=memory),
                runs[-1][0].out)


# ----------------------------------------------------------------------------- attention
@train_rule(MultiheadAttention)
def _mha(layer: MultiheadAttention, shape: Shape, name: str, path: str, x: Ref,
         tr: Train) -> Step:
    if layer.kv_len is not None:
        raise SymflopsError("mode='train' is not derived for cross-attention (kv_len) yet",
                            layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    if layer.skip_masked:
        # (a causal mask is a select in both passes: the dense product is counted, and the
        # mask, a buffer or a constant, is not an activation)
        raise SymflopsError("mode='train' is not derived for skip_masked attention yet",
                            layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    eval_cost = layer._cost(shape, name)  # checks the shape
    if len(shape) == 3 and not layer.batch_first:
        n, batch = shape[0], shape[1]
    else:
        n, batch = shape[-2], (shape[0] if len(shape) == 3 else sp.Integer(1))
    kv_dim = layer.kv_heads * layer.head_dim
    qkv_linear = L.Linear(layer.embed_dim, layer.embed_dim + 2 * kv_dim, bias=layer.bias)
    qkv = train_layer(qkv_linear, shape, "qkv", join(path, "qkv"), x, tr)
    inner = tr.inside("tensor")  # between the column- and the row-parallel linear layers
    rotary = [] if not layer.rotary else [rotary_step(
        eval_cost["rotary"], batch * n * (layer.num_heads + layer.kv_heads), layer.head_dim,
        n, join(path, "rotary"), qkv.out, inner)]
    core = _attention_core(layer, shape, batch, n, join(path, "attention"),
                           rotary[0].out if rotary else qkv.out, inner,
                           [c for c in eval_cost.children
                            if c.name not in ("qkv", "out_proj", "rotary")])
    proj = L.Linear(layer.embed_dim, layer.embed_dim, bias=layer.bias)
    out_proj = train_layer(proj, shape, "out_proj", join(path, "out_proj"), core.out, inner)
    children = [qkv.cost, *(r.cost for r in rotary), core.cost, out_proj.cost]
    cost = composite(layer, shape, name, tr, children, shape).replace(
        validity=eval_cost.validity)
    return Step(cost, out_proj.out)


def _attention_core(layer: MultiheadAttention, shape: Shape, batch: sp.Expr, n: sp.Expr,
                    path: str, qkv: Ref, tr: Train, parts: list[Cost]) -> Step:
    """``softmax(Q K^T * scale)``, dropout in training, times ``V``, op by op: the bmm
    of ``Q K^T`` keeps Q and K, the softmax its output, dropout its mask, the bmm with V
    the dropped-out probabilities and V (Q, K and V as contiguous copies of the fused
    projection's output; with fewer key/value heads, K and V expanded to every query
    head)."""
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
    grads = F.attention_core_backward_derivations(batch, heads, n, n, hd, dropout=bool(p),
                                                  kv_heads=layer.kv_heads)
    kids = [fwd, *grad_leaves(grads, "Attention", "attention", shape)]
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
