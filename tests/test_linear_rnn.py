"""RWKV and RecurrentGemma symbolic in the sequence length: RWKV's WKV loop
recorded as one op, counted per token, row and channel (25 elementwise operations: the
loop's own), equal kind by kind to the loop as transformers runs it, and to
FlopCounterMode on a real forward; the function is put back after the trace."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers.models.rwkv import modeling_rwkv  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.formulas.recurrent import WKV_RATE, wkv_derivation  # noqa: E402
from symflops.symbols import B, N  # noqa: E402
from symflops.tracing.handlers import linear_rnn  # noqa: E402

INPUT = {"input_ids": ("B", "N")}


def _model(device: str = "meta") -> torch.nn.Module:
    cfg = transformers.RwkvConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                  attention_hidden_size=32, intermediate_size=64,
                                  context_length=128)
    torch.manual_seed(0)
    with torch.device(device):
        return transformers.RwkvForCausalLM(cfg).eval().requires_grad_(device == "meta")


def test_the_verified_code_is_the_installed_one() -> None:
    assert linear_rnn.fingerprint(modeling_rwkv.rwkv_linear_attention_cpu) in linear_rnn.VERIFIED


def test_wkv_rate_counts_the_loop_body() -> None:
    # run one step of the loop body on 1-element tensors, counting each aten op
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in ("_to_copy", "copy_", "select", "slice", "zeros_like",
                            "empty_like", "detach", "lift_fresh"):
                Count.ops += 1
            return func(*args, **(kwargs or {}))
    k, v = torch.randn(1, 1, 1), torch.randn(1, 1, 1)
    w, u = -torch.rand(1), torch.rand(1)
    state = [torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1) - 1e38]
    with Count():
        modeling_rwkv.rwkv_linear_attention_cpu(w, u, k, v, state=state)
    # the loop (one step of one channel) and -exp(time_decay) before it (2)
    assert Count.ops == WKV_RATE + 2


def test_symbolic_equal_to_the_loop_and_to_flop_counter(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    original = modeling_rwkv.__dict__["rwkv_linear_attention_cpu"]
    traced = sf.trace(_model(), INPUT, warn=False)
    assert modeling_rwkv.__dict__["rwkv_linear_attention_cpu"] is original
    assert not traced.report.fixed and not traced.report.unknown
    loops = [c for _, c in traced.walk() if c.name == "wkv"]
    assert len(loops) == 2 and all(dict(c.work) == wkv_derivation(B, N, 32).work
                                   for c in loops)
    # the loop as transformers runs it: the length fixed, the same count kind by kind
    monkeypatch.setattr(linear_rnn, "_verified", lambda: False)
    loop = sf.trace(_model(), INPUT, hints={"B": 2, "N": 7}, warn=False)
    assert loop.report.fixed == {"N": 7}
    assert {k: sp.expand(v.subs(B, 2)) for k, v in loop.work.items()} == \
        dict(traced.subs(B=2, N=7).work)
    monkeypatch.undo()
    real = _model("cpu")
    for b, n in ((1, 5), (3, 19)):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(input_ids=torch.randint(0, 100, (b, n)))
        assert traced.with_convention("torch").subs(B=b, N=n).flops == fc.get_total_flops()


def _gemma(device: str = "meta") -> torch.nn.Module:
    cfg = transformers.RecurrentGemmaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, intermediate_size=64, lru_width=32, attention_window_size=16,
        block_types=["recurrent", "attention"], pad_token_id=0)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    with torch.device(device):
        return transformers.RecurrentGemmaForCausalLM(cfg).eval().requires_grad_(
            device == "meta")


def test_rg_lru_scan_symbolic_equal_to_the_loop_and_to_flop_counter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # RecurrentGemma's RG-LRU: h_t = a_t h_{t-1} + x_t, a multiply and an add per step and
    # channel (lru_width 32) in one recorded op
    from symflops.formulas.recurrent import linear_scan_derivation

    model = _gemma()
    traced = sf.trace(model, INPUT, warn=False)
    assert all("_rnn_scan" not in m.__dict__ for m in model.modules())
    assert not traced.report.fixed and not traced.report.unknown
    scans = [c for _, c in traced.walk() if c.name == "linear_scan"]
    assert len(scans) == 1 and dict(scans[0].work) == linear_scan_derivation(B, N, 32).work
    monkeypatch.setattr(linear_rnn, "_scan_verified", lambda module: False)
    # (the attention's window of 16: the formula holds from N = 15, where its mask is cut)
    loop = sf.trace(_gemma(), INPUT, hints={"B": 2, "N": 20}, warn=False)
    assert loop.report.fixed == {"N": 20}
    assert {k: sp.expand(v.subs(B, 2)) for k, v in loop.work.items()} == \
        dict(traced.subs(B=2, N=20).work)
    monkeypatch.undo()
    real = _gemma("cpu")
    for b, n in ((1, 15), (2, 33)):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(input_ids=torch.randint(0, 100, (b, n)))
        assert traced.with_convention("torch").subs(B=b, N=n).flops == fc.get_total_flops()
