"""Training memory: parameters, gradients, optimizer state and the activations saved for
backward, in bytes, as SymPy; Korthikanti et al.'s accounting derived from sf.nn."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops.memory import (
    Memory,
    Optimizer,
    Precision,
    Saved,
    get_optimizer,
    register_optimizer,
)
from symflops.symbols import B, N, dim, heads

t = sf.symbols.symbol("t")


def block_memory(**options):
    block = sf.nn.TransformerBlock(dim, heads, mlp_ratio=4, dropout=0.1)
    return block.cost((B, N, dim), mode="train", **options).memory


# Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
# Models", section 4.1 (16-bit activations, 1-byte dropout masks), per layer with
# s = N, b = B, h = dim, a = heads:
#   attention: QKV input 2sbh, Q and K 4sbh, softmax output 2as^2b, its dropout mask
#     as^2b, the dropped-out probabilities 2as^2b and V 2sbh, the output projection's
#     input 2sbh, its dropout mask sbh: 11sbh + 5as^2b;
#   MLP: fc1 input 2sbh, GELU input 8sbh, fc2 input 8sbh, dropout mask sbh: 19sbh;
#   two LayerNorm inputs: 4sbh.  Total 34sbh + 5as^2b (eq. 1).
KORTHIKANTI = {
    "no parallelism (eq. 1)": (dict(), 34 * B * N * dim + 5 * B * heads * N**2),
    # tensor parallelism (eq. 2): sbh (10 + 24/t + 5as/(ht))
    "tensor parallel (eq. 2)": (dict(tensor_parallel=t),
                                B * N * dim * (10 + 24 / t + 5 * heads * N / (dim * t))),
    # tensor and sequence parallelism (eq. 4): sbh/t (34 + 5as/h)
    "sequence parallel (eq. 4)": (dict(tensor_parallel=t, sequence_parallel=True),
                                  B * N * dim / t * (34 + 5 * heads * N / dim)),
    # selective recomputation with both (section 5, table 2): 34 sbh / t
    "selective recompute (table 2)": (dict(tensor_parallel=t, sequence_parallel=True,
                                           recompute="selective"), 34 * B * N * dim / t),
    # full recomputation (table 2): the layer's input, 2 sbh
    "full recompute (table 2)": (dict(recompute="full"), 2 * B * N * dim),
}


@pytest.mark.parametrize("case", list(KORTHIKANTI))
def test_korthikanti_activation_memory_is_derived(case):
    options, expected = KORTHIKANTI[case]
    assert sp.simplify(block_memory(**options).activations - expected) == 0


def test_torch_saves_the_layer_norm_statistics_the_paper_leaves_out():
    """Each LayerNorm also saves its per-token mean and rstd: 2 * 2 B N bytes (16-bit),
    8 B N for the block's two; the Cost says so."""
    paper = block_memory().activations
    torch_count = block_memory(accounting="torch").activations
    assert sp.expand(torch_count - paper) == 8 * B * N
    note = sf.nn.TransformerBlock(dim, heads, dropout=0.1).cost((B, N, dim),
                                                                mode="train").notes
    assert any("8*B*N bytes of normalization statistics" in n for n in note)


def test_adam_with_master_weights_is_16_bytes_per_parameter():
    """GPT-2 style block with dim 768: 12 dim^2 + 13 dim = 7,087,872 parameters (QKV
    3 dim^2 + 3 dim, projection dim^2 + dim, MLP 8 dim^2 + 5 dim, two LayerNorms 4 dim);
    Adam in mixed precision: 2 (fp16 weights) + 2 (grads) + 12 (fp32 master, m, v)."""
    m = sf.nn.TransformerBlock(768, 12).cost((B, N, 768), mode="train").memory
    assert m.param_count == 12 * 768**2 + 13 * 768 == 7_087_872
    assert (m.params, m.gradients, m.optimizer) == (2 * 7_087_872, 2 * 7_087_872,
                                                    12 * 7_087_872)
    assert m.params + m.gradients + m.optimizer == 16 * 7_087_872
    assert sp.expand(m.total - 16 * 7_087_872 - m.activations) == 0


@pytest.mark.parametrize("optimizer, per_param", [("adam", 16), ("adam_fp32", 12),
                                                  ("sgd", 8), ("sgd_momentum", 12)])
def test_optimizers_are_registered_by_name(optimizer, per_param):
    m = sf.nn.Linear(10, 10).cost((B, 10), mode="train", optimizer=optimizer).memory
    # 110 parameters; 2-byte params and grads plus the optimizer's state
    assert m.params + m.gradients + m.optimizer == per_param * 110


def test_a_new_optimizer_registers_once():
    mine = register_optimizer(Optimizer("test_lion", 4, "fp32 momentum"), replace=True)
    assert get_optimizer("test_lion") is mine
    with pytest.raises(sf.SymflopsError, match="already registered"):
        register_optimizer(Optimizer("test_lion", 4))


def test_frozen_parameters_take_no_gradient_or_optimizer_state():
    net = sf.nn.Sequential(sf.nn.Linear(8, 8), sf.nn.ReLU(), sf.nn.Linear(8, 2))
    m = net.cost((B, 8), mode="train", frozen=["0"]).memory
    # 72 + 18 parameters, of which the 18 of layer 2 train
    assert (m.param_count, m.trainable) == (90, 18)
    assert (m.params, m.gradients, m.optimizer) == (180, 36, 216)
    # layer 0 frozen, its input needs no gradient: it saves nothing; ReLU saves its
    # output (8 B), which layer 2 saves as its input: one tensor, counted once
    assert m.activations == 16 * B


def test_precision_is_a_parameter_per_kind_of_tensor():
    fp32 = block_memory(precision=Precision(activations=4, masks=1))
    # every float tensor doubles; the masks (as^2b + 2 sbh bytes) stay
    assert sp.expand(fp32.activations - (66 * B * N * dim + 9 * B * heads * N**2)) == 0
    with pytest.raises(sf.SymflopsError, match="whole number of bytes"):
        Precision(activations=2.5)


def test_memory_follows_substitution():
    c = sf.nn.TransformerBlock(dim, heads, dropout=0.1).cost((B, N, dim), mode="train")
    at = c.subs({B: 8, N: 2048, dim: 4096, heads: 32})
    # Korthikanti et al. section 4, GPT-3 scale check: 34 sbh + 5 as^2 b at these sizes
    assert at.memory.activations == 34 * 8 * 2048 * 4096 + 5 * 32 * 2048**2 * 8


def test_saved_tensors_used_twice_count_once():
    m = Memory(saved=(Saved("a", "output", B, tensor=1), Saved("b", "input", B, tensor=1),
                      Saved("c", "mask", B, "mask")))
    assert m.activations == 3 * B


@settings(max_examples=10, deadline=None)
@given(b=st.integers(1, 50), n=st.integers(1, 50), d_heads=st.sampled_from([1, 2, 4]),
       p=st.sampled_from([0.0, 0.1]))
def test_activation_memory_is_linear_in_the_batch(b, n, d_heads, p):
    block = sf.nn.TransformerBlock(8, d_heads, 2, dropout=p)
    act = block.cost((B, n, 8), mode="train").memory.activations
    assert sp.degree(act, B) == 1 and act.subs(B, 0) == 0
    assert act.subs(B, 2 * b) == 2 * act.subs(B, b)


# ----------------------------------------------------------------------------- the tracer
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

try:
    from tests import torch_blocks as tb
    from tests.test_model_safety import assert_same, deep_snapshot
except ImportError:  # pragma: no cover - run from inside tests/
    import torch_blocks as tb  # type: ignore[no-redef]
    from test_model_safety import assert_same, deep_snapshot  # type: ignore[no-redef]


def _traced(real: nn.Module, spec: str) -> sf.Cost:
    names = (spec if isinstance(spec, str) else spec[0]).split()
    hints = {k: v for k, v in {"N": 8, "H": 16, "W": 16}.items() if k in names}
    return sf.trace(real, spec, mode="train", hints=hints)


@pytest.mark.parametrize("case", list(tb.CASES))
def test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps(case):
    """The tracer measures what autograd saves (saved-tensor hooks, storages deduplicated,
    parameters skipped); sf.nn's torch accounting derives the same, layer by layer."""
    traced, mine = tb.traced_case(case)
    measured, derived = traced.memory, mine.memory
    assert sp.expand(measured.activations - derived.activations) == 0
    assert (measured.param_count, measured.trainable) == (derived.param_count,
                                                          derived.trainable)


def test_frozen_layers_save_what_torch_saves():
    sym, real = tb.CASES["conv-net"][0]()
    real[0].requires_grad_(False)
    measured = _traced(real, "B 3 H W").memory
    derived = sym.cost((B, 3, sf.symbols.H, sf.symbols.W), mode="train", frozen=["0"],
                       accounting="torch").memory
    # the first conv is frozen and its input needs no gradient: it saves nothing
    assert sp.expand(measured.activations - derived.activations) == 0
    assert measured.trainable == derived.trainable == derived.param_count - (3 * 9 * 8 + 8)


def test_the_block_measured_in_torch_is_korthikanti_plus_the_statistics():
    """Measured on a torch block (16-bit, 1-byte masks): 34 sbh + 5 as^2 b and the two
    LayerNorms' mean and rstd, 2 * 2 * 2 B N bytes."""
    measured = tb.traced_case("transformer-block-dropout")[0].memory.activations
    assert sp.expand(measured - (34 * B * N * 16 + 5 * B * 4 * N**2 + 8 * B * N)) == 0


def _no_saved_tensor_hooks() -> bool:
    return torch._C._autograd._top_saved_tensors_default_hooks(False) is None


def test_the_saved_tensor_hooks_are_gone_after_a_trace_even_a_failed_one():
    class Fails(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            self.fc(x).relu()
            raise RuntimeError("boom")

    model = tb.Block(16, 4, 4, 0.1)
    before = deep_snapshot(model)
    assert _traced(model, "B N 16").memory is not None
    assert _no_saved_tensor_hooks()
    assert_same(before, deep_snapshot(model))
    with pytest.raises(sf.SymflopsError, match="boom"):
        sf.trace(Fails(), "B 8", mode="train")
    assert _no_saved_tensor_hooks()


def test_an_eval_trace_has_no_memory():
    assert sf.trace(nn.Linear(4, 2), "B 4").memory is None


def test_adafactor_keeps_a_factored_second_moment():
    """torch.optim.Adafactor keeps, for a (r, c) weight, a row statistic of r and a
    column statistic of c values, and the full second moment of a vector. Linear(64, 32):
    weight (32, 64) -> 32 + 64, bias 32; with fp32 master weights (4 per parameter) and 4
    bytes per statistic: 4 * 2080 + 4 * 128."""
    m = sf.nn.Linear(64, 32).cost((B, 64), mode="train", optimizer="adafactor").memory
    assert m.optimizer == 4 * (64 * 32 + 32) + 4 * (32 + 64 + 32)
    real = sf.trace(nn.Linear(64, 32), "B 64", mode="train").memory
    assert real.replace(optimizer_name="adafactor").optimizer == m.optimizer


def test_adafactor_on_a_conv_net_agrees_with_the_traced_parameters():
    traced_cost, mine = tb.traced_case("pool-net")
    traced = traced_cost.memory.replace(optimizer_name="adafactor")
    derived = mine.memory.replace(optimizer_name="adafactor")
    assert traced.optimizer == derived.optimizer


def test_activations_by_layer_sum_to_the_total_in_sfnn_and_in_the_trace():
    traced, mine = tb.traced_case("transformer-block-dropout")
    measured, derived = traced.memory, mine.memory
    for m in (derived, measured):
        assert sp.expand(sp.Add(*m.by_layer().values()) - m.activations) == 0
    # the MLP's hidden layer: GELU keeps its input and fc2 its input, 2 * 64 B N bytes each
    assert derived.by_layer()["mlp.act"] == measured.by_layer()["act"] == 128 * B * N
    assert derived.by_layer()["mlp.fc2"] == measured.by_layer()["fc2"] == 128 * B * N
