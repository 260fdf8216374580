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

from types import FunctionType

# one import line per family of presets (``name as name``: a re-export); the exports and
# doctests below follow from these lines
from symflops.presets.lm import deepseek_v2 as deepseek_v2
from symflops.presets.lm import gpt as gpt
from symflops.presets.lm import llama as llama
from symflops.presets.lm import mixtral as mixtral
from symflops.presets.vision import mobilenet_v2 as mobilenet_v2
from symflops.presets.vision import resnet as resnet
from symflops.presets.vision import swin as swin
from symflops.presets.vision import vit as vit

#: every preset, by name
PRESETS = {name: f for name, f in dict(globals()).items() if isinstance(f, FunctionType)
           and f.__module__.startswith(__name__ + ".")}

__all__ = [*sorted(PRESETS), "PRESETS"]
