"""Tracing real torch models into symbolic costs (the only code that imports torch).

``trace(model, "B 3 H W")`` runs the model once on fake tensors whose sizes are
symbols, records every aten op with the nn.Module that called it, and turns each op
into a leaf Cost through the same formula functions ``sf.nn`` uses.

>>> import torch, symflops as sf
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU())
>>> c = sf.trace(net, "B 3 H W", convention="torch")
>>> c.flops
432*B*(floor(H/2 - 3/2) + 1)*(floor(W/2 - 3/2) + 1)
>>> c.validity
(H >= 3, W >= 3)
"""

from symflops.trace._aligned import AlignedForms, aligned
from symflops.trace._fit import fit
from symflops.trace._tracer import InputSpec, TracedCost, TraceReport, parse_inputs, trace
from symflops.trace.handlers import describe
from symflops.trace.registry import (
    HANDLERS,
    ZERO_COST,
    OpCall,
    Part,
    TShape,
    register,
    register_zero_cost,
    unregister,
)

__all__ = ["trace", "TraceReport", "TracedCost", "InputSpec", "parse_inputs", "aligned",
           "AlignedForms", "fit", "register", "register_zero_cost", "unregister", "HANDLERS",
           "ZERO_COST", "OpCall", "Part", "TShape", "describe"]


# ``import symflops.trace`` binds the package as ``symflops.trace``, shadowing the lazy
# ``sf.trace`` function. The package is made callable (calling it traces) and its ``trace``
# attribute is the package itself, so ``sf.trace`` is the same object however it was
# reached: ``sf.trace(model, ...)``, ``sf.trace.aligned(...)``, ``sf.trace.fit(...)``.
def _install_callable() -> None:
    import sys
    import types

    from symflops.trace import _tracer

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return _tracer.trace(*args, **kwargs)

    mod = sys.modules[__name__]
    mod.__class__ = _CallableModule
    mod.__dict__["trace"] = mod


_install_callable()
