"""sf.nn.MoE's capacity options: padded slots (``capacity_factor``) and dropped copies
(``dropped``), checked against a simulated capacity-limited router."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import sympy as sp

import symflops as sf
from symflops.symbols import T, symbol


def route(tokens: int, experts: int, k: int, capacity: int, seed: int) -> tuple[int, int]:
    """(kept copies, dropped copies) of a router sending each token to k distinct random
    experts, each expert keeping its first ``capacity`` copies (Switch/GShard)."""
    rng = random.Random(seed)
    load = [0] * experts
    kept = 0
    for _ in range(tokens):
        for e in rng.sample(range(experts), k):
            if load[e] < capacity:
                load[e] += 1
                kept += 1
    return kept, tokens * k - kept


@pytest.mark.parametrize("tokens,experts,k,factor", [(100, 8, 2, Fraction(5, 4)),
                                                     (37, 4, 1, Fraction(1, 2)),
                                                     (64, 6, 3, 1)], ids=str)
def test_dropped_copies_against_a_router(tokens: int, experts: int, k: int,
                                         factor: Fraction | int) -> None:
    dim, hidden = 4, 6
    capacity = -(-factor * tokens * k // experts)  # ceil(c T k / E), exactly
    for seed in range(3):
        kept, dropped = route(tokens, experts, k, int(capacity), seed)
        # each kept copy runs one SwiGLU expert: 3 dim x hidden products per row
        c = sf.nn.MoE(dim, hidden, experts, k, capacity_factor=factor,
                      dropped=dropped).cost((tokens, dim))
        assert c["experts"].macs == kept * 3 * dim * hidden
    # padded (no dropped given): every one of the E C slots is processed
    padded = sf.nn.MoE(dim, hidden, experts, k, capacity_factor=factor).cost((tokens, dim))
    assert padded["experts"].macs == experts * capacity * 3 * dim * hidden


def test_dropped_as_a_symbol_carries_its_domain() -> None:
    D, E, k, F, dim = (symbol(n) for n in ("D", "E", "k", "F", "dim"))
    c = sf.nn.MoE(dim, F, E, k, capacity_factor=Fraction(5, 4), dropped=D).cost((T, dim))
    assert sp.expand(c["experts"].macs - 3 * (T * k - D) * dim * F) == 0
    assert sp.Le(D, T * k) in c.validity
    # 8 experts, top 2, 100 tokens: C = 32, 256 slots for 200 copies: D in [0, 200]
    at = {E: 8, k: 2, F: 4, dim: 2, T: 100}
    assert c.subs({**at, D: 10})["experts"].macs == 190 * 3 * 2 * 4
    with pytest.raises(sf.SymflopsError):
        c.subs({**at, D: 201})
    # capacity factor 1/2: C = 13, 104 slots for 200 copies: at least 96 dropped
    half = sf.nn.MoE(dim, F, E, k, capacity_factor=Fraction(1, 2), dropped=D).cost((T, dim))
    with pytest.raises(sf.SymflopsError):
        half.subs({**at, D: 95})
    assert half.subs({**at, D: 96})["experts"].macs == 104 * 3 * 2 * 4


def test_dropped_refusals() -> None:
    with pytest.raises(sf.SymflopsError, match="need a capacity factor"):
        sf.nn.MoE(8, 16, 4, 2, dropped=3)
    with pytest.raises(sf.SymflopsError, match="more copies dropped than routed"):
        sf.nn.MoE(8, 16, 4, 2, capacity_factor=1, dropped=21).cost((10, 8))
    with pytest.raises(sf.SymflopsError, match="fewer copies dropped"):
        sf.nn.MoE(8, 16, 4, 2, capacity_factor=Fraction(1, 2), dropped=0).cost((10, 8))
    with pytest.raises(sf.SymflopsError):
        sf.nn.MoE(8, 16, 4, 2, capacity_factor=1, dropped=-1)
    assert "dropped=3" in sf.nn.MoE(8, 16, 4, 2, capacity_factor=1, dropped=3).spec()
