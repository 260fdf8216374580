"""The language-model presets (sf.presets.gpt, llama): published parameter counts, the
same counts from the real transformers model built from its config on the meta device,
and the preset equal to sf.trace of the transformers model, kind by kind, at two sizes
(with every difference derived and named)."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import symflops as sf  # noqa: E402
from symflops import presets  # noqa: E402
from symflops.paper_counts import non_embedding_params  # noqa: E402
from symflops.symbols import B, L, N, V, dim, heads, kv_heads, symbol  # noqa: E402

transformers.logging.set_verbosity_error()
F = symbol("F")


def meta_params(config_cls, model_cls, **config):
    """Parameters of the transformers model built from ``config`` on the meta device
    (tied weights are one Parameter object, counted once by ``parameters()``)."""
    with torch.device("meta"):
        model = model_cls(config_cls(**config))
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------- published counts
# GPT-2 sizes from Radford et al. 2019 Table 2 (d_model, layers) and the released configs
# (n_head 12/16/20/25, vocab 50257, n_positions 1024). The published parameter counts are
# the ones OpenAI's and HF's model cards report for the released checkpoints
# (124M/355M/774M/1.5B); the exact figures below are HF's GPT2LMHeadModel num_parameters().
GPT2 = {  # name: (dim, heads, layers, params)
    "gpt2": (768, 12, 12, 124_439_808),
    "gpt2-medium": (1024, 16, 24, 354_823_168),
    "gpt2-large": (1280, 20, 36, 774_030_080),
    "gpt2-xl": (1600, 25, 48, 1_557_611_200),
}


@pytest.mark.parametrize("name", GPT2)
def test_gpt2_params(name):
    d, h, layers, published = GPT2[name]
    # V d + ctx d + L (12 d^2 + 13 d) + 2 d: gpt2 small 50257*768 + 1024*768
    # + 12 (12*768^2 + 13*768) + 2*768 = 38,597,376 + 786,432 + 85,054,464 + 1,536
    assert presets.gpt(d, h, layers, 50257, 1024).cost((B, N)).params == published
    symbolic = presets.gpt(dim, heads, L, V, N).cost((B, N)).params
    assert symbolic.subs({dim: d, heads: h, L: layers, V: 50257, N: 1024}) == published
    assert meta_params(transformers.GPT2Config, transformers.GPT2LMHeadModel, n_embd=d,
                       n_head=h, n_layer=layers) == published


LLAMA = {  # name: (dim, heads, kv_heads, layers, vocab, hidden, params)
    # Llama-2-7B (Touvron et al. 2023; HF meta-llama/Llama-2-7b-hf config):
    # 2 V d + L (4 d^2 + 3 d F + 2 d) + d = 262,144,000 + 32 * 202,383,360 + 4,096
    "llama-2-7b": (4096, 32, 32, 32, 32000, 11008, 6_738_415_616),
    # Mistral-7B-v0.1 (Jiang et al. 2023; HF mistralai/Mistral-7B-v0.1 config): 8 kv heads,
    # kv_dim 1024: attention 4096*6144 + 4096^2 = 41,943,040; MLP 3*4096*14336 =
    # 176,160,768; per layer 218,112,000; 32 layers + 262,144,000 + 4,096
    "mistral-7b": (4096, 32, 8, 32, 32000, 14336, 7_241_732_096),
}


@pytest.mark.parametrize("name", LLAMA)
def test_llama_params(name):
    d, h, kv, layers, vocab, hidden, published = LLAMA[name]
    assert presets.llama(d, h, kv, layers, vocab, hidden).cost((B, N)).params == published
    symbolic = presets.llama(dim, heads, kv_heads, L, V, F).cost((B, N)).params
    assert symbolic.subs({dim: d, heads: h, kv_heads: kv, L: layers, V: vocab,
                          F: hidden}) == published
    assert meta_params(transformers.LlamaConfig, transformers.LlamaForCausalLM,
                       hidden_size=d, num_attention_heads=h, num_key_value_heads=kv,
                       num_hidden_layers=layers, vocab_size=vocab,
                       intermediate_size=hidden) == published


def test_symbolic_param_formulas():
    # GPT-2, hand count per block: qkv 3d^2 + 3d, out d^2 + d, fc 4d^2 + 4d, proj 4d^2 + d,
    # two LayerNorms 4d: 12 d^2 + 13 d; plus wte V d, wpe N d, ln_f 2d, head tied (0)
    gpt = presets.gpt(dim, heads, L, V, N).cost((B, N)).params
    assert sp.expand(gpt - (V * dim + N * dim + L * (12 * dim**2 + 13 * dim) + 2 * dim)) == 0
    # LLaMA: q and o d^2 each, k and v d kv_dim each (kv_dim = kv_heads d / heads),
    # three d x F matrices, two RMSNorms d each; embed and head V d each, final norm d
    llama = presets.llama(dim, heads, kv_heads, L, V, F).cost((B, N)).params
    kv_dim = kv_heads * dim / heads
    assert sp.expand(llama - (2 * V * dim + L * (2 * dim**2 + 2 * dim * kv_dim + 3 * dim * F
                                                 + 2 * dim) + dim)) == 0


def test_tied_head_counts_once():
    # untied, the head adds V*dim: GPT-2 small would have 124,439,808 + 50257*768 =
    # 163,037,184 (a tied-unaware count gets that); tying gives the head 0 parameters
    c = presets.gpt(768, 12, 12, 50257, 1024).cost((B, N))
    assert c["lm_head"].params == 0
    assert c["lm_head"].macs == B * N * 768 * 50257
    tied = presets.llama(64, 4, 2, 2, 100, 96, tie_embeddings=True).cost((B, N)).params
    assert presets.llama(64, 4, 2, 2, 100, 96).cost((B, N)).params - tied == 100 * 64


def test_context_too_short_is_one_error():
    with pytest.raises(sf.SymflopsError, match="longer than the position table"):
        presets.gpt(64, 4, 2, 100, 16).cost((2, 32))


# --------------------------------------------------------------------- preset == trace
def traced(config_cls, model_cls, **config):
    with torch.device("meta"):
        model = model_cls(config_cls(**config))
    return sf.trace(model, {"input_ids": ("B", "N")}, warn=False)


def assert_same_except(trace, preset, differences):
    """Kind by kind, ``trace.work - preset.work`` is ``differences`` (0 elsewhere);
    params equal; so torch-convention FLOPs (matmul only) are equal."""
    assert trace.params == preset.params
    for kind in set(trace.work) | set(preset.work):
        diff = sp.expand(trace.work.get(kind, 0) - preset.work.get(kind, 0))
        assert diff == sp.expand(differences.get(kind, 0)), kind
    assert sp.expand(trace.with_convention("torch").flops
                     - preset.with_convention("torch").flops) == 0
    total = sp.expand(trace.flops - preset.flops)
    assert total == sp.expand(sum(differences.values()))


@pytest.mark.parametrize("d,h,layers,vocab", [(64, 4, 2, 100), (96, 6, 1, 50)],
                         ids=["d64-L2", "d96-L1"])
def test_gpt_equals_trace(d, h, layers, vocab):
    trace = traced(transformers.GPT2Config, transformers.GPT2LMHeadModel, n_embd=d, n_head=h,
                   n_layer=layers, vocab_size=vocab, n_positions=256)
    preset = presets.gpt(d, h, layers, vocab, 256).cost((B, N))
    hidden = 4 * d
    # What the trace of transformers' code counts differently (exact convention):
    # - GELU (gelu_new) runs as 8 aten ops per element: tanh (activation) and 7 pointwise
    #   ops with x^3 one aten.pow; sf.nn's gelu_tanh rate is 9 activation ops (x^3 = 2):
    #   activation -8, elementwise +7 per hidden element;
    # - attention on the meta device runs SDPA's math path: q and k each times
    #   sqrt(1/sqrt(head_dim)) (2 * B N d) and an additive float causal mask (B h N^2),
    #   where sf.nn scales the B h N^2 scores: the N^2 terms cancel, 2 B N d remain;
    # - transformers computes the positions as arange(N) + past length: N adds.
    per_layer = 7 * hidden + 2 * d
    assert_same_except(trace, preset, {
        "activation": -8 * layers * hidden * B * N,
        "elementwise": layers * per_layer * B * N + N,
    })
    # the traced wte and wpe are Embedding leaves too: the same non-embedding count
    assert non_embedding_params(trace) == non_embedding_params(preset) == \
        layers * (12 * d**2 + 13 * d) + 2 * d


@pytest.mark.parametrize("d,h,kv,layers,vocab,hidden", [(64, 4, 2, 2, 100, 96),
                                                        (96, 6, 6, 1, 50, 160)],
                         ids=["d64-gqa-L2", "d96-mha-L1"])
def test_llama_equals_trace(d, h, kv, layers, vocab, hidden):
    trace = traced(transformers.LlamaConfig, transformers.LlamaForCausalLM, hidden_size=d,
                   num_attention_heads=h, num_key_value_heads=kv, num_hidden_layers=layers,
                   vocab_size=vocab, intermediate_size=hidden, max_position_embeddings=256)
    preset = presets.llama(d, h, kv, layers, vocab, hidden).cost((B, N))
    # - LlamaRMSNorm runs as pow, mean, add, rsqrt, mul, mul: the same 4 d + 2 per token
    #   as sf.nn's RMSNorm (norm_stats 3 d + 2, norm_affine d), all traced as elementwise;
    #   there are 2 L + 1 of them;
    # - SDPA's math path: q and k (repeated to all heads) times sqrt(scale): 2 B N d,
    #   its float causal mask add replacing sf.nn's score scaling (B h N^2 each);
    # - the positions arange(N) + past length: N adds.
    # The rotary rotation (7/2 per q/k element) and its table (9 head_dim / 2 per position)
    # agree op for op.
    norms = (2 * layers + 1) * B * N
    assert_same_except(trace, preset, {
        "norm_stats": -norms * (3 * d + 2),
        "norm_affine": -norms * d,
        "elementwise": norms * (4 * d + 2) + layers * 2 * d * B * N + N,
    })


def test_gpt_on_cpu_with_skip_masked_equals_trace():
    # On the CPU, transformers' GPT-2 calls SDPA with is_causal=True and no mask: the CPU
    # kernel's attention is sf.nn's part for part (scale per score, no mask add), and with
    # skip_masked both count the lower triangle. What remains: GELU's ops (as in
    # test_gpt_equals_trace) and the positions arange(N) + past length (N adds).
    d, h, layers, vocab = 32, 2, 1, 20
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=d, n_head=h, n_layer=layers, vocab_size=vocab, n_positions=64))
    trace = sf.trace(model, {"input_ids": ("B", "N")}, skip_masked=True, warn=False)
    preset = presets.gpt(d, h, layers, vocab, 64, skip_masked=True).cost((B, N))
    hidden = 4 * d
    assert_same_except(trace, preset, {
        "activation": -8 * layers * hidden * B * N,
        "elementwise": layers * 7 * hidden * B * N + N,
    })
