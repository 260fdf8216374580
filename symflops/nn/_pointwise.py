"""Pointwise layers (:mod:`symflops.formulas.pointwise`): activations, GLU, softmax,
dropout, and the free Identity and Flatten.

>>> ReLU().cost(("B", 8)).flops
8*B
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.pointwise import (
    ACTIVATION_RATES,
    activation_derivation,
    glu_derivation,
    softmax_derivation,
)
from symflops.nn._base import (
    Example,
    Layer,
    Shape,
    check_dim,
    dim_index,
    divides_condition,
    numel,
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
    H,
    M,
    N,
    W,
    dim,
)

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
           "Hardsigmoid", "GLU", "Softmax", "Dropout", "Identity", "Flatten", "ACTIVATION_SAVES",
           "dropout_probability"]


# ----------------------------------------------------------------------------- pointwise
#: what each activation's autograd node keeps: its input or its output
ACTIVATION_SAVES = {"relu": "output", "sigmoid": "output", "tanh": "output",
                    "relu6": "input", "leaky_relu": "input", "silu": "input", "gelu": "input",
                    "gelu_tanh": "input", "hardswish": "input", "hardsigmoid": "input"}


class _Activation(Layer):
    activation = "relu"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _cost(self, shape: Shape, name: str) -> Cost:
        return self._leaf(name, shape, shape, activation_derivation(self.activation, numel(shape)))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                    tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        out = tr.new(x.numel, True)
        keeps = ACTIVATION_SAVES[self.activation]
        saved = [tr.saved(path, keeps, x if keeps == "input" else out)]
        grads = {"grad_input": F.pointwise.activation_grad_derivation(self.activation, x.numel)}
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                         trainable=False)


class ReLU(_Activation):
    """``torch.nn.ReLU``: one compare per element."""

    example = Example("ReLU()", lambda: ReLU(), (B, C, H, W))

    activation = "relu"


class ReLU6(_Activation):
    """``torch.nn.ReLU6``: two compares per element."""

    example = Example("ReLU6()", lambda: ReLU6(), (B, C, H, W))

    activation = "relu6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU``: compare and multiply."""

    example = Example("LeakyReLU()", lambda: LeakyReLU(), (B, C, H, W))

    activation = "leaky_relu"


class GELU(_Activation):
    """``torch.nn.GELU(approximate="none" | "tanh")``."""

    example = Example(
        "GELU()", lambda: GELU(), (B, C, H, W),
        "GELU(approximate='tanh') costs " f"{ACTIVATION_RATES['gelu_tanh'][0]} per element")

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise SymflopsError("approximate must be 'none' or 'tanh'", layer="GELU",
                                values={"approximate": approximate},
                                fix="use approximate='none' or 'tanh'")
        self.approximate = approximate
        self.activation = "gelu" if approximate == "none" else "gelu_tanh"

    def spec(self) -> str:
        return "GELU()" if self.approximate == "none" else "GELU(approximate='tanh')"


class SiLU(_Activation):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``."""

    example = Example("SiLU()", lambda: SiLU(), (B, C, H, W))

    activation = "silu"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``."""

    example = Example("Sigmoid()", lambda: Sigmoid(), (B, C, H, W))

    activation = "sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh``."""

    example = Example("Tanh()", lambda: Tanh(), (B, C, H, W))

    activation = "tanh"


class Hardswish(_Activation):
    """``torch.nn.Hardswish``."""

    example = Example("Hardswish()", lambda: Hardswish(), (B, C, H, W))

    activation = "hardswish"


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid``."""

    example = Example("Hardsigmoid()", lambda: Hardsigmoid(), (B, C, H, W))

    activation = "hardsigmoid"


class GLU(Layer):
    """``torch.nn.GLU(dim=-1)``: ``a * sigmoid(b)`` of the two halves of ``dim``; 4 per
    output element (sigmoid 3, multiply 1).

    >>> GLU().cost(("B", "N", 8)).flops
    16*B*N
    """

    example = Example(
        "GLU(dim=-1)", lambda: GLU(-1), (B, N, 2 * dim),
        "a * sigmoid(b) of the two halves a, b of the last dim")

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim(dim, "GLU")

    def spec(self) -> str:
        return f"GLU(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        i = dim_index(self.dim, shape, self.spec())
        n = shape[i]
        if n.is_number and n % 2 != 0:
            raise SymflopsError("the split dim must have an even size", layer=self.spec(),
                                values={"input_shape": shape},
                                fix=f"pass an input whose dim {self.dim} is even")
        validity = divides_condition(sp.Integer(2), n)
        out = tuple(shape[:i]) + (n / 2,) + tuple(shape[i + 1:])
        return self._leaf(name, shape, out, glu_derivation(numel(out)), validity=validity)

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """``aten.glu`` keeps its input; ``glu_backward`` costs 8 per output element
        (:func:`symflops.formulas.pointwise.glu_grad_derivation`)."""
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        outs = numel(fwd.output_shape)
        return leaf_step(self, shape, name, tr, fwd,
                         grads={"grad_input": F.pointwise.glu_grad_derivation(outs)},
                         saved=[tr.saved(path, "input", x)], out=tr.new(outs, True),
                         trainable=False)


class Softmax(Layer):
    """``torch.nn.Softmax(dim)``: ``5 n - 2`` per row of ``n``."""

    example = Example("Softmax(dim=-1)", lambda: Softmax(-1), (M, N))

    def __init__(self, dim: int = -1) -> None:
        self.dim = check_dim(dim, "Softmax")

    def spec(self) -> str:
        return f"Softmax(dim={self.dim})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        n = shape[dim_index(self.dim, shape, self.spec())]
        return self._leaf(name, shape, shape, softmax_derivation(numel(shape) / n, n))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                 tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if not x.grad:
            return no_grad(self, shape, name, tr, fwd)
        n = shape[self.dim % len(shape)]
        out = tr.new(x.numel, True)
        grads = {"grad_input": F.pointwise.softmax_grad_derivation(x.numel / n, n)}
        return leaf_step(self, shape, name, tr, fwd, grads=grads,
                         saved=[tr.saved(path, "output", out)], out=out, trainable=False)


class _Free(Layer):
    """A layer that moves or keeps data and does no arithmetic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _out(self, shape: Shape) -> Shape:
        return shape

    def _cost(self, shape: Shape, name: str) -> Cost:
        return Cost(name, type(self).__name__, spec=self.spec(), params=0, work={},
                    input_shape=shape, output_shape=self._out(shape),
                    derivation=Derivation({}, sp.Integer(0), {}, "no arithmetic"))

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """A view: no arithmetic, the output is the input's storage."""
        return Step(self._cost(shape, name).replace(memory=tr.mem(0, 0, ())), x)


class Dropout(_Free):
    """``torch.nn.Dropout``: free at inference.

    In training (``mode="train"``): 3 per element and a 1-byte mask saved for backward.
    """

    example = Example("Dropout(p)", lambda: Dropout(), (B, C, H, W), "free at inference")

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        self.p = dropout_probability(p, "Dropout")

    def spec(self) -> str:
        return f"Dropout(p={self.p})"

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
                 tr: Train) -> Step:
        fwd = self._cost(shape, name)
        if self.p == 0:  # torch returns the input itself
            return Step(fwd.replace(memory=tr.mem(0, 0, ())), x)
        train_fwd = Cost.from_derivation("forward", "Dropout",
                                         F.pointwise.dropout_derivation(x.numel),
                                         spec=self.spec(), input_shape=shape, output_shape=shape)
        if not x.grad:
            return no_grad(self, shape, name, tr, train_fwd)
        grads = {"grad_input": F.pointwise.dropout_grad_derivation(x.numel)}
        return leaf_step(self, shape, name, tr, train_fwd, grads=grads,
                         saved=[tr.saved(path, "mask", x.numel, "mask")],
                         out=tr.new(x.numel, True), trainable=False)


def dropout_probability(p: Any, layer: str) -> float:
    """A dropout probability: a number in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise SymflopsError("dropout must be a probability in [0, 1]", layer=layer,
                            values={"p": repr(p)}, fix="pass e.g. 0.1")
    return float(p)


class Identity(_Free):
    """``torch.nn.Identity``."""

    example = Example("Identity()", lambda: Identity(), (B, C, H, W))


class Flatten(_Free):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    example = Example("Flatten()", lambda: Flatten(), (B, C, H, W))

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = check_dim(start_dim, "Flatten", "start_dim")
        self.end_dim = check_dim(end_dim, "Flatten", "end_dim")

    def _out(self, shape: Shape) -> Shape:
        ndim = max(len(shape), 1)  # as torch: a 0-d input flattens like a 1-d one of size 1
        for arg, d in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -ndim <= d < ndim:
                raise SymflopsError(f"{arg} is out of range for a {len(shape)}-d input",
                                    layer=self.spec(), values={arg: d, "input_shape": shape},
                                    fix=f"use a {arg} in [{-ndim}, {ndim - 1}]")
        if not shape:
            return (sp.Integer(1),)
        s, e = self.start_dim % len(shape), self.end_dim % len(shape)
        if s > e:
            raise SymflopsError("start_dim comes after end_dim", layer="Flatten",
                                values={"start_dim": self.start_dim, "end_dim": self.end_dim,
                                        "input_shape": shape},
                                fix="use start_dim <= end_dim")
        return tuple(shape[:s]) + (numel(shape[s:e + 1]),) + tuple(shape[e + 1:])
