"""The ``slice`` shape rule sizes a slice as torch's fake ``slice`` does: the same sizes
and the same guards, in the same order, on symbolic and concrete inputs (negative and
out-of-range bounds, steps, a symbolic end, Swin's unpad of a padded map), but for the
0/1 questions torch asks while it builds the view (a view the rule never builds)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import sympy as sp
import torch

from symflops.tracing import _torch_compat as C
from symflops.tracing._shape_rules import _slice, _slice_sizes

BIG = sys.maxsize
CASES = {  # id -> (dim, start, end, step); "H" in a bound is the symbolic size H
    "drop-last-window": (1, 0, -7, 1),
    "between-negatives": (1, -7, -3, 1),
    "tail-to-the-end": (1, -3, BIG, 1),
    "every-other": (0, 1, BIG, 2),
    "end-past-the-size": (2, 2, 100, 3),
    "start-before-the-start": (2, -100, 5, 1),
    "whole": (1, None, None, 1),
    "empty": (2, 5, 2, 1),
    "symbolic-end": (1, 0, "H", 1),
    "last-dim-negative-index": (-1, 0, 3, 2),
}


def _slice_of(case: tuple[Any, ...], padded: bool) -> tuple[list[Any], list[Any],
                                                             list[Any], list[Any]]:
    """(ours, torch's) sizes and guards, each side in a fresh environment."""
    out = []
    for ours in (True, False):
        env = C.SymEnv()
        with env.mode:
            b, h, w = env.symint("B", 3), env.symint("H", 12), env.symint("W", 17)
            rows = 7 * ((h + 6) // 7) if padded else h  # Swin pads H up to its window
            x = torch.empty((b, rows, w, 8), device="meta")
            dim, start, end, step = (h if v == "H" else v for v in case)
            if ours:
                sizes = _slice_sizes(x, dim, start, end, step)
            else:
                sizes = list(torch.ops.aten.slice.Tensor(x, dim, start, end, step).shape)
        assert sizes is not None
        out += [[C.sym_expr(s) for s in sizes], [g.expr for g in env.shape_env.guards]]
        env.close()
    return out[0], out[2], out[1], out[3]


@pytest.mark.parametrize("padded", [False, True], ids=["plain", "padded"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_slice_sizes_and_guards_are_torchs(case: tuple[Any, ...], padded: bool) -> None:
    ours, theirs, our_guards, their_guards = _slice_of(case, padded)
    assert ours == theirs
    # torch's guards in its order; past them it records only what building its view asks
    # (the new size not 0, an inner block of the view above one element), of a tensor the
    # rule does not build
    assert our_guards == [g for g in their_guards if g in our_guards]
    dim = case[0] % len(theirs)
    layout = {sp.Ne(theirs[dim], 0), *(sp.Mul(*theirs[k:]) > 1 for k in range(dim + 1))}
    assert set(their_guards) - set(our_guards) <= layout


def test_slice_rule_answers_a_fresh_contiguous_tensor_of_those_sizes() -> None:
    env = C.SymEnv()
    with env.mode, torch.no_grad():
        h = env.symint("H", 12)
        x = torch.empty((2, 7 * ((h + 6) // 7), 5), device="meta")
        out = _slice((x, 1, 0, h), {})
        assert out is not None and out is not x
        assert [C.sym_expr(s) for s in out.shape] == [2, C.sym_expr(h), 5]
        assert [C.sym_expr(s) for s in out.stride()] == [5 * C.sym_expr(h), 5, 1]
    env.close()


@pytest.mark.parametrize("args", [(1, 0, 4, 0), (1, 0, 4, -1), (3, 0, 4, 1)],
                         ids=["step-0", "negative-step", "dim-out-of-range"])
def test_slice_sizes_leave_what_torch_refuses_to_torch(args: tuple[Any, ...]) -> None:
    # None: the rule lets torch's own slice run, and raise its own error
    x = torch.empty((2, 5, 3), device="meta")
    assert _slice_sizes(x, *args) is None
    with pytest.raises((RuntimeError, IndexError, TypeError)):
        torch.ops.aten.slice.Tensor(x, *args)
