"""Layers that only move data (Permute, Transpose, Reshape, Select): no arithmetic.

>>> Permute(0, 2, 1).cost(("B", 3, 4)).output_shape
(B, 4, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div
from symflops.formulas.derivation import Derivation
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    check_dim,
    dim_index,
    divides_condition,
    numel,
    same_size,
    to_size,
)
from symflops.nn._train import (
    Ref,
    Step,
    Train,
)
from symflops.symbols import (
    B,
    C,
    H,
    N,
    W,
    dim,
)

__all__ = ["Permute", "Transpose", "Reshape", "Select", "moved"]


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

    example = Example(
        "Permute(0, 2, 3, 1)", lambda: Permute(0, 2, 3, 1), (B, C, H, W), "data movement")

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

    example = Example("Transpose(1, 2)", lambda: Transpose(1, 2), (B, dim, N), "data movement")

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

    example = Example("Reshape(B, -1, C)", lambda: Reshape(B, -1, C), (B, C, H, W), "data movement")

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

    example = Example("Select(1, 0)", lambda: Select(1, 0), (B, N, dim), "x[:, 0]: data movement")

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
