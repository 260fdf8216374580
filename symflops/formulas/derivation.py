"""``Derivation``: how a leaf's counts follow from a general formula.

Each layer family in :mod:`symflops.formulas` has one function returning a Derivation;
``sf.nn`` layers and the tracer's op handlers both call it, and a leaf's work is the
general formula with the bindings substituted (:attr:`Derivation.work`), computed once.

>>> import sympy as sp
>>> from symflops.symbols import I, M, O
>>> d = Derivation({"matmul_mul": M * I * O}, (I + 1) * O, {M: 2, I: 3, O: 4},
...                "each of the M*O outputs: a length-I dot product")
>>> d.work, d.params
({'matmul_mul': 24}, 16)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy as sp

if TYPE_CHECKING:
    from symflops.conventions import Convention

__all__ = ["Derivation"]


@dataclass(frozen=True)
class Derivation:
    """How a leaf's counts were obtained: a general formula and what it was applied to.

    ``general`` is the work per kind written in canonical symbols (``C_in``, ``K``,
    ``H_out``...), ``general_params`` likewise; ``bindings`` maps each canonical symbol to
    this layer's value. Substituting ``bindings`` into ``general`` gives the layer's work.
    ``rates`` explains, per kind, the per-element rate used (shown in renders).
    """

    general: Mapping[str, sp.Expr]
    general_params: sp.Expr
    bindings: Mapping[sp.Symbol, sp.Expr]
    explanation: str = ""
    rates: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # normalized once here (SymPy numbers, plain dicts), so every user reads them as
        # they are; the values are ints and expressions from the formulas, never text
        put = object.__setattr__
        put(self, "general", {k: sp.sympify(v) for k, v in self.general.items()})
        put(self, "general_params", sp.sympify(self.general_params))
        put(self, "bindings", {k: sp.sympify(v) for k, v in self.bindings.items()})
        put(self, "rates", dict(self.rates))

    def general_flops(self, convention: Convention) -> sp.Expr:
        """The general formula weighted by ``convention``."""
        return convention.weigh(self.general)

    @property
    def work(self) -> dict[str, Any]:
        """This layer's work per kind: ``general`` with ``bindings`` substituted."""
        return {k: v.xreplace(self.bindings) for k, v in self.general.items()}

    @property
    def params(self) -> Any:
        """This layer's parameters: ``general_params`` with ``bindings`` substituted."""
        return self.general_params.xreplace(self.bindings)
