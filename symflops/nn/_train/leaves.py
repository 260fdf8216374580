"""Train rules of the leaf layers: what each runs in backward and saves for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.nn import _conv as C
from symflops.nn import _layers as L
from symflops.nn._base import Layer, Shape, numel
from symflops.nn._train.core import Ref, Step, Train, leaf_step, no_grad, train_rule

__all__ = ["ACTIVATION_SAVES"]


@train_rule(L.Linear)
def _linear(layer: L.Linear, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    rows = numel(shape[:-1])
    grads = F.linear_backward_derivations(rows, layer.in_features, layer.out_features,
                                          layer.bias, input_grad=x.grad,
                                          weight_grad=trainable)
    # AddmmBackward keeps the input for the weight's gradient (the weight, for the
    # input's, is a parameter)
    saved = [tr.saved(path, "input", x)] if trainable else []
    out = tr.new(numel(fwd.output_shape), x.grad or trainable)
    weights = [(layer.out_features, layer.in_features)] + \
        ([(layer.out_features,)] if layer.bias else [])
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=trainable, weights=weights)


@train_rule(C.Conv1d, C.Conv2d, C.Conv3d, C.ConvTranspose1d, C.ConvTranspose2d,
            C.ConvTranspose3d)
def _conv(layer: C.Conv2d, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    if layer.transposed:
        raise SymflopsError("mode='train' is not derived for transposed convolutions yet",
                            layer=layer.spec(),
                            fix="trace the torch module with sf.trace(..., mode='train')")
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    n = layer.n
    batch = shape[0] if len(shape) == n + 2 else sp.Integer(1)
    grads = F.conv_backward_derivations(
        batch, layer.in_channels, layer.out_channels, layer.kernel_size, shape[-n:],
        fwd.output_shape[-n:], layer.stride, layer.dilation, layer.groups,
        (x.grad, trainable, trainable and layer.bias))
    saved = [tr.saved(path, "input", x)] if trainable else []
    out = tr.new(numel(fwd.output_shape), x.grad or trainable)
    weights = [(layer.out_channels, F.exact_div(layer.in_channels, layer.groups),
                *layer.kernel_size)] + ([(layer.out_channels,)] if layer.bias else [])
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=trainable, weights=weights)


#: what each activation's autograd node keeps: its input or its output
ACTIVATION_SAVES = {"relu": "output", "sigmoid": "output", "tanh": "output",
                    "relu6": "input", "leaky_relu": "input", "silu": "input", "gelu": "input",
                    "gelu_tanh": "input", "hardswish": "input", "hardsigmoid": "input"}


@train_rule(L.ReLU, L.ReLU6, L.LeakyReLU, L.Sigmoid, L.Tanh, L.SiLU, L.Hardswish,
            L.Hardsigmoid, L.GELU)
def _activation(layer: L.ReLU, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if not x.grad:
        return no_grad(layer, shape, name, tr, fwd)
    out = tr.new(x.numel, True)
    keeps = ACTIVATION_SAVES[layer.activation]
    saved = [tr.saved(path, keeps, x if keeps == "input" else out)]
    grads = {"grad_input": F.activation_grad_derivation(layer.activation, x.numel)}
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                     trainable=False)


@train_rule(L.Softmax)
def _softmax(layer: L.Softmax, shape: Shape, name: str, path: str, x: Ref,
             tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if not x.grad:
        return no_grad(layer, shape, name, tr, fwd)
    n = shape[layer.dim % len(shape)]
    out = tr.new(x.numel, True)
    grads = {"grad_input": F.softmax_grad_derivation(x.numel / n, n)}
    return leaf_step(layer, shape, name, tr, fwd, grads=grads,
                     saved=[tr.saved(path, "output", out)], out=out, trainable=False)


def _norm(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train, *,
          affine: bool, stats: Any, grads: Callable[[tuple[bool, bool, bool]],
                                                    dict[str, Derivation]],
          fwd: Cost | None = None) -> Step:
    """A normalization: it saves its input and ``stats`` statistics per stat tensor
    (``stats`` a list of element counts), and computes the gradients ``grads(mask)``."""
    fwd = layer._cost(shape, name) if fwd is None else fwd
    trainable = affine and not tr.is_frozen(path)
    if not (x.grad or trainable):
        return no_grad(layer, shape, name, tr, fwd)
    saved = [tr.saved(path, "input", x)] + [tr.saved(path, "stats", s) for s in stats]
    return leaf_step(layer, shape, name, tr, fwd, grads=grads((x.grad, trainable, trainable)),
                     saved=saved, out=tr.new(x.numel, True), trainable=trainable)


@train_rule(L.LayerNorm)
def _layer_norm(layer: L.LayerNorm, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    k = len(layer.normalized_shape)
    rows, n = numel(shape[:-k]), numel(layer.normalized_shape)
    affine = layer.elementwise_affine
    # native_layer_norm keeps the input, the per-row mean and rstd (and its parameters)
    return _norm(layer, shape, name, path, x, tr, affine=affine, stats=[rows, rows],
                 grads=lambda m: F.layer_norm_grad_derivations(
                     rows, n, weight=affine, bias=affine and layer.bias, output_mask=m))


@train_rule(L.RMSNorm)
def _rms_norm(layer: L.RMSNorm, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    k = len(layer.normalized_shape)
    rows, n = numel(shape[:-k]), numel(layer.normalized_shape)
    affine = layer.elementwise_affine
    # _fused_rms_norm keeps the input and the per-row rstd
    return _norm(layer, shape, name, path, x, tr, affine=affine, stats=[rows],
                 grads=lambda m: F.rms_norm_grad_derivations(
                     rows, n, weight=affine, output_mask=(m[0], m[1])))


@train_rule(L.GroupNorm)
def _group_norm(layer: L.GroupNorm, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    batch, groups = shape[0], layer.num_groups
    # native_group_norm keeps the input, the per-group mean and rstd
    return _norm(layer, shape, name, path, x, tr, affine=layer.affine,
                 stats=[batch * groups, batch * groups],
                 grads=lambda m: F.group_norm_grad_derivations(
                     batch, groups, layer.num_channels, numel(shape[2:]),
                     weight=layer.affine, output_mask=m))


@train_rule(L.BatchNorm1d, L.BatchNorm2d, L.BatchNorm3d)
def _batch_norm(layer: L.BatchNorm2d, shape: Shape, name: str, path: str, x: Ref,
                tr: Train) -> Step:
    """In training a BatchNorm normalizes with the batch statistics, updates its running
    statistics (7 per channel) and counts the batch (``num_batches_tracked += 1``)."""
    layer._check_rank(shape, layer.ranks, layer.layout)
    layer._check_channels(shape, shape[1], layer.num_features)
    c = layer.num_features
    d = F.batch_norm_derivation(numel(shape), c, training=True, affine=layer.affine)
    fwd = Cost("forward", layer.layer_type(), spec=layer.spec(), input_shape=shape,
               output_shape=shape, children=[
                   layer._leaf("normalize", shape, shape, d),
                   Cost.from_derivation("running_stats", "BatchNormStats",
                                        F.running_stats_derivation(c),
                                        spec="running statistics"),
                   Cost.from_derivation("num_batches_tracked", "Add",
                                        F.elementwise_derivation(1, 1, "num_batches_tracked "
                                                                       "+= 1: one add"),
                                        spec="num_batches_tracked")])
    return _norm(layer, shape, name, path, x, tr, affine=layer.affine, stats=[c, c],
                 grads=lambda m: F.batch_norm_grad_derivations(
                     numel(shape), c, training=True, weight=layer.affine, output_mask=m),
                 fwd=fwd)


@train_rule(L.Dropout)
def _dropout(layer: L.Dropout, shape: Shape, name: str, path: str, x: Ref,
             tr: Train) -> Step:
    fwd = layer._cost(shape, name)
    if layer.p == 0:  # torch returns the input itself
        return Step(fwd.replace(memory=tr.mem(0, 0, ())), x)
    train_fwd = Cost.from_derivation("forward", "Dropout", F.dropout_derivation(x.numel),
                                     spec=layer.spec(), input_shape=shape, output_shape=shape)
    if not x.grad:
        return no_grad(layer, shape, name, tr, train_fwd)
    grads = {"grad_input": F.dropout_grad_derivation(x.numel)}
    return leaf_step(layer, shape, name, tr, train_fwd, grads=grads,
                     saved=[tr.saved(path, "mask", x.numel, "mask")],
                     out=tr.new(x.numel, True), trainable=False)


@train_rule(L.Identity, L.Flatten)
def _view(layer: Layer, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
    """A view: no arithmetic, the output is the input's storage."""
    return Step(layer._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


@train_rule(L.MaxPool2d)
def _max_pool(layer: L.MaxPool2d, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    """``max_pool2d_with_indices`` keeps its input and the argmax indices (int64); its
    gradient adds each output gradient at its argmax."""
    fwd = layer._cost(shape, name)
    if not x.grad:
        return no_grad(layer, shape, name, tr, fwd)
    outs = numel(fwd.output_shape)
    grads = {"grad_input": F.scatter_grad_derivation(outs, "max pooling")}
    saved = [tr.saved(path, "input", x), tr.saved(path, "indices", outs, "index")]
    return leaf_step(layer, shape, name, tr, fwd, grads=grads, saved=saved,
                     out=tr.new(outs, True), trainable=False)


@train_rule(L.AvgPool2d)
def _avg_pool(layer: L.AvgPool2d, shape: Shape, name: str, path: str, x: Ref,
              tr: Train) -> Step:
    """``avg_pool2d`` keeps its input; its gradient divides each output gradient and adds
    it into its window (:func:`symflops.formulas.avg_pool_grad_derivation`)."""
    fwd = layer._cost(shape, name)
    if not x.grad:
        return no_grad(layer, shape, name, tr, fwd)
    outs = numel(fwd.output_shape)
    window = F.prod(layer.kernel_size)
    if any(p != 0 for p in layer.padding) or layer.ceil_mode:
        sizes = (*layer.kernel_size, *layer.stride, *layer.padding)
        if not all(v.is_number for v in sizes):
            raise SymflopsError("mode='train' of a padded or ceil_mode average pooling needs "
                                "int kernel, stride and padding", layer=layer.spec(),
                                fix="pass ints, or no padding and ceil_mode=False")
        d = F.avg_pool_grad_derivation(
            outs, window, planes=numel(shape[:-2]), in_spatial=shape[-2:],
            out_spatial=fwd.output_shape[-2:], kernel=[int(k) for k in layer.kernel_size],
            stride=[int(k) for k in layer.stride], padding=[int(k) for k in layer.padding])
    else:
        d = F.avg_pool_grad_derivation(outs, window)
    return leaf_step(layer, shape, name, tr, fwd, grads={"grad_input": d},
                     saved=[tr.saved(path, "input", x)], out=tr.new(outs, True),
                     trainable=False)


@train_rule(L.AdaptiveAvgPool2d)
def _adaptive_avg_pool(layer: L.AdaptiveAvgPool2d, shape: Shape, name: str, path: str,
                       x: Ref, tr: Train) -> Step:
    """``_adaptive_avg_pool2d`` keeps its input; its gradient spreads each output gradient
    over its window. A global pool (output 1) is torch's ``mean`` over the plane (the same
    count, as a reduction): it keeps nothing, and its gradient divides the expanded
    output gradient (one divide per input element)."""
    fwd = layer._cost(shape, name)
    if all(o == 1 for o in layer.output_size):
        mean = F.reduction_derivation("mean", x.numel, numel(shape[:-2]))
        fwd = Cost.from_derivation(name, layer.layer_type(), mean, spec=layer.spec(),
                                   input_shape=shape, output_shape=fwd.output_shape)
        if not x.grad:
            return no_grad(layer, shape, name, tr, fwd)
        grad = F.elementwise_derivation(x.numel, 1, "mean's gradient: the output gradient "
                                                    "expanded and divided by the count")
        return leaf_step(layer, shape, name, tr, fwd, grads={"grad_input": grad}, saved=[],
                         out=tr.new(numel(fwd.output_shape), True), trainable=False)
    if not x.grad:
        return no_grad(layer, shape, name, tr, fwd)
    d = F.adaptive_avg_pool_grad_derivation(numel(shape[:-2]), shape[-2:],
                                            list(layer.output_size))
    return leaf_step(layer, shape, name, tr, fwd, grads={"grad_input": d},
                     saved=[tr.saved(path, "input", x)],
                     out=tr.new(numel(fwd.output_shape), True), trainable=False)


@train_rule(L.Embedding)
def _embedding(layer: L.Embedding, shape: Shape, name: str, path: str, x: Ref,
               tr: Train) -> Step:
    """A lookup: no input gradient (token ids); the weight's gradient adds each token's
    output gradient into its row (``embedding_dense_backward``), from the ids it keeps
    (int64)."""
    fwd = layer._cost(shape, name)
    trainable = not tr.is_frozen(path)
    if not trainable:
        return no_grad(layer, shape, name, tr, fwd)
    d = F.embedding_backward_derivation(x.numel, layer.embedding_dim)
    return leaf_step(layer, shape, name, tr, fwd, grads={"grad_weight": d},
                     saved=[tr.saved(path, "indices", x, "index")],
                     out=tr.new(numel(fwd.output_shape), True), trainable=True,
                     weights=[(layer.num_embeddings, layer.embedding_dim)])
