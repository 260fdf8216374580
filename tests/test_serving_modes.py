"""Prefill and decode steps (``mode="prefill" | "decode"``, ``context=T``) and a whole
generation summed in closed form, checked against torch running a real KV cache under
FlopCounterMode and against a loop over the steps."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import SymflopsError  # noqa: E402
from symflops.serving import generation  # noqa: E402
from symflops.symbols import B, N, symbol  # noqa: E402

T, G = symbol("T"), symbol("G")


def _decode_step_flops(dim: int, heads: int, kv_heads: int, batch: int, cached: int,
                       new: int) -> int:
    """One step of grouped-query attention with a real KV cache of ``cached`` tokens, as
    an inference loop runs it: project the new tokens, append their keys and values to the
    cache, attend over all of it, project out. FlopCounterMode counts the matmuls."""
    hd = dim // heads
    gen = torch.Generator().manual_seed(0)
    wq, wk, wv, wo = (torch.randn(dim, o, generator=gen)
                      for o in (dim, kv_heads * hd, kv_heads * hd, dim))
    cache_k = torch.randn(batch, kv_heads, cached, hd, generator=gen)
    cache_v = torch.randn(batch, kv_heads, cached, hd, generator=gen)
    x = torch.randn(batch, new, dim, generator=gen)
    with FlopCounterMode(display=False) as fc:
        q = (x @ wq).view(batch, new, heads, hd).transpose(1, 2)
        k = torch.cat([cache_k, (x @ wk).view(batch, new, kv_heads, hd).transpose(1, 2)], 2)
        v = torch.cat([cache_v, (x @ wv).view(batch, new, kv_heads, hd).transpose(1, 2)], 2)
        k = k.repeat_interleave(heads // kv_heads, 1)
        v = v.repeat_interleave(heads // kv_heads, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5, -1)
        ((a @ v).transpose(1, 2).reshape(batch, new, dim)) @ wo
    return int(fc.get_total_flops())


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (4, 1)], ids=["MHA", "GQA", "MQA"])
def test_a_decode_step_equals_torch_with_a_real_cache(heads: int, kv_heads: int) -> None:
    # hand (torch convention, 2 per MAC): projections 2 B n dim (dim + 2 kv dim/h + dim),
    # scores and context 2 B h n (T + n) hd each
    a = sf.nn.MultiheadAttention(16, heads, kv_heads=kv_heads, bias=False, causal=True)
    step = a.cost((B, N, 16), mode="decode", context=T, convention="torch")
    for b, t, n in ((1, 1, 1), (2, 37, 1), (3, 500, 1), (2, 9, 4)):
        assert step.subs(B=b, T=t, N=n).flops == _decode_step_flops(16, heads, kv_heads, b,
                                                                    t, n), (b, t, n)


def test_the_kv_cache_of_llama3_8b_and_its_weights() -> None:
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256,
                         hidden=14336)
    dec = m.cost((B, 1), mode="decode", context=T)
    # 32 layers x (K and V) x 8 KV heads x 128 x 2 bytes (bf16) per cached token
    assert dec.memory.kv_cache == 2 * 32 * 8 * 128 * 2 * B * T
    assert dec.memory.kv_written == 2 * 32 * 8 * 128 * 2 * B
    assert dec.memory.weights == 2 * 8_030_261_248
    pre = m.cost((B, N), mode="prefill", kv_bytes=1)   # an 8-bit cache
    assert pre.memory.kv_cache == 2 * 32 * 8 * 128 * B * N
    assert pre.flops == m.cost((B, N)).flops           # a prefill is the forward


def test_a_generation_is_the_prefill_plus_every_step() -> None:
    m = sf.presets.llama(dim=64, heads=4, kv_heads=2, layers=2, vocab=100, hidden=128)
    g = generation(m, B, N, G)
    pre = m.cost((B, N), mode="prefill")
    dec = m.cost((B, 1), mode="decode", context=T)
    for b, n, new in ((1, 5, 1), (2, 17, 9), (3, 100, 33)):
        loop = pre.subs(B=b, N=n).flops + sum(dec.subs(B=b, T=n + i).flops
                                              for i in range(new))
        assert g.subs(B=b, N=n, G=new).flops == loop
    assert g.memory.kv_written == sp.expand(2 * 2 * 2 * 16 * 2 * B * (N + G))


def test_serving_modes_refuse_what_they_cannot_mean() -> None:
    a = sf.nn.MultiheadAttention(8, 2)
    with pytest.raises(SymflopsError, match="context=T"):
        a.cost((B, 1, 8), mode="decode")
    with pytest.raises(SymflopsError, match="context= is the cached length"):
        a.cost((B, 1, 8), context=T)
    with pytest.raises(SymflopsError, match="context"):
        a.cost((B, 1, 8), mode="decode", context=-1)
    with pytest.raises(SymflopsError, match="mode must be"):
        a.cost((B, 1, 8), mode="serve")
