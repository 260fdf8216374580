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
from symflops.cost import Cost
from symflops.nn import _vision as V
from symflops.nn import _window as Wd
from symflops.nn._base import Layer, Shape, numel
from symflops.nn._layers import LayerNorm, Linear
from symflops.nn._train.core import (
    Ref,
    Step,
    Train,
    composite,
    join,
    leaf_step,
    no_grad,
    train_layer,
    train_rule,
)

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


@train_rule(Wd.PatchMerging)
def _patch_merging(layer: Wd.PatchMerging, shape: Shape, name: str, path: str, x: Ref,
                   tr: Train) -> Step:
    """torchvision's ``x0..x3 = x[..., 0::2, 0::2, :], ...``, ``cat``, norm, reduction:
    the cat's gradient is four views; each strided slice's gradient is written into a
    zero tensor of the (padded) input's size and autograd adds the four: ``3 numel(x)``
    adds (the pad's gradient is a slice, free). Nothing saved by the merge."""
    eval_cost = layer._cost(shape, name)
    merge = eval_cost["merge"]
    merged = merge.output_shape
    kids = [merge.replace(memory=tr.mem(0, 0, ()))]
    if x.grad:
        padded = numel(merged)  # the padded input: as many elements as the merged tensor
        kids.append(Cost.from_derivation(
            "grad_accumulate", "AddBackward", F.elementwise_derivation(
                padded, 3, "the four strided slices' gradients added: 3 per input element"),
            spec="the 2x2 slices' gradients", input_shape=shape, output_shape=shape))
    m = tr.new(numel(merged), x.grad)
    norm = train_layer(LayerNorm(4 * layer.dim), merged, "norm", join(path, "norm"), m, tr)
    red = train_layer(Linear(4 * layer.dim, 2 * layer.dim, bias=False), merged, "reduction",
                      join(path, "reduction"), norm.out, tr)
    kids += [norm.cost, red.cost]
    return Step(composite(layer, shape, name, tr, kids, red.cost.output_shape), red.out)
