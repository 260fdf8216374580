"""Aligned form: with each spatial dim a multiple of the model's total stride, every
``floor`` in the exact formula resolves and the total becomes a plain polynomial."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError

__all__ = ["AlignedForms", "aligned", "total_stride"]


@dataclass(frozen=True)
class AlignedForms:
    """Both forms: ``exact`` (floors kept) and ``aligned`` (valid when every dim in
    ``multiples`` is a multiple of its value)."""

    exact: Cost
    aligned: Cost
    multiples: dict[sp.Symbol, int]


def _rounding(e: sp.Basic) -> bool:
    return bool(e.atoms(sp.floor, sp.ceiling, sp.Mod, sp.Piecewise, sp.Min, sp.Max))


def _exprs(cost: Cost) -> list[sp.Expr]:
    out: list[sp.Expr] = []
    for _, c in cost.walk():
        out += [*c.work.values(), *c.output_shape]
    return out


def _resolve(e: sp.Expr, m: Mapping[sp.Symbol, int], k: Mapping[sp.Symbol, sp.Symbol]
             ) -> sp.Expr:
    if not (e.free_symbols & set(m)):
        return e
    inner = e.xreplace({s: m[s] * k[s] for s in m})
    return sp.expand(inner.xreplace({k[s]: s / m[s] for s in m}))


def total_stride(cost: Cost, dims: list[sp.Symbol] | None = None, limit: int = 1024
                 ) -> dict[sp.Symbol, int]:
    """The smallest power-of-two multiple of each dim that removes every floor."""
    exprs = [e for e in _exprs(cost) if _rounding(e)]
    syms = dims or sorted({s for e in exprs for s in e.free_symbols if _rounding(e)},
                          key=lambda s: s.name)
    out: dict[sp.Symbol, int] = {}
    for s in syms:
        mult = 1
        k = sp.Symbol(f"k_{s.name}", integer=True, positive=True)
        rel = [e for e in exprs if s in e.free_symbols]
        while mult <= limit:
            if all(not _rounding(_part(e, s, mult, k)) for e in rel):
                break
            mult *= 2
        else:
            raise SymflopsError("no power-of-two multiple up to the limit removes the floors",
                                layer="aligned", values={"dim": s.name, "limit": limit})
        out[s] = mult
    return out


def _part(e: sp.Expr, s: sp.Symbol, mult: int, k: sp.Symbol) -> sp.Expr:
    # floors that involve only s resolve on their own; others may still hold other dims
    r = e.xreplace({s: mult * k})
    return sp.Add(*[a for a in sp.Add.make_args(sp.expand(r)) if s in a.free_symbols or
                    k in a.free_symbols]) if r.free_symbols else r


def aligned(cost: Cost, multiples: Mapping[sp.Symbol | str, int] | None = None
            ) -> AlignedForms:
    """The exact and the aligned form of ``cost``.

    ``multiples`` maps dims (symbols or names) to the multiple they are assumed to be;
    by default the smallest power of two that removes every floor (the total stride).

    >>> import torch, symflops as sf
    >>> net = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    >>> forms = sf.trace.aligned(sf.trace(net, "B 3 H W", convention="macs"))
    >>> forms.aligned.flops, forms.multiples
    (54*B*H*W, {H: 2, W: 2})
    """
    from symflops.symbols import symbol

    if multiples is None:
        mult = total_stride(cost)
    else:
        mult = {(symbol(k) if isinstance(k, str) else k): int(v) for k, v in multiples.items()}
        byname = {s.name: s for s in cost.free_symbols}
        mult = {byname.get(s.name, s): v for s, v in mult.items()}
    ks = {s: sp.Symbol(f"k_{s.name}", integer=True, positive=True) for s in mult}
    new = cost._rebuild(lambda e: _resolve(e, mult, ks))
    left = [e for e in _exprs(new) if _rounding(e)]
    note = ("aligned form: assumes " + ", ".join(f"{s} a multiple of {v}"
                                                  for s, v in mult.items()))
    if left:
        note += f"; {len(left)} expressions keep floors (other dims are not aligned)"
    new = _renote(new, note)
    return AlignedForms(cost, new, dict(mult))


def _renote(c: Cost, note: str) -> Cost:
    out = Cost(c.name, c.layer, spec=c.spec, children=c.children, count=c.count,
               input_shape=c.input_shape, output_shape=c.output_shape,
               validity=c.validity, convention=c.convention, notes=(*c.notes, note)) \
        if c.children else c
    return out
