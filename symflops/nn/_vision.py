"""Layers that turn an image into tokens (patch embedding, class token, learned position
embedding) and the data-movement layers vision models need (Permute, Transpose, Reshape,
Select).

>>> from symflops.symbols import B, H, W
>>> PatchEmbedding(3, 768, 16).cost((B, 3, H, W)).output_shape
(B, floor(H/16)*floor(W/16), 768)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div
from symflops.formulas.derivation import Derivation
from symflops.formulas.tokens import class_token_derivation, position_embedding_derivation
from symflops.nn._base import (
    CONTEXT_N,
    Example,
    Layer,
    Shape,
    SizeLike,
    check_dim,
    dim_index,
    divides_condition,
    numel,
    same_size,
    to_size,
)
from symflops.nn._composite import Sequential
from symflops.nn._conv import Conv2d
from symflops.nn._layers import Embedding, Flatten
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
    no_grad,
)
from symflops.symbols import (
    B,
    C,
    H,
    K,
    N,
    W,
    dim,
)

__all__ = ["Permute", "Transpose", "Reshape", "Select", "PatchEmbedding", "ClassToken",
           "PositionEmbedding"]


def moved(layer: Layer, name: str, shape: Shape, out: Shape) -> Cost:
    """The leaf of a layer that only moves data: no parameters, no arithmetic."""
    return Cost(name, layer.layer_type(), spec=layer.spec(), params=0, work={},
                input_shape=shape, output_shape=out,
                derivation=Derivation({}, sp.Integer(0), {}, "data movement: no arithmetic"))


def _moved(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """A view: no arithmetic either way (the gradient of a permute, transpose or reshape
    is a view of the output gradient; a select's is written into zeros, a copy) and
    nothing saved. The output shares the input's storage: the same tensor when it holds
    every element."""
    fwd = layer._cost(shape, name)
    out = x if numel(fwd.output_shape) == x.numel else tr.new(numel(fwd.output_shape),
                                                              x.grad)
    return Step(fwd.replace(memory=tr.mem(0, 0, ())), out)


class Permute(Layer):
    """``x.permute(*dims)`` (torchvision's ``ops.Permute``): data movement, free.

    >>> Permute(0, 2, 3, 1).cost(("B", "C", "H", "W")).output_shape
    (B, H, W, C)
    """

    example = Example("Permute(0, 2, 3, 1)", lambda: Permute(0, 2, 3, 1), (B, C, H, W),
        "data movement")

    def __init__(self, *dims: Any) -> None:
        items = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) \
            else dims
        self.dims = tuple(check_dim(d, "Permute", "dims") for d in items)

    def spec(self) -> str:
        return f"Permute({', '.join(str(d) for d in self.dims)})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        order = [dim_index(d, shape, self.spec()) for d in self.dims]
        if sorted(order) != list(range(len(shape))):
            raise SymflopsError("dims must name every input dim once", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass a permutation of 0..{len(shape) - 1}")
        return moved(self, name, shape, tuple(shape[i] for i in order))

    _train = _moved


class Transpose(Layer):
    """``x.transpose(dim0, dim1)``: data movement, free.

    >>> Transpose(1, 2).cost(("B", "dim", "N")).output_shape
    (B, N, dim)
    """

    example = Example("Transpose(1, 2)", lambda: Transpose(1, 2), (B, dim, N),
        "data movement")

    def __init__(self, dim0: int, dim1: int) -> None:
        self.dim0 = check_dim(dim0, "Transpose", "dim0")
        self.dim1 = check_dim(dim1, "Transpose", "dim1")

    def spec(self) -> str:
        return f"Transpose({self.dim0}, {self.dim1})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        a, b = (dim_index(d, shape, self.spec()) for d in (self.dim0, self.dim1))
        out = list(shape)
        out[a], out[b] = shape[b], shape[a]
        return moved(self, name, shape, tuple(out))

    _train = _moved


class Reshape(Layer):
    """``x.reshape(*shape)``: data movement, free. One size may be ``-1`` (inferred);
    the element count must not change (checked for concrete sizes, a validity condition
    for symbolic ones).

    >>> Reshape("B", -1, "C").cost(("B", "C", "H", "W")).output_shape
    (B, H*W, C)
    """

    example = Example("Reshape(B, -1, C)", lambda: Reshape(B, -1, C), (B, C, H, W),
        "data movement")

    def __init__(self, *shape: Any) -> None:
        items = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
            else shape
        infer = [i for i, s in enumerate(items) if _is_minus_one(s)]
        if len(infer) > 1 or not items:
            raise SymflopsError("give the sizes, at most one of them -1", layer="Reshape",
                                values={"shape": items}, fix="pass e.g. Reshape('B', -1, 'C')")
        self.infer = infer[0] if infer else None
        self.shape = tuple(None if i == self.infer else to_size(s, "Reshape", "shape")
                           for i, s in enumerate(items))

    def spec(self) -> str:
        return "Reshape(" + ", ".join("-1" if s is None else str(s) for s in self.shape) + ")"

    def _cost(self, shape: Shape, name: str) -> Cost:
        given = numel(tuple(s for s in self.shape if s is not None))
        total = numel(shape)
        validity: list[sp.Basic] = []
        if self.infer is not None:
            inferred = sp.sympify(exact_div(total, given))
            out = tuple(inferred if s is None else s for s in self.shape)
            if inferred.is_number and not inferred.is_Integer:
                raise self._mismatch(shape)
            validity = divides_condition(given, total)
        else:
            out = tuple(s for s in self.shape if s is not None)
            if not same_size(given, total):
                if (given - total).is_number:
                    raise self._mismatch(shape)
                validity = [sp.Eq(given, total)]
        return moved(self, name, shape, out).replace(validity=validity)

    def _mismatch(self, shape: Shape) -> SymflopsError:
        return SymflopsError("the new shape does not hold the input's elements",
                             layer=self.spec(), values={"input_shape": shape},
                             fix="give sizes whose product is the input's element count")

    _train = _moved


def _is_minus_one(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == -1


class Select(Layer):
    """``x.select(dim, index)`` (``x[:, 0]`` for ``Select(1, 0)``): the dim is dropped;
    free. ViT reads its class token this way.

    >>> Select(1, 0).cost(("B", "N", "dim")).output_shape
    (B, dim)
    """

    example = Example("Select(1, 0)", lambda: Select(1, 0), (B, N, dim),
        "x[:, 0]: data movement")

    def __init__(self, dim: int, index: int = 0) -> None:
        self.dim = check_dim(dim, "Select")
        self.index = check_dim(index, "Select", "index")

    def spec(self) -> str:
        return f"Select({self.dim}, {self.index})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        d = dim_index(self.dim, shape, self.spec())
        size = shape[d]
        if size.is_number and not -size <= self.index < size:
            raise SymflopsError("index is out of range for the dim", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"use an index in [{-size}, {size - 1}]")
        return moved(self, name, shape, tuple(shape[:d]) + tuple(shape[d + 1:]))

    _train = _moved


class PatchEmbedding(Sequential):
    """An image to tokens, as ViT does it: a ``patch x patch`` convolution with stride
    ``patch`` (``proj``), then ``flatten(2).transpose(1, 2)``: ``(B, C, H, W) -> (B, N,
    dim)`` with ``N = floor(H/p) floor(W/p)`` tokens.

    >>> from symflops.symbols import B
    >>> PatchEmbedding(3, 768, 16).cost((B, 3, 224, 224), convention="macs").flops
    115605504*B
    """

    example = Example("PatchEmbedding(C, dim, K)", lambda: PatchEmbedding(C, dim, K),
        (B, C, H, W), "a K x K stride-K conv, then flatten and transpose to "
        "(B, N, dim)")

    def __init__(self, in_channels: SizeLike, dim: SizeLike, patch_size: SizeLike,
                 bias: bool = True) -> None:
        self.patch_size = to_size(patch_size, "PatchEmbedding", "patch_size")
        proj = Conv2d(in_channels, dim, self.patch_size, stride=self.patch_size, bias=bias)
        super().__init__({"proj": proj, "flatten": Flatten(2), "transpose": Transpose(1, 2)})
        self.proj = proj

    def spec(self) -> str:
        return (f"PatchEmbedding({self.proj.in_channels}, {self.proj.out_channels}, "
                f"{self.patch_size}" + ("" if self.proj.bias else ", bias=False") + ")")

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) != 4:
            raise SymflopsError("expects an image batch (B, C, H, W)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.proj.in_channels}, H, W)")
        return super()._cost(shape, name).replace(layer="PatchEmbedding", spec=self.spec())


class ClassToken(Layer):
    """A learned class token prepended to each sequence: ``(B, N, dim) -> (B, N + 1,
    dim)``, ``dim`` parameters, no arithmetic (a copy).

    >>> ClassToken(768).cost(("B", "N", 768)).output_shape
    (B, N + 1, 768)
    """

    example = Example("ClassToken(dim)", lambda: ClassToken(dim), (B, N, dim),
        "a learned token prepended: N + 1 tokens")

    def __init__(self, dim: SizeLike) -> None:
        self.dim = to_size(dim, "ClassToken", "dim")

    def spec(self) -> str:
        return f"ClassToken({self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (3,), f"(B, N, {self.dim})")
        self._check_channels(shape, shape[-1], self.dim, "features")
        out = (shape[0], shape[1] + 1, shape[2])
        return self._leaf(name, shape, out, class_token_derivation(self.dim))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                     tr: Train) -> Step:
        """``cat([token.expand(B, -1, -1), x], dim=1)``: the cat's gradient is two slices
        (views); the expand's sums the B token gradients, ``(B - 1) dim`` adds. Nothing is
        saved."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, fwd)
        grads = {"grad_weight": F.resize.reduction_derivation("sum", shape[0] * self.dim,
                                                              self.dim)} \
            if trainable else {}
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=[],
                         out=tr.new(numel(fwd.output_shape), True), trainable=trainable,
                         weights=[(self.dim,)])


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

    example = Example("PositionEmbedding(N_ctx, dim)",
        lambda: PositionEmbedding(CONTEXT_N, dim), (B, N, dim),
        "learned positions (GPT-2's wpe) added to the tokens")

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

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                  tr: Train) -> Step:
        """``x + wpe(arange(N))``: the ``(1, N, dim)`` positions broadcast over the batch, so
        their gradient is the output gradient summed over it (``(B - 1) N dim`` adds); then
        ``embedding_dense_backward`` adds it into the N rows (``N dim``), from the position
        ids it keeps. The token side's gradient is the output gradient itself (no op)."""
        fwd = self._cost(shape, name)
        trainable = self.learned and not tr.is_frozen(path)
        if not (x.grad or trainable):
            return no_grad(self, shape, name, tr, fwd)
        n, dim = shape[1], self.dim
        grads: dict[str, Derivation] = {}
        saved = []
        if trainable:
            grads["grad_position"] = F.resize.reduction_derivation("sum", numel(shape), n * dim)
            grads["grad_weight"] = F.embedding.embedding_grad_derivation(n, dim)
            saved.append(tr.saved(path, "position ids", n, "index"))
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved,
                         out=tr.new(x.numel, True), trainable=trainable,
                         weights=[(self.context, dim)])
