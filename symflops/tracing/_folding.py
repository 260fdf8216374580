"""Folding repeated blocks of a traced Cost tree, and reading a tree as a table of
quantities per module path (what :func:`trace_factory` interpolates).

Children named ``0, 1, ..., n-1`` (an ``nn.Sequential`` or ``nn.ModuleList`` of blocks;
``encoder_layer_0, encoder_layer_1, ...`` alike)
whose subtrees cost the same become one child, the first, with ``count`` the run's
length: ``layers.0`` with count ``L`` instead of ``L`` identical rows.

>>> import torch, symflops as sf
>>> net = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)])
>>> [(p, c.count) for p, c in fold(sf.trace(net, "B 4")).walk()]
[('', 1), ('0', 3)]
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass

import sympy as sp

from symflops.cost import Cost

__all__ = ["fold", "merge_ops", "NodeTable", "table_of", "only_kinds", "signature"]


def signature(cost: Cost) -> Hashable:
    """What makes two subtrees the same block: every node's relative path, layer, count,
    work and params."""
    return tuple((p, c.layer, c.spec, c.count, tuple(sorted(c.work.items())), c.params)
                 for p, c in cost.walk())


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _numbered(name: str) -> tuple[str, int] | None:
    """``("encoder_layer_", 3)`` for ``encoder_layer_3``, ``("", 3)`` for ``3``."""
    m = _NUMBERED.match(name)
    return None if m is None else (m.group(1), int(m.group(2)))


def _next(name: str) -> tuple[str, int] | None:
    got = _numbered(name)
    return None if got is None else (got[0], got[1] + 1)


def fold(cost: Cost) -> Cost:
    """``cost`` with every run of consecutive integer-named children of equal cost
    replaced by its first child counted the run's length times (recursively)."""
    if not cost.children:
        return cost
    children = [fold(c) for c in cost.children]
    out: list[Cost] = []
    run: list[Cost] = []

    def close() -> None:
        if run:
            first = run[0]
            out.append(first if len(run) == 1 else first.replace(count=first.count * len(run)))
            run.clear()

    for child in children:
        if _numbered(child.name) is None:
            close()
            out.append(child)
            continue
        if run and (_numbered(child.name) != _next(run[-1].name) or
                    signature(child) != signature(run[0])):
            close()
        run.append(child)
    close()
    return cost.replace(children=out)


def merge_ops(cost: Cost) -> Cost:
    """``cost`` with the aten-op leaves directly under each module merged into one leaf
    ``ops`` (their work summed), recursively: the module hierarchy alone, for models
    whose op sequence inside a module changes with sizes (``nn.MultiheadAttention``
    runs ``addmm`` at batch 1, ``mm`` + ``add`` above).

    >>> import torch, symflops as sf
    >>> net = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> [p for p, _ in merge_ops(sf.trace(net, ["B 4 8"] * 3)).walk()]
    ['', 'parameters', 'ops']
    """
    if not cost.children:
        return cost
    kids = [merge_ops(c) for c in cost.children]
    ops = [c for c in kids if not c.children and c.op and c.layer == c.op]
    if not ops:
        return cost.replace(children=kids)
    work: dict[str, sp.Expr] = {}
    for c in ops:
        for k, v in c.work.items():
            work[k] = work.get(k, sp.Integer(0)) + c.count * v
    merged = Cost("ops", "ops", spec="aten ops", work=work,
                  params=sp.Add(*(c.count * c.params for c in ops)),
                  convention=cost.convention, input_shape=ops[0].input_shape,
                  output_shape=ops[-1].output_shape,
                  notes=tuple(dict.fromkeys(n for c in ops for n in c.notes)))
    rest = [c for c in kids if not any(c is o for o in ops)]
    return cost.replace(children=[*rest, merged])


@dataclass(frozen=True)
class NodeTable:
    """A folded tree read as numbers: ``skeleton`` (path, layer, is-leaf of every node,
    in walk order), ``specs`` (path -> spec, which prints sizes), and per path its
    quantities (``count``, each shape entry ``in:<i>``/``out:<i>``, and for leaves
    ``params``, each kind of work ``w:<kind>`` and each derivation binding
    ``b:<symbol>``) as SymPy expressions; ``nodes``: path -> the Cost node."""

    skeleton: tuple[tuple[str, str, bool], ...]
    specs: dict[str, str]
    values: dict[str, dict[str, sp.Expr]]
    nodes: dict[str, Cost]


def only_kinds(cost: Cost, kinds: frozenset[str]) -> Cost:
    """``cost`` keeping only the named kinds of work, its leaves without derivations
    (those describe every kind): what a convention weighs, for a formula fitted in that
    convention alone. Fold after this, so blocks differing only in dropped kinds (Swin's
    shifted and unshifted windows) fold alike at every size."""
    if cost.children:
        return cost.replace(children=[only_kinds(c, kinds) for c in cost.children])
    return cost.replace(work={k: v for k, v in cost.work.items() if k in kinds},
                        derivation=None)


def table_of(cost: Cost) -> NodeTable:
    """The :class:`NodeTable` of a (folded) tree."""
    skeleton = []
    values: dict[str, dict[str, sp.Expr]] = {}
    nodes: dict[str, Cost] = {}
    for path, c in cost.walk():
        skeleton.append((path, c.layer, not c.children))
        q: dict[str, sp.Expr] = {"count": c.count}
        q.update({f"in:{i}": s for i, s in enumerate(c.input_shape)})
        q.update({f"out:{i}": s for i, s in enumerate(c.output_shape)})
        if not c.children:  # a composite's params and work are its children's sums
            q["params"] = c.params
            q.update({f"w:{k}": v for k, v in c.work.items()})
            if c.derivation is not None:
                q.update({f"b:{s}": v for s, v in c.derivation.bindings.items()})
        values[path] = q
        nodes[path] = c
    return NodeTable(tuple(skeleton), {p: c.spec for p, c in nodes.items()}, values, nodes)
