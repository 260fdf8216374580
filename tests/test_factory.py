"""sf.trace_factory: hyperparameters as symbols, derived exactly from traces of a model
constructor (plain-torch mirrors in examples/; torchvision itself is checked in
benchmarks/bench_factory.py, in its own environment)."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.symbols import B, H, L, symbol  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
dim = symbol("dim")
C = symbol("C")


def load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


vit_example = load("vit")

VIT_PARAMS = {"image_size": "H", "num_layers": "L", "hidden_dim": "dim", "mlp_dim": "4*dim",
              "num_heads": "dim/64"}


@pytest.fixture(scope="module")
def vit16():
    """ONE formula for the patch-16 ViT family in (B, H, L, dim)."""
    return sf.trace_factory(vit_example.vit, "B 3 H H", VIT_PARAMS, {"patch_size": 16},
                            convention="macs")


def test_vit_formula_is_the_hand_derivation(vit16):
    # N = (H/16)^2 + 1 tokens (the class token). Per block (MACs): QKV 3*N*dim^2, output
    # projection N*dim^2, Q.K^T and attention.V N^2*dim each, MLP dim->4dim->dim
    # 8*N*dim^2: 12*N*dim^2 + 2*N^2*dim. Patch embedding: (H/16)^2 patches, each a
    # 3*16*16 dot product per channel: 3*H^2*dim. Head: 1000*dim (class token only).
    n = (H / 16) ** 2 + 1
    hand = B * (3 * H**2 * dim + 1000 * dim + L * (12 * n * dim**2 + 2 * n**2 * dim))
    assert sp.expand(vit16.macs - hand) == 0


@pytest.mark.parametrize(("H_", "L_", "dim_", "published"), [
    # torchvision's published _ops ("GFLOPS", i.e. GMACs) of vit_b_16 (IMAGENET1K_V1,
    # 224), vit_b_16 (IMAGENET1K_SWAG_E2E_V1, 384) and vit_l_16 (IMAGENET1K_V1, 224):
    # 17.564, 55.484 and 61.555 at three decimals (torchvision/models/vision_transformer.py)
    (224, 12, 768, 17.564),
    (384, 12, 768, 55.484),
    (224, 24, 1024, 61.555),
], ids=["vit_b_16-224", "vit_b_16-384", "vit_l_16-224"])
def test_vit_matches_torchvision_published_ops(vit16, H_, L_, dim_, published):
    macs = vit16.subs(B=1, H=H_, L=L_, dim=dim_).macs
    assert round(int(macs) / 1e9, 3) == published


def test_vit_blocks_fold_and_the_domain_is_stated(vit16):
    assert vit16["layers.0"].count == L
    assert len(vit16["layers"].children) == 1
    assert sp.Eq(sp.Mod(H, 16), 0) in vit16.validity
    assert sp.Eq(sp.Mod(dim, 64), 0) in vit16.validity
    note = vit16.notes[-1]
    report = vit16.factory
    assert f"DERIVED from {report.traces} traces" in note
    assert "verified at 2 further points never used in the solve" in note
    assert report.multiple == {"H": 16, "L": 1, "dim": 64, "B": 1}
    assert report.degrees == {"H": 4, "L": 1, "dim": 2, "B": 1}
    with pytest.raises(sf.SymflopsError, match="Mod"):
        vit16.subs(H=100)
    text = sf.render(vit16, "text")
    assert "DERIVED from" in text


@settings(max_examples=6, deadline=None)
@given(h=st.integers(1, 6), layers=st.integers(1, 3), d=st.integers(1, 3),
       b=st.integers(2, 3))
def test_vit_formula_equals_a_direct_trace(vit16, h, layers, d, b):
    """At random lattice points (most never traced by the factory), every kind of work
    and the params equal a direct trace of the model built there."""
    model = vit_example.vit(16 * h, 16, layers, d, 64 * d, 256 * d).to("meta")
    direct = sf.trace(model, f"{b} 3 {16 * h} {16 * h}", convention="macs")
    got = vit16.subs(B=b, H=16 * h, L=layers, dim=64 * d)
    assert dict(got.work) == dict(direct.work)
    assert got.params == direct.params


def mlp(width: int, depth: int) -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(width, width),
                                                     torch.nn.ReLU()) for _ in range(depth)])


def patchify(channels: int, depth: int, stride: int = 4) -> torch.nn.Module:
    layers = [torch.nn.Conv2d(3, channels, stride, stride)]
    layers += [torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(depth)]
    return torch.nn.Sequential(*layers)


def test_mlp_exact_and_folded():
    c = sf.trace_factory(mlp, "B C", {"width": "C", "depth": "L"}, convention="exact")
    # per block: C outputs, each a length-C dot product (C multiplies, C-1 adds) plus a
    # bias add, then a ReLU compare per output: B*C*(2*C + 1) per block
    assert sp.expand(c.flops - L * B * C * (2 * C + 1)) == 0
    assert sp.expand(c.params - L * (C**2 + C)) == 0
    assert [p for p, _ in c.walk()][:2] == ["", "0"]
    assert c["0"].count == L


def test_lattice_of_an_input_dim_is_discovered():
    # a stride-4 patchify conv: floor(H/4) resolves only on multiples of 4;
    # MACs 3*16*C*(H/4)^2 + depth * 9*C^2*(H/4)^2 per image
    c = sf.trace_factory(patchify, "B 3 H H", {"channels": "C", "depth": "L"},
                         convention="macs")
    assert c.factory.multiple["H"] == 4
    assert sp.Eq(sp.Mod(H, 4), 0) in c.validity
    hand = B * (3 * 16 * C * (H / 4) ** 2 + L * 9 * C**2 * (H / 4) ** 2)
    assert sp.expand(c.macs - hand) == 0


def rounded(width: int) -> torch.nn.Module:
    """Deliberately not polynomial on any lattice: the hidden width is isqrt(width)."""
    return torch.nn.Sequential(torch.nn.Linear(width, math.isqrt(width)))


def test_a_non_polynomial_factory_is_refused_with_the_reason():
    with pytest.raises(sf.SymflopsError, match="not a polynomial in C on any lattice") as e:
        sf.trace_factory(rounded, "2 C", {"width": "C"}, max_degree=1)
    assert "make_divisible" in str(e.value) and "\n" not in str(e.value)


def randomized(width: int) -> torch.nn.Module:
    torch.randn(3)  # a constructor that draws from every RNG
    random.random()
    return torch.nn.Linear(width, width)


def test_rngs_and_a_given_model_are_untouched():
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    c = sf.trace_factory(randomized, "B C", {"width": "C"}, convention="macs")
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    assert c.macs == B * C**2


@pytest.mark.parametrize(("params", "fixed", "options", "match"), [
    ("C", None, {}, "params must map"),
    ({"width": "__import__('os')"}, None, {}, "cannot parse"),
    ({"width": 2.5}, None, {}, "expression of size symbols"),
    ({"width": "C"}, {"width": 3}, {}, "both varied and fixed"),
    ({"width": "C"}, None, {"colour": 1}, "unknown trace options"),
    ({"width": "C"}, None, {"multiples": {"Q": 2}}, "multiples"),
    ({"width": "C"}, None, {"max_degree": 0}, "max_degree"),
], ids=["not-a-mapping", "code", "float", "fixed-and-varied", "option", "multiples",
        "degree"])
def test_bad_input_is_one_error(params, fixed, options, match):
    with pytest.raises(sf.SymflopsError, match=match):
        sf.trace_factory(randomized, "B C", params, fixed, **options)


def test_a_failing_constructor_is_one_error():
    def broken(width: int) -> torch.nn.Module:
        raise RuntimeError("no such model")

    with pytest.raises(sf.SymflopsError, match="no such model"):
        sf.trace_factory(broken, "B C", {"width": "C"})
