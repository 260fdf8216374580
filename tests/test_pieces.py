"""A model's code paths joined into one formula (symflops.tracing.pieces): tiny models with
size branches and Swin-like window clamps, traced symbolically on meta, checked against
torch's FlopCounterMode far from the traced sizes, gaps refused, the model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.errors import OutsideDomain, SymflopsError
from symflops.symbols import symbol
from symflops.tracing.pieces import PiecewiseCost, UnionDomain, trace_pieces

try:
    from tests.test_model_safety import assert_same, deep_snapshot
except ImportError:  # pragma: no cover - run from inside tests/
    from test_model_safety import assert_same, deep_snapshot  # type: ignore[no-redef]

B, N, H, W = symbol("B"), symbol("N"), symbol("H"), symbol("W")


class Branchy(nn.Module):
    """A size branch and a window clamp on one axis, ``x`` of shape (B, 4, N).

    Hand derivation (torch convention: 2 FLOPs per multiply-accumulate of conv/matmul):
    - N > 8: Conv1d(4, 4, 3, padding=1): B*N*4*4*3 = 48*B*N MACs -> 96*B*N FLOPs;
      else Linear(4, 4) on (B, N, 4): 16*B*N MACs -> 32*B*N FLOPs (bias not counted);
    - w = min(6, N): (B, 4, w) @ (B, w, 4): 16*B*w MACs -> 32*B*w FLOPs.
    So N >= 9: 96*B*N + 192*B; 6 <= N <= 8: 32*B*N + 192*B; N <= 5: 64*B*N.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if n > 8:  # noqa: SIM108  (the branch is the point)
            x = self.conv(x)
        else:
            x = self.lin(x.transpose(1, 2)).transpose(1, 2)
        w = min(6, n)
        y = x[..., :w]
        return y @ y.transpose(-1, -2)


def hand_branchy(b: int, n: int) -> int:
    if n >= 9:
        return 96 * b * n + 192 * b
    if n >= 6:
        return 32 * b * n + 192 * b
    return 64 * b * n


class WindowClamp(nn.Module):
    """Swin's window clamp in two sizes: a 4x4 stride-4 patch embedding to (B, 8, h, w),
    ``h = floor(H/4)``, ``w = floor(W/4)``, then attention-like products inside one window
    of min(3, h) x min(3, w) positions (Swin: ``window = min(window, feature map)``).

    Hand derivation (torch convention): the embedding is 8*3*4*4 = 384 MACs per output
    position: 768*B*h*w FLOPs; the window has n = min(3, h)*min(3, w) positions and
    (B, n, 8) @ (B, 8, n) is 8*B*n**2 MACs: 16*B*n**2 FLOPs. Four code paths: h >= 3
    (H >= 12) or not, times w >= 3 (W >= 12) or not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        wh, ww = min(3, x.shape[-2]), min(3, x.shape[-1])
        y = x[:, :, :wh, :ww].flatten(2)
        return y.transpose(1, 2) @ y


def hand_clamp(b: int, hh: int, ww: int) -> int:
    h, w = hh // 4, ww // 4
    n = min(3, h) * min(3, w)
    return 768 * b * h * w + 16 * b * n * n


def counted(model: nn.Module, *shape: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(*shape, device="meta"))
    return int(counter.get_total_flops())


@pytest.fixture(scope="module")
def branchy() -> tuple[nn.Module, sf.Cost]:
    with torch.device("meta"):
        model = Branchy().eval()
    cost = sf.trace(model, "B 4 N", {"N": 7}, convention="torch", paths="all", warn=False)
    return model, cost


def test_three_code_paths_of_a_branch_and_a_clamp(branchy) -> None:
    model, cost = branchy
    assert isinstance(cost, PiecewiseCost)
    assert len(cost.pieces) == 3
    # the example's piece first, then above its bound, then below
    assert [p.domain.range_of(N)[:2] for p in cost.pieces] == [(6, 8), (9, None), (1, 5)]
    assert str(cost.domain) == \
        "one of 3 code paths: (1) 6 <= N <= 8; (2) N >= 9; (3) 1 <= N <= 5"
    assert cost.flops == sp.Piecewise(
        (32 * B * N + 192 * B, (N >= 6) & (N <= 8)), (96 * B * N + 192 * B, N >= 9),
        (64 * B * N, N <= 5))
    # far from the traced sizes (7, 9, 5), in every piece: hand count = FlopCounterMode
    for b, n in [(1, 2), (3, 5), (2, 6), (5, 8), (1, 9), (3, 517), (2, 4099)]:
        expected = counted(model, b, 4, n)
        assert hand_branchy(b, n) == expected
        assert cost.subs(B=b, N=n).flops == expected
        assert int(cost.evaluate("flops", B=b, N=n)) == expected


def test_evaluate_broadcasts_across_pieces(branchy) -> None:
    model, cost = branchy
    ns = np.array([2, 5, 6, 8, 9, 300])
    got = cost.evaluate("flops", B=2, N=ns)
    assert got.dtype == np.int64
    assert got.tolist() == [counted(model, 2, 4, int(n)) for n in ns]


def test_subs_gives_the_piece_or_the_pieces_left(branchy) -> None:
    _, cost = branchy
    one = cost.subs(N=100)
    assert not isinstance(one, PiecewiseCost)
    assert one.flops == 9600 * B + 192 * B
    assert one.notes[0].startswith("code path 2 of 3")
    several = cost.subs(B=3)
    assert isinstance(several, PiecewiseCost) and len(several.pieces) == 3
    assert several.subs(N=7).flops == hand_branchy(3, 7)
    macs = cost.with_convention("macs")
    assert macs.subs(B=1, N=20).flops == hand_branchy(1, 20) // 2


def test_a_gap_between_pieces_is_refused_with_the_trace_that_covers_it(branchy) -> None:
    model, _ = branchy
    low = sf.trace(model, "B 4 N", {"N": 3}, convention="torch", warn=False)
    high = sf.trace(model, "B 4 N", {"N": 20}, convention="torch", warn=False)
    from symflops.tracing.pieces import PiecesReport

    joined = PiecewiseCost.join([low, high], PiecesReport())
    assert joined.subs(B=1, N=5).flops == hand_branchy(1, 5)
    assert joined.subs(B=1, N=9).flops == hand_branchy(1, 9)
    for n in (6, 7, 8):  # the gap: N = 6..8 is on no piece's domain
        with pytest.raises(OutsideDomain, match="no traced code path") as e:
            joined.subs(B=1, N=n)
        assert e.value.options == {"hints": {"B": 1, "N": n}}
        with pytest.raises(OutsideDomain):
            joined.evaluate("flops", B=1, N=np.array([4, n, 12]))
        assert not joined.domain.contains(B=1, N=n)
    assert joined.domain.contains(B=1, N=5) and joined.domain.contains(B=1, N=9)
    assert joined.domain.points(N, 1, 12) == [1, 2, 3, 4, 5, 9, 10, 11, 12]


def test_capped_or_upward_only_leaves_the_rest_refused(branchy) -> None:
    model, _ = branchy
    up = trace_pieces(model, "B 4 N", {"N": 7}, convention="torch", below=False, warn=False)
    assert isinstance(up, PiecewiseCost) and len(up.pieces) == 2
    assert up.subs(B=1, N=1000).flops == hand_branchy(1, 1000)
    with pytest.raises(OutsideDomain, match="trace the model there"):
        up.subs(B=1, N=5)
    capped = trace_pieces(model, "B 4 N", {"N": 7}, convention="torch", max_pieces=2,
                          warn=False)
    assert capped.report.capped
    assert any("max_pieces=2 reached" in note for note in capped.notes)
    with pytest.raises(OutsideDomain, match="max_pieces=2 reached"):
        capped.subs(B=1, N=3)
    single = trace_pieces(model, "B 4 N", {"N": 7}, convention="torch", max_pieces=1,
                          warn=False)
    assert not isinstance(single, PiecewiseCost)  # one piece: the trace itself
    assert "max_pieces=1 reached" in single.report.notes[-1]
    assert "max_pieces=1 reached" in single.notes[-1]  # printed by renders too


def test_window_clamp_in_two_sizes_tiles_the_plane() -> None:
    with torch.device("meta"):
        model = WindowClamp().eval()
    cost = sf.trace(model, "B 3 H W", {"H": 32, "W": 40}, convention="torch", paths="all",
                    warn=False)
    assert isinstance(cost, PiecewiseCost) and len(cost.pieces) == 4
    assert isinstance(cost.domain, UnionDomain)
    # every (H, W) around the bounds is in exactly one piece's domain
    sizes = [4, 5, 7, 10, 11, 12, 13, 31, 32, 33, 40, 1001]
    for hh in sizes:
        for ww in sizes:
            point = {B: 1, H: hh, W: ww}
            assert sum(d.failing(point) is None for d in cost.domain.pieces) == 1
    assert not cost.domain.contains(B=1, H=3, W=20)  # the embedding needs H >= 4
    for b, hh, ww in [(1, 4, 4), (2, 11, 500), (1, 12, 7), (3, 999, 13), (2, 8, 9),
                      (1, 640, 1024)]:
        expected = counted(model, b, 3, hh, ww)
        assert hand_clamp(b, hh, ww) == expected
        assert cost.subs(B=b, H=hh, W=ww).flops == expected


def test_renders_name_the_convention_and_print_cases(branchy) -> None:
    _, cost = branchy
    latex = sf.render(cost, "latex")
    assert r"\begin{cases}" in latex and "FLOPs (torch)" in latex
    md = sf.render(cost, "markdown")
    assert "one of 3 code paths" in md and "FLOPs (torch)" in md
    text = sf.render(cost, "text", at={"B": 1, "N": 100})
    assert "9,792" in text  # 96*100 + 192
    assert r"\begin{cases}" in cost._repr_latex_()


def test_the_model_is_untouched() -> None:
    with torch.device("meta"):
        model = Branchy().eval()
    before = deep_snapshot(model)
    trace_pieces(model, "B 4 N", {"N": 7}, convention="torch", warn=False)
    assert_same(before, deep_snapshot(model))


def test_bad_options_are_one_clear_error() -> None:
    model = Branchy()
    with pytest.raises(SymflopsError, match="paths must be"):
        sf.trace(model, "B 4 N", paths="every")
    with pytest.raises(SymflopsError, match="max_pieces"):
        trace_pieces(model, "B 4 N", max_pieces=0)
    with pytest.raises(SymflopsError, match="fallback is not available"):
        sf.trace(model, "B 4 N", paths="all", fallback="fit")
    with pytest.raises(SymflopsError, match="unknown options"):
        trace_pieces(model, "B 4 N", hint={"N": 3})


def test_sweep_pickle_and_simplify_keep_the_pieces(branchy) -> None:
    import copy
    import pickle

    model, cost = branchy
    ns = [2, 5, 6, 8, 9, 100]
    swept = sf.analysis.sweep(cost, {"N": ns}, at={"B": 1}).results["flops"].tolist()
    assert swept == [hand_branchy(1, n) for n in ns]
    for again in (pickle.loads(pickle.dumps(cost)), copy.deepcopy(cost), cost.simplify()):
        assert isinstance(again, PiecewiseCost)
        assert again.subs(B=2, N=3).flops == counted(model, 2, 4, 3)
        with pytest.raises(SymflopsError, match="sizes must be positive"):
            again.subs(B=1, N=0)


def test_every_size_in_exactly_one_piece_and_equal_to_the_hand_count(branchy) -> None:
    _, cost = branchy
    for n in range(1, 60):
        assert sum(d.failing({B: 2, N: n}) is None for d in cost.domain.pieces) == 1
    ns = np.arange(1, 5001)
    got = cost.evaluate("flops", B=3, N=ns)
    assert got.tolist() == [hand_branchy(3, int(n)) for n in ns]


class OnALattice(nn.Module):
    """``x.view(b, n // 4, 4)`` needs N a multiple of 4; above 32 a second Linear runs.

    Hand derivation (torch convention): Linear(4, 4) on N/4 rows of 4: 16*B*N/4 MACs =
    8*B*N FLOPs; N > 32 runs it twice: 16*B*N. The bound N <= 32 is crossed at 36, the next
    multiple of 4 (33 is not a size the model takes).
    """

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape
        y = self.lin(x.view(b, n // 4, 4))
        if n > 32:
            y = self.lin(y)
        return y


def test_the_next_size_past_a_bound_is_on_the_lattice() -> None:
    with torch.device("meta"):
        model = OnALattice().eval()
    cost = trace_pieces(model, "B N", {"N": 16}, convention="torch", warn=False)
    assert isinstance(cost, PiecewiseCost) and len(cost.pieces) == 2
    assert cost.report.tried[0] == ({"B": 2, "N": 36}, "a new code path")
    for b, n in [(1, 4), (3, 32), (2, 36), (1, 4096)]:
        expected = counted(model, b, n)
        assert expected == (8 if n <= 32 else 16) * b * n
        assert cost.subs(B=b, N=n).flops == expected
    with pytest.raises(OutsideDomain, match="choose N a multiple of 4, e.g. 1000 or 1004") \
            as e:
        cost.subs(B=1, N=1001)
    assert e.value.options == {}


def test_a_trace_that_pins_a_free_size_is_named_and_not_joined() -> None:
    from symflops.domain import Domain
    from symflops.tracing.pieces import _pins

    first = Domain([("t", N <= 8)])
    symbols = {"B": B, "N": N}
    assert _pins(Domain([("t", sp.Eq(N, 9))]), ["B", "N"], symbols, first) == "N = 9"
    assert _pins(Domain([("t", N >= 9)]), ["B", "N"], symbols, first) == ""
    # a size the example pinned already is no news
    assert _pins(Domain([("t", sp.Eq(B, 2))]), ["B", "N"], symbols,
                 Domain([("t", sp.Eq(B, 2))])) == ""


class ShiftedWindows(nn.Module):
    """Swin's window partition in miniature: a 4x4 stride-4 patch embedding to (B, h, w, 8),
    ``h = floor(H/4)``, ``w = floor(W/4)``, padded to ``ph = 3*ceil(h/3)``,
    ``pw = 3*ceil(w/3)``; the shift (and its Linear) only when a padded side is larger
    than the window of 3 (torchvision: ``if window_size >= pad_H: shift = 0``); then the
    windows ``view(b, ph/3, 3, pw/3, 3, 8).permute(0, 1, 3, 2, 4, 5).reshape(-1, 9, 8)``.
    That reshape is a view only with one window column (``pw == 3``), and torch records
    the check as ``Eq(72*Max(1, nH)*Max(1, nW), 72*nH)`` (``nH = ceil(h/3)``): in H and W,
    though only W moves it. Read as a pin, it pinned both sizes at H >= 16, W <= 15, and
    that quarter had no code path (swin_t at 256 x 224 did the same).

    Hand derivation (torch convention: 2 FLOPs per multiply-accumulate):
    - embedding: 8*3*4*4 = 384 MACs per output position: 768*B*h*w FLOPs;
    - shift Linear(8, 8) on (B, ph, pw, 8), when ph > 3 or pw > 3: 64*B*ph*pw MACs:
      128*B*ph*pw FLOPs;
    - per window (9 positions, 8 channels): (9, 8) @ (8, 9) and (9, 9) @ (9, 8), 648 MACs
      each: 2592 FLOPs, over B*(ph/3)*(pw/3) windows.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4, bias=False)
        self.mix = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).permute(0, 2, 3, 1)
        b, h, w, c = x.shape
        x = nn.functional.pad(x, (0, 0, 0, (3 - w % 3) % 3, 0, (3 - h % 3) % 3))
        _, ph, pw, _ = x.shape
        shift = [0 if ph <= 3 else 1, 0 if pw <= 3 else 1]
        if sum(shift) > 0:
            x = self.mix(torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2)))
        x = x.view(b, ph // 3, 3, pw // 3, 3, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 9, c)
        return (x @ x.transpose(1, 2)) @ x


def hand_windows(b: int, hh: int, ww: int) -> int:
    h, w = hh // 4, ww // 4
    ph, pw = 3 * -(-h // 3), 3 * -(-w // 3)
    shifted = 128 * b * ph * pw if ph > 3 or pw > 3 else 0
    return 768 * b * h * w + shifted + 2592 * b * (ph // 3) * (pw // 3)


def test_a_view_check_in_two_sizes_bounds_one_and_pins_neither() -> None:
    with torch.device("meta"):
        model = ShiftedWindows().eval()
    one = sf.trace(model, "B 3 H W", {"H": 16, "W": 8}, convention="torch", warn=False)
    # neither size pinned: the trace stayed at 16 x 8 (it moved to 32 x 16, W >= 16, when
    # the view check pinned both), and the check is read as W <= 15
    assert (one.report.hints["H"], one.report.hints["W"]) == (16, 8)
    assert one.report.fixed == {}
    assert any("Max" in str(g) for g in one.report.constraints)  # torch's view check
    assert str(one.domain) == "H >= 16; 4 <= W <= 15 (another code path above 15)"
    with pytest.raises(OutsideDomain, match="another code path past W = 15"):
        one.subs(B=1, H=40, W=20)
    cost = sf.trace(model, "B 3 H W", {"H": 8, "W": 8}, convention="torch", paths="all",
                    warn=False)
    assert isinstance(cost, PiecewiseCost) and len(cost.pieces) == 3
    assert str(cost.domain) == ("one of 3 code paths: (1) 4 <= H <= 15, 4 <= W <= 15; "
                                "(2) H >= 16, 4 <= W <= 15; (3) H >= 4, W >= 16")
    # far from the traced sizes (8 x 8, 16 x 8, 8 x 16), the quarter H >= 16, W <= 15 most
    for b, hh, ww in [(2, 400, 9), (3, 1000, 4), (1, 100, 15), (1, 16, 15), (2, 9, 700),
                      (1, 640, 480), (1, 13, 11), (2, 4099, 7)]:
        expected = counted(model, b, 3, hh, ww)
        assert hand_windows(b, hh, ww) == expected
        assert cost.subs(B=b, H=hh, W=ww).flops == expected
        assert int(cost.evaluate("flops", B=b, H=hh, W=ww)) == expected
    sizes = [4, 5, 11, 12, 15, 16, 17, 40, 1001]
    for hh in sizes:
        for ww in sizes:
            assert sum(d.failing({B: 1, H: hh, W: ww}) is None for d in cost.domain.pieces) == 1
    with pytest.raises(OutsideDomain, match="no traced code path"):
        cost.subs(B=1, H=400, W=3)  # the embedding needs W >= 4: no piece, refused


def test_adjacent_paths_of_equal_value_read_as_the_or_of_their_ranges() -> None:
    # SymPy joins adjacent entries of equal value itself, in conjunctive form: torchvision
    # swin_t's paths 3 and 4 printed as one condition of 16 clauses
    from symflops.tracing.pieces import _joined

    H, W = sp.symbols("H W", positive=True, integer=True)
    a = (H >= 60) & (H <= 115) & (W >= 116) & (W <= 227)
    b = (H >= 116) & (H <= 227) & (W >= 60) & (W <= 115)
    joined = _joined([2 * H * W, 2 * H * W, H], [a, b, sp.true])
    assert joined.args[0].cond == sp.Or(a, b)
    assert sp.Piecewise(*joined.args).args[0].cond == sp.Or(a, b)  # a rebuild keeps it
    for h, w in [(70, 120), (120, 70), (70, 70), (300, 300)]:  # the same function
        want = 2 * h * w if (60 <= h <= 115 and 116 <= w <= 227) or \
            (116 <= h <= 227 and 60 <= w <= 115) else h
        assert joined.xreplace({H: h, W: w}) == want


def test_each_code_path_is_shown_in_its_own_shortest_form() -> None:
    from symflops.notation import as_ceilings

    H = sp.Symbol("H", positive=True, integer=True)
    strided = sp.floor(H / 2 - sp.Rational(1, 2)) + 1  # ceiling(H/2) for an integer H
    shown = as_ceilings(sp.Piecewise((strided, H >= 3), (sp.floor(H / 4), True)))
    assert shown.args[0].expr == sp.ceiling(H / 2)
    assert shown.args[1].expr == sp.floor(H / 4)  # a bare floor stays
