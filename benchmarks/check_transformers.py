"""Check symflops' symbolic traces of Hugging Face transformers models, built from small
configs on the meta device, against torch's FlopCounterMode on a real forward (a count
nobody here wrote).

For each architecture: ``sf.trace(model, {"input_ids": ("B", "N")})`` must keep B and N
symbolic (no dim fixed), count every op (none reported as not counted), and under the
torch convention equal FlopCounterMode at two sizes (eager attention: FlopCounterMode
counts no CPU scaled-dot-product attention). Run beside transformers:

    PYTHONPATH=. python benchmarks/check_transformers.py [--only llama,gpt2]

Prints one row per model; exit status 1 if any row fails.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

#: (B, N) where the traced formula is compared with FlopCounterMode
SIZES = ((1, 17), (3, 40))

#: small sizes every config below accepts (names through transformers' attribute maps)
SMALL = dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
             intermediate_size=128, vocab_size=211, max_position_embeddings=128,
             pad_token_id=0)

#: model type -> (class name, extra config arguments)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2": ("GPT2LMHeadModel", dict(n_embd=64, n_head=4, n_layer=2, n_positions=128)),
    "llama": ("LlamaForCausalLM", dict(num_key_value_heads=2)),
    "mistral": ("MistralForCausalLM", dict(num_key_value_heads=2, sliding_window=16)),
    "qwen2": ("Qwen2ForCausalLM", dict(num_key_value_heads=2)),
    "qwen3": ("Qwen3ForCausalLM", dict(num_key_value_heads=2, head_dim=16)),
    "gemma": ("GemmaForCausalLM", dict(num_key_value_heads=1, head_dim=16)),
    "gemma2": ("Gemma2ForCausalLM", dict(num_key_value_heads=2, head_dim=16,
                                         sliding_window=16)),
    "phi": ("PhiForCausalLM", dict()),
    "phi3": ("Phi3ForCausalLM", dict(num_key_value_heads=2)),
    "falcon": ("FalconForCausalLM", dict()),
    "gpt_neox": ("GPTNeoXForCausalLM", dict()),
    "opt": ("OPTForCausalLM", dict(ffn_dim=128, word_embed_proj_dim=64)),
    "bloom": ("BloomForCausalLM", dict(n_layer=2, n_head=4)),
    "mixtral": ("MixtralForCausalLM", dict(num_key_value_heads=2, num_local_experts=4,
                                           num_experts_per_tok=2)),
    "qwen2_moe": ("Qwen2MoeForCausalLM", dict(num_key_value_heads=2, num_experts=4,
                                              num_experts_per_tok=2, moe_intermediate_size=32,
                                              shared_expert_intermediate_size=64)),
    "deepseek_v2": ("DeepseekV2ForCausalLM", dict(
        num_key_value_heads=4, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=4,
        qk_nope_head_dim=8, v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=16, first_k_dense_replace=2)),
    "bert": ("BertModel", dict()),
    "roberta": ("RobertaModel", dict(max_position_embeddings=130)),
    "distilbert": ("DistilBertModel", dict(dim=64, n_heads=4, n_layers=2, hidden_dim=128)),
    "electra": ("ElectraModel", dict(embedding_size=64)),
    "t5": ("T5EncoderModel", dict(d_model=64, num_heads=4, num_layers=2, d_ff=128,
                                  d_kv=16)),
    "mamba": ("MambaForCausalLM", dict(state_size=8, expand=2)),
    "gpt_bigcode": ("GPTBigCodeForCausalLM", dict(n_embd=64, n_head=4, n_layer=2,
                                                  n_positions=128)),
    "gptj": ("GPTJForCausalLM", dict(n_embd=64, n_head=4, n_layer=2, n_positions=128,
                                     rotary_dim=8)),
    "codegen": ("CodeGenForCausalLM", dict(n_embd=64, n_head=4, n_layer=2, n_positions=128,
                                           rotary_dim=8)),
    "starcoder2": ("Starcoder2ForCausalLM", dict(num_key_value_heads=2)),
    "olmo": ("OlmoForCausalLM", dict()),
    "olmo2": ("Olmo2ForCausalLM", dict()),
    "cohere": ("CohereForCausalLM", dict(num_key_value_heads=2)),
    "stablelm": ("StableLmForCausalLM", dict(num_key_value_heads=2)),
    "persimmon": ("PersimmonForCausalLM", dict()),
    "mpt": ("MptForCausalLM", dict(d_model=64, n_heads=4, n_layers=2, max_seq_len=128)),
    "xglm": ("XGLMForCausalLM", dict(d_model=64, attention_heads=4, num_layers=2,
                                     ffn_dim=128)),
    "biogpt": ("BioGptForCausalLM", dict()),
    "granite": ("GraniteForCausalLM", dict(num_key_value_heads=2)),
    "nemotron": ("NemotronForCausalLM", dict(num_key_value_heads=2, head_dim=16)),
    "glm": ("GlmForCausalLM", dict(num_key_value_heads=2, head_dim=16)),
    "mamba2": ("Mamba2ForCausalLM", dict(num_heads=8, head_dim=16, expand=2, state_size=8,
                                         n_groups=1, chunk_size=16)),
    "jamba": ("JambaForCausalLM", dict(num_key_value_heads=2, num_experts=2,
                                       num_experts_per_tok=1, mamba_d_state=8,
                                       attn_layer_period=2, attn_layer_offset=1,
                                       expert_layer_period=2, expert_layer_offset=1,
                                       use_mamba_kernels=False)),
    "recurrent_gemma": ("RecurrentGemmaForCausalLM", dict(num_key_value_heads=1,
                                                          lru_width=64, attention_window_size=16,
                                                          block_types=["recurrent", "attention"])),
    "rwkv": ("RwkvForCausalLM", dict(attention_hidden_size=64, context_length=128)),
    "bart": ("BartModel", dict(d_model=64, encoder_attention_heads=4,
                               decoder_attention_heads=4, encoder_layers=2, decoder_layers=2,
                               encoder_ffn_dim=128, decoder_ffn_dim=128)),
    "t5-encoder-decoder": ("T5Model", dict(d_model=64, num_heads=4, num_layers=2, d_ff=128,
                                           d_kv=16)),
    "whisper": ("WhisperModel", dict(d_model=64, encoder_attention_heads=4,
                                     decoder_attention_heads=4, encoder_layers=2,
                                     decoder_layers=2, encoder_ffn_dim=128,
                                     decoder_ffn_dim=128, num_mel_bins=16,
                                     max_source_positions=60, max_target_positions=128)),
    "vit": ("ViTModel", dict(image_size=32, patch_size=8)),
    # its legacy torch.Tensor(...) parameters stay on the CPU under torch.device("meta")
    "xlnet": ("XLNetModel", dict(d_inner=128, d_head=16)),
}

#: keys of SMALL a config refuses (XLNet has no position limit to set)
NOT_SET: dict[str, set[str]] = {"xlnet": {"max_position_embeddings"}}

#: inputs other than ``input_ids`` (B, N): name -> dims (ints fixed, names symbolic)
INPUTS: dict[str, dict[str, tuple[Any, ...]]] = {
    "bart": {"input_ids": ("B", "N"), "decoder_input_ids": ("B", "N")},
    "t5-encoder-decoder": {"input_ids": ("B", "N"), "decoder_input_ids": ("B", "N")},
    "whisper": {"input_features": ("B", 16, 120), "decoder_input_ids": ("B", "N")},
    "vit": {"pixel_values": ("B", 3, 32, 32)},
}

#: FlopCounterMode cannot see transformers 5's experts (aten._grouped_mm, no formula):
#: these are built with dense MLPs only where the config allows, and otherwise compared
#: without the grouped products (check_moe.py checks those against a hand count)
GROUPED_EXPERTS = {"mixtral", "qwen2_moe", "deepseek_v2"}


def _build(kind: str, device: str) -> Any:
    import torch
    import transformers

    cls_name, extra = MODELS[kind]
    small = {k: v for k, v in SMALL.items() if k not in NOT_SET.get(kind, set())}
    config = transformers.AutoConfig.for_model(kind.split("-")[0], **{**small, **extra})
    config._attn_implementation = "eager"
    if kind in GROUPED_EXPERTS:  # dense layers only: every MLP an nn.Linear stack
        for name in ("first_k_dense_replace", "mlp_only_layers", "decoder_sparse_step"):
            if name == "first_k_dense_replace" and hasattr(config, name):
                config.first_k_dense_replace = config.num_hidden_layers
            if name == "mlp_only_layers" and hasattr(config, name):
                config.mlp_only_layers = list(range(config.num_hidden_layers))
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(transformers, cls_name)(config)
    return model.eval().requires_grad_(device == "meta")


def check(kind: str) -> tuple[list[str], bool]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf
    import symflops.errors

    start = time.perf_counter()
    spec = INPUTS.get(kind, {"input_ids": ("B", "N")})
    try:
        traced = sf.trace(_build(kind, "meta"), spec, warn=False)
    except sf.SymflopsError as e:
        return [kind, "error", e.message[:80], "", ""], False
    except Exception as e:  # the config or transformers itself
        return [kind, "not built", f"{type(e).__name__}: {e}"[:80], "", ""], False
    seconds = time.perf_counter() - start
    report = traced.report
    symbolic = not report.fixed
    unknown = ", ".join(sorted(report.unknown)) or "-"
    torch_flops = traced.with_convention("torch")
    real = _build(kind, "cpu")
    equal = []
    for b, n in SIZES:
        size = {"B": b, "N": n}
        inputs = {name: (torch.randint(0, SMALL["vocab_size"], shape) if name.endswith("ids")
                         else torch.randn(shape))
                  for name, dims in spec.items()
                  for shape in [tuple(size.get(d, d) for d in dims)]}
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(**inputs)
        want = fc.get_total_flops()
        try:
            at = torch_flops.subs(**{k: v for k, v in size.items()
                                     if any(k in dims for dims in spec.values())})
            got = at.flops - sum(c.flops for _, c in at.walk()
                                 if not c.children and c.spec == "aten._grouped_mm")
        except sf.errors.OutsideDomain as e:
            return [kind, "outside its domain", e.message[:60], "", ""], False
        equal.append(got == want)
    ok = symbolic and unknown == "-" and all(equal)
    shown = "symbolic" if symbolic else "fixes " + ", ".join(f"{k}={v}" for k, v in
                                                              report.fixed.items())
    return [kind, shown, unknown, "yes" if all(equal) else "NO", f"{seconds:.2f}"], ok


def main() -> int:
    import transformers

    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated model types")
    args = parser.parse_args()
    kinds = args.only.split(",") if args.only else list(MODELS)
    rows, failed = [], []
    for kind in kinds:
        row, ok = check(kind)
        rows.append(row)
        print(" | ".join(row), flush=True)
        if not ok:
            failed.append(kind)
    print(f"{len(rows) - len(failed)} of {len(rows)} symbolic, fully counted and equal to "
          f"FlopCounterMode at (B, N) = {SIZES}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
