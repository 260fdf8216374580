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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.nn import Layer, MultiheadAttention, MultiheadLatentAttention, Repeat, Residual
from symflops.nn._base import nonneg_size, to_size

__all__ = ["kv_cache", "kv_elements_per_token", "kv_elements", "ServingMemory", "serving_memory",
           "generation", "WeightFormat", "WEIGHT_FORMATS", "SCOPES", "register_weight_format",
           "get_weight_format"]


@dataclass(frozen=True)
class WeightFormat:
    """A way of storing weights: ``bits`` per weight, plus blockwise quantization
    constants: one ``constant_bits`` constant per ``block`` weights and, under double
    quantization, one ``constant2_bits`` constant per ``block2`` first-level constants
    (Dettmers et al. 2023, *QLoRA*, section 3). :attr:`bits_per_param` is exact when every
    quantized tensor holds a multiple of ``block * block2`` weights (else each tensor has
    ``ceil`` of its blocks; bitsandbytes also keeps one offset per tensor for the
    second level).

    ``scope``: which parameters the format stores (:data:`SCOPES`); the others stay in
    ``kept_bytes`` per parameter (``None``: the ``weight_bytes`` the cost was asked for,
    2 by default). ``"all"``: every parameter; ``"linear"``: the weight matrices of the
    linear layers except the output head ``lm_head``, as bitsandbytes quantizes a model
    through transformers 5 (``Linear4bit`` replaces each ``nn.Linear`` but the output
    embedding; biases, norms, embedding tables, MoE routers and routed experts, which are
    not ``nn.Linear`` there, keep their dtype); ``"matrices"``: every weight of two or more
    dimensions (linear, expert, embedding and convolution weights, the head included) but
    MoE routers, as ``llama-quantize --pure`` writes a GGUF file, whose one-dimensional
    tensors (norms, biases) are float32.

    >>> WEIGHT_FORMATS["nf4-dq"].bits_per_param     # 4 + 8/64 + 32/(64*256)
    2113/512
    """

    name: str
    bits: int
    block: int = 1
    constant_bits: int = 0
    block2: int = 1
    constant2_bits: int = 0
    description: str = ""
    scope: str = "all"
    kept_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise SymflopsError("unknown quantization scope", layer="WeightFormat",
                                values={"scope": repr(self.scope)},
                                fix="use one of " + ", ".join(repr(k) for k in SCOPES))
        if self.kept_bytes is not None and (isinstance(self.kept_bytes, bool) or not
                                            isinstance(self.kept_bytes, int)
                                            or self.kept_bytes < 1):
            raise SymflopsError("kept_bytes must be an int >= 1 or None",
                                layer="WeightFormat", values={"kept_bytes": self.kept_bytes},
                                fix="e.g. kept_bytes=4 for float32 norms")
        for what in ("bits", "block", "block2"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SymflopsError(f"{what} must be an int >= 1", layer="WeightFormat",
                                    values={what: repr(v)}, fix="e.g. bits=4, block=64")
        for what in ("constant_bits", "constant2_bits"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SymflopsError(f"{what} must be an int >= 0", layer="WeightFormat",
                                    values={what: repr(v)}, fix="e.g. constant_bits=32")

    @property
    def constant_overhead(self) -> sp.Rational:
        """Bits of quantization constants per weight: ``c/b + c2/(b b2)``."""
        return sp.Rational(self.constant_bits, self.block) + \
            sp.Rational(self.constant2_bits, self.block * self.block2)

    @property
    def bits_per_param(self) -> sp.Rational:
        """Bits per weight, the constants included."""
        return self.bits + self.constant_overhead

    def bytes(self, params: Any) -> sp.Expr:
        """Bytes of ``params`` weights in this format."""
        return sp.expand(sp.sympify(params) * self.bits_per_param / 8)

    def weight_bytes(self, cost: Cost, kept_bytes: Any = 2) -> sp.Expr:
        """Bytes of all of ``cost``'s parameters: those in :attr:`scope` in this format,
        the rest in :attr:`kept_bytes` (``None``: ``kept_bytes`` given here)."""
        stored, kept = _split_params(cost, self.scope)
        other = kept_bytes if self.kept_bytes is None else self.kept_bytes
        return sp.expand(self.bytes(stored) + kept * sp.sympify(other))

    def rate(self, kept_bytes: Any = 2) -> Callable[[Cost, str, bool], sp.Expr]:
        """Bytes per parameter of one node holding weights (``node, parent layer, inside
        an Experts block``), for :func:`with_traffic`."""
        other = sp.sympify(kept_bytes if self.kept_bytes is None else self.kept_bytes)

        def per_param(node: Cost, parent: str, in_experts: bool) -> sp.Expr:
            if node.params == 0:
                return sp.Integer(0)
            stored, kept = _leaf_split(node, self.scope, parent, in_experts)
            rate: sp.Expr = (self.bytes(stored) + kept * other) / node.params
            return rate
        return per_param


#: what a :class:`WeightFormat` stores in its bits (the rest stays in 16 or 32 bits)
SCOPES = {"all": "every parameter",
          "linear": "the weight matrices of nn.Linear layers, except lm_head",
          "matrices": "every weight of two or more dimensions, except MoE routers"}


def _leaf_split(leaf: Cost, scope: str, parent: str, in_experts: bool
                ) -> tuple[sp.Expr, sp.Expr]:
    """``(stored in the format, kept)`` parameters of one node that holds weights of its
    own (a leaf, or a Linear): a Linear an ``in x out`` matrix (the rest is its bias), an
    Embedding or convolution its table or kernel (the rest is a bias). In an MoE block the
    router stays (transformers 5 holds it in a ``TopKRouter``, not an ``nn.Linear``;
    llama.cpp does not quantize ``ffn_gate_inp``), and the routed experts (3-D parameters
    in transformers 5, which bitsandbytes leaves alone; GGUF quantizes them)."""
    p = leaf.params
    if scope == "all":
        return p, sp.Integer(0)
    if in_experts:
        return (p, sp.Integer(0)) if scope == "matrices" else (sp.Integer(0), p)
    if parent == "MoE" and leaf.name == "gate":
        return sp.Integer(0), p
    if leaf.layer == "Linear":
        matrix = leaf.input_shape[-1] * leaf.output_shape[-1]
        if scope == "linear" and leaf.name == "lm_head":
            matrix = sp.Integer(0)
        return matrix, p - matrix
    if scope == "matrices" and (leaf.layer == "Embedding" or leaf.layer.startswith("Conv")):
        bias = leaf.output_shape[1] if leaf.layer.startswith("Conv") and \
            "bias=False" not in leaf.spec else 0
        return p - bias, sp.sympify(bias)
    return sp.Integer(0), p


def _split_params(cost: Cost, scope: str, parent: str = "", in_experts: bool = False
                  ) -> tuple[sp.Expr, sp.Expr]:
    """``(stored in the format, kept)`` parameters of ``cost`` under ``scope``, from its
    tree (each node's own by :func:`_leaf_split`)."""
    if scope == "all" or cost.params == 0:
        return (cost.params, sp.Integer(0)) if scope == "all" else \
            (sp.Integer(0), sp.Integer(0))
    if not cost.children or cost.layer == "Linear":
        return _leaf_split(cost, scope, parent, in_experts)
    inside = in_experts or cost.layer == "Experts"
    stored, kept = [], []
    for child in cost.children:
        a, b = _split_params(child, scope, cost.layer, inside)
        stored.append(child.count * a)
        kept.append(child.count * b)
    own = sp.expand(cost.params - sp.Add(*stored) - sp.Add(*kept))  # e.g. a class token
    return sp.expand(sp.Add(*stored)), sp.expand(sp.Add(*kept) + own)


_WEIGHT_FORMATS: dict[str, WeightFormat] = {}


def register_weight_format(fmt: WeightFormat, *, replace: bool = False) -> WeightFormat:
    """Make ``fmt`` available by name (a name registered twice raises)."""
    if not isinstance(fmt, WeightFormat):
        raise SymflopsError("register a WeightFormat", values={"got": type(fmt).__name__},
                            fix="pass symflops.serving.WeightFormat(name, bits, ...)")
    if fmt.name in _WEIGHT_FORMATS and not replace:
        raise SymflopsError("a weight format with this name is already registered",
                            values={"name": fmt.name}, fix="pick another name or replace=True")
    _WEIGHT_FORMATS[fmt.name] = fmt
    return fmt


def get_weight_format(name: Any) -> WeightFormat:
    """A registered :class:`WeightFormat` by name (a WeightFormat passes through)."""
    if isinstance(name, WeightFormat):
        return name
    if isinstance(name, str) and name in _WEIGHT_FORMATS:
        return _WEIGHT_FORMATS[name]
    raise SymflopsError("unknown weight format", layer="serving",
                        values={"weight_format": repr(name)},
                        fix="use one of " + ", ".join(sorted(_WEIGHT_FORMATS))
                            + " or a symflops.serving.WeightFormat")


for _fmt in (
    WeightFormat("fp32", 32, description="IEEE single precision"),
    WeightFormat("bf16", 16, description="bfloat16"),
    WeightFormat("fp16", 16, description="IEEE half precision"),
    WeightFormat("nf4", 4, 64, 32, description="QLoRA's 4-bit NormalFloat, one fp32 absmax "
                 "per block of 64 (Dettmers et al. 2023, section 3): 4 + 32/64 = 4.5 bits; "
                 "the linear layers but lm_head, as bitsandbytes", scope="linear"),
    WeightFormat("nf4-dq", 4, 64, 8, 256, 32,
                 description="NF4 with double quantization: the block constants in 8 bits, "
                 "one fp32 constant per 256 of them (QLoRA, section 3): 4 + 8/64 + "
                 "32/(64*256) = 4.127 bits; the linear layers but lm_head, as bitsandbytes",
                 scope="linear"),
    WeightFormat("q8_0", 8, 32, 16, description="llama.cpp's GGUF Q8_0: blocks of 32 int8 "
                 "weights with one fp16 scale (34 bytes per block): 8.5 bits; every "
                 "matrix, norms in float32 (llama-quantize --pure)", scope="matrices",
                 kept_bytes=4),
    WeightFormat("q4_0", 4, 32, 16, description="llama.cpp's GGUF Q4_0: blocks of 32 4-bit "
                 "weights with one fp16 scale (18 bytes per block): 4.5 bits; every "
                 "matrix, norms in float32 (llama-quantize --pure)", scope="matrices",
                 kept_bytes=4),
):
    register_weight_format(_fmt)

#: every registered weight format by name (see :func:`register_weight_format`)
WEIGHT_FORMATS = _WEIGHT_FORMATS


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
                   mode: str, kv_bytes: Any, weight_bytes: Any,
                   weight_format: Any = None) -> ServingMemory:
    """The :class:`ServingMemory` of ``model`` run on ``shape`` (``(B, N, ...)``: ``B``
    sequences of ``N`` new tokens) with ``cached`` tokens already in the cache. The
    weights: every parameter in ``weight_bytes``, or in ``weight_format`` (a
    :class:`WeightFormat` or its name: the parameters of its ``scope`` in that format,
    its constants counted, the rest in ``weight_bytes`` or the format's ``kept_bytes``)."""
    kv_b = to_size(kv_bytes, "serving", "kv_bytes")
    w_b = to_size(weight_bytes, "serving", "weight_bytes")
    fmt = None if weight_format is None else get_weight_format(weight_format)
    if fmt is not None and weight_bytes != 2 and (fmt.scope == "all"
                                                  or fmt.kept_bytes is not None):
        raise SymflopsError("give weight_bytes or weight_format, not both: this format "
                            "stores every parameter whose bytes weight_bytes would set",
                            layer="serving", values={"weight_bytes": weight_bytes,
                                                     "weight_format": repr(weight_format)},
                            fix="drop weight_bytes")
    if len(shape) < 2:
        raise SymflopsError(f"mode={mode!r} needs a (B, N, ...) input: sequences of tokens",
                            layer=type(model).__name__, values={"input_shape": shape},
                            fix="pass an input shape like (B, N) or (B, N, dim)")
    batch, new = shape[0], shape[1]
    per_token = kv_elements_per_token(model)
    weights = sp.expand(cost.params * w_b) if fmt is None else fmt.weight_bytes(cost, w_b)
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


#: bytes per activation element in the serving modes (bf16)
ACTIVATION_BYTES = sp.Integer(2)
#: bytes of a token id (int64)
_ID_BYTES = 8


def _numel(shape: tuple[sp.Expr, ...]) -> sp.Expr:
    out: sp.Expr = sp.Integer(1)
    for v in shape:
        out = out * v
    return out


def _default_traffic(leaf: Cost, weight: sp.Expr) -> dict[tuple[str, str], sp.Expr]:
    """A layer as one op: it reads its input and its own parameters, writes its output."""
    return {("activations", "read"): _numel(leaf.input_shape) * ACTIVATION_BYTES,
            ("weights", "read"): leaf.params * weight,
            ("activations", "write"): _numel(leaf.output_shape) * ACTIVATION_BYTES}


def _embedding_traffic(leaf: Cost, weight: sp.Expr) -> dict[tuple[str, str], sp.Expr]:
    """A lookup reads the ids and only the rows it gathers."""
    rows = _numel(leaf.output_shape)
    return {("activations", "read"): _numel(leaf.input_shape) * _ID_BYTES,
            ("weights", "read"): rows * weight,
            ("activations", "write"): rows * ACTIVATION_BYTES}


def _bound(leaf: Cost, name: str) -> sp.Expr:
    """The value the leaf's derivation binds to the canonical symbol ``name``."""
    d = leaf.derivation
    for k, v in (d.bindings.items() if d is not None else ()):
        if getattr(k, "name", None) == name:
            value: sp.Expr = sp.sympify(v)
            return value
    raise SymflopsError(f"bytes moved need the derivation's {name}", layer=leaf.spec,
                        fix="trace the torch module with sf.trace")


def _table_traffic(leaf: Cost, weight: sp.Expr) -> dict[tuple[str, str], sp.Expr]:
    """Rotary's cos/sin table, once per forward: reads the ``N`` position ids and writes
    ``2 N head_dim`` values."""
    positions, head_dim = _bound(leaf, "N"), _bound(leaf, "head_dim")
    return {("activations", "read"): positions * _ID_BYTES,
            ("activations", "write"): 2 * positions * head_dim * ACTIVATION_BYTES}


def _rotary_traffic(leaf: Cost, weight: sp.Expr) -> dict[tuple[str, str], sp.Expr]:
    """Rotating ``M`` query and key vectors of ``head_dim``: reads each vector and the
    cos/sin rows of its position, writes it rotated (the rows read per vector, as an
    unfused ``q * cos + rotate_half(q) * sin`` broadcasts them)."""
    vectors, head_dim = _bound(leaf, "M"), _bound(leaf, "head_dim")
    return {("activations", "read"): 3 * vectors * head_dim * ACTIVATION_BYTES,
            ("activations", "write"): vectors * head_dim * ACTIVATION_BYTES}


#: leaf layer type -> its bytes moved in a serving mode (``weight``: bytes per parameter);
#: a layer not listed moves :func:`_default_traffic`
TRAFFIC_RULES: dict[str, Any] = {
    "Embedding": _embedding_traffic,
    "RotaryEmbedding": _table_traffic,
    "Rotary": _rotary_traffic,
}


def with_traffic(cost: Cost, weight: Any, parent: str = "", in_experts: bool = False
                 ) -> Cost:
    """``cost`` with each leaf's bytes moved in a serving mode: attention's parts carry
    their own (:func:`symflops.nn._attention._serving_traffic`, and multi-head latent
    attention's), to which the reads of a leaf's own parameters are added; every other
    leaf by :data:`TRAFFIC_RULES` or :func:`_default_traffic`. ``weight``: bytes per
    parameter, or :meth:`WeightFormat.rate` (each node's own, by the format's scope)."""
    if not cost.children:
        rate = weight(cost, parent, in_experts) if callable(weight) else weight
        if cost.io is not None:  # set by its layer: its parameters' reads added here
            if cost.params == 0 or ("weights", "read") in cost.io:
                return cost
            return cost.replace(io={**cost.io, ("weights", "read"): cost.params * rate})
        rule = TRAFFIC_RULES.get(cost.layer, _default_traffic)
        return cost.replace(io=rule(cost, rate))
    inside = in_experts or cost.layer == "Experts"
    return cost.replace(children=[with_traffic(c, weight, cost.layer, inside)
                                  for c in cost.children])


#: the parts of unfused attention a fused kernel runs as one
_ATTENTION_PARTS = ("AttentionScores", "AttentionScale", "AttentionSoftmax", "AttentionContext")


def with_flash_attention(cost: Cost, sram: Any, kv_bytes: Any = 2, stats_bytes: Any = 4
                         ) -> Cost:
    """``cost`` (an ``sf.nn`` model in a serving mode) with each attention's scores, scale,
    softmax and context run as one FlashAttention kernel: one node ``attention`` (a single
    op for the roofline) moving what Algorithm 1 of Dao et al. 2022 moves per query head
    with ``sram`` elements of SRAM (:func:`symflops.formulas.attention.flash_attention_io`):
    K and V from the KV cache in ``kv_bytes`` (give the cost's own), Q and O in the
    activations' bytes, the row statistics in ``stats_bytes`` (fp32); the new tokens' keys
    and values are still written to the cache. One kernel per key/value head with its
    query heads stacked as rows (as FlashAttention-2 and FlashDecoding run grouped-query
    attention), so each cached key and value is read once. FLOPs do not change.

    >>> import symflops as sf
    >>> from symflops.symbols import B, T
    >>> m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=1, vocab=100, hidden=128)
    >>> dec = m.cost((B, 1), mode="decode", context=T)
    >>> fused = with_flash_attention(dec, sram=4096)
    >>> fused.flops == dec.flops
    True
    """
    from symflops.formulas.attention import flash_attention_io_parts

    if not cost.children:
        return cost
    kids = [with_flash_attention(c, sram, kv_bytes, stats_bytes) for c in cost.children]
    at = [i for i, c in enumerate(kids) if c.layer == "AttentionScores"]
    if not at:
        return cost.replace(children=kids)
    i = at[0]
    parts = kids[i:i + 4]
    if [c.layer for c in parts] != list(_ATTENTION_PARTS) or parts[0].io is None:
        raise SymflopsError("FlashAttention needs the attention's bytes moved (a serving "
                            "mode) and its four parts in order", layer=cost.spec,
                            fix="cost the model with mode='prefill' or 'decode' first")
    d = parts[0].derivation
    bound = {getattr(k, "name", ""): sp.sympify(v) for k, v in
             (d.bindings.items() if d is not None else ())}
    batch, heads, n = bound["B"], bound["heads"], bound["N"]
    keys, width = bound.get("S", n), bound["head_dim"]
    old = dict(parts[0].io)
    kv_role = "kv_cache" if ("kv_cache", "read") in old else "activations"
    # the unfused scores read each key/value head's keys once: B h_kv S d elements
    kv_heads = sp.cancel(old[(kv_role, "read")] / (batch * keys * width * kv_bytes))
    if kv_heads.free_symbols & (batch.free_symbols | keys.free_symbols):
        raise SymflopsError("kv_bytes does not match the cost's KV cache", layer=cost.spec,
                            values={"kv_bytes": kv_bytes},
                            fix="pass the kv_bytes the cost was made with")
    # a kernel per key/value head, its g = h / h_kv query heads stacked as rows
    io = flash_attention_io_parts(n * heads / kv_heads, width, sram, keys)
    per = batch * kv_heads
    moved = {(kv_role, "read"): per * io["kv"][0] * kv_bytes,
             ("activations", "read"): per * (io["q_o"][0] * ACTIVATION_BYTES +
                                              io["stats"][0] * stats_bytes),
             ("activations", "write"): per * (io["q_o"][1] * ACTIVATION_BYTES +
                                               io["stats"][1] * stats_bytes)}
    if ("kv_cache", "write") in old:
        moved[("kv_cache", "write")] = old[("kv_cache", "write")]
    fused = Cost("attention", "FlashAttention", spec="attention (flash)",
                 children=[c.replace(io={}) for c in parts], op="flash_attention",
                 io=moved, convention=cost.convention, input_shape=parts[0].input_shape,
                 output_shape=parts[-1].output_shape)
    return cost.replace(children=[*kids[:i], fused, *kids[i + 4:]])
