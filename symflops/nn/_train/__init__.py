"""``mode="train"`` for ``sf.nn``: each layer's forward, its backward derived op by op as
torch's autograd runs it, and the tensors autograd saves for backward.

Each layer class has one train rule (:data:`TRAIN_RULES`, looked up along the class's
MRO): it receives the layer, its input shape and the input tensor (:class:`Ref`: an
identity, its size, whether it needs a gradient) and returns a :class:`Step` (the Cost,
with ``memory``, and the output tensor). What torch does decides each count:

* a gradient op runs only for what needs it: no ``grad_input`` for an input that needs
  no gradient (a model's input), no ``grad_weight`` for a frozen layer, nothing at all
  when neither;
* each layer saves what its autograd node saves (Linear and Conv their input, GELU and
  SiLU their input, ReLU, Sigmoid, Tanh and Softmax their output, Dropout its mask,
  LayerNorm its input and the row statistics, ...), and a tensor saved twice counts once.

>>> from symflops.symbols import B, N
>>> from symflops.nn import Sequential, Linear, ReLU
>>> c = Sequential(Linear(8, 16), ReLU(), Linear(16, 4)).cost((B, 8), mode="train")
>>> c.memory.activations          # x (8), the ReLU's output (16): 2 bytes each
48*B
"""

from __future__ import annotations

from symflops.nn._base import TRAINER
from symflops.nn._train import containers, leaves, lm, vision
from symflops.nn._train.core import (
    RECOMPUTE,
    TRAIN_RULES,
    Ref,
    Step,
    Train,
    train_cost,
    train_layer,
    train_rule,
)

__all__ = ["Ref", "Train", "Step", "TRAIN_RULES", "train_rule", "train_layer", "train_cost",
           "RECOMPUTE", "leaves", "containers", "lm",
           "vision"]

TRAINER.run = train_cost
