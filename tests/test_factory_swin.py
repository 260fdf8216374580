"""sf.trace_factory on Swin (image size as a symbol, exact in the convention's kinds) and
EfficientNet compound scaling (plain-torch mirrors in examples/, checked against
torchvision's published figures; torchvision itself is not imported)."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from example_models import load_example  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import H  # noqa: E402

# left out of the fast lane: trace_factory over the Swin family (6 s here)
pytestmark = pytest.mark.slow

load = load_example


swin_mirror = load("swin_mirror")

# patch 2, embed 16, depths [2, 2], heads [1, 2], window 2, 10 classes: fast traces
TINY = {"patch_size": 2, "embed_dim": 16, "depths": (2, 2), "num_heads": (1, 2),
        "window_size": 2, "num_classes": 10}


def swin_macs(side, patch, embed, depths, window, classes):
    """Swin's MACs by hand. Stage i works on d = embed*2^i channels and T = (side/(patch
    2^i))^2 tokens (no padding: side a multiple of patch*2^(stages-1)*window). A block:
    QKV 3d^2 T, output projection d^2 T, MLP d -> 4d -> d 8d^2 T, and in each window of
    n = window^2 tokens Q.K^T and attention.V n*d per token each: 12d^2 T + 2 n d T
    (the shift mask and the relative position bias are adds, no MACs). Patch merging:
    4d -> 2d on T/4 tokens: 2d^2 T. Stem: a patch*patch conv from 3 channels, 3 patch^2
    embed T_0. Head: the last d times the classes."""
    total = 3 * patch**2 * embed * (side // patch) ** 2
    for i, depth in enumerate(depths):
        d, tokens = embed * 2**i, (side // (patch * 2**i)) ** 2
        total += depth * (12 * d**2 * tokens + 2 * window**2 * d * tokens)
        if i < len(depths) - 1:
            total += 2 * d**2 * tokens
    return total + embed * 2 ** (len(depths) - 1) * classes


@pytest.fixture(scope="module")
def tiny():
    """The tiny Swin's MACs in H, fitted in the macs convention's kind alone."""
    return sf.trace_factory(swin_mirror.swin, "1 3 H H", {"image_size": "H"}, fixed=TINY,
                            convention="macs", weighed_only=True, multiples={"H": 8})


@pytest.fixture(scope="module")
def swin_family():
    """ONE formula for swin_t and swin_s: H and stage 3's depth 2L (the blocks come in
    shifted/unshifted pairs), embed 96, heads [3, 6, 12, 24], window 7, patch 4."""
    return sf.trace_factory(swin_mirror.swin, "1 3 H H",
                            {"image_size": "H", "depths": [2, 2, "2*L", 2]},
                            convention="macs", weighed_only=True, multiples={"H": 224})


def test_tiny_formula_is_the_hand_derivation(tiny):
    # swin_macs with side H: T_0 = H^2/4; per T_0: stem 192, stage 1 2*(12*256 + 2*4*16)
    # = 6400, merging 2*256 = 512, stage 2 (T_0/4 tokens) 2*(12*1024 + 2*4*32)/4 = 6272:
    # 13376/4 = 3344 H^2, plus the head 32*10 = 320
    assert sp.expand(tiny.macs - (3344 * H**2 + 320)) == 0
    # the lattice, and the largest side the far checks traced
    assert tiny.validity == (sp.Eq(sp.Mod(H, 8), 0), sp.Le(H, 65536))


@pytest.mark.parametrize("side", [8, 56, 120], ids=["window-covers-map", "H56", "H120"])
def test_tiny_formula_equals_a_direct_trace(tiny, side):
    # 8: the last stage's 2x2 map is one window, the shift is off (the point the fit
    # starts from); 56 and 120 were used neither in the solve nor in the checks
    with torch.device("meta"):
        model = swin_mirror.swin(side, **TINY)
    direct = sf.trace(model, [(1, 3, side, side)], convention="macs")
    assert tiny.subs(H=side).macs == direct.macs == swin_macs(side, 2, 16, (2, 2), 2, 10)
    assert tiny.params == direct.params


def test_partial_formula_says_so_and_refuses_other_conventions(tiny):
    assert tiny.factory.kinds == ("matmul_mul",)
    assert "Only the kinds of work matmul_mul were fitted" in tiny.notes[-1]
    # torch weighs matmul_mul alone (2 per MAC): allowed
    assert sp.expand(tiny.with_convention("torch").flops - 2 * tiny.macs) == 0
    for node in (tiny, tiny["features"]):
        with pytest.raises(sf.SymflopsError, match="fitted for the macs convention only"):
            node.with_convention("exact")


def test_weighed_only_must_be_a_bool():
    with pytest.raises(sf.SymflopsError, match="weighed_only must be True or False"):
        sf.trace_factory(swin_mirror.swin, "1 3 H H", {"image_size": "H"}, fixed=TINY,
                         convention="macs", weighed_only="yes")


def test_weighed_only_is_needed_for_the_exact_cost_at_the_window_size():
    # in the exact convention the shift mask's adds appear only when the window does not
    # cover the last map (H >= 16 here), so the formula starts from there
    c = sf.trace_factory(swin_mirror.swin, "1 3 H H", {"image_size": "H"}, fixed=TINY,
                         multiples={"H": 8})
    assert c.factory.start == {"H": 16} and c.factory.kinds == ()
    assert sp.Ge(H, 16) in c.validity
    with pytest.raises(sf.SymflopsError, match="H >= 16"):
        c.subs(H=8)


@pytest.mark.slow
@pytest.mark.parametrize(("depth", "published_gmacs", "published_params"), [
    # torchvision docs (models/swin_transformer.py, Swin_T_Weights.IMAGENET1K_V1 meta):
    # "_ops": 4.491 (GFLOPS, i.e. GMACs), "num_params": 28288354
    (3, "4.491", 28_288_354),
    # Swin_S_Weights.IMAGENET1K_V1: "_ops": 8.741, "num_params": 49606258
    (9, "8.741", 49_606_258),
], ids=["swin_t", "swin_s"])
def test_swin_family_gives_the_published_figures(swin_family, depth, published_gmacs,
                                                 published_params):
    at = swin_family.subs(H=224, L=depth)
    assert at.macs == swin_macs(224, 4, 96, (2, 2, 2 * depth, 2), 7, 1000)
    assert f"{int(at.macs) / 10**9:.3f}" == published_gmacs
    assert at.params == published_params


@pytest.mark.slow
def test_swin_family_is_the_hand_derivation(swin_family):
    # swin_macs is a polynomial in side^2 and the depth: check at points off the fit
    for side, depth in [(1568, 5), (224 * 9, 2)]:
        assert swin_family.subs(H=side, L=depth).macs == swin_macs(
            side, 4, 96, (2, 2, 2 * depth, 2), 7, 1000)
    assert swin_family.factory.degrees == {"H": 2, "L": 1}


efficientnet = load("efficientnet")


def test_efficientnet_b0_published_figures():
    # torchvision docs (models/efficientnet.py, EfficientNet_B0_Weights.IMAGENET1K_V1
    # meta): "num_params": 5288548, "_ops": 0.386 (GFLOPS, i.e. GMACs) at 224
    with torch.device("meta"):
        model = efficientnet.efficientnet_b0()
    direct = sf.trace(model, [(1, 3, 224, 224)], convention="macs")
    assert direct.params == 5_288_548
    assert f"{int(direct.macs) / 10**9:.3f}" == "0.386"


@pytest.mark.parametrize(("width", "want"), [
    # make_divisible(v, 8): the nearest multiple of 8, at least 8, never under 0.9 v
    (32 * 0.25, 8), (16 * 0.25, 8), (24 * 1.1, 24), (40 * 1.1, 48), (52, 56), (320 * 2, 640),
], ids=["32x0.25", "floor-8", "24x1.1", "40x1.1-up", "half-up", "320x2"])
def test_make_divisible_is_torchvisions(width, want):
    assert efficientnet.make_divisible(width) == want


def test_efficientnet_fractional_width_is_refused_naming_the_rounding():
    # width_mult = w/4 on every integer w: make_divisible rounds 16*w/4 = 4w to a
    # multiple of 8, so the channel counts (and the MACs) are piecewise in w
    with pytest.raises(sf.SymflopsError, match=r"not a polynomial in w.*make_divisible"):
        sf.trace_factory(efficientnet.efficientnet, "1 3 64 64", {"width_mult": "w/4"},
                         convention="macs", multiples={"w": 1}, max_degree=2)
