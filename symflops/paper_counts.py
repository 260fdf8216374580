"""Views of a Cost that papers quote: per token, non-embedding parameters, active
parameters of a mixture of experts. Each function says what it divides by or drops.

>>> import symflops as sf
>>> from symflops.symbols import B, N
>>> c = sf.presets.gpt(768, 12, 12, 50257, 1024).cost((B, N))
>>> non_embedding_params(c)          # Kaplan et al. 2020's N: no token or position table
85056000
>>> per_token(c, "macs").subs({N: 1024})   # L (12 d^2 + 2 N d) + V d
142406400
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.symbols import B, N

__all__ = ["per_token", "non_embedding_params", "active_params", "EMBEDDING_LAYERS"]

#: layer types whose parameters are embedding tables (token ids and positions -> vectors)
EMBEDDING_LAYERS = frozenset({"Embedding", "PositionEmbedding"})
#: the sf.nn MoE leaf holding the weights of the experts a token does not use
_IDLE = "IdleExpertWeights"


def _weighted(cost: Cost, layers: frozenset[str], count: Any = 1
              ) -> Iterator[tuple[Cost, sp.Expr]]:
    """The outermost nodes of the given layer types, each with the product of the counts
    from the root down to it (a match's own descendants are not visited again)."""
    here = count * cost.count
    if cost.layer in layers:
        yield cost, here
        return
    for child in cost.children:
        yield from _weighted(child, layers, here)


def per_token(cost: Cost, quantity: str = "flops", tokens: Any = None) -> sp.Expr:
    """``quantity`` (``flops`` under the cost's convention, ``macs``, ``params`` or a
    kind) divided by ``tokens``: ``B*N`` by default (the tokens of a ``(B, N)`` batch; in
    training, pass the tokens of a step).

    >>> import symflops as sf
    >>> per_token(sf.nn.Linear(8, 4).cost(("B", "N", 8)), "macs")
    32
    """
    total = cost.quantity(quantity)
    if tokens is None:
        tokens = B * N
        if not {B, N} <= cost.free_symbols:
            raise SymflopsError("per_token divides by B*N, but the cost is not in B and N",
                                layer=cost.spec, values={"symbols": sorted(
                                    map(str, cost.free_symbols))},
                                fix="pass tokens=... (the number of tokens the cost is for)")
    return sp.expand(total / sp.sympify(tokens))


def non_embedding_params(cost: Cost) -> sp.Expr:
    """Parameters without the embedding tables (``Embedding`` and ``PositionEmbedding``
    layers: token and position vectors), as Kaplan et al. 2020 count ``N``. A tied LM
    head has none of its own; an untied one is a Linear and stays counted.
    """
    dropped = sp.Add(*(w * c.params for c, w in _weighted(cost, EMBEDDING_LAYERS)))
    return sp.expand(cost.params - dropped)


def active_params(cost: Cost) -> sp.Expr:
    """Parameters one token uses: all of them minus the weights of the experts it is not
    routed to (``sf.nn.MoE``'s ``idle_weights``: ``E - k`` experts per MoE layer). For a
    dense model, every parameter.

    A traced MoE holds its experts in one 3-d weight the trace cannot split: an error,
    use ``sf.nn.MoE`` or ``sf.presets.mixtral`` for the count.
    """
    if any(c.layer == "aten._grouped_mm" for _, c in cost.leaves()):
        raise SymflopsError("a traced mixture of experts does not say which weights a token "
                            "uses", layer=cost.spec,
                            fix="build the model with sf.nn.MoE or sf.presets.mixtral")
    idle = sp.Add(*(w * c.params for c, w in _weighted(cost, frozenset({_IDLE}))))
    return sp.expand(cost.params - idle)
