"""symflops: parameters, MACs and FLOPs of neural networks as SymPy formulas.

>>> import symflops as sf
>>> from symflops.symbols import B, H, W
>>> net = sf.nn.Sequential(sf.nn.Conv2d(3, 64, 7, stride=2, padding=3), sf.nn.BatchNorm2d(64),
...                        sf.nn.ReLU(), sf.nn.MaxPool2d(3, stride=2, padding=1))
>>> total = net.cost((B, 3, H, W), convention="macs")
>>> total.output_shape
(B, 64, floor(floor(H/2 - 1/2)/2) + 1, floor(floor(W/2 - 1/2)/2) + 1)
>>> total.subs(B=1, H=224, W=224).flops
118013952

``import symflops`` does not import torch; :func:`trace` imports it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symflops import nn, symbols
from symflops.conventions import KINDS, Convention, conventions, get_convention, register_convention
from symflops.cost import Cost, Derivation
from symflops.errors import SymflopsError

if TYPE_CHECKING:  # pragma: no cover
    from symflops.render import render as render
    from symflops.trace import trace as trace

__version__ = "0.1.0"

__all__ = [
    "nn", "symbols", "Cost", "Derivation", "Convention", "KINDS", "conventions",
    "get_convention", "register_convention", "SymflopsError", "trace", "render", "__version__",
]


def __getattr__(name: str) -> Any:
    # lazy: keeps `import symflops` free of torch and jinja2
    if name == "trace":
        from symflops.trace import trace

        return trace
    if name == "render":
        from symflops.render import render

        return render
    if name == "analysis":
        import importlib

        return importlib.import_module("symflops.analysis")
    raise AttributeError(f"module 'symflops' has no attribute {name!r}")
