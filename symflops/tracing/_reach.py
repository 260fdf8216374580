"""Checking a factory's formula far from the points it was solved at, for
:func:`trace_factory`.

The solve sees small lattice points (widths of about 1..7); a constructor's ``max(16, w)``,
``make_divisible``, ``heads = dim // 64`` or ``if width > 256`` changes the cost far above
them. So every symbol is traced along a ladder spanning orders of magnitude (the sizes
people substitute: widths and images to 65536, powers of two and not; depths to 128),
the others at their smallest lattice value, and at a few joint points where all are
large; at each point the module structure (the folded skeleton: every path, its layer
type) and every quantity of every path must equal the formula. The first point that does
not agree is bisected against the last one that does (on the lattice) to the exact
threshold: a :class:`Branch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError
from symflops.symbols import symbol
from symflops.tracing._folding import NodeTable

__all__ = ["SIZE_LADDER", "DEPTH_LADDER", "Branch", "Reach"]

#: values a size-like symbol (a width, an image side, a batch, a vocabulary) is traced
#: at, rounded up to its lattice: orders of magnitude, powers of two and not
SIZE_LADDER = (16, 48, 100, 256, 1000, 3000, 8192, 65536)
#: values a depth-like symbol (it sets how many times a block repeats) is traced at: a
#: trace's time grows with the depth
DEPTH_LADDER = (20, 64, 128)
#: where between its smallest and largest ladder value each symbol sits at the joint
#: points (all symbols large at once: interactions such as ``if width * depth > n``)
JOINT = (0.4, 0.7)


@dataclass
class Branch:
    """Where the cost stops agreeing with the formula: ``name`` agrees at ``below`` and
    not at ``above`` (the next lattice value), the others at ``point``; ``kind`` is
    ``fails`` (the model does not build or run there), ``structure`` (the module
    structure changes), ``count`` (a quantity differs) or ``joint`` (only at a joint
    point: ``below`` and ``above`` are 0)."""

    name: str
    below: int
    above: int
    kind: str
    reason: str
    point: dict[str, int] = field(default_factory=dict)


class Reach:
    """The far checks of one piece's formula (``fitted``, per path and quantity) solved by
    ``search`` with base table ``base``; ``ceiling``: the largest value per symbol."""

    def __init__(self, search: Any, base: NodeTable,
                 fitted: Mapping[str, Mapping[str, sp.Expr]], ceiling: Mapping[str, int],
                 depth_like: set[str]) -> None:
        self.search, self.base, self.fitted = search, base, fitted
        self.ceiling, self.depth_like = dict(ceiling), depth_like
        #: the far points that agree (the domain's evidence)
        self.checked: list[dict[str, int]] = []

    def mismatch(self, point: Mapping[str, int]) -> tuple[str, str] | None:
        """None when the trace at ``point`` equals the formula; else (kind, reason)."""
        try:
            tab = self.search.sample(point)
        except SymflopsError as e:
            return "fails", e.message
        subs = {symbol(n): sp.Integer(v) for n, v in point.items()}
        if tab.skeleton != self.base.skeleton:
            # folding depends on equal siblings (Linear(16, 16) twice folds at one width
            # only): compare the unfolded structure, how many modules of each type, and
            # the totals
            def formula(path: str, q: str) -> sp.Expr:
                return sp.expand(self.fitted[path].get(q, sp.Integer(0)).xreplace(subs))

            def traced(path: str, q: str) -> sp.Expr:
                return tab.values[path].get(q, sp.Integer(0))

            want = _census(tab, traced, lambda path: tab.values[path])
            got = _census(self.base, formula, lambda path: self.fitted[path])
            if want[0] != got[0]:
                kinds = sorted(k for k in set(want[0]) | set(got[0])
                               if want[0].get(k, 0) != got[0].get(k, 0))
                return "structure", ("the module structure changes (" + ", ".join(
                    f"{k}: {got[0].get(k, 0)} -> {want[0].get(k, 0)}" for k in kinds[:3]) + ")")
            for q in sorted(set(want[1]) | set(got[1])):
                a, b = want[1].get(q, sp.Integer(0)), got[1].get(q, sp.Integer(0))
                if sp.expand(a - b) != 0:
                    return "count", f"total {_quantity(q)}: traced {a}, the formula {b}"
            return None
        for path, quantities in self.fitted.items():
            for q, expr in sorted(quantities.items(), key=lambda kv: _priority(kv[0])):
                want_q = tab.values[path].get(q, sp.Integer(0))
                got_q = expr.xreplace(subs)
                if sp.expand(got_q - want_q) != 0:
                    return "count", (f"{path or '(root)'} {_quantity(q)}: traced {want_q}, "
                                     f"the formula {got_q}")
        return None

    def top(self, name: str) -> int:
        """The largest lattice value of ``name`` not above its ceiling."""
        m = self.search.multiple[name]
        return max(m * (self.ceiling[name] // m), self.search.value(name, 0))

    def known(self, name: str) -> int:
        """The lattice index of ``name`` up to which the solve traced (all agree)."""
        return self.search.start[name] + self.search.top_degrees()[name]

    def ladder(self, name: str) -> list[int]:
        """The values ``name`` is checked at (its others at their base), ascending."""
        m = self.search.multiple[name]
        targets = DEPTH_LADDER if name in self.depth_like else SIZE_LADDER
        low, top = m * self.known(name), self.top(name)
        values = {m * -(-t // m) for t in targets} | {top}
        return sorted(v for v in values if low < v <= top)

    def run(self) -> Branch | None:
        """Check every axis, then the joint points; the first branch found, or None."""
        for name in self.search.names:
            m = self.search.multiple[name]
            agree = self.known(name)
            for v in self.ladder(name):
                pt = {**self.search.point({}), name: v}
                got = self.mismatch(pt)
                if got is None:
                    self.checked.append(pt)
                    agree = v // m
                    continue
                return self._bisect(name, agree, v // m, got)
        ladders = {n: self.ladder(n) for n in self.search.names}
        for frac in JOINT:
            pt = {n: (lad[int(frac * (len(lad) - 1))] if lad else self.search.value(n, 0))
                  for n, lad in ladders.items()}
            if pt in self.checked or all(not lad for lad in ladders.values()):
                continue
            got = self.mismatch(pt)
            if got is not None:
                return Branch("", 0, 0, "joint", got[1], pt)
            self.checked.append(pt)
        return None

    def _bisect(self, name: str, lo: int, hi: int, first: tuple[str, str]) -> Branch:
        """``name`` agrees at index ``lo``, not at ``hi``: the exact threshold."""
        m = self.search.multiple[name]
        got = first
        while hi - lo > 1:
            mid = (lo + hi) // 2
            pt = {**self.search.point({}), name: m * mid}
            now = self.mismatch(pt)
            if now is None:
                lo = mid
            else:
                hi, got = mid, now
        return Branch(name, m * lo, m * hi, got[0], got[1],
                      {**self.search.point({}), name: m * hi})


def _priority(q: str) -> tuple[int, str]:
    """The order quantities are compared in: what a reader checks first comes first."""
    order = ("count", "params", "w:", "in:", "out:", "b:")
    return next(i for i, p in enumerate((*order, "")) if q.startswith(p)), q


def _quantity(q: str) -> str:
    """A table key as words: ``w:matmul_mul`` -> ``matmul_mul work``."""
    if q.startswith("w:"):
        return f"{q[2:]} work"
    if q.startswith(("in:", "out:")):
        side, i = q.split(":")
        return f"{'input' if side == 'in' else 'output'} shape[{i}]"
    if q.startswith("b:"):
        return f"binding {q[2:]}"
    return q


def _census(tab: NodeTable, value: Any, keys: Any
            ) -> tuple[dict[str, sp.Expr], dict[str, sp.Expr]]:
    """How many modules of each layer type a folded table stands for, and its totals
    (params and each kind of work): ``value(path, quantity)`` reads a quantity,
    ``keys(path)`` names a path's quantities."""
    mult: dict[str, sp.Expr] = {}
    types: dict[str, sp.Expr] = {}
    totals: dict[str, sp.Expr] = {}
    for path, layer, leaf in tab.skeleton:
        parent = path.rpartition(".")[0] if "." in path else ("" if path else None)
        m = value(path, "count") * (mult[parent] if parent is not None else 1)
        mult[path] = m
        types[layer] = sp.expand(types.get(layer, 0) + m)
        if leaf:
            for q in keys(path):
                if q == "params" or q.startswith("w:"):
                    totals[q] = sp.expand(totals.get(q, 0) + m * value(path, q))
    return types, totals


def depth_like(fitted: Mapping[str, Mapping[str, sp.Expr]]) -> set[str]:
    """Symbols a folded block's repeat count depends on (a depth)."""
    return {s.name for q in fitted.values() if "count" in q
            for s in q["count"].free_symbols}

