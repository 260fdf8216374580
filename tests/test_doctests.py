"""The examples in the modules' docstrings run and print what they say (the tracing
modules' examples run in tests/test_trace.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "symflops.formulas", "symflops.formulas.arith", "symflops.formulas.attention",
    "symflops.formulas.conv", "symflops.formulas.linear", "symflops.formulas.norm",
    "symflops.formulas.pointwise", "symflops.formulas.pool", "symflops.formulas.derivation",
    "symflops.formulas.embedding", "symflops.formulas.rotary", "symflops.formulas.moe",
    "symflops.formulas.window", "symflops.formulas.recurrent", "symflops.formulas.tokens",
    "symflops.nn", "symflops.cost",
    "symflops.evaluate", "symflops.conventions", "symflops.symbols", "symflops.errors",
    "symflops", "symflops.formulas.resize", "symflops.analysis", "symflops.parse",
    "symflops.rendering", "symflops.printing", "symflops.reference", "symflops.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_sfnn_example_doctest() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "sfnn_resnet.py"
    spec = importlib.util.spec_from_file_location("_sfnn_resnet_doctest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0
