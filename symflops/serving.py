"""Serving quantities derived from an sf.nn model: the KV cache, the memory of a prefill or
a decode step (``Layer.cost(..., mode="prefill" | "decode", context=T)``), and a whole
generation summed in closed form (:func:`generation`).

``kv_cache(model, batch, context)``: the bytes a decoder holds in its key/value cache after
``context`` tokens per sequence, ``batch`` sequences, each attention layer storing its keys and
values (``kv_heads * head_dim`` elements each per token: grouped-query and multi-query attention
store fewer) in ``dtype_bytes`` bytes per element (2 for bf16/fp16, 1 for an 8-bit cache).
This is what transformers' ``DynamicCache`` allocates: per layer a key and a value tensor of
shape ``(batch, kv_heads, context, head_dim)``.

Llama-3-8B (32 layers, 8 KV heads of 128) in bf16: 2 * 32 * 8 * 128 * 2 = 131072 bytes per
token per sequence.

>>> import symflops as sf
>>> from symflops.symbols import B
>>> m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256, hidden=14336)
>>> kv_cache(m, B, "T")
131072*B*T
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.nn import Layer, MultiheadAttention, MultiheadLatentAttention, Repeat, Residual
from symflops.nn._base import nonneg_size, to_size

__all__ = ["kv_cache", "kv_elements_per_token", "kv_elements", "ServingMemory", "serving_memory",
           "generation"]


def kv_elements_per_token(model: Layer) -> sp.Expr:
    """Elements of key and value cached per token per sequence, summed over the model's
    attention layers (a Repeat multiplies its block's count by its repetitions); a
    sliding-window layer's count is per token it holds (:func:`kv_elements`)."""
    return _check_model(model) and _walk(model, set(), None)


def kv_elements(model: Layer, tokens: Any) -> sp.Expr:
    """Elements of key and value the cache holds per sequence after ``tokens`` tokens: each
    attention layer's per-token count times the tokens it keeps (all of them; a
    sliding window of ``W`` keys keeps ``min(tokens, W - 1)``, valid for ``tokens >= 0``).

    >>> import symflops as sf
    >>> from symflops.symbols import T
    >>> a = sf.nn.MultiheadAttention(8, 2, causal=True, window=4096)
    >>> kv_elements(a, T)
    16*Min(4095, T)
    """
    t = nonneg_size(tokens, "kv_cache", "context")
    _check_model(model)
    return _walk(model, set(), t)


def _check_model(model: Any) -> bool:
    if not isinstance(model, Layer):
        raise SymflopsError("kv_cache takes an sf.nn layer", values={"got": type(model).__name__},
                            fix="pass e.g. sf.presets.llama(...)")
    return True


def _walk(layer: Any, seen: set[int], tokens: sp.Expr | None) -> sp.Expr:
    """Cached elements per sequence: per token (``tokens`` None) or after ``tokens``."""
    if id(layer) in seen:
        return sp.Integer(0)
    seen = seen | {id(layer)}
    if isinstance(layer, MultiheadAttention):
        count: sp.Expr = 2 * layer.kv_heads * layer.head_dim
        return count if tokens is None else count * layer.cached_keys(tokens)
    if isinstance(layer, MultiheadLatentAttention):  # the latent and the shared rotary key
        latent: sp.Expr = layer.kv_per_token
        return latent if tokens is None else latent * tokens
    if isinstance(layer, Repeat):
        inner: sp.Expr = layer.n * _walk(layer.block, seen, tokens)
        return inner
    total: sp.Expr = sp.Integer(0)
    for value in vars(layer).values():
        items = value.values() if isinstance(value, Mapping) else \
            value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, Layer):
                total += _walk(item, seen, tokens)
    return total


def kv_cache(model: Layer, batch: Any, context: Any, dtype_bytes: Any = 2) -> sp.Expr:
    """Bytes of the KV cache after ``context`` tokens for ``batch`` sequences (``dtype_bytes``
    per element: 2 for bf16, 1 for an 8-bit cache)."""
    b = to_size(batch, "kv_cache", "batch")
    t = nonneg_size(context, "kv_cache", "context")
    e = to_size(dtype_bytes, "kv_cache", "dtype_bytes")
    if kv_elements_per_token(model) == 0:
        raise SymflopsError("the model has no attention layer, so no KV cache",
                            layer=type(model).__name__,
                            fix="pass a decoder such as sf.presets.llama")
    result: sp.Expr = sp.expand(kv_elements(model, t) * e * b)
    return result



@dataclass(frozen=True)
class ServingMemory:
    """Bytes held while serving: ``weights`` (every parameter in ``weight_bytes``) and
    ``kv_cache`` (what a decode step reads: the ``T`` cached tokens of every sequence, the
    new token's own key and value NOT included; for a prefill, the ``N`` prompt tokens it
    leaves in the cache; a sliding-window layer holds ``min(T, W - 1)`` of them), in
    ``kv_bytes`` per element; ``kv_written``: the keys and values of the step's new tokens
    (appended, in a sliding window before the oldest drop out); ``total``."""

    weights: sp.Expr
    kv_cache: sp.Expr
    kv_written: sp.Expr

    @property
    def total(self) -> sp.Expr:
        """Weights, the cache read and the new tokens' keys and values: the peak during
        the step (the cache after it, for a model without a sliding window)."""
        return sp.expand(self.weights + self.kv_cache + self.kv_written)

    def xreplace(self, mapping: Mapping[Any, Any]) -> ServingMemory:
        return ServingMemory(*(sp.sympify(v).xreplace(mapping)
                               for v in (self.weights, self.kv_cache, self.kv_written)))


def serving_memory(model: Layer, cost: Cost, shape: tuple[sp.Expr, ...], cached: sp.Expr,
                   mode: str, kv_bytes: Any, weight_bytes: Any) -> ServingMemory:
    """The :class:`ServingMemory` of ``model`` run on ``shape`` (``(B, N, ...)``: ``B``
    sequences of ``N`` new tokens) with ``cached`` tokens already in the cache."""
    kv_b = to_size(kv_bytes, "serving", "kv_bytes")
    w_b = to_size(weight_bytes, "serving", "weight_bytes")
    if len(shape) < 2:
        raise SymflopsError(f"mode={mode!r} needs a (B, N, ...) input: sequences of tokens",
                            layer=type(model).__name__, values={"input_shape": shape},
                            fix="pass an input shape like (B, N) or (B, N, dim)")
    batch, new = shape[0], shape[1]
    per_token = kv_elements_per_token(model)
    weights = sp.expand(cost.params * w_b)
    if mode == "prefill":
        return ServingMemory(weights, sp.expand(kv_elements(model, new) * kv_b * batch),
                             sp.Integer(0))
    return ServingMemory(weights, sp.expand(kv_elements(model, cached) * kv_b * batch),
                         sp.expand(per_token * kv_b * batch * new))


def generation(model: Layer, batch: Any, prompt: Any, new: Any, convention: str = "exact",
               **options: Any) -> Cost:
    """A prompt of ``prompt`` tokens for each of ``batch`` sequences, then ``new`` tokens
    generated one at a time: the prefill and the sum over ``t = 0 .. new - 1`` of the decode
    step at context ``prompt + t``, in closed form (the step's cost is a polynomial in its
    context, summed exactly by SymPy). Children ``prefill`` and ``decode`` (the summed
    steps); ``options`` as for ``Layer.cost`` (``kv_bytes``, ``weight_bytes``). ``new`` counts
    the tokens fed through a decode step, so the cache ends with ``prompt + new`` tokens
    (``.memory.kv_written``; a sliding window keeps its last ``W - 1``): transformers'
    ``generate(max_new_tokens=new + 1)`` runs these forwards (its last token is sampled and
    never fed back). With a sliding window the sum is exact too: a polynomial up to the step
    where the cache is full and another after it, joined with ``Min``/``Max``.

    >>> import symflops as sf
    >>> from symflops.symbols import B, N
    >>> G = sf.symbols.symbol("G")
    >>> a = sf.nn.MultiheadAttention(8, 2, bias=False)
    >>> g = generation(a, B, N, G, convention="macs")
    >>> sp.factor(g["decode"].macs - 256*B*G)    # scores and context over N + t + 1 keys
    8*B*G*(G + 2*N + 1)
    """
    b = to_size(batch, "generation", "batch")
    n = to_size(prompt, "generation", "prompt")
    g = to_size(new, "generation", "new")
    width = _input_width(model)
    tail = () if width is None else (width,)
    pre = model.cost((b, n, *tail), mode="prefill", **options)
    t = sp.Dummy("t", integer=True, nonnegative=True)
    step = model.cost((b, sp.Integer(1), *tail), mode="decode", context=n + t, **options)
    summed = {k: _sum_steps(v, t, n, g, model) for k, v in step.work.items()}
    # the steps reuse the prefill's weights: params counted once (in the prefill); a
    # step's conditions hold at the first and the last context (bounds linear in t)
    decode = Cost("decode", "DecodeSteps", spec=f"{g} decode steps", params=0,
                  work=summed, input_shape=step.input_shape, output_shape=step.output_shape,
                  validity=[c.xreplace({t: at}) for _, c in step.domain.conditions
                            for at in (0, g - 1)],
                  notes=(f"{g} decode steps at contexts {n} .. {n} + {g} - 1, summed in "
                         "closed form; their weights are the prefill's",))
    held = pre.memory
    assert isinstance(held, ServingMemory)
    # the cache the generation leaves: N + G tokens (a sliding window's last W - 1)
    kv_b = to_size(options.get("kv_bytes", 2), "generation", "kv_bytes")
    memory = ServingMemory(held.weights, sp.Integer(0),
                           sp.expand(kv_elements(model, n + g) * kv_b * b))
    out = Cost("generation", "Generation", spec=f"generation(prompt={n}, new={g})",
               children=[pre.replace(name="prefill", memory=None), decode],
               input_shape=pre.input_shape, output_shape=step.output_shape).replace(
                   memory=memory)
    return out if convention == "exact" else out.with_convention(convention)


def _sum_steps(expr: sp.Expr, t: sp.Symbol, n: sp.Expr, g: sp.Expr, model: Layer) -> sp.Expr:
    """``sum_{t=0}^{g-1} expr``, exactly: ``expr`` is a polynomial in ``t`` and in at most
    one sliding window's cap ``Min(n + t, c)`` (``c = W - 1``). The cap is ``n + t`` for the
    first ``k = min(max(c - n + 1, 0), g)`` steps and ``c`` after them, so the sum is two
    polynomial sums (SymPy's ``summation`` of a polynomial: Faulhaber, exact) joined at
    ``k``."""
    expr = sp.expand(expr)
    caps = {m for m in expr.atoms(sp.Min) if t in m.free_symbols}
    if not caps:
        return sp.expand(sp.summation(expr, (t, 0, g - 1)))
    if len(caps) > 1:
        raise SymflopsError("a generation over attention layers with different sliding "
                            "windows is not summed in closed form yet",
                            layer=type(model).__name__, values={"caps": sorted(map(str, caps))},
                            fix="give every layer the same window, or sum the decode steps "
                                "at concrete sizes")
    cap = caps.pop()
    limits = [a for a in cap.args if t not in a.free_symbols]
    if len(cap.args) != 2 or len(limits) != 1 or sp.expand(sum(cap.args) - limits[0] - n - t):
        raise SymflopsError("unexpected form of a cached-token count", layer=type(model).__name__,
                            values={"count": cap}, fix="report this model")
    c = limits[0]
    x = sp.Dummy("x", integer=True, nonnegative=True)
    growing = sp.expand(sp.summation(expr.xreplace({cap: n + t}), (t, 0, x - 1)))
    capped = sp.expand(sp.summation(expr.xreplace({cap: c}), (t, 0, x - 1)))
    k = sp.Min(sp.Max(c - n + 1, 0), g)
    total: sp.Expr = growing.xreplace({x: k}) + capped.xreplace({x: g}) - capped.xreplace({x: k})
    return total


def _input_width(model: Layer) -> sp.Expr | None:
    """The feature width a model takes after ``(B, N)`` (None: token ids): its first
    layer's (through Repeat, Residual and Sequential), an attention layer's ``embed_dim``."""
    layer: Any = model
    for _ in range(1000):  # containers nest finitely; the bound only guards a cycle
        if isinstance(layer, Repeat):
            layer = layer.block
        elif isinstance(layer, Residual):
            layer = layer.body
        elif isinstance(getattr(layer, "layers", None), Mapping) and layer.layers:
            layer = next(iter(layer.layers.values()))
        else:
            break
    width = getattr(layer, "embed_dim", None)
    return None if width is None else sp.sympify(width)
