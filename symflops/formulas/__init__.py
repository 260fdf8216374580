"""Pure formula functions, one module per layer family: shapes in, work (a dict of kind ->
count) out; and per family ONE ``<family>_derivation`` function returning the
:class:`~symflops.formulas.derivation.Derivation` (general work per kind and params in
canonical symbols, bindings, explanation, rates) that both ``sf.nn`` layers and the
tracer's op handlers call, with the family's gradients (``<family>_grad_derivation(s)``)
beside it.

They use plain arithmetic, so the same function serves the symbolic layers in
:mod:`symflops.nn` (SymPy sizes) and the torch op handlers in
:mod:`symflops.tracing` (sizes from symbolic shapes), and brute-force checks (ints).
Import a family: ``from symflops.formulas import conv`` or
``from symflops.formulas.conv import conv_work``.

>>> from symflops.formulas import conv
>>> conv.conv_work(1, 3, 64, (3, 3), (8, 8))["matmul_mul"]
110592
"""

from symflops.formulas import (
    arith,
    attention,
    conv,
    derivation,
    detection,
    embedding,
    linear,
    moe,
    norm,
    pointwise,
    pool,
    recurrent,
    resize,
    rotary,
    sampling,
    sorting,
    ssm,
    tokens,
    window,
)
from symflops.formulas.derivation import Derivation

__all__ = ["Derivation", "arith", "attention", "conv", "derivation", "detection", "embedding",
           "linear", "moe", "norm", "pointwise", "pool", "recurrent", "resize", "rotary",
           "sampling", "sorting", "ssm", "tokens", "window"]

