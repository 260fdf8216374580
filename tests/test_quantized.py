"""Quantized weights while serving: each format's bits per parameter against the bytes of
a simulated blockwise quantization of a concrete tensor (the codes packed, the constants
stored), the QLoRA paper's figures, and the KV cache in 8 bits."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.serving import WEIGHT_FORMATS, WeightFormat, get_weight_format, kv_cache
from symflops.symbols import B, symbol

T = symbol("T")


def quantize_nf4(weights: np.ndarray, block: int = 64, double: bool = False,
                 block2: int = 256) -> dict[str, np.ndarray]:
    """Blockwise absmax quantization as QLoRA stores it: 4-bit codes two to a byte, one
    absmax per block of ``block`` (fp32; under double quantization 8-bit codes of the
    absmax minus their mean, with one fp32 absmax per ``block2`` of them and the mean)."""
    flat = weights.reshape(-1, block)
    absmax = np.abs(flat).max(axis=1).astype(np.float32)
    levels = np.linspace(-1, 1, 16)  # any 16 levels: only the storage is counted
    codes = np.abs(flat[..., None] / np.maximum(absmax[:, None, None], 1e-12)
                   - levels).argmin(-1).astype(np.uint8)
    packed = (codes[:, 0::2] << 4 | codes[:, 1::2]).astype(np.uint8)
    out = {"codes": packed}
    if not double:
        out["absmax"] = absmax
        return out
    centred = (absmax - absmax.mean()).reshape(-1, block2)
    absmax2 = np.abs(centred).max(axis=1).astype(np.float32)
    out["absmax_codes"] = np.round(centred / np.maximum(absmax2[:, None], 1e-12) * 127
                                   ).astype(np.int8)
    out["absmax2"] = absmax2
    out["offset"] = np.array([absmax.mean()], dtype=np.float32)
    return out


@pytest.mark.parametrize("numel", [64 * 256, 64 * 256 * 3, 64 * 256 * 16])
@pytest.mark.parametrize("double", [False, True])
def test_nf4_bytes_equal_a_simulated_quantization(numel: int, double: bool) -> None:
    rng = np.random.default_rng(0)
    stored = quantize_nf4(rng.standard_normal(numel).astype(np.float32), double=double)
    counted = sum(a.nbytes for a in stored.values())
    fmt = WEIGHT_FORMATS["nf4-dq" if double else "nf4"]
    # bitsandbytes keeps one more fp32 per tensor under double quantization (the mean the
    # constants are centred on): the paper's bits per parameter leave it out
    assert fmt.bytes(numel) + (4 if double else 0) == counted


def test_qlora_figures() -> None:
    # QLoRA, section 3: 32/64 = 0.5 bits per parameter of fp32 block constants; double
    # quantization 8/64 + 32/(64*256) = 0.127 bits (printed to three decimals)
    assert WEIGHT_FORMATS["nf4"].constant_overhead == sp.Rational(1, 2)
    dq = WEIGHT_FORMATS["nf4-dq"].constant_overhead
    assert dq == sp.Rational(8, 64) + sp.Rational(32, 64 * 256) == sp.Rational(65, 512)
    assert f"{float(dq):.3f}" == "0.127"
    # the paper: "a memory footprint per parameter of 32/64 = 0.5 bits ... to
    # 8/64 + 32/(64 * 256) = 0.127 bits", a reduction of 0.373 bits per parameter
    assert f"{float(WEIGHT_FORMATS['nf4'].constant_overhead - dq):.3f}" == "0.373"


@pytest.mark.parametrize("name,block_bytes,block", [("q4_0", 18, 32), ("q8_0", 34, 32)])
def test_gguf_blocks(name: str, block_bytes: int, block: int) -> None:
    # ggml: block_q4_0 = {fp16 d; uint8 qs[16]} (18 bytes), block_q8_0 = {fp16 d; int8
    # qs[32]} (34 bytes), 32 weights each
    assert WEIGHT_FORMATS[name].bytes(block) == block_bytes
    assert WEIGHT_FORMATS[name].bytes(1000 * block) == 1000 * block_bytes


def test_llama3_8b_weights_in_nf4_dq() -> None:
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256,
                         hidden=14336)
    d = m.cost((B, 1), mode="decode", context=T, weight_format="nf4-dq")
    params = 8_030_261_248
    assert m.cost((B, 1)).params == params
    # by hand: bitsandbytes quantizes the linear layers but lm_head: 32 layers of
    # q, k, v, o (4096 (4096 + 1024 + 1024 + 4096)) and gate, up, down (3 4096 14336) =
    # 6,979,321,856 weights at 4 + 65/512 bits; the embedding and lm_head (2 128256 4096)
    # and the 65 norms (65 4096) stay in bf16
    linear = 32 * (4096 * (4096 + 1024 + 1024 + 4096) + 3 * 4096 * 14336)
    kept = 2 * 128256 * 4096 + 65 * 4096
    assert linear + kept == params and linear == 6_979_321_856
    assert linear * 2113 % 4096 == 0
    assert d.memory.weights == linear * 2113 // 4096 + 2 * kept == 5_702_295_552  # type: ignore
    # the format's constants are the difference to 4 bits flat: 0.127 bits per weight
    assert d.memory.weights - (linear // 2 + 2 * kept) == linear * 65 // 4096  # type: ignore
    bf16 = m.cost((B, 1), mode="decode", context=T, weight_format="bf16").memory
    assert bf16.weights == 2 * params == m.cost(  # type: ignore
        (B, 1), mode="decode", context=T).memory.weights  # type: ignore


def test_kv_cache_in_8_bits_and_generation_keeps_the_format() -> None:
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256,
                         hidden=14336)
    d8 = m.cost((B, 1), mode="decode", context=T, kv_bytes=1, weight_format="q8_0").memory
    d16 = m.cost((B, 1), mode="decode", context=T).memory
    # 2 (key, value) * 32 layers * 8 heads * 128 = 65,536 elements per token, 1 byte each
    assert d8.kv_cache == 65536 * B * T == d16.kv_cache / 2  # type: ignore
    assert kv_cache(m, B, T, 1) == 65536 * B * T
    g = sf.generation(m, B, symbol("N"), symbol("G"), weight_format="q8_0")
    # GGUF: every matrix at 8.5 bits, the 65 norms of 4096 in float32
    norms = 65 * 4096
    assert g.memory.weights == sp.Rational(17, 16) * (8_030_261_248 - norms) + 4 * norms


def test_custom_and_bad_formats() -> None:
    custom = WeightFormat("int3-g128", 3, 128, 16)
    assert custom.bits_per_param == 3 + sp.Rational(16, 128)
    assert get_weight_format(custom) is custom
    a = sf.nn.Linear(256, 256, bias=False)
    mem = a.cost((B, 1, 256), mode="prefill", weight_format=custom).memory
    assert mem.weights == 256 * 256 * sp.Rational(25, 8) / 8  # type: ignore
    with pytest.raises(SymflopsError, match="unknown weight format"):
        a.cost((B, 1, 256), mode="prefill", weight_format="nf5")
    with pytest.raises(SymflopsError, match="not both"):
        a.cost((B, 1, 256), mode="prefill", weight_format="fp16", weight_bytes=1)
    for bad in (dict(bits=0), dict(bits=4, block=0), dict(bits=4, constant_bits=-1),
                dict(bits=True)):
        with pytest.raises(SymflopsError):
            WeightFormat("bad", **bad)  # type: ignore[arg-type]
    with pytest.raises(SymflopsError, match="already registered"):
        sf.serving.register_weight_format(WeightFormat("nf4", 4))


# ------------------------------------------------------------------ against transformers
def _bitsandbytes_bytes(model, bits):
    """Bytes of ``model`` as transformers 5 quantizes it with bitsandbytes: every module
    whose type is ``nn.Linear`` becomes ``Linear4bit`` unless it is among
    ``get_keys_to_not_convert`` (tied, last and output-embedding modules); the rest keeps
    its bf16 (2 bytes)."""
    import torch
    from transformers.quantizers.base import get_keys_to_not_convert

    skip = set(get_keys_to_not_convert(model))
    stored = sum(m.weight.numel() for name, m in model.named_modules()
                 if type(m) is torch.nn.Linear and name not in skip)
    total = sum(p.numel() for p in model.parameters())
    return sp.Integer(stored) * bits / 8 + 2 * (total - stored)


def _gguf_bytes(model, bits):
    """Bytes of ``model`` as ``llama-quantize --pure`` writes it: every tensor of two or
    more dimensions in the format but the MoE router (``ffn_gate_inp``, transformers'
    ``mlp.gate``), the one-dimensional ones in float32."""
    stored = sum(p.numel() for name, p in model.named_parameters()
                 if p.dim() >= 2 and not name.endswith("mlp.gate.weight"))
    total = sum(p.numel() for p in model.parameters())
    return sp.Integer(stored) * bits / 8 + 4 * (total - stored)


@pytest.mark.parametrize("family", ["llama3-8b", "mixtral-small"])
def test_scopes_equal_what_transformers_and_gguf_quantize(family: str) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    if family == "llama3-8b":
        a = dict(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256, hidden=14336)
        config = transformers.LlamaConfig(
            hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
            num_hidden_layers=32, vocab_size=128256, intermediate_size=14336)
        build, preset = transformers.LlamaForCausalLM, sf.presets.llama(**a)
    else:
        config = transformers.MixtralConfig(
            hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
            num_hidden_layers=3, vocab_size=100, intermediate_size=96, num_local_experts=4,
            num_experts_per_tok=2)
        build = transformers.MixtralForCausalLM
        preset = sf.presets.mixtral(64, 4, 2, 3, 100, 96, 4, 2)
    with torch.device("meta"):
        model = build(config)
    for name, reference in (("nf4-dq", _bitsandbytes_bytes), ("nf4", _bitsandbytes_bytes),
                            ("q4_0", _gguf_bytes), ("q8_0", _gguf_bytes)):
        fmt = WEIGHT_FORMATS[name]
        got = preset.cost((B, 1), mode="decode", context=T, weight_format=name).memory
        assert got.weights == reference(model, fmt.bits_per_param), name  # type: ignore


def test_kept_parts_follow_weight_bytes_for_the_linear_scope() -> None:
    # nf4: the lm_head (and norms) at weight_bytes; a format that stores everything, or
    # keeps its own float32 norms, refuses weight_bytes
    m = sf.nn.Sequential({"fc": sf.nn.Linear(64, 64), "lm_head": sf.nn.Linear(64, 10)})
    mem = m.cost((B, 1, 64), mode="prefill", weight_format="nf4", weight_bytes=4).memory
    # fc's matrix at 4.5 bits; its bias (64) and lm_head (640 + 10) in 4 bytes
    assert mem.weights == 64 * 64 * sp.Rational(9, 16) + 4 * (64 + 650)  # type: ignore
    for name in ("q4_0", "fp32"):
        with pytest.raises(SymflopsError, match="not both"):
            m.cost((B, 1, 64), mode="prefill", weight_format=name, weight_bytes=4)
    with pytest.raises(SymflopsError, match="scope"):
        WeightFormat("bad", 4, scope="rows")


def test_a_decode_step_reads_each_weight_in_its_own_format() -> None:
    # Llama-3-8B, nf4-dq: the step reads every weight once (in its scope's bytes: the
    # linear layers in nf4-dq, lm_head and the norms in bf16) except the embedding table,
    # of which it gathers the B rows of its tokens (4096 bf16 values each)
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256,
                         hidden=14336)
    d = m.cost((B, 1), mode="decode", context=T, weight_format="nf4-dq")
    table = 2 * 128256 * 4096
    assert d.bytes_by_role["weights"] == d.memory.weights - table + 2 * 4096 * B
    # q4_0 stores the embedding too: its gathered rows at 4.5 bits
    q4 = m.cost((B, 1), mode="decode", context=T, weight_format="q4_0")
    read = q4.bytes_by_role["weights"]
    assert read == q4.memory.weights - 128256 * 4096 * sp.Rational(9, 16) \
        + 4096 * B * sp.Rational(9, 16)
