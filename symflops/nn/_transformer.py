"""Language-model layers: gated MLPs (SwiGLU, GeGLU), rotary and learned position
embeddings, an LM head tied to the embedding, and the zero-cost reshapes.

Each is a composition of existing leaves (Linear, activations, elementwise, Embedding)
where the arithmetic is the same, so every view of a Linear (backward, memory) applies.

>>> from symflops.symbols import dim
>>> SwiGLU(dim, 4 * dim).cost(("B", "N", dim)).params
12*dim**2
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_derivation
from symflops.formulas.pointwise import elementwise_derivation
from symflops.formulas.rotary import rotary_table_derivation
from symflops.nn._base import (
    HIDDEN_F,
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    numel,
    to_size,
)
from symflops.nn._embedding import Embedding
from symflops.nn._linear import Linear
from symflops.nn._pointwise import GELU, SiLU
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    accumulate,
    composite,
    join,
    leaf_step,
    mul_step,
    train_layer,
)
from symflops.symbols import (
    B,
    N,
    V,
    dim,
    head_dim,
)

__all__ = ["GatedMLP", "SwiGLU", "GeGLU", "RotaryEmbedding", "TiedLMHead"]

#: the gate activations of :class:`GatedMLP`, by name
GATE_ACTIVATIONS: dict[str, Any] = {"silu": SiLU, "gelu": GELU,
                                    "gelu_tanh": lambda: GELU("tanh")}


class GatedMLP(Layer):
    """A gated MLP ``down(act(gate(x)) * up(x))`` on ``(..., dim)``: three matrices
    ``dim -> hidden``, ``dim -> hidden``, ``hidden -> dim`` (transformers' LlamaMLP).

    Children (transformers' names): ``gate_proj``, ``act_fn``, ``up_proj``, ``mul`` (one
    multiply per hidden element) and ``down_proj``. ``activation``: ``silu`` (SwiGLU),
    ``gelu`` or ``gelu_tanh`` (GeGLU).

    >>> GatedMLP(8, 16).cost(("B", 8)).params
    384
    """

    example = Example(
        "GatedMLP(dim, F, 'silu')", lambda: GatedMLP(dim, HIDDEN_F, "silu"), (B, N, dim),
        "down(act(gate(x)) * up(x)): three matrices, no biases")

    def __init__(self, dim: SizeLike, hidden: SizeLike, activation: str = "silu",
                 bias: bool = False) -> None:
        self.dim = to_size(dim, self.layer_type(), "dim")
        self.hidden = to_size(hidden, self.layer_type(), "hidden")
        if activation not in GATE_ACTIVATIONS:
            raise SymflopsError("unknown gate activation", layer=self.layer_type(),
                                values={"activation": activation},
                                fix="use one of " + ", ".join(GATE_ACTIVATIONS))
        self.activation, self.bias = activation, bool(bias)

    def spec(self) -> str:
        return f"{self.layer_type()}({self.dim}, {self.hidden}, {self.activation})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not shape:
            raise SymflopsError("expects an input (..., dim)", layer=self.spec(),
                                values={"input_shape": shape}, fix="pass a shape like (B, N, dim)")
        self._check_channels(shape, shape[-1], self.dim, "features")
        hidden_shape = shape[:-1] + (self.hidden,)
        children = [
            Linear(self.dim, self.hidden, self.bias)._cost(shape, "gate_proj"),
            GATE_ACTIVATIONS[self.activation]()._cost(hidden_shape, "act_fn"),
            Linear(self.dim, self.hidden, self.bias)._cost(shape, "up_proj"),
            Cost.from_derivation("mul", "Mul", elementwise_derivation(
                numel(hidden_shape), 1, "the gate times the up projection: one multiply per "
                "hidden element"), spec="mul", input_shape=hidden_shape,
                output_shape=hidden_shape),
            Linear(self.hidden, self.dim, self.bias)._cost(hidden_shape, "down_proj"),
        ]
        return Cost(name, self.layer_type(), spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                   tr: Train) -> Step:
        """``down(act(gate(x)) * up(x))``: x feeds two linears (its gradients added), the
        activation keeps its input (SiLU, GELU), the multiply both factors."""
        self._cost(shape, name)  # checks the shape
        hidden_shape = shape[:-1] + (self.hidden,)
        gate = train_layer(Linear(self.dim, self.hidden, self.bias), shape, "gate_proj",
                           join(path, "gate_proj"), x, tr)
        act = train_layer(GATE_ACTIVATIONS[self.activation](), hidden_shape, "act_fn",
                          join(path, "act_fn"), gate.out, tr)
        up = train_layer(Linear(self.dim, self.hidden, self.bias), shape, "up_proj",
                         join(path, "up_proj"), x, tr)
        mul = mul_step("mul", hidden_shape, join(path, "mul"), act.out, up.out, tr)
        down = train_layer(Linear(self.hidden, self.dim, self.bias), hidden_shape,
                           "down_proj", join(path, "down_proj"), mul.out, tr)
        children = [gate.cost, act.cost, up.cost, mul.cost, down.cost,
                    *accumulate(x, shape, "the gated MLP's input (gate and up)")]
        return Step(composite(self, shape, name, tr, children, shape), down.out)


class SwiGLU(GatedMLP):
    """:class:`GatedMLP` with SiLU (LLaMA, Mistral; Shazeer 2020).

    >>> SwiGLU(8, 16).cost(("B", 8)).macs
    384*B
    """

    example = Example(
        "SwiGLU(dim, F)", lambda: SwiGLU(dim, HIDDEN_F), (B, N, dim), "GatedMLP with SiLU (LLaMA)")

    def __init__(self, dim: SizeLike, hidden: SizeLike, bias: bool = False) -> None:
        super().__init__(dim, hidden, "silu", bias)


class GeGLU(GatedMLP):
    """:class:`GatedMLP` with GELU (``approximate="tanh"``: ``gelu_tanh``, as Gemma).

    >>> GeGLU(8, 16).cost(("B", 8)).work["activation"]
    80*B
    """

    example = Example(
        "GeGLU(dim, F)", lambda: GeGLU(dim, HIDDEN_F), (B, N, dim), "GatedMLP with GELU")

    def __init__(self, dim: SizeLike, hidden: SizeLike, bias: bool = False,
                 approximate: str = "none") -> None:
        super().__init__(dim, hidden, "gelu" if approximate == "none" else "gelu_tanh", bias)


class RotaryEmbedding(Layer):
    """The cos/sin table of rotary embeddings (transformers' ``LlamaRotaryEmbedding``)
    for the ``N`` positions of a ``(B, N, ...)`` input, which it passes through
    unchanged: ``9 head_dim / 2`` per position, once per forward
    (:mod:`symflops.formulas.rotary`). The rotation itself is
    ``MultiheadAttention(..., rotary=True)``.

    >>> RotaryEmbedding(64).cost(("B", "N", 512)).flops
    288*N
    """

    example = Example(
        "RotaryEmbedding(head_dim)", lambda: RotaryEmbedding(head_dim), (B, N, dim),
        "the cos/sin table for N positions, once per forward; the rotation is "
        "MultiheadAttention(..., rotary=True), 7/2 per rotated element")

    def __init__(self, head_dim: SizeLike) -> None:
        self.head_dim = to_size(head_dim, "RotaryEmbedding", "head_dim")
        if self.head_dim.is_number and self.head_dim % 2:
            raise SymflopsError("head_dim must be even (pairs are rotated)",
                                layer="RotaryEmbedding", values={"head_dim": head_dim},
                                fix="use an even head_dim")

    def spec(self) -> str:
        return f"RotaryEmbedding({self.head_dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (2, 3), "(B, N) or (B, N, dim)")
        return self._leaf(name, shape, shape, rotary_table_derivation(shape[1], self.head_dim),
                          validity=divides_condition(sp.Integer(2), sp.sympify(self.head_dim)))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                      tr: Train) -> Step:
        """The cos/sin table (``LlamaRotaryEmbedding`` runs under ``torch.no_grad``): its
        forward only; the input passes through."""
        return Step(self._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


class TiedLMHead(Layer):
    """An LM head ``(..., dim) -> (..., V)`` whose weight is the embedding's (GPT-2's
    ``lm_head``): a bias-free Linear's work, and no parameters of its own (the
    embedding counts them once).

    >>> emb = Embedding(100, 8)
    >>> TiedLMHead(emb).cost(("B", 8)).params, TiedLMHead(emb).cost(("B", 8)).macs
    (0, 800*B)
    """

    example = Example(
        "TiedLMHead(Embedding(V, dim))", lambda: TiedLMHead(Embedding(V, dim)), (B, N, dim),
        "a bias-free Linear sharing the embedding's weight: no parameters")

    def __init__(self, embedding: Embedding) -> None:
        if not isinstance(embedding, Embedding):
            raise SymflopsError("a tied head shares an sf.nn.Embedding's weight",
                                layer="TiedLMHead", values={"embedding": type(embedding).__name__},
                                fix="pass the model's sf.nn.Embedding")
        self.embedding = embedding

    def spec(self) -> str:
        return f"TiedLMHead({self.embedding.spec()})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        dim, vocab = self.embedding.embedding_dim, self.embedding.num_embeddings
        if not shape:
            raise SymflopsError("expects an input (..., dim)", layer=self.spec(),
                                values={"input_shape": shape}, fix="pass a shape like (B, N, dim)")
        self._check_channels(shape, shape[-1], dim, "features")
        linear = linear_derivation(numel(shape[:-1]), dim, vocab, bias=False)
        tied = Derivation(linear.general, 0, linear.bindings,
                          linear.explanation + "; the weight is the embedding's (its "
                          "parameters are counted there)", linear.rates)
        return self._leaf(name, shape, shape[:-1] + (vocab,), tied)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                   tr: Train) -> Step:
        """A bias-free linear on the embedding's weight: ``grad_input`` and ``grad_weight``
        as a Linear's, and the weight's two gradients (the head's, the embedding's) added
        once (``V dim``). Parameters, optimizer state and gradients are the embedding's.
        Freezing the tied weight freezes both paths (``frozen=["wte", "lm_head"]``)."""
        fwd = self._cost(shape, name)
        emb = self.embedding
        trainable = not tr.is_frozen(path)
        rows, dim, vocab = numel(shape[:-1]), emb.embedding_dim, emb.num_embeddings
        grads = F.linear.linear_grad_derivations(rows, dim, vocab, False, input_grad=x.grad,
                                              weight_grad=trainable)
        if trainable:
            grads["grad_accumulate"] = F.pointwise.elementwise_derivation(
                vocab * dim, 1, "the tied weight's two gradients (head and embedding) added")
        saved = [tr.saved(path, "input", x)] if trainable else []
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                         out=tr.new(numel(fwd.output_shape), x.grad or trainable),
                         trainable=trainable, weights=[])
