"""Bad input to ``sf.nn`` layers (issue 13, layer side): each class of mistake is ONE
one-line ``SymflopsError`` naming the layer, the values and the fix; input that is valid
(a shape written as a string, numpy ints, ``sympy.Integer`` arguments) gives the exact
result of the equivalent plain input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops import nn
from symflops.symbols import B, H, W

#: id -> (action, layer named, value names, text the fix must contain)
REFUSED: dict[str, tuple[Callable[[], Any], str, tuple[str, ...], str]] = {
    "layernorm-empty-tuple": (lambda: nn.LayerNorm(()), "LayerNorm", ("normalized_shape",),
                              "trailing size"),
    "rmsnorm-empty-list": (lambda: nn.RMSNorm([]), "RMSNorm", ("normalized_shape",),
                           "trailing size"),
    "softmax-dim-is-a-name": (lambda: nn.Softmax(dim="x"), "Softmax", ("dim",), "int"),
    "softmax-dim-is-a-bool": (lambda: nn.Softmax(dim=True), "Softmax", ("dim",), "int"),
    "glu-dim-is-a-float": (lambda: nn.GLU(dim=1.5), "GLU", ("dim",), "int"),
    "flatten-0d-input": (lambda: nn.Flatten().cost(()), "Flatten", ("start_dim",),
                         "[-1, 0]"),
    # torch: "Dimension out of range (expected to be in range of [-4, 3], but got 4)"
    "flatten-start-dim-past-4d": (lambda: nn.Flatten(start_dim=4).cost((1, 2, 3, 4)),
                                  "Flatten", ("start_dim", "input_shape"), "[-4, 3]"),
    "flatten-end-dim-before-4d": (lambda: nn.Flatten(end_dim=-5).cost((1, 2, 3, 4)),
                                  "Flatten", ("end_dim",), "[-4, 3]"),
    "flatten-start-dim-a-name": (lambda: nn.Flatten(start_dim="1"), "Flatten",
                                 ("start_dim",), "int"),
    "repeat-of-a-torch-module": (lambda: nn.Repeat(_torch_linear(), 3), "Repeat", ("block",),
                                 "sf.trace"),
    "residual-of-an-int": (lambda: nn.Residual(3), "Residual", ("body",), "sf.nn layers"),
    "residual-shortcut-not-a-layer": (lambda: nn.Residual(nn.ReLU(), shortcut="x"),
                                      "Residual", ("shortcut",), "sf.nn layers"),
    "sequential-of-a-string": (lambda: nn.Sequential(nn.ReLU(), "relu"), "Sequential", ("1",),
                               "sf.nn layers"),
    "unassumed-symbol-argument": (lambda: nn.Linear(sp.Symbol("x"), 4), "Linear",
                                  ("in_features",), "sf.symbols.symbol('x')"),
    "unassumed-H-beside-canonical-H": (
        lambda: nn.Conv2d(3, 8, 3).cost((B, 3, sp.Symbol("H"), W)), "Conv2d",
        ("input_shape",), "sf.symbols.symbol('H')"),
    "real-symbol-in-expression": (
        lambda: nn.Linear(4, 4).cost((2 * sp.Symbol("n", positive=True), 4)), "Linear",
        ("input_shape",), "sf.symbols.symbol('n')"),
    "sympy-float-size": (lambda: nn.Linear(sp.Float(224), 4), "Linear", ("in_features",),
                         "in_features=224"),
    "sympy-float-in-shape": (lambda: nn.Linear(4, 4).cost((B, sp.Float(4.0))), "Linear",
                             ("input_shape",), "input_shape=4"),
    "python-float-size": (lambda: nn.Conv2d(3.0, 8, 3), "Conv2d", ("in_channels",), "an int"),
    "nan-size": (lambda: nn.Linear(sp.nan, 4), "Linear", ("in_features",), "an int >= 1"),
    "infinite-size": (lambda: nn.Linear(4, sp.oo), "Linear", ("out_features",),
                      "an int >= 1"),
    "numpy-nan-size": (lambda: nn.Linear(np.float64("nan"), 4), "Linear", ("in_features",),
                       "an int"),
    "bool-size": (lambda: nn.Linear(True, 4), "Linear", ("in_features",), "an int >= 1"),
    "numpy-bool-size": (lambda: nn.Linear(np.bool_(True), 4), "Linear", ("in_features",),
                        "an int >= 1"),
    "bool-in-shape": (lambda: nn.Linear(4, 4).cost((True, 4)), "Linear", ("input_shape",),
                      "an int >= 1"),
    "negative-padding-sympy": (lambda: nn.Conv2d(3, 8, 3, padding=sp.Integer(-1)), "Conv2d",
                               ("padding",), "padding >= 0"),
    "fraction-size": (lambda: nn.Linear(sp.Rational(3, 2), 4), "Linear", ("in_features",),
                      "in_features >= 1"),
    "expression-in-shape-string": (lambda: nn.Conv2d(3, 8, 3).cost("B 3 2*H W"), "Conv2d",
                                   ("input_shape",), "letters, digits"),
    "glu-odd-split": (lambda: nn.GLU().cost((2, 5)), "GLU", ("input_shape",), "even"),
    "pixel-shuffle-channels": (lambda: nn.PixelShuffle(2).cost((1, 6, 2, 2)), "PixelShuffle",
                               ("input_shape",), "multiple of 4"),
    "pixel-unshuffle-height": (lambda: nn.PixelUnshuffle(2).cost((1, 1, 3, 4)),
                               "PixelUnshuffle", ("input_shape",), "multiple of 2"),
    "upsample-size-and-scale": (lambda: nn.Upsample(size=4, scale_factor=2), "Upsample",
                                ("size", "scale_factor"), "size="),
    "upsample-inexact-scale": (lambda: nn.Upsample(scale_factor=1.1), "Upsample",
                               ("scale_factor",), "size="),
    "upsample-unknown-mode": (lambda: nn.Upsample(scale_factor=2, mode="area"), "Upsample",
                              ("mode",), "bilinear"),
    "upsample-bilinear-on-3d": (lambda: nn.Upsample(scale_factor=2, mode="bilinear").cost(
        (1, 2, 5)), "Upsample", ("input_shape",), "spatial dims"),
    "adaptive-pool-float-output": (lambda: nn.AdaptiveAvgPool2d(1.0), "AdaptiveAvgPool2d",
                                   ("output_size",), "int"),
}


def _torch_linear() -> Any:
    torch = pytest.importorskip("torch")
    return torch.nn.Linear(2, 2)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_line_naming_layer_values_and_fix(case: str) -> None:
    action, layer, names, fix = REFUSED[case]
    with pytest.raises(sf.SymflopsError) as info:
        action()
    e = info.value
    text = str(e)
    assert "\n" not in text
    assert e.layer and e.layer.startswith(layer) and text.startswith(e.layer), text
    for name in names:
        assert name in e.values and f"{name}=" in text, (name, text)
    assert e.fix and fix in e.fix and text.endswith(f"fix: {e.fix}"), text


def _ints(*xs: int) -> tuple[np.int64, ...]:
    return tuple(np.int64(x) for x in xs)


#: id -> (valid but unusual input, the same layer and input written plainly)
ACCEPTED: dict[str, tuple[Callable[[], sf.Cost], Callable[[], sf.Cost]]] = {
    # the form Layer.cost documents: names and integers separated by spaces
    "shape-as-a-string": (lambda: nn.Conv2d(3, 8, 3).cost("B 3 H W"),
                          lambda: nn.Conv2d(3, 8, 3).cost((B, 3, H, W))),
    "numpy-ints-in-arguments": (
        lambda: nn.Conv2d(*_ints(3, 8, 3), stride=np.int64(2), padding=np.int64(1),
                          groups=np.int64(1)).cost((B, 3, H, W)),
        lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1).cost((B, 3, H, W))),
    "numpy-ints-in-the-shape": (lambda: nn.Linear(8, 4).cost(_ints(2, 5, 8)),
                                lambda: nn.Linear(8, 4).cost((2, 5, 8))),
    "numpy-int-output-size": (lambda: nn.AdaptiveAvgPool2d(np.int64(1)).cost((B, 3, H, W)),
                              lambda: nn.AdaptiveAvgPool2d(1).cost((B, 3, H, W))),
    "sympy-integer-zero-padding": (
        lambda: nn.Conv2d(3, 8, 3, padding=sp.Integer(0)).cost((B, 3, H, W)),
        lambda: nn.Conv2d(3, 8, 3, padding=0).cost((B, 3, H, W))),
    "sympy-integer-sizes": (lambda: nn.Linear(sp.Integer(8), sp.Integer(4)).cost((B, 8)),
                            lambda: nn.Linear(8, 4).cost((B, 8))),
    "assumed-symbol-equals-canonical": (
        lambda: nn.Linear(4, 4).cost((sp.Symbol("B", integer=True, positive=True), 4)),
        lambda: nn.Linear(4, 4).cost((B, 4))),
    "numpy-int-softmax-dim": (lambda: nn.Softmax(dim=np.int64(1)).cost((B, 3, H)),
                              lambda: nn.Softmax(dim=1).cost((B, 3, H))),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_valid_input_gives_the_exact_result(case: str) -> None:
    unusual, plain = (f() for f in ACCEPTED[case])
    assert unusual.flops == plain.flops and unusual.params == plain.params
    assert unusual.output_shape == plain.output_shape
    assert unusual.work == plain.work


def test_shape_string_hand_count() -> None:
    # Conv2d(3, 8, 3) on "B 3 H W": each of B*8*(H-2)*(W-2) outputs is a length-27 dot
    # product (27 multiplies, 26 adds) and a bias add: 54 per output.
    c = nn.Conv2d(3, 8, 3).cost("B 3 H W")
    assert sp.expand(c.flops - 54 * 8 * B * (H - 2) * (W - 2)) == 0
    assert c.output_shape == (B, 8, H - 2, W - 2)


def test_flatten_of_a_0d_input_is_torchs() -> None:
    torch = pytest.importorskip("torch")
    # torch.flatten of a 0-d tensor over dims 0..-1 gives shape (1,)
    want = tuple(torch.nn.Flatten(0, -1)(torch.zeros(())).shape)
    assert tuple(int(s) for s in nn.Flatten(0, -1).cost(()).output_shape) == want
