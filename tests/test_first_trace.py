"""What a first trace in a new process pays, and what it must not: torch's notes of the user
code line behind each symbol and guard (``ShapeEnv._get_stack_summary``) are not taken, so a
trace does not import ``torch.export`` or the inductor for them; the ShapeEnv's own method is
back when the trace ends; and a formula with Min/Max simplifies to the same expression as
before, with its Min and Max untouched (they are held as symbols meanwhile)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.simplification import simplify_expr  # noqa: E402
from symflops.symbols import B, H, W  # noqa: E402

FIRST_TRACE = """
import sys, torch, symflops as sf
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2, ceil_mode=True))
c = sf.trace(net, "B 3 H W", warn=False)
heavy = [m for m in ("torch.export._trace", "torch._functorch.aot_autograd",
                     "torch._inductor.sizevars") if m in sys.modules]
print(repr(str(c.flops)), heavy)
"""


def test_a_first_trace_imports_neither_torch_export_nor_the_inductor():
    out = subprocess.run([sys.executable, "-c", FIRST_TRACE], capture_output=True, text=True,
                         timeout=300, check=True).stdout.strip()
    formula, heavy = out.rsplit(" ", 1)
    assert heavy == "[]", out
    assert "H" in formula and "W" in formula  # it traced symbolically


def test_the_shape_env_takes_no_source_locations_only_while_the_trace_runs():
    from torch._guards import SLoc

    from symflops.tracing._torch_compat import SymEnv

    with SymEnv() as env:
        assert env.shape_env._get_stack_summary() == (SLoc(None, None), "")
        assert env.shape_env._get_stack_summary(True, "here") == (SLoc("here", None), "")
        x = torch.empty(env.symint("H", 64), device="meta")
        with env.mode:
            assert x.shape[0] >= 3  # a guard is recorded, its location empty
    assert "_get_stack_summary" not in vars(env.shape_env)  # torch's own method again


def _window_total(h: sp.Expr) -> sp.Expr:
    """A ceil-mode 3 x 3 / 2 pool's window total along one axis (GoogLeNet's): the last
    window is cut by the edge, ``Min(3, ...)`` its length."""
    f = sp.floor(h / 8 + sp.Rational(1, 8))
    return 3 * f + sp.Min(3, -2 * f + sp.floor(h / 4 + sp.Rational(1, 4)) + 2) - 3


def test_min_and_max_are_kept_whole_through_simplification():
    e = 192 * B * _window_total(H) * _window_total(W) - 192 * B * sp.floor(
        H / 8 + sp.Rational(1, 8)) * sp.floor(W / 8 + sp.Rational(1, 8)) + sp.Max(1, H - 4) * W
    s = simplify_expr(e)
    assert s.atoms(sp.Min, sp.Max) == e.atoms(sp.Min, sp.Max)
    assert not any(isinstance(a, sp.Dummy) for a in s.free_symbols)
    # hand check at integer points, far from 224 too: the same value
    for b, h, w in ((1, 1, 1), (2, 7, 9), (3, 224, 224), (1, 4097, 33), (5, 100003, 8)):
        point = {B: b, H: h, W: w}
        assert s.xreplace(point) == e.xreplace(point)


def test_a_ceil_mode_pool_traces_to_flop_counter_modes_count():
    from torch.utils.flop_counter import FlopCounterMode

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(3, 2, ceil_mode=True),
                              torch.nn.Conv2d(4, 4, 1))
    c = sf.trace(net, "B 3 H W", convention="torch", warn=False)
    for b, h, w in ((1, 10, 12), (2, 31, 64)):
        with FlopCounterMode(display=False) as fc:
            net(torch.empty(b, 3, h, w, device="meta"))
        assert c.subs(B=b, H=h, W=w).flops == fc.get_total_flops()


class _DenseLike(torch.nn.Module):
    """DenseNet's shape in small: batch norms after strided convs, pools and a concat."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.t1 = nn.Sequential(nn.BatchNorm2d(8), nn.Conv2d(8, 8, 1), nn.AvgPool2d(2, 2))
        self.b2 = nn.Sequential(nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3, padding=1))
        self.t2 = nn.Sequential(nn.BatchNorm2d(12), nn.Conv2d(12, 8, 1), nn.AvgPool2d(2, 2))
        self.out = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.t1(self.stem(x))
        x = torch.cat([x, self.b2(x)], 1)
        return self.out(self.t2(x))


def test_a_batch_norms_numel_test_adds_no_condition_the_sizes_imply():
    # torch tests each batch norm's numel == 0 on a new product per channel count; each
    # factor (B, floor(H/8 - 5/8) + 1, ...) is proven non-zero on its own, so the product
    # is too, and the domain no longer carries Ne(8*B*(floor(H/8 - 5/8) + 1)*..., 0)
    from torch.utils.flop_counter import FlopCounterMode

    net = _DenseLike().eval()
    c = sf.trace(net, "B 3 H W", convention="torch", warn=False)
    assert str(c.domain) == "H >= 13; W >= 13"
    # brute force: every spatial size of every stage is at least 1 on that domain
    for h in range(13, 400):
        sizes = [(h + 6 - 7) // 2 + 1]                # the stem's conv
        sizes.append((sizes[-1] + 2 - 3) // 2 + 1)    # its max pool
        sizes.append(sizes[-1] // 2)                  # t1's avg pool
        sizes.append(sizes[-1] // 2)                  # t2's avg pool
        assert min(sizes) >= 1, (h, sizes)
    for b, h, w in ((1, 13, 13), (2, 13, 517), (3, 64, 31)):
        with FlopCounterMode(display=False) as fc:
            net.to("meta")(torch.empty(b, 3, h, w, device="meta"))
        assert c.subs(B=b, H=h, W=w).flops == fc.get_total_flops()
    with pytest.raises(sf.SymflopsError, match="H >= 13"):
        c.subs(B=1, H=12, W=13)


def test_an_input_size_ranges_from_one():
    from symflops.tracing._torch_compat import SymEnv

    with SymEnv() as env:
        h = env.symint("H", 64)
        vr = env.shape_env.var_to_range[h.node.expr]
        assert (int(vr.lower), vr.is_int) == (1, True)


SIZES = [B, H, W, sp.floor(H / 2 - sp.Rational(1, 2)), sp.floor(W / 4 + sp.Rational(1, 4)) + 1,
         sp.ceiling(H / 3), sp.floor(H / 2 - sp.Rational(1, 2)) + 1, sp.Integer(64),
         sp.floor(W / 32 + sp.Rational(17, 32)) + 2, sp.ceiling(W / 7) + 1, sp.Integer(3)]


@given(factors=st.lists(st.tuples(st.sampled_from(SIZES), st.integers(1, 2)), min_size=1,
                        max_size=4))
@settings(max_examples=60, deadline=None)
def test_a_product_of_sizes_simplifies_to_what_the_full_path_gives(
        factors: list[tuple[sp.Expr, int]]) -> None:
    # a conv's B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1) skips expanding and
    # factoring; the full path (floors held, both candidates, positive factors) gives it back
    from symflops import simplification

    e = sp.Mul(*(f**k for f, k in factors))
    assume(simplification._product_of_sizes(e))  # (SymPy spreads 64*(s + 1) into a sum)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(simplification, "_product_of_sizes", lambda expr: False)
        full = simplification._simplified(e)
    assert sp.srepr(simplification._simplified(e)) == sp.srepr(full) == sp.srepr(e)


def test_a_size_that_reads_negative_or_unexpanded_takes_the_full_path() -> None:
    from symflops import simplification

    for e in (B * (1 - sp.floor(H / 2)), B * (sp.floor(H / 2) - 1),
              B * sp.floor((H + 1) * (W + 1) / 3), -B * H, B * (H + W)):
        assert not simplification._product_of_sizes(e), e
