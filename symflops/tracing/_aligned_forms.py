"""Both forms of a traced cost, exact and stride-aligned: with each spatial dim a multiple
of the model's total stride, every ``floor`` resolves and the total becomes a plain
polynomial. Thin glue over :mod:`symflops.analysis` (``total_stride`` finds the
multiples, ``analysis.aligned`` rewrites); ``trace(aligned=...)`` uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.cost import Cost

__all__ = ["AlignedForms", "aligned_forms"]


@dataclass(frozen=True)
class AlignedForms:
    """Both forms: ``exact`` (floors kept) and ``aligned`` (valid when every dim in
    ``multiples`` is a multiple of its value)."""

    exact: Cost
    aligned: Cost
    multiples: dict[sp.Symbol, int]


def aligned_forms(cost: Cost, multiples: Mapping[Any, int] | None = None) -> AlignedForms:
    """The exact and the aligned form of ``cost``.

    ``multiples`` maps dims (symbols or names) to the multiple they are assumed to be;
    by default the smallest one that removes every floor (the total stride).

    >>> import torch, symflops as sf
    >>> net = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    >>> forms = sf.tracing.aligned_forms(sf.trace(net, "B 3 H W", convention="macs"))
    >>> forms.aligned.flops, forms.multiples
    (54*B*H*W, {H: 2, W: 2})
    """
    from symflops import analysis as A
    from symflops.symbols import symbol

    if multiples is None:
        mult = A.total_stride(cost)
    else:
        byname = {s.name: s for s in cost.free_symbols}
        mult = {(byname.get(k) or symbol(k) if isinstance(k, str) else k): int(v)
                for k, v in multiples.items()}
    out = A.aligned(cost, mult) if mult else cost
    return AlignedForms(cost, out, dict(mult))
