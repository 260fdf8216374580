"""The largest parts of a cost at given sizes, for ``symflops scale``: below the wrappers
(a causal LM's ``model``, its layer stack, each decoder layer), summed over repeated blocks
(``transformer.h.*.attn x12``), so attention, MLP and head stand side by side."""

from __future__ import annotations

import re
from typing import Any

import sympy as sp

from symflops.cost import Cost

__all__ = ["largest_parts"]

_NUMBER = re.compile(r"(?<![^.])\d+(?![^.])")  # a numbered child: layers.3 -> layers.*


def largest_parts(cost: Cost, at: dict[sp.Symbol, int], quantity: str, depth: int | None,
                  top: int = 3) -> tuple[int, list[tuple[str, str, int, float | None]]]:
    """The ``top`` largest parts of ``cost`` at ``at`` as ``(path, layer, times, share)``,
    repeated blocks summed (``model.layers.*.mlp x32``: every layer's MLP), at ``depth``;
    without one, below every wrapper (``model`` of a causal LM, its ``layers``, a
    decoder layer: :func:`wrapper`) down to the blocks a reader compares: attention,
    MLP, head."""
    fixed = cost.subs({s: sp.Integer(v) for s, v in at.items()})  # checked, then numbers
    total = sp.sympify(fixed.quantity(quantity))
    # path, layer, parts, value, one of the parts, whether the parts are built alike
    Group = tuple[str, str, int, Any, Cost, bool]

    def grouped(d: int) -> list[Group]:
        sums: dict[tuple[str, str], list[Any]] = {}

        def visit(node: Cost, path: str, mult: sp.Expr, level: int) -> None:
            for child in node.children:
                p = f"{path}.{child.name}" if path else child.name
                m = mult * child.count
                if level + 1 >= d or not child.children:
                    key = (_NUMBER.sub("*", p) if d > 1 else p, child.layer)
                    entry = sums.setdefault(key, [0, sp.Integer(0), child, set()])
                    entry[0] += 1
                    entry[1] += m * child.quantity(quantity)
                    entry[3].add(tuple((c.name, c.layer) for c in child.children))
                else:
                    visit(child, p, m, level + 1)

        visit(fixed, "", sp.Integer(1), 0)
        out = [(p, layer, n, value, node, len(shapes) == 1)
               for (p, layer), (n, value, node, shapes) in sums.items()]
        return sorted(out, key=lambda g: -g[3] if g[3].is_number else 0)

    def share(value: sp.Expr) -> float | None:
        return float(value / total) if value.is_number and total.is_number and total != 0 \
            else None

    def wrapper(group: Group) -> bool:
        """A part to look inside: nearly the whole total, one child carrying 90% of it,
        or numbered blocks (a stack, or one block of it) carrying half the total or more;
        repeated blocks only when built alike (decoder layers, not a CNN's varied stages,
        whose insides would mix)."""
        path, _, _, value, node, alike = group
        x = share(value)
        if x is None or not node.children or not alike:
            return False
        whole = sp.sympify(node.quantity(quantity))
        sizes = [sp.sympify(c.count * c.quantity(quantity)) for c in node.children]
        if x >= 0.9 or (whole.is_number and whole > 0 and all(y.is_number for y in sizes)
                        and max(sizes) >= sp.Rational(9, 10) * whole):
            return True
        numbered = all(c.name.isdigit() for c in node.children) or path.endswith("*")
        return numbered and x >= 0.5

    d = depth or 1
    groups = grouped(d)
    while depth is None and d < 12 and wrapper(groups[0]):
        deeper = grouped(d + 1)
        if len(deeper) == len(groups) and deeper[0][:2] == groups[0][:2]:
            break  # nothing below to show
        d, groups = d + 1, deeper
    return d, [(p, layer, n, share(value)) for p, layer, n, value, _, _ in groups[:top]]
