"""Multi-head attention (:mod:`symflops.formulas.attention`) and its train rule.

>>> MultiheadAttention(8, 2).cost(("B", "N", 8)).params
288
"""

from __future__ import annotations

import sympy as sp

from symflops import formulas as F
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div
from symflops.formulas.attention import attention_derivations
from symflops.formulas.rotary import rotary_derivation
from symflops.nn._base import (
    KV_CONTEXT,
    Example,
    Layer,
    Shape,
    SizeLike,
    divides_condition,
    to_size,
)
from symflops.nn._linear import Linear
from symflops.nn._pointwise import dropout_probability
from symflops.nn._train import (
    Ref,
    Step,
    Train,
    accumulate,
    composite,
    grad_leaves,
    join,
    rotary_step,
    sum_memory,
    train_layer,
)
from symflops.symbols import (
    B,
    N,
    dim,
    heads,
    symbol,
)

__all__ = ["MultiheadAttention", "MultiheadLatentAttention"]

#: the sizes of the reference's multi-head latent attention example
MLA_KV_RANK, MLA_Q_RANK, MLA_ROPE_DIM, MLA_HEAD_DIM = (
    symbol("d_c"), symbol("d_q"), symbol("d_R"), symbol("d_h"))


class MultiheadAttention(Layer):
    """Multi-head self-attention on ``(B, N, dim)`` (``batch_first``) or ``(N, dim)``.

    Children: ``qkv`` (one fused projection, the same count as three), ``scores``
    (``Q K^T``), ``scale``, ``softmax``, ``context`` (``A V``) and ``out_proj``.
    ``kv_heads`` < ``heads`` gives grouped-query attention (smaller K/V projections);
    ``causal=True`` masks, and ``skip_masked=True`` counts only the unmasked half, as
    kernels that skip masked blocks do (the default counts the dense product, as torch
    computes and counts it). ``rotary=True`` rotates queries and keys (RoPE, a ``rotary``
    child after ``qkv``: 7/2 per element, :mod:`symflops.formulas.rotary`).
    ``kv_len=S`` makes it cross-attention: queries from the ``N`` tokens of the input,
    keys and values projected from ``S`` encoder tokens of width ``embed_dim``
    (children ``q_proj`` and ``kv_proj`` instead of ``qkv``).
    ``window=W`` (causal only): sliding-window attention (Mistral, Gemma 2): each query sees
    its last ``W`` keys, itself included; the forward is still counted dense (torch masks),
    and the KV cache keeps ``min(T, W - 1)`` tokens (:meth:`cached_keys`), so a decode step
    at context ``T`` attends to ``min(T, W - 1) + n`` keys.

    >>> from symflops.symbols import S
    >>> MultiheadAttention(8, 2, kv_len=S).cost(("B", "N", 8)).macs
    16*B*N*S + 128*B*N + 128*B*S
    """

    example = Example(
        "MultiheadAttention(dim, heads)", lambda: MultiheadAttention(dim, heads), (B, N, dim),
        "kv_heads= gives grouped-query attention, causal=True a mask")

    def __init__(self, embed_dim: SizeLike, num_heads: SizeLike, dropout: float = 0.0,
                 bias: bool = True, *, kv_heads: SizeLike | None = None, causal: bool = False,
                 skip_masked: bool = False, batch_first: bool = True, rotary: bool = False,
                 kv_len: SizeLike | None = None, window: SizeLike | None = None) -> None:
        self.embed_dim = to_size(embed_dim, "MultiheadAttention", "embed_dim")
        self.num_heads = to_size(num_heads, "MultiheadAttention", "num_heads")
        self.kv_heads = self.num_heads if kv_heads is None else \
            to_size(kv_heads, "MultiheadAttention", "kv_heads")
        self.bias, self.causal, self.skip_masked = bool(bias), bool(causal), bool(skip_masked)
        self.batch_first, self.rotary = bool(batch_first), bool(rotary)
        self.kv_len = None if kv_len is None else to_size(kv_len, "MultiheadAttention", "kv_len")
        if self.kv_len is not None and self.causal:
            raise SymflopsError("cross-attention (kv_len) is not causal",
                                layer="MultiheadAttention", values={"kv_len": kv_len},
                                fix="drop causal=True, or drop kv_len for self-attention")
        self.dropout = dropout_probability(dropout, "MultiheadAttention")  # on the attention
        # probabilities, in training
        if self.embed_dim.is_number and self.num_heads.is_number and \
                self.embed_dim % self.num_heads != 0:
            raise SymflopsError("num_heads must divide embed_dim", layer="MultiheadAttention",
                                values={"embed_dim": embed_dim, "num_heads": num_heads},
                                fix="choose num_heads among the divisors of embed_dim")
        if self.kv_heads.is_number and self.num_heads.is_number and \
                self.num_heads % self.kv_heads != 0:
            raise SymflopsError("kv_heads must divide num_heads", layer="MultiheadAttention",
                                values={"num_heads": num_heads, "kv_heads": kv_heads},
                                fix="choose kv_heads among the divisors of num_heads")
        self.window = None if window is None else to_size(window, "MultiheadAttention",
                                                          "window")
        if self.window is not None and (not self.causal or self.skip_masked):
            raise SymflopsError("a sliding window is a causal mask counted dense",
                                layer="MultiheadAttention",
                                values={"causal": causal, "skip_masked": skip_masked},
                                fix="pass causal=True (and no skip_masked) with window=")
        if self.skip_masked and not self.causal:
            raise SymflopsError("skip_masked only applies to causal attention",
                                layer="MultiheadAttention", values={"causal": causal},
                                fix="pass causal=True")
        self.head_dim = exact_div(self.embed_dim, self.num_heads)
        if self.rotary and sp.sympify(self.head_dim).is_number and self.head_dim % 2:
            raise SymflopsError("rotary embeddings rotate pairs: the head width must be even",
                                layer="MultiheadAttention",
                                values={"embed_dim": embed_dim, "num_heads": num_heads},
                                fix="choose sizes whose embed_dim / num_heads is even")

    def cached_keys(self, tokens: sp.Expr) -> sp.Expr:
        """Keys held in the cache after ``tokens`` tokens: all of them, or with a sliding
        window of ``W`` keys per query (itself included) the last ``min(tokens, W - 1)``, as
        transformers' ``DynamicSlidingWindowLayer`` keeps (valid for ``tokens >= 0``,
        ``W >= 1``)."""
        if self.window is None:
            return tokens
        held: sp.Expr = sp.Min(tokens, self.window - 1)
        return held

    def spec(self) -> str:
        parts = [str(self.embed_dim), str(self.num_heads)]
        if self.kv_heads != self.num_heads:
            parts.append(f"kv_heads={self.kv_heads}")
        if not self.bias:
            parts.append("bias=False")
        if self.causal:
            parts.append("causal=True")
        if self.skip_masked:
            parts.append("skip_masked=True")
        if self.rotary:
            parts.append("rotary=True")
        if self.kv_len is not None:
            parts.append(f"kv_len={self.kv_len}")
        if self.window is not None:
            parts.append(f"window={self.window}")
        return f"MultiheadAttention({', '.join(parts)})"

    def _length_and_batch(self, shape: Shape) -> tuple[sp.Expr, sp.Expr]:
        """``(N, B)`` of an input ``(B, N, dim)``, ``(N, B, dim)`` (``batch_first=False``)
        or ``(N, dim)`` (``B = 1``)."""
        if len(shape) == 3 and not self.batch_first:
            return shape[0], shape[1]
        return shape[-2], (shape[0] if len(shape) == 3 else sp.Integer(1))

    def _cost(self, shape: Shape, name: str) -> Cost:
        self._check_rank(shape, (2, 3), "(B, N, dim) or (N, dim)")
        self._check_channels(shape, shape[-1], self.embed_dim, "features")
        n, batch = self._length_and_batch(shape)
        kv_dim = self.kv_heads * self.head_dim
        cached = KV_CONTEXT.get() if self.kv_len is None else None  # a decode step
        s = n if self.kv_len is None else self.kv_len
        if cached is not None:
            s = self.cached_keys(cached) + n
            if self.skip_masked and n != 1:
                raise SymflopsError("skip_masked decode of several new tokens is not derived",
                                    layer=self.spec(), values={"new tokens": n},
                                    fix="decode one token at a time, or drop skip_masked")
        causal = self.causal and cached is None  # one new token: the mask hides nothing
        if self.kv_len is None:
            qkv = Linear(self.embed_dim, self.embed_dim + 2 * kv_dim, bias=self.bias)
            children = [qkv._cost(shape, "qkv")]
        else:
            kv_shape = shape[:-2] + (s, self.embed_dim)
            children = [Linear(self.embed_dim, self.embed_dim, bias=self.bias)._cost(
                            shape, "q_proj"),
                        Linear(self.embed_dim, 2 * kv_dim, bias=self.bias)._cost(
                            kv_shape, "kv_proj")]
        if self.rotary:  # the new keys only in a decode step (the cached ones are rotated)
            vectors = batch * (n * self.num_heads + (n if cached is not None else s)
                               * self.kv_heads)
            children.append(Cost.from_derivation(
                "rotary", "Rotary", rotary_derivation(vectors, self.head_dim),
                spec=f"rotary({self.head_dim})", input_shape=shape, output_shape=shape))
        heads_shape = (batch, self.num_heads, n)
        parts = attention_derivations(batch, self.num_heads, n, s, self.head_dim,
                                      causal=causal, skip_masked=self.skip_masked and causal)
        moved = _serving_traffic(batch, self.num_heads, self.kv_heads, n, s, self.head_dim,
                                 self.head_dim, self.kv_len is None)
        for part, d in parts.items():
            out = heads_shape + ((s,) if part != "context" else (self.head_dim,))
            children.append(Cost.from_derivation(
                part, "Attention" + part.capitalize(), d, spec=f"attention.{part}",
                input_shape=shape, output_shape=out).replace(io=moved.get(part)))
        children.append(Linear(self.embed_dim, self.embed_dim, bias=self.bias)
                        ._cost(shape, "out_proj"))
        return Cost(name, "MultiheadAttention", spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape,
                    validity=divides_condition(self.num_heads, self.embed_dim)
                    + divides_condition(self.kv_heads, self.num_heads)
                    + (divides_condition(sp.Integer(2), sp.sympify(self.head_dim))
                       if self.rotary else []))

    def _train(self, shape: Shape, name: str, path: str, x: Ref,
             tr: Train) -> Step:
        if self.kv_len is not None:
            return self._cross_train(shape, name, path, x, tr)
        if self.skip_masked:
            # (a causal mask is a select in both passes: the dense product is counted, and the
            # mask, a buffer or a constant, is not an activation)
            raise SymflopsError(
                "skip_masked counts kernels that skip masked blocks (FlashAttention); their "
                "backward recomputes the scores from Q and K and saves no probabilities, "
                "a different algorithm from the unfused attention sf.nn trains op by op",
                layer=self.spec(), values={"skip_masked": True, "mode": "'train'"},
                fix="train with causal=True and without skip_masked (the dense count torch "
                    "runs), or trace the torch module with sf.trace(..., mode='train')")
        eval_cost = self._cost(shape, name)  # checks the shape
        n, batch = self._length_and_batch(shape)
        kv_dim = self.kv_heads * self.head_dim
        qkv_linear = Linear(self.embed_dim, self.embed_dim + 2 * kv_dim, bias=self.bias)
        qkv = train_layer(qkv_linear, shape, "qkv", join(path, "qkv"), x, tr)
        inner = tr.inside("tensor")  # between the column- and the row-parallel linear layers
        rotary = [] if not self.rotary else [rotary_step(
            eval_cost["rotary"], batch * n * (self.num_heads + self.kv_heads), self.head_dim,
            n, join(path, "rotary"), qkv.out, inner)]
        core = _attention_core(self, shape, batch, n, join(path, "attention"),
                               rotary[0].out if rotary else qkv.out, inner,
                               [c for c in eval_cost.children
                                if c.name not in ("qkv", "out_proj", "rotary")])
        proj = Linear(self.embed_dim, self.embed_dim, bias=self.bias)
        out_proj = train_layer(proj, shape, "out_proj", join(path, "out_proj"), core.out, inner)
        children = [qkv.cost, *(r.cost for r in rotary), core.cost, out_proj.cost]
        cost = composite(self, shape, name, tr, children, shape).replace(
            validity=eval_cost.validity)
        return Step(cost, out_proj.out)

    def _cross_train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """Cross-attention (``kv_len=S``) in training: ``q_proj`` on the ``N`` tokens of
        ``x``, ``kv_proj`` on the ``S`` encoder states, the core with ``N`` queries and
        ``S`` keys, ``out_proj``. The encoder states are an input of the layer like ``x``:
        they need a gradient when ``x`` does (``input_grad=True``, the layer inside an
        encoder-decoder whose encoder trains)."""
        assert self.kv_len is not None
        eval_cost = self._cost(shape, name)  # checks the shape
        n, batch = self._length_and_batch(shape)
        s = self.kv_len
        kv_dim = self.kv_heads * self.head_dim
        memory = tr.new(batch * s * self.embed_dim, x.grad)
        q = train_layer(Linear(self.embed_dim, self.embed_dim, bias=self.bias), shape,
                        "q_proj", join(path, "q_proj"), x, tr)
        kv_shape = shape[:-2] + (s, self.embed_dim)
        kv = train_layer(Linear(self.embed_dim, 2 * kv_dim, bias=self.bias), kv_shape,
                         "kv_proj", join(path, "kv_proj"), memory, tr)
        inner = tr.inside("tensor")
        needs = Ref(-1, sp.Integer(0), q.out.grad or kv.out.grad)
        rotary = [] if not self.rotary else [rotary_step(
            eval_cost["rotary"], batch * (n * self.num_heads + s * self.kv_heads),
            self.head_dim, n + s, join(path, "rotary"), needs, inner)]  # q's and k's tables
        core = _attention_core(self, shape, batch, n, join(path, "attention"), needs, inner,
                               [c for c in eval_cost.children
                                if c.name not in ("q_proj", "kv_proj", "out_proj", "rotary")],
                               kv_len=s)
        proj = Linear(self.embed_dim, self.embed_dim, bias=self.bias)
        out_proj = train_layer(proj, shape, "out_proj", join(path, "out_proj"), core.out, inner)
        children = [q.cost, kv.cost, *(r.cost for r in rotary), core.cost, out_proj.cost]
        cost = composite(self, shape, name, tr, children, shape).replace(
            validity=eval_cost.validity)
        return Step(cost, out_proj.out)


def _attention_core(layer: MultiheadAttention, shape: Shape, batch: sp.Expr, n: sp.Expr,
                    path: str, qkv: Ref, tr: Train, parts: list[Cost],
                    kv_len: sp.Expr | None = None) -> Step:
    """``softmax(Q K^T * scale)``, dropout in training, times ``V``, op by op: the bmm
    of ``Q K^T`` keeps Q and K, the softmax its output, dropout its mask, the bmm with V
    the dropped-out probabilities and V (Q, K and V as contiguous copies of the fused
    projection's output; with fewer key/value heads, K and V expanded to every query
    head). ``kv_len``: the keys' count when it is not the queries' (cross-attention)."""
    heads, hd, p = layer.num_heads, layer.head_dim, layer.dropout
    s = n if kv_len is None else kv_len
    scores = batch * heads * n * s
    forward = list(parts)
    if p:
        drop = Cost.from_derivation("dropout", "Dropout", F.pointwise.dropout_derivation(scores),
                                    spec="attention dropout")
        forward.insert(3, drop)
    fwd = Cost("forward", "Attention", spec="attention", children=forward, input_shape=shape,
               output_shape=shape)
    out_numel = batch * n * layer.embed_dim
    if not qkv.grad:
        return Step(Cost("attention", "Attention", spec="attention", children=[fwd],
                         input_shape=shape, output_shape=shape, memory=tr.mem(0, 0, ())),
                    tr.new(out_numel, False))
    grads = F.attention.attention_core_grad_derivations(batch, heads, n, s, hd, dropout=bool(p),
                                                  kv_heads=layer.kv_heads)
    kids = [fwd, *grad_leaves(grads, "Attention", "attention", shape)]
    width, kv_width = batch * n * layer.embed_dim, batch * s * layer.embed_dim
    probs = tr.new(scores, True)
    saved = [tr.saved(path, "q", width), tr.saved(path, "k", kv_width),
             tr.saved(path, "softmax output", probs)]
    dropped = probs
    if p:
        saved.append(tr.saved(path, "dropout mask", scores, "mask"))
        dropped = tr.new(scores, True)
    saved += [tr.saved(path, "probabilities", dropped), tr.saved(path, "v", kv_width)]
    if tr.recompute == "selective":  # Korthikanti et al.: recompute the core, keep Q K V
        kids.insert(1, fwd.replace(name="recompute"))
        saved = [s for s in saved if s.what in ("q", "k", "v")]
    cost = Cost("attention", "Attention", spec="attention", children=kids, input_shape=shape,
                output_shape=shape, memory=tr.mem(0, 0, saved))
    return Step(cost, tr.new(out_numel, True))


def _serving_traffic(batch: sp.Expr, heads: sp.Expr, kv_heads: sp.Expr, n: sp.Expr,
                     s: sp.Expr, qk_dim: sp.Expr, v_dim: sp.Expr, cached: bool
                     ) -> dict[str, dict[tuple[str, str], sp.Expr]]:
    """Bytes each attention part moves in a serving mode (empty outside one), unfused:
    ``scores`` reads Q (``B h n d``) and the ``s`` keys (``B h_kv s d``: from the KV cache,
    the new tokens' appended first, which it also writes) and writes ``B h n s`` scores;
    ``scale`` and ``softmax`` read and write them; ``context`` reads them and the ``s``
    values and writes ``B h n d_v``. Keys and values in the cache's bytes per element,
    the rest in the activations'."""
    from symflops.nn._base import SERVING_BYTES

    sizes = SERVING_BYTES.get()
    if sizes is None:
        return {}
    act, kv = sizes
    scores = batch * heads * n * s * act
    role = "kv_cache" if cached else "activations"
    return {
        "scores": {("activations", "read"): batch * heads * n * qk_dim * act,
                   (role, "read"): batch * kv_heads * s * qk_dim * kv,
                   (role, "write"): batch * kv_heads * n * (qk_dim + v_dim) * kv,
                   ("activations", "write"): scores},
        "scale": {("activations", "read"): scores, ("activations", "write"): scores},
        "softmax": {("activations", "read"): scores, ("activations", "write"): scores},
        "context": {("activations", "read"): scores,
                    (role, "read"): batch * kv_heads * s * v_dim * kv,
                    ("activations", "write"): batch * heads * n * v_dim * act},
    }


class MultiheadLatentAttention(Layer):
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1) on
    ``(B, N, dim)``, as transformers' ``DeepseekV2Attention`` computes it.

    Queries: ``q_a_proj`` (``dim -> q_rank``, the paper's ``d_c'``), ``q_a_layernorm``
    (RMSNorm), ``q_b_proj`` (``q_rank -> heads (head_dim + rope_dim)``); ``q_rank=None``:
    one ``q_proj``. Keys and values: ``kv_a_proj_with_mqa`` (``dim -> kv_rank + rope_dim``:
    the latent ``c_KV`` of width ``d_c`` and the shared rotary key ``k^R`` of width
    ``d_h^R``), ``kv_a_layernorm`` on the latent, ``rotary`` (the rope halves of the
    queries and the shared key), ``kv_b_proj`` (``kv_rank -> heads (head_dim + v_head_dim)``,
    applied to every key's latent), the attention parts with keys ``head_dim + rope_dim``
    wide and values ``v_head_dim`` wide, and ``o_proj``.

    The KV cache holds the latent and the rotary key: ``kv_rank + rope_dim`` elements per
    token (:func:`symflops.serving.kv_elements_per_token`). A decode step
    (``mode="decode"``, ``context=T``) expands the ``T + n`` cached latents with
    ``kv_b_proj`` every step, as transformers does; ``absorb=True`` decodes in the paper's
    inference form (section 2.1.2; vLLM's and SGLang's decode): ``W^{UK}`` absorbed into the
    queries (``q_absorb``: each head's ``head_dim`` query to ``kv_rank``), scores against
    the cached latents and rotary keys (``kv_rank + rope_dim`` wide), the context over the
    latents (``kv_rank`` wide) and ``W^{UV}`` after it (``v_absorb``), so no key or value is
    expanded (prefill and eval stay as transformers computes them).

    >>> MultiheadLatentAttention(64, 4, kv_rank=16, q_rank=24, rope_dim=4,
    ...                          head_dim=8).cost(("B", "N", 64)).params
    7080
    """

    example = Example(
        "MultiheadLatentAttention(dim, heads, kv_rank=d_c, q_rank=d_q, rope_dim=d_R, "
        "head_dim=d_h)",
        lambda: MultiheadLatentAttention(dim, heads, kv_rank=MLA_KV_RANK, q_rank=MLA_Q_RANK,
                                         rope_dim=MLA_ROPE_DIM, head_dim=MLA_HEAD_DIM),
        (B, N, dim), "DeepSeek-V2's attention: the KV cache holds d_c + d_R per token")

    def __init__(self, embed_dim: SizeLike, num_heads: SizeLike, *, kv_rank: SizeLike,
                 q_rank: SizeLike | None, rope_dim: SizeLike, head_dim: SizeLike,
                 v_head_dim: SizeLike | None = None, bias: bool = False,
                 absorb: bool = False) -> None:
        name = "MultiheadLatentAttention"
        self.embed_dim = to_size(embed_dim, name, "embed_dim")
        self.num_heads = to_size(num_heads, name, "num_heads")
        self.kv_rank = to_size(kv_rank, name, "kv_rank")
        self.q_rank = None if q_rank is None else to_size(q_rank, name, "q_rank")
        self.rope_dim = to_size(rope_dim, name, "rope_dim")
        self.head_dim = to_size(head_dim, name, "head_dim")
        self.v_head_dim = self.head_dim if v_head_dim is None else \
            to_size(v_head_dim, name, "v_head_dim")
        self.bias, self.absorb = bool(bias), bool(absorb)
        if self.rope_dim.is_number and self.rope_dim % 2:
            raise SymflopsError("rotary embeddings rotate pairs: rope_dim must be even",
                                layer=name, values={"rope_dim": rope_dim},
                                fix="choose an even rope_dim (DeepSeek-V2: 64)")

    def spec(self) -> str:
        return (f"MultiheadLatentAttention({self.embed_dim}, {self.num_heads}, "
                f"kv_rank={self.kv_rank}, q_rank={self.q_rank}, rope_dim={self.rope_dim}, "
                f"head_dim={self.head_dim}"
                + (f", v_head_dim={self.v_head_dim}" if self.v_head_dim != self.head_dim
                   else "") + (", bias=True" if self.bias else "")
                + (", absorb=True" if self.absorb else "") + ")")

    @property
    def kv_per_token(self) -> sp.Expr:
        """Elements cached per token: the latent and the shared rotary key."""
        total: sp.Expr = self.kv_rank + self.rope_dim
        return total

    def _train(self, shape: Shape, name: str, path: str, x: Ref, tr: Train) -> Step:
        """Training as autograd runs transformers' ``DeepseekV2Attention`` (eager, no
        dropout): the projections and norms train as themselves; the splits of ``q``,
        of ``kv_a_proj_with_mqa``'s output and of ``kv_b_proj``'s and the two concats are
        copies (no arithmetic); the shared rotary key, expanded to every head, gets its
        gradient summed over the heads (``grad_k_rope_expand``: ``(h - 1) B N d_R``
        adds); the attention core's gradients are those of
        :func:`~symflops.formulas.attention.attention_core_grad_derivations` with keys
        ``head_dim + rope_dim`` and values ``v_head_dim`` wide, for the tensors that
        need one; ``x`` feeds both the query and the key/value projections, so its two
        gradients are added. Saved: each linear layer's and norm's input, ``cos`` and
        ``sin``, and the core's ``q`` and ``k`` (``B h N (d_h + d_R)``), softmax output and
        ``v`` (``B h N d_v``, a contiguous copy)."""
        from symflops.formulas.resize import reduction_derivation
        from symflops.nn._norm import RMSNorm

        eval_cost = self._cost(shape, name)  # checks the shape
        batch, n = shape[0], shape[1]
        h, dc, dr, dh, dv = (self.num_heads, self.kv_rank, self.rope_dim, self.head_dim,
                             self.v_head_dim)
        qk = dh + dr
        steps = []
        if self.q_rank is None:
            steps.append(train_layer(Linear(self.embed_dim, h * qk, bias=False), shape,
                                     "q_proj", join(path, "q_proj"), x, tr))
        else:
            low = shape[:-1] + (self.q_rank,)
            steps.append(train_layer(Linear(self.embed_dim, self.q_rank, bias=self.bias),
                                     shape, "q_a_proj", join(path, "q_a_proj"), x, tr))
            steps.append(train_layer(RMSNorm(self.q_rank), low, "q_a_layernorm",
                                     join(path, "q_a_layernorm"), steps[-1].out, tr))
            steps.append(train_layer(Linear(self.q_rank, h * qk, bias=False), low,
                                     "q_b_proj", join(path, "q_b_proj"), steps[-1].out, tr))
        q = steps[-1].out
        kv_a = train_layer(Linear(self.embed_dim, dc + dr, bias=self.bias), shape,
                           "kv_a_proj_with_mqa", join(path, "kv_a_proj_with_mqa"), x, tr)
        latent_shape = shape[:-1] + (dc,)
        latent = tr.new(batch * n * dc, kv_a.out.grad)
        kv_norm = train_layer(RMSNorm(dc), latent_shape, "kv_a_layernorm",
                              join(path, "kv_a_layernorm"), latent, tr)
        inner = tr.inside("tensor")  # heads from here on (split by tensor parallelism)
        # the rotation of the queries' rope halves (B N h d_R) and the shared key (B N d_R)
        rotated = batch * n * ((h if q.grad else 0) + (1 if kv_a.out.grad else 0))
        rotary = rotary_step(eval_cost["rotary"], rotated, dr, n, join(path, "rotary"),
                             tr.new(rotated * dr, q.grad or kv_a.out.grad), inner)
        kv_b = train_layer(Linear(dc, h * (dh + dv), bias=False), latent_shape, "kv_b_proj",
                           join(path, "kv_b_proj"), kv_norm.out, tr)
        q_grad, k_grad, v_grad = q.grad, kv_b.out.grad or kv_a.out.grad, kv_b.out.grad
        parts = [c for c in eval_cost.children
                 if c.name in ("scores", "scale", "softmax", "context")]
        fwd = Cost("forward", "Attention", spec="attention", children=parts,
                   input_shape=shape, output_shape=shape)
        grads = F.attention.attention_core_grad_derivations(batch, h, n, n, qk, v_dim=dv)
        unneeded = {"grad_q": not q_grad, "grad_k": not k_grad, "grad_v": not v_grad,
                    **dict.fromkeys(("grad_probs", "grad_softmax", "grad_scale"),
                                    not (q_grad or k_grad))}
        grads = {k: d for k, d in grads.items() if not unneeded.get(k)}
        if kv_a.out.grad:  # the expand of the shared rotary key to h heads, backward
            grads["grad_k_rope_expand"] = reduction_derivation(
                "sum", batch * h * n * dr, batch * n * dr)
        saved = []
        if grads:
            scores = batch * h * n * n
            saved = [inner.saved(path, "q", batch * h * n * qk),
                     inner.saved(path, "k", batch * h * n * qk),
                     inner.saved(path, "softmax output", tr.new(scores, True)),
                     inner.saved(path, "v", batch * h * n * dv)]
        kids = [fwd, *grad_leaves(grads, "Attention", "attention", shape)]
        if grads and tr.recompute == "selective":  # keep Q K V, recompute the core
            kids.insert(1, fwd.replace(name="recompute"))
            saved = [t for t in saved if t.what in ("q", "k", "v")]
        core = Cost("attention", "Attention", spec="attention", children=kids,
                    input_shape=shape, output_shape=shape, memory=inner.mem(0, 0, saved))
        context = tr.new(batch * n * h * dv, bool(grads))
        o_proj = train_layer(Linear(h * dv, self.embed_dim, bias=self.bias),
                             shape[:-1] + (h * dv,), "o_proj", join(path, "o_proj"),
                             context, inner)
        children = [*(st.cost for st in steps), kv_a.cost, kv_norm.cost, rotary.cost,
                    kv_b.cost, core, o_proj.cost,
                    *accumulate(x, shape, "the input (query and key/value projections)")]
        memory = sum_memory(tr, children)
        if kv_norm.cost.memory is not None and any(
                t.what == "input" for t in kv_norm.cost.memory.saved):
            # the norm's input is a split of kv_a's output, a view: saving it keeps the
            # whole output alive, the rotary key's d_R per token too
            memory = memory.replace(saved=(*memory.saved, tr.saved(
                join(path, "kv_a_layernorm"), "kv_a's rotary part (a saved view's base)",
                batch * n * dr)))
        cost = composite(self, shape, name, tr, children, shape, memory=memory).replace(
            validity=eval_cost.validity)
        return Step(cost, o_proj.out)

    def _absorbed(self, name: str, rows: sp.Expr, heads: sp.Expr, k: sp.Expr, o: sp.Expr,
                  shape: Shape) -> Cost:
        """One half of ``kv_b_proj`` applied per head to ``rows`` vectors: its parameters
        (``heads k o``) and ``rows * heads`` products ``(1 x k) @ (k x o)``."""
        d = F.linear.matmul_derivation(rows * heads, 1, k, o)
        return Cost.from_derivation(name, "AbsorbedProjection", d, spec=f"kv_b_proj.{name}",
                                    input_shape=shape, output_shape=shape).replace(
                                        params=heads * k * o)

    def _traffic(self, children: list[Cost], batch: sp.Expr, n: sp.Expr, s: sp.Expr,
                 absorbed: bool) -> list[Cost]:
        """In a serving mode, the bytes the parts that touch the cache move (the
        parameters' reads are added by :func:`symflops.serving.with_traffic`): the cache
        holds each token's latent and rotary key. Expanded (``kv_b_proj`` over the ``s``
        cached latents, as transformers decodes), the attention reads the expanded keys and
        values; absorbed, it reads the cache itself."""
        from symflops.nn._base import SERVING_BYTES

        sizes = SERVING_BYTES.get()
        if sizes is None:
            return children
        act, kv = sizes
        h, dc, dr, dh, dv = (self.num_heads, self.kv_rank, self.rope_dim, self.head_dim,
                             self.v_head_dim)
        scores = batch * h * n * s * act
        cache_write = {("kv_cache", "write"): batch * n * (dc + dr) * kv}
        if absorbed:
            moved = {
                "q_absorb": {("activations", "read"): batch * n * h * dh * act,
                             ("activations", "write"): batch * n * h * dc * act},
                "scores": {("activations", "read"): batch * n * h * (dc + dr) * act,
                           ("kv_cache", "read"): batch * s * (dc + dr) * kv,
                           ("activations", "write"): scores, **cache_write},
                "context": {("activations", "read"): scores,
                            ("kv_cache", "read"): batch * s * dc * kv,
                            ("activations", "write"): batch * n * h * dc * act},
                "v_absorb": {("activations", "read"): batch * n * h * dc * act,
                             ("activations", "write"): batch * n * h * dv * act}}
        else:
            moved = {
                "kv_b_proj": {("kv_cache", "read"): batch * s * dc * kv,
                              ("activations", "write"): batch * s * h * (dh + dv) * act},
                "scores": {("activations", "read"): batch * h * (n + s) * (dh + dr) * act,
                           ("activations", "write"): scores, **cache_write},
                "context": {("activations", "read"): scores + batch * h * s * dv * act,
                            ("activations", "write"): batch * h * n * dv * act}}
        moved["scale"] = moved["softmax"] = {("activations", "read"): scores,
                                             ("activations", "write"): scores}
        return [c.replace(io=moved[c.name]) if c.name in moved else c for c in children]

    def _cost(self, shape: Shape, name: str) -> Cost:
        from symflops.nn._norm import RMSNorm

        self._check_rank(shape, (3,), "(B, N, dim)")
        self._check_channels(shape, shape[-1], self.embed_dim, "features")
        batch, n = shape[0], shape[1]
        cached = KV_CONTEXT.get()
        s = n if cached is None else cached + n  # keys: the cached tokens and the new ones
        h, qk = self.num_heads, self.head_dim + self.rope_dim
        children: list[Cost] = []
        if self.q_rank is None:
            children.append(Linear(self.embed_dim, h * qk, bias=False)._cost(shape, "q_proj"))
        else:
            low = shape[:-1] + (self.q_rank,)
            children += [Linear(self.embed_dim, self.q_rank, bias=self.bias)._cost(
                             shape, "q_a_proj"),
                         RMSNorm(self.q_rank)._cost(low, "q_a_layernorm"),
                         Linear(self.q_rank, h * qk, bias=False)._cost(low, "q_b_proj")]
        latent = shape[:-1] + (self.kv_rank,)
        children += [Linear(self.embed_dim, self.kv_per_token, bias=self.bias)._cost(
                         shape, "kv_a_proj_with_mqa"),
                     RMSNorm(self.kv_rank)._cost(latent, "kv_a_layernorm")]
        children.append(Cost.from_derivation(  # the new tokens' rope queries and shared key
            "rotary", "Rotary", rotary_derivation(batch * n * (h + 1), self.rope_dim),
            spec=f"rotary({self.rope_dim})", input_shape=shape, output_shape=shape))
        absorbed = self.absorb and cached is not None
        if absorbed:  # W^UK into the queries: (B n h) products (1 x d_h) @ (d_h x d_c)
            children.append(self._absorbed("q_absorb", batch * n, h, self.head_dim,
                                           self.kv_rank, shape))
        else:
            children.append(Linear(self.kv_rank, h * (self.head_dim + self.v_head_dim),
                                   bias=False)._cost((batch, s, self.kv_rank), "kv_b_proj"))
        key_width = self.kv_rank + self.rope_dim if absorbed else qk
        value_width = self.kv_rank if absorbed else self.v_head_dim
        parts = attention_derivations(batch, h, n, s, key_width, value_width,
                                      custom_scale=absorbed)  # 1/sqrt(d_h + d_R) still
        for part, d in parts.items():
            out = (batch, h, n) + ((s,) if part != "context" else (value_width,))
            children.append(Cost.from_derivation(
                part, "Attention" + part.capitalize(), d, spec=f"attention.{part}",
                input_shape=shape, output_shape=out))
        if absorbed:  # W^UV after the context: (B n h) products (1 x d_c) @ (d_c x d_v)
            children.append(self._absorbed("v_absorb", batch * n, h, self.kv_rank,
                                           self.v_head_dim, shape))
        children.append(Linear(h * self.v_head_dim, self.embed_dim, bias=self.bias)._cost(
            shape[:-1] + (h * self.v_head_dim,), "o_proj"))
        children = self._traffic(children, batch, n, s, absorbed)
        return Cost(name, "MultiheadLatentAttention", spec=self.spec(), children=children,
                    input_shape=shape, output_shape=shape,
                    validity=divides_condition(sp.Integer(2), sp.sympify(self.rope_dim)))
