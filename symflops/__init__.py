"""symflops: parameters, MACs and FLOPs of neural networks as SymPy formulas.

>>> import symflops as sf
>>> from symflops.symbols import B, H, W
>>> net = sf.nn.Sequential(sf.nn.Conv2d(3, 64, 7, stride=2, padding=3), sf.nn.BatchNorm2d(64),
...                        sf.nn.ReLU(), sf.nn.MaxPool2d(3, stride=2, padding=1))
>>> total = net.cost((B, 3, H, W), convention="macs")
>>> total.output_shape
(B, 64, floor(H/4 - 1/4) + 1, floor(W/4 - 1/4) + 1)
>>> total.subs(B=1, H=224, W=224).flops
118013952

``import symflops`` does not import torch, jinja2 or matplotlib: :func:`trace` (in
:mod:`symflops.tracing`) imports torch when called, :func:`render` (in
:mod:`symflops.rendering`) loads jinja2 when called, and :func:`generation` (prefill and
decode steps summed, :mod:`symflops.serving`), :mod:`presets`, :mod:`analysis`,
:mod:`tracing` and :mod:`rendering` are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from symflops import nn, paper_counts, symbols
from symflops.conventions import (
    KINDS,
    Convention,
    conventions,
    get_convention,
    register_convention,
)
from symflops.cost import Cost
from symflops.errors import SymflopsError

if TYPE_CHECKING:  # pragma: no cover
    from symflops import analysis as analysis
    from symflops import presets as presets
    from symflops import rendering as rendering
    from symflops import tracing as tracing
    from symflops.rendering import render as render
    from symflops.rendering._html_report import report as report
    from symflops.serving import generation as generation
    from symflops.tracing import trace as trace
    from symflops.tracing import trace_factory as trace_factory

__version__ = "0.1.0"

__all__ = [
    "nn", "presets", "symbols", "paper_counts", "Cost", "Convention", "KINDS", "conventions",
    "get_convention", "register_convention", "SymflopsError", "trace", "trace_factory", "render",
    "report", "generation",
    "analysis", "tracing", "rendering", "__version__",
]

# name -> (module, attribute or None for the module itself), imported on first use
_LAZY = {
    "trace": ("symflops.tracing", "trace"),
    "trace_factory": ("symflops.tracing", "trace_factory"),
    "render": ("symflops.rendering", "render"),
    "report": ("symflops.rendering._html_report", "report"),
    "generation": ("symflops.serving", "generation"),
    "analysis": ("symflops.analysis", None),
    "tracing": ("symflops.tracing", None),
    "rendering": ("symflops.rendering", None),
    "presets": ("symflops.presets", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'symflops' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
