"""Language-model papers: Kaplan et al. 2020, Hoffmann et al. 2022 (Chinchilla),
Narayanan et al. 2021 (Megatron-LM), Korthikanti et al. 2022.

Every claim is derived from ``sf.presets.gpt`` or ``sf.nn.TransformerBlock`` with every size
a symbol (see :mod:`symflops.papers`). The papers' letters map to symflops' symbols:
``n_layer, l -> L``, ``d_model, h -> dim``, ``n_heads, a -> heads``, ``n_ctx, s -> N``,
``b -> B``, ``n_vocab -> V``, the tensor-parallel degree ``t -> t``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.memory import pipeline_bubble
from symflops.papers._claims import Claim, Paper, Row, Term, register_paper
from symflops.symbols import B, L, N, T, V, dim, heads, symbol

__all__: list[str] = []

t = symbol("t")  # the tensor-parallel degree
#: pipeline stages, micro-batches per batch, model chunks per device (Narayanan et al.)
p_stages, m_micro, v_chunks = symbol("p"), symbol("m"), symbol("v")

#: GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads, 2048
#: tokens of context, GPT-2's vocabulary of 50257 tokens
GPT3 = {"L": 96, "dim": 12288, "heads": 96, "N": 2048, "V": 50257, "B": 1}


@cache
def _gpt(skip_masked: bool = False) -> Any:
    from symflops import presets

    return presets.gpt(dim=dim, heads=heads, layers=L, vocab=V, context=N,
                       skip_masked=skip_masked)


@cache
def _gpt_cost(convention: str = "torch", skip_masked: bool = False) -> Cost:
    return _gpt(skip_masked).cost((B, N), convention=convention)


@cache
def _gpt_train(convention: str = "torch", recompute: str = "none") -> Cost:
    return _gpt().cost((B, N), mode="train", recompute=recompute, convention=convention)


def _per_token(cost: Cost) -> sp.Expr:
    from symflops.paper_counts import per_token

    return sp.expand(per_token(cost, "flops"))


def _decode_per_token() -> sp.Expr:
    cost = _gpt().cost((B, 1), mode="decode", context=T, convention="torch")
    return sp.expand(cost.flops / B)


def _non_embedding() -> sp.Expr:
    from symflops.paper_counts import non_embedding_params

    return non_embedding_params(_gpt_cost())


_GPT_HOW = ("`sf.presets.gpt(dim, heads, L, V, N)` (GPT-2: learned positions, a tied LM "
            "head, biases, LayerNorm, an MLP of width $4\\,dim$) on a batch `(B, N)`; the "
            "paper's $d_{attn} = d_{model}$ and $d_{ff} = 4 d_{model}$.")

register_paper(Paper(
    "kaplan",
    "Kaplan et al. 2020, *Scaling Laws for Neural Language Models*",
    "Section 2.1, Table 1 (parameters and forward FLOPs per token)",
    (
        Claim(
            "Non-embedding parameters N", "parameters", "exact",
            derived=_non_embedding,
            paper=lambda: 12 * L * dim**2,
            paper_text="N \\approx 2 d_{model} n_{layer} (2 d_{attn} + d_{ff}) = "
                       "12 n_{layer} d_{model}^2",
            dropped=lambda: (Term(13 * L * dim, "biases (9 dim per layer) and the two "
                                  "LayerNorms' scales and shifts (4 dim per layer)"),
                             Term(2 * dim, "the final LayerNorm")),
            how=_GPT_HOW + " Non-embedding: `symflops.paper_counts.non_embedding_params` drops "
                "the token and position tables.",
            example_name="GPT-3 175B", example=GPT3,
        ),
        Claim(
            "Forward FLOPs per token, C_forward", "FLOPs per token (forward)", "torch",
            derived=lambda: _per_token(_gpt_cost("torch")),
            paper=lambda: 2 * 12 * L * dim**2 + 2 * L * N * dim,
            paper_text="C_{forward} \\approx 2N + 2 n_{layer} n_{ctx} d_{attn}",
            dropped=lambda: (
                Term(2 * L * N * dim, "attention: the paper counts "
                     "$2 n_{ctx} d_{attn}$ per token per layer; the two dense products "
                     "$QK^T$ and $AV$ over the whole context cost $4 n_{ctx} d_{attn}$ "
                     "(2 per multiply-accumulate), as torch computes them"),
                Term(2 * dim * V, "the de-embedding (the LM head): Table 1 lists "
                     "$2 d_{model} n_{vocab}$ but leaves it out of $C_{forward}$")),
            how=_GPT_HOW + " `symflops.paper_counts.per_token` divides the forward cost by the "
                "$B N$ tokens. Biases, norms, GELU and softmax are not counted by the "
                "torch convention, nor by the paper.",
            example_name="GPT-3 175B", example=GPT3,
        ),
        Claim(
            "C_forward with causal masking counted (skip_masked)",
            "FLOPs per token (forward)", "torch",
            derived=lambda: _per_token(_gpt_cost("torch", skip_masked=True)),
            paper=lambda: 2 * 12 * L * dim**2 + 2 * L * N * dim,
            paper_text="C_{forward} \\approx 2N + 2 n_{layer} n_{ctx} d_{attn}",
            dropped=lambda: (
                Term(2 * L * dim, "attention over the causal lower triangle with its "
                     "diagonal: $QK^T$ and $AV$ over $N(N+1)/2$ query-key pairs each, "
                     "$2(n_{ctx} + 1) d_{attn}$ per token per layer on average, the "
                     "paper's $2 n_{ctx} d_{attn}$ plus the diagonal"),
                Term(2 * dim * V, "the de-embedding (the LM head), listed in Table 1 "
                     "but left out of $C_{forward}$")),
            how="The same model with `skip_masked=True`: attention kernels that skip the "
                "masked upper triangle, which is how the paper's attention term reads.",
            example_name="GPT-3 175B", example=GPT3,
        ),
        Claim(
            "FLOPs per generated token, 2N", "FLOPs per token (decode step)", "torch",
            derived=_decode_per_token,
            paper=lambda: 2 * 12 * L * dim**2,
            paper_text="C_{forward} \\approx 2N, \\quad N \\approx 12 n_{layer} d_{model}^2",
            dropped=lambda: (
                Term(2 * L * (T + 1) * dim, "the context term $2 n_{layer} n_{ctx} d_{attn}$ "
                     "of Table 1 at $n_{ctx} = T + 1$ (the $T$ cached keys and the token's "
                     "own): $q K^T$"),
                Term(2 * L * (T + 1) * dim, "the attention-weighted sum of the values "
                     "($A V$): as many multiply-accumulates as $q K^T$; Table 1 writes the "
                     "context term once"),
                Term(2 * dim * V, "the de-embedding (the LM head), $2 d_{model} n_{vocab}$: "
                     "in Table 1, left out of $C_{forward}$ and of $N$")),
            how=_GPT_HOW + " One decode step, `cost((B, 1), mode='decode', context=T)`: one "
                "new token per sequence attending to $T$ cached tokens and itself, per "
                "token ($/B$). Chinchilla's rule of thumb is the same $2N$ per token forward. "
                "Biases, norms, GELU and softmax are not counted by the torch convention, nor "
                "by the paper.",
            example_name="GPT-3 175B at a context of 2048 tokens",
            example={**GPT3, "T": 2048},
        ),
    ),
))


def _chinchilla_paper() -> sp.Expr:
    """Appendix F, per sequence of ``s`` tokens, one forward pass: embeddings
    ``2 s V d``; per layer QKV ``2*3 s d (k h)``, logits ``2 s^2 (k h)``, softmax
    ``3 h s^2``, softmax-times-values ``2 s^2 (k h)``, output ``2 s (k h) d``, dense block
    ``2 s (2 d f)``; final logits ``2 s d V`` (with ``k h = d``, ``f = 4 d``)."""
    s, d, h = N, dim, heads
    attention = 2 * 3 * s * d * d + 2 * s**2 * d + 3 * h * s**2 + 2 * s**2 * d + 2 * s * d * d
    dense = 2 * s * (2 * d * 4 * d)
    return 2 * s * V * d + L * (attention + dense) + 2 * s * d * V


# Chinchilla's way of counting (Appendix F) is the registered convention "chinchilla"
# (symflops.conventions): 2 FLOPs per multiply-accumulate, as torch counts, and the softmax
# counted too (the paper writes 3 per element; symflops counts the exact 5 s - 2 per row).

#: Chinchilla 70B (Hoffmann et al. 2022, Table 4): 80 layers, d_model 8192, 64 heads of
#: key size 128, feed-forward 32768 (4 d_model), a 32,000-token vocabulary, 2048 tokens
CHINCHILLA = {"L": 80, "dim": 8192, "heads": 64, "N": 2048, "V": 32000, "B": 1}

register_paper(Paper(
    "chinchilla",
    "Hoffmann et al. 2022, *Training Compute-Optimal Large Language Models* (Chinchilla)",
    "Appendix F (FLOPs computation)",
    (
        Claim(
            "Forward FLOPs per sequence", "FLOPs per sequence (forward)", "chinchilla",
            derived=lambda: sp.expand(_gpt_cost("chinchilla").flops.xreplace({B: 1})),
            paper=_chinchilla_paper,
            paper_text="2sVd + L\\,(8sd^2 + 4s^2d + 3hs^2 + 16sd^2) + 2sdV",
            dropped=lambda: (
                Term(-2 * N * V * dim, "the paper counts the embedding lookup as a matmul "
                     "with a one-hot vector ($2 s V d$); a lookup does no arithmetic"),
                Term(2 * L * heads * N * (N - 1), "the paper counts 3 FLOPs per softmax "
                     "element (exp, sum, divide); a row of $s$ takes $5 s - 2$: also the "
                     "$s - 1$ compares of the max and the $s$ subtractions before the exp, "
                     "while the sum of $s$ numbers takes $s - 1$ adds, not $s$")),
            how=_GPT_HOW + " One sequence (`B = 1`) under the registered `chinchilla` "
                "convention (2 per multiply-accumulate, softmax counted); the paper's key size "
                "times heads is $d_{model}$ and its feed-forward size $4 d_{model}$, as in "
                "Chinchilla 70B. Everything else agrees term by term: a negative dropped term "
                "is one the paper counts and symflops does not.",
            example_name="Chinchilla 70B, one sequence of 2048 tokens", example=CHINCHILLA,
        ),
        Claim(
            "Training FLOPs per sequence: backward = 2 x forward", "FLOPs per sequence "
            "(training)", "torch",
            derived=lambda: sp.expand(_gpt_train("torch").flops.xreplace({B: 1})),
            paper=lambda: 3 * _chinchilla_paper(),
            paper_text="3 \\times \\text{forward}",
            dropped=lambda: (
                Term(-3 * 2 * N * V * dim, "three times the one-hot embedding matmul"),
                Term(-3 * 3 * L * heads * N**2, "three times 3 FLOPs per softmax element "
                     "(the torch convention counts no softmax)")),
            how=_GPT_HOW + " `mode='train'`, one sequence. Under the torch convention the "
                "paper's rule is exact for this model: every matmul runs its two gradient "
                "matmuls (the embedding is trainable, so even the first block's input gradient "
                "is needed), so training is exactly 3 forward passes; the dropped terms are "
                "the paper's forward extras, three times.",
            example_name="Chinchilla 70B, one sequence of 2048 tokens", example=CHINCHILLA,
        ),
    ),
))


def _megatron_params_paper() -> sp.Expr:
    """Narayanan et al. 2021, eq. (2): ``P = 12 l h^2 (1 + 13/(12 h) + (V + s)/(12 l h))``."""
    return 12 * L * dim**2 * (1 + sp.Rational(13, 12) / dim + (V + N) / (12 * L * dim))


def _megatron_row(billions: str, heads_: int, hidden: int, layers: int) -> Row:
    # vocabulary 51,200 and sequence length 2048 for every row (Section 5.1)
    return Row(f"{billions}B: {layers} layers, hidden {hidden}, {heads_} heads",
               {"L": layers, "dim": hidden, "heads": heads_, "N": 2048, "V": 51200, "B": 1},
               f"{billions} billion")


register_paper(Paper(
    "megatron",
    "Narayanan et al. 2021, *Efficient Large-Scale Language Model Training on GPU Clusters "
    "Using Megatron-LM*",
    "Section 5.1, equation (2) and Table 1",
    (
        Claim(
            "Parameters of a GPT model", "parameters", "exact",
            derived=lambda: sp.expand(_gpt_cost().params),
            paper=_megatron_params_paper,
            paper_text="P = 12 l h^2 \\left(1 + \\frac{13}{12h} + \\frac{V + s}{12 l h}\\right)",
            dropped=lambda: (Term(2 * dim, "the final LayerNorm's scale and shift"),),
            how=_GPT_HOW + " Megatron's GPT has the same layout (learned positions of "
                "length $s$, tied embeddings).",
            rows=tuple(_megatron_row(*r) for r in (
                ("1.7", 24, 2304, 24), ("3.6", 32, 3072, 30), ("7.5", 32, 4096, 36),
                ("18.4", 48, 6144, 40), ("39.1", 64, 8192, 48), ("76.1", 80, 10240, 60),
                ("145.6", 96, 12288, 80), ("310.1", 128, 16384, 96),
                ("529.6", 128, 20480, 105), ("1008.0", 160, 25600, 128))),
        ),
        Claim(
            "FLOPs per iteration with activation recomputation", "FLOPs per batch (training)",
            "torch",
            derived=lambda: sp.expand(_gpt_train("torch", recompute="full").flops),
            paper=lambda: 96 * B * N * L * dim**2 * (1 + N / (6 * dim) + V / (16 * L * dim)),
            paper_text="F = 96 B s l h^2 \\left(1 + \\frac{s}{6h} + \\frac{V}{16 l h}\\right)",
            how=_GPT_HOW + " `mode='train', recompute='full'`: forward, backward derived op "
                "by op (each matmul's two gradient matmuls; the embedding is trainable, so the "
                "first block's input gradient runs too) and every transformer layer's forward "
                "run again in backward (the LM head is not recomputed). The identity is exact: "
                "the torch convention counts the matmuls only, as the paper does.",
            example_name="GPT-3 175B, one sequence", example=GPT3,
        ),
        Claim(
            "Pipeline bubble, GPipe and 1F1B schedules", "bubble time / ideal time", "time",
            derived=lambda: pipeline_bubble(p_stages, m_micro),
            paper=lambda: (p_stages - 1) / m_micro,
            paper_text="\\frac{t_{pb}}{t_{id}} = \\frac{p - 1}{m}",
            how="`symflops.memory.pipeline_bubble(p, m)`: $p$ pipeline stages, $m$ "
                "micro-batches per batch (section 2.2.1). Both schedules idle $p - 1$ "
                "forward and backward slots per stage; the tests check it against a "
                "simulated GPipe schedule. As a fraction of the whole batch time it is "
                "$(p - 1)/(m + p - 1)$.",
        ),
        Claim(
            "Pipeline bubble, interleaved schedule", "bubble time / ideal time", "time",
            derived=lambda: pipeline_bubble(p_stages, m_micro, v_chunks),
            paper=lambda: (p_stages - 1) / (v_chunks * m_micro),
            paper_text="\\frac{1}{v} \\cdot \\frac{p - 1}{m}",
            how="`symflops.memory.pipeline_bubble(p, m, v)`: each device holds $v$ model "
                "chunks (section 2.2.2), so a bubble slot lasts $1/v$ of a stage's time.",
        ),
    ),
))


def _block_activations(**options: Any) -> sp.Expr:
    from symflops import nn

    block = nn.TransformerBlock(dim, heads, mlp_ratio=4, dropout=0.1)
    cost = block.cost((B, N, dim), mode="train", **options)
    assert cost.memory is not None
    return sp.factor(cost.memory.activations)


_KORTHIKANTI_HOW = (
    "`sf.nn.TransformerBlock(dim, heads, mlp_ratio=4, dropout=0.1).cost((B, N, dim), "
    "mode='train', ...)`: each op saves what its autograd node saves for backward, in "
    "16-bit activations with 1-byte dropout masks (`memory.activations`, bytes, one layer). "
    "The paper's accounting leaves out the LayerNorms' row statistics, which torch also "
    "saves ($8 B N$ bytes per layer: `accounting='torch'` counts them).")

#: the GPT-3 175B layer of Korthikanti et al. Table 3, micro-batch 1, tensor parallel 8
KORTHIKANTI = {**GPT3, "t": 8}

register_paper(Paper(
    "korthikanti",
    "Korthikanti et al. 2022, *Reducing Activation Recomputation in Large Transformer "
    "Models*",
    "Sections 4.1-4.3 and 5, equations (1)-(5), Table 2",
    (
        Claim("Activations per layer, no parallelism (eq. 1)", "bytes", "memory",
              derived=_block_activations,
              paper=lambda: N * B * dim * (34 + 5 * heads * N / dim),
              paper_text="sbh\\left(34 + 5\\frac{as}{h}\\right)", how=_KORTHIKANTI_HOW,
              example_name="a GPT-3 175B layer, one sequence", example=GPT3),
        Claim("Activations per layer, tensor parallelism (eq. 2)", "bytes", "memory",
              derived=lambda: _block_activations(tensor_parallel=t),
              paper=lambda: N * B * dim * (10 + 24 / t + 5 * heads * N / (dim * t)),
              paper_text="sbh\\left(10 + \\frac{24}{t} + 5\\frac{as}{ht}\\right)",
              how=_KORTHIKANTI_HOW + " `tensor_parallel=t`.",
              example_name="a GPT-3 175B layer, one sequence, t = 8", example=KORTHIKANTI),
        Claim("Activations per layer, tensor and sequence parallelism (eq. 4)", "bytes",
              "memory",
              derived=lambda: _block_activations(tensor_parallel=t, sequence_parallel=True),
              paper=lambda: N * B * dim / t * (34 + 5 * heads * N / dim),
              paper_text="\\frac{sbh}{t}\\left(34 + 5\\frac{as}{h}\\right)",
              how=_KORTHIKANTI_HOW + " `tensor_parallel=t, sequence_parallel=True`.",
              example_name="a GPT-3 175B layer, one sequence, t = 8", example=KORTHIKANTI),
        Claim("Activations per layer, with selective recomputation (eq. 5)", "bytes",
              "memory",
              derived=lambda: _block_activations(tensor_parallel=t, sequence_parallel=True,
                                                 recompute="selective"),
              paper=lambda: 34 * N * B * dim / t,
              paper_text="34\\frac{sbh}{t}",
              how=_KORTHIKANTI_HOW + " `recompute='selective'` recomputes the attention "
                  "core ($QK^T$, softmax, dropout, $AV$) in backward and keeps only Q, K, V.",
              example_name="a GPT-3 175B layer, one sequence, t = 8", example=KORTHIKANTI),
        Claim("Activations per layer, tensor parallelism with selective recomputation "
              "(Table 2)", "bytes", "memory",
              derived=lambda: _block_activations(tensor_parallel=t, recompute="selective"),
              paper=lambda: N * B * dim * (10 + 24 / t),
              paper_text="sbh\\left(10 + \\frac{24}{t}\\right)",
              how=_KORTHIKANTI_HOW + " `tensor_parallel=t, recompute='selective'`: the "
                  "attention core recomputed, the LayerNorm and dropout inputs outside the "
                  "tensor-parallel region kept whole.",
              example_name="a GPT-3 175B layer, one sequence, t = 8", example=KORTHIKANTI),
        Claim("Activations per layer, full recomputation (Table 2)", "bytes", "memory",
              derived=lambda: _block_activations(recompute="full"),
              paper=lambda: 2 * N * B * dim,
              paper_text="2sbh",
              how=_KORTHIKANTI_HOW + " `recompute='full'`: only the layer's input is kept "
                  "(2 bytes per element); the whole layer runs again in backward.",
              example_name="a GPT-3 175B layer, one sequence", example=GPT3),
        Claim("Model FLOPs per iteration, without recomputation (Section 6)",
              "FLOPs per batch (training)", "torch",
              derived=lambda: sp.expand(_gpt_train("torch").flops),
              paper=lambda: 72 * B * N * L * dim**2 * (1 + N / (6 * dim) + V / (12 * L * dim)),
              paper_text="72 B s l h^2 \\left(1 + \\frac{s}{6h} + \\frac{V}{12 l h}\\right)",
              how=_GPT_HOW + " `mode='train'`: forward and backward, nothing recomputed.",
              example_name="GPT-3 175B, one sequence", example=GPT3),
    ),
))


@cache
def _palm() -> Any:
    from symflops import presets

    # multi-query attention (one K/V head), SwiGLU of width 4 d_model, no biases, the LM
    # head tied to the embedding, rotary positions: llama's decoder with those choices
    return presets.llama(dim, heads, 1, L, V, 4 * dim, tie_embeddings=True)


def _palm_per_token() -> sp.Expr:
    from symflops.paper_counts import per_token

    return sp.expand(per_token(_palm().cost((B, N), mode="train", convention="torch")))


def _palm_row(name: str, layers: int, d: int, heads_: int, printed: str) -> Row:
    return Row(f"PaLM {name}: {layers} layers, d_model {d}, {heads_} heads of 256",
               {"L": layers, "dim": d, "heads": heads_, "N": 2048, "V": 256000, "B": 1},
               printed)


register_paper(Paper(
    "palm",
    "Chowdhery et al. 2022, *PaLM: Scaling Language Modeling with Pathways*",
    "Appendix B (model FLOPs utilization) and Table 1",
    (
        Claim(
            "Training FLOPs per token, 6N + 12 L H Q T", "FLOPs per token (training)", "torch",
            derived=_palm_per_token,
            paper=lambda: 6 * _palm().cost((B, N)).params + 12 * L * dim * N,
            paper_text="6N + 12 L H Q T",
            dropped=lambda: (Term(-6 * (2 * L + 1) * dim, "$N$ counts the RMSNorm "
                                  "weights (two per layer and a final one), which do no "
                                  "matmul"),),
            how="`sf.presets.llama(dim, heads, 1, L, V, 4*dim, tie_embeddings=True)` "
                "(PaLM's choices: multi-query attention, SwiGLU of width $4 d_{model}$, no "
                "biases, shared input and output embeddings, rotary positions) in "
                "`mode='train'`, per token (`symflops.paper_counts.per_token`); $H Q = d_{model}$, "
                "$T = N$. The attention term is the dense $QK^T$ and $AV$ forward ($4 L H Q T$) "
                "and their gradients. PaLM 540B itself has $H Q = 12288 \\neq d_{model} = "
                "18432$, a head width the preset does not take (it uses $d_{model}/H$); the "
                "8B and 62B models have $H Q = d_{model}$ and are checked in the table "
                "(parameters, the paper's Table 1).",
            example_name="PaLM 62B, sequences of 2048 tokens",
            example={"L": 64, "dim": 8192, "heads": 32, "N": 2048, "V": 256000, "B": 1},
        ),
        Claim(
            "Parameters (Table 1)", "parameters", "exact",
            derived=lambda: sp.expand(_palm().cost((B, N)).params),
            paper=lambda: (V * dim + L * (2 * dim**2 + 2 * dim**2 / heads + 12 * dim**2
                                           + 2 * dim) + dim),
            paper_text="N\\ \\text{(Table 1 prints the figures)}",
            how="The same preset's parameters. The paper gives no formula: the one in "
                "symflops' symbols is the architecture counted by hand (embedding $V d$; per "
                "layer $Q$ and output $2d^2$, one K/V head $2 d^2/H$, SwiGLU $3 \\cdot 4 d^2$, "
                "two RMSNorms $2d$; a final RMSNorm $d$). Table 1 prints billions with two "
                "decimals.",
            rows=(_palm_row("8B", 32, 4096, 16, "8.63 billion"),
                  _palm_row("62B", 64, 8192, 32, "62.50 billion")),
        ),
    ),
))
