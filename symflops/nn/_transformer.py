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

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas import (
    elementwise_derivation,
    linear_derivation,
    position_embedding_derivation,
    rotary_table_derivation,
)
from symflops.formulas.derivation import Derivation
from symflops.nn._base import Layer, Shape, SizeLike, divides_condition, numel, to_size
from symflops.nn._layers import GELU, Embedding, Linear, SiLU

__all__ = ["GatedMLP", "SwiGLU", "GeGLU", "RotaryEmbedding", "PositionEmbedding",
           "TiedLMHead"]

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


class SwiGLU(GatedMLP):
    """:class:`GatedMLP` with SiLU (LLaMA, Mistral; Shazeer 2020).

    >>> SwiGLU(8, 16).cost(("B", 8)).macs
    384*B
    """

    def __init__(self, dim: SizeLike, hidden: SizeLike, bias: bool = False) -> None:
        super().__init__(dim, hidden, "silu", bias)


class GeGLU(GatedMLP):
    """:class:`GatedMLP` with GELU (``approximate="tanh"``: ``gelu_tanh``, as Gemma).

    >>> GeGLU(8, 16).cost(("B", 8)).work["activation"]
    80*B
    """

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


class PositionEmbedding(Layer):
    """Absolute positions added to ``(B, N, dim)`` token embeddings: a ``context x dim``
    table looked up for the ``N <= context`` positions, and one add per element.
    Children ``table``, ``add``. ``learned=True`` (GPT-2's ``wpe``): the table is
    ``context * dim`` parameters; ``learned=False`` (the sinusoids of Vaswani et al.
    2017, computed once into a buffer): no parameters, the same add.

    >>> from symflops.symbols import N, dim
    >>> c = PositionEmbedding(1024, dim).cost(("B", N, dim))
    >>> c.params, c.flops, c.validity
    (1024*dim, B*N*dim, (N <= 1024,))
    >>> PositionEmbedding(1024, dim, learned=False).cost(("B", N, dim)).params
    0
    """

    def __init__(self, context: SizeLike, dim: SizeLike, learned: bool = True) -> None:
        self.context = to_size(context, "PositionEmbedding", "context")
        self.dim = to_size(dim, "PositionEmbedding", "dim")
        self.learned = bool(learned)

    def spec(self) -> str:
        fixed = "" if self.learned else ", learned=False"
        return f"PositionEmbedding({self.context}, {self.dim}{fixed})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (3,), "(B, N, dim)")
        self._check_channels(shape, shape[-1], self.dim, "features")
        n = shape[1]
        fits = sp.Le(n, self.context)
        if fits is sp.false:
            raise SymflopsError("the sequence is longer than the position table",
                                layer=self.spec(), values={"N": n, "context": self.context},
                                fix=f"use at most {self.context} tokens or a larger context")
        table = Embedding(self.context, self.dim)._cost((n,), "table")
        if not self.learned:  # a buffer: the lookup without parameters
            table = table.replace(params=0, layer="PositionBuffer", derivation=Derivation(
                {}, 0, {}, "a lookup in a fixed (sinusoidal) buffer: no arithmetic"))
        add = Cost.from_derivation("add", "Add", position_embedding_derivation(*shape),
                                   spec="add", input_shape=shape, output_shape=shape)
        return Cost(name, "PositionEmbedding", spec=self.spec(), children=[table, add],
                    input_shape=shape, output_shape=shape,
                    validity=[] if fits is sp.true else [fits])


class TiedLMHead(Layer):
    """An LM head ``(..., dim) -> (..., V)`` whose weight is the embedding's (GPT-2's
    ``lm_head``): a bias-free Linear's work, and no parameters of its own (the
    embedding counts them once).

    >>> emb = Embedding(100, 8)
    >>> TiedLMHead(emb).cost(("B", 8)).params, TiedLMHead(emb).cost(("B", 8)).macs
    (0, 800*B)
    """

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
