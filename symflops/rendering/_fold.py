"""Folding: a run of identical consecutive siblings (same layer, spec, shapes and cost, all
the way down) numbered in sequence (``0, 1, 2`` or ``block_1, block_2``: a ModuleList, a
Sequential, a repeated block) is shown as one row, ``layers.0-11 (x12)``, with its numbers
for one instance. Siblings the author named apart (``conv_a``, ``conv_b``) stay apart.

>>> import symflops as sf
>>> block = lambda: sf.nn.Sequential(sf.nn.Linear(8, 8), sf.nn.ReLU())
>>> c = sf.nn.Sequential(*(block() for _ in range(12)), sf.nn.Linear(8, 2)).cost((4, 8))
>>> [(r.label, r.times) for r in fold_runs(c.children)]
[('0-11', 12), ('12', 1)]
>>> [(r.label, r.times) for r in fold_runs(c.children, fold=False)][:2]
[('0', 1), ('1', 1)]
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from symflops.conventions import KINDS
from symflops.cost import Cost

__all__ = ["Run", "fold_runs", "run_label"]

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True)
class Run:
    """Siblings ``start .. start + times - 1`` of a parent, identical to each other."""

    start: int
    names: tuple[str, ...]

    @property
    def times(self) -> int:
        return len(self.names)

    @property
    def label(self) -> str:
        return run_label(self.names)


def run_label(names: Sequence[str]) -> str:
    """How a run of sibling names reads: ``0-11`` or ``enc_3-4``; one name stays as it is.

    >>> run_label(["0", "1", "2"]), run_label(["enc_3", "enc_4"]), run_label(["a"])
    ('0-2', 'enc_3-4', 'a')
    """
    if len(names) == 1:
        return names[0]
    last = _NUMBERED.match(names[-1])
    assert last is not None, names  # fold_runs only joins numbered names
    return f"{names[0]}-{last.group(2)}"


def _follows(name: str, previous: str) -> bool:
    """``name`` is the next in a numbered sequence after ``previous`` (``3`` after ``2``,
    ``block_3`` after ``block_2``; ``01`` after ``00`` is not a plain number: kept apart)."""
    a, b = _NUMBERED.match(previous), _NUMBERED.match(name)
    return (a is not None and b is not None and a.group(1) == b.group(1)
            and b.group(2) == str(int(a.group(2)) + 1) and a.group(2) == str(int(a.group(2))))


def _key(node: Cost, memo: dict[int, Hashable]) -> Hashable:
    """Everything a render shows of ``node`` and its subtree, except its own name."""
    found = memo.get(id(node))
    if found is None:
        found = (node.layer, node.spec, node.count, node.params,
                 tuple((k, node.work[k]) for k in KINDS if k in node.work),
                 node.input_shape, node.output_shape, node.validity, node.notes, node.op,
                 tuple((c.name, _key(c, memo)) for c in node.children))
        memo[id(node)] = found
    return found


def fold_runs(children: Sequence[Cost], fold: bool = True) -> list[Run]:
    """``children`` cut into runs of identical siblings with consecutive numbered names
    (each its own run when ``fold`` is false)."""
    if not fold:
        return [Run(i, (c.name,)) for i, c in enumerate(children)]
    memo: dict[int, Hashable] = {}
    runs: list[Run] = []
    for i, child in enumerate(children):
        if runs and _follows(child.name, runs[-1].names[-1]) and \
                _key(child, memo) == _key(children[runs[-1].start], memo):
            last = runs[-1]
            runs[-1] = Run(last.start, (*last.names, child.name))
        else:
            runs.append(Run(i, (child.name,)))
    return runs
