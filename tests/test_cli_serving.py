"""The command line reaches the presets (``sf:NAME --args ...``) and their serving modes
(``--mode prefill|decode --context T``); the numbers are those of the Python API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import symflops as sf
from symflops.symbols import B, symbol

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
LLAMA = "dim=64,heads=4,kv_heads=2,layers=2,vocab=100,hidden=128"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symflops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_a_decode_step_of_a_preset_from_the_command_line() -> None:
    out = run("trace", "sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "decode",
              "--context", "T", "--at", "B=3,T=1000", "--format", "json")
    assert out.returncode == 0, out.stderr
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    step = m.cost((B, 1), mode="decode", context=symbol("T"))
    got = json.loads(out.stdout)
    assert sf.symbols.symbol("T") in step.flops.free_symbols
    assert got["tree"]["flops"]["value"]["int"] == step.subs(B=3, T=1000).flops


@pytest.mark.parametrize("argv,says", [
    (["sf:llama", "--input", "B N"], "--args dim=..."),
    (["sf:llama", "--args", LLAMA, "--input", "B 1", "--context", "T"], "--mode decode"),
    (["sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "decode"], "--context T"),
    (["sf:llama", "--args", "dim=64,dim=32", "--input", "B N"], "given twice"),
    (["sf:llama", "--args", "dim=__import__('os')", "--input", "B N"], "cannot parse"),
    (["examples/resnet.py:resnet50", "--input", "B 3 H W", "--mode", "prefill"],
     "is for decoders"),
    (["sf:llama", "--args", LLAMA, "--input", "B 1", "--weight-format", "nf4"],
     "--mode prefill or --mode decode"),
    (["sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "prefill", "--weight-format",
      "nf5"], "unknown weight format"),
    (["sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "prefill", "--kv-bytes",
      "0.5"], "--kv-bytes is a whole number"),
    (["sf:llama", "--args", LLAMA, "--input", "B N", "--zero", "3"], "add --train"),
    (["sf:llama", "--args", LLAMA, "--input", "B N", "--train", "--zero", "5"],
     "zero must be a ZeRO stage"),
    (["sf:llama", "--args", LLAMA, "--input", "B N", "--train", "--mode", "prefill"],
     "two passes"),
    (["examples/resnet.py:resnet50", "--input", "B 3 H W", "--train", "--zero", "1"],
     "sf.nn networks and presets"),
], ids=["no-args", "context-without-decode", "decode-without-context", "twice", "not-python",
        "torch-model", "format-without-mode", "unknown-format", "half-a-byte",
        "zero-without-train", "zero-5", "train-and-prefill", "zero-on-a-torch-model"])
def test_serving_flags_refuse_what_they_cannot_mean(argv: list[str], says: str) -> None:
    out = run("trace", *argv)
    assert out.returncode == 2 and says in out.stderr and len(out.stderr.splitlines()) == 1, \
        out.stderr


def test_scale_on_a_device_gives_the_roofline_and_the_compute_bound_batch() -> None:
    out = run("scale", "sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "decode",
              "--context", "T", "--var", "T", "--range", "16:48:32", "--at", "B=8",
              "--convention", "torch", "--device", "H100-SXM5-80GB", "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["device"]
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    t = symbol("T")
    step = m.cost((B, 1), mode="decode", context=t, convention="torch")
    assert got["seconds"] == [str(step.roofline("H100-SXM5-80GB").subs({B: 8, t: v}))
                              for v in (16, 48)]
    assert got["compute_bound_from"] == [str(step.compute_bound_at("H100-SXM5-80GB").subs(
        t, v)) for v in (16, 48)]
    macs = run("scale", "sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "decode",
               "--context", "T", "--var", "T", "--range", "16:48:32", "--convention", "macs",
               "--device", "H100-SXM5-80GB")
    assert macs.returncode != 0 and "MACs" in macs.stderr


def test_serving_memory_rows_and_a_quantized_format() -> None:
    out = run("trace", "sf:llama", "--args", LLAMA, "--input", "B 1", "--mode", "decode",
              "--context", "T", "--weight-format", "nf4-dq", "--kv-bytes", "1", "--at",
              "B=2,T=100")
    assert out.returncode == 0, out.stderr
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    step = m.cost((B, 1), mode="decode", context=symbol("T"), weight_format="nf4-dq",
                  kv_bytes=1).subs(B=2, T=100)
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.stdout.splitlines()
                if "  " in line)
    def number(text: str) -> int:
        return int(text.split(" (")[0].replace(",", ""))
    assert number(rows["weights (bytes)"]) == step.memory.weights
    assert number(rows["KV cache read (bytes)"]) == step.memory.kv_cache == 2 * 2 * 2 * 16 * 200
    assert number(rows["KV cache written (bytes)"]) == step.memory.kv_written
    assert number(rows["bytes moved"]) == step.bytes


def test_a_traced_transformers_decoder_decodes_from_the_command_line(tmp_path: Path) -> None:
    # the same Llama as the preset, traced with a DynamicCache of T tokens (sf.trace's
    # past=): under the torch convention its step equals the preset's
    pytest.importorskip("transformers")
    script = tmp_path / "small_llama.py"
    script.write_text(
        "import torch, transformers\n"
        "def small():\n"
        "    cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4,\n"
        "        num_key_value_heads=2, num_hidden_layers=2, intermediate_size=128,\n"
        "        vocab_size=100, max_position_embeddings=512, attn_implementation='eager')\n"
        "    with torch.device('meta'):\n"
        "        return transformers.LlamaForCausalLM(cfg)\n")
    out = run("trace", f"{script}:small", "--input", "input_ids=B 1", "--mode", "decode",
              "--context", "T", "--convention", "torch", "--at", "B=3,T=300", "--format",
              "json")
    assert out.returncode == 0, out.stderr
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    step = m.cost((B, 1), mode="decode", context=symbol("T"), convention="torch")
    assert json.loads(out.stdout)["tree"]["flops"]["value"]["int"] == \
        step.subs(B=3, T=300).flops


def test_training_memory_per_device_under_zero_3() -> None:
    # ZeRO-3 over D ranks: parameters (bf16), gradients (bf16) and Adam's 12 bytes per
    # parameter all divided by D; the activations are each device's own
    out = run("trace", "sf:llama", "--args", LLAMA, "--input", "B N", "--train", "--zero", "3",
              "--data-parallel", "D", "--at", "B=2,N=64,D=8")
    assert out.returncode == 0, out.stderr
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    mem = m.cost((B, symbol("N")), mode="train", zero=3, data_parallel="D").subs(
        B=2, N=64, D=8).memory
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.stdout.splitlines()
                if "(per device)" in line)
    params = 2 * m.cost((B, 1)).params
    assert {k: int(v.split(" (")[0].replace(",", "")) for k, v in rows.items()} == {
        "parameters (per device)": params // 8, "gradients (per device)": params // 8,
        "optimizer states (per device)": 6 * params // 8,
        "activations (per device)": mem.activations,
        "training memory (per device)": mem.total}
