"""LSTM and GRU (``sf.nn.LSTM``/``GRU``/``LSTMCell``/``GRUCell`` and the tracer): parameters
as torch counts them, FLOPs from the gate equations checked by a brute-force count that
computes torch's values, and the tracer's count of the torch modules."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import sympy as sp

import symflops as sf
from symflops import formulas, nn
from symflops.symbols import B, I, T, symbol

try:  # python -m pytest (the repository root on sys.path)
    from tests import bruteforce as bf
except ImportError:  # plain pytest: tests/ itself is on sys.path
    import bruteforce as bf  # type: ignore[no-redef]

torch = pytest.importorskip("torch")

# (torch class, sf.nn class, kwargs): torch's defaults and every option
CONFIGS = [
    ("LSTM", {}), ("LSTM", {"num_layers": 3}), ("LSTM", {"bidirectional": True}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "bias": False}),
    ("LSTM", {"proj_size": 3}), ("LSTM", {"proj_size": 3, "num_layers": 2,
                                          "bidirectional": True}),
    ("GRU", {}), ("GRU", {"num_layers": 2, "bidirectional": True}), ("GRU", {"bias": False}),
]
IDS = [f"{c}-" + "-".join(f"{k}={v}" for k, v in kw.items()) if kw else c for c, kw in CONFIGS]


@pytest.mark.parametrize("cls,kwargs", CONFIGS, ids=IDS)
def test_params_equal_torch(cls: str, kwargs: dict[str, Any]) -> None:
    h = symbol("h")
    cost = getattr(nn, cls)(I, h, **kwargs).cost((T, B, I))
    for i, hid in ((4, 8), (7, 5)):
        module = getattr(torch.nn, cls)(i, hid, **kwargs)
        assert cost.params.subs({I: i, h: hid}) == sum(p.numel() for p in module.parameters())


def test_lstm_formula_by_hand() -> None:
    # one layer, T steps of B rows; per row 4h outputs of length-I and length-h dot products
    # (MACs 4h(I + h)), 2 bias adds each (8h), gate sums 4h + cell 4h = 8h elementwise,
    # 3h sigmoids (3 each) + 2h tanh = 11h activation. Params 4h(I + h) + 8h.
    h = symbol("h")
    cost = nn.LSTM(I, h).cost((T, B, I))
    assert sp.expand(cost.params - (4 * h * (I + h) + 8 * h)) == 0
    exact = T * B * (4 * h * I + 4 * h * (I - 1) + 4 * h * h + 4 * h * (h - 1) + 8 * h
                     + 8 * h + 11 * h)
    assert sp.expand(cost.flops - exact) == 0
    assert sp.expand(cost.with_convention("macs").flops - 4 * T * B * h * (I + h)) == 0
    # GRU: 3h(I + h) MACs, 6h bias, 7h elementwise, 7h activation
    gru = nn.GRU(I, h).cost((T, B, I))
    exact = T * B * (6 * h * I - 3 * h + 6 * h * h - 3 * h + 6 * h + 7 * h + 7 * h)
    assert sp.expand(gru.flops - exact) == 0


@pytest.mark.parametrize("cell,bias", [("lstm", True), ("lstm", False), ("gru", True),
                                       ("gru", False)])
def test_bruteforce_gate_equations_are_torchs(cell: str, bias: bool) -> None:
    """The counted equations compute torch's cell outputs, and their count is sf.nn's."""
    torch.manual_seed(0)
    b, i, hid, steps = 2, 3, 4, 3
    module = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(i, hid, bias=bias)
    xs = torch.randn(steps, b, i)
    tally: dict[str, int] = {}
    h = [[0.0] * hid for _ in range(b)]
    c = [[0.0] * hid for _ in range(b)]
    th = torch.zeros(b, hid)
    tc = torch.zeros(b, hid)
    zeros = [0.0] * (module.weight_ih.shape[0])
    w = (module.weight_ih.tolist(), module.weight_hh.tolist(),
         module.bias_ih.tolist() if bias else zeros, module.bias_hh.tolist() if bias else zeros)
    with torch.no_grad():
        for s in range(steps):
            for r in range(b):
                if cell == "lstm":
                    h[r], c[r] = bf.lstm_step(tally, w, xs[s, r].tolist(), h[r], c[r], bias)
                else:
                    h[r] = bf.gru_step(tally, w, xs[s, r].tolist(), h[r], bias)
            if cell == "lstm":
                th, tc = module(xs[s], (th, tc))
            else:
                th = module(xs[s], th)
    assert torch.allclose(torch.tensor(h), th, atol=1e-5)
    layer = (nn.LSTM if cell == "lstm" else nn.GRU)(i, hid, bias=bias)
    cost = layer.cost((steps, b, i))
    assert {k: int(v) for k, v in cost.work.items() if v != 0} == tally
    one = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(i, hid, bias=bias).cost((b, i))
    assert {k: steps * int(v) for k, v in one.work.items() if v != 0} == tally


def _traced(module: Any, shape: tuple[int, ...]) -> sf.Cost:
    """A concrete trace on real tensors: torch's own ops (``mkldnn_rnn_layer``, or the
    per-step ``addmm``/``mul``/``sigmoid``...), not the whole-call count of symbolic traces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(module.eval(), shape, real=True)


def _work(c: sf.Cost) -> dict[str, int]:
    return {k: int(v) for k, v in c.work.items() if v != 0}


@pytest.mark.parametrize("cls,kwargs", CONFIGS + [("LSTM", {"batch_first": True}),
                                                  ("GRU", {"batch_first": True})],
                         ids=IDS + ["LSTM-batch_first", "GRU-batch_first"])
def test_trace_of_torch_equals_sfnn(cls: str, kwargs: dict[str, Any]) -> None:
    shape = (2, 5, 4) if kwargs.get("batch_first") else (5, 2, 4)
    traced = _traced(getattr(torch.nn, cls)(4, 6, **kwargs), shape)
    cost = getattr(nn, cls)(4, 6, **kwargs).cost(shape)
    assert not traced.report.unknown
    assert int(traced.params) == int(cost.params)
    assert int(traced.flops) == int(cost.flops)
    for conv in ("torch", "macs"):
        assert int(traced.with_convention(conv).flops) == int(cost.with_convention(conv).flops)
    if cls == "LSTM" and "proj_size" not in kwargs:
        # the fused aten.mkldnn_rnn_layer: counted with the same derivation, kind by kind
        assert _work(traced) == _work(cost)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_trace_of_cells_kind_by_kind(cls: str, bias: bool) -> None:
    traced = _traced(getattr(torch.nn, cls)(4, 6, bias=bias), (3, 4))
    cost = getattr(nn, cls)(4, 6, bias=bias).cost((3, 4))
    assert _work(traced) == _work(cost)
    assert int(traced.params) == int(cost.params)


@pytest.mark.parametrize("cls,kwargs", CONFIGS + [("LSTM", {"batch_first": True}),
                                                  ("GRU", {"batch_first": True})],
                         ids=IDS + ["LSTM-batch_first", "GRU-batch_first"])
def test_symbolic_sequence_length_and_batch(cls: str, kwargs: dict[str, Any]) -> None:
    # torch steps through T in C++ (nn.LSTM failed on symbolic sizes, nn.GRU pinned T and
    # B); the trace takes the whole torch._VF call and counts it per layer and direction
    dims = "B T 4" if kwargs.get("batch_first") else "T B 4"
    traced = sf.trace(getattr(torch.nn, cls)(4, 6, **kwargs).eval(), dims, warn=False)
    shape = (B, T, 4) if kwargs.get("batch_first") else (T, B, 4)
    cost = getattr(nn, cls)(4, 6, **kwargs).cost(shape)
    assert not traced.report.fixed and not traced.report.unknown
    assert traced.flops.free_symbols == {B, T} and traced.params == cost.params
    assert traced.output_shape == cost.output_shape
    for kind in set(traced.work) | set(cost.work):  # kind by kind, symbolically
        assert sp.expand(traced.work.get(kind, 0) - cost.work.get(kind, 0)) == 0, kind
    # the count at concrete sizes far from the hints, by a concrete trace of the same module
    # (torch's own ops: mkldnn_rnn_layer, or the per-step addmm/mul/sigmoid/...)
    module = getattr(torch.nn, cls)(4, 6, **kwargs)
    for t, b in ((1, 1), (23, 5)):
        at = (b, t, 4) if kwargs.get("batch_first") else (t, b, 4)
        assert int(traced.subs(T=t, B=b).flops) == int(_traced(module, at).flops)


@pytest.mark.parametrize("cls,kwargs", [("GRU", {"num_layers": 2, "bidirectional": True}),
                                        ("LSTM", {"proj_size": 3, "num_layers": 2}),
                                        ("LSTM", {})], ids=["GRU", "LSTM-proj", "LSTM"])
def test_flop_counter_mode_at_two_lengths(cls: str, kwargs: dict[str, Any]) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    module = getattr(torch.nn, cls)(4, 8, **kwargs).eval()
    traced = sf.trace(module, "T B 4", convention="torch", warn=False)
    # torch convention: 2 per MAC; per step and row G h (I_l + p) MACs per layer and
    # direction (+ p h for a projection)
    for t, b in ((5, 2), (37, 3)):
        with torch.no_grad(), warnings.catch_warnings(), \
                FlopCounterMode(display=False) as counter:
            warnings.simplefilter("ignore")  # "LSTM with projections is not supported..."
            module(torch.randn(t, b, 4))
        mine = traced.subs(T=t, B=b).flops
        if cls == "LSTM" and not kwargs:
            # plain nn.LSTM runs one aten.mkldnn_rnn_layer per layer, for which
            # FlopCounterMode has no formula: it says 0; the gates' MACs are 4h(I + h)
            assert counter.get_total_flops() == 0
            assert mine == 2 * t * b * 4 * 8 * (4 + 8)
        else:
            assert mine == counter.get_total_flops()


class Tagger(torch.nn.Module):
    """Embedding, a 2-layer bidirectional LSTM given its initial state, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.rnn = torch.nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(12, 5)

    def forward(self, ids: Any, h0: Any, c0: Any) -> Any:
        out, (h, c) = self.rnn(self.embed(ids), (h0, c0))
        return self.head(out) + h.sum() + c.sum()


def test_lstm_inside_a_model_with_its_state() -> None:
    from tests.test_model_safety import assert_same, deep_snapshot

    model = Tagger().eval()
    before = deep_snapshot(model)
    traced = sf.trace(model, {"ids": (("B", "T"), torch.long), "h0": (4, "B", 6),
                              "c0": (4, "B", 6)}, warn=False)
    assert_same(before, deep_snapshot(model))
    rnn = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True).cost((B, T, 8))
    assert traced.flops.free_symbols == {B, T} and not traced.report.fixed
    assert sp.expand(traced["rnn"].flops - rnn.flops) == 0
    # the rest traced as usual: the head (12 -> 5 per token) and the two sums; on real
    # tensors at concrete sizes torch runs its own ops (mkldnn_rnn_layer), the same total
    for b, t in ((3, 11), (1, 40)):
        concrete = sf.trace(model, {"ids": ((b, t), torch.long), "h0": (4, b, 6),
                                    "c0": (4, b, 6)}, warn=False, real=True)
        assert "aten.mkldnn_rnn_layer" in concrete.report.counted
        assert int(traced.subs(B=b, T=t).flops) == int(concrete.flops)


def test_unbatched_input_is_symbolic_in_t() -> None:
    traced = sf.trace(torch.nn.GRU(4, 6).eval(), "T 4", warn=False)
    assert traced.output_shape == (T, 6)
    assert sp.expand(traced.flops - nn.GRU(4, 6).cost((T, 4)).flops) == 0


def test_symbolic_layers_and_directions() -> None:
    h, L = symbol("h"), symbol("L")
    cost = nn.LSTM(I, h, num_layers=L, bidirectional=True).cost((T, B, I), convention="macs")
    # layer 0: 2 directions x 4h(I + h); layers 1..L-1: 2 x 4h(2h + h) per step and row
    want = T * B * (2 * 4 * h * (I + h) + (L - 1) * 2 * 4 * h * (2 * h + h))
    assert sp.expand(cost.flops - want) == 0
    assert cost.output_shape == (T, B, 2 * h)


def test_step_work_matches_the_derivation() -> None:
    d = formulas.recurrent.recurrent_derivation("lstm", 3, 7, 5, 4, proj=2)
    step = formulas.recurrent.recurrent_step_work("lstm", 3, 5, 4, proj=2)
    assert d.work == {k: 7 * v for k, v in step.items()}
    assert d.params == formulas.recurrent.recurrent_params("lstm", 5, 4, proj=2)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.LSTM(4, 6), (5, 2, 3)),
    (lambda: nn.LSTM(4, 6), (5, 2, 3, 4)),
    (lambda: nn.LSTM(4, 6, proj_size=6), (5, 2, 4)),
    (lambda: nn.GRU(4, 0), (5, 2, 4)),
    (lambda: nn.LSTMCell(4, 6), (2, 5)),
    (lambda: formulas.recurrent.recurrent_step_work("rnn", 1, 1, 1), None),
], ids=["features", "rank", "proj", "hidden", "cell-features", "cell-kind"])
def test_bad_input_is_one_error(make: Any, shape: Any) -> None:
    with pytest.raises(sf.SymflopsError) as err:
        layer = make()
        layer.cost(shape)
    assert "fix:" in str(err.value) and "\n" not in str(err.value)
