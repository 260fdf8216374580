"""How a cost grows: aligned polynomials, growth orders, leading terms, breakdowns,
crossings, sweeps, plots and comparisons (of two costs, or of two models).

Every function takes a :class:`~symflops.cost.Cost` (its ``quantity``, ``"flops"`` by
default) or a SymPy expression. Symbols may be given as Symbols or by name.

>>> import symflops as sf
>>> from symflops import analysis as A
>>> from symflops.symbols import B, H, W
>>> stem = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, stride=2, padding=1), sf.nn.ReLU())
>>> c = stem.cost((B, 3, H, W), convention="macs")
>>> c.flops
216*B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1)
>>> A.aligned(c, {H: 2, W: 2}).flops
54*B*H*W
>>> A.growth_order(c, [H, W]), A.growth_order(c, "H")
(2, 1)
"""

from symflops.analysis.models import (
    Comparison,
    Crossing,
    compare,
    crossings,
)
from symflops.analysis.parts import (
    Share,
    breakdown,
    term_breakdown,
)
from symflops.analysis.plots import plot
from symflops.analysis.polynomial import (
    Term,
    aligned,
    alignment,
    growth_order,
    leading_terms,
    path_orders,
    terms,
    total_stride,
)
from symflops.analysis.sweeps import Sweep, fit_slope, sweep

__all__ = [
    "aligned", "alignment", "total_stride", "growth_order", "path_orders",
    "Term", "terms", "leading_terms", "Share", "breakdown", "term_breakdown",
    "Sweep", "sweep", "fit_slope", "plot", "Comparison", "compare",
    "Crossing", "crossings",
]
