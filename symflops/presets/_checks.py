"""The argument checks every preset shares."""

from __future__ import annotations

from typing import Any

from symflops.nn._base import to_size

__all__ = ["checked_sizes"]


def checked_sizes(preset: str, **sizes: Any) -> None:
    """Each of a preset's size arguments a positive integer, a SymPy expression or a name
    (``None`` skipped; a list checked item by item): a bad one is one SymflopsError naming
    the preset's argument, not the layer it would have reached."""
    for arg, value in sizes.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if item is not None:
                to_size(item, preset, arg)

