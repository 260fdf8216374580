"""``torch.nn.Embedding`` (:mod:`symflops.formulas.embedding`): a lookup, no arithmetic.

>>> Embedding(10, 4).cost(("B", "N")).params
40
"""

from __future__ import annotations

from symflops import formulas as F
from symflops.cost import Cost
from symflops.formulas.embedding import embedding_derivation
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    SizeLike,
    numel,
    to_size,
)
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    leaf_step,
    no_grad,
)
from symflops.symbols import (
    B,
    N,
    V,
    dim,
)

__all__ = ["Embedding"]


class Embedding(Layer):
    """``torch.nn.Embedding(num_embeddings, embedding_dim)``: a lookup, ``V * dim``
    parameters and no arithmetic."""

    example = Example("Embedding(V, dim)", lambda: Embedding(V, dim), (B, N))

    def __init__(self, num_embeddings: SizeLike, embedding_dim: SizeLike,
                 padding_idx: int | None = None) -> None:
        self.num_embeddings = to_size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = to_size(embedding_dim, "Embedding", "embedding_dim")

    def spec(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape + (self.embedding_dim,),
                          embedding_derivation(self.num_embeddings, self.embedding_dim))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                   tr: Train) -> Step:
        """A lookup: no input gradient (token ids); the weight's gradient adds each token's
        output gradient into its row (``embedding_dense_backward``), from the ids it keeps
        (int64)."""
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        if not trainable:
            return no_grad(self, shape, name, tr, fwd)
        d = F.embedding.embedding_grad_derivation(x.numel, self.embedding_dim)
        return leaf_step(self, shape, name, tr, fwd, grads={"grad_weight": d},
                         saved=[tr.saved(path, "indices", x, "index")],
                         out=tr.new(numel(fwd.output_shape), True), trainable=True,
                         weights=[(self.num_embeddings, self.embedding_dim)],
                         sharded=fwd.params)  # vocab-parallel (Megatron)
