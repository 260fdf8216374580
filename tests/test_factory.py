"""sf.trace_factory: hyperparameters as symbols, derived exactly from traces of a model
constructor (plain-torch mirrors in examples/; torchvision itself is checked in
benchmarks/bench_factory.py, in its own environment)."""

from __future__ import annotations

import math
import random

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from example_models import load_example  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import B, H, L, symbol  # noqa: E402

# left out of the fast lane: trace_factory fits over many concrete traces (10 s here)
pytestmark = pytest.mark.slow

dim = symbol("dim")
C = symbol("C")


load = load_example


vit_example = load("vit")

# the image side is the patch size times the patches per side: H = P*n
VIT_PARAMS = {"image_size": "P*n", "patch_size": "P", "num_layers": "L", "hidden_dim": "dim",
              "mlp_dim": "4*dim", "num_heads": "dim/64"}
P, n = symbol("P"), symbol("n")


@pytest.fixture(scope="module")
def vit():
    """ONE formula for the ViT family in (B, P, n, L, dim)."""
    return sf.trace_factory(vit_example.vit, "B 3 H H", VIT_PARAMS, dims={"H": "P*n"},
                            convention="macs")


def test_vit_formula_is_the_hand_derivation(vit):
    # N = n^2 + 1 tokens (the class token). Per block (MACs): QKV 3*N*dim^2, output
    # projection N*dim^2, Q.K^T and attention.V N^2*dim each, MLP dim->4dim->dim
    # 8*N*dim^2: 12*N*dim^2 + 2*N^2*dim. Patch embedding: n^2 patches, each a 3*P*P dot
    # product per channel: 3*P^2*n^2*dim. Head: 1000*dim (the class token only).
    tokens = n**2 + 1
    hand = B * (3 * P**2 * n**2 * dim + 1000 * dim +
                L * (12 * tokens * dim**2 + 2 * tokens**2 * dim))
    assert sp.expand(vit.macs - hand) == 0


@pytest.mark.parametrize(("P_", "H_", "L_", "dim_", "published"), [
    # torchvision's published _ops ("GFLOPS", i.e. GMACs, three decimals) in
    # torchvision/models/vision_transformer.py: vit_b_16 IMAGENET1K_V1 (224) 17.564,
    # vit_b_16 IMAGENET1K_SWAG_E2E_V1 (384) 55.484, vit_l_16 IMAGENET1K_V1 61.555,
    # vit_b_32 IMAGENET1K_V1 4.409
    (16, 224, 12, 768, 17.564),
    (16, 384, 12, 768, 55.484),
    (16, 224, 24, 1024, 61.555),
    (32, 224, 12, 768, 4.409),
], ids=["vit_b_16-224", "vit_b_16-384", "vit_l_16-224", "vit_b_32-224"])
def test_vit_matches_torchvision_published_ops(vit, P_, H_, L_, dim_, published):
    macs = vit.subs(B=1, P=P_, n=H_ // P_, L=L_, dim=dim_).macs
    assert round(int(macs) / 1e9, 3) == published


def test_vit_blocks_fold_and_the_domain_is_stated(vit):
    assert vit["layers.0"].count == L
    assert len(vit["layers"].children) == 1
    assert sp.Eq(sp.Mod(dim, 64), 0) in vit.validity
    note = vit.notes[-1]
    report = vit.factory
    assert f"DERIVED from {len(report.solved)} traces" in note
    assert f"({report.traces} in all" in note
    assert len(report.verified) == 2
    assert not [p for p in report.verified if p in report.solved]
    assert "verified at 2 further points never used in the solve" in note
    assert report.multiple == {"P": 1, "n": 1, "L": 1, "dim": 64, "B": 1}
    assert report.degrees == {"P": 2, "n": 4, "L": 1, "dim": 2, "B": 1}
    with pytest.raises(sf.SymflopsError, match="Mod"):
        vit.subs(dim=100)
    assert "DERIVED from" in sf.render(vit, "text")


@settings(max_examples=6, deadline=None)
@given(p=st.integers(1, 8), side=st.integers(1, 5), layers=st.integers(1, 3),
       d=st.integers(1, 3), b=st.integers(2, 3))
def test_vit_formula_equals_a_direct_trace(vit, p, side, layers, d, b):
    """At random lattice points (most never traced by the factory), every kind of work
    and the params equal a direct trace of the model built there."""
    model = vit_example.vit(p * side, p, layers, d, 64 * d, 256 * d).to("meta")
    direct = sf.trace(model, f"{b} 3 {p * side} {p * side}", convention="macs")
    got = vit.subs(B=b, P=p, n=side, L=layers, dim=64 * d)
    assert dict(got.work) == dict(direct.work)
    assert got.params == direct.params


class Tied(torch.nn.Module):
    """A position embedding fixes the image size (as ViT's does): image_size is tied to
    the input's H."""

    def __init__(self, image_size: int, width: int) -> None:
        super().__init__()
        self.pos = torch.nn.Parameter(torch.zeros(image_size, image_size))
        self.conv = torch.nn.Conv2d(3, width, 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x + self.pos)


def test_image_size_tied_to_an_input_dim():
    c = sf.trace_factory(Tied, "B 3 H H", {"image_size": "H", "width": "C"},
                         convention="macs")
    # (H/4)^2 outputs per channel, each a 3*4*4 dot product; params H^2 + C*(48 + 1)
    assert sp.expand(c.macs - B * C * 48 * (H / 4) ** 2) == 0
    assert sp.expand(c.params - (H**2 + 49 * C)) == 0
    assert c.factory.multiple["H"] == 4


def mlp(width: int, depth: int) -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(width, width),
                                                     torch.nn.ReLU()) for _ in range(depth)])


def test_mlp_exact_and_folded():
    c = sf.trace_factory(mlp, "B C", {"width": "C", "depth": "L"}, convention="exact")
    # per block: C outputs, each a length-C dot product (C multiplies, C-1 adds) plus a
    # bias add, then a ReLU compare per output: B*C*(2*C + 1) per block
    assert sp.expand(c.flops - L * B * C * (2 * C + 1)) == 0
    assert sp.expand(c.params - L * (C**2 + C)) == 0
    assert [p for p, _ in c.walk()][:2] == ["", "0"]
    assert c["0"].count == L


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
    ({"width": "C"}, None, {"verify_up_to": {"C": 0}}, "verify_up_to"),
    ({"width": "C"}, None, {"verify_up_to": {"C": True}}, "verify_up_to"),
], ids=["not-a-mapping", "code", "float", "fixed-and-varied", "option", "multiples",
        "degree", "verify-up-to-zero", "verify-up-to-bool"])
def test_bad_input_is_one_error(params, fixed, options, match):
    with pytest.raises(sf.SymflopsError, match=match):
        sf.trace_factory(randomized, "B C", params, fixed, **options)


def test_a_failing_constructor_is_one_error():
    def broken(width: int) -> torch.nn.Module:
        raise RuntimeError("no such model")

    with pytest.raises(sf.SymflopsError, match="no such model"):
        sf.trace_factory(broken, "B C", {"width": "C"})


hf_lm = load("hf_lm")
heads, kv, V, F, N = (symbol(s) for s in ("heads", "kv", "V", "F", "N"))


@pytest.mark.slow
def test_gpt2_from_its_config_is_the_closed_form():
    # head dim 64: dim = 64*heads. Batch 2 (a number: halves the traces).
    c = sf.trace_factory(hf_lm.gpt2, {"input_ids": (2, "N")},
                         {"n_embd": "64*heads", "n_head": "heads", "n_layer": "L",
                          "vocab_size": "V"}, {"n_positions": 64}, convention="macs")
    d = 64 * heads
    # MACs per sequence: per block c_attn 3*N*d^2, Q.K^T and attention.V N^2*d each,
    # c_proj N*d^2, MLP d->4d->d 8*N*d^2: 12*N*d^2 + 2*N^2*d; the tied LM head N*d*V
    macs = 2 * (L * (12 * N * d**2 + 2 * N**2 * d) + N * d * V)
    # params: wte V*d, wpe 64*d, per block ln_1 2d + c_attn 3d^2+3d + c_proj d^2+d +
    # ln_2 2d + c_fc 4d^2+4d + c_proj 4d^2+d = 12d^2 + 13d, ln_f 2d; lm_head tied
    params = V * d + 64 * d + L * (12 * d**2 + 13 * d) + 2 * d
    assert sp.expand(c.macs - macs) == 0
    assert sp.expand(c.params - params) == 0
    assert c["transformer.h.0"].count == L


@pytest.mark.slow
def test_llama_with_grouped_query_attention_is_the_closed_form():
    # two query heads per kv head, head dim 64: heads = 2*kv, dim = 64*heads = 128*kv
    c = sf.trace_factory(hf_lm.llama, {"input_ids": (2, "N")},
                         {"hidden_size": "128*kv", "num_attention_heads": "2*kv",
                          "num_key_value_heads": "kv", "num_hidden_layers": "L",
                          "vocab_size": "V", "intermediate_size": "F"}, convention="macs")
    d = 128 * kv
    # MACs per sequence: q_proj and o_proj N*d^2 each, k_proj and v_proj N*d*(d/2) each
    # (kv heads of 64), Q.K^T and attention.V N^2*d each, SwiGLU gate/up/down 3*N*d*F;
    # the untied LM head N*d*V
    macs = 2 * (L * (3 * N * d**2 + 2 * N**2 * d + 3 * N * d * F) + N * d * V)
    # params: embedding and head V*d each; per block q, o d^2, k, v d^2/2, MLP 3*d*F,
    # two RMSNorms d each; the final norm d
    params = 2 * V * d + L * (3 * d**2 + 3 * d * F + 2 * d) + d
    assert sp.expand(c.macs - macs) == 0
    assert sp.expand(c.params - params) == 0
    assert c["model.layers.0"].count == L


MLP_FILE = '''import torch


def mlp(width=8, depth=2):
    return torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
'''


def test_cli_vary_prints_formula_domain_and_verification(tmp_path, capsys, monkeypatch):
    from symflops.cli import main

    (tmp_path / "m.py").write_text(MLP_FILE)
    monkeypatch.chdir(tmp_path)
    assert main(["trace", "m.py:mlp", "--vary", "width=C,depth=L", "--input", "B C",
                 "--convention", "macs"]) == 0
    out = capsys.readouterr().out
    # L blocks of a C x C linear layer: B*C^2*L MACs, L*(C^2 + C) params
    assert "B*C**2*L" in out and "C*L*(C + 1)" in out
    assert "verified at 2 further points never used in the solve" in out
    assert "Valid for" in out
    assert main(["scale", "m.py:mlp", "--vary", "width=C,depth=L", "--input", "B C",
                 "--convention", "macs", "--var", "C", "--range", "64:128:64", "--at",
                 "B=1,L=4"]) == 0
    # 4 layers of 128 x 128 at batch 1: 4 * 128^2 = 65,536 MACs
    assert "65,536" in capsys.readouterr().out


@pytest.mark.parametrize(("vary", "match"), [
    ("width=C,depth", "each item is ARGUMENT=EXPRESSION"),
    ("width=C,width=D", "given twice"),
    ("", "give ARGUMENT=EXPRESSION pairs"),
], ids=["no-expression", "twice", "empty"])
def test_cli_vary_bad_input_is_one_error(vary, match):
    from symflops.targets import parse_vary

    with pytest.raises(sf.SymflopsError, match=match):
        parse_vary(vary)


resnet_example = load("resnet")


def test_resnet_depth_and_width_match_torchvision_published_ops():
    c = sf.trace_factory(resnet_example.resnet, "1 3 224 224",
                         {"layers": [3, 4, "L3", 3], "width_per_group": "64*w"},
                         convention="macs")
    L3 = symbol("L3")
    # stage 3's first block (stride 2, downsample) stays; its other L3 - 1 fold into one
    assert c["layer3.1"].count == L3 - 1
    assert sp.Ge(L3, 2) in c.validity
    # torchvision's published _ops (GMACs) and num_params (torchvision/models/resnet.py):
    # resnet50 4.089 / 25,557,032; resnet101 7.801 / 44,549,160;
    # wide_resnet50_2 11.398 / 68,883,240; wide_resnet101_2 22.753 / 126,886,696
    for l3, width, ops, params in [(6, 1, 4.089, 25_557_032), (23, 1, 7.801, 44_549_160),
                                   (6, 2, 11.398, 68_883_240), (23, 2, 22.753, 126_886_696)]:
        at = c.subs(L3=l3, w=width)
        assert round(int(at.macs) / 1e9, 3) == ops
        assert at.params == params


mobilenet_example = load("mobilenet")


def test_mobilenet_width_mult_rounding_refused_off_its_lattice():
    # width_mult = w/8 on multiples of 4 (width_mult 1/2, 1, 3/2, ...): make_divisible
    # rounds 24*width_mult to a multiple of 8, exact only for integer width_mult
    with pytest.raises(sf.SymflopsError, match="not a polynomial in w") as e:
        sf.trace_factory(mobilenet_example.mobilenet_v2, "1 3 224 224",
                         {"width_mult": "w/8"}, multiples={"w": 4}, max_degree=2,
                         convention="macs")
    assert "make_divisible" in str(e.value)


def test_mobilenet_exact_on_the_lattice_of_whole_width_multipliers():
    c = sf.trace_factory(mobilenet_example.mobilenet_v2, "1 3 224 224",
                         {"width_mult": "w/8"}, multiples={"w": 8}, convention="macs")
    # the lattice, and the largest width multiplier the far checks traced (w = 65536)
    assert c.validity == (sp.Eq(sp.Mod(symbol("w"), 8), 0), sp.Le(symbol("w"), 65536))
    # torchvision's mobilenet_v2 (IMAGENET1K_V1): _ops 0.301 GMACs, num_params 3,504,872
    at = c.subs(w=8)
    assert round(int(at.macs) / 1e9, 3) == 0.301 and at.params == 3_504_872
