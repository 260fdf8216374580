"""``torch.nn.Linear``: the linear family (:mod:`symflops.formulas.linear`).

>>> Linear(8, 4).cost(("B", 8)).flops
64*B
"""

from __future__ import annotations

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.linear import linear_derivation
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
)
from symflops.symbols import (
    I,
    M,
    O,
)

__all__ = ["Linear"]


class Linear(Layer):
    """``torch.nn.Linear`` on ``(..., in_features)``.

    >>> Linear(4096, 1000).cost(("B", 4096)).params
    4097000
    """

    example = Example(
        "Linear(I, O)", lambda: Linear(I, O), (M, I),
        "M rows: every leading dimension of the input multiplied together")

    def __init__(self, in_features: SizeLike, out_features: SizeLike, bias: bool = True) -> None:
        self.in_features = to_size(in_features, "Linear", "in_features")
        self.out_features = to_size(out_features, "Linear", "out_features")
        self.bias = bool(bias)

    def spec(self) -> str:
        b = "" if self.bias else ", bias=False"
        return f"Linear({self.in_features}, {self.out_features}{b})"

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not shape:
            raise SymflopsError("expects at least a 1-d input (..., in_features)",
                                layer=self.spec(), values={"input_shape": shape},
                                fix=f"pass a shape like (B, {self.in_features})")
        self._check_channels(shape, shape[-1], self.in_features, "features")
        d = linear_derivation(numel(shape[:-1]), self.in_features, self.out_features,
                              self.bias)
        return self._leaf(name, shape, shape[:-1] + (self.out_features,), d)

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        fwd = self._cost(shape, name)
        trainable = not tr.is_frozen(path)
        rows = numel(shape[:-1])
        grads = F.linear.linear_grad_derivations(rows, self.in_features, self.out_features,
                                              self.bias, input_grad=x.grad,
                                              weight_grad=trainable)
        # AddmmBackward keeps the input for the weight's gradient (the weight, for the
        # input's, is a parameter)
        saved = [tr.saved(path, "input", x)] if trainable else []
        out = tr.new(numel(fwd.output_shape), x.grad or trainable)
        weights = [(self.out_features, self.in_features)] + \
            ([(self.out_features,)] if self.bias else [])
        # tensor parallelism (Megatron) splits the weight; the bias too when the layer is
        # column-parallel, not when it is row-parallel (its input in the "tensor" region)
        split = self.out_features * self.in_features + \
            (self.out_features if self.bias and tr.region != "tensor" else 0)
        return leaf_step(self, shape, name, tr, fwd, grads=grads, saved=saved, out=out,
                         trainable=trainable, weights=weights, sharded=split)
