"""mode="train" of the layers whose train rules came with the layer registry (transposed
convolutions, 1-d and adaptive pools, GLU, Upsample, PixelShuffle/Unshuffle, ChannelShuffle,
LSTMCell, GRUCell, one-layer GRU and LSTM, WindowAttention): equal to
sf.trace(..., mode="train") of the same torch model kind by kind, and in the activations
torch keeps."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import B, H, N, W  # noqa: E402

S = sf.nn
# torch.backends.mkldnn.flags (the LSTM cases) warns about Intel GPUs this torch lacks
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")

class FirstOutput(nn.Module):
    """A linear (or nothing), then a cell; its output h' (LSTMCell also returns c')."""

    def __init__(self, cell, pre):
        super().__init__()
        self.pre = nn.Linear(4, 4) if pre else nn.Identity()
        self.cell = cell

    def forward(self, x):
        out = self.cell(self.pre(x))
        return out[0] if isinstance(out, tuple) else out


def _cell(name, pre, bias=True):
    sym = getattr(S, name)(4, 6, bias=bias)
    return (lambda: S.Sequential(S.Linear(4, 4), sym) if pre else sym,
            lambda: FirstOutput(getattr(nn, name)(4, 6, bias=bias), pre), "3 4", (3, 4))


def _gru(pre, steps, batch_first=False, bias=True):
    sym = S.GRU(4, 6, batch_first=batch_first, bias=bias)
    spec = f"3 {steps} 4" if batch_first else f"{steps} 3 4"
    shape = (3, steps, 4) if batch_first else (steps, 3, 4)
    return (lambda: S.Sequential(S.Linear(4, 4), sym) if pre else sym,
            lambda: FirstOutput(nn.GRU(4, 6, batch_first=batch_first, bias=bias), pre),
            spec, shape)


def _swin_attention(shift, h, w, pre=True, window=4):
    try:
        from tests.example_models import load_example
    except ImportError:  # plain pytest: tests/ itself is on sys.path
        from example_models import load_example  # type: ignore[no-redef]

    mirror = load_example("swin_mirror")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8) if pre else nn.Identity()
            self.attn = mirror.ShiftedWindowAttention(8, window, shift, 2)

        def forward(self, x):
            return self.attn(self.fc(x))

    sym = S.WindowAttention(8, 2, window, shift=shift)
    return (lambda: S.Sequential(S.Linear(8, 8), sym) if pre else sym, Net,
            f"2 {h} {w} 8", (2, h, w, 8))


class NoOneDNN(nn.Module):
    """A model run with oneDNN off: torch then runs nn.LSTM op by op (its reference path),
    which the tracer counts; with oneDNN, one fused backward op it does not."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        with torch.backends.mkldnn.flags(enabled=False):
            return self.inner(x)


def _lstm(pre, steps, bias=True):
    sym = S.LSTM(4, 6, bias=bias)
    return (lambda: S.Sequential(S.Linear(4, 4), sym) if pre else sym,
            lambda: NoOneDNN(FirstOutput(nn.LSTM(4, 6, bias=bias), pre)),
            f"{steps} 3 4", (steps, 3, 4))


CASES = {  # id: (sf.nn layer, torch model, trace spec, sf.nn input shape)
    "lstm-1-step-first": _lstm(False, 1),
    "lstm-4-steps": _lstm(True, 4),
    "lstm-3-steps-first-no-bias": _lstm(False, 3, bias=False),
    # (torch fixes the batch of the window partition: concrete sizes)
    "window-attention": _swin_attention(0, 8, 8),
    "window-attention-shifted": _swin_attention(2, 8, 8),
    "window-attention-padded-shifted-first": _swin_attention(2, 6, 7, pre=False),
    "window-attention-covering": _swin_attention(1, 3, 3, window=3),
    "gru-1-step-first": _gru(False, 1),
    "gru-4-steps": _gru(True, 4),
    "gru-3-steps-first": _gru(False, 3),
    "gru-5-steps-no-bias": _gru(True, 5, bias=False),
    # (the cells run at a concrete batch: torch fixes it)
    "lstm-cell-first": _cell("LSTMCell", False),
    "lstm-cell": _cell("LSTMCell", True),
    "lstm-cell-no-bias": _cell("LSTMCell", True, bias=False),
    "gru-cell-first": _cell("GRUCell", False),
    "gru-cell": _cell("GRUCell", True),
    "gru-cell-no-bias": _cell("GRUCell", False, bias=False),
    "convt2d": (lambda: S.Sequential(S.Conv2d(4, 4, 1), S.ConvTranspose2d(4, 6, 3, stride=2)),
                lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.ConvTranspose2d(4, 6, 3, stride=2)),
                "B 4 H W", (B, 4, H, W)),
    "convt2d-groups-first": (
        lambda: S.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2),
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2),
        "B 4 H W", (B, 4, H, W)),
    "convt1d-dilated": (
        lambda: S.Sequential(S.Conv1d(3, 4, 1), S.ConvTranspose1d(4, 2, 3, dilation=2,
                                                                  bias=False)),
        lambda: nn.Sequential(nn.Conv1d(3, 4, 1), nn.ConvTranspose1d(4, 2, 3, dilation=2,
                                                                     bias=False)),
        "B 3 20", (B, 3, 20)),
    "convt3d": (lambda: S.Sequential(S.Conv3d(2, 2, 1), S.ConvTranspose3d(2, 3, 2, stride=2)),
                lambda: nn.Sequential(nn.Conv3d(2, 2, 1), nn.ConvTranspose3d(2, 3, 2, stride=2)),
                "B 2 3 4 5", (B, 2, 3, 4, 5)),
    "maxpool1d": (lambda: S.Sequential(S.Conv1d(4, 4, 1), S.MaxPool1d(3, 2, 1)),
                  lambda: nn.Sequential(nn.Conv1d(4, 4, 1), nn.MaxPool1d(3, 2, 1)),
                  "B 4 23", (B, 4, 23)),
    "avgpool1d": (lambda: S.Sequential(S.Conv1d(4, 4, 1), S.AvgPool1d(3, 2)),
                  lambda: nn.Sequential(nn.Conv1d(4, 4, 1), nn.AvgPool1d(3, 2)),
                  "B 4 T", (B, 4, sf.symbols.T)),
    "avgpool1d-padded": (lambda: S.Sequential(S.Conv1d(4, 4, 1), S.AvgPool1d(3, 2, 1)),
                         lambda: nn.Sequential(nn.Conv1d(4, 4, 1), nn.AvgPool1d(3, 2, 1)),
                         "B 4 17", (B, 4, 17)),
    "adaptive-avg1d-global": (
        lambda: S.Sequential(S.Conv1d(4, 4, 1), S.AdaptiveAvgPool1d(1)),
        lambda: nn.Sequential(nn.Conv1d(4, 4, 1), nn.AdaptiveAvgPool1d(1)),
        "B 4 T", (B, 4, sf.symbols.T)),
    "adaptive-avg1d-3": (
        lambda: S.Sequential(S.Conv1d(4, 4, 1), S.AdaptiveAvgPool1d(3)),
        lambda: nn.Sequential(nn.Conv1d(4, 4, 1), nn.AdaptiveAvgPool1d(3)),
        "B 4 19", (B, 4, 19)),
    "adaptive-max2d": (
        lambda: S.Sequential(S.Conv2d(4, 4, 1), S.AdaptiveMaxPool2d(2)),
        lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.AdaptiveMaxPool2d(2)),
        "B 4 9 7", (B, 4, 9, 7)),
    "adaptive-max2d-global": (
        lambda: S.Sequential(S.Conv2d(4, 4, 1), S.AdaptiveMaxPool2d(1)),
        lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.AdaptiveMaxPool2d(1)),
        "B 4 H W", (B, 4, H, W)),
    "glu": (lambda: S.Sequential(S.Linear(8, 8), S.GLU()),
            lambda: nn.Sequential(nn.Linear(8, 8), nn.GLU()), "B N 8", (B, N, 8)),
    "glu-dim1-first": (lambda: S.GLU(1), lambda: nn.GLU(1), "B 6 N", (B, 6, N)),
    "upsample-bilinear": (
        lambda: S.Sequential(S.Conv2d(4, 4, 1), S.Upsample(scale_factor=2, mode="bilinear")),
        lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.Upsample(scale_factor=2,
                                                              mode="bilinear")),
        "B 4 H W", (B, 4, H, W)),
    "upsample-nearest": (
        lambda: S.Sequential(S.Conv2d(4, 4, 1), S.Upsample(scale_factor=3)),
        lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.Upsample(scale_factor=3)),
        "B 4 H W", (B, 4, H, W)),
    "pixel-shuffle": (lambda: S.Sequential(S.Conv2d(4, 8, 1), S.PixelShuffle(2)),
                      lambda: nn.Sequential(nn.Conv2d(4, 8, 1), nn.PixelShuffle(2)),
                      "B 4 H W", (B, 4, H, W)),
    "channel-shuffle": (lambda: S.Sequential(S.Conv2d(4, 6, 1), S.ChannelShuffle(3)),
                        lambda: nn.Sequential(nn.Conv2d(4, 6, 1), nn.ChannelShuffle(3)),
                        "B 4 H W", (B, 4, H, W)),
    "pixel-unshuffle": (lambda: S.Sequential(S.Conv2d(4, 4, 1), S.PixelUnshuffle(2)),
                        lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.PixelUnshuffle(2)),
                        "B 4 10 6", (B, 4, 10, 6)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_equals_the_tracer(case):
    build, model, spec, shape = CASES[case]
    names = spec.split()
    hints = {k: v for k, v in {"N": 8, "T": 24, "H": 8, "W": 8}.items() if k in names}
    traced = sf.trace(model(), spec, mode="train", hints=hints, warn=False)
    mine = build().cost(shape, mode="train", accounting="torch")
    kinds = set(traced.work) | set(mine.work)
    assert {k: sp.expand(traced.work.get(k, 0) - mine.work.get(k, 0)) for k in kinds} == \
        dict.fromkeys(kinds, 0)
    assert traced.params == mine.params
    assert sp.expand(traced.memory.activations - mine.memory.activations) == 0


def test_gru_batch_first_trains_as_sequence_first():
    # the same ops on the same sizes (torch adds b_ih outside the product when the input is
    # batch-first, so the tracer files those adds under elementwise; sf.nn counts the sizes)
    a = S.GRU(4, 6).cost((5, B, 4), mode="train", input_grad=True)
    b = S.GRU(4, 6, batch_first=True).cost((B, 5, 4), mode="train", input_grad=True)
    assert a.work == b.work and a.memory.activations == b.memory.activations
    with pytest.raises(sf.SymflopsError, match="one-layer"):
        S.GRU(4, 6, num_layers=2).cost((5, B, 4), mode="train")


def test_transposed_conv_gradients_by_hand():
    # ConvTranspose1d(2, 3, 3, stride=2) on (B, 2, L): output (B, 3, 2L + 1).
    # grad_input is a direct conv of grad_output: each of the 2 B L input positions a dot
    # product of 3 * 3 = 9 products (9 multiplies, 8 adds);
    # grad_weight: per weight (2 * 3 * 3 = 18) a dot product of length B L;
    # grad_bias: grad_output summed per output channel, B (2L + 1) - 1 adds, 3 channels.
    L = sf.symbols.symbol("L")
    c = S.ConvTranspose1d(2, 3, 3, stride=2).cost((B, 2, L), mode="train", input_grad=True)
    expected = {"grad_input": {"matmul_mul": 18 * B * L, "matmul_add": 16 * B * L},
                "grad_weight": {"matmul_mul": 18 * B * L, "matmul_add": 18 * (B * L - 1)},
                "grad_bias": {"elementwise": 3 * (B * (2 * L + 1) - 1)}}
    for part, work in expected.items():
        assert {k: sp.expand(v - work[k]) for k, v in c[part].work.items()} == \
            dict.fromkeys(work, 0), part
    # FlopCounterMode counts 2 per MAC of both products at a concrete size
    from torch.utils.flop_counter import FlopCounterMode
    m = nn.ConvTranspose1d(2, 3, 3, stride=2)
    x = torch.randn(5, 2, 11, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        m(x).sum().backward()
    assert fc.get_total_flops() == int(c.with_convention("torch").flops.subs({B: 5, L: 11}))


@pytest.mark.parametrize("case,part", [
    ("window-attention", "attn"), ("window-attention-shifted", "attn"),
    ("lstm-cell", "cell"), ("gru-cell", "cell"), ("lstm-cell-no-bias", "cell")])
def test_a_frozen_layer_passes_the_gradient_through(case, part):
    # the layer's parameters frozen, the linear before it trained (its 8*8+8 or 4*4+4
    # trainable parameters): the frozen layer takes only its input's gradient. Window
    # attention: qkv and proj their grad_input, the bias table nothing, the core keeping
    # what it keeps. Cells: grad_input of W_ih and the gates' elementwise gradients; they
    # keep their gates, tanh(c') (LSTM: and the zero state for f c) or n, h - n and gh_n's
    # copy (GRU, whose r gh_n needs r's gradient alone), not x
    build, net_class, spec, shape = CASES[case]
    net = net_class()
    getattr(net, part).requires_grad_(False)
    traced = sf.trace(net, spec, mode="train", warn=False)
    mine = build().cost(shape, mode="train", frozen=["1"], accounting="torch")
    kinds = set(traced.work) | set(mine.work)
    assert {k: sp.expand(traced.work.get(k, 0) - mine.work.get(k, 0)) for k in kinds} == \
        dict.fromkeys(kinds, 0)
    assert sp.expand(traced.memory.activations - mine.memory.activations) == 0
    width = 8 if part == "attn" else 4
    assert traced.memory.trainable == mine.memory.trainable == width * width + width
