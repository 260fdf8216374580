"""The public surface stays small and ``import symflops`` stays light: no torch, jinja2 or
matplotlib until a function that needs them is called, and the optional subpackages
(presets, analysis, tracing, rendering) imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import symflops as sf


def test_import_is_light() -> None:
    heavy = ["torch", "jinja2", "matplotlib", "symflops.presets", "symflops.analysis",
             "symflops.tracing", "symflops.rendering"]
    code = (f"import sys, symflops; print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_top_level_is_small_and_every_name_resolves() -> None:
    assert len(sf.__all__) <= 20
    assert len(set(sf.__all__)) == len(sf.__all__)
    for name in sf.__all__:
        assert getattr(sf, name) is not None


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Derivation'"):
        sf.Derivation  # noqa: B018  (exported by symflops.formulas only)


@pytest.mark.parametrize("module, private", [
    ("symflops.rendering", ["clear_caches", "builtin_loader", "equation_lines",
                            "visible_width", "template_environment"]),
    ("symflops.tracing", ["HANDLERS", "ZERO_COST", "aligned_forms", "AlignedForms"]),
])
def test_internals_are_not_exported(module: str, private: list[str]) -> None:
    import importlib

    if module == "symflops.tracing":
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    assert not set(private) & set(mod.__all__)
    assert not [name for name in private if hasattr(mod, name)]
    for name in mod.__all__:
        assert getattr(mod, name) is not None
