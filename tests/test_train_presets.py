"""mode="train" for the presets (sf.presets.gpt, llama, vit): the Megatron-LM FLOP
identities of Narayanan et al. 2021 and Korthikanti et al. 2022 (docs/papers.md) with
and without per-layer recomputation, and the preset equal to sf.trace(..., mode="train")
of the transformers model, kind by kind, every difference derived."""

from __future__ import annotations

import pytest
import sympy as sp
from example_models import load_example

import symflops as sf
from symflops import presets
from symflops.symbols import B, L, N, V, dim, heads

# s = N, l = L, h = dim (the papers' names)
s, l, h = N, L, dim


def torch_flops(cost):
    return cost.with_convention("torch").flops


# Narayanan et al. 2021 (eq. 3, "Efficient Large-Scale Language Model Training on GPU
# Clusters Using Megatron-LM"): with full activation recomputation a GPT iteration is
# 96 B s l h^2 (1 + s/6h + V/16lh) FLOPs: per layer forward 24 B s h^2 (the four d x d
# matmuls' 8 B s h^2 and the MLP's 16 B s h^2) + 4 B s^2 h (Q K^T and A V), run 4 times
# (forward, recompute, 2x backward); the LM head 2 B s h V run 3 times (not recomputed).
# Without recomputation (Korthikanti et al. 2022, Sec. 5): 3 times, 72 B s l h^2 (1 +
# s/6h + V/12lh). The torch convention counts the matmuls only, as the papers do.
MEGATRON = {
    "full": 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h)),
    "none": 72 * B * s * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h)),
}


@pytest.mark.parametrize("recompute", list(MEGATRON))
def test_gpt_megatron_flops_identity(recompute):
    cost = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train", recompute=recompute)
    assert sp.expand(torch_flops(cost) - MEGATRON[recompute]) == 0


@pytest.mark.parametrize("recompute", list(MEGATRON))
def test_gpt_megatron_flops_gpt2_small(recompute):
    # GPT-2 small (h 768, l 12, V 50257) at s 1024, B 8: the identity at numbers
    sizes = {dim: 768, heads: 12, L: 12, V: 50257, N: 1024, B: 8}
    cost = presets.gpt(768, 12, 12, 50257, 1024).cost((8, 1024), mode="train",
                                                       recompute=recompute)
    assert torch_flops(cost) == MEGATRON[recompute].subs(sizes)


def test_full_recompute_checkpoints_each_block():
    # per-layer checkpointing: each of the L blocks keeps only its input, B N dim values
    # of 2 bytes (Korthikanti et al. 2022 Sec. 5: 2 s b h per layer), and the embedding
    # and the head are not recomputed: the head's forward matmul appears once per pass
    full = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train", recompute="full")
    none = presets.gpt(dim, heads, L, V, N).cost((B, N), mode="train")
    assert [c.name for c in full["h"]["block"].children][-1] == "recompute"
    assert "recompute" not in [c.name for c in full.children]
    block_saved = [x for x in full.memory.saved if x.where.startswith("h.")]
    assert sp.expand(sum(x.numel for x in block_saved) - L * B * N * dim) == 0
    # outside the blocks the two policies save the same
    assert {x for x in full.memory.saved if not x.where.startswith("h.")} == \
        {x for x in none.memory.saved if not x.where.startswith("h.")}


# --------------------------------------------------------------------- preset == trace
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


def traced_train(config_cls, model_cls, **config):
    cfg = config_cls(**config)
    cfg._attn_implementation = "eager"
    with torch.device("meta"):
        model = model_cls(cfg)
    return sf.trace(model, {"input_ids": ("B", "N")}, mode="train", warn=False)


def assert_same_except(trace, preset, differences):
    """Kind by kind, ``trace.work - preset.work`` is ``differences`` (0 elsewhere); params
    equal, and so torch-convention FLOPs (matmuls only) whenever no matmul kind differs."""
    assert trace.params == preset.params
    for kind in set(trace.work) | set(preset.work):
        diff = sp.expand(trace.work.get(kind, 0) - preset.work.get(kind, 0))
        assert diff == sp.expand(differences.get(kind, 0)), kind
    assert sp.expand(torch_flops(trace) - torch_flops(preset)) == 0


@pytest.mark.parametrize("d,h,layers,vocab", [(64, 4, 2, 100), (96, 6, 1, 50)],
                         ids=["d64-L2", "d96-L1"])
def test_gpt_train_equals_trace(d, h, layers, vocab):
    # dropout 0 (the preset has none; torch returns the input itself for p = 0)
    trace = traced_train(transformers.GPT2Config, transformers.GPT2LMHeadModel, n_embd=d,
                         n_head=h, n_layer=layers, vocab_size=vocab, n_positions=256,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    preset = presets.gpt(d, h, layers, vocab, 256).cost((B, N), mode="train")
    hidden = 4 * d
    # What the trace of transformers' code counts differently (exact convention):
    # - gelu_new forward runs as 7 pointwise aten ops and a tanh (activation 1), where
    #   sf.nn's gelu_tanh is 9 activation ops; its autograd backward is 13 pointwise ops
    #   per element (tanh_backward 3, ten muls, adds and pow's 1 each) where sf.nn's
    #   gelu_tanh gradient is 18: activation -8, elementwise 7 + 13 - 18 = +2 per hidden
    #   element;
    # - eager attention adds a float causal mask to the B h N^2 scores (forward only: the
    #   add's gradient is the output gradient) and builds it with one compare per N^2;
    # - positions and cache positions: arange(N) + past length and two more N adds.
    # Everything else (the broadcast position gradient (B-1) N d, the tied head's V d
    # accumulation, embedding_dense_backward, every mm) agrees op for op.
    assert_same_except(trace, preset, {
        "activation": -8 * layers * hidden * B * N,
        "elementwise": layers * (2 * hidden * B * N + h * B * N**2) + N**2 + 3 * N,
    })
    # Activation memory (2 bytes a float, 8 an index), the preset under the "torch"
    # accounting (the LayerNorms' mean and rstd counted, as torch keeps them): the same
    # tensors, except gelu_new's decomposition, whose muls, pow and tanh keep 4 hidden-wide
    # tensors where sf.nn's GELU keeps its input: 3 hidden floats per token per layer.
    kept = presets.gpt(d, h, layers, vocab, 256).cost((B, N), mode="train",
                                                      accounting="torch").memory
    assert sp.expand(trace.memory.activations - kept.activations
                     - layers * 3 * hidden * B * N * 2) == 0


@pytest.mark.parametrize("d,h,kv,layers,vocab,hidden", [(64, 4, 2, 2, 100, 96),
                                                        (96, 6, 6, 1, 50, 160)],
                         ids=["d64-gqa-L2", "d96-mha-L1"])
def test_llama_train_equals_trace(d, h, kv, layers, vocab, hidden):
    trace = traced_train(transformers.LlamaConfig, transformers.LlamaForCausalLM,
                         hidden_size=d, num_attention_heads=h, num_key_value_heads=kv,
                         num_hidden_layers=layers, vocab_size=vocab,
                         intermediate_size=hidden, max_position_embeddings=256)
    preset = presets.llama(d, h, kv, layers, vocab, hidden).cost((B, N), mode="train")
    norms = (2 * layers + 1) * B * N
    # - LlamaRMSNorm runs as pow, mean, add, rsqrt, mul, mul (4 d + 2 per token, traced as
    #   elementwise, where sf.nn counts norm_stats 3 d + 2 and norm_affine d), and its
    #   autograd backward of those six ops runs, per token, eleven d-wide muls, adds, div
    #   and pow gradients, the d - 1 adds of mean's gradient sum and 3 scalar ops for
    #   rsqrt and pow (12 d + 2), where sf.nn's fused rms_norm gradient is 11 d - 1: d + 3
    #   more;
    # - q, k and v are three projections: x's three gradients are added (2 d per token,
    #   elementwise), where the fused qkv's grad_input mm sums them in its inner
    #   products (2 d matmul_add more per token);
    # - eager attention's float causal mask (h B N^2 adds; N^2 compares), and positions
    #   (3 N adds) as in test_gpt_train_equals_trace.
    # The rotary rotation and its 9/2-per-element gradient, SiLU, the gate multiply and
    # its two gradients, and the K/V heads' repeat gradients agree op for op.
    assert_same_except(trace, preset, {
        "norm_stats": -norms * (3 * d + 2),
        "norm_affine": -norms * d,
        "matmul_add": -layers * 2 * d * B * N,
        "elementwise": norms * (4 * d + 2 + d + 3) + layers * (2 * d * B * N + h * B * N**2)
        + N**2 + 3 * N,
    })
    # Activation memory (2 bytes a float), the preset under the "torch" accounting (rstd
    # counted): the same tensors, except (a) LlamaRMSNorm's separate weight multiply keeps
    # the normalized input, d per token, where the fused rms_norm keeps input and rstd
    # only; (b) transformers computes cos and sin (N x head_dim each) once for all layers,
    # where sf.nn counts them in each layer's attention: (L - 1) 2 N head_dim more.
    kept = presets.llama(d, h, kv, layers, vocab, hidden).cost(
        (B, N), mode="train", accounting="torch").memory
    assert sp.expand(trace.memory.activations - kept.activations
                     - 2 * (norms * d - (layers - 1) * 2 * N * (d // h))) == 0


_load_example = load_example


@pytest.mark.parametrize("size,patch,layers,h,d,mlp,classes",
                         [(32, 8, 2, 4, 64, 128, 10), (48, 16, 1, 2, 32, 96, 7)],
                         ids=["vit-32", "vit-48"])
def test_vit_train_equals_trace_of_mirror(size, patch, layers, h, d, mlp, classes):
    import warnings

    model = _load_example("vit").VisionTransformer(size, patch, layers, h, d, mlp, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = sf.trace(model, f"B 3 {size} {size}", mode="train")
    preset = presets.vit(size, patch, layers, h, d, mlp, classes).cost((B, 3, size, size),
                                                                         mode="train")
    n = (size // patch) ** 2 + 1  # tokens, the class token included
    # What torch runs differently in training (exact convention), per layer:
    # - nn.MultiheadAttention's slow path (taken in training) projects q, k, v as mm + add:
    #   the 3 n d bias adds count as elementwise, not bias;
    # - it selects q, k and v from the packed projection: their three gradients, each
    #   written into a zero tensor of the projection's size, are added: 2 x 3 n d;
    # - SDPA's fused backward counts the softmax and scale gradients as 4 h n^2 where
    #   sf.nn counts softmax's h n (4 n - 1) and the scale's h n^2: h n - h n^2;
    # and once: torchvision's position embedding is a parameter added to the tokens, not
    # a lookup: no embedding_dense_backward (n d adds sf.nn's PositionEmbedding counts).
    assert_same_except(trace, preset, {
        "bias": -layers * 3 * n * d * B,
        "elementwise": layers * (3 * n * d + 6 * n * d + h * n - h * n**2) * B - n * d,
    })
    # Activation memory (2 bytes a float, 8 an index), the preset under the "torch"
    # accounting: the same tensors (q, k and v as views of the packed projection) except
    # (a) SDPA's fused kernel keeps the logsumexp (h n per image) instead of the h n^2
    # probabilities; (b) the head keeps x[:, 0], a view whose storage is the whole
    # normalized output, (n - 1) d more; (c) no position ids (n int64) for a parameter.
    kept = presets.vit(size, patch, layers, h, d, mlp, classes).cost(
        (B, 3, size, size), mode="train", accounting="torch").memory
    assert sp.expand(trace.memory.activations - kept.activations
                     - (2 * (layers * (h * n - h * n**2) + (n - 1) * d) * B - 8 * n)) == 0
