"""Whole models built only from ``sf.nn`` layers, every size a symbol or an int; each
preset's docstring says which published model (and which ``transformers`` or
``torchvision`` class) it matches.

>>> import symflops as sf
>>> sf.presets.llama(4096, 32, 8, 32, 32000, 14336).cost(("B", "N")).params  # Mistral-7B
7241732096
"""

from __future__ import annotations

from symflops.presets import lm
from symflops.presets.lm import gpt, llama, mixtral

__all__ = ["gpt", "llama", "mixtral"]

#: the submodules' examples run with this package's doctests
__test__ = {m.__name__: m for m in (lm,)}
