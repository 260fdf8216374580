"""Vision presets (``symflops.presets.vision``): parameters and MACs equal torchvision's
published figures, and each preset equals ``sf.trace`` of its plain-torch mirror in
``examples/`` kind by kind at two sizes; the Swin and MobileNet paper formulas fall out
of the layers symbolically."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import sympy as sp
from example_models import load_example

import symflops as sf
from symflops import nn, presets
from symflops.symbols import B, C_in, C_out, H, K, W, symbol

load = load_example


# torchvision's model docs, the "Classification" table of
# https://docs.pytorch.org/vision/stable/models.html (weights' meta "num_params" and
# "_ops", GFLOPS = multiply-accumulates of conv/linear/matmul at 224 x 224, 3 decimals).
PUBLISHED = {
    "vit_b_16": (lambda: presets.vit(), 86_567_656, 17.564),
    "vit_l_16": (lambda: presets.vit(layers=24, heads=16, dim=1024, mlp_dim=4096),
                 304_326_632, 61.555),
    "swin_t": (lambda: presets.swin(), 28_288_354, 4.491),
    "swin_s": (lambda: presets.swin(depths=(2, 2, 18, 2)), 49_606_258, 8.741),
    "resnet18": (lambda: presets.resnet("basic", (2, 2, 2, 2)), 11_689_512, 1.814),
    "resnet50": (lambda: presets.resnet(), 25_557_032, 4.089),
    "mobilenet_v2": (lambda: presets.mobilenet_v2(), 3_504_872, 0.301),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_figures(name: str) -> None:
    make, params, gmacs = PUBLISHED[name]
    cost = make().cost((B, 3, 224, 224), convention="macs").subs(B=1)
    assert int(cost.params) == params
    assert round(int(cost.macs) / 1e9, 3) == gmacs


def _traced(model: Any, shape: tuple[int, ...]) -> sf.Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(model, shape)


def _work(cost: sf.Cost) -> dict[str, int]:
    """Work per kind; global average pooling counts under ``pooling`` in sf.nn but may
    reach the tracer as a mean (``elementwise``), the same adds and divide (see
    ``_SAME_TOTAL_ONLY`` in test_layers), so the two kinds are compared as their sum."""
    w = {k: int(v) for k, v in cost.work.items() if v != 0}
    w["elementwise"] = w.get("elementwise", 0) + w.pop("pooling", 0)
    return w


# (preset, mirror factory, input shape): two sizes each, kind by kind
MIRRORED = {
    "vit-32": (lambda: presets.vit(32, 8, 2, 4, 64, 128, 10),
               lambda: load("vit").VisionTransformer(32, 8, 2, 4, 64, 128, 10), (2, 3, 32, 32)),
    "vit-48": (lambda: presets.vit(48, 16, 1, 2, 32, 96, 7),
               lambda: load("vit").VisionTransformer(48, 16, 1, 2, 32, 96, 7), (1, 3, 48, 48)),
    # window 2, patch 2: stage 1 at 8x8 (shifted), stage 2 at 4x4 (shifted)
    "swin-16": (lambda: presets.swin(16, (2, 2), (1, 2), 2, 2, classes=10),
                lambda: load("swin_mirror").tiny(), (2, 3, 16, 16)),
    # 6x10 after the patch embedding: padded to 6x10, then 3x5 merged to 4x6 padded; 4 blocks
    # in stage 1 (two shifted pairs), 3 in stage 2 (a pair and one more)
    "swin-12x20": (lambda: presets.swin(16, (4, 3), (1, 2), 2, 2, classes=10),
                   lambda: load("swin_mirror").SwinTransformer(2, 16, (4, 3), (1, 2), 2, 10),
                   (1, 3, 12, 20)),
    # basic blocks, two stages (64 and 128 planes, a strided projection shortcut)
    "resnet-basic-32": (lambda: presets.resnet("basic", (1, 2), classes=10),
                        lambda: _resnet_mirror((1, 2)), (1, 3, 32, 32)),
    "resnet-basic-45x37": (lambda: presets.resnet("basic", (1, 2), classes=10),
                           lambda: _resnet_mirror((1, 2)), (2, 3, 45, 37)),
}


def _resnet_mirror(layers: tuple[int, ...]) -> Any:
    mod = load("resnet")
    return mod.ResNet(mod.BasicBlock, list(layers), 10, widths=(64, 128))


@pytest.mark.parametrize("case", sorted(MIRRORED))
def test_preset_equals_trace_of_mirror(case: str) -> None:
    preset, mirror, shape = MIRRORED[case]
    traced = _traced(mirror().eval(), shape)
    cost = preset().cost(shape)
    assert _work(cost) == _work(traced)
    assert int(cost.params) == int(traced.params)
    if case.startswith("swin"):  # Swin takes any H, W: the symbolic formula agrees too
        general = preset().cost((B, 3, H, W)).subs(B=shape[0], H=shape[2], W=shape[3])
        assert _work(general) == _work(traced)


@pytest.mark.parametrize("case", [
    ("resnet50", lambda: presets.resnet()),
    ("mobilenet_v2", lambda: presets.mobilenet_v2()),
], ids=lambda c: c[0])
def test_cnn_preset_equals_symbolic_trace(case: tuple[str, Any]) -> None:
    """One symbolic trace of the mirror, compared with the symbolic preset at two sizes."""
    name, preset = case
    module = "mobilenet" if name.startswith("mobilenet") else "resnet"
    traced = _traced(getattr(load(module), name)(), "B 3 H W")
    cost = preset().cost((B, 3, H, W))
    for at in ({"B": 1, "H": 224, "W": 224}, {"B": 2, "H": 97, "W": 130}):
        assert _work(cost.subs(**at)) == _work(traced.subs(**at)), at
    assert cost.params == traced.params


def test_resnet_variants() -> None:
    # resnext50_32x4d 25,028,904 and wide_resnet50_2 68,883,240 parameters (torchvision docs)
    assert presets.resnet(groups=32, width_per_group=4).cost((B, 3, 224, 224)).params \
        == 25_028_904
    assert presets.resnet(width_per_group=128).cost((B, 3, 224, 224)).params == 68_883_240


def test_presets_take_symbols() -> None:
    dim, heads, L, mlp, p, n = (symbol(x) for x in ("dim", "heads", "L", "mlp_dim", "p", "n"))
    c = presets.vit(n * p, p, L, heads, dim, mlp, 1000).cost((B, 3, n * p, n * p),
                                                            convention="macs")
    # per image: patch conv 3 p^2 dim n^2; per layer and token (n^2 + 1 of them) qkv 3 dim^2,
    # out dim^2, MLP 2 dim mlp, and 2 (n^2 + 1) dim for Q K^T and A V; head dim 1000
    tokens = n**2 + 1
    want = 3 * p**2 * dim * n**2 + L * tokens * (4 * dim**2 + 2 * dim * mlp + 2 * tokens * dim) \
        + 1000 * dim
    assert sp.expand(c.flops - B * want) == 0
    depth = symbol("depth")
    s = presets.swin(depths=(2, 2, 2 * depth, 2)).cost((B, 3, 224, 224), convention="macs")
    assert s.subs(B=1, depth=3).flops == presets.swin().cost((1, 3, 224, 224),
                                                             convention="macs").flops


def test_swin_omega_formulas() -> None:
    """Liu et al. 2021 (Swin), eqs. (1) and (2), per image, softmax dropped: global MSA
    4hwC^2 + 2(hw)^2 C, window MSA 4hwC^2 + 2M^2 hwC; window attention's MACs are exactly
    the latter (h = M a, w = M b: the map is a whole number of windows), and global
    multi-head attention over the h w tokens the former."""
    a, b, c, heads, m = (symbol(x) for x in ("a", "b", "C", "heads", "window"))
    h, w = m * a, m * b
    wmsa = nn.WindowAttention(c, heads, m).cost((1, h, w, c), convention="macs").flops
    assert sp.simplify(wmsa - (4 * h * w * c**2 + 2 * m**2 * h * w * c)) == 0
    msa = nn.MultiheadAttention(c, heads).cost((1, h * w, c), convention="macs").flops
    assert sp.expand(msa - (4 * h * w * c**2 + 2 * (h * w) ** 2 * c)) == 0


def test_mobilenet_separable_ratio() -> None:
    """Howard et al. 2017 (MobileNets), section 3.1: a depthwise K x K conv and a 1x1
    pointwise conv over a standard K x K conv cost 1/N + 1/D_K^2 (N = C_out, D_K = K) in
    MACs; it falls out of Conv2d(groups=C_in) symbolically."""
    shape = (B, C_in, H, W)
    standard = nn.Conv2d(C_in, C_out, K, padding="same", bias=False)
    separable = nn.Sequential(nn.Conv2d(C_in, C_in, K, padding="same", groups=C_in, bias=False),
                              nn.Conv2d(C_in, C_out, 1, bias=False))
    ratio = separable.cost(shape, convention="macs").flops / \
        standard.cost(shape, convention="macs").flops
    assert sp.simplify(ratio - (1 / C_out + 1 / K**2)) == 0


@pytest.mark.parametrize("bad", [
    lambda: presets.resnet("dense"),
    lambda: presets.resnet("basic", groups=32),
    lambda: presets.swin(depths=(2, 2), heads=(3,)),
    lambda: presets.mobilenet_v2(width_mult=0),
    lambda: presets.vit(224, 16).cost((1, 3, 256, 256)),
], ids=["block", "basic-groups", "swin-lengths", "width", "vit-size"])
def test_bad_preset_arguments(bad: Any) -> None:
    with pytest.raises(sf.SymflopsError) as err:
        bad()
    assert "fix:" in str(err.value)


@pytest.mark.parametrize("kwargs", [
    {"width_mult": float("nan")}, {"width_mult": float("inf")}, {"width_mult": -1.0},
    {"round_nearest": 0}, {"round_nearest": -8}, {"round_nearest": 8.0},
    {"round_nearest": True},
], ids=["nan", "inf", "negative", "round-0", "round-negative", "round-float", "round-bool"])
def test_mobilenet_v2_refuses_bad_numbers_in_one_error(kwargs: dict) -> None:
    (name,) = kwargs
    with pytest.raises(sf.SymflopsError, match=f"mobilenet_v2: {name} must be") as info:
        sf.presets.mobilenet_v2(**kwargs)
    assert info.value.values == kwargs or str(info.value.values[name]) == str(kwargs[name])
