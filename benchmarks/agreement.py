"""Why the counters disagree, verified term by term against symflops' own trace.

Each peer's number is modelled as a base (symflops' MACs, or its torch-convention FLOPs =
2 x MACs) plus a few named *components*, each an exact count taken from the leaves of
symflops' trace at the same size: elements of every normalization, activation, pool and
residual add, the bias adds, the MACs of attention (SDPA or a fused
``nn.MultiheadAttention``). The smallest set of components (each with a small integer rate)
that makes the model equal the peer's number *exactly* is the explanation; when none does,
the residual is printed as unexplained. Nothing is guessed: a sentence appears only when
its arithmetic closes to the last unit.

>>> terms = {"macs": 100, "norm_el": 7, "act_el": 5}
>>> print(explain("ptflops", 110, terms))  # doctest: +ELLIPSIS
MACs (1 per multiply-accumulate) + 2 per activation element (5): matches exactly (ptflops' ...)
>>> explain("fcm_cpu", 200, terms)
'the same count'
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

#: component -> (how to say it, the rates it may carry in a peer's count). Rates are per
#: unit of the term: elements for ``*_el``, multiply-accumulates for ``*macs``; a negative
#: rate is work the peer leaves out.
COMPONENTS: dict[str, tuple[str, tuple[int, ...]]] = {
    "bias": ("{r} per bias add", (1, 2)),
    "norm_el": ("{r} per normalization element", (1, 2, 4, 5)),
    "act_el": ("{r} per activation element", (1, 2)),
    "maxpool_in_el": ("{r} per max-pool input element", (1, 2)),
    "avgpool_in_el": ("{r} per adaptive-average-pool input element", (1, 2)),
    "add_el": ("{r} per residual-add element", (1,)),
    "mul_el": ("{r} per elementwise-multiply element", (1,)),
    "softmax_el": ("{r} per softmax element", (1, 2, 3, 5)),
    "attn_macs": ("counts 0 for attention's QK^T and AV (scaled_dot_product_attention)",
                  (-1, -2)),
    "mha_fast_macs": ("counts 0 for nn.MultiheadAttention's fused CPU fast path "
                      "(its projections and QK^T/AV)", (-1, -2)),
}

#: the base of each peer's number: (term, rate, how to say it)
BASES: dict[str, tuple[int, str]] = {
    "symflops": (2, "torch convention"), "symflops_floor": (2, "torch convention"),
    "fcm_cpu": (2, "torch convention"),
    "fcm_meta": (2, "torch convention"), "fcm_symbolic": (2, "torch convention"),
    "export": (2, "torch convention"), "calflops": (2, "2 x MACs"),
    "fvcore": (1, "MACs (1 per multiply-accumulate)"),
    "ptflops": (1, "MACs (1 per multiply-accumulate)"),
    "ptflops_aten": (1, "MACs (1 per multiply-accumulate)"),
}

#: the largest number of components an explanation may use
MAX_COMPONENTS = 5

#: where a peer's rates come from (read in its source); added after a sentence that closes
WHERE = {
    "ptflops": "ptflops' default backend counts a module's hook and, for nn.ReLU and the "
               "pools, again the torch.nn.functional call it patches (a rate of 2)",
    "fvcore": "fvcore counts 1 per element of batch_norm in eval (2 with affine), 5 per "
              "element of layer_norm, the input of adaptive pools, and nothing for "
              "scaled_dot_product_attention (unsupported op)",
    "fcm_cpu": "on CPU, SDPA dispatches to _scaled_dot_product_flash_attention_for_cpu and "
               "nn.MultiheadAttention to its fused fast path, neither in FlopCounterMode's "
               "registry",
}


def _numel(shape: Any) -> int:
    return math.prod(int(d) for d in shape)


def terms(cost: Any) -> dict[str, int]:
    """The components of a traced ``cost`` substituted at one size (all ints). Trace on
    meta for these: on CPU, ``nn.MultiheadAttention`` may run as one fused op
    (``mha_fast_macs``) whose QK^T/AV part cannot be told apart."""
    t = dict.fromkeys(["macs", *COMPONENTS], 0)
    t["macs"] = int(cost.macs)
    for _path, leaf in cost.leaves():
        op, work = leaf.op, {k: int(v) for k, v in leaf.work.items()}
        out = _numel(leaf.output_shape) if leaf.output_shape else 0
        inp = _numel(leaf.input_shape) if leaf.input_shape else 0
        t["bias"] += work.get("bias", 0)
        if "norm" in op:
            t["norm_el"] += out
        elif work.get("activation"):
            t["act_el"] += out
        elif "max_pool" in op:
            t["maxpool_in_el"] += inp
        elif "avg_pool" in op or op == "aten.mean":
            t["avgpool_in_el"] += inp
        elif op in ("aten.add", "aten.add_"):
            t["add_el"] += out
        elif op in ("aten.mul", "aten.mul_"):
            t["mul_el"] += out
        elif "softmax" in op:
            t["softmax_el"] += out
        if "multi_head_attention" in op:
            t["mha_fast_macs"] += work.get("matmul_mul", 0)
        elif "attention" in op or op in ("aten.bmm", "aten.baddbmm"):
            t["attn_macs"] += work.get("matmul_mul", 0)
    return t


def _candidates(names: list[str]) -> Iterator[tuple[tuple[str, int], ...]]:
    """Every choice of up to MAX_COMPONENTS components with one rate each, fewest first."""
    for k in range(MAX_COMPONENTS + 1):
        for combo in itertools.combinations(names, k):
            yield from itertools.product(*[[(n, r) for r in COMPONENTS[n][1]] for n in combo])


def explain(peer: str, value: int, t: dict[str, int]) -> str:
    """One sentence saying why ``peer``'s ``value`` differs from symflops' count, verified
    exactly against the components ``t`` (from :func:`terms`), or the unexplained residual."""
    scale, base_words = BASES[peer]
    base = scale * t["macs"]
    if value == base:
        return "the same count" if scale == 2 else f"{base_words}: matches exactly"
    names = [n for n in COMPONENTS if t.get(n)]
    found: list[str] = []
    size = None
    for choice in _candidates(names):
        if size is not None and len(choice) > size:
            break
        if base + sum(r * t[n] for n, r in choice) == value:
            size = len(choice)
            found.append(" + ".join(
                COMPONENTS[n][0].format(r=r) + f" ({t[n]:,})" if r > 0 else
                COMPONENTS[n][0] + f": {t[n]:,} MACs lost ({-r} per MAC)" for n, r in choice))
    if found:  # several explanations of the same size: all are given, none is chosen
        where = f" ({WHERE[peer]})" if peer in WHERE else ""
        return f"{base_words} + " + "; or equally ".join(found) + ": matches exactly" + where
    residual = value - base
    return (f"{base_words}: {residual:+,} ({residual / base:+.2%}) not explained by the "
            "components symflops counts (an op it weighs differently)")
