"""The wheel holds every subpackage: pyproject's explicit package list names each folder of
symflops/ that has an __init__.py (a new subpackage left out would import in an editable
install and be missing from a built one)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"]) - {"symflops.templates"}
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "symflops").rglob("__init__.py")}
    assert listed == found
