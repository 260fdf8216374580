"""sf.trace_factory answers only where it verified: branches in a constructor far above the
solve points (``max(16, w)``, ``make_divisible``, ``heads = dim // 64``, ``w if w <= 100
else 2*w``, ``if width > 256``) become a Piecewise or a refusal naming the threshold, the
domain stops at the largest value the far checks traced, and the lattice of an image
size is found without ``multiples=``."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from example_models import load_example  # noqa: E402
from torch import nn  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.symbols import symbol  # noqa: E402

C, B, H = symbol("C"), symbol("B"), symbol("H")


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's rounding of widths (models/_utils.py)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def widest(width: int) -> nn.Module:
    h = max(16, width)
    return nn.Sequential(nn.Linear(width, h), nn.Linear(h, width))


def rounded(width: int) -> nn.Module:
    h = make_divisible(width * 1.5)
    return nn.Sequential(nn.Linear(width, h), nn.Linear(h, width))


class Heads(nn.Module):
    """Attention with a head per 64 channels and a fixed head width: heads * 64 inner
    channels (= width only on multiples of 64)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        inner = max(1, width // 64) * 64
        self.qkv = nn.Linear(width, 3 * inner)
        self.out = nn.Linear(inner, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.out((q @ k.transpose(-1, -2)) @ v)


def heads(width: int) -> nn.Module:
    return Heads(width)


def doubled(width: int) -> nn.Module:
    hidden = width if width <= 100 else 2 * width
    return nn.Sequential(nn.Linear(width, hidden), nn.Linear(hidden, width))


def deeper(width: int) -> nn.Module:
    layers = [nn.Linear(width, width)]
    if width > 256:
        layers.append(nn.Linear(width, width))
    return nn.Sequential(*layers)


FACTORIES = {"max": (widest, "B C"), "make_divisible": (rounded, "B C"),
             "heads": (heads, "B 3 C"), "hidden": (doubled, "B C"), "if": (deeper, "B C")}


def direct(make, inputs: str, width: int, batch: int) -> sf.Cost:
    """The model built at ``width`` and traced at concrete sizes (meta device)."""
    with torch.device("meta"):
        model = make(width)
    return sf.trace(model, inputs.replace("B", str(batch)).replace("C", str(width)),
                    convention="macs", warn=False)


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def branch(request):
    make, inputs = FACTORIES[request.param]
    try:
        cost = sf.trace_factory(make, inputs, {"width": "C"}, convention="macs")
    except sf.SymflopsError as e:
        return request.param, make, inputs, e
    return request.param, make, inputs, cost


@pytest.mark.slow  # each traces several factories at many sizes (10-45 s)
def test_each_branch_is_a_piecewise_or_refused_at_its_threshold(branch):
    name, make, inputs, got = branch
    assert not isinstance(got, sf.SymflopsError), str(got)
    findings = got.factory.findings
    if name == "make_divisible":
        # one polynomial on the lattice where the rounding is exact: 1.5 * C a multiple
        # of 8 needs C a multiple of 16; hidden 3C/2, so 3*B*C^2 MACs. Off the lattice
        # the first change is at 23 -> 24 (make_divisible(34.5) = 32, (36) = 40)
        assert got.factory.multiple["C"] == 16 and len(got.factory.pieces) == 1
        assert sp.expand(got.macs - 3 * B * C**2) == 0
        assert "C must be a multiple of 16" in findings[0]
        assert "between width=23 and width=24" in findings[0]
    elif name == "heads":
        # inner = 64 * (C // 64) = C only on multiples of 64: that lattice, one polynomial
        # (qkv 3*C^2 and out C^2 per row, Q.K^T and attention.V 3*C each, 3 rows)
        assert got.factory.multiple["C"] == 64 and len(got.factory.pieces) == 1
        assert sp.expand(got.macs - B * (12 * C**2 + 18 * C)) == 0
        assert "C must be a multiple of 64" in findings[0]
    else:
        assert got.macs.has(sp.Piecewise) or any(c.has(sp.Or) for c in got.validity), name
        assert len(got.factory.pieces) >= 2
        assert "changes shape between" in findings[0]
    rng = random.Random(17)
    for piece in got.factory.pieces:
        low, high, m = piece["C"]
        # far points in every piece: its ends and random values in it (on its lattice)
        for width in {low, high, *(m * rng.randint(-(-low // m), high // m) for _ in range(3))}:
            batch = rng.randint(2, 9)
            want = direct(make, inputs, width, batch)
            at = got.subs(B=batch, C=width)
            assert at.macs == want.macs, (name, width)
            assert at.params == want.params, (name, width)


@pytest.mark.parametrize(("make", "threshold"), [(widest, 16), (doubled, 100), (deeper, 256)],
                         ids=["max", "hidden", "if"])
def test_the_threshold_is_exact(make, threshold):
    c = sf.trace_factory(make, "B C", {"width": "C"}, convention="macs")
    assert f"between width={threshold} and width={threshold + 1}" in c.factory.findings[0]
    if make is widest:
        assert c.subs(B=1, C=100).macs == 20_000
    # the figure for max(16, width) at C = 100: 2 * 100 * 100 = 20,000 MACs per
    # row, not the 32 * 100 = 3,200 a formula from small widths gives
    assert c.subs(B=1, C=100).macs == direct(make, "B C", 100, 1).macs
    widths = [1, threshold, threshold + 1, 1000, 65536]
    assert c.evaluate("macs", B=1, C=np.array(widths)).tolist() == \
        [int(direct(make, "B C", w, 1).macs) for w in widths]


def test_the_domain_stops_where_the_checks_stopped():
    def mlp(width: int, depth: int) -> nn.Module:
        return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    c = sf.trace_factory(mlp, "B C", {"width": "C", "depth": "L"}, convention="macs")
    L = symbol("L")
    top = c.factory.upper
    assert top == {"C": 65536, "L": 128, "B": 65536}
    assert sp.Le(C, 65536) in c.validity and sp.Le(L, 128) in c.validity
    assert "verified up to C = 65536, L = 128" in c.notes[-1]
    assert "C >= 1" not in c.notes[-1]
    # 128 layers of 65536 x 65536 at batch 3: 3 * 128 * 65536^2
    assert c.subs(B=3, C=65536, L=128).macs == 3 * 128 * 65536**2
    with pytest.raises(sf.SymflopsError, match="L <= 128"):
        c.subs(L=129)
    with pytest.raises(sf.SymflopsError, match="C <= 65536"):
        c.subs(B=1, C=65537, L=2)
    with pytest.raises(sf.SymflopsError, match="C <= 65536"):
        c.evaluate("macs", B=1, C=np.array([64, 65537]), L=2)
    assert c.evaluate("macs", B=1, C=np.array([64, 65536]), L=2).tolist() == \
        [2 * 64**2, 2 * 65536**2]
    # far points were traced, never used in the solve
    assert max(p["C"] for p in c.factory.far) == 65536
    assert not [p for p in c.factory.far if p in c.factory.solved]


def test_verify_up_to_bounds_the_domain_and_is_checked():
    c = sf.trace_factory(doubled, "B C", {"width": "C"}, convention="macs",
                         verify_up_to={"C": 100})
    # w <= 100 throughout: two C x C layers, no branch seen
    assert sp.expand(c.macs - 2 * B * C**2) == 0 and len(c.factory.pieces) == 1
    with pytest.raises(sf.SymflopsError, match="C <= 100"):
        c.subs(C=101)
    with pytest.raises(sf.SymflopsError, match="verify_up_to"):
        sf.trace_factory(doubled, "B C", {"width": "C"}, verify_up_to={"Q": 3})


vit_example = load_example("vit")


@pytest.mark.slow
def test_vit_image_size_lattice_found_without_multiples():
    c = sf.trace_factory(vit_example.vit, "B 3 H H", {"image_size": "H"},
                         {"patch_size": 16, "num_layers": 1, "num_heads": 1,
                          "hidden_dim": 64, "mlp_dim": 128}, convention="macs")
    assert c.factory.multiple["H"] == 16
    assert sp.Eq(sp.Mod(H, 16), 0) in c.validity
    assert "H a multiple of 16" in c.notes[-1]
    # at 384 (576 patches + the class token): equal to a direct trace
    with torch.device("meta"):
        model = vit_example.vit(384, 16, 1, 1, 64, 128)
    assert c.subs(B=1, H=384).macs == sf.trace(model, "1 3 384 384", convention="macs",
                                               warn=False).macs


hf_lm = load_example("hf_lm")


@pytest.mark.slow
def test_more_kv_heads_than_heads_names_the_real_error():
    pytest.importorskip("transformers")
    with pytest.raises(sf.SymflopsError) as e:
        sf.trace_factory(hf_lm.llama, {"input_ids": (2, "N")},
                         {"hidden_size": "128*kv", "num_attention_heads": "kv",
                          "num_key_value_heads": "2*kv", "num_hidden_layers": "L",
                          "vocab_size": "V", "intermediate_size": "F"}, convention="macs")
    text = str(e.value)
    assert "forward raised RuntimeError" in text
    assert "polynomial" not in text and "make_divisible" not in text
    assert "symbolic shapes" not in text


_FORMULAS: dict[str, sf.Cost] = {}


def _formula(name: str) -> sf.Cost:
    if name not in _FORMULAS:
        make, inputs = FACTORIES[name]
        _FORMULAS[name] = sf.trace_factory(make, inputs, {"width": "C"}, convention="macs")
    return _FORMULAS[name]


def _inside(cost: sf.Cost, values: dict[str, int]) -> bool:
    subs = {symbol(k): v for k, v in values.items()}
    return all(bool(c.xreplace(subs)) for c in cost.validity)


@pytest.mark.slow  # each traces several factories at many sizes (10-45 s)
@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(FACTORIES)),
       width=st.one_of(st.integers(1, 400), st.integers(1, 70000), st.sampled_from(
           [16, 17, 100, 101, 256, 257, 64 * 1024, 65536, 65537])),
       batch=st.one_of(st.integers(2, 9), st.integers(2, 70000)))
def test_inside_the_domain_equals_a_direct_count_outside_an_error(name, width, batch):
    """At random points of every branchy factory: inside the stated domain the formula
    equals FlopCounterMode on meta (torch's 2 FLOPs per MAC); outside, a SymflopsError."""
    from torch.utils.flop_counter import FlopCounterMode

    cost = _formula(name)
    make, inputs = FACTORIES[name]
    if not _inside(cost, {"B": batch, "C": width}):
        with pytest.raises(sf.SymflopsError):
            cost.subs(B=batch, C=width)
        return
    model = _built(make, width)
    x = torch.empty(*[batch if d == "B" else width if d == "C" else int(d)
                      for d in inputs.split()], device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert 2 * cost.subs(B=batch, C=width).macs == counter.get_total_flops()


def activated(width: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(width, width)]
    if width > 300:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def test_a_module_on_one_side_only_is_counted_zero_on_the_other():
    c = sf.trace_factory(activated, "B C", {"width": "C"})
    relu = c["1"]
    assert relu.layer == "ReLU" and relu.count.has(sp.Piecewise)
    # one compare per output above 300: B*C*(2*C) + B*C; below, the Linear alone
    for width in (1, 7, 300, 301, 4096, 65536):
        want = direct(activated, "B C", width, 3)
        assert c.subs(B=3, C=width).macs == want.macs
        assert c.with_convention("exact").subs(B=3, C=width).flops == \
            sf.trace(_built(activated, width), f"3 {width}", warn=False).flops


def _built(make, width: int) -> nn.Module:
    with torch.device("meta"):
        return make(width)


def swapped(width: int) -> nn.Module:
    act = nn.ReLU() if width <= 300 else nn.GELU()
    return nn.Sequential(nn.Linear(width, width), act)


def test_a_branch_swapping_a_module_is_refused_naming_the_argument_and_threshold():
    # module 1 is a ReLU up to 300 and a GELU above: no one tree carries both pieces,
    # and no coarser lattice of C removes the branch
    with pytest.raises(sf.SymflopsError) as e:
        sf.trace_factory(swapped, "B C", {"width": "C"})
    text = str(e.value)
    assert "the cost changes shape between width=300 and width=301" in text
    assert "GELU: 0 -> 1" in text and "verify_up_to={'C': 300}" in text
    # below the threshold, the formula is there when asked for: C outputs of a length-C
    # dot product (C multiplies, C - 1 adds) plus a bias add, then a compare, per row
    c = sf.trace_factory(swapped, "B C", {"width": "C"}, verify_up_to={"C": 300})
    assert sp.expand(c.flops - (2 * B * C**2 + B * C)) == 0
    assert sp.Le(C, 300) in c.validity
    with pytest.raises(sf.SymflopsError, match="C <= 300"):
        c.subs(B=1, C=301)


def test_a_far_build_that_allocates_real_memory_fails_instead_of_exhausting_it():
    """A constructor that allocates with numpy (a position table of side^2 x dim) at a far
    size gets MemoryError under the guard, a point the factory cannot trace; the
    address-space limit is put back afterwards."""
    import resource

    from symflops.tracing._sampling import _meminfo, memory_guard

    before = resource.getrlimit(resource.RLIMIT_AS)
    available = _meminfo("/proc/meminfo", "MemAvailable")
    with memory_guard():
        assert resource.getrlimit(resource.RLIMIT_AS)[0] != before[0]
        with pytest.raises(MemoryError):
            np.empty(available, dtype=np.uint8)  # more than the guard leaves free
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def blocks(width: int, depth: int) -> nn.Module:
    """L blocks whose hidden width doubles above 100: the branch inside a folded block."""
    hidden = width if width <= 100 else 2 * width
    return nn.Sequential(*[nn.Sequential(nn.Linear(width, hidden), nn.Linear(hidden, width))
                           for _ in range(depth)])


class Headed(nn.Module):
    """A depth branch: the head's width doubles above 50 blocks."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])
        self.head = nn.Linear(width, 10 if depth <= 50 else 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.mark.slow  # each traces several factories at many sizes (10-45 s)
@pytest.mark.parametrize(("make", "branch"), [(blocks, "width=100 and width=101"),
                                              (Headed, "depth=50 and depth=51")],
                         ids=["width-in-blocks", "depth"])
def test_branches_with_a_depth_are_exact_at_random_far_points(make, branch):
    c = sf.trace_factory(make, "B C", {"width": "C", "depth": "L"}, convention="macs")
    assert branch in c.factory.findings[0]
    assert c.factory.upper["L"] == 128
    rng = random.Random(5)
    points = [(rng.choice([rng.randint(1, 200), rng.randint(1, 65536)]), rng.randint(2, 60))
              for _ in range(5)] + [(65536, 128), (101, 51)]
    for width, depth in points:
        if not all(bool(v.xreplace({C: width, symbol("L"): depth, B: 3}))
                   for v in c.validity):
            continue
        with torch.device("meta"):
            model = make(width, depth)
        want = sf.trace(model, f"3 {width}", convention="macs", warn=False)
        at = c.subs(B=3, C=width, L=depth)
        assert (at.macs, at.params) == (want.macs, want.params), (width, depth)


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, max(1, dim // 64), batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.slow
def test_heads_from_the_width_find_the_lattice_where_the_model_builds():
    # nn.MultiheadAttention(dim, dim // 64) builds only where the heads divide dim; the
    # pieces on multiples of 1, 2, 3 a small search finds give way to multiples of 64
    c = sf.trace_factory(Attention, "B 5 C", {"dim": "C"}, convention="macs")
    assert c.factory.multiple["C"] == 64 and len(c.factory.pieces) == 1
    assert "C must be a multiple of 64" in c.factory.findings[0]
    assert sp.Le(C, 65536) in c.validity
    for dim in (64, 128, 192, 768, 5120, 65536):
        with torch.device("meta"):
            model = Attention(dim)
        want = sf.trace(model, f"2 5 {dim}", convention="macs", warn=False)
        at = c.subs(B=2, C=dim)
        assert (at.macs, at.params) == (want.macs, want.params), dim
    with pytest.raises(sf.SymflopsError, match="multiple of 64"):
        c.subs(B=2, C=200)
