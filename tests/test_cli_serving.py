"""The command line reaches the presets (``sf:NAME --args ...``) and their serving modes
(``--mode prefill|decode --context T``); the numbers are those of the Python API."""

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
     "derived for sf.nn networks"),
], ids=["no-args", "context-without-decode", "decode-without-context", "twice", "not-python",
        "torch-model"])
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
