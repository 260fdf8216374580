"""Train rules of the language-model layers (:mod:`symflops.nn._transformer`): each
follows what torch's autograd runs for transformers' modules.

>>> from symflops.symbols import B, N
>>> from symflops.nn import Embedding, Sequential, PositionEmbedding
>>> net = Sequential({"wte": Embedding(10, 4), "wpe": PositionEmbedding(8, 4)})
>>> net.cost((B, N), mode="train")["wpe"].work["elementwise"]    # add, batch sum, scatter
4*B*N + 4*N*(B - 1) + 4*N
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.formulas.derivation import Derivation
from symflops.memory import Saved
from symflops.nn import _layers as L
from symflops.nn import _transformer as T
from symflops.nn._base import Shape, numel
from symflops.nn._train.core import (
    Ref,
    Step,
    Train,
    composite,
    grad_leaves,
    join,
    leaf_step,
    no_grad,
    train_layer,
    train_rule,
)

__all__ = ["mul_step", "op_step", "accumulate", "rotary_step"]


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
    fwd = F.elementwise_derivation(n, 1, "one multiply per element")
    grads: dict[str, Derivation] = {}
    saved = []
    if a.grad:
        grads["grad_a"] = F.elementwise_derivation(n, 1, "grad_a = grad * b")
        saved.append(tr.saved(path, "other", b))
    if b.grad:
        grads["grad_b"] = F.elementwise_derivation(n, 1, "grad_b = grad * a")
        saved.append(tr.saved(path, "self", a))
    return op_step(name, "Mul", shape, shape, tr, fwd, grads, saved,
                   tr.new(n, a.grad or b.grad))


def accumulate(x: Ref, shape: Shape, what: str) -> list[Cost]:
    """The add of a tensor's two gradients (it feeds two ops), when it needs one."""
    if not x.grad:
        return []
    return [Cost.from_derivation("grad_accumulate", "AddBackward",
                                 F.grad_accumulation_derivation(x.numel),
                                 spec=f"gradient accumulation at {what}", input_shape=shape,
                                 output_shape=shape, validity=())]


@train_rule(T.PositionEmbedding)
def _position(layer: T.PositionEmbedding, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    """``x + wpe(arange(N))``: the ``(1, N, dim)`` positions broadcast over the batch, so
    their gradient is the output gradient summed over it (``(B - 1) N dim`` adds); then
    ``embedding_dense_backward`` adds it into the N rows (``N dim``), from the position
    ids it keeps. The token side's gradient is the output gradient itself (no op)."""
    fwd = layer._cost(shape, name)
    trainable = layer.learned and not tr.is_frozen(path)
    if not (x.grad or trainable):
        return no_grad(layer, shape, name, tr, fwd)
    n, dim = shape[1], layer.dim
    grads: dict[str, Derivation] = {}
    saved = []
    if trainable:
        grads["grad_position"] = F.reduction_derivation("sum", numel(shape), n * dim)
        grads["grad_weight"] = F.embedding_backward_derivation(n, dim)
        saved.append(tr.saved(path, "position ids", n, "index"))
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved,
                     out=tr.new(x.numel, True), trainable=trainable,
                     weights=[(layer.context, dim)])


@train_rule(T.TiedLMHead)
def _tied_head(layer: T.TiedLMHead, shape: Shape, name: str, path: str, x: Ref,
               tr: Train) -> Step:
    """A bias-free linear on the embedding's weight: ``grad_input`` and ``grad_weight``
    as a Linear's, and the weight's two gradients (the head's, the embedding's) added
    once (``V dim``). Parameters, optimizer state and gradients are the embedding's.
    Freezing the tied weight freezes both paths (``frozen=["wte", "lm_head"]``)."""
    fwd = layer._cost(shape, name)
    emb = layer.embedding
    trainable = not tr.is_frozen(path)
    rows, dim, vocab = numel(shape[:-1]), emb.embedding_dim, emb.num_embeddings
    grads = F.linear_backward_derivations(rows, dim, vocab, False, input_grad=x.grad,
                                          weight_grad=trainable)
    if trainable:
        grads["grad_accumulate"] = F.elementwise_derivation(
            vocab * dim, 1, "the tied weight's two gradients (head and embedding) added")
    saved = [tr.saved(path, "input", x)] if trainable else []
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved,
                     out=tr.new(numel(fwd.output_shape), x.grad or trainable),
                     trainable=trainable, weights=[])


@train_rule(T.RotaryEmbedding)
def _rotary_table(layer: T.RotaryEmbedding, shape: Shape, name: str, path: str, x: Ref,
                  tr: Train) -> Step:
    """The cos/sin table (``LlamaRotaryEmbedding`` runs under ``torch.no_grad``): its
    forward only; the input passes through."""
    return Step(layer._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


@train_rule(T.GatedMLP)
def _gated_mlp(layer: T.GatedMLP, shape: Shape, name: str, path: str, x: Ref,
               tr: Train) -> Step:
    """``down(act(gate(x)) * up(x))``: x feeds two linears (its gradients added), the
    activation keeps its input (SiLU, GELU), the multiply both factors."""
    layer._cost(shape, name)  # checks the shape
    hidden_shape = shape[:-1] + (layer.hidden,)
    gate = train_layer(L.Linear(layer.dim, layer.hidden, layer.bias), shape, "gate_proj",
                       join(path, "gate_proj"), x, tr)
    act = train_layer(T.GATE_ACTIVATIONS[layer.activation](), hidden_shape, "act_fn",
                      join(path, "act_fn"), gate.out, tr)
    up = train_layer(L.Linear(layer.dim, layer.hidden, layer.bias), shape, "up_proj",
                     join(path, "up_proj"), x, tr)
    mul = mul_step("mul", hidden_shape, join(path, "mul"), act.out, up.out, tr)
    down = train_layer(L.Linear(layer.hidden, layer.dim, layer.bias), hidden_shape,
                       "down_proj", join(path, "down_proj"), mul.out, tr)
    children = [gate.cost, act.cost, up.cost, mul.cost, down.cost,
                *accumulate(x, shape, "the gated MLP's input (gate and up)")]
    return Step(composite(layer, shape, name, tr, children, shape), down.out)



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
    grads = {"grad_input": F.elementwise_derivation(
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
