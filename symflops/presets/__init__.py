"""Whole networks built from ``sf.nn`` layers, every size a symbol if you like.

>>> import symflops as sf
>>> sf.presets.resnet(block="basic", layers=(2, 2, 2, 2)).cost(("B", 3, 224, 224)).params
11689512
"""

from symflops.presets.vision import mobilenet_v2, resnet, swin, vit

__all__ = ["vit", "swin", "resnet", "mobilenet_v2"]
