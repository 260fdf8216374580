"""``sf.generation`` at the top level, as the issue's example calls it, and the decode
quantities of the issue's Llama-3-8B example."""

from __future__ import annotations

import sympy as sp

import symflops as sf
from symflops.symbols import B, N, T, symbol

G = symbol("G")


def test_issue_example_generation_at_the_top_level() -> None:
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=32, vocab=128256,
                         hidden=14336)
    dec = m.cost((B, 1), mode="decode", context=T)
    assert dec.memory.kv_cache == 131072 * B * T        # the new token's K/V not included
    assert dec.memory.kv_written == 131072 * B          # it is appended by the step
    g = sf.generation(m, batch=B, prompt=N, new=G)
    pre = m.cost((B, N), mode="prefill")
    assert sp.expand(g["prefill"].flops - pre.flops) == 0
    # G decode steps at contexts N .. N + G - 1, against the loop at concrete sizes
    for b, n, new in ((1, 7, 3), (4, 100, 9)):
        loop = sum(dec.subs(B=b, T=n + t).flops for t in range(new))
        assert g.subs(B=b, N=n, G=new)["decode"].flops == loop
    assert sp.expand(g.memory.kv_written - 131072 * B * (N + G)) == 0
    assert g.params == 8_030_261_248                     # the weights once, not per phase
    # Kaplan et al.: about 2 x (non-embedding) parameters FLOPs per generated token, plus
    # attention over the context: the decode steps' torch FLOPs over G are 2 x the matmul
    # parameters (all but the input embedding table) plus the scores and context terms
    torch_g = sf.generation(m, batch=1, prompt=N, new=G, convention="torch")
    matmul_params = 8_030_261_248 - 128256 * 4096 - (2 * 32 + 1) * 4096
    attention = 2 * 2 * 32 * 4096 * (G * N + G * (G + 1) / 2)  # keys N + t + 1, t < G
    assert sp.expand(torch_g["decode"].flops - 2 * matmul_params * G - attention) == 0


def test_learned_positions_bound_the_decode_context() -> None:
    # GPT-2's table of 16 positions: a decode step at context T uses position T, so
    # T + 1 <= 16; a point past it is refused, a generation's last step too
    import pytest

    from symflops.errors import SymflopsError

    m = sf.presets.gpt(64, 4, 2, 97, 16)
    d = m.cost((B, 1), mode="decode", context=T)
    assert d.subs(B=1, T=15).flops > 0
    with pytest.raises(SymflopsError, match="T"):
        d.subs(B=1, T=16)
    with pytest.raises(SymflopsError, match="longer than the position table"):
        m.cost((B, 1), mode="decode", context=16)
    g = sf.generation(m, batch=B, prompt=N, new=G)
    assert g.subs(B=1, N=10, G=6).flops > 0          # last step at context 15
    with pytest.raises(SymflopsError):
        g.subs(B=1, N=10, G=7)
