"""Shared fixtures: every test starts from the built-in conventions, whatever an earlier
test (or a README example run as a test) registered."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

# the module itself: the package exports a function under the same name
conventions = importlib.import_module("symflops.conventions")


@pytest.fixture(autouse=True)
def _builtin_conventions() -> Iterator[None]:
    saved = dict(conventions._REGISTRY)
    yield
    conventions._REGISTRY.clear()
    conventions._REGISTRY.update(saved)
