"""Issue 13, numbers: every class of bad input to evaluation, the parser and conventions
gets ONE one-line SymflopsError naming what, the values and the fix, or an exact result.

Each case is (id, action, what the message names, the values it names, a word of the fix).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops import analysis as A
from symflops import nn
from symflops.conventions import Convention
from symflops.errors import SymflopsError
from symflops.evaluate import MAX_GRID_POINTS, compile_expr
from symflops.parse import parse_assignments, parse_dims, parse_expr, parse_range
from symflops.symbols import B, H, N, T, W, dim, heads

ROOT = Path(__file__).resolve().parents[1]
I_, O_ = sf.symbols.I, sf.symbols.O
P = sp.Symbol("p", integer=True, nonnegative=True)  # a padding: may be 0


def linear() -> sf.Cost:
    return nn.Linear(8, 4).cost((B, 8))  # flops 2*8*4*B = 64 B, params 36


def conv() -> sf.Cost:
    return nn.Conv2d(3, 8, 3, stride=2).cost((B, 3, H, W))


def attention() -> sf.Cost:
    return nn.MultiheadAttention(dim, heads).cost((B, N, dim))


# (id, action, text the message contains, value names it shows, text in the fix)
ERRORS: list[tuple[str, Callable[[], Any], str, tuple[str, ...], str]] = [
    # -- sizes given to evaluate / sweep (every point is checked, one error, first point)
    ("evaluate-negative", lambda: linear().evaluate(B=np.array([-3])),
     "Linear(8, 4): size B must be an integer >= 1", ("B",), "positive integers"),
    ("evaluate-zero-in-array", lambda: linear().evaluate(B=np.array([4, 0, -1])),
     "size B must be an integer >= 1 (B=0, index=(1,))", ("B", "index"), "positive"),
    ("evaluate-nan", lambda: linear().evaluate(B=np.array([1.0, np.nan])),
     "(B=nan, index=(1,))", ("B",), "whole floats"),
    ("evaluate-inf", lambda: linear().evaluate(B=np.inf), "(B=inf)", ("B",), "positive"),
    ("evaluate-fractional-float", lambda: linear().evaluate(B=2.5),
     "a float must be a whole number up to 2**53", ("B",), "whole floats"),
    ("evaluate-float-beyond-2**53", lambda: linear().evaluate(B=np.array([2.0**60])),
     "whole number up to 2**53", ("B",), "positive integers"),
    ("evaluate-bool", lambda: linear().evaluate(B=True), "not bool (B=True)", ("B",),
     "positive integers"),
    ("evaluate-bool-array", lambda: linear().evaluate(B=np.array([True, False])),
     "not of dtype bool", ("B",), "int arrays"),
    ("evaluate-none", lambda: linear().evaluate(B=None), "(B=None)", ("B",), "positive"),
    ("evaluate-string", lambda: linear().evaluate(B="224"), "not str (B='224')", ("B",),
     "ints"),
    ("evaluate-object-junk", lambda: linear().evaluate(B=np.array([2, object()])),
     "index=(1,)", ("B", "index"), "positive"),
    ("evaluate-sympy-float-fraction", lambda: linear().evaluate(B=sp.Float(1.5)),
     "(B=1.5", ("B",), "positive"),
    ("evaluate-complex", lambda: linear().evaluate(B=np.array([1 + 2j])),
     "not of dtype complex128", ("B",), "positive"),
    ("evaluate-ragged", lambda: linear().evaluate(B=[[1, 2], [3]]), "not a ragged list",
     ("B",), "positive"),
    ("evaluate-shapes-do-not-broadcast",
     lambda: conv().evaluate(B=1, H=np.arange(8, 11), W=np.arange(8, 12)),
     "shapes do not broadcast (B=(), H=(3,), W=(4,))", ("H", "W"), "(n, 1) and (1, m)"),
    ("evaluate-too-many-points",
     lambda: conv().evaluate(B=1, H=np.arange(8, 10**5)[:, None], W=np.arange(8, 10**5)),
     f"more than {MAX_GRID_POINTS:,} points", ("points", "shape"), "chunks"),
    ("evaluate-result-beyond-int64",
     lambda: linear().evaluate(B=np.array([1, 2**59, 2**60])),
     "flops exceeds int64 at some of the points (B=576460752303423488", ("B", "max"),
     "dtype=object"),
    ("evaluate-params-beyond-int64",
     lambda: nn.Linear(I_, O_).cost((B, I_)).evaluate("params", I=np.array([2**40]), O=2**40),
     "params exceeds int64", ("I", "O", "max"), "dtype=object"),
    ("evaluate-condition-fails-at-a-point",
     lambda: attention().evaluate(B=1, N=4, dim=np.array([64, 65]), heads=8),
     "the formula's condition", ("dim", "heads"), "multiple of heads"),
    ("evaluate-kernel-larger-than-input",
     lambda: conv().evaluate(B=1, H=np.array([9, 2]), W=9), "condition", ("H",), "larger"),
    ("expression-not-an-integer", lambda: compile_expr(H / 2, (H,))(np.array([2, 3])),
     "the value is not an integer at some of the points (H=3)", ("H",), "divide"),
    ("sweep-negative", lambda: A.sweep(conv(), {"H": [-8, 16]}, at={"B": 1, "W": 16}),
     "size H must be an integer >= 1", ("H",), "positive"),
    ("sweep-zero-resolution", lambda: A.sweep(conv(), {("H", "W"): [0, 16]}, at={"B": 1}),
     "(H=0, index=(0,))", ("H",), "positive"),
    ("sweep-of-10^5-by-10^5-points",  # refused before any memory is taken
     lambda: A.sweep(conv(), {"H": np.arange(8, 10**5 + 8), "W": np.arange(8, 10**5 + 8)},
                     at={"B": 1}),
     "a sweep of 10,000,000,000 points is over the limit", ("H", "W"), "fewer values"),
    ("expression-denominator-zero",
     lambda: compile_expr(H / P, (H, P))(np.array([4, 6]), np.array([2, 0])),
     "a denominator of the expression is zero", ("index",), "conditions"),
    # -- the parser: what a string builds is bounded as it is built
    ("parse-nested-power-of-a-sum", lambda: parse_expr("((I+1)**64)**64"),
     "more than 16 terms once expanded", (), "smaller powers"),
    ("parse-nested-powers", lambda: parse_expr("((((H**64)**64)**64)**64)"),
     "total degree above 64", (), "degree 64"),
    ("parse-power-of-a-long-sum", lambda: parse_expr("(H+W+B+C+N)**40"),
     "more than 16 terms", (), "smaller powers"),
    ("parse-huge-number", lambda: parse_expr("(10**30)**40"), "larger than 2**1024", (),
     "smaller numbers"),
    ("assignments-loop", lambda: parse_assignments("H=W,W=2*H"),
     "refer to each other in a loop (loop=H -> W -> H)", ("loop",), "a number"),
    ("assignments-resolved-too-large", lambda: parse_assignments("A=H**40,B=A*A"),
     "with the names it uses replaced, has total degree above 64", ("B",), "degree 64"),
    ("range-written-with-a-dash", lambda: parse_range("64-1024"),
     "'64-1024' is a subtraction, not a range", ("range",), "64:1024:32"),
    ("range-from-zero", lambda: parse_range("0:64:16"), "must be positive",
     ("range", "value"), "start the range at 1"),
    ("range-beyond-int64", lambda: parse_range("1:2**64:*2"), "must fit int64",
     ("range", "value"), "2**62"),
    ("range-ten-million-points", lambda: parse_range("1:10**7"), "at most 1,000,000 points",
     ("range", "points"), "larger step"),
    ("input-spec-too-many-dims", lambda: parse_dims(" ".join(["H"] * 500)),
     "at most 64 dims", ("dims",), "B 3 H W"),
    ("input-spec-zero-size", lambda: parse_dims("B 0 H W"), "sizes must be positive",
     ("size",), ">= 1"),
    # -- conventions are checked when made, not when used
    ("convention-rate-str", lambda: Convention("c1", {"bias": "1"}),
     "Convention 'c1': rates must be non-negative integers", ("bias",), "int rate"),
    ("convention-rate-none", lambda: Convention("c2", {"bias": None}), "(bias=None)",
     ("bias",), "int rate"),
    ("convention-rate-nan", lambda: Convention("c3", {"bias": float("nan")}), "(bias=nan)",
     ("bias",), "not exact"),
    ("convention-rate-float", lambda: Convention("c4", {"activation": 0.5}),
     "(activation=0.5)", ("activation",), "a float is not exact"),
    ("convention-rate-fraction", lambda: Convention("c5", {"bias": Fraction(1, 2)}),
     "rates must be non-negative integers", ("bias",), "fractional"),
    ("convention-rate-negative", lambda: Convention("c6", {"bias": -1}), "(bias=-1)",
     ("bias",), "int rate"),
    ("convention-rate-bool", lambda: Convention("c7", {"bias": True}), "(bias=True)",
     ("bias",), "int rate"),
    ("convention-unknown-kind", lambda: Convention("c8", {"flops": 1}),
     "unknown kinds of work", ("unknown",), "matmul_mul"),
    ("convention-name-none", lambda: Convention(None, {}),  # type: ignore[arg-type]
     "name must be an identifier", ("name",), "letters"),
    ("register-a-non-convention",
     lambda: sf.register_convention({"matmul_mul": 2}),  # type: ignore[arg-type]
     "only a Convention can be registered", ("given",), "Convention("),
    ("convention-rates-not-a-mapping", lambda: Convention("c9", [("bias", 1)]),  # type: ignore[arg-type]
     "rates must map kinds", ("rates",), "dict"),
]


@pytest.mark.parametrize("action, says, names, fix", [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])
def test_bad_input_is_one_clear_error(action: Callable[[], Any], says: str,
                                      names: tuple[str, ...], fix: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SymflopsError) as info:
        action()
    assert time.perf_counter() - start < 5.0  # a hang guard: every case answers at once
    e = info.value
    text = str(e)
    assert "\n" not in text, text
    assert says in text, text
    for name in names:
        assert name in e.values and f"{name}=" in text, (name, text)
    assert e.fix and fix in e.fix and text.endswith(f"; fix: {e.fix}"), text


# (id, action, the exact result)
EXACT: list[tuple[str, Callable[[], Any], Any]] = [
    # AdaptiveAvgPool1d(7) over T: windows start at floor(i T / 7) and end at
    # ceil((i + 1) T / 7); the numerators i*T reach 6 T ~ 1.4e19 > 2**63 while the
    # result (about T + 6 T / 7 ... , subs gives ...318) fits: int64, exact, not wrapped
    ("issue-adaptive-pool-near-2**61",
     lambda: nn.AdaptiveAvgPool1d(7).cost((1, 1, T)).evaluate(
         T=np.array([2376883390464973312])).tolist(),
     [int(nn.AdaptiveAvgPool1d(7).cost((1, 1, T)).subs(T=2376883390464973312).flops)]),
    # 64 B at B = 2**57 - 1 is 2**63 - 64: between 2**62 and 2**63, fits, returned
    ("result-between-2**62-and-2**63", lambda: linear().evaluate(B=2**57 - 1).item(),
     2**63 - 64),
    # a Python int beyond int64 is computed in Python ints: 64 * 10**30
    ("python-int-beyond-int64", lambda: linear().evaluate(B=10**30).item(), 64 * 10**30),
    ("object-array", lambda: linear().evaluate(B=np.array([1, 2**70], dtype=object)).tolist(),
     [64, 64 * 2**70]),
    # whole floats are those integers, the count stays exact integers
    ("whole-floats", lambda: linear().evaluate(B=np.array([1.0, 3.0])).tolist(), [64, 192]),
    ("sympy-integer", lambda: linear().evaluate(B=sp.Integer(5)).item(), 320),
    ("numpy-uint64-beyond-int64",
     lambda: linear().evaluate(B=np.array([2**63], dtype=np.uint64)).tolist(), [2**69]),
    # a dim named like numpy's own names: 3 x + x**2 at x = 4 is 28
    *[(f"dim-named-{n}",
       lambda n=n: compile_expr(3 * sf.symbols.symbol(n) + sf.symbols.symbol(n)**2,
                                (sf.symbols.symbol(n),))(4).item(), 28)
      for n in ("sum", "exp", "pi", "e", "floor", "numpy", "where", "lambda")],
    # assignments resolve names assigned in the same text: W = H = 224
    ("assignments-resolve", lambda: parse_assignments("B=1,H=224,W=H"),
     {B: 1, H: 224, W: 224}),
    # a geometric range to 2**62 holds 57 sizes: 64 = 2**6 ... 2**62
    ("range-to-2**62", lambda: parse_range("64:2**62:*2")[-1], 2**62),
    ("convention-fraction-equal-to-an-int",
     lambda: Convention("twice", {"matmul_mul": Fraction(4, 2)}).rates, {"matmul_mul": 2}),
]


@pytest.mark.parametrize("action, want", [c[1:] for c in EXACT], ids=[c[0] for c in EXACT])
def test_exact_result(action: Callable[[], Any], want: Any) -> None:
    assert action() == want


# the command line: exit 2 and one line on stderr, fast
CLI: list[tuple[str, list[str], str]] = [
    ("cli-range-with-a-dash", ["scale", "Linear", "--var", "M", "--range", "64-1024",
                               "--at", "I=8,O=8"], "64:1024:32"),
    ("cli-range-from-zero", ["scale", "Linear", "--var", "M", "--range", "0:64:16",
                             "--at", "I=8,O=8"], "start the range at 1"),
    ("cli-range-beyond-int64", ["scale", "Linear", "--var", "M", "--range", "1:2**64:*2",
                                "--at", "I=8,O=8"], "must fit int64"),
    ("cli-nested-power", ["formula", "Linear", "--at", "M=((I+1)**64)**64"],
     "more than 16 terms"),
    ("cli-nested-powers", ["formula", "Linear", "--at", "M=((((I**64)**64)**64)**64)"],
     "total degree above 64"),
    ("cli-range-result-beyond-int64", ["scale", "Linear", "--var", "M", "--range",
                                       "2**60:2**62:*2", "--at", "I=2**20,O=8"],
     "exceeds int64"),
]


@pytest.mark.parametrize("args, says", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_refuses_in_one_line(args: list[str], says: str) -> None:
    p = subprocess.run([sys.executable, "-m", "symflops", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("symflops: error")]
    assert len(lines) == 1 and says in lines[0], p.stderr


def test_an_error_is_one_line_whatever_its_values_print_as() -> None:
    e = SymflopsError("bad sizes", layer="Conv2d", values={"H": np.arange(40).reshape(4, 10),
                                                           "note": "two\nlines"},
                      fix="give\nints")
    text = str(e)
    assert "\n" not in text and text.startswith("Conv2d: bad sizes (H=[[ 0  1")
    assert text.endswith("; fix: give ints") and "note=two lines" in text
    assert "\n" not in str(e.at("0"))  # and after a container names where


# --------------------------------------------------------------------------- presets
_PRESET_BASE: dict[str, dict[str, Any]] = {
    "gpt": {"dim": 64, "heads": 4, "layers": 2, "vocab": 100, "context": 32},
    "llama": {"dim": 64, "heads": 4, "kv_heads": 2, "layers": 2, "vocab": 100, "hidden": 128},
    "mixtral": {"dim": 64, "heads": 4, "kv_heads": 2, "layers": 2, "vocab": 100,
                "hidden": 128, "experts": 4, "top_k": 2},
    "deepseek_v2": {"dim": 64, "heads": 4, "layers": 2, "vocab": 100, "kv_rank": 16,
                    "q_rank": 24, "rope_dim": 4, "head_dim": 8, "experts": 4,
                    "shared_experts": 1, "top_k": 2, "expert_hidden": 16, "dense_layers": 1,
                    "hidden": 32},
    "mobilenet_v2": {}, "resnet": {}, "swin": {}, "vit": {},
}
#: every size argument of every preset (a sequence argument: its second item is set)
_PRESET_SIZES = {
    "gpt": ["dim", "heads", "layers", "vocab", "context", "mlp_ratio"],
    "llama": ["dim", "heads", "kv_heads", "layers", "vocab", "hidden", "sliding_window"],
    "mixtral": ["dim", "heads", "kv_heads", "layers", "vocab", "hidden", "experts", "top_k",
                "sliding_window"],
    # (dense_layers may be 0: checked below)
    "deepseek_v2": ["dim", "heads", "layers", "vocab", "kv_rank", "q_rank", "rope_dim",
                    "head_dim", "experts", "shared_experts", "top_k", "expert_hidden",
                    "hidden"],
    "mobilenet_v2": ["classes", "channels", "round_nearest"],
    "resnet": ["width_per_group", "groups", "classes", "channels", "layers"],
    "swin": ["embed_dim", "window", "patch", "mlp_ratio", "classes", "channels", "depths",
             "heads"],
    "vit": ["image_size", "patch", "layers", "heads", "dim", "mlp_dim", "classes", "channels"],
}
_SEQUENCES = {("resnet", "layers"): (3, 4, 6, 3), ("swin", "depths"): (2, 2, 6, 2),
              ("swin", "heads"): (3, 6, 12, 24)}
_BAD_SIZES = [float("nan"), float("inf"), 0, -8, True, 2.5, 8.0]


@pytest.mark.parametrize("value", _BAD_SIZES, ids=repr)
@pytest.mark.parametrize(("preset", "arg"), [(p, a) for p, args in _PRESET_SIZES.items()
                                             for a in args], ids="-".join)
def test_a_preset_refuses_a_bad_size_naming_its_own_argument(preset: str, arg: str,
                                                             value: Any) -> None:
    """nan, inf, 0, negative, a bool or a float for a size: one SymflopsError that names
    the preset and ITS argument (not the layer the value would have reached: 'Repeat: n',
    'Embedding: num_embeddings'), the value and a fix; never ValueError/OverflowError."""
    kwargs = dict(_PRESET_BASE[preset])
    sequence = _SEQUENCES.get((preset, arg))
    kwargs[arg] = value if sequence is None else (sequence[0], value, *sequence[2:])
    with pytest.raises(SymflopsError) as info:
        getattr(sf.presets, preset)(**kwargs)
    text = str(info.value)
    assert text.startswith(f"{preset}: {arg} must"), text
    assert "fix: " in text and "\n" not in text
    assert repr(value) in text or str(value) in text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 1.25],
                         ids=["nan", "inf", "negative", "float"])
def test_mixtral_capacity_factor_nan_or_inf_is_one_error(value: float) -> None:
    """float('nan') raised ValueError ('cannot convert NaN to integer ratio'), inf an
    OverflowError, from the hint that suggests an exact Fraction."""
    with pytest.raises(SymflopsError, match="capacity_factor must be exact") as info:
        sf.presets.mixtral(**_PRESET_BASE["mixtral"], capacity_factor=value)
    assert str(value) in str(info.value)


def test_resnet_without_stages_is_refused() -> None:
    with pytest.raises(SymflopsError, match="resnet: layers must list the blocks"):
        sf.presets.resnet(layers=())


def test_presets_still_take_what_they_documented() -> None:
    """The checks refuse nothing valid: symbols, names, large ints, a float width."""
    params = sf.presets.gpt("d", "h", "L", 10**40, "N").cost(("B", "N")).params
    assert {"d", "L"} <= {str(s) for s in params.free_symbols}
    assert sf.presets.mobilenet_v2(width_mult=0.5).cost(("B", 3, 224, 224)).params > 0
    assert sf.presets.resnet(layers=(1,)).cost(("B", 3, 224, 224)).params > 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -8, True, 2.5, 8.0], ids=repr)
def test_deepseek_v2_dense_layers_is_a_count_from_zero(value: Any) -> None:
    kwargs = {**_PRESET_BASE["deepseek_v2"], "dense_layers": value}
    with pytest.raises(SymflopsError) as info:
        sf.presets.deepseek_v2(**kwargs)
    text = str(info.value)
    assert text.startswith("deepseek_v2: dense_layers must"), text
    assert "fix: " in text and "\n" not in text
    ok = {**_PRESET_BASE["deepseek_v2"], "dense_layers": 0}   # every layer a MoE layer
    assert sf.presets.deepseek_v2(**ok).cost(("B", "N")).params > 0
