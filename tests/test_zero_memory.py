"""Model states per device under ZeRO stages 0-3, tensor and pipeline parallelism, and the
pipeline bubble: each formula against an independent count (a literal partition of the
parameters over the ranks, a slicing of the Megatron-split matrices, a simulated schedule)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.memory import Memory, Precision, pipeline_bubble
from symflops.symbols import B, C_in, C_out, L, N, dim, heads, symbol

D, t, p = symbol("D"), symbol("t"), symbol("p")


def simulate_zero(sizes: list[int], ranks: int, stage: int, k: int = 12) -> list[int]:
    """Bytes of model states on each rank: the parameters flattened into one buffer and
    cut into ``ranks`` contiguous pieces (as np.array_split cuts: the first ``total %
    ranks`` one longer); a state ZeRO partitions lives on its piece's owner only, the
    others on every rank."""
    total = sum(sizes)
    q, r = divmod(total, ranks)
    pieces = [q + 1] * r + [q] * (ranks - r)
    if total < 10**6:  # the same cut as numpy's
        assert pieces == [len(a) for a in np.array_split(np.arange(total), ranks)]
    out = []
    for own in pieces:
        params = 2 * (own if stage >= 3 else total)
        grads = 2 * (own if stage >= 2 else total)
        optim = k * (own if stage >= 1 else total)
        out.append(params + grads + optim)
    return out


def _mlp_cost(**options: object) -> sf.Cost:
    # by hand: 16*32 + 32 + 32*8 + 8 = 808 parameters
    net = sf.nn.Sequential(sf.nn.Linear(16, 32), sf.nn.ReLU(), sf.nn.Linear(32, 8))
    return net.cost((B, 16), mode="train", **options)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
@pytest.mark.parametrize("ranks", [1, 3, 8, 101])
def test_zero_stages_equal_a_partition_of_the_parameters(stage: int, ranks: int) -> None:
    sizes = [16 * 32, 32, 32 * 8, 8]
    assert sum(sizes) == 808
    per_rank = simulate_zero(sizes, ranks, stage)
    mem = _mlp_cost(zero=stage, data_parallel=ranks).memory
    assert mem is not None
    # the formula is the mean over the ranks (exact: a Rational), and every rank's when
    # the degree divides the count (808 = 8 * 101)
    assert mem.model_states == sp.Rational(Fraction(sum(per_rank), ranks).numerator,
                                           Fraction(sum(per_rank), ranks).denominator)
    if 808 % ranks == 0 or stage == 0:
        assert set(per_rank) == {mem.model_states}
    else:
        assert max(per_rank) - min(per_rank) > 0  # the ranks differ: the mean is what we give


def test_zero_with_a_symbolic_degree() -> None:
    c = sf.nn.Linear(symbol("C_in"), symbol("C_out")).cost(
        (B, symbol("C_in")), mode="train", precision="mixed", zero=3, data_parallel=D)
    mem = c.memory
    assert mem is not None
    c_in, c_out = symbol("C_in"), symbol("C_out")
    # (2 + 2 + 12) bytes of every parameter, over D ranks
    assert sp.expand(mem.model_states - 16 * (c_in * c_out + c_out) / D) == 0
    at = {c_in: 16, c_out: 32, D: 4}
    assert mem.model_states.xreplace(at) == simulate_zero([16 * 32, 32], 4, 3)[0]
    # the stages in between, by hand with Psi = params
    psi = c_in * c_out + c_out
    for stage, want in ((0, 16 * psi), (1, 4 * psi + 12 * psi / D),
                        (2, 2 * psi + 14 * psi / D)):
        m = sf.nn.Linear(c_in, c_out).cost((B, c_in), mode="train", zero=stage,
                                          data_parallel=D).memory
        assert m is not None and sp.expand(m.model_states - want) == 0


def test_zero_figure1_values() -> None:
    # Rajbhandari et al. 2020, Figure 1: Psi = 7.5B, N_d = 64, K = 12
    psi = 7_500_000_000
    exact = [simulate_zero([psi], 64, s)[0] for s in range(4)]
    assert exact == [120_000_000_000, 31_406_250_000, 16_640_625_000, 1_875_000_000]
    # the figure prints GB of 10^9 bytes to one decimal (120 with none): rounded half up
    tenths = [int(sp.floor(sp.Rational(v, 10**8) + sp.Rational(1, 2))) for v in exact]
    assert tenths == [1200, 314, 166, 19]
    for s in range(4):
        m = Memory(psi, psi, zero=s, data_parallel=64)
        assert m.model_states == exact[s]


def test_frozen_parameters_have_no_partitioned_optimizer_state() -> None:
    # stage 3 partitions the frozen parameters too; no gradient, no optimizer state for them
    net = sf.nn.Sequential(sf.nn.Linear(16, 32), sf.nn.ReLU(), sf.nn.Linear(32, 8))
    mem = net.cost((B, 16), mode="train", frozen=["0"], zero=3, data_parallel=8).memory
    assert mem is not None
    # 808 params * 2 / 8; trainable 264 (the second linear): (2 + 12) * 264 / 8
    assert mem.model_states == sp.Rational(808 * 2 + 264 * 14, 8)


def megatron_block_shards(d: int, ranks: int) -> list[int]:
    """Parameters on each tensor-parallel rank of a GPT block, slicing each tensor as
    Megatron does: QKV and fc1 (column-parallel) split their output rows and bias, out_proj
    and fc2 (row-parallel) their input columns, their biases and the LayerNorms whole."""
    tensors = {
        "ln_1.weight": (np.zeros(d), None), "ln_1.bias": (np.zeros(d), None),
        "qkv.weight": (np.zeros((3 * d, d)), 0), "qkv.bias": (np.zeros(3 * d), 0),
        "out_proj.weight": (np.zeros((d, d)), 1), "out_proj.bias": (np.zeros(d), None),
        "ln_2.weight": (np.zeros(d), None), "ln_2.bias": (np.zeros(d), None),
        "fc1.weight": (np.zeros((4 * d, d)), 0), "fc1.bias": (np.zeros(4 * d), 0),
        "fc2.weight": (np.zeros((d, 4 * d)), 1), "fc2.bias": (np.zeros(d), None),
    }
    out = []
    for r in range(ranks):
        n = 0
        for array, axis in tensors.values():
            n += array.size if axis is None else np.array_split(array, ranks, axis)[r].size
        out.append(n)
    return out


@pytest.mark.parametrize("d,ranks", [(16, 2), (24, 4), (40, 8)])
def test_tensor_parallel_splits_what_megatron_splits(d: int, ranks: int) -> None:
    block = sf.nn.TransformerBlock(d, 4, mlp_ratio=4)
    mem = block.cost((B, N, d), mode="train", tensor_parallel=ranks).memory
    assert mem is not None
    shards = megatron_block_shards(d, ranks)
    assert len(set(shards)) == 1  # the degree divides every split size here
    assert mem.params == 2 * shards[0]
    assert mem.gradients == 2 * shards[0]
    assert mem.optimizer == 12 * shards[0]
    # by hand: 6 d replicated (2 LayerNorms, 2 row-parallel biases), 12 d^2 + 7 d split
    assert shards[0] == 6 * d + (12 * d * d + 7 * d) // ranks


def test_tensor_parallel_symbolic_and_embedding_vocab_parallel() -> None:
    block = sf.nn.TransformerBlock(dim, heads, mlp_ratio=4)
    mem = block.cost((B, N, dim), mode="train", tensor_parallel=t).memory
    assert mem is not None
    assert sp.expand(mem.params - 2 * (6 * dim + (12 * dim**2 + 7 * dim) / t)) == 0
    emb = sf.nn.Embedding(symbol("V"), dim).cost((B, N), mode="train", tensor_parallel=t)
    assert emb.memory is not None
    assert sp.expand(emb.memory.params - 2 * symbol("V") * dim / t) == 0


def test_pipeline_parallel_divides_model_states_not_activations() -> None:
    blocks = sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads, mlp_ratio=4), L)
    one = blocks.cost((B, N, dim), mode="train").memory
    staged = blocks.cost((B, N, dim), mode="train", pipeline_parallel=p).memory
    assert one is not None and staged is not None
    assert sp.expand(staged.model_states - one.model_states / p) == 0
    # 1F1B: the first stage holds p micro-batches of L/p layers: one micro-batch's worth
    assert sp.expand(staged.activations - one.activations) == 0
    # all three degrees at once: each count divided by t (its split part), p and N_d
    mem = blocks.cost((B, N, dim), mode="train", tensor_parallel=t, pipeline_parallel=p,
                      zero=3, data_parallel=D).memory
    assert mem is not None
    per_layer = 6 * dim + (12 * dim**2 + 7 * dim) / t
    assert sp.expand(mem.model_states - 16 * L * per_layer / (p * D)) == 0


def simulate_gpipe(stages: int, micro: int, tf: int, tb: int) -> int:
    """The makespan of GPipe: every micro-batch's forward through the stages, then every
    backward in reverse; an op starts when its input is ready and its stage is free."""
    free = [0] * stages
    done: dict[tuple[str, int, int], int] = {}
    for i in range(micro):
        for s in range(stages):
            start = max(free[s], done.get(("f", i, s - 1), 0))
            done[("f", i, s)] = free[s] = start + tf
    for i in range(micro):
        for s in reversed(range(stages)):
            start = max(free[s], done.get(("b", i, s + 1), done[("f", micro - 1, stages - 1)]))
            done[("b", i, s)] = free[s] = start + tb
    return max(free)


@pytest.mark.parametrize("stages,micro", [(1, 4), (2, 3), (4, 8), (8, 32), (5, 2)])
def test_bubble_equals_a_simulated_schedule(stages: int, micro: int) -> None:
    tf, tb = 1, 2  # backward twice the forward
    span = simulate_gpipe(stages, micro, tf, tb)
    ideal = micro * (tf + tb)
    assert sp.Rational(span - ideal, ideal) == pipeline_bubble(stages, micro)
    assert pipeline_bubble(stages, micro, 1) == pipeline_bubble(stages, micro)
    assert pipeline_bubble(stages, micro, 2) == sp.Rational(stages - 1, 2 * micro)


def test_bubble_symbolic_and_bad_degrees() -> None:
    m = symbol("m")
    assert pipeline_bubble(p, m) == (p - 1) / m
    assert pipeline_bubble("p", "m") == (p - 1) / m
    for bad in (0, -1, 2.5, True, "p + 1", sp.Symbol("x")):
        with pytest.raises(SymflopsError, match="parallel degree"):
            pipeline_bubble(bad, 4)


@pytest.mark.parametrize("options,match", [
    (dict(zero=4), "ZeRO stage"),
    (dict(zero=True), "ZeRO stage"),
    (dict(zero=1, data_parallel=0), "data_parallel"),
    (dict(pipeline_parallel=2.0), "pipeline_parallel"),
    (dict(precision="bf17"), "unknown precision"),
])
def test_bad_training_options(options: dict[str, object], match: str) -> None:
    with pytest.raises(SymflopsError, match=match):
        _mlp_cost(**options)


def test_parallel_options_outside_train_mode_raise() -> None:
    with pytest.raises(SymflopsError, match="training options"):
        sf.nn.Linear(4, 4).cost((B, 4), zero=3, data_parallel=8)


def test_unknown_shards_raise_under_tensor_parallelism() -> None:
    # a Memory without the split counts (a traced model's): t != 1 is an error, t = 1 works
    m = Memory(100, 100, tensor_parallel=4)
    with pytest.raises(SymflopsError, match="not known"):
        _ = m.params
    assert Memory(100, 100).model_states == 1600
    assert Memory(100, 100, zero=2, data_parallel=4).model_states == 200 + 14 * 25


def test_adafactor_under_tensor_parallelism_raises() -> None:
    c = _mlp_cost(optimizer="adafactor", tensor_parallel=2)
    assert c.memory is not None
    with pytest.raises(SymflopsError, match="factored"):
        _ = c.memory.optimizer


def test_named_precisions() -> None:
    fp32 = _mlp_cost(precision="fp32", optimizer="adam_fp32").memory
    mixed = _mlp_cost(precision="mixed").memory
    assert fp32 is not None and mixed is not None
    assert fp32.model_states == 808 * (4 + 4 + 8) == mixed.model_states
    assert _mlp_cost(precision=Precision(params=4)).memory.params == 808 * 4  # type: ignore


def test_defaults_unchanged_and_subs_keeps_degrees() -> None:
    c = _mlp_cost(zero=3, data_parallel=D)
    assert c.memory is not None
    done = c.memory.xreplace({D: 8})
    assert done.model_states == 808 * 16 // 8 and done.data_parallel == 8


def test_paper_figures_zero_vllm_kaplan() -> None:
    from symflops.papers import PAPERS

    zero = PAPERS["zero"].claims
    got = [c.at_example(c.derived_expr, c.rows[0].values) for c in zero]
    assert got == [simulate_zero([7_500_000_000], 64, s)[0] for s in range(4)]
    vllm = PAPERS["vllm"].claims[0]
    # 2 (key and value) * 5120 * 40 layers * 2 bytes, the paper's "800 KB" of 1024 bytes
    assert vllm.at_example(vllm.derived_expr) == 2 * 5120 * 40 * 2 == 800 * 1024
    kaplan = PAPERS["kaplan"].claims[-1]
    # GPT-3 at T = 2048: 24 L d^2 (2N) + 4 L (T + 1) d (attention) + 2 d V (LM head)
    L_, d, V_, T_ = 96, 12288, 50257, 2048
    assert kaplan.at_example(kaplan.derived_expr) == \
        24 * L_ * d * d + 4 * L_ * (T_ + 1) * d + 2 * d * V_


def test_decode_flops_per_token_against_flop_counter() -> None:
    # a 2-layer GPT decode step with a real cache of T tokens: FlopCounterMode's count of
    # the matmuls equals the Kaplan claim's derived formula at those sizes
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from symflops.papers import PAPERS

    d, h, layers, vocab, ctx, cached = 32, 4, 2, 50, 64, 7
    torch.manual_seed(0)
    blocks = []
    for _ in range(layers):
        blocks.append(torch.nn.ModuleDict({"qkv": torch.nn.Linear(d, 3 * d),
                                           "out": torch.nn.Linear(d, d),
                                           "fc": torch.nn.Linear(d, 4 * d),
                                           "proj": torch.nn.Linear(4 * d, d)}))
    head = torch.nn.Linear(d, vocab, bias=False)
    x = torch.zeros(1, 1, d)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        for blk in blocks:
            q, k, v = blk["qkv"](x).split(d, -1)
            k = torch.cat([torch.zeros(1, cached, d), k], 1)
            v = torch.cat([torch.zeros(1, cached, d), v], 1)
            q, k, v = (a.view(1, -1, h, d // h).transpose(1, 2) for a in (q, k, v))
            a = torch.matmul(q, k.transpose(-1, -2)).softmax(-1)
            x = x + blk["out"](torch.matmul(a, v).transpose(1, 2).reshape(1, 1, d))
            x = x + blk["proj"](torch.nn.functional.gelu(blk["fc"](x)))
        head(x)
    claim = PAPERS["kaplan"].claims[-1]
    value = claim.at_example(claim.derived_expr,
                             {"L": layers, "dim": d, "heads": h, "N": ctx, "V": vocab,
                              "T": cached})
    assert value == fc.get_total_flops()


def test_traced_model_states_under_zero() -> None:
    # a traced model's Memory takes the ZeRO options through replace; which parameters
    # tensor parallelism would split is not known there: an error, not a guess
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    mem = sf.trace(net, "B 16", mode="train").memory
    assert mem is not None
    staged = mem.replace(zero=2, data_parallel=D)
    # 808 parameters: 2 bytes replicated, (2 + 12) partitioned over D
    assert sp.expand(staged.model_states - (2 * 808 + 14 * 808 / D)) == 0
    with pytest.raises(SymflopsError, match="not known"):
        _ = mem.replace(tensor_parallel=2).model_states


def test_subs_reaches_the_degrees_only_the_memory_knows() -> None:
    # D appears in the memory only (the FLOPs do not depend on it): subs still takes it
    d = sf.symbols.symbol("D")
    c = sf.nn.Linear(C_in, C_out).cost((B, C_in), mode="train", precision="mixed", zero=3,
                                       data_parallel=d)
    assert d not in c.free_symbols
    assert c.subs(D=8).memory.model_states == 2 * C_in * C_out + 2 * C_out
