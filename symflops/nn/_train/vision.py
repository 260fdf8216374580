"""Train rules of the vision layers (:mod:`symflops.nn._vision`): the reshapes as views
and the class token.

>>> from symflops.symbols import B, N
>>> from symflops.nn import ClassToken, Linear, Sequential
>>> net = Sequential({"fc": Linear(4, 4), "cls": ClassToken(4)})
>>> net.cost((B, N, 4), mode="train")["cls"].work["elementwise"]   # the batch sum
4*(B - 1)
"""

from __future__ import annotations

from symflops import formulas as F
from symflops.nn import _vision as V
from symflops.nn._base import Layer, Shape, numel
from symflops.nn._train.core import Ref, Step, Train, leaf_step, no_grad, train_rule

__all__: list[str] = []


@train_rule(V.Permute, V.Transpose, V.Reshape, V.Select)
def _moved(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """A view: no arithmetic either way (the gradient of a permute, transpose or reshape
    is a view of the output gradient; a select's is written into zeros, a copy) and
    nothing saved. The output shares the input's storage: the same tensor when it holds
    every element."""
    fwd = layer._cost(shape, name)
    out = x if numel(fwd.output_shape) == x.numel else tr.new(numel(fwd.output_shape),
                                                              x.grad)
    return Step(fwd.replace(memory=tr.mem(0, 0, ())), out)


@train_rule(V.ClassToken)
def _class_token(layer: V.ClassToken, shape: Shape, name: str, path: str, x: Ref,
                 tr: Train) -> Step:
    """``cat([token.expand(B, -1, -1), x], dim=1)``: the cat's gradient is two slices
    (views); the expand's sums the B token gradients, ``(B - 1) dim`` adds. Nothing is
    saved."""
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    if not (x.grad or trainable):
        return no_grad(layer, shape, name, tr, fwd)
    grads = {"grad_weight": F.reduction_derivation("sum", shape[0] * layer.dim, layer.dim)} \
        if trainable else {}
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=[],
                     out=tr.new(numel(fwd.output_shape), True), trainable=trainable,
                     weights=[(layer.dim,)])
