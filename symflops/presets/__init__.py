"""Whole models built only from ``sf.nn`` layers, every size a symbol or an int; each
preset's docstring says which published model (and which ``transformers`` or
``torchvision`` class) it matches.

>>> import symflops as sf
>>> sf.presets.llama(4096, 32, 8, 32, 32000, 14336).cost(("B", "N")).params  # Mistral-7B
7241732096
>>> sf.presets.resnet(block="basic", layers=(2, 2, 2, 2)).cost(("B", 3, 224, 224)).params
11689512
"""

from __future__ import annotations

from symflops.presets import lm, vision
from symflops.presets.lm import gpt, llama, mixtral
from symflops.presets.vision import mobilenet_v2, resnet, swin, vit

__all__ = ["gpt", "llama", "mixtral", "vit", "swin", "resnet", "mobilenet_v2"]

#: the submodules' examples run with this package's doctests
__test__ = {m.__name__: m for m in (lm, vision)}
