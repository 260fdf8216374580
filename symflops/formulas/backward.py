"""Backward passes of the layer families, derived op by op as torch's autograd runs them.

Every function returns the derivations of the gradient ops a layer's backward runs, by
name; ``sf.nn``'s ``mode="train"`` and the tracer's handlers of the same aten ops
(``aten.mm``, ``aten.bmm``, ``aten.sum``, ``aten.native_dropout_backward``, ...) call the
same family functions, so both count a backward pass alike.

Hand count for a linear layer (``M`` rows, ``I`` inputs, ``O`` outputs): the forward is
``M O`` dot products of length ``I``; the backward is two products of the same size,
``grad_input = grad_output (M x O) @ W (O x I)`` (``M I`` dot products of length ``O``)
and ``grad_weight = grad_output^T (O x M) @ x (M x I)`` (``O I`` dot products of length
``M``), and ``grad_bias``: ``grad_output`` summed over the ``M`` rows (``(M - 1) O`` adds).
Each product has as many multiplies as the forward: the "backward = 2 x forward" rule,
exact for the multiplies, off by the adds of the different dot-product lengths.

>>> d = linear_backward_derivations(4, 3, 2)
>>> {k: v.work for k, v in d.items()}
{'grad_input': {'matmul_mul': 24, 'matmul_add': 12}, \
'grad_weight': {'matmul_mul': 24, 'matmul_add': 18}, 'grad_bias': {'elementwise': 6}}
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from symflops.formulas._arith import Size
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_derivation, matmul_derivation
from symflops.formulas.pointwise import elementwise_derivation, softmax_grad_derivation
from symflops.formulas.resize import reduction_derivation

__all__ = ["linear_backward_derivations", "matmul_backward_derivations",
           "dropout_derivation", "dropout_grad_derivation", "grad_accumulation_derivation",
           "attention_core_backward_derivations", "DROPOUT_RATE", "DROPOUT_GRAD_RATE"]

#: dropout in training, per element: the compare ``rand > p``, the multiply by the mask
#: and by ``1 / (1 - p)`` (drawing the random numbers is not arithmetic)
DROPOUT_RATE = 3
#: dropout's gradient per element: the mask times the scale, times the gradient
DROPOUT_GRAD_RATE = 2


def _role(d: Derivation, text: str) -> Derivation:
    """``d`` as a gradient op: its role in the explanation, and no parameters of its own."""
    return dataclasses.replace(d, general_params=sp.Integer(0),
                               explanation=f"{text}: {d.explanation}")


def linear_backward_derivations(rows: Size, in_features: Size, out_features: Size,
                                bias: bool = True, *, input_grad: bool = True,
                                weight_grad: bool = True) -> dict[str, Derivation]:
    """The gradient ops of a linear layer (torch's ``AddmmBackward``/``MmBackward``): the
    two ``aten.mm`` products and the ``aten.sum`` of the bias gradient; ``input_grad``
    false for an input that needs no gradient (the model's input), ``weight_grad``
    false for a frozen layer."""
    out: dict[str, Derivation] = {}
    if input_grad:
        out["grad_input"] = _role(linear_derivation(rows, out_features, in_features, False),
                                  "grad_input = grad_output @ W")
    if weight_grad:
        out["grad_weight"] = _role(linear_derivation(out_features, rows, in_features, False),
                                   "grad_weight = grad_output^T @ x")
        if bias:
            out["grad_bias"] = _role(reduction_derivation("sum", rows * out_features,
                                                          out_features),
                                     "grad_bias = grad_output summed over rows")
    return out


def matmul_backward_derivations(batch: Size, m: Size, k: Size, n: Size, *, a_grad: bool = True,
                                b_grad: bool = True, names: tuple[str, str] = ("grad_a",
                                                                               "grad_b")
                                ) -> dict[str, Derivation]:
    """The two ``aten.bmm`` of ``C = A (m x k) @ B (k x n)`` (``batch`` of them):
    ``grad_A = grad_C @ B^T`` (``m x n`` by ``n x k``) and ``grad_B = A^T @ grad_C``
    (``k x m`` by ``m x n``).

    >>> {k: v.work for k, v in matmul_backward_derivations(1, 2, 3, 4).items()}
    {'grad_a': {'matmul_mul': 24, 'matmul_add': 18}, 'grad_b': {'matmul_mul': 24, \
'matmul_add': 12}}
    """
    out: dict[str, Derivation] = {}
    if a_grad:
        out[names[0]] = matmul_derivation(batch, m, n, k)
    if b_grad:
        out[names[1]] = matmul_derivation(batch, k, m, n)
    return out


def dropout_derivation(numel: Size) -> Derivation:
    """Dropout in training (``aten.native_dropout``): 3 per element.

    >>> dropout_derivation(10).work
    {'elementwise': 30}
    """
    return elementwise_derivation(
        numel, DROPOUT_RATE, "dropout in training: the mask compare rand > p, the multiply "
        "by the mask and by 1/(1 - p): 3 per element")


def dropout_grad_derivation(numel: Size) -> Derivation:
    """Dropout's gradient (``aten.native_dropout_backward``): 2 per element.

    >>> dropout_grad_derivation(10).work
    {'elementwise': 20}
    """
    return elementwise_derivation(numel, DROPOUT_GRAD_RATE,
                                  "dropout gradient: the mask times the scale, times grad")


def grad_accumulation_derivation(numel: Size) -> Derivation:
    """A tensor used twice (a residual's input) gets two gradients; autograd adds them:
    one add per element.

    >>> grad_accumulation_derivation(6).work
    {'elementwise': 6}
    """
    return elementwise_derivation(numel, 1, "gradient accumulation: the two gradients of a "
                                            "tensor used twice, added (1 per element)")


def attention_core_backward_derivations(batch: Size, heads: Size, q_len: Size, kv_len: Size,
                                        head_dim: Size, *, dropout: bool = False,
                                        kv_heads: Size | None = None
                                        ) -> dict[str, Derivation]:
    """The gradients of attention computed op by op (``S = Q K^T``, ``S * scale``,
    softmax, optional dropout, ``O = A V``), in the order autograd runs them:
    ``grad_probs = dO V^T`` and ``grad_v = A^T dO`` (two bmm), dropout's gradient (2 per
    score), the softmax gradient (``4 S - 1`` per row), the scale's gradient (1 per
    score), ``grad_q = dS K`` and ``grad_k = dS^T Q`` (two bmm). With fewer key/value
    heads (``kv_heads``: K and V expanded to every query head), the gradients of V and K
    are summed back over each group of query heads (``grad_v_expand``,
    ``grad_k_expand``: the backward of ``expand``, an ``aten.sum``).

    >>> d = attention_core_backward_derivations(1, 1, 2, 2, 4)
    >>> list(d), d["grad_softmax"].work
    (['grad_probs', 'grad_v', 'grad_softmax', 'grad_scale', 'grad_q', 'grad_k'], \
{'elementwise': 14})
    """
    rows = batch * heads
    scores = rows * q_len * kv_len
    out = matmul_backward_derivations(rows, q_len, kv_len, head_dim,
                                      names=("grad_probs", "grad_v"))
    groups_of = heads if kv_heads is None else kv_heads
    grouped = sp.sympify(groups_of) != sp.sympify(heads)
    expand = reduction_derivation("sum", rows * kv_len * head_dim,
                                  batch * groups_of * kv_len * head_dim)
    if grouped:
        out["grad_v_expand"] = expand
    if dropout:
        out["grad_dropout"] = dropout_grad_derivation(scores)
    out["grad_softmax"] = softmax_grad_derivation(rows * q_len, kv_len)
    out["grad_scale"] = elementwise_derivation(scores, 1, "the scale's gradient: one "
                                                          "multiply per score")
    out.update(matmul_backward_derivations(rows, q_len, head_dim, kv_len,
                                           names=("grad_q", "grad_k")))
    if grouped:
        out["grad_k_expand"] = expand
    return out
