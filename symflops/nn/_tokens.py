"""Layers that turn an image into tokens and position them (:mod:`symflops.formulas.tokens`):
patch embedding, class token, learned position embedding.

>>> from symflops.symbols import B, H, W
>>> PatchEmbedding(3, 768, 16).cost((B, 3, H, W)).output_shape
(B, floor(H/16)*floor(W/16), 768)

In training, a class token's gradient is the batch sum of its expanded copies; learned
positions add the batch sum and the scatter into the table:

>>> from symflops.symbols import N
>>> from symflops.nn import Embedding, Linear, Sequential
>>> Sequential({"fc": Linear(4, 4), "cls": ClassToken(4)}).cost(
...     (B, N, 4), mode="train")["cls"].work["elementwise"]
4*(B - 1)
>>> net = Sequential({"wte": Embedding(10, 4), "wpe": PositionEmbedding(8, 4)})
>>> net.cost((B, N), mode="train")["wpe"].work["elementwise"]    # add, batch sum, scatter
4*B*N + 4*N*(B - 1) + 4*N
"""

from __future__ import annotations

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.tokens import class_token_derivation, position_embedding_derivation
from symflops.nn._base import (
    CONTEXT_N,
    KV_CONTEXT,
    Example,
    Layer,
    Shape,
    SizeLike,
    numel,
    to_size,
)
from symflops.nn._containers import Sequential
from symflops.nn._conv import Conv2d
from symflops.nn._embedding import Embedding
from symflops.nn._pointwise import Flatten
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
    no_grad,
)
from symflops.nn._views import Transpose
from symflops.symbols import (
    B,
    C,
    H,
    K,
    N,
    W,
    dim,
)

__all__ = ["PatchEmbedding", "ClassToken", "PositionEmbedding"]


class PatchEmbedding(Sequential):
    """An image to tokens, as ViT does it: a ``patch x patch`` convolution with stride
    ``patch`` (``proj``), then ``flatten(2).transpose(1, 2)``: ``(B, C, H, W) -> (B, N,
    dim)`` with ``N = floor(H/p) floor(W/p)`` tokens.

    >>> from symflops.symbols import B
    >>> PatchEmbedding(3, 768, 16).cost((B, 3, 224, 224), convention="macs").flops
    115605504*B
    """

    example = Example(
        "PatchEmbedding(C, dim, K)", lambda: PatchEmbedding(C, dim, K), (B, C, H, W),
        "a K x K stride-K conv, then flatten and transpose to (B, N, dim)")

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

    example = Example(
        "ClassToken(dim)", lambda: ClassToken(dim), (B, N, dim),
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

    example = Example(
        "PositionEmbedding(N_ctx, dim)", lambda: PositionEmbedding(CONTEXT_N, dim), (B, N, dim),
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
        cached = KV_CONTEXT.get()  # a decode step: positions T .. T + N - 1
        last = n if cached is None else cached + n
        fits = sp.Le(last, self.context)
        if fits is sp.false:
            raise SymflopsError("the sequence is longer than the position table",
                                layer=self.spec(), values={"N": n, "context": self.context}
                                | ({} if cached is None else {"cached": cached}),
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
