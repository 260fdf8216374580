"""Backward (and training-only) rates checked against what torch computes.

The norm gradients are counted op by op from torch's decompositions
(``torch/_decomp/decompositions.py``). Here each decomposition is run through
``make_fx`` at concrete sizes, the outputs that are not requested are dropped and the
dead code eliminated (what the CPU kernels skip), and every remaining arithmetic node is
counted: an elementwise op once per element of its result, a sum ``in - out`` adds (a
mean one divide more per output); views and casts nothing; any other op fails the test,
so a decomposition that changes is noticed. The counts of ``symflops.formulas`` must equal
these counts for every output mask, part by part: a part counts what the outputs up to
it need beyond what the requested outputs before it need.
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops import formulas

try:  # python -m pytest (the repository root on sys.path)
    from tests import bruteforce as bf
except ImportError:  # plain pytest: tests/ itself is on sys.path
    import bruteforce as bf  # type: ignore[no-redef]

torch = pytest.importorskip("torch")
decomp = pytest.importorskip("torch._decomp.decompositions")
make_fx = pytest.importorskip("torch.fx.experimental.proxy_tensor").make_fx

PARTS = ("grad_input", "grad_weight", "grad_bias")

#: aten ops that move, view or cast data, or draw random numbers: no arithmetic
FREE = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "expand", "_to_copy",
        "clone", "permute", "alias", "t", "detach", "copy", "empty_like", "ones", "zeros",
        "full", "scalar_tensor", "lift_fresh_copy", "new_zeros", "contiguous", "rand_like",
        "rand"}
#: aten ops that do one operation per element of their result
POINTWISE = {"add", "sub", "mul", "div", "rsqrt", "neg", "pow", "sqrt", "reciprocal", "rsub",
             "gt", "lt"}


def _numel(t: Any) -> int:
    return math.prod(t.shape)


def decomposition_ops(fn: Callable[..., Any], args: tuple[Any, ...], keep: tuple[bool, ...],
                      var_mean: int | None = None) -> int:
    """Arithmetic of ``fn(*args)`` (a torch decomposition) that the outputs marked in
    ``keep`` need, counted node by node of its FX graph (``var_mean``: what one
    ``aten.var_mean`` counts, when it is to be allowed)."""
    gm = make_fx(fn)(*args)
    graph = gm.graph
    output = next(n for n in graph.nodes if n.op == "output")
    values = output.args[0] if isinstance(output.args[0], (tuple, list)) else (
        output.args[0],)
    output.args = (tuple(v if k else None for v, k in
                         itertools.zip_longest(values, keep, fillvalue=False)),)
    graph.eliminate_dead_code()
    total = 0
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if not hasattr(node.target, "_overloadpacket"):  # packing or unpacking a tuple
            assert node.target is operator.getitem or getattr(
                node.target, "__name__", "").startswith("return_types"), node
            continue
        name = node.target._overloadpacket.__name__
        result = node.meta["val"]
        if name in FREE:
            continue
        if name in POINTWISE:
            total += _numel(result)
        elif name == "var_mean" and var_mean is not None:
            total += var_mean
        elif name in ("sum", "mean"):
            total += _numel(node.args[0].meta["val"]) - _numel(result)
            total += _numel(result) if name == "mean" else 0
        else:
            raise AssertionError(f"{name}: not a counted op; classify it")
    return total


def _t(*shape: int) -> Any:
    return torch.randn(*shape, dtype=torch.float64)


# --------------------------------------------------------------------- the norm families
# Each: (sizes) -> (decomposition, its tensors, derivations per output mask)
def _batch_norm(training: bool, weight: bool) -> Callable[..., Any]:
    def make(b: int, c: int, h: int, w: int) -> Any:
        x, g = _t(b, c, h, w), _t(b, c, h, w)
        wt, mean, invstd = _t(c), _t(c), torch.rand(c, dtype=torch.float64) + 0.5

        def fn(g: Any, x: Any, mean: Any, invstd: Any, *wt: Any) -> Any:
            return decomp.native_batch_norm_backward(g, x, wt[0] if wt else None, mean,
                                                     invstd, mean, invstd, training, 1e-5,
                                                     [True] * 3)

        def derive(mask: tuple[bool, ...]) -> Any:
            return formulas.norm.batch_norm_grad_derivations(
                b * c * h * w, c, training=training, weight=weight, output_mask=mask)
        return fn, (g, x, mean, invstd) + ((wt,) if weight else ()), derive, 3
    return make


def _group_norm(weight: bool) -> Callable[..., Any]:
    def make(b: int, c: int, p: int, groups: int) -> Any:
        x, g, wt = _t(b, c, p), _t(b, c, p), _t(c)
        mean, rstd = _t(b, groups), torch.rand(b, groups, dtype=torch.float64) + 0.5

        def fn(g: Any, x: Any, mean: Any, rstd: Any, *wt: Any) -> Any:
            return decomp.native_group_norm_backward(g, x, mean, rstd, wt[0] if wt else None,
                                                     b, c, p, groups, [True] * 3)

        def derive(mask: tuple[bool, ...]) -> Any:
            return formulas.norm.group_norm_grad_derivations(b, groups, c, p, weight=weight,
                                                        output_mask=mask)
        return fn, (g, x, mean, rstd) + ((wt,) if weight else ()), derive, 3
    return make


def _rms_norm(weight: bool) -> Callable[..., Any]:
    def make(rows: int, n: int) -> Any:
        x, g, wt, rstd = _t(rows, n), _t(rows, n), _t(n), torch.rand(rows, dtype=torch.float64)

        def fn(g: Any, x: Any, rstd: Any, *wt: Any) -> Any:
            return decomp._fused_rms_norm_backward(g, x, [n], rstd, wt[0] if wt else None,
                                                   [True, True])

        def derive(mask: tuple[bool, ...]) -> Any:
            return formulas.norm.rms_norm_grad_derivations(rows, n, weight=weight,
                                                      output_mask=(mask[0], mask[1]))
        return fn, (g, x, rstd) + ((wt,) if weight else ()), derive, 2
    return make


def _layer_norm(weight: bool) -> Callable[..., Any]:
    def make(rows: int, n: int) -> Any:
        x, g, wt, b = _t(rows, n), _t(rows, n), _t(n), _t(n)
        mean, rstd = _t(rows, 1), torch.rand(rows, 1, dtype=torch.float64) + 0.5

        def fn(g: Any, x: Any, mean: Any, rstd: Any, *wb: Any) -> Any:
            wt, b = wb or (None, None)
            return decomp.native_layer_norm_backward(g, x, [n], mean, rstd, wt, b, [True] * 3)

        def derive(mask: tuple[bool, ...]) -> Any:
            return formulas.norm.layer_norm_grad_derivations(rows, n, weight=weight, bias=weight,
                                                        output_mask=mask)
        return fn, (g, x, mean, rstd) + ((wt, b) if weight else ()), derive, 3
    return make


#: id -> (family, two size tuples)
NORMS: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]]]] = {
    "batch_norm-train": (_batch_norm(True, True), [(2, 6, 3, 5), (3, 4, 2, 2)]),
    "batch_norm-train-no_affine": (_batch_norm(True, False), [(2, 6, 3, 5), (3, 4, 2, 2)]),
    "batch_norm-eval": (_batch_norm(False, True), [(2, 6, 3, 5), (3, 4, 2, 2)]),
    "group_norm": (_group_norm(True), [(2, 6, 5, 3), (3, 8, 7, 2)]),
    "group_norm-no_affine": (_group_norm(False), [(2, 6, 5, 3), (3, 8, 7, 2)]),
    "rms_norm": (_rms_norm(True), [(4, 6), (3, 10)]),
    "rms_norm-no_weight": (_rms_norm(False), [(4, 6), (3, 10)]),
    "layer_norm": (_layer_norm(True), [(4, 6), (3, 10)]),
    "layer_norm-no_affine": (_layer_norm(False), [(4, 6), (3, 10)]),
}


def _norm_cases() -> list[Any]:
    cases = []
    for name, (_, sizes) in NORMS.items():
        for mask in itertools.product((True, False), repeat=3):
            if any(mask) and not ("rms" in name and not any(mask[:2])):
                for size in sizes:
                    flags = "".join("iwb"[j] if m else "-" for j, m in enumerate(mask))
                    cases.append(pytest.param(name, mask, size,
                                              id=f"{name}-{flags}-{'x'.join(map(str, size))}"))
    return cases


@pytest.mark.parametrize(("family", "mask", "size"), _norm_cases())
def test_norm_grads_count_the_decomposition(family: str, mask: tuple[bool, bool, bool],
                                            size: tuple[int, ...]) -> None:
    make, _ = NORMS[family]
    fn, args, derive, outputs = make(*size)
    # the outputs the layer has: grad_input always; no weight, no weight (and, but for
    # GroupNorm, no bias) gradient
    weighted = "no_" not in family
    producible = (mask[0], mask[1] and weighted,
                  mask[2] and (weighted or family.startswith("group")))[:outputs]
    mask = mask[:outputs]
    if not any(producible):
        return
    got = {name: int(d.work.get("elementwise", 0)) for name, d in derive(mask).items()}
    for j, part in enumerate(PARTS[:outputs]):
        if not producible[j]:
            assert part not in got
            continue
        before = tuple(producible[k] and k < j for k in range(outputs))
        upto = tuple(producible[k] and k <= j for k in range(outputs))
        want = decomposition_ops(fn, args, upto) - (
            decomposition_ops(fn, args, before) if any(before) else 0)
        # a part with nothing left to compute is not reported
        assert got.get(part, 0) == want, (part, got)


# the decompositions compute torch's gradients (so counting them counts the right thing)
@pytest.mark.parametrize("family", ["batch_norm", "group_norm", "rms_norm"])
def test_decompositions_give_autograds_gradients(family: str) -> None:
    torch.manual_seed(0)
    x = _t(2, 6, 5).requires_grad_()
    g = _t(2, 6, 5)
    layer = {"batch_norm": torch.nn.BatchNorm1d(6), "group_norm": torch.nn.GroupNorm(3, 6),
             "rms_norm": torch.nn.RMSNorm(5, eps=1e-6)}[family].double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape))
    layer(x).backward(g)
    xd = x.detach()
    if family == "batch_norm":
        mean, var = xd.mean((0, 2)), xd.var((0, 2), unbiased=False)
        out = decomp.native_batch_norm_backward(g, xd, layer.weight, None, None, mean,
                                                torch.rsqrt(var + layer.eps), True,
                                                layer.eps, [True] * 3)
    elif family == "group_norm":
        xg = xd.reshape(2, 3, -1)
        mean, var = xg.mean(-1), xg.var(-1, unbiased=False)
        out = decomp.native_group_norm_backward(g, xd, mean, torch.rsqrt(var + layer.eps),
                                                layer.weight, 2, 6, 5, 3, [True] * 3)
    else:
        rstd = torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-6)
        out = decomp._fused_rms_norm_backward(g, xd, [5], rstd, layer.weight, [True, True])
    assert torch.allclose(out[0], x.grad, atol=1e-9)
    assert torch.allclose(out[1], layer.weight.grad, atol=1e-9)


# --------------------------------------------------------------------- traced gradients
def _traced(model: Any, inputs: Any) -> dict[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(model, inputs, mode="train")
    return {leaf.spec: sum(int(v) for v in leaf.work.values()) for _, leaf in cost.leaves()}


def test_traced_batch_norm_gradients() -> None:
    tnn = torch.nn
    # Conv(1->6) then BatchNorm2d(6) on (2, 1, 3, 5): M = 180, C = 6; grad_input 9M + 3C,
    # grad_weight then C, grad_bias the sum already made (no part)
    got = _traced(tnn.Sequential(tnn.Conv2d(1, 6, 1), tnn.BatchNorm2d(6)), (2, 1, 3, 5))
    assert got["aten.native_batch_norm_backward (grad_input)"] == 9 * 180 + 3 * 6
    assert got["aten.native_batch_norm_backward (grad_weight)"] == 6
    assert "aten.native_batch_norm_backward (grad_bias)" not in got
    # BatchNorm first (its input needs no gradient): M = 30, C = 1; grad_weight 3M alone,
    # grad_bias M - C alone
    got = _traced(tnn.Sequential(tnn.BatchNorm2d(1), tnn.Conv2d(1, 6, 1)), (2, 1, 3, 5))
    assert "aten.native_batch_norm_backward (grad_input)" not in got
    assert got["aten.native_batch_norm_backward (grad_weight)"] == 3 * 30
    assert got["aten.native_batch_norm_backward (grad_bias)"] == 30 - 1


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_traced_group_norm_gradients(affine: bool) -> None:
    tnn = torch.nn
    # GroupNorm(3, 6) on (2, 6, 3, 5): B = 2, C = 6, P = 15, G = 3, T = 180;
    # grad_input 7T + (1 + 2w) BC + 9 BG; grad_weight 3BC + (B - 1) C; grad_bias (B - 1) C
    got = _traced(tnn.Sequential(tnn.Conv2d(1, 6, 1), tnn.GroupNorm(3, 6, affine=affine)),
                  (2, 1, 3, 5))
    w = 1 if affine else 0
    assert got["aten.native_group_norm_backward (grad_input)"] == \
        7 * 180 + (1 + 2 * w) * 12 + 9 * 6
    if affine:
        assert got["aten.native_group_norm_backward (grad_weight)"] == 3 * 12 + 6
        assert got["aten.native_group_norm_backward (grad_bias)"] == 6
    else:
        assert not any("group_norm" in k and ("grad_weight" in k or "grad_bias" in k)
                       for k in got)


# --------------------------------------------------------------------- dropout
def test_native_dropout_decomposition_is_three_per_element() -> None:
    x = _t(4, 6)
    ops = decomposition_ops(lambda x: decomp.native_dropout(x, 0.25, True), (x,),
                            (True, True))
    assert ops == 3 * 24


@pytest.mark.parametrize(("p", "train", "want"),
                         [(0.25, True, 3 * 24), (0.25, False, 0), (0.0, True, 0),
                          (1.0, True, 0)],
                         ids=["train", "eval", "p0", "p1"])
def test_traced_native_dropout(p: float, train: bool, want: int) -> None:
    class Drop(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.ops.aten.native_dropout(x, p, train)[0]

    # (4, 6) input: 24 elements, 3 each in training, identity (or zeros) otherwise
    got = _traced_eval(Drop(), (4, 6))
    assert got.get("aten.native_dropout", 0) == want


def _traced_eval(model: Any, inputs: Any) -> dict[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(model, inputs)
    return {leaf.spec: sum(int(v) for v in leaf.work.values()) for _, leaf in cost.leaves()}


# --------------------------------------------------------------------- average pooling
def _avg_pool_adds(shape: tuple[int, ...], kernel: int, stride: int, padding: int,
                   ceil_mode: bool) -> tuple[int, int]:
    """(adds, outputs) of torch's avg_pool2d gradient: with ``divisor_override=1`` and a
    gradient of ones, each input element's gradient is the number of windows that add
    into it, so their sum is the adds the kernel does."""
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode,
                                       divisor_override=1)
    y.backward(torch.ones_like(y))
    return int(x.grad.sum()), y.numel()


#: id -> (kernel, stride, padding, ceil_mode, spatial sizes tried)
AVG_POOLS = {
    "k3-s1-p1": (3, 1, 1, False, [(4, 4), (5, 7), (1, 1)]),
    "k3-s2-p1": (3, 2, 1, False, [(4, 4), (5, 7), (8, 9)]),
    "k2-s2-ceil": (2, 2, 0, True, [(5, 5), (4, 7), (1, 3)]),
    "k3-s2-p1-ceil": (3, 2, 1, True, [(6, 6), (5, 8), (2, 2)]),
    "k5-s1-p2": (5, 1, 2, False, [(1, 1), (2, 3), (6, 6)]),
    "k4-s3-p2-ceil": (4, 3, 2, True, [(1, 2), (7, 5), (10, 11)]),
}


def _avg_pool_model(kernel: int, stride: int, padding: int, ceil_mode: bool) -> Any:
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 2, 1), tnn.AvgPool2d(kernel, stride, padding,
                                                             ceil_mode=ceil_mode))


@pytest.mark.parametrize("case", sorted(AVG_POOLS))
def test_avg_pool_grad_is_exact_with_padding_and_ceil_mode(case: str) -> None:
    kernel, stride, padding, ceil_mode, sizes = AVG_POOLS[case]
    for h, w in sizes:
        adds, outputs = _avg_pool_adds((1, 2, h, w), kernel, stride, padding, ceil_mode)
        got = _traced(_avg_pool_model(kernel, stride, padding, ceil_mode), (1, 1, h, w))
        # one divide per output gradient, one add per (window, input element) pair
        assert got["aten.avg_pool2d_backward"] == outputs + adds, (h, w)
        # per dim, the formula's clipped window totals multiply to the adds
        totals = [formulas.pool.avg_pool_grad_window_total(
            s, formulas.pool.pool_output_size(s, kernel, stride, padding, 1,
                                              ceil_mode), kernel, stride,
            padding) for s in (h, w)]
        assert 2 * totals[0] * totals[1] == adds


@pytest.mark.parametrize("case", ["k3-s2-p1", "k3-s2-p1-ceil", "k2-s2-ceil"])
def test_avg_pool_grad_symbolic_trace_is_exact(case: str) -> None:
    kernel, stride, padding, ceil_mode, _ = AVG_POOLS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(_avg_pool_model(kernel, stride, padding, ceil_mode), "1 1 H W",
                        hints={"H": 9, "W": 12}, mode="train")
    leaf = next(leaf for _, leaf in cost.leaves() if leaf.spec == "aten.avg_pool2d_backward")
    total = sum(leaf.work.values())
    names = {s.name: s for s in total.free_symbols}
    assert set(names) == {"H", "W"}
    for h, w in [(9, 12), (10, 13), (11, 11), (16, 21)]:
        adds, outputs = _avg_pool_adds((1, 2, h, w), kernel, stride, padding, ceil_mode)
        assert total.subs({names["H"]: h, names["W"]: w}) == outputs + adds, (h, w)


# --------------------------------------------------------------------- ceil_mode pooling
@pytest.mark.parametrize(("kind", "kernel", "stride", "padding"),
                         [("max", 3, 2, 1), ("avg", 3, 2, 0), ("max", 2, 2, 0),
                          ("avg", 4, 3, 1)],
                         ids=["max-k3-s2-p1", "avg-k3-s2", "max-k2-s2", "avg-k4-s3-p1"])
def test_traced_ceil_mode_pooling_on_symbolic_sizes_is_exact(kind: str, kernel: int,
                                                            stride: int, padding: int) -> None:
    """A symbolic trace of ceil_mode pooling counts a last window that sticks out past the
    padded input by its elements (not as a full window): evaluated at sizes where it fits
    and where it sticks out, it equals the brute-force count of every window."""
    tnn = torch.nn
    pool = (tnn.MaxPool2d(kernel, stride, padding, ceil_mode=True) if kind == "max" else
            tnn.AvgPool2d(kernel, stride, padding, ceil_mode=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(tnn.Sequential(pool), "1 2 H W", hints={"H": 9, "W": 12})
    leaf = next(leaf for _, leaf in cost.leaves() if "pool" in leaf.op)
    total = sum(leaf.work.values())
    names = {s.name: s for s in total.free_symbols}
    for h, w in [(9, 12), (10, 13), (11, 11), (16, 21), (8, 7)]:
        want, _, _ = bf.pool((1, 2, h, w), kind, (kernel,) * 2, (stride,) * 2,
                             (padding,) * 2, (1, 1), ceil_mode=True)
        assert total.subs({names["H"]: h, names["W"]: w}) == sum(want.values()), (h, w)


# --------------------------------------------------------------------- embedding padding_idx
def _embedding(padding_idx: int | None) -> Any:
    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4, padding_idx=padding_idx)

        def forward(self, input_ids: Any) -> Any:
            return self.emb(input_ids)

    return Model()


@pytest.mark.parametrize("padding_idx", [None, 0], ids=["no_padding_idx", "padding_idx"])
def test_embedding_grad_with_padding_idx_is_labelled_a_data_dependent_bound(
        padding_idx: int | None) -> None:
    """With a padding_idx torch's kernel adds dim values fewer per index equal to it
    (each add of a gradient of ones adds 1, so the weight gradient's sum is the adds
    done): the B*N*dim count is reached only without padding hits, and the leaf says it
    is a data-dependent bound; without a padding_idx it is exact and says nothing."""
    model = _embedding(padding_idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = sf.trace(model, {"input_ids": (2, 3)}, mode="train")
    leaf = next(leaf for _, leaf in cost.leaves() if leaf.op == "aten.embedding_dense_backward")
    bound = int(leaf.work["elementwise"])
    assert bound == 2 * 3 * 4
    labelled = "DATA-DEPENDENT" in leaf.derivation.explanation and \
        leaf.derivation.rates.get("elementwise", "").startswith("data-dependent")
    assert labelled == (padding_idx is not None)
    # and the Cost itself says so, where a user reads what a count cannot know
    noted = [n for n in leaf.notes if n.startswith("data-dependent")]
    assert len(noted) == (padding_idx is not None)
    for ids, hits in [([[1, 2, 3], [4, 5, 6]], 0), ([[0, 2, 3], [4, 0, 6]], 2)]:
        model.zero_grad()
        out = model(torch.tensor(ids))
        out.backward(torch.ones_like(out))
        adds = int(model.emb.weight.grad.sum())
        assert adds == bound - (4 * hits if padding_idx is not None else 0)


@pytest.mark.slow  # 7 s here
@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 5),
       data=st.data())
def test_avg_pool_grad_window_total_is_the_clipped_window_sum(size: int, kernel: int,
                                                             stride: int, data: Any) -> None:
    """Concrete, and symbolic then substituted: the per-dim total equals summing
    ``min(a + k, size) - max(a, 0)`` over every window ``a = o s - p`` torch makes."""
    padding = data.draw(st.integers(0, kernel // 2))
    ceil_mode = data.draw(st.booleans())
    assume(size + 2 * padding >= kernel)  # torch needs one window
    out = formulas.pool.pool_output_size(size, kernel, stride, padding, 1, ceil_mode)
    want = sum(min(o * stride - padding + kernel, size) - max(o * stride - padding, 0)
               for o in range(out))
    assert formulas.pool.avg_pool_grad_window_total(size, out, kernel, stride, padding) == want
    h = sf.symbols.symbol("H")
    symbolic = formulas.pool.avg_pool_grad_window_total(
        h, formulas.pool.pool_output_size(h, kernel, stride, padding, 1, ceil_mode), kernel,
        stride, padding)
    assert symbolic.subs(h, size) == want


def test_avg_pool3d_grad_is_exact_with_padding_and_ceil_mode() -> None:
    # AvgPool3d(3, 2, 1, ceil_mode) after Conv3d(1 -> 2) on (1, 1, 4, 5, 6): one divide per
    # output gradient plus the adds torch's own gradient of ones counts
    tnn = torch.nn
    model = tnn.Sequential(tnn.Conv3d(1, 2, 1), tnn.AvgPool3d(3, 2, 1, ceil_mode=True))
    got = _traced(model, (1, 1, 4, 5, 6))
    x = torch.zeros(1, 2, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.avg_pool3d(x, 3, 2, 1, ceil_mode=True, divisor_override=1)
    y.backward(torch.ones_like(y))
    assert got["aten.avg_pool3d_backward"] == y.numel() + int(x.grad.sum())


# --------------------------------------------------------------------- adaptive pooling
class _HalfPool(torch.nn.Module):
    """Adaptive average pooling to half the input size (an output that follows the input)."""

    def forward(self, x: Any) -> Any:
        return torch.nn.functional.adaptive_avg_pool2d(x, (x.shape[2] // 2, x.shape[3] // 2))


def test_adaptive_pool_to_a_symbolic_output_size_is_an_error_not_a_guess() -> None:
    """Its windows hold in + out - gcd(in, out) elements per dim (H = 9 -> 4: 12, not 9),
    which no formula in H gives here: one SymflopsError naming the op and the fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(sf.errors.SymflopsError) as info:
            sf.trace(_HalfPool(), "1 2 H W", hints={"H": 9, "W": 12})
    text = str(info.value)
    assert "aten._adaptive_avg_pool2d" in text and "floor(H/2)" in text
    assert "fix: give the adaptive pooling a fixed output size" in text


def test_adaptive_pool_to_a_traced_concrete_size_is_exact() -> None:
    # H = 9 -> 4 windows of 3 (12 elements), W = 12 -> 6 windows of 2 (12): 2 planes
    # of 12 * 12 window elements (window - 1 adds and a divide each)
    got = _traced_eval(_HalfPool(), (1, 2, 9, 12))
    want, _, _ = bf.adaptive_pool((1, 2, 9, 12), "avg", (4, 6))
    assert got["aten._adaptive_avg_pool2d"] == sum(want.values()) == 2 * 12 * 12


# --------------------------------------------------------------------- running statistics
@pytest.mark.parametrize("channels", [6, 3])
def test_batch_norm_running_stats_update_is_counted(channels: int) -> None:
    """torch's training BatchNorm decomposition with running statistics does 7 C more
    arithmetic than without (the momentum updates of mean and unbiased variance), which is
    running_stats_derivation's count and a train trace's running_stats part."""
    x = _t(2, channels, 3, 5)
    w, b = _t(channels), _t(channels)
    rm, rv = torch.zeros(channels, dtype=torch.float64), torch.ones(channels,
                                                                    dtype=torch.float64)

    def with_stats(x: Any, w: Any, b: Any, rm: Any, rv: Any) -> Any:
        return decomp.native_batch_norm_helper(x, w, b, rm, rv, True, 0.1, 1e-5, True)

    def without(x: Any, w: Any, b: Any) -> Any:
        return decomp.native_batch_norm_helper(x, w, b, None, None, True, 0.1, 1e-5, True)

    # var_mean is one op whose counting is norm_stats' business: both sides have it once
    extra = (decomposition_ops(with_stats, (x, w, b, rm, rv), (True,) * 5, var_mean=0)
             - decomposition_ops(without, (x, w, b), (True,) * 5, var_mean=0))
    assert extra == 7 * channels
    assert formulas.norm.running_stats_derivation(channels).work == {"elementwise": extra}
    tnn = torch.nn
    got = _traced(tnn.Sequential(tnn.Conv2d(1, channels, 1), tnn.BatchNorm2d(channels)),
                  (2, 1, 3, 5))
    assert got["aten.native_batch_norm (running_stats)"] == extra
