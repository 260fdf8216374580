"""Collection for ``--doctest-modules`` (configured in pyproject.toml): without torch, the
tracing package (the only code that imports torch) and the docstring examples that trace
are not collected; CI and the README install torch, so there everything runs."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator

import pytest

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["symflops/tracing/*", "symflops/tracing/handlers/*"]


# the conventions module itself: the package exports a function under the same name
_conventions = importlib.import_module("symflops.conventions")


@pytest.fixture(autouse=True)
def _builtin_conventions() -> Iterator[None]:
    """Every test starts from the built-in conventions, whatever an earlier test (or a
    README example run as a doctest) registered."""
    saved = dict(_conventions._REGISTRY)
    yield
    _conventions._REGISTRY.clear()
    _conventions._REGISTRY.update(saved)
