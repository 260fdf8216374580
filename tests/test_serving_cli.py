"""The command line reaches DeepSeek-V2 (multi-head latent attention) and sliding-window
presets in decode mode; the numbers are those of the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import symflops as sf
from symflops.symbols import B, symbol

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(dim=64, heads=4, layers=3, vocab=97, kv_rank=16, q_rank=24, rope_dim=4,
             head_dim=8, experts=6, shared_experts=2, top_k=2, expert_hidden=16,
             dense_layers=1, hidden=40)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symflops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_deepseek_v2_decode_from_the_command_line() -> None:
    args = ",".join(f"{k}={v}" for k, v in SMALL.items())
    out = run("trace", "sf:deepseek_v2", "--args", args, "--input", "B 1", "--mode", "decode",
              "--context", "T", "--at", "B=2,T=777", "--format", "json")
    assert out.returncode == 0, out.stderr
    step = sf.presets.deepseek_v2(**SMALL).cost((B, 1), mode="decode", context=symbol("T"))
    got = json.loads(out.stdout)
    assert got["tree"]["flops"]["value"]["int"] == step.subs(B=2, T=777).flops


def test_a_sliding_window_from_the_command_line() -> None:
    llama = "dim=64,heads=4,kv_heads=2,layers=2,vocab=100,hidden=128,sliding_window=W"
    out = run("trace", "sf:llama", "--args", llama, "--input", "B 1", "--mode", "decode",
              "--context", "T", "--at", "B=3,T=5000,W=4096", "--format", "json")
    assert out.returncode == 0, out.stderr
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128,
                         sliding_window=4096)
    step = m.cost((B, 1), mode="decode", context=symbol("T"))
    got = json.loads(out.stdout)
    # past the window: the same as at T = 4095
    assert got["tree"]["flops"]["value"]["int"] == step.subs(B=3, T=5000).flops \
        == step.subs(B=3, T=4095).flops
