"""Property tests: for random small conv/linear/matmul/attention networks, the traced
formula under convention "torch", substituted, equals FlopCounterMode's count on real
tensors at that size; under "macs" it is half of it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def flop_counter(model, *args):
    # the MATH backend turns SDPA into bmm's, which FlopCounterMode counts; its CPU fused
    # kernel (and nn.MultiheadAttention's fast path) count 0 in FlopCounterMode
    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):
        model(*args)
    return fc.get_total_flops()


def check(model, spec, sizes_list, shapes):
    c = sf.trace(model, spec, convention="torch", warn=False)
    assert not c.report.unknown
    macs = c.with_convention("macs")
    compared = 0
    for sizes in sizes_list:
        args = [torch.randn(*[sizes.get(d, d) if isinstance(d, str) else d for d in s])
                for s in shapes]
        try:
            ref = flop_counter(model, *args)
        except RuntimeError:  # the size is too small for this net: nothing to compare
            continue
        got = c.subs(**sizes).flops
        assert got == ref, (sizes, got, ref)
        assert 2 * macs.subs(**sizes).flops == ref
        compared += 1
    assume(compared > 0)


# ----------------------------------------------------------------------------- conv nets
@st.composite
def conv_nets(draw):
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    tconv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
    layers: list[nn.Module] = []
    c = draw(st.sampled_from([1, 2, 3, 4]))
    cin = c
    for _ in range(draw(st.integers(1, 3))):
        groups = draw(st.sampled_from([1, 1, 2]))
        cout = draw(st.sampled_from([2, 4, 6]))
        if cin % groups:
            groups = 1
        k = draw(st.integers(1, 3))
        if draw(st.booleans()) and dims != 3:
            layers.append(tconv(cin, cout, k, stride=draw(st.integers(1, 2)),
                                padding=0, groups=groups, bias=draw(st.booleans())))
        else:
            layers.append(conv(cin, cout, k, stride=draw(st.integers(1, 2)),
                               padding=draw(st.integers(0, 1)),
                               dilation=draw(st.integers(1, 2)), groups=groups,
                               bias=draw(st.booleans())))
        cin = cout
        extra = draw(st.sampled_from(["none", "relu", "bn", "pool"]))
        if extra == "relu":
            layers.append(nn.ReLU())
        elif extra == "bn":
            layers.append({1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](cin))
        elif extra == "pool" and dims == 2:
            layers.append(nn.MaxPool2d(2))
    names = {1: ["T"], 2: ["H", "W"], 3: ["D", "H", "W"]}[dims]
    sizes = [draw(st.fixed_dictionaries({"B": st.integers(1, 3),
                                         **{n: st.integers(6, 14) for n in names}}))
             for _ in range(2)]
    return nn.Sequential(*layers).eval(), ("B", c, *names), sizes


@SETTINGS
@given(conv_nets())
def test_conv_nets_match_flop_counter(case):
    model, spec, sizes = case
    with torch.no_grad():
        check(model, spec, sizes, [spec])


# ------------------------------------------------------------- linear / matmul / attention
class AttnNet(nn.Module):
    def __init__(self, dim, heads, kind, causal, bias):
        super().__init__()
        self.heads, self.kind, self.causal = heads, kind, causal
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for t in (q, k, v))
        if self.kind == "sdpa":
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        elif self.kind == "matmul":
            a = (q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5).softmax(-1)
            y = a @ v
        else:  # einsum
            a = torch.einsum("bhnd,bhmd->bhnm", q, k).softmax(-1)
            y = torch.einsum("bhnm,bhmd->bhnd", a, v)
        x = x + self.out(y.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(x)


@pytest.mark.slow  # hypothesis over attention nets, 3 s
@SETTINGS
@given(st.sampled_from([8, 16, 24]), st.sampled_from([1, 2, 4]),
       st.sampled_from(["sdpa", "matmul", "einsum"]), st.booleans(), st.booleans(),
       st.lists(st.tuples(st.integers(1, 3), st.integers(1, 20)), min_size=2, max_size=2))
def test_attention_nets_match_flop_counter(dim, heads, kind, causal, bias, sizes):
    model = AttnNet(dim, heads, kind, causal, bias).eval()
    with torch.no_grad():
        check(model, ("B", "N", dim), [{"B": b, "N": n} for b, n in sizes], [("B", "N", dim)])


class MHANet(nn.Module):
    def __init__(self, dim, heads, bias):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


@SETTINGS
@given(st.sampled_from([8, 16, 24]), st.sampled_from([1, 2, 4]), st.booleans(),
       st.lists(st.tuples(st.integers(1, 3), st.integers(1, 20)), min_size=2, max_size=2))
def test_multihead_attention_matches_flop_counter(dim, heads, bias, sizes):
    # symflops traces the no_grad fast path (one fused op FlopCounterMode counts as 0);
    # FlopCounterMode runs with grad enabled, where the slow path's products are visible
    model = MHANet(dim, heads, bias).eval()
    check(model, ("B", "N", dim), [{"B": b, "N": n} for b, n in sizes], [("B", "N", dim)])


@settings(max_examples=60, deadline=None)
@given(coeffs=st.lists(st.integers(-4, 4), min_size=6, max_size=6),
       lows=st.tuples(st.integers(1, 3), st.integers(1, 3)), strict=st.booleans())
def test_a_guard_proven_by_its_coefficients_holds_at_every_size_above(coeffs, lows, strict):
    # _positive_coefficients proves torch's 2*B*N >= B (XLNet) always holds; whatever it
    # proves must hold at every point of a grid above the least sizes, counted one by one
    import sympy as sp

    from symflops.tracing._assembly import _positive_coefficients

    b, n = sp.symbols("B N", positive=True, integer=True)
    monomials = [sp.Integer(1), b, n, b * n, b**2, n**2]
    gap = sum(c * m for c, m in zip(coeffs, monomials, strict=True))
    least = {b: sp.Integer(lows[0]), n: sp.Integer(lows[1])}
    assume(gap.free_symbols)
    if not _positive_coefficients(gap, least, strict=strict):
        return
    for x in range(lows[0], lows[0] + 12):
        for y in range(lows[1], lows[1] + 12):
            value = gap.xreplace({b: x, n: y})
            assert value > 0 if strict else value >= 0, (gap, x, y)
