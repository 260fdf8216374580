"""Attention and the containers that compose layers into networks (Sequential,
Residual, Repeat, MLP, TransformerBlock).

>>> from symflops.symbols import L
>>> Repeat(Linear(8, 8), L).cost(("B", 8)).params
72*L
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas import (
    attention_derivations,
    elementwise_derivation,
    exact_div,
    rotary_derivation,
)
from symflops.nn._base import (
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    numel,
    same_size,
    to_size,
)
from symflops.nn._layers import (
    GELU,
    Dropout,
    LayerNorm,
    Linear,
    ReLU,
    RMSNorm,
    SiLU,
    dropout_probability,
)

__all__ = ["MultiheadAttention", "Sequential", "MLP", "Residual", "Repeat", "TransformerBlock"]


class MultiheadAttention(Layer):
    """Multi-head self-attention on ``(B, N, dim)`` (``batch_first``) or ``(N, dim)``.

    Children: ``qkv`` (one fused projection, the same count as three), ``scores``
    (``Q K^T``), ``scale``, ``softmax``, ``context`` (``A V``) and ``out_proj``.
    ``kv_heads`` < ``heads`` gives grouped-query attention (smaller K/V projections);
    ``causal=True`` masks, and ``skip_masked=True`` counts only the unmasked half, as
    kernels that skip masked blocks do (the default counts the dense product, as torch
    computes and counts it). ``rotary=True`` rotates queries and keys (RoPE, a ``rotary``
    child after ``qkv``: 7/2 per element, :mod:`symflops.formulas.rotary`).
    ``kv_len=S`` makes it cross-attention: queries from the ``N`` tokens of the input,
    keys and values projected from ``S`` encoder tokens of width ``embed_dim``
    (children ``q_proj`` and ``kv_proj`` instead of ``qkv``).

    >>> from symflops.symbols import S
    >>> MultiheadAttention(8, 2, kv_len=S).cost(("B", "N", 8)).macs
    16*B*N*S + 128*B*N + 128*B*S
    """

    def __init__(self, embed_dim: SizeLike, num_heads: SizeLike, dropout: float = 0.0,
                 bias: bool = True, *, kv_heads: SizeLike | None = None, causal: bool = False,
                 skip_masked: bool = False, batch_first: bool = True, rotary: bool = False,
                 kv_len: SizeLike | None = None) -> None:
        self.embed_dim = to_size(embed_dim, "MultiheadAttention", "embed_dim")
        self.num_heads = to_size(num_heads, "MultiheadAttention", "num_heads")
        self.kv_heads = self.num_heads if kv_heads is None else \
            to_size(kv_heads, "MultiheadAttention", "kv_heads")
        self.bias, self.causal, self.skip_masked = bool(bias), bool(causal), bool(skip_masked)
        self.batch_first, self.rotary = bool(batch_first), bool(rotary)
        self.kv_len = None if kv_len is None else to_size(kv_len, "MultiheadAttention", "kv_len")
        if self.kv_len is not None and self.causal:
            raise SymflopsError("cross-attention (kv_len) is not causal",
                                layer="MultiheadAttention", values={"kv_len": kv_len},
                                fix="drop causal=True, or drop kv_len for self-attention")
        self.dropout = dropout_probability(dropout, "MultiheadAttention")  # on the attention
        # probabilities, in training
        if self.embed_dim.is_number and self.num_heads.is_number and \
                self.embed_dim % self.num_heads != 0:
            raise SymflopsError("num_heads must divide embed_dim", layer="MultiheadAttention",
                                values={"embed_dim": embed_dim, "num_heads": num_heads},
                                fix="choose num_heads among the divisors of embed_dim")
        if self.kv_heads.is_number and self.num_heads.is_number and \
                self.num_heads % self.kv_heads != 0:
            raise SymflopsError("kv_heads must divide num_heads", layer="MultiheadAttention",
                                values={"num_heads": num_heads, "kv_heads": kv_heads},
                                fix="choose kv_heads among the divisors of num_heads")
        if self.skip_masked and not self.causal:
            raise SymflopsError("skip_masked only applies to causal attention",
                                layer="MultiheadAttention", values={"causal": causal},
                                fix="pass causal=True")
        self.head_dim = exact_div(self.embed_dim, self.num_heads)
        if self.rotary and sp.sympify(self.head_dim).is_number and self.head_dim % 2:
            raise SymflopsError("rotary embeddings rotate pairs: the head width must be even",
                                layer="MultiheadAttention",
                                values={"embed_dim": embed_dim, "num_heads": num_heads},
                                fix="choose sizes whose embed_dim / num_heads is even")

    def spec(self) -> str:
        parts = [str(self.embed_dim), str(self.num_heads)]
        if self.kv_heads != self.num_heads:
            parts.append(f"kv_heads={self.kv_heads}")
        if not self.bias:
            parts.append("bias=False")
        if self.causal:
            parts.append("causal=True")
        if self.skip_masked:
            parts.append("skip_masked=True")
        if self.rotary:
            parts.append("rotary=True")
        if self.kv_len is not None:
            parts.append(f"kv_len={self.kv_len}")
        return f"MultiheadAttention({', '.join(parts)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (2, 3), "(B, N, dim) or (N, dim)")
        self._check_channels(shape, shape[-1], self.embed_dim, "features")
        if len(shape) == 3 and not self.batch_first:
            n, batch = shape[0], shape[1]
        else:
            n = shape[-2]
            batch = shape[0] if len(shape) == 3 else sp.Integer(1)
        kv_dim = self.kv_heads * self.head_dim
        s = n if self.kv_len is None else self.kv_len
        if self.kv_len is None:
            qkv = Linear(self.embed_dim, self.embed_dim + 2 * kv_dim, bias=self.bias)
            children = [qkv._cost(shape, "qkv")]
        else:
            kv_shape = shape[:-2] + (s, self.embed_dim)
            children = [Linear(self.embed_dim, self.embed_dim, bias=self.bias)._cost(
                            shape, "q_proj"),
                        Linear(self.embed_dim, 2 * kv_dim, bias=self.bias)._cost(
                            kv_shape, "kv_proj")]
        if self.rotary:
            vectors = batch * (n * self.num_heads + s * self.kv_heads)
            children.append(Cost.from_derivation(
                "rotary", "Rotary", rotary_derivation(vectors, self.head_dim),
                spec=f"rotary({self.head_dim})", input_shape=shape, output_shape=shape))
        heads_shape = (batch, self.num_heads, n)
        parts = attention_derivations(batch, self.num_heads, n, s, self.head_dim,
                                      causal=self.causal, skip_masked=self.skip_masked)
        for part, d in parts.items():
            out = heads_shape + ((s,) if part != "context" else (self.head_dim,))
            children.append(Cost.from_derivation(
                part, "Attention" + part.capitalize(), d, spec=f"attention.{part}",
                input_shape=shape, output_shape=out))
        children.append(Linear(self.embed_dim, self.embed_dim, bias=self.bias)
                        ._cost(shape, "out_proj"))
        return Cost(name, "MultiheadAttention", spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape,
                    validity=divides_condition(self.num_heads, self.embed_dim)
                    + divides_condition(self.kv_heads, self.num_heads)
                    + (divides_condition(sp.Integer(2), sp.sympify(self.head_dim))
                       if self.rotary else []))


# ----------------------------------------------------------------------------- containers
def check_layer(layer: object, container: str, what: str) -> Layer:
    """``layer`` when it is an ``sf.nn`` layer; a torch module or anything else is refused."""
    if not isinstance(layer, Layer):
        raise SymflopsError(f"{container} takes symflops layers", layer=container,
                            values={what: type(layer).__name__},
                            fix="use sf.nn layers, or sf.trace for torch modules")
    return layer


class Sequential(Layer):
    """``torch.nn.Sequential``: layers applied in order, children named ``0, 1, ...``
    or by the keys of a dict.

    >>> from symflops.nn import Conv2d, ReLU
    >>> net = Sequential(Conv2d(3, 8, 3), ReLU())
    >>> [c.name for c in net.cost(("B", 3, "H", "W")).children]
    ['0', '1']
    """

    def __init__(self, *layers: Layer | Mapping[str, Layer]) -> None:
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            items = list(layers[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(layers)]  # type: ignore[misc]
        for key, layer in items:
            check_layer(layer, "Sequential", key)
        self.layers: OrderedDict[str, Layer] = OrderedDict(items)

    def spec(self) -> str:
        return f"Sequential({len(self.layers)} layers)"

    def _children(self, shape: Shape) -> tuple[list[Cost], Shape]:
        children = []
        for key, layer in self.layers.items():
            try:
                c = layer._cost(shape, key)
            except SymflopsError as e:
                raise e.at(key) from None
            children.append(c)
            shape = c.output_shape
        return children, shape

    def _cost(self, shape: Shape, name: str) -> Cost:
        children, out = self._children(shape)
        return Cost(name, self.layer_type(), spec=self.spec(), children=children,
                    input_shape=shape, output_shape=out)


class MLP(Sequential):
    """Two linear layers with an activation: ``fc1 -> act -> fc2`` (as in transformers)."""

    def __init__(self, in_features: SizeLike, hidden_features: SizeLike,
                 out_features: SizeLike | None = None, activation: str = "gelu",
                 bias: bool = True) -> None:
        acts: dict[str, type[Layer]] = {"gelu": GELU, "relu": ReLU, "silu": SiLU}
        if activation not in acts:
            raise SymflopsError("unknown MLP activation", layer="MLP",
                                values={"activation": activation}, fix="use gelu, relu or silu")
        out = in_features if out_features is None else out_features
        super().__init__({"fc1": Linear(in_features, hidden_features, bias),
                          "act": acts[activation](),
                          "fc2": Linear(hidden_features, out, bias)})
        self.activation = activation

    def spec(self) -> str:
        fc1 = self.layers["fc1"]
        assert isinstance(fc1, Linear)
        return f"MLP({fc1.in_features}, {fc1.out_features}, {self.activation})"


class Residual(Layer):
    """``body(x) + shortcut(x)``: the body's cost, the shortcut's (Identity by default)
    and one add per output element.

    A Sequential body's children appear directly under the Residual, then
    ``shortcut`` (if any) and ``add``.
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None) -> None:
        check_layer(body, "Residual", "body")
        if shortcut is not None:
            check_layer(shortcut, "Residual", "shortcut")
        self.body, self.shortcut = body, shortcut

    def spec(self) -> str:
        return f"Residual({self.body.spec()})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if isinstance(self.body, Sequential):
            children, out = self.body._children(shape)
        else:
            body = self.body._cost(shape, "body")
            children, out = [body], body.output_shape
        skip_out = shape
        if self.shortcut is not None:
            try:
                sc = self.shortcut._cost(shape, "shortcut")
            except SymflopsError as e:
                raise e.at("shortcut") from None
            children.append(sc)
            skip_out = sc.output_shape
        if len(out) != len(skip_out) or not all(
                same_size(a, b) for a, b in zip(out, skip_out, strict=True)):
            raise SymflopsError("body and shortcut give different shapes", layer=self.spec(),
                                values={"body": out, "shortcut": skip_out},
                                fix="add a shortcut layer that matches the body's output")
        children.append(Cost.from_derivation("add", "Add", elementwise_derivation(numel(out)),
                                             spec="add", input_shape=out, output_shape=out))
        return Cost(name, "Residual", spec=self.spec(), children=children, input_shape=shape,
                    output_shape=out)


class Repeat(Layer):
    """``block`` applied ``n`` times; ``n`` may be a symbol (``L`` layers).

    The block is costed once and multiplied, so a symbolic depth costs what one block
    costs. The block must keep its input shape.

    >>> from symflops.symbols import L
    >>> Repeat(Linear(8, 8), L).cost(("B", 8)).params
    72*L
    """

    def __init__(self, block: Layer, n: SizeLike) -> None:
        self.block = check_layer(block, "Repeat", "block")
        self.n = to_size(n, "Repeat", "n")

    def spec(self) -> str:
        return f"Repeat({self.block.spec()}, {self.n})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        try:
            inner = self.block._cost(shape, "block")
        except SymflopsError as e:
            raise e.at("block") from None
        if len(inner.output_shape) != len(shape) or not all(
                same_size(a, b) for a, b in zip(inner.output_shape, shape, strict=True)):
            raise SymflopsError("a repeated block must keep its input shape", layer=self.spec(),
                                values={"input": shape, "output": inner.output_shape},
                                fix="repeat a shape-preserving block, or list the layers in a "
                                    "Sequential")
        return Cost(name, "Repeat", spec=self.spec(), children=[inner.replace(count=self.n)],
                    input_shape=shape,
                    output_shape=shape)


class TransformerBlock(Sequential):
    """The standard pre-norm transformer block on ``(B, N, dim)``.

    ``x + MHA(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))`` with an MLP
    ``dim -> mlp_ratio*dim -> dim`` (GELU, biases). Children: ``attention``
    (``norm``, ``mha``, ``add``) and ``mlp`` (``norm``, ``fc1``, ``act``, ``fc2``, ``add``).
    ``dropout > 0`` (as in GPT and Megatron-LM): dropout on the attention probabilities and
    a ``drop`` after ``mha`` and after ``fc2`` (free at inference, counted in training).
    """

    def __init__(self, dim: SizeLike, heads: SizeLike, mlp_ratio: SizeLike = 4, *,
                 kv_heads: SizeLike | None = None, causal: bool = False,
                 skip_masked: bool = False, activation: str = "gelu", norm: str = "layernorm",
                 bias: bool = True, dropout: float = 0.0) -> None:
        d = to_size(dim, "TransformerBlock", "dim")
        ratio = to_size(mlp_ratio, "TransformerBlock", "mlp_ratio")
        norms: dict[str, type[LayerNorm] | type[RMSNorm]] = {"layernorm": LayerNorm,
                                                             "rmsnorm": RMSNorm}
        if norm not in norms:
            raise SymflopsError("unknown norm", layer="TransformerBlock", values={"norm": norm},
                                fix="use layernorm or rmsnorm")
        p = dropout_probability(dropout, "TransformerBlock")
        mha = MultiheadAttention(d, heads, p, bias=bias, kv_heads=kv_heads, causal=causal,
                                 skip_masked=skip_masked)
        mlp = MLP(d, ratio * d, d, activation=activation, bias=bias)
        drop = {"drop": Dropout(p)} if p else {}
        super().__init__({
            "attention": Residual(Sequential({"norm": norms[norm](d), "mha": mha, **drop})),
            "mlp": Residual(Sequential({"norm": norms[norm](d), **mlp.layers, **drop})),
        })
        self.dropout = p
        self.dim, self.heads, self.mlp_ratio = d, mha.num_heads, ratio
        self.mha = mha

    def spec(self) -> str:
        extra = "" if self.mha.kv_heads == self.mha.num_heads else \
            f", kv_heads={self.mha.kv_heads}"
        extra += ", causal=True" if self.mha.causal else ""
        extra += f", dropout={self.dropout}" if self.dropout else ""
        return f"TransformerBlock({self.dim}, {self.heads}, mlp_ratio={self.mlp_ratio}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return super()._cost(shape, name).replace(layer="TransformerBlock", spec=self.spec())
