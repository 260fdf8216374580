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

from symflops.tracing._assembly import TracedCost, TraceReport
from symflops.tracing._factory import FactoryCost, FactoryReport, trace_factory
from symflops.tracing._fit import fit
from symflops.tracing._tracer import trace
from symflops.tracing.handlers import describe
from symflops.tracing.pieces import PiecewiseCost, trace_pieces
from symflops.tracing.registry import (
    OpCall,
    Part,
    TShape,
    register,
    register_zero_cost,
    unregister,
)

__all__ = ["trace", "trace_factory", "fit", "trace_pieces", "PiecewiseCost", "TracedCost",
           "TraceReport", "FactoryCost", "FactoryReport", "register", "register_zero_cost",
           "unregister", "describe", "OpCall", "Part", "TShape"]

