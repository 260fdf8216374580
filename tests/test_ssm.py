"""Mamba (transformers' ``MambaModel`` from a small config): symbolic in the sequence length
(the scan's Python loop fixed it), equal kind by kind to transformers' own code run on real
tensors and to FlopCounterMode at two lengths; the selective scan's formula against a
brute-force scan that reproduces transformers' values, and against the paper's 9 B L D N."""

from __future__ import annotations

import copy
import itertools

import pytest
import sympy as sp
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers.models.mamba import modeling_mamba

import symflops as sf
from symflops.errors import OutsideDomain
from symflops.formulas.ssm import scan_total, selective_scan_derivation
from symflops.symbols import B, N
from symflops.tracing.handlers import ssm

try:
    from tests.test_model_safety import assert_same, deep_snapshot
except ImportError:  # run from tests/
    from test_model_safety import assert_same, deep_snapshot  # type: ignore[no-redef]

transformers.logging.set_verbosity_error()


def config(**kw: object) -> transformers.MambaConfig:
    sizes = {"vocab_size": 100, "hidden_size": 32, "state_size": 8, "num_hidden_layers": 2,
             "expand": 2, "conv_kernel": 4, "time_step_rank": 4}
    return transformers.MambaConfig(**{**sizes, **kw})


INPUT = {"input_ids": ("B", "N")}


def real(model: torch.nn.Module, b: int, n: int) -> sf.Cost:
    """transformers' own code on real tensors at concrete sizes (the loop runs n times)."""
    return sf.trace(model, {"input_ids": ((b, n), torch.long)}, warn=False, real=True)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_mamba_is_symbolic_and_equals_its_own_code(use_cache: bool) -> None:
    with torch.device("meta"):
        model = transformers.MambaModel(config(use_cache=use_cache))
    traced = sf.trace(model, INPUT, warn=False)
    assert not traced.report.fixed and not traced.report.unknown
    assert traced.flops.free_symbols == {B, N}
    assert traced.params == sum(p.numel() for p in model.parameters())
    concrete = transformers.MambaModel(config(use_cache=use_cache)).eval()
    for b, n in ((2, 5), (1, 13), (3, 40)):  # far from the trace's hint (N = 128)
        want = real(concrete, b, n)
        got = traced.subs(B=b, N=n)
        for kind in set(want.work) | set(got.work):
            assert got.work.get(kind, 0) == want.work.get(kind, 0), (b, n, kind)
    # the loop, one op per mixer: the recurrence of 2 * 32 = 64 channels, state 8
    scan = traced["layers"]["0"]["mixer"]["selective_scan"]
    assert dict(scan.work) == selective_scan_derivation(B, 64, N, 8).work


def test_flop_counter_mode_at_two_lengths() -> None:
    torch.manual_seed(0)
    # (FlopCounterMode's module tracker fails on this model under no_grad while its
    # parameters require grad: "Expected gradient function to be set")
    model = transformers.MambaModel(config()).eval().requires_grad_(False)
    traced = sf.trace(model, INPUT, convention="torch", warn=False)
    for b, n in ((1, 6), (2, 17)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(input_ids=torch.randint(0, 100, (b, n)))
        # FlopCounterMode: in_proj, x_proj, dt_proj, out_proj, the causal conv (N + 3
        # outputs, sliced to N) and the loop's bmm (2 d_state per channel and step)
        assert traced.subs(B=b, N=n).flops == counter.get_total_flops()


def test_hand_count_of_one_mixer() -> None:
    # dim 32, d_inner 64, d_state 8, dt_rank 4, conv 4, macs convention, per token:
    # in_proj 32*128, x_proj 64*20, dt_proj 4*64, out_proj 64*32, the depthwise conv 64*4
    # per output (N + 3 of them: padding 3, sliced to N), the scan's output 64*8
    with torch.device("meta"):
        model = transformers.MambaModel(config(num_hidden_layers=1))
    mixer = sf.trace(model, INPUT, convention="macs", warn=False)["layers"]["0"]["mixer"]
    per_token = 32 * 128 + 64 * 20 + 4 * 64 + 64 * 32 + 64 * 8
    assert sp.expand(mixer.flops - (B * N * per_token + B * (N + 3) * 64 * 4)) == 0


def brute_scan(x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
               c: torch.Tensor) -> tuple[torch.Tensor, int]:
    """y[b, d, t] = C_t . h_t, h_t = exp(A dt) h_{t-1} + (dt B_t) x_t, counting operations:
    per (b, d, t, n) 4 to discretize and 2 to update, per (b, d, t) N multiplies and N - 1
    adds for the output."""
    batch, channels, steps = x.shape
    state = a.shape[1]
    y = torch.zeros(batch, channels, steps, dtype=torch.float64)
    ops = 0
    for i, d in itertools.product(range(batch), range(channels)):
        h = [0.0] * state
        for t in range(steps):
            out = 0.0
            for n in range(state):
                a_bar = torch.exp(a[d, n] * dt[i, d, t]).item()  # multiply, exp
                bx = (dt[i, d, t] * b[i, t, n]).item() * x[i, d, t].item()  # 2 multiplies
                h[n] = a_bar * h[n] + bx  # a multiply and an add
                ops += 6
                out = out + c[i, t, n].item() * h[n] if n else c[i, t, n].item() * h[n]
            ops += 2 * state - 1
            y[i, d, t] = out
    return y, ops


@pytest.mark.parametrize("sizes", [(1, 2, 3, 4), (2, 3, 5, 2)], ids=str)
def test_scan_formula_by_brute_force(sizes: tuple[int, int, int, int]) -> None:
    batch, channels, steps, state = sizes
    gen = torch.Generator().manual_seed(sum(sizes))
    x = torch.randn(batch, channels, steps, generator=gen, dtype=torch.float64)
    dt = torch.rand(batch, channels, steps, generator=gen, dtype=torch.float64)
    a = -torch.rand(channels, state, generator=gen, dtype=torch.float64)
    b = torch.randn(batch, steps, state, generator=gen, dtype=torch.float64)
    c = torch.randn(batch, steps, state, generator=gen, dtype=torch.float64)
    y, ops = brute_scan(x, dt, a, b, c)
    # transformers' scan takes B and C as (batch, N, T)
    scan = modeling_mamba.mamba_selective_scan
    want = scan(x, dt, a, b.transpose(1, 2), c.transpose(1, 2))
    assert torch.allclose(y, want.to(torch.float64), atol=1e-9)
    assert ops == scan_total(batch, channels, steps, state)
    # the paper (and its reference code) rounds the scan to 9 B L D N: per (b, l, d) it
    # counts N + 1 more (one add per element for the output's N - 1)
    assert 9 * batch * steps * channels * state - ops == batch * steps * channels * (state + 1)
    # the part the trace records as one op (the loop): update 2N, output 2N - 1
    loop = selective_scan_derivation(batch, channels, steps, state).work
    assert sum(loop.values()) == batch * channels * steps * (4 * state - 1)


def test_model_untouched_and_fallbacks() -> None:
    model = transformers.MambaModel(config()).eval()
    before = deep_snapshot(model)
    sf.trace(model, INPUT, warn=False)
    assert_same(before, deep_snapshot(model))
    assert all("forward" not in m.__dict__ for m in model.modules())
    # an attention mask: the mixer runs as transformers wrote it, and its loop fixes N
    masked = sf.trace(model, {"input_ids": ("B", "N"), "attention_mask": ("B", "N")},
                      hints={"B": 2, "N": 6}, warn=False)
    assert masked.report.fixed.get("N") == 6
    # mambapy's scan is not the code the stand-in reproduces
    other = copy.deepcopy(model)
    for m in other.modules():
        if type(m).__name__ == "MambaMixer":
            m.use_mambapy = True
            assert not ssm.stands_in(m)


def _one() -> object:
    def f(x: int) -> int:
        """One."""
        return x + 1
    return f


def _two() -> object:
    def f(x: int) -> int:
        """Two, longer."""
        # a comment
        return x + 1
    return f


def _three() -> object:
    def f(x: int) -> int:
        return x - 1
    return f


def test_fingerprint_sees_code_not_docstrings() -> None:
    assert ssm.fingerprint(_one()) == ssm.fingerprint(_two()) != ssm.fingerprint(_three())
    # the verified fingerprints are those of the installed transformers
    mixer = modeling_mamba.MambaMixer
    prints = (ssm.fingerprint(mixer.forward),
              ssm.fingerprint(modeling_mamba.mamba_scan_forward),
              ssm.fingerprint(modeling_mamba.mamba_selective_scan))
    assert prints in ssm.VERIFIED, f"transformers' Mamba code changed: {prints}"


def _fcm(model: torch.nn.Module, *args: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(*args)
    return int(counter.get_total_flops())


def test_mamba2_is_symbolic_in_the_length_at_every_size() -> None:
    # transformers' Mamba-2 reference forward pads to a multiple of chunk_size (skipping a
    # pad of 0): the default example length sits on the lattice; the formula holds at every
    # N >= 4 and equals FlopCounterMode on meta on and off it, far from the example sizes
    cfg = transformers.Mamba2Config(hidden_size=32, num_hidden_layers=1, vocab_size=64,
                                    state_size=8, num_heads=4, head_dim=16, n_groups=1,
                                    chunk_size=16, expand=2)
    with torch.device("meta"):
        model = transformers.Mamba2Model(cfg).eval().requires_grad_(False)
    cost = sf.trace(model, (("B", "N"), torch.long), warn=False, convention="torch")
    assert not cost.domain.lattices() and cost.flops.free_symbols == {B, N}
    with pytest.raises(OutsideDomain):
        cost.subs(B=1, N=3)
    for b, n in ((1, 16), (2, 37), (1, 160), (3, 1000)):
        ids = torch.zeros(b, n, dtype=torch.long, device="meta")
        assert cost.subs(B=b, N=n).flops == _fcm(model, ids)


def _jamba(device: str = "meta") -> torch.nn.Module:
    # attention at layer 1, Mamba at layer 0, experts at layer 1 (one expert: dense)
    cfg = transformers.JambaConfig(
        hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
        intermediate_size=64, vocab_size=100, max_position_embeddings=128, num_experts=1,
        num_experts_per_tok=1, mamba_d_state=8, attn_layer_period=2, attn_layer_offset=1,
        expert_layer_period=2, expert_layer_offset=1, pad_token_id=0,
        attn_implementation="eager")
    torch.manual_seed(0)
    with torch.device(device):
        return transformers.JambaForCausalLM(cfg).eval().requires_grad_(device == "meta")


def test_jamba_shares_mambas_scan_and_traces_symbolic(monkeypatch: pytest.MonkeyPatch) -> None:
    # Jamba's modeling module carries its own copy of mamba_scan_forward, with the verified
    # code: the trace replaces that function (not the mixer) and puts it back
    from transformers.models.jamba import modeling_jamba

    original = modeling_jamba.__dict__["mamba_scan_forward"]
    model = _jamba()
    traced = sf.trace(model, INPUT, warn=False)
    assert modeling_jamba.__dict__["mamba_scan_forward"] is original
    assert not traced.report.fixed and not traced.report.unknown
    scan = [c for _, c in traced.walk() if c.name == "selective_scan"]
    # d_inner 2 * 32 = 64 channels, state 8: the same recurrence count as Mamba's
    assert len(scan) == 1 and dict(scan[0].work) == selective_scan_derivation(B, 64, N, 8).work
    # the loop as transformers runs it (the stand-in off: the length fixed at 9) counts the
    # same, kind by kind
    monkeypatch.setattr(ssm, "_verified_scan_module", lambda name: False)
    loop = sf.trace(model, {"input_ids": ("B", "N")}, hints={"B": 2, "N": 9}, warn=False)
    assert loop.report.fixed == {"N": 9}
    at = traced.subs(B=2, N=9)
    assert {k: v.subs(B, 2) for k, v in loop.work.items()} == dict(at.work)
    monkeypatch.undo()
    # FlopCounterMode on a real forward (experts excepted: one expert as _grouped_mm)
    real = _jamba("cpu")
    torch_flops = traced.with_convention("torch")
    for b, n in ((1, 6), (3, 21)):
        at = torch_flops.subs(B=b, N=n)
        grouped = sum(c.flops for _, c in at.walk() if c.spec == "aten._grouped_mm")
        with torch.no_grad():
            assert at.flops - grouped == _fcm(real, torch.randint(0, 100, (b, n)))
