"""Bad input raises one error type, ``SymflopsError``, naming the layer, the values and a
fix; nothing is silently clamped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import symflops as sf
from symflops import nn
from symflops.errors import SymflopsError
from symflops.symbols import B, C_in, C_out, H, K, W, dim, heads


def _conv_cost() -> sf.Cost:
    return nn.Conv2d(C_in, C_out, K).cost((B, C_in, H, W))


def _attn_cost() -> sf.Cost:
    return nn.MultiheadAttention(dim, heads).cost((B, "N", dim))


# (id, action, the layer the message names, value names it shows)
CASES: list[tuple[str, Callable[[], Any], str, tuple[str, ...]]] = [
    ("zero-channels", lambda: nn.Conv2d(0, 8, 3), "Conv2d", ("in_channels",)),
    ("negative-channels", lambda: nn.Conv2d(3, -8, 3), "Conv2d", ("out_channels",)),
    ("zero-features", lambda: nn.Linear(4, 0), "Linear", ("out_features",)),
    ("bool-size", lambda: nn.Linear(True, 4), "Linear", ("in_features",)),
    ("groups-in", lambda: nn.Conv2d(6, 8, 3, groups=4), "Conv2d", ("in_channels", "groups")),
    ("groups-out", lambda: nn.Conv2d(4, 6, 3, groups=4), "Conv2d", ("out_channels", "groups")),
    ("groupnorm-groups", lambda: nn.GroupNorm(3, 8), "GroupNorm",
     ("num_groups", "num_channels")),
    ("kernel-larger-than-input", lambda: nn.Conv2d(3, 8, 5).cost((1, 3, 4, 4)), "Conv2d",
     ("input_shape",)),
    ("kernel-larger-than-padded-input",
     lambda: nn.Conv2d(3, 8, 7, padding=1).cost((1, 3, 4, 10)), "Conv2d", ("input_shape",)),
    ("pool-window-larger", lambda: nn.MaxPool2d(5).cost((1, 3, 4, 8)), "MaxPool2d",
     ("input_shape",)),
    ("dilated-kernel-larger", lambda: nn.Conv1d(1, 1, 3, dilation=3).cost((1, 1, 6)), "Conv1d",
     ("input_shape",)),
    ("wrong-rank-conv", lambda: nn.Conv2d(3, 8, 3).cost((1, 1, 3, 8, 8)), "Conv2d",
     ("input_shape",)),
    ("wrong-rank-batchnorm", lambda: nn.BatchNorm2d(3).cost((1, 3, 8)), "BatchNorm2d",
     ("input_shape",)),
    ("wrong-channels", lambda: nn.Conv2d(3, 8, 3).cost((1, 4, 8, 8)), "Conv2d",
     ("input_shape",)),
    ("linear-features", lambda: nn.Linear(4, 8).cost((2, 5)), "Linear", ("input_shape",)),
    ("heads-not-dividing-dim", lambda: nn.MultiheadAttention(10, 3), "MultiheadAttention",
     ("embed_dim", "num_heads")),
    ("kv-heads-not-dividing-heads", lambda: nn.MultiheadAttention(8, 4, kv_heads=3),
     "MultiheadAttention", ("num_heads", "kv_heads")),
    ("repeat-shape-changing", lambda: nn.Repeat(nn.Linear(4, 8), 3).cost((1, 4)), "Repeat",
     ("input", "output")),
    ("residual-mismatch",
     lambda: nn.Residual(nn.Conv2d(3, 8, 3, padding=1)).cost((1, 3, 8, 8)), "Residual",
     ("body", "shortcut")),
    ("subs-zero", lambda: _conv_cost().subs(H=0), "Conv2d", ("H",)),
    ("subs-negative", lambda: _conv_cost().subs({W: -3}), "Conv2d", ("W",)),
    ("subs-fraction", lambda: _conv_cost().subs(H=sf.symbols.sp.Rational(1, 2)), "Conv2d",
     ("H",)),
    ("subs-kernel-larger", lambda: _conv_cost().subs(K=5, H=3), "Conv2d", ("K", "H")),
    ("subs-kernel-larger-two-steps", lambda: _conv_cost().subs(K=5).subs(H=3, W=9), "Conv2d",
     ("H",)),
    ("subs-heads-not-dividing", lambda: _attn_cost().subs(dim=10, heads=4),
     "MultiheadAttention", ("dim", "heads")),
    ("subs-string", lambda: _conv_cost().subs(H="224"), "Conv2d", ("H",)),
    ("subs-string-expression", lambda: _conv_cost().subs(H="__import__('os')"), "Conv2d",
     ("H",)),
    ("evaluate-kernel-larger",
     lambda: _conv_cost().evaluate(B=1, C_in=1, C_out=1, K=3, H=np.array([8, 2]), W=8),
     "Conv2d", ("H", "K")),
    ("evaluate-missing", lambda: _conv_cost().evaluate(B=1, H=8), "Conv2d", ("missing",)),
    ("evaluate-beyond-int64",
     lambda: nn.Linear(8, 8).cost((B, 8)).evaluate(B=np.array([2**60])), "Linear", ("max",)),
    ("bad-symbol-name", lambda: nn.Linear("H W", 4), "Linear", ("in_features",)),
    ("bad-symbol-in-shape", lambda: nn.Linear(4, 4).cost(("B", "2*H")), "Linear",
     ("input_shape",)),
    ("unknown-convention", lambda: _conv_cost().with_convention("flopz"), "Convention",
     ("convention",)),
]


@pytest.mark.parametrize("action,layer,names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_layer_values_and_fix(action: Callable[[], Any], layer: str,
                                          names: tuple[str, ...]) -> None:
    with pytest.raises(SymflopsError) as info:
        action()
    e = info.value
    text = str(e)
    assert e.layer and layer in e.layer and text.startswith(e.layer), text
    for name in names:
        assert name in e.values, (name, e.values)
        assert f"{name}=" in text
    assert e.fix and f"fix: {e.fix}" in text, text
    assert isinstance(e, ValueError)  # usable where a ValueError is expected


def test_nothing_clamped_output_sizes() -> None:
    # a concrete input exactly as large as the kernel gives 1, one smaller raises (above)
    c = nn.Conv2d(3, 8, 5).cost((1, 3, 5, 5))
    assert c.output_shape == (1, 8, 1, 1)
    # symbolic sizes keep the exact floor and carry the condition instead of clamping
    s = nn.Conv2d(3, 8, 5, stride=2).cost((1, 3, H, W))
    assert str(s.output_shape[2]) == "floor(H/2 - 5/2) + 1"
    assert any("H" in str(v) for v in s.validity)


def test_error_inside_sequential_names_the_path() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Conv2d(8, 8, 3), nn.MaxPool2d(9)))
    with pytest.raises(SymflopsError) as info:
        net.cost((1, 3, 12, 12))
    assert "at 1.1" in str(info.value) and "MaxPool2d" in str(info.value)


def test_import_does_not_import_torch() -> None:
    code = "import symflops, sys; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
