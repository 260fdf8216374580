"""The routing of a mixture of experts: ``aten.sort`` and ``aten.histc`` (transformers'
grouped experts sort the ``T k`` expert ids and histogram them), counted under the exact
convention (compares and adds) and 0 under torch and macs, checked against brute force;
``ceil_log2`` exact in SymPy, in symflops.evaluate and in the report's JavaScript."""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp
import torch

import symflops as sf
from symflops.formulas.sorting import (
    ceil_log2,
    histogram_work,
    merge_sort_compares,
    sort_derivation,
    sort_work,
)
from symflops.rendering._js import RUNTIME, js_expr
from symflops.symbols import B, N, T


# --------------------------------------------------------------------- brute force
def merge_sort(values: list[int]) -> tuple[list[int], int]:
    """A top-down merge sort: (sorted values, compares made)."""
    if len(values) <= 1:
        return list(values), 0
    mid = (len(values) + 1) // 2  # ceil(n/2) left, floor(n/2) right
    left, a = merge_sort(values[:mid])
    right, b = merge_sort(values[mid:])
    out, i, j, compares = [], 0, 0, a + b
    while i < len(left) and j < len(right):
        compares += 1
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:], compares


@pytest.mark.parametrize("n", range(1, 9))
def test_merge_sort_worst_case_over_every_permutation(n: int) -> None:
    # the most compares over all n! orders is W(n) = n L - 2^L + 1, L = ceil(log2 n):
    # n = 5: L = 3, 15 - 8 + 1 = 8; n = 8: 24 - 8 + 1 = 17
    worst = 0
    for p in itertools.permutations(range(n)):
        out, compares = merge_sort(list(p))
        assert out == sorted(p)
        worst = max(worst, compares)
    assert worst == merge_sort_compares(n) == sort_work(1, n).get("elementwise", 0)


def test_closed_form_is_the_recursion_far_out() -> None:
    # W(n) = W(ceil(n/2)) + W(floor(n/2)) + n - 1, and the sum of ceil(log2 i), to 5000
    # and at a few huge n (exact: no float logarithm anywhere)
    w = [0, 0]
    for n in range(2, 5001):
        w.append(w[(n + 1) // 2] + w[n // 2] + n - 1)
    running = 0
    for n in range(1, 5001):
        running += (n - 1).bit_length()
        assert merge_sort_compares(n) == w[n] == running
    for n in (2**61, 2**61 + 1, 3**45, 10**30 + 7):
        lg = int(ceil_log2(n))
        assert 2 ** (lg - 1) < n <= 2**lg
        symbolic = sort_derivation(1, N).work["elementwise"].subs(N, n)
        assert symbolic == merge_sort_compares(n) == n * lg - 2**lg + 1


def test_ceil_log2_refuses_what_it_is_not() -> None:
    with pytest.raises(sf.SymflopsError, match="n >= 1"):
        ceil_log2(0)
    with pytest.raises(sf.SymflopsError, match="integer"):
        ceil_log2(sp.Rational(5, 2))
    assert ceil_log2(N).is_integer and sp.latex(ceil_log2(N)) == \
        r"\left\lceil \log_2 N \right\rceil"


def histc_by_hand(values: list[float], bins: int, lo: float, hi: float
                  ) -> tuple[list[int], int]:
    """A histogram as the formula counts it: (counts, operations)."""
    counts, ops = [0] * bins, 0
    scale = bins / (hi - lo)  # once per call, not counted
    for v in values:
        ops += 2  # lo <= v and v <= hi
        if not lo <= v <= hi:
            ops += 3  # the same work for a value outside (5 per value, by convention)
            continue
        pos = int((v - lo) * scale)  # a subtract and a multiply
        ops += 2
        counts[min(pos, bins - 1)] += 1  # an add
        ops += 1
    return counts, ops


@pytest.mark.parametrize("n,bins", [(7, 3), (40, 8), (1, 1)])
def test_histc_by_hand_is_torchs(n: int, bins: int) -> None:
    rng = random.Random(n)
    ids = [float(rng.randrange(bins)) for _ in range(n)]
    counts, ops = histc_by_hand(ids, bins, 0.0, float(max(bins - 1, 1)))
    want = torch.histc(torch.tensor(ids), bins=bins, min=0, max=max(bins - 1, 1))
    assert counts == [int(c) for c in want]
    assert ops == histogram_work(n)["elementwise"] == 5 * n


# --------------------------------------------------------------------- traced
class Route(torch.nn.Module):
    """The routing of transformers' grouped experts: top-k ids, sorted, histogrammed."""

    def __init__(self, experts: int, k: int) -> None:
        super().__init__()
        self.experts, self.k = experts, k

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        ids = torch.topk(logits, self.k, dim=-1).indices.reshape(-1)
        ids, _ = torch.sort(ids)
        return torch.histc(ids.float(), bins=self.experts, min=0, max=self.experts - 1)


def test_trace_counts_sort_and_histc_exact_zero_under_torch() -> None:
    c = sf.trace(Route(8, 2), "T 8", warn=False)
    assert not c.report.unknown
    # top-2 of 8: 7 + 6 = 13 per token; the sort of the 2T ids: W(2T); histc 5 per id
    want = 13 * T + merge_sort_compares(2 * T) + 5 * 2 * T
    assert sp.expand(c.flops - want) == 0
    for t in (1, 3, 64, 1000):  # far from the trace's hint
        ids = list(range(2 * t))
        random.Random(t).shuffle(ids)
        assert merge_sort(ids)[1] <= merge_sort_compares(2 * t)  # the worst case bounds it
        assert c.subs(T=t).flops == 13 * t + merge_sort_compares(2 * t) + 10 * t
    assert c.with_convention("torch").flops == 0 == c.with_convention("macs").flops
    assert "0 under torch and macs" in c.children[1].derivation.explanation


def test_sort_rows_and_stable_sort() -> None:
    class Sorts(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.sort(x, dim=1).values  # B rows of N, along dim 1 of (B, N, 3)
            return torch.argsort(a, dim=-1, stable=True)  # B N rows of 3

    c = sf.trace(Sorts(), "B N 3", warn=False)
    # per (b, channel) a sort of N: 3 B W(N); per (b, n) a sort of 3 values: 3 compares
    want = 3 * B * merge_sort_compares(N) + B * N * 3
    assert sp.expand(c.flops - want) == 0
    assert c.subs(B=2, N=9).flops == 3 * 2 * (9 * 4 - 16 + 1) + 2 * 9 * 3


def test_evaluate_is_exact_with_ceil_log2() -> None:
    c = sf.trace(Route(4, 2), "T 4", warn=False)
    ts = np.array([1, 2, 5, 1000, 2**40 + 3])
    got = c.evaluate(T=ts)
    assert [int(v) for v in got] == [int(c.subs(T=int(t)).flops) for t in ts]


def test_report_javascript_computes_ceil_log2_exactly() -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (.ci/run installs it)"
    e = 3 * merge_sort_compares(2 * B * N) + 7 * B
    points = [(1, 1), (1, 2), (3, 5), (4, 8), (7, 1000), (123, 4567), (2**40, 2**30 + 1)]
    calls = "".join(f'out.push(f({{"B": Q({b}n), "N": Q({n}n)}}).n.toString());'
                    for b, n in points)
    source = RUNTIME + f"const f = (v) => {js_expr(e)}; const out = []; {calls}" \
        "console.log(JSON.stringify(out));"
    done = subprocess.run([node, "-e", source], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(e.subs({B: b, N: n})) for b, n in points]
