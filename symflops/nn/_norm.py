"""Normalization layers (:mod:`symflops.formulas.norm`): BatchNorm, LayerNorm, GroupNorm,
RMSNorm, and their train rules.

>>> LayerNorm(8).cost(("B", 8)).params
16
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.norm import (
    batch_norm_derivation,
    group_norm_derivation,
    layer_norm_derivation,
    rms_norm_derivation,
)
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    fmt,
    numel,
    same_size,
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
    C,
    D,
    H,
    M,
    T,
    W,
    dim,
    groups,
)

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm",
           "normalized_sizes"]


# ----------------------------------------------------------------------------- norms
class _BatchNorm(Layer):
    ranks: tuple[int, ...] = (4,)
    layout = "(B, C, H, W)"

    def __init__(self, num_features: SizeLike, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 training: bool = False) -> None:
        self.num_features = to_size(num_features, type(self).__name__, "num_features")
        self.affine = bool(affine)
        self.training = bool(training) or not track_running_stats

    def spec(self) -> str:
        extra = ("" if self.affine else ", affine=False") + (", training" if self.training
                                                             else "")
        return f"{type(self).__name__}({self.num_features}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, self.ranks, self.layout)
        self._check_channels(shape, shape[1], self.num_features)
        d = batch_norm_derivation(numel(shape), self.num_features, training=self.training,
                                  affine=self.affine)
        return self._leaf(name, shape, shape, d)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        """In training a BatchNorm normalizes with the batch statistics, updates its running
        statistics (7 per channel) and counts the batch (``num_batches_tracked += 1``)."""
        self._check_rank(shape, self.ranks, self.layout)
        self._check_channels(shape, shape[1], self.num_features)
        c = self.num_features
        d = F.norm.batch_norm_derivation(numel(shape), c, training=True, affine=self.affine)
        fwd = Cost("forward", self.layer_type(), spec=self.spec(), input_shape=shape,
                   output_shape=shape, children=[
                       self._leaf("normalize", shape, shape, d),
                       Cost.from_derivation("running_stats", "BatchNormStats",
                                            F.norm.running_stats_derivation(c),
                                            spec="running statistics"),
                       Cost.from_derivation("num_batches_tracked", "Add",
                                            F.pointwise.elementwise_derivation(
                                                1, 1, "num_batches_tracked += 1: one add"),
                                            spec="num_batches_tracked")])
        return _norm(self, shape, name, path, x, tr, affine=self.affine, stats=[c, c],
                     grads=lambda m: F.norm.batch_norm_grad_derivations(
                         numel(shape), c, training=True, weight=self.affine, output_mask=m),
                     fwd=fwd)


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d`` on ``(B, C)`` or ``(B, C, T)``; inference by default."""

    example = Example(
        "BatchNorm1d(C)", lambda: BatchNorm1d(C), (B, C, T),
        "inference (folded); training=True counts the batch statistics")

    ranks = (2, 3)
    layout = "(B, C) or (B, C, T)"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d``; inference (folded, ``2 C H W`` per image) by default,
    ``training=True`` counts the batch statistics."""

    example = Example(
        "BatchNorm2d(C)", lambda: BatchNorm2d(C), (B, C, H, W),
        "inference (folded); training=True counts the batch statistics")

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """``torch.nn.BatchNorm3d``."""

    example = Example(
        "BatchNorm3d(C)", lambda: BatchNorm3d(C), (B, C, D, H, W),
        "inference (folded); training=True counts the batch statistics")

    ranks = (5,)
    layout = "(B, C, D, H, W)"


def normalized_sizes(value: Any, layer: str) -> Shape:
    """``normalized_shape`` of a LayerNorm or RMSNorm: one size or a non-empty tuple."""
    sizes = value if isinstance(value, (tuple, list)) else (value,)
    if not sizes:
        raise SymflopsError("normalized_shape needs at least one size", layer=layer,
                            values={"normalized_shape": repr(value)},
                            fix="pass the trailing size(s) to normalize, e.g. dim or (H, W)")
    return tuple(to_size(v, layer, "normalized_shape") for v in sizes)


class LayerNorm(Layer):
    """``torch.nn.LayerNorm`` over the trailing ``normalized_shape``."""

    example = Example("LayerNorm(dim)", lambda: LayerNorm(dim), (M, dim))

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        self.normalized_shape = normalized_sizes(normalized_shape, "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        extra += "" if self.bias else ", bias=False"
        return f"LayerNorm({fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(same_size(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {fmt(self.normalized_shape)})")
        d = layer_norm_derivation(numel(shape[:-k]), numel(self.normalized_shape),
                                  affine=self.elementwise_affine, bias=self.bias)
        return self._leaf(name, shape, shape, d)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        k = len(self.normalized_shape)
        rows, n = numel(shape[:-k]), numel(self.normalized_shape)
        affine = self.elementwise_affine
        # native_layer_norm keeps the input, the per-row mean and rstd (and its parameters)
        return _norm(self, shape, name, path, x, tr, affine=affine, stats=[rows, rows],
                     grads=lambda m: F.norm.layer_norm_grad_derivations(
                         rows, n, weight=affine, bias=affine and self.bias, output_mask=m))


class GroupNorm(Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels)`` on ``(B, C, *)``."""

    example = Example("GroupNorm(g, C)", lambda: GroupNorm(groups, C), (B, C, H, W))

    def __init__(self, num_groups: SizeLike, num_channels: SizeLike, eps: float = 1e-5,
                 affine: bool = True) -> None:
        self.num_groups = to_size(num_groups, "GroupNorm", "num_groups")
        self.num_channels = to_size(num_channels, "GroupNorm", "num_channels")
        self.affine = bool(affine)
        if self.num_groups.is_number and self.num_channels.is_number and \
                self.num_channels % self.num_groups != 0:
            raise SymflopsError("num_groups must divide num_channels", layer="GroupNorm",
                                values={"num_groups": num_groups, "num_channels": num_channels},
                                fix="choose num_groups among the divisors of num_channels")

    def spec(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}" + \
            ("" if self.affine else ", affine=False") + ")"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if len(shape) < 2:
            raise SymflopsError("expects (B, C, *)", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.num_channels}, H, W)")
        self._check_channels(shape, shape[1], self.num_channels)
        d = group_norm_derivation(shape[0], self.num_groups, self.num_channels,
                                  numel(shape[2:]), affine=self.affine)
        return self._leaf(name, shape, shape, d,
                          validity=divides_condition(self.num_groups, self.num_channels))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        batch, groups = shape[0], self.num_groups
        # native_group_norm keeps the input, the per-group mean and rstd
        return _norm(self, shape, name, path, x, tr, affine=self.affine,
                     stats=[batch * groups, batch * groups],
                     grads=lambda m: F.norm.group_norm_grad_derivations(
                         batch, groups, self.num_channels, numel(shape[2:]),
                         weight=self.affine, output_mask=m))


class RMSNorm(Layer):
    """``torch.nn.RMSNorm`` over the trailing ``normalized_shape`` (weight only)."""

    example = Example("RMSNorm(dim)", lambda: RMSNorm(dim), (M, dim))

    def __init__(self, normalized_shape: Any, eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        self.normalized_shape = normalized_sizes(normalized_shape, "RMSNorm")
        self.elementwise_affine = bool(elementwise_affine)

    def spec(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"RMSNorm({fmt(self.normalized_shape)}{extra})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        k = len(self.normalized_shape)
        if len(shape) < k or not all(same_size(a, b) for a, b in
                                     zip(shape[-k:], self.normalized_shape, strict=True)):
            raise SymflopsError("input does not end in normalized_shape", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass (..., {fmt(self.normalized_shape)})")
        d = rms_norm_derivation(numel(shape[:-k]), numel(self.normalized_shape),
                                affine=self.elementwise_affine)
        return self._leaf(name, shape, shape, d)

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                  tr: Train) -> Step:
        k = len(self.normalized_shape)
        rows, n = numel(shape[:-k]), numel(self.normalized_shape)
        affine = self.elementwise_affine
        # _fused_rms_norm keeps the input and the per-row rstd
        return _norm(self, shape, name, path, x, tr, affine=affine, stats=[rows],
                     grads=lambda m: F.norm.rms_norm_grad_derivations(
                         rows, n, weight=affine, output_mask=(m[0], m[1])))


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
