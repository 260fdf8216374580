"""Systems papers: Rajbhandari et al. 2020 (ZeRO) and Kwon et al. 2023 (vLLM).

ZeRO's model states come from :class:`symflops.memory.Memory` (the class every ``sf.nn`` layer's
``mode="train"`` memory is), with ``Psi`` trainable parameters under mixed-precision Adam;
vLLM's KV cache per token from :func:`symflops.serving.kv_cache` on ``sf.presets.gpt`` (OPT's
layout: learned positions, multi-head attention). Letters: ``Psi`` parameters, ``N_d`` the
data-parallel degree, ``L`` layers, ``dim`` the hidden size.
"""

from __future__ import annotations

import sympy as sp

from symflops.papers._claims import Claim, Paper, Row, register_paper
from symflops.symbols import L, N, V, dim, heads, symbol

__all__: list[str] = []

Psi, N_d = symbol("Psi"), symbol("N_d")

#: Adam's optimizer state in mixed precision (the paper's K): fp32 master weights, momentum
#: and variance, 4 + 4 + 4 bytes per parameter
K_ADAM = 12

#: ZeRO Figure 1: a 7.5B-parameter model on 64 data-parallel GPUs
FIGURE1 = {"Psi": 7_500_000_000, "N_d": 64}


def _model_states(stage: int) -> sp.Expr:
    from symflops.memory import Memory

    m = Memory(param_count=Psi, trainable=Psi, optimizer_name="adam", zero=stage,
               data_parallel=N_d)
    return m.model_states


def _zero_claim(stage: int, name: str, paper: sp.Expr, text: str, gb: str) -> Claim:
    return Claim(
        f"Model states per device, {name}", "bytes per device", "memory",
        derived=lambda: _model_states(stage),
        paper=lambda: paper,
        paper_text=text,
        how="`symflops.memory.Memory(param_count=Psi, trainable=Psi, zero="
            f"{stage}, data_parallel=N_d).model_states`, the memory of every `sf.nn` layer "
            f"in `mode='train'` (`layer.cost(..., mode='train', zero={stage}, "
            "data_parallel=N_d)`): 2-byte parameters and gradients and Adam's 12 bytes "
            "(the paper's $K = 12$: fp32 master weights, momentum and variance). The paper "
            "prints GB of $10^9$ bytes rounded to one decimal (the exact value is in the "
            "table); each partitioned state is split evenly, exact when $N_d$ divides "
            "$\\Psi$ (DeepSpeed pads each partition to $\\lceil \\Psi / N_d \\rceil$ "
            "otherwise).",
        rows=(Row("7.5B parameters, 64 GPUs (Figure 1)", FIGURE1, gb),),
    )


register_paper(Paper(
    "zero",
    "Rajbhandari et al. 2020, *ZeRO: Memory Optimizations Toward Training Trillion Parameter "
    "Models*",
    "Section 5 and Figure 1 (model-state memory per device)",
    (
        _zero_claim(0, "baseline data parallelism", (2 + 2 + K_ADAM) * Psi,
                    "(2 + 2 + K)\\Psi", "120 GB"),
        _zero_claim(1, "P_os (stage 1)", 2 * Psi + 2 * Psi + K_ADAM * Psi / N_d,
                    "2\\Psi + 2\\Psi + \\frac{K \\Psi}{N_d}", "31.4 GB"),
        _zero_claim(2, "P_os+g (stage 2)", 2 * Psi + (2 + K_ADAM) * Psi / N_d,
                    "2\\Psi + \\frac{(2 + K)\\Psi}{N_d}", "16.6 GB"),
        _zero_claim(3, "P_os+g+p (stage 3)", (2 + 2 + K_ADAM) * Psi / N_d,
                    "\\frac{(2 + 2 + K)\\Psi}{N_d}", "1.9 GB"),
    ),
))


def _kv_per_token() -> sp.Expr:
    from symflops import presets
    from symflops.serving import kv_cache

    model = presets.gpt(dim=dim, heads=heads, layers=L, vocab=V, context=N)
    return kv_cache(model, 1, 1)


#: OPT-13B (Zhang et al. 2022, Table 1): 40 layers, hidden 5120, 40 heads, 2048 positions,
#: a vocabulary of 50272
OPT13B = {"L": 40, "dim": 5120, "heads": 40, "N": 2048, "V": 50272}

register_paper(Paper(
    "vllm",
    "Kwon et al. 2023, *Efficient Memory Management for Large Language Model Serving with "
    "PagedAttention* (vLLM)",
    "Section 3 (memory challenges in LLM serving)",
    (
        Claim(
            "KV cache per token", "bytes per token", "memory",
            derived=_kv_per_token,
            paper=lambda: 2 * dim * L * 2,
            paper_text="2 \\times 5120 \\times 40 \\times 2 "
                       "\\text{ (key and value, hidden size, layers, bytes of FP16)}",
            how="`symflops.serving.kv_cache(sf.presets.gpt(dim, heads, L, V, N), 1, 1)`: one "
                "token of one sequence, every attention layer keeping a key and a value of "
                "`dim` elements in 2 bytes (OPT's layout; `kv_bytes=1` for an 8-bit cache "
                "halves it). The paper's 800 KB is 819,200 bytes: KB of 1024 bytes.",
            example_name="OPT-13B", example=OPT13B,
            published="800 KB per token",
        ),
    ),
))


d_h, n_g = symbol("d_h"), symbol("n_g")


def _kv_elements(attention: str) -> sp.Expr:
    from symflops import nn
    from symflops.serving import kv_elements_per_token

    layers = {
        "mha": lambda: nn.MultiheadAttention(heads * d_h, heads),
        "gqa": lambda: nn.MultiheadAttention(heads * d_h, heads, kv_heads=n_g),
        "mqa": lambda: nn.MultiheadAttention(heads * d_h, heads, kv_heads=1),
        # DeepSeek-V2's choices: d_c = 4 d_h, d_h^R = d_h / 2
        "mla": lambda: nn.MultiheadLatentAttention(heads * d_h, heads, kv_rank=4 * d_h,
                                                   q_rank=None, rope_dim=d_h / 2,
                                                   head_dim=d_h),
    }
    return sp.expand(kv_elements_per_token(nn.Repeat(layers[attention](), L)))


_DEEPSEEK_HOW = (
    "`symflops.serving.kv_elements_per_token(sf.nn.Repeat(layer, L))`: the elements one "
    "token leaves in the cache, over $l$ layers of `{layer}`; multiply by `kv_bytes` for "
    "bytes. ")

register_paper(Paper(
    "deepseek_v2",
    "DeepSeek-AI 2024, *DeepSeek-V2: A Strong, Economical, and Efficient Mixture-of-Experts "
    "Language Model*",
    "Section 2.1.4, Table 1 (KV cache per token)",
    (
        Claim("KV cache per token, multi-head attention", "elements per token", "memory",
              derived=lambda: _kv_elements("mha"),
              paper=lambda: 2 * heads * d_h * L, paper_text="2 n_h d_h l",
              how=_DEEPSEEK_HOW.format(layer="sf.nn.MultiheadAttention(n_h d_h, n_h)")
              + "A key and a value of $n_h d_h$ each."),
        Claim("KV cache per token, grouped-query attention", "elements per token", "memory",
              derived=lambda: _kv_elements("gqa"),
              paper=lambda: 2 * n_g * d_h * L, paper_text="2 n_g d_h l",
              how=_DEEPSEEK_HOW.format(
                  layer="sf.nn.MultiheadAttention(n_h d_h, n_h, kv_heads=n_g)")
              + "$n_g$ key/value heads."),
        Claim("KV cache per token, multi-query attention", "elements per token", "memory",
              derived=lambda: _kv_elements("mqa"),
              paper=lambda: 2 * d_h * L, paper_text="2 d_h l",
              how=_DEEPSEEK_HOW.format(
                  layer="sf.nn.MultiheadAttention(n_h d_h, n_h, kv_heads=1)")
              + "One key/value head."),
        Claim("KV cache per token, multi-head latent attention", "elements per token",
              "memory",
              derived=lambda: _kv_elements("mla"),
              paper=lambda: sp.Rational(9, 2) * d_h * L,
              paper_text="(d_c + d_h^R) l \\approx \\frac{9}{2} d_h l",
              how=_DEEPSEEK_HOW.format(
                  layer="sf.nn.MultiheadLatentAttention(n_h d_h, n_h, kv_rank=4 d_h, "
                        "rope_dim=d_h/2, head_dim=d_h)")
              + "The latent $c^{KV}$ ($d_c$) and the shared rotary key ($d_h^R$); with "
                "DeepSeek-V2's $d_c = 4 d_h$ and $d_h^R = d_h / 2$ the paper's "
                "$\\frac{9}{2} d_h l$ is exact."),
    ),
))
