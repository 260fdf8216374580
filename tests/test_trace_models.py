"""Real architectures from examples/: the symbolic total at several sizes equals concrete
counts at those sizes; a 70B-wide Llama-style model on the meta device; train mode.
(torchvision's published figures are checked by benchmarks/check_torchvision.py, in an
environment of its own: torchvision does not import beside the CPU torch.)"""

from __future__ import annotations

import warnings

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from example_models import load_example  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops import analysis as A  # noqa: E402
from symflops.symbols import B, H, N, W  # noqa: E402

# left out of the fast lane: zoo-sized models traced (ResNet-50, ViT, GPT; 30 s here)
pytestmark = pytest.mark.slow

load = load_example


def counted(model, *args, backward=False, **kwargs):
    """FlopCounterMode on real tensors. FlopCounterMode counts 0 for the CPU SDPA kernel
    and for nn.MultiheadAttention's no_grad fast path; the MATH backend with grad enabled
    runs attention as bmm's it does count, the same products symflops' formula counts."""
    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):
        out = model(*args, **kwargs)
        if backward:
            out.sum().backward()
    return fc.get_total_flops()


@pytest.mark.parametrize("factory,sizes", [
    ("resnet50", [(1, 224, 224), (2, 97, 130)]),
    ("resnet18", [(1, 64, 64), (1, 33, 47)]),
])
def test_resnet(factory, sizes):
    model = getattr(load("resnet"), factory)()
    c = sf.trace(model, "B 3 H W", convention="torch")
    assert c.free_symbols == {B, H, W}
    for b, h, w in sizes:
        with torch.no_grad():
            ref = counted(model, torch.randn(b, 3, h, w))
        assert c.subs(B=b, H=h, W=w).flops == ref
        assert c.evaluate(B=b, H=h, W=w) == ref
    assert c.params == sum(p.numel() for p in model.parameters())  # 25,557,032 for resnet50
    paths = [p for p, _ in c.walk()]
    assert {"layer1.0.conv1", "layer1.0.bn1", "layer2.0.downsample.0", "fc"} <= set(paths)
    assert c["layer1.0.conv1"].layer == "Conv2d"
    # aligned at the total stride 32: a plain polynomial, equal at multiples of 32
    multiples = A.total_stride(c)
    assert multiples == {H: 32, W: 32}
    al = A.aligned(c, multiples)
    assert not al.flops.has(sp.floor)
    assert al.subs(B=1, H=224, W=320).flops == c.subs(B=1, H=224, W=320).flops


def test_resnet50_macs_match_the_published_figure():
    # torchvision lists resnet50 at 4.09 GFLOPS (MACs) at 224: 4,089,184,256 MACs
    c = sf.trace(load("resnet").resnet50(), "B 3 H W", convention="macs")
    assert c.subs(B=1, H=224, W=224).flops == 4089184256


def test_mobilenet_v2():
    model = load("mobilenet").mobilenet_v2()
    c = sf.trace(model, "B 3 H W", convention="torch")
    for b, h, w in [(1, 224, 224), (2, 100, 61)]:
        with torch.no_grad():
            assert c.subs(B=b, H=h, W=w).flops == counted(model, torch.randn(b, 3, h, w))
    # torchvision lists mobilenet_v2 at 0.30 GFLOPS (MACs): 300,774,272 MACs at 224
    assert c.with_convention("macs").subs(B=1, H=224, W=224).flops == 300774272
    assert c.params == 3504872


def test_vit_fixes_h_and_w_and_keeps_b():
    model = load("vit").vit_b_16()
    with pytest.warns(UserWarning, match="fixes H = 224, W = 224"):
        c = sf.trace(model, "B 3 H W", convention="torch")
    assert c.free_symbols == {B}
    assert c.report.fixed == {"H": 224, "W": 224}
    # grad enabled: nn.MultiheadAttention takes its slow path, whose SDPA runs as bmm's
    # under the MATH backend and is counted by FlopCounterMode
    ref = counted(model, torch.randn(1, 3, 224, 224))
    assert c.subs(B=1).flops == ref
    # under no_grad the MHA fast path runs; FlopCounterMode then misses attention entirely
    with torch.no_grad():
        assert counted(model, torch.randn(1, 3, 224, 224)) < ref
    assert c.params == sum(p.numel() for p in model.parameters())


def test_gpt_causal_sdpa_and_int_tokens():
    model = load("gpt").gpt()
    c = sf.trace(model, {"input_ids": ("B", "N")}, convention="torch")
    assert c.free_symbols == {B, N}
    for b, n in [(1, 64), (2, 33)]:
        ids = torch.randint(0, 50257, (b, n))
        with torch.no_grad():
            assert c.subs(B=b, N=n).flops == counted(model, ids)
    # attention's N^2 terms: 12 layers x 12 heads x (scores + context) x 64 x 2 (torch)
    poly = sp.Poly(c.flops, N)
    assert poly.coeff_monomial(N**2) == 12 * 12 * 2 * 64 * 2 * B
    assert c.params == sum(p.numel() for p in model.parameters())  # tied: counted once


def test_llama_70b_widths_on_meta_device():
    gpt = load("gpt")
    with torch.device("meta"):
        model = gpt.llama_70b_32()
    c = sf.trace(model, {"input_ids": ("B", "N")}, convention="macs")
    # per layer: q, o (8192^2 each), k, v (8192*1024 each), 3 MLP matrices (8192*28672);
    # head 8192*32000; attention 64 heads x 128 x N^2 x 2 (scores and context)
    per_layer = 2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672
    expected = B * N * (32 * per_layer + 8192 * 32000) + 32 * 64 * 128 * 2 * B * N**2
    assert sp.expand(c.flops - expected) == 0
    assert c.params == 32 * (per_layer + 2 * 8192) + 2 * 8192 * 32000 + 8192
    assert model.lm_head.weight.device.type == "meta"  # still on meta, untouched


def test_llama_tiny_matches_flop_counter():
    model = load("gpt").llama_tiny()
    c = sf.trace(model, {"input_ids": ("B", "N")}, convention="torch")
    with torch.no_grad():
        assert c.subs(B=2, N=19).flops == counted(model, torch.randint(0, 97, (2, 19)))


@pytest.mark.parametrize("example,factory,spec,make", [
    ("resnet", "tiny", "B 3 H W", lambda b, s: (torch.randn(b, 3, s, s),)),
    ("gpt", "gpt_tiny", {"input_ids": ("B", "N")}, lambda b, s: (torch.randint(0, 90, (b, s)),)),
])
def test_train_mode_counts_forward_and_backward(example, factory, spec, make):
    model = getattr(load(example), factory)()
    c = sf.trace(model, spec, mode="train", convention="torch")
    ev = sf.trace(model, spec, convention="torch")
    names = [str(n) for n in c.free_symbols]
    for b, s in [(2, 40), (1, 23)]:
        vals = {n: (b if n == "B" else s) for n in names}
        model.train()
        ref = counted(model, *make(b, s), backward=True)
        model.zero_grad(set_to_none=True)
        model.eval()
        assert c.subs(**vals).flops == ref
        # not a fixed factor: a CNN's first conv needs no input gradient (a GPT's
        # embedding lookup costs nothing either way, so there it is exactly 3x)
        ratio = sp.Rational(c.subs(**vals).flops, ev.subs(**vals).flops)
        assert ratio < 3 if example == "resnet" else ratio == 3
    assert any(p.endswith("convolution_backward.grad_weight") or p.endswith("mm_backward")
               for p, _ in c.walk())
    assert not c.report.unknown


def test_train_mode_grouped_conv_backward():
    # FlopCounterMode counts a grouped conv's grad_weight as if groups were 1 (its
    # conv_backward_flop passes no groups), i.e. `groups` times too much for a depthwise
    # conv. Hand count: each of the C_out*(C_in/g)*K^2 weight gradients is a dot product
    # of length B*H_out*W_out, so grad_weight has exactly the forward's MACs, and so has
    # grad_input (a transposed conv with the same weights).
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3, groups=8))
    c = sf.trace(net, "B 3 H W", mode="train", convention="macs")
    fwd = c["1.convolution"].flops
    assert fwd == 8 * 9 * B * (H - 4) * (W - 4)
    assert c["1.convolution_backward.grad_weight"].flops == fwd
    assert c["1.convolution_backward.grad_input"].flops == fwd
    # the first conv's input needs no gradient: no grad_input part
    assert [x.name for x in c["0.convolution_backward"].children] == \
        ["grad_weight", "grad_bias"]
    net.train()
    with FlopCounterMode(display=False) as fc:
        net(torch.randn(2, 3, 12, 12)).sum().backward()
    grouped_extra = (8 - 1) * fwd.subs({B: 2, H: 12, W: 12}) * 2  # torch counts 2 per MAC
    ours = c.with_convention("torch").subs(B=2, H=12, W=12).flops
    assert fc.get_total_flops() == ours + grouped_extra


def test_transformer_encoder_fast_path():
    # under no_grad nn.TransformerEncoderLayer runs one fused op that FlopCounterMode
    # counts as 0; with grad enabled it runs linears and SDPA (MATH: bmm's), which it counts
    enc = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2,
        enable_nested_tensor=False).eval()
    c = sf.trace(enc, "B N 32", convention="torch")
    assert not c.report.unknown
    assert [x.name for x in c["layers.0"].children][:3] == ["parameters", "qkv", "scores"]
    ref = counted(enc, torch.randn(2, 11, 32))
    assert c.subs(B=2, N=11).flops == ref
    with torch.no_grad():
        assert counted(enc, torch.randn(2, 11, 32)) == 0


@pytest.mark.parametrize("module,factory,spec,mode", [
    ("resnet", "tiny", "B 3 H W", "eval"),
    ("mobilenet", "tiny", "B 3 H W", "train"),
    ("vit", "vit_tiny", ("B 3 H W", {"H": 32, "W": 32}), "eval"),
    ("gpt", "gpt_tiny", {"input_ids": ("B", "N")}, "train"),
])
def test_every_traced_leaf_derivation_reproduces_its_work(module, factory, spec, mode):
    # each op handler hands over the work it computed and the general formula with its
    # bindings; the two must agree for every op the examples use, forward and backward
    model = getattr(load(module), factory)()
    spec, hints = spec if isinstance(spec, tuple) else (spec, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = sf.trace(model, spec, hints, mode=mode)
    checked = 0
    for path, leaf in c.leaves():
        d = leaf.derivation
        if d is None or "FITTED" in " ".join(leaf.notes):
            continue
        for kind, value in leaf.work.items():
            assert sp.expand(d.general[kind].xreplace(d.bindings) - value) == 0, (path, kind)
        checked += 1
    assert checked > 10
