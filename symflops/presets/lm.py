"""Language-model presets built only from ``sf.nn`` layers, every size a symbol (or an
int): ``gpt`` (GPT-2), ``llama`` (LLaMA, Mistral) and ``mixtral`` (sparse MoE).

Each returns an ``sf.nn`` layer whose input is the token ids ``(B, N)``; its children
carry transformers' module names, so the preset and a trace of the matching
``transformers`` model read side by side.

>>> import symflops as sf
>>> from symflops.symbols import B, N, L, V, dim, heads
>>> gpt = sf.presets.gpt(dim=dim, heads=heads, layers=L, vocab=V, context=N)
>>> gpt.cost((B, N)).params.subs({dim: 768, heads: 12, L: 12, V: 50257, N: 1024})
124439808
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas.arith import exact_div
from symflops.nn import (
    GELU,
    Embedding,
    Layer,
    LayerNorm,
    Linear,
    MoE,
    MultiheadAttention,
    MultiheadLatentAttention,
    PositionEmbedding,
    Repeat,
    Residual,
    RMSNorm,
    RotaryEmbedding,
    Sequential,
    SwiGLU,
    TiedLMHead,
)
from symflops.nn._base import SizeLike, nonneg_size, to_size
from symflops.presets._checks import checked_sizes

__all__ = ["gpt", "llama", "mixtral", "deepseek_v2", "decoder"]


def gpt(dim: SizeLike, heads: SizeLike, layers: SizeLike, vocab: SizeLike,
        context: SizeLike, *, mlp_ratio: SizeLike = 4, skip_masked: bool = False) -> Sequential:
    """GPT-2 (transformers' ``GPT2LMHeadModel``, inference): token embedding ``wte`` and
    learned positions ``wpe`` (``context`` of them), ``layers`` pre-norm blocks
    (LayerNorm, causal multi-head attention with biases, LayerNorm, MLP ``dim ->
    mlp_ratio*dim -> dim`` with GELU in its tanh form, ``gelu_new``), a final LayerNorm
    ``ln_f`` and the LM head tied to ``wte`` (its weight counted once). Dropout is free
    at inference. ``skip_masked=True`` counts causal attention as its unmasked half (as
    ``sf.trace(..., skip_masked=True)`` and kernels that skip masked blocks); the default
    counts the dense product, as every preset does.

    Parameters: ``V dim + context dim + L (12 dim^2 + 13 dim) + 2 dim`` at
    ``mlp_ratio=4``: GPT-2 small/medium/large/xl (dim 768/1024/1280/1600, L
    12/24/36/48, heads 12/16/20/25, V 50257, context 1024) have 124,439,808,
    354,823,168, 774,030,080 and 1,557,611,200.

    >>> gpt(768, 12, 12, 50257, 1024).cost(("B", "N")).params
    124439808
    """
    checked_sizes("gpt", dim=dim, heads=heads, layers=layers, vocab=vocab, context=context,
                  mlp_ratio=mlp_ratio)
    d = to_size(dim, "gpt", "dim")
    wte = Embedding(vocab, d)
    hidden = to_size(mlp_ratio, "gpt", "mlp_ratio") * d
    block = Sequential({
        "attn": Residual(Sequential({"ln_1": LayerNorm(d),
                                     "attn": MultiheadAttention(d, heads, causal=True,
                                                                skip_masked=skip_masked)})),
        "mlp": Residual(Sequential({"ln_2": LayerNorm(d), "c_fc": Linear(d, hidden),
                                    "act": GELU("tanh"), "c_proj": Linear(hidden, d)})),
    })
    return Sequential({"wte": wte, "wpe": PositionEmbedding(context, d),
                       "h": Repeat(block, layers), "ln_f": LayerNorm(d),
                       "lm_head": TiedLMHead(wte)})


def decoder(dim: SizeLike, heads: SizeLike, kv_heads: SizeLike | None, layers: SizeLike,
            vocab: SizeLike, mlp: Layer, *, tie_embeddings: bool = False,
            skip_masked: bool = False, name: str = "decoder",
            sliding_window: SizeLike | None = None) -> Sequential:
    """The LLaMA-style decoder around a given ``mlp`` layer (SwiGLU for :func:`llama`, a
    mixture of experts for ``mixtral``): token embedding, the rotary table, ``layers``
    pre-norm blocks (RMSNorm, causal attention without biases with ``kv_heads``
    key/value heads and rotary queries and keys, RMSNorm, ``mlp``), a final RMSNorm and
    the LM head (untied unless ``tie_embeddings``); ``skip_masked`` as in :func:`gpt`;
    ``sliding_window=W``: every attention layer sees its last ``W`` keys (Mistral), which
    caps the KV cache at ``min(T, W - 1)`` tokens (``MultiheadAttention(window=)``)."""
    d = to_size(dim, name, "dim")
    h = to_size(heads, name, "heads")
    if d.is_number and h.is_number and d % h:
        raise SymflopsError("heads must divide dim", layer=name, values={"dim": d, "heads": h},
                            fix="choose heads among the divisors of dim")
    embed = Embedding(vocab, d)
    attn = MultiheadAttention(d, h, bias=False, kv_heads=kv_heads, causal=True, rotary=True,
                              skip_masked=skip_masked, window=sliding_window)
    block = Sequential({
        "self_attn": Residual(Sequential({"input_layernorm": RMSNorm(d), "self_attn": attn})),
        "mlp": Residual(Sequential({"post_attention_layernorm": RMSNorm(d), "mlp": mlp})),
    })
    head: Layer = TiedLMHead(embed) if tie_embeddings else Linear(d, vocab, bias=False)
    return Sequential({"embed_tokens": embed, "rotary_emb": RotaryEmbedding(exact_div(d, h)),
                       "layers": Repeat(block, layers), "norm": RMSNorm(d), "lm_head": head})


def llama(dim: SizeLike, heads: SizeLike, kv_heads: SizeLike | None, layers: SizeLike,
          vocab: SizeLike, hidden: SizeLike, *, tie_embeddings: bool = False,
          skip_masked: bool = False, sliding_window: SizeLike | None = None) -> Sequential:
    """LLaMA (transformers' ``LlamaForCausalLM``, inference; also ``MistralForCausalLM``
    while the sequence fits its sliding window): grouped-query attention (``kv_heads``;
    ``None``: as many as ``heads``), rotary embeddings, RMSNorm, a SwiGLU MLP of width
    ``hidden`` and an untied LM head (``tie_embeddings=True`` ties it, as Llama 3.2 1B);
    ``skip_masked`` as in :func:`gpt`; ``sliding_window=W`` as in :func:`decoder`
    (Mistral-7B v0.1: 4096).

    Parameters: ``2 V dim + L (2 dim^2 + 2 dim kv_dim + 3 dim hidden + 2 dim) + dim``
    with ``kv_dim = kv_heads dim / heads``: Llama-2-7B (dim 4096, 32 heads, 32 layers,
    V 32000, hidden 11008) has 6,738,415,616; Mistral-7B (8 kv heads, hidden 14336)
    7,241,732,096.

    >>> llama(4096, 32, 32, 32, 32000, 11008).cost(("B", "N")).params
    6738415616
    """
    checked_sizes("llama", dim=dim, heads=heads, kv_heads=kv_heads, layers=layers, vocab=vocab,
                  hidden=hidden, sliding_window=sliding_window)
    d = to_size(dim, "llama", "dim")
    return decoder(d, heads, kv_heads, layers, vocab, SwiGLU(d, hidden),
                   tie_embeddings=tie_embeddings, skip_masked=skip_masked, name="llama",
                   sliding_window=sliding_window)


def mixtral(dim: SizeLike, heads: SizeLike, kv_heads: SizeLike | None, layers: SizeLike,
            vocab: SizeLike, hidden: SizeLike, experts: SizeLike, top_k: SizeLike, *,
            capacity_factor: Any = None, skip_masked: bool = False,
            sliding_window: SizeLike | None = None) -> Sequential:
    """Mixtral (transformers' ``MixtralForCausalLM``, inference): :func:`llama`'s decoder
    with a sparse mixture of ``experts`` SwiGLU experts of width ``hidden`` in place of
    the MLP, each token routed to ``top_k`` of them (router softmax, top-k, the k weights
    renormalized; :class:`symflops.nn.MoE`, whose ``capacity_factor`` it passes on);
    ``skip_masked`` as in :func:`gpt`; ``sliding_window=W`` as in :func:`decoder`
    (Mistral-7B v0.1: 4096).

    Parameters: ``2 V dim + L (2 dim^2 + 2 dim kv_dim + E dim + 3 E dim hidden + 2 dim) +
    dim``. Mixtral-8x7B (dim 4096, 32 heads, 8 kv heads, 32 layers, V 32000, hidden 14336,
    8 experts, top 2) has 46,702,792,704, of which 12,879,925,248 are active per token
    (:func:`symflops.paper_counts.active_params`: 2 of the 8 experts; "12.9B active", Mistral AI,
    "Mixtral of experts", 2023).

    >>> from symflops.paper_counts import active_params
    >>> c = mixtral(4096, 32, 8, 32, 32000, 14336, 8, 2).cost(("B", "N"))
    >>> c.params, active_params(c)
    (46702792704, 12879925248)
    """
    checked_sizes("mixtral", dim=dim, heads=heads, kv_heads=kv_heads, layers=layers,
                  vocab=vocab, hidden=hidden, experts=experts, top_k=top_k,
                  sliding_window=sliding_window)
    d = to_size(dim, "mixtral", "dim")
    return decoder(d, heads, kv_heads, layers, vocab,
                   MoE(d, hidden, experts, top_k, capacity_factor=capacity_factor),
                   skip_masked=skip_masked, name="mixtral", sliding_window=sliding_window)


def deepseek_v2(dim: SizeLike, heads: SizeLike, layers: SizeLike, vocab: SizeLike,
                kv_rank: SizeLike, q_rank: SizeLike | None, rope_dim: SizeLike,
                head_dim: SizeLike, experts: SizeLike, shared_experts: SizeLike,
                top_k: SizeLike, expert_hidden: SizeLike, dense_layers: SizeLike,
                hidden: SizeLike, *, absorb: bool = False) -> Sequential:
    """DeepSeek-V2 (transformers' ``DeepseekV2ForCausalLM``, inference; DeepSeek-AI 2024,
    arXiv 2405.04434): token embedding, the rotary table (``rope_dim`` wide), ``layers``
    pre-norm blocks of multi-head latent attention
    (:class:`symflops.nn.MultiheadLatentAttention`: ``kv_rank`` ``d_c``, ``q_rank``
    ``d_c'``, ``rope_dim`` ``d_h^R``, ``head_dim`` ``d_h`` for the no-rope query/key part
    and the values) and an MLP: the first ``dense_layers`` a SwiGLU of width ``hidden``,
    the others DeepSeekMoE (``experts`` routed SwiGLU experts of width ``expert_hidden``,
    ``top_k`` per token, weights not renormalized, and ``shared_experts`` shared experts,
    one SwiGLU of width ``shared_experts * expert_hidden``), a final RMSNorm and an untied
    LM head. Not counted (the router's small extras, said here): its
    ``routed_scaling_factor`` multiply (``k`` per token) and the group-limited selection of
    DeepSeek-V2's own config (``topk_method="group_limited_greedy"``: a max per expert group
    and a top-k over groups before the top-k over experts), counted as a plain top-k.
    ``absorb=True``: decode steps in the paper's absorbed form (see
    :class:`~symflops.nn.MultiheadLatentAttention`); the default expands the cached latents
    every step, as transformers does.

    The KV cache holds ``(d_c + d_h^R) layers`` elements per token (the paper's Table 1:
    ``(d_c + d_h^R) l``).

    Parameters: DeepSeek-V2 (dim 5120, 128 heads, 60 layers, V 102400, d_c 512, d_c' 1536,
    d_h^R 64, d_h 128, 160 experts, 2 shared, top 6, expert width 1536, 1 dense layer of
    width 12288) has 235,741,434,880, as transformers builds it.

    >>> deepseek_v2(5120, 128, 60, 102400, 512, 1536, 64, 128, 160, 2, 6, 1536, 1, 12288
    ...             ).cost(("B", "N")).params
    235741434880
    """
    checked_sizes("deepseek_v2", dim=dim, heads=heads, layers=layers, vocab=vocab,
                  kv_rank=kv_rank, q_rank=q_rank, rope_dim=rope_dim, head_dim=head_dim,
                  experts=experts, shared_experts=shared_experts, top_k=top_k,
                  expert_hidden=expert_hidden, hidden=hidden)
    d = to_size(dim, "deepseek_v2", "dim")
    n_layers = to_size(layers, "deepseek_v2", "layers")
    dense = nonneg_size(dense_layers, "deepseek_v2", "dense_layers")
    sparse = sp.expand(n_layers - dense)
    if sparse.is_number and sparse < 0:
        raise SymflopsError("dense_layers is larger than layers", layer="deepseek_v2",
                            values={"layers": layers, "dense_layers": dense_layers},
                            fix="pass dense_layers <= layers")
    attn = MultiheadLatentAttention(d, heads, kv_rank=kv_rank, q_rank=q_rank,
                                    rope_dim=rope_dim, head_dim=head_dim, absorb=absorb)

    def block(mlp: Layer) -> Sequential:
        return Sequential({
            "self_attn": Residual(Sequential({"input_layernorm": RMSNorm(d),
                                              "self_attn": attn})),
            "mlp": Residual(Sequential({"post_attention_layernorm": RMSNorm(d), "mlp": mlp})),
        })

    moe = MoE(d, expert_hidden, experts, top_k, normalize=False,
              shared_hidden=to_size(shared_experts, "deepseek_v2", "shared_experts")
              * to_size(expert_hidden, "deepseek_v2", "expert_hidden"))
    stack: dict[str, Layer] = {}
    if dense != 0:
        stack["dense"] = Repeat(block(SwiGLU(d, hidden)), dense)
    if sparse != 0:
        stack["moe"] = Repeat(block(moe), sparse)
    return Sequential({"embed_tokens": Embedding(vocab, d),
                       "rotary_emb": RotaryEmbedding(to_size(rope_dim, "deepseek_v2",
                                                             "rope_dim")),
                       "layers": Sequential(stack), "norm": RMSNorm(d),
                       "lm_head": Linear(d, vocab, bias=False)})
