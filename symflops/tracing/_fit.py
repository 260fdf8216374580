"""Fallback when torch cannot keep dims symbolic: an exact polynomial fitted from concrete
traces at aligned sizes, verified at sizes not used for the fit.

At sizes that are multiples of the model's total stride every ``floor`` resolves, so the
count is a polynomial in the dims; with at most ``degree`` per dim (batch: 1) a tensor
grid of ``degree + 1`` sizes per dim determines it exactly (rational linear solve).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Mapping
from typing import Any

import sympy as sp

from symflops.conventions import Convention, get_convention
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.symbols import symbol
from symflops.tracing._inputs import (
    DEFAULT_TIME_BUDGET,
    TraceContext,
    check_model_and_mode,
    checked_budget,
    dim_names,
    parse_inputs,
    with_sizes,
)
from symflops.tracing._run import run
from symflops.tracing._serial import serialized

__all__ = ["fit"]


def _size(name: str, mult: int, start: int, i: int) -> int:
    return 1 + i if name == "B" else mult * (start + i)


def _far(name: str, mult: int, k: int) -> int:
    """The ``k``-th far verification size: batch 1024 and 2048; other dims the multiple
    at or past 4096 and 8192 (at least 32 and 64 steps of the lattice). The concrete traces
    run on fake tensors, so a far size costs what a near one does."""
    if name == "B":
        return 1024 * k
    return max(mult * 32 * k, -(-4096 * k // mult) * mult)


@serialized
def fit(model: Any, inputs: Any, *, multiple: int | Mapping[str, int] = 32,
        degree: int | Mapping[str, int] | None = None, start: int = 2,
        convention: str | Convention = "exact", mode: str = "eval",
        fixed: Mapping[str, int] | None = None, real: bool = False,
        time_budget: float | None = DEFAULT_TIME_BUDGET) -> Cost:
    """Trace ``model`` concretely at aligned sizes and fit an exact polynomial in the dims.

    ``multiple``: the alignment of every spatial/sequence dim (or per dim name); sizes used
    are ``multiple * (start + i)``. ``degree``: the highest power per dim (default 1 for
    ``B``, 2 otherwise). ``fixed``: dims kept at one value. The result is a single leaf
    Cost flagged as fitted, with its validity (dims multiples of ``multiple`` and at least
    the smallest fitted size) and the verification points in ``notes``. ``real=True`` runs
    the concrete traces on real random tensors (for models whose control flow reads
    values, which fake tensors cannot provide). ``time_budget``: seconds all the concrete
    traces together may take (``None``: no limit).

    >>> import torch, symflops as sf
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1))
    >>> c = sf.tracing.fit(net, "B 3 H W", multiple=2, convention="macs")
    >>> c.flops
    54*B*H*W
    """
    check_model_and_mode(model, mode, "fit")
    weighting = get_convention(convention)
    budget = checked_budget(time_budget, "fit")
    deadline = None if budget is None else time.perf_counter() + budget
    pos, kw = parse_inputs(inputs)
    fixed = dict(fixed or {})
    names = [n for n in dim_names(pos, kw) if n not in fixed]
    if not names:
        raise SymflopsError("nothing to fit: every dim is fixed", layer="fit")
    mult = {n: (multiple.get(n, 1 if n == "B" else 32) if isinstance(multiple, Mapping)
                else (1 if n == "B" else multiple)) for n in names}
    deg = {n: (degree.get(n, 1 if n == "B" else 2) if isinstance(degree, Mapping)
               else (1 if n == "B" else 2) if degree is None else degree) for n in names}
    syms = [symbol(n) for n in names]
    monomials = [sp.Mul(*[s**e for s, e in zip(syms, exps, strict=True)])
                 for exps in itertools.product(*[range(deg[n] + 1) for n in names])]
    grid = [dict(zip(names, pt, strict=True)) for pt in itertools.product(
        *[[_size(n, mult[n], start, i) for i in range(deg[n] + 1)] for n in names])]
    checks = [{n: _size(n, mult[n], start, deg[n] + 1 + j) for n in names} for j in range(2)]
    # far from the solve points: the sizes people substitute (images to 8192, batches to
    # 2048); on real tensors (slow at large sizes) one moderately far point (sizes 256,
    # batch 8), and the domain ends there
    if not real:
        checks += [{n: _far(n, mult[n], k) for n in names} for k in (1, 2)]
    else:
        checks += [{n: 8 if n == "B" else max(mult[n] * 8, -(-256 // mult[n]) * mult[n])
                    for n in names}]
    samples: list[tuple[dict[str, int], Cost]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pt in grid + checks:
            at_pos, at_kw = with_sizes(pos, kw, {**fixed, **pt})
            ctx = TraceContext.build(model, at_pos, at_kw, {}, weighting,
                                     train=mode == "train", real=real, budget=budget,
                                     deadline=deadline)
            samples.append((pt, run(ctx)))
    kinds = sorted({k for _, c in samples for k in c.work})
    rows = sp.Matrix([[m.xreplace({s: pt[s.name] for s in syms}) for m in monomials]
                      for pt, _ in samples[:len(grid)]])
    fitted: dict[str, sp.Expr] = {}
    for kind in kinds + ["params"]:
        ys = sp.Matrix([c.params if kind == "params" else c.work.get(kind, 0)
                        for _, c in samples[:len(grid)]])
        coeffs = rows.LUsolve(ys)
        fitted[kind] = sp.expand(sum((cf * m for cf, m in zip(coeffs, monomials, strict=True)),
                                     sp.Integer(0)))
        for pt, c in samples[len(grid):]:
            want = c.params if kind == "params" else c.work.get(kind, 0)
            got = fitted[kind].xreplace({s: pt[s.name] for s in syms})
            if got != want:
                raise SymflopsError(
                    "the fitted polynomial misses a verification point: the count is not "
                    "a polynomial of this degree at these sizes", layer="fit",
                    values={"kind": kind, "at": pt, "traced": want, "fitted": got},
                    fix="raise degree=..., or check that multiple is the total stride")
    params = fitted.pop("params")
    first = pos[0] if pos else next(iter(kw.values()))
    # the domain is what was verified: the lattice, the smallest fitted size and the
    # largest verified one (no claim past it)
    validity: list[sp.Basic] = [sp.Ge(symbol(n), _size(n, mult[n], start, 0)) for n in names
                                if _size(n, mult[n], start, 0) > 1]
    validity += [sp.Eq(sp.Mod(symbol(n), mult[n]), 0) for n in names if mult[n] > 1]
    top = {n: max(pt[n] for pt in [*grid, *checks]) for n in names}
    validity += [sp.Le(symbol(n), top[n]) for n in names]
    used = ", ".join("(" + ", ".join(f"{n}={v}" for n, v in pt.items()) + ")" for pt in grid)
    verified = ", ".join("(" + ", ".join(f"{n}={v}" for n, v in pt.items()) + ")"
                         for pt in checks)
    note = (f"FITTED, not traced symbolically: an exact polynomial through {len(grid)} "
            f"concrete traces at {used}; verified at {verified} (not used for the fit). "
            "Valid for " + ", ".join(
                (f"{n} a multiple of {mult[n]}, " if mult[n] > 1 else "") +
                f"{_size(n, mult[n], start, 0)} <= {n} <= {top[n]} (verified up to {top[n]})"
                for n in names) +
            (", with " + ", ".join(f"{n} = {v}" for n, v in fixed.items()) if fixed else ""))
    return Cost("", "Fitted", spec=f"{type(model).__name__} (fitted)", params=params,
                work=fitted, convention=weighting, validity=validity, notes=(note,),
                input_shape=tuple(symbol(d) if isinstance(d, str) else sp.Integer(d)
                                  for d in first.dims),
                derivation=Derivation(dict(fitted), params, {}, note))
