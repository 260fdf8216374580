"""FlashAttention's HBM traffic (Dao et al. 2022, Algorithm 1) and standard attention's
(Algorithm 0), counted exactly: the formulas against a literal run of each algorithm's loops
that counts every element loaded from or stored to HBM, at sizes where the blocks divide
and where they do not, and against Theorem 2's Theta(N^2 d^2 / M)."""

from __future__ import annotations

import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symflops.errors import SymflopsError
from symflops.formulas.attention import flash_attention_io, standard_attention_io


def algorithm_1(n: int, d: int, m: int, keys: int | None = None) -> dict[str, int]:
    """Algorithm 1's loads and stores, line by line (block contents not computed); ``keys``
    K/V rows (default ``n``)."""
    keys = n if keys is None else keys
    reads = writes = 0
    b_c = math.ceil(m / (4 * d))
    b_r = min(math.ceil(m / (4 * d)), d)
    writes += n * d + n + n  # line 2: O, l, m initialized in HBM
    col_blocks = [range(j, min(j + b_c, keys)) for j in range(0, keys, b_c)]
    row_blocks = [range(i, min(i + b_r, n)) for i in range(0, n, b_r)]
    for cols in col_blocks:  # line 5
        reads += 2 * len(cols) * d  # line 6: K_j, V_j
        for rows in row_blocks:  # line 7
            reads += len(rows) * d + len(rows) * d + len(rows) + len(rows)  # line 8
            writes += len(rows) * d  # line 12: O_i
            writes += len(rows) + len(rows)  # line 13: l_i, m_i
    return {"read": reads, "write": writes}


def algorithm_0(n: int, d: int) -> dict[str, int]:
    """Standard attention: S = QK^T written, read for P = softmax(S), P written, read with
    V for O = PV, O written."""
    reads = writes = 0
    reads += n * d + n * d  # Q and K
    writes += n * n  # S
    reads += n * n  # S
    writes += n * n  # P
    reads += n * n + n * d  # P and V
    writes += n * d  # O
    return {"read": reads, "write": writes}


@pytest.mark.parametrize("n,d,m", [(1024, 64, 4096), (1000, 64, 4096), (7, 3, 12),
                                   (129, 16, 100), (1, 1, 4), (4096, 128, 49152)],
                         ids=lambda v: str(v))
def test_flash_formula_counts_algorithm_1(n: int, d: int, m: int) -> None:
    assert flash_attention_io(n, d, m) == algorithm_1(n, d, m)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(0, 2000))
def test_flash_formula_counts_algorithm_1_anywhere(n: int, d: int, extra: int) -> None:
    m = 4 * d + extra  # the domain: M >= 4 d
    assert flash_attention_io(n, d, m) == algorithm_1(n, d, m)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 500), st.integers(1, 32), st.integers(0, 500))
def test_decode_keys_longer_than_the_queries(n: int, keys: int, d: int, extra: int) -> None:
    m = 4 * d + extra
    assert flash_attention_io(n, d, m, kv_len=keys) == algorithm_1(n, d, m, keys)


@pytest.mark.parametrize("n,d", [(1, 1), (7, 3), (1024, 64)])
def test_standard_formula_counts_algorithm_0(n: int, d: int) -> None:
    assert standard_attention_io(n, d) == algorithm_0(n, d)


def test_symbolic_and_theorem_2() -> None:
    n, d, m = sp.symbols("N d M", positive=True, integer=True)
    io = flash_attention_io(n, d, m)
    assert io["read"].subs({n: 1000, d: 64, m: 4096}) == algorithm_1(1000, 64, 4096)["read"]
    # Theorem 2: Theta(N^2 d^2 / M) accesses: at M a multiple of 4d and N of M/4d the total
    # is 12 N^2 d^2 / M + 16 N^2 d / M + 3 N d + 2 N exactly
    total = sum(algorithm_1(4096, 64, m_)["read"] + algorithm_1(4096, 64, m_)["write"]
                for m_ in (4096,))
    assert total == 12 * 4096**2 * 64**2 // 4096 + 16 * 4096**2 * 64 // 4096 + \
        3 * 4096 * 64 + 2 * 4096
    # and fewer accesses than standard attention's once M is large against d
    flash = flash_attention_io(4096, 64, 98304)
    std = standard_attention_io(4096, 64)
    assert flash["read"] + flash["write"] < (std["read"] + std["write"]) / 4


def test_outside_the_domain_is_refused() -> None:
    with pytest.raises(SymflopsError, match="4 d"):
        flash_attention_io(128, 64, 255)
    with pytest.raises(SymflopsError, match="integer"):
        flash_attention_io(128, 64.0, 4096)


def test_a_serving_cost_with_flash_attention() -> None:
    import symflops as sf
    from symflops.serving import with_flash_attention
    from symflops.symbols import B, T

    m = sf.presets.llama(dim=256, heads=8, kv_heads=2, layers=2, vocab=100, hidden=512)
    dec = m.cost((B, 1), mode="decode", context=T, convention="torch")
    fused = with_flash_attention(dec, sram=4096)
    assert fused.flops == dec.flops and fused.params == dec.params
    unfused, flash = dec.bytes_by("both"), fused.bytes_by("both")
    # the cache is read once and the new token written once either way (a kernel per
    # key/value head with its 4 query heads as rows), the weights are the weights
    for key in ("kv_cache.read", "kv_cache.write", "weights.read"):
        assert flash[key] == unfused[key]
    # the attention node by hand at B = 3, T = 100: head_dim 32, B_c = ceil(4096/128) = 32
    # keys, T_c = ceil(101/32) = 4 blocks; per key/value head 4 query rows:
    # read Q,O 4*(2*4*32) + l,m 4*(2*4) elements, written O 4*32 + 4*(4*32) and l,m 8 + 4*8
    node = fused["layers.block.self_attn.self_attn.attention"].subs(B=3, T=100)
    act_read = 4 * 2 * 4 * 32 * 2 + 4 * 2 * 4 * 4
    act_write = (4 * 32 + 4 * 4 * 32) * 2 + (8 + 4 * 8) * 4
    per = 3 * 2  # B x key/value heads
    assert node.bytes_by("both")["activations.read"] == per * act_read
    assert node.bytes_by("both")["activations.write"] == per * act_write
    # one op in the roofline: max(FLOPs/peak, bytes/bandwidth) over the whole kernel
    from symflops.devices import get_device

    h100 = get_device("H100-SXM5-80GB")
    assert node.roofline(h100) == sp.Max(node.flops / h100.peak["bf16"],
                                         node.bytes / h100.bandwidth)
