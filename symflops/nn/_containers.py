"""The containers that compose layers into networks (Sequential, Residual, Repeat, MLP,
TransformerBlock).

>>> from symflops.symbols import L
>>> Repeat(Linear(8, 8), L).cost(("B", 8)).params
72*L
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.pointwise import elementwise_derivation
from symflops.memory import Saved, unique
from symflops.nn._attention import MultiheadAttention
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    SizeLike,
    numel,
    same_size,
    to_size,
)
from symflops.nn._linear import Linear
from symflops.nn._norm import LayerNorm, RMSNorm
from symflops.nn._pointwise import GELU, Dropout, ReLU, SiLU, dropout_probability
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    chain,
    checkpointed,
    composite,
    join,
    train_layer,
)
from symflops.symbols import (
    B,
    I,
    L,
    M,
    N,
    O,
    dim,
    heads,
    mlp_ratio,
)

__all__ = ["Sequential", "MLP", "Residual", "Repeat", "TransformerBlock", "check_layer"]


# ----------------------------------------------------------------------------- containers
def check_layer(layer: object, container: str, what: str) -> Layer:
    """``layer`` when it is an ``sf.nn`` layer; a torch module or anything else is refused."""
    if not isinstance(layer, Layer):
        raise SymflopsError(f"{container} takes symflops layers", layer=container,
                            values={what: type(layer).__name__},
                            fix="use sf.nn layers, or sf.trace for torch modules")
    return layer


class _Chain(Layer):
    """Layers applied in order: the base of Sequential, MLP and TransformerBlock."""

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        children, shape_out, out = chain(self.layers.items(), shape, path, x, tr)
        return Step(composite(self, shape, name, tr, children, shape_out), out)


class TransformerBlock(_Chain):
    """The standard pre-norm transformer block on ``(B, N, dim)``.

    ``x + MHA(LayerNorm(x))``, then ``x + MLP(LayerNorm(x))`` with an MLP
    ``dim -> mlp_ratio*dim -> dim`` (GELU, biases). Children: ``attention``
    (``norm``, ``mha``, ``add``) and ``mlp`` (``norm``, ``fc1``, ``act``, ``fc2``, ``add``).
    ``dropout > 0`` (as in GPT and Megatron-LM): dropout on the attention probabilities and
    a ``drop`` after ``mha`` and after ``fc2`` (free at inference, counted in training).
    """

    example = Example(
        "TransformerBlock(dim, heads, mlp_ratio)", lambda: TransformerBlock(dim, heads, mlp_ratio),
        (B, N, dim), "pre-norm: x + MHA(LayerNorm(x)), then x + MLP(LayerNorm(x))")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
               tr: Train) -> Step:
        children = []
        out, out_shape = x, shape
        for key, sub in self.layers.items():
            try:
                step = _parallel_regions(sub, out_shape, key, join(path, key), out, tr)
            except SymflopsError as e:
                raise e.at(key) from None
            children.append(step.cost)
            out, out_shape = step.out, step.cost.output_shape
        cost = composite(self, shape, name, tr, children, out_shape)
        if tr.recompute == "full":
            tr.checkpoints.append(path)
            cost = checkpointed(cost, x, path, tr)
        return Step(cost, out)


class MLP(_Chain):
    """Two linear layers with an activation: ``fc1 -> act -> fc2`` (as in transformers)."""

    example = Example("MLP(dim, mlp_ratio*dim)", lambda: MLP(dim, mlp_ratio * dim), (B, N, dim))

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


class Sequential(_Chain):
    """``torch.nn.Sequential``: layers applied in order, children named ``0, 1, ...``
    or by the keys of a dict.

    >>> from symflops.nn import Conv2d, ReLU
    >>> net = Sequential(Conv2d(3, 8, 3), ReLU())
    >>> [c.name for c in net.cost(("B", 3, "H", "W")).children]
    ['0', '1']
    """

    example = Example(
        "Sequential(Linear(I, O), ReLU())", lambda: Sequential(Linear(I, O), ReLU()), (M, I),
        "a container: the sum of its children")


class Residual(Layer):
    """``body(x) + shortcut(x)``: the body's cost, the shortcut's (Identity by default)
    and one add per output element.

    A Sequential body's children appear directly under the Residual, then
    ``shortcut`` (if any) and ``add``.
    """

    example = Example(
        "Residual(Linear(dim, dim))", lambda: Residual(Linear(dim, dim)), (M, dim),
        "body + shortcut (Identity by default) + one add per output element")

    def __init__(self, body: Layer, shortcut: Layer | None = None) -> None:
        check_layer(body, "Residual", "body")
        if shortcut is not None:
            check_layer(shortcut, "Residual", "shortcut")
        self.body, self.shortcut = body, shortcut

    def spec(self) -> str:
        return f"Residual({self.body.spec()})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if isinstance(self.body, _Chain):
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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                  tr: Train) -> Step:
        eval_cost = self._cost(shape, name)  # checks the shapes
        items = self.body.layers.items() if isinstance(self.body, _Chain) else \
            [("body", self.body)]
        children, out_shape, body_out = chain(items, shape, path, x, tr)
        grad = body_out.grad
        if self.shortcut is not None:
            sc, _, sc_out = chain([("shortcut", self.shortcut)], shape, path, x, tr)
            children += sc
            grad = grad or sc_out.grad
        add = eval_cost.children[-1]
        children.append(add.replace(memory=tr.mem(0, 0, ())))
        if x.grad:  # x feeds the body and the shortcut: autograd adds its two gradients
            children.append(Cost.from_derivation(
                "grad_accumulate", "AddBackward", F.pointwise.grad_accumulation_derivation(x.numel),
                spec="gradient accumulation at the residual's input", input_shape=shape,
                output_shape=shape, validity=()))
        return Step(composite(self, shape, name, tr, children, out_shape),
                    tr.new(numel(out_shape), grad))


class Repeat(Layer):
    """``block`` applied ``n`` times; ``n`` may be a symbol (``L`` layers).

    The block is costed once and multiplied, so a symbolic depth costs what one block
    costs. The block must keep its input shape.

    >>> from symflops.symbols import L
    >>> Repeat(Linear(8, 8), L).cost(("B", 8)).params
    72*L
    """

    example = Example(
        "Repeat(Linear(dim, dim), L)", lambda: Repeat(Linear(dim, dim), L), (M, dim),
        "the block costed once, times L (L may be a symbol)")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        self._cost(shape, name)  # checks the block keeps its shape
        first = _block_step(self, path, shape, x, tr)
        if first.out.grad == x.grad:  # every iteration is the same
            return _repeated(self, shape, name, tr, [(first, x, self.n)])
        rest = _block_step(self, path, shape, first.out, tr)
        return _repeated(self, shape, name, tr, [(first, x, sp.Integer(1)),
                                                  (rest, first.out, self.n - 1)])


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
    sharded: list[Any] = []
    children = []
    for i, (step, x, n) in enumerate(runs):
        mem = step.cost.memory
        assert mem is not None
        params.append(n * mem.param_count)
        trainable.append(n * mem.trainable)
        factored.append(n * mem.factored)
        sharded.append(None if mem.sharded is None or mem.sharded_trainable is None else
                       (n * mem.sharded, n * mem.sharded_trainable))
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
    split = None if None in sharded else (sp.Add(*(a for a, _ in sharded)),
                                           sp.Add(*(b for _, b in sharded)))
    memory = tr.mem(sp.Add(*params), sp.Add(*trainable), saved, sp.Add(*factored),
                    split or (None, None))
    return Step(composite(layer, shape, name, tr, children, shape, memory=memory),
                runs[-1][0].out)


def _parallel_regions(layer: Layer, shape: Shape, name: str, path: str, x: Ref,
                      tr: Train) -> Step:
    """A residual of a transformer block: what is saved from its first linear layer's
    output to its last linear layer lies in the tensor-parallel region (Megatron's
    column- then row-parallel pair, e.g. the MLP's GELU and fc2 inputs)."""
    step = train_layer(layer, shape, name, path, x, tr)
    items = list(layer.body.layers.items()) if isinstance(layer, Residual) and \
        isinstance(layer.body, _Chain) else []
    linears = [i for i, (_, lay) in enumerate(items) if isinstance(lay, Linear)]
    if len(linears) < 2:
        return step
    inner = {join(path, k) for k, _ in items[linears[0] + 1:linears[-1] + 1]}
    mem = step.cost.memory
    assert mem is not None
    saved = tuple(dataclasses.replace(s, region="tensor") if s.where in inner else s
                  for s in mem.saved)
    # the last linear layer is row-parallel: tensor parallelism does not split its bias
    key, last = items[linears[-1]]
    assert isinstance(last, Linear)
    if last.bias and mem.sharded is not None and mem.sharded_trainable is not None:
        frozen = tr.is_frozen(join(path, key))
        mem = mem.replace(sharded=mem.sharded - last.out_features,
                          sharded_trainable=mem.sharded_trainable
                          - (0 if frozen else last.out_features))
    return Step(step.cost.replace(memory=mem.replace(saved=saved)), step.out)
