"""Traced formulas hold on their whole stated domain, not only at the example size.

A ceil_mode pool's last window is dropped when it would start in the padding; torch decides
that with an ``if`` on the sizes, which on symbolic sizes records a guard that holds at the
example size (224) and not at others. The tracer sizes ceil_mode pools without the branch
(``ceil_pool_size``), so the formula is right at every size: checked here against torch's
own output sizes, FlopCounterMode and ``sf.nn``'s Piecewise.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import OutsideDomain  # noqa: E402
from symflops.tracing._shape_rules import ceil_pool_size  # noqa: E402

# (kernel, stride, padding, dilation): dilation only for max pools
CASES = [(2, 3, 0, 1), (3, 2, 1, 1), (3, 3, 1, 1), (2, 2, 0, 1), (3, 2, 0, 1), (5, 3, 2, 1),
         (3, 2, 1, 2), (4, 4, 2, 1)]


@pytest.mark.parametrize("k,s,p,d", CASES, ids=[f"k{k}s{s}p{p}d{d}" for k, s, p, d in CASES])
def test_ceil_pool_size_is_torchs_output_size(k: int, s: int, p: int, d: int) -> None:
    # brute force: torch's real CPU kernel at every size from the smallest it accepts
    pool = nn.MaxPool1d(k, s, p, dilation=d, ceil_mode=True)
    need = max(1, d * (k - 1) + 1 - 2 * p)
    for size in range(need, 400):
        out = pool(torch.zeros(1, 1, size)).shape[-1]
        assert ceil_pool_size(size, k, s, p, d) == out, size


def _flops_torch(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as fc:
        model(x)
    return int(fc.get_total_flops())


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_traced_ceil_mode_pool_then_conv_equals_flop_counter_at_every_size(kind: str,
                                                                          dims: int) -> None:
    # The model: MaxPool2d(2, stride=3, ceil_mode=True) then a 1x1 conv. torch gives
    # floor(H/3) per side when 3 | H; the formula traced at 224 (224 % 3 == 2) must too.
    # Hand, at H = 24 in 2-d: 8 x 8 positions x 8 channels x 2 FLOPs = 1,024 (torch).
    Pool = getattr(nn, f"{kind.capitalize()}Pool{dims}d")
    Conv = getattr(nn, f"Conv{dims}d")
    model = nn.Sequential(Pool(2, stride=3, ceil_mode=True), Conv(1, 8, 1))
    spatial = " ".join("HWD"[:dims])
    cost = sf.trace(model, f"B 1 {spatial}", convention="torch", warn=False)
    # (torch's CPU max_pool1d reads the length as an int, which pinned it to 224; the trace
    # reroutes it to max_pool1d_with_indices, the same windows on symbolic sizes)
    assert "pinned" not in str(cost.domain)
    sizes = range(4, 40) if dims < 3 else range(4, 16)
    for n in sizes:
        shape = (1, 1, *([n] * dims))
        got = cost.subs(B=1, **{c: n for c in "HWD"[:dims]}).flops
        assert got == _flops_torch(model, torch.zeros(shape)), n
    if dims == 2:
        assert cost.subs(B=1, H=24, W=24).flops == 1024


# (kernel, stride, padding, dilation) of floor-mode pools: VGG's and ResNet's max pools,
# DenseNet's and Inception's average pools, and odd ones
FLOOR_CASES = [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 3, 0, 1), (5, 3, 2, 1),
               (4, 4, 2, 1), (3, 2, 0, 2)]


@pytest.mark.parametrize("case", FLOOR_CASES, ids=[f"k{k}s{s}p{p}d{d}" for k, s, p, d in
                                                   FLOOR_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
def test_traced_pool_then_conv_equals_flop_counter_down_to_its_smallest_size(
        case: tuple[int, int, int, int], kind: str, dims: int, ceil: bool) -> None:
    # A pool is sized by the tracer's own rule (_shape_rules._pool), not torch's meta
    # kernel: floor mode (L + 2p - d(k - 1) - 1) // s + 1 per side (ceil mode:
    # ceil_pool_size), and the one guard its output needs, L >= d(k - 1) + 1 - 2p. Hand,
    # MaxPool2d(2, 2) then a 1x1 conv 1 -> 8 at H = W = 25: (25 - 2) // 2 + 1 = 12 per
    # side, 12 * 12 * 8 * 2 = 2,304 FLOPs (torch).
    k, s, p, d = case
    if kind == "avg":
        d = 1
    Pool = getattr(nn, f"{kind.capitalize()}Pool{dims}d")
    Conv = getattr(nn, f"Conv{dims}d")
    pool = Pool(k, s, p, dilation=d, ceil_mode=ceil) if kind == "max" else \
        Pool(k, s, p, ceil_mode=ceil)
    model = nn.Sequential(pool, Conv(1, 8, 1))
    names = "HWD"[:dims]
    cost = sf.trace(model, f"B 1 {' '.join(names)}", convention="torch", warn=False)
    assert "pinned" not in str(cost.domain)
    need = max(1, d * (k - 1) + 1 - 2 * p)  # floor mode: the smallest side torch accepts
    if (kind, dims) == ("avg", 3):  # avg_pool3d: never smaller than the kernel, padded or not
        need = max(need, k)
    top = 60 if dims < 3 else 14
    for n in range(1, top):  # torch's real CPU kernel, every size from 1
        x = torch.zeros(1, 1, *([n] * dims))
        try:
            expected: int | None = _flops_torch(model, x)
        except RuntimeError:
            expected = None
        try:
            got: int | None = cost.subs(B=1, **dict.fromkeys(names, n)).flops
        except OutsideDomain:
            got = None
        if n >= need:  # inside the rule's guard: answered, and right
            assert got == expected is not None, n
        else:  # below it torch raises in floor mode; ceil mode's last window may start
            # inside the input a little lower, where settle's check at 1 may admit 1
            assert expected is not None or got is None, n
            assert got is None or got == expected, n
            assert ceil or expected is None, n
    far = 1000 + 7 * s  # far from the example size (224), checked by the formula alone
    side = ceil_pool_size(far, k, s, p, d) if ceil else (far + 2 * p - d * (k - 1) - 1) // s + 1
    assert cost.subs(B=1, **dict.fromkeys(names, far)).flops == 8 * 2 * side ** dims
    if (kind, dims, case, ceil) == ("max", 2, (2, 2, 0, 1), False):
        assert cost.subs(B=1, H=25, W=25).flops == 2304


@pytest.mark.parametrize("pool, says", [
    (nn.AvgPool2d(2, divisor_override=0), "divisor must be not zero"),
    (nn.MaxPool2d(2, padding=2), "pad should be at most half"),
    (nn.AvgPool2d(3, padding=2), "pad should be at most half")],
    ids=["divisor-0", "max-pad-over-half", "avg-pad-over-half"])
def test_a_pool_torch_refuses_is_refused_with_torchs_reason(pool: nn.Module, says: str) -> None:
    # the shape rule steps aside for arguments torch rejects, so torch's own check speaks
    with pytest.raises(sf.SymflopsError, match=says):
        sf.trace(pool, "B 3 H W", warn=False)


@settings(max_examples=12, deadline=None)
@given(case=st.sampled_from(CASES), h=st.integers(8, 300), w=st.integers(8, 300),
       kind=st.sampled_from(["max", "avg"]))
def test_traced_pool_equals_sfnn_piecewise(case: tuple[int, int, int, int], h: int, w: int,
                                           kind: str) -> None:
    k, s, p, d = case
    if kind == "avg":
        d = 1
        torch_pool: nn.Module = nn.AvgPool2d(k, s, p, ceil_mode=True)
        mine = sf.nn.AvgPool2d(k, s, p, ceil_mode=True)
    else:
        torch_pool = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=True)
        mine = sf.nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=True)
    traced = sf.trace(torch_pool, "B 3 H W", warn=False)
    want = mine.cost(("B", 3, "H", "W")).subs(B=2, H=h, W=w)
    got = traced.subs(B=2, H=h, W=w)
    assert got.flops == want.flops
    assert got.output_shape == want.output_shape
    real = torch_pool(torch.zeros(2, 3, h, w)).shape
    assert tuple(int(v) for v in got.output_shape) == tuple(real)


class _Branchy(nn.Module):
    """A different op when 3 divides the width: the guard changes the cost."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 3 == 0:
            return x.relu()
        return x.sigmoid()


class _SameEitherWay(nn.Module):
    """A branch past a width threshold that does the same work on both sides."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 1000:
            return x.relu()
        return torch.relu(x)


def test_a_guard_that_changes_the_cost_becomes_a_condition() -> None:
    cost = sf.trace(_Branchy(), "B H", warn=False)   # traced at H = 128: sigmoid
    assert str(cost.validity) == "(Ne(Mod(H, 3), 0),)"
    assert any("kept as a condition" in n for n in cost.report.notes)
    with pytest.raises(OutsideDomain, match="another branch where 3 divides H"):
        cost.subs(B=1, H=300)
    # on its own side the formula is the sigmoid's count: the same as a trace there
    there = sf.trace(_Branchy(), "B H", hints={"H": 301}, warn=False)
    assert cost.subs(B=2, H=301).flops == there.subs(B=2, H=301).flops


def test_a_guard_that_does_not_change_the_cost_is_dropped_and_said() -> None:
    cost = sf.trace(_SameEitherWay(), "B H", warn=False)
    assert cost.validity == ()
    (note,) = [n for n in cost.report.notes if "guard" in n]
    assert note.startswith("guard H <= 1000 dropped: a trace at H=")
    assert cost.subs(B=1, H=5000).flops == sf.trace(
        _SameEitherWay(), "B H", hints={"H": 5000}, warn=False).subs(B=1, H=5000).flops


class _SameOnlyAtTheExampleWidth(nn.Module):
    """Up to ``H = 1000`` a multiply of the whole input (``B*H*W`` elementwise); past it,
    four multiplies of its first column (``4*B*H``). The two agree at W = 4 (the example
    width) and nowhere else, so a comparison that varies only H, the guard's size, would
    drop the guard and answer ``B*H*W`` at H = 2000, W = 10 (by hand: 4*1*2000 = 8,000,
    not 20,000)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] <= 1000:
            return x * 2
        for _ in range(4):
            x[:, :, :1] * 2
        return x


def test_a_guard_is_compared_at_every_size_not_only_its_own() -> None:
    cost = sf.trace(_SameOnlyAtTheExampleWidth(), "B H W", hints={"H": 32, "W": 4},
                    warn=False)
    assert [str(g) for g in cost.validity] == ["H <= 1000"]
    (note,) = [n for n in cost.report.notes if "guard" in n]
    assert note.startswith("guard H <= 1000 kept as a condition: on its other side the "
                           "cost differs")
    with pytest.raises(OutsideDomain):
        cost.subs(B=1, H=2000, W=10)
    there = sf.trace(_SameOnlyAtTheExampleWidth(), "B H W", hints={"H": 2000, "W": 10},
                     warn=False)
    assert there.with_convention("exact").subs(B=1, H=2000, W=10).flops == 8000


class _OneImage(nn.Module):
    """A branch on one image (torch assumes a symbolic size is not 1, so at the example
    B = 2 it records only ``B != 1``): squeezed and unsqueezed, the same work either way
    (``same``), or another activation for one image."""

    def __init__(self, same: bool) -> None:
        super().__init__()
        self.same = same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            y = x[0]
            return (y.relu() if self.same else y.sigmoid()).unsqueeze(0)
        return x.relu()


def test_a_size_torch_assumed_is_not_one_is_checked_at_one() -> None:
    cost = sf.trace(_OneImage(same=True), "B N", warn=False)
    assert any(n.startswith("B = 1 checked: torch assumed otherwise (Ne(B, 1))")
               for n in cost.report.notes)
    for b, n in [(1, 1), (1, 37), (5, 1000)]:
        assert cost.subs(B=b, N=n).flops == b * n  # by hand: one compare per element
        assert cost.subs(B=b, N=n).flops == sf.trace(_OneImage(True), (b, n)).flops


def test_one_image_on_another_path_is_refused_with_the_fix() -> None:
    # before: B*N at B = 1 too, a silently wrong count (the sigmoid's work is not a relu's)
    cost = sf.trace(_OneImage(same=False), "B N", warn=False)
    assert any(n.startswith("B = 1 refused") for n in cost.notes)
    assert str(cost.domain) == "B >= 2"
    with pytest.raises(OutsideDomain, match="B given as the number 1 in the input spec"):
        cost.subs(B=1, N=10)
    one = sf.trace(_OneImage(same=False), "1 N", warn=False)  # the fix, as it says
    named = {s.name: s for s in cost.free_symbols}
    assert one.subs(N=10).flops != cost.flops.xreplace({named["B"]: 1, named["N"]: 10})
    assert cost.with_convention("torch").subs(B=3, N=10).flops == \
        _flops_torch(_OneImage(same=False), torch.zeros(3, 10))


class _OneImageWithinItsPath(nn.Module):
    """Up to ``H = 100`` a multiply (``B*H*W``), past it a sigmoid. One image takes its own
    way up to 100: it appends ``H // 101`` rows, zero there, so the same ``H*W`` multiplies
    with a formula that is another past 100, where that path is not taken."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] <= 100:
            if x.shape[0] == 1:
                more = x[:, : x.shape[1] // 101]
                return (torch.cat([x, more], 1) * 2)[:, : x.shape[1]]
            return x * 2
        return x.sigmoid()


def test_one_is_checked_where_the_traced_path_holds() -> None:
    # the B = 1 trace compares with the B = 2 formula where both paths are taken (H <= 100):
    # before, it sampled H up to 5x the example (H = 229), past the first trace's own
    # branch, and refused B = 1 though the count there is right
    cost = sf.trace(_OneImageWithinItsPath(), "B H W", hints={"H": 64, "W": 8}, warn=False)
    assert [str(g) for g in cost.validity] == ["H <= 100"]
    assert any(n.startswith("B = 1 checked") for n in cost.report.notes)
    for h, w in [(1, 1), (50, 7), (100, 333)]:  # by hand: one multiply per element
        assert cost.with_convention("exact").subs(B=1, H=h, W=w).flops == h * w
        assert cost.with_convention("torch").subs(B=1, H=h, W=w).flops == \
            _flops_torch(_OneImageWithinItsPath(), torch.zeros(1, h, w))
    with pytest.raises(OutsideDomain):
        cost.subs(B=1, H=101, W=8)


class _SmallInputsElsewhere(nn.Module):
    """``if H > 16``: a test in the model's own code, whose other side is another path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[2] > 16 else x.sigmoid()


@pytest.mark.parametrize("model, tested", [
    (_SmallInputsElsewhere(), ["H >= 17"]),
    (nn.Sequential(nn.Conv2d(3, 4, 7), nn.AdaptiveAvgPool2d(1)), []),   # a kernel must fit
    (nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 4, 3)), []),     # torch's pad check
], ids=["if-H-above-16", "conv-7x7", "reflection-pad-3"])
def test_a_lower_bound_from_the_models_own_code_says_so(model, tested) -> None:
    cost = sf.trace(model, "B 3 H W", hints={"H": 32, "W": 32}, warn=False)
    assert [str(g) for g in cost.report.tested] == tested
    below = {"B": 1, "H": 2, "W": 32}
    with pytest.raises(OutsideDomain) as e:
        cost.subs(**below)
    if tested:  # the other side is a code path of its own, and the fix names both ways
        assert "the model's code tests the size" in e.value.fix
        # as options, so Python and the command line each say them their own way (the
        # text said "(hints=)" and "paths='all'" on the command line too)
        assert e.value.options == {"paths": "all", "hints": {"H": 16}}
        assert "trace at H = 16 (hints={'H': 16}) to see which, or with paths='all'" in \
            str(e.value)
        assert "trace at H = 16 (--hint H=16) to see which, or with --paths all" in \
            e.value.cli_text()
        # the hint it gives is the other side: traced there, the formula holds at the point
        there = sf.trace(model, "B 3 H W", hints={"W": 32, **e.value.options["hints"]},
                         warn=False)
        assert there.with_convention("torch").subs(**below).flops == \
            _flops_torch(model, torch.zeros(1, 3, 2, 32))
        joined = sf.trace(model, "B 3 H W", hints={"H": 32, "W": 32}, paths="all", warn=False)
        assert joined.with_convention("torch").subs(**below).flops == \
            _flops_torch(model, torch.zeros(1, 3, 2, 32))
        assert joined.with_convention("exact").subs(**below).flops == \
            sf.trace(model, (1, 3, 2, 32), convention="exact").flops
    else:
        assert "use a larger H" in e.value.fix


def test_plain_cnns_record_no_branch_guards() -> None:
    from example_models import load_example

    resnet = load_example("resnet")
    cost = sf.trace(resnet.resnet18(), "B 3 H W", warn=False)
    assert cost.report.branches == []


class _IntBatch(nn.Module):
    """``int(x.shape[0])`` reads the batch as a Python int: torch pins it symbolically,
    though any batch runs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(int(x.shape[0]), -1))


def test_a_pinned_batch_is_visible_and_a_fit_varies_it() -> None:
    pinned = sf.trace(_IntBatch(), "B 4 4", warn=False)
    assert str(pinned.domain) == "B = 2 (pinned)"
    with pytest.raises(OutsideDomain, match="the model fixes B = 2"):
        pinned.subs(B=1)
    fitted = sf.trace(_IntBatch(), "B 4 4", fallback="fit", warn=False)
    # hand: 16 multiplies + 15 adds + 1 bias per output, 4 outputs per image: 128 B
    assert fitted.flops == 128 * sf.symbols.symbol("B")
    for b in (1, 7, 1000):
        assert fitted.subs(B=b).flops == sf.trace(_IntBatch(), f"{b} 4 4", warn=False).flops


def test_a_pin_names_the_line_of_the_model_that_made_it() -> None:
    # torch replaced B by 2 inside _IntBatch.forward's int(x.shape[0]): the note, the
    # refusal of another batch (subs and the domain's check) all name that line, not a
    # line of torch or symflops
    line = f"test_trace_domain.py:{_IntBatch.forward.__code__.co_firstlineno + 1}: " \
        "return self.fc(x.reshape(int(x.shape[0]), -1))"
    pinned = sf.trace(_IntBatch(), "B 4 4", warn=False)
    assert pinned.report.pin_sites["B"].endswith(line)
    assert any("(B at " in n and n.endswith(line + ")") for n in pinned.notes)
    with pytest.raises(OutsideDomain, match=re.escape(line)):
        pinned.subs(B=3)
    with pytest.raises(OutsideDomain, match=re.escape("the model fixes B = 2 (at ")):
        pinned.domain.check({sf.symbols.symbol("B"): 3})
    # a model that pins nothing has no site, and its notes name none
    free = sf.trace(nn.Linear(4, 2), "B 4", warn=False)
    assert free.report.pin_sites == {} and not any(" at " in n for n in free.notes)


class _ReshapesWithTheBatch(nn.Module):
    """LeViT's way: patches flattened to tokens, then viewed back as a fixed 4x4 grid with
    the batch named (``x.view(B, 4, 4, C)``). torch records ``128*B*X == 256*B`` (X the
    patch count): a pin of the patches, hence of H and W, not of the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.fc = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2)          # B, X, 16
        grid = t.reshape(x.shape[0], 4, 4, 16)
        return self.fc(grid)


def test_a_reshape_that_names_the_batch_pins_the_sizes_not_the_batch() -> None:
    # levit_128s pinned B to the hint (609,321,664 FLOPs "per image" were two images);
    # the equality's factor B cannot be 0, so it pins only the patch count
    cost = sf.trace(_ReshapesWithTheBatch(), "B 3 H W", hints={"B": 3, "H": 16, "W": 16},
                    warn=False, convention="torch")
    assert str(cost.domain) == "H = 16 (pinned); W = 16 (pinned)" or \
        str(cost.domain) == "W = 16 (pinned); H = 16 (pinned)"
    assert sf.symbols.symbol("B") in cost.flops.free_symbols
    for b in (1, 2, 5, 1000):
        with FlopCounterMode(display=False) as fc:
            _ReshapesWithTheBatch().to("meta")(torch.empty(b, 3, 16, 16, device="meta"))
        assert cost.subs(B=b, H=16, W=16).flops == fc.get_total_flops()
    with pytest.raises(OutsideDomain, match="the model fixes H = 16"):
        cost.subs(B=1, H=20, W=16)
    # the pin comes from an equality torch recorded (no replacement of a dim): the note
    # names the reshape to the fixed grid that recorded it, for each of H and W
    line = f"test_trace_domain.py:{_ReshapesWithTheBatch.forward.__code__.co_firstlineno + 2}:" \
        " grid = t.reshape(x.shape[0], 4, 4, 16)"
    assert all(cost.report.pin_sites[n].endswith(line) for n in ("H", "W"))
    assert any(n.endswith(f"(H at {cost.report.pin_sites['H']}; W at "
                          f"{cost.report.pin_sites['W']})") for n in cost.notes)


class _ResizedPositions(nn.Module):
    """timm's ``dynamic_img_size``: a position table for a 4x4 patch grid, resized
    (bicubic, antialiased) to the input's grid unless the grid is the trained one. At the
    trained size the path holds only there; a size-dependent ``F.interpolate`` of a fixed
    table used to stop the symbolic trace ("SymIntArrayRef expected to contain only
    concrete integers")."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.pos = nn.Parameter(torch.zeros(1, 8, 4, 4))
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x)
        gh, gw = x.shape[-2], x.shape[-1]
        pos = self.pos if (gh, gw) == (4, 4) else nn.functional.interpolate(
            self.pos, size=(gh, gw), mode="bicubic", antialias=True, align_corners=False)
        return self.head((x + pos).flatten(2).transpose(1, 2))


def test_a_path_taken_only_at_the_trained_size_does_not_pin_it() -> None:
    # hints at the trained size (16x16: the 4x4 grid) take the path that holds only there;
    # the trace is made again at 32x32 and the trained size becomes a branch condition
    cost = sf.trace(_ResizedPositions(), "B 3 H W", hints={"H": 16, "W": 16}, warn=False)
    assert "pinned" not in str(cost.domain)
    assert any("holds only at" in n for n in cost.notes)
    assert any("kept as a condition" in n for n in cost.notes)
    torch_cost = cost.with_convention("torch")
    for b, h, w in ((1, 32, 32), (3, 20, 48), (2, 400, 124)):
        with FlopCounterMode(display=False) as fc:
            _ResizedPositions().to("meta")(torch.empty(b, 3, h, w, device="meta"))
        assert torch_cost.subs(B=b, H=h, W=w).flops == fc.get_total_flops()
        # every op (the resize too) against a trace at that size
        assert cost.subs(B=b, H=h, W=w).flops == sf.trace(
            _ResizedPositions(), f"{b} 3 {h} {w}", warn=False).flops
    # at the trained size itself the refusal says the trace moved away from it, and the
    # fix it names (the sizes as ints) gives FlopCounterMode's count there (a hint of 16
    # would take the same path and move away again)
    with pytest.raises(OutsideDomain, match=r"at H = 16, W = 16 \(the example\).*moved away"
                       ) as err:
        cost.subs(B=1, H=16, W=16)
    assert "as ints in the input spec" in str(err.value)
    at_16 = sf.trace(_ResizedPositions(), "B 3 16 16", convention="torch", warn=False)
    with FlopCounterMode(display=False) as fc:
        _ResizedPositions().to("meta")(torch.empty(2, 3, 16, 16, device="meta"))
    assert at_16.subs(B=2).flops == fc.get_total_flops()


class _PinsItsExample(nn.Module):
    """A path for exactly H = 32 (torch pins H there), none for 33 .. 59, another from 60
    on (Swin at 32 x 32 does this: its last stage's map is 1 x 1 up to 35)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 32:
            return x @ x.transpose(0, 1)  # 2 * B * B * 32 FLOPs
        if x.shape[1] < 60:
            raise ValueError("too small")
        return x.relu()


def test_a_refused_point_at_the_example_the_trace_moved_from_says_so() -> None:
    cost = sf.trace(_PinsItsExample(), "B H", {"H": 32}, convention="torch", warn=False)
    assert cost.domain.contains(H=64) and not cost.domain.contains(H=32)
    with pytest.raises(OutsideDomain, match=r"at H = 32 \(the example\)") as err:
        cost.subs(B=3, H=32)
    assert "as ints in the input spec" in str(err.value)
    # the fix is the domain's, so evaluate (arrays) and the domain's own check say the same
    with pytest.raises(OutsideDomain, match=r"at H = 32 \(the example\)"):
        cost.evaluate(B=[3, 3], H=[64, 32])
    with pytest.raises(OutsideDomain, match=r"at H = 32 \(the example\)"):
        cost.domain.check({cost.report.symbols["H"]: 32})
    # elsewhere outside the domain the fix is the domain's own
    with pytest.raises(OutsideDomain, match="model's code tests the size") as err:
        cost.subs(B=3, H=33)
    assert "the example" not in str(err.value)
    with pytest.raises(OutsideDomain, match="model's code tests the size"):
        cost.evaluate(B=[3, 3], H=[64, 33])


def test_the_command_line_names_the_moved_example_too(tmp_path, capsys) -> None:
    from symflops.cli import main

    (tmp_path / "pins.py").write_text(
        "from tests.test_trace_domain import _PinsItsExample\n"
        "def make():\n    return _PinsItsExample()\n", encoding="utf-8")
    args = ["trace", f"{tmp_path / 'pins.py'}:make", "--input", "B H", "--hint", "H=32"]
    assert main([*args, "--at", "B=3,H=64"]) == 0
    assert re.search(r"FLOPs \(exact\) +192\b", capsys.readouterr().out)  # relu: 3 * 64
    assert main([*args, "--at", "B=3,H=32"]) == 2
    err = capsys.readouterr().err
    assert "at H = 32 (the example)" in err and "as ints in the input spec" in err


class _PinsItsExampleLength(nn.Module):
    """The pinned size is N (a path for exactly N = 8); H has a bound of its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, H)
        if x.shape[1] == 8:
            return x * 2
        torch._check(x.shape[2] >= 4)
        if x.shape[2] < 4:
            raise ValueError("H too small")
        return x.relu()


def test_at_the_moved_example_another_sizes_condition_keeps_its_own_message() -> None:
    cost = sf.trace(_PinsItsExampleLength(), "B N H", {"N": 8, "H": 6}, warn=False)
    assert cost.report.moved_from == {"N": 8}
    with pytest.raises(OutsideDomain) as err:  # N = 8, but it is H that fails
        cost.subs(B=1, N=8, H=2)
    assert "the example" not in str(err.value) and "H" in str(err.value)
    # what the fix says: the size as an int gives the count at that point
    with FlopCounterMode(display=False) as fc:
        _PinsItsExample()(torch.empty(3, 32, device="meta"))
    assert sf.trace(_PinsItsExample(), "B 32", convention="torch",
                    warn=False).subs(B=3).flops == fc.get_total_flops() == 2 * 3 * 3 * 32


class _TfSame(nn.Module):
    """TensorFlow "SAME" padding: the pad is computed from the size in Python, which torch's
    symbolic shapes cannot follow; a fit on the lattice of the stride is the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = int(x.shape[-1])
        pad = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
        return self.conv(nn.functional.pad(x, [pad // 2, pad - pad // 2] * 2))


def test_a_fit_states_its_lattice_and_range_and_refuses_past_them() -> None:
    cost = sf.tracing.fit(_TfSame(), "B 3 H H", convention="torch")
    assert "H a multiple of 32" in str(cost.domain)
    lo, hi, step, offset = cost.domain.range_of("H")
    assert (step, offset) == (32, 0) and hi is not None and hi >= 4096
    for h in (320, 1024, hi):   # far from the fitted sizes (64..160) too
        with FlopCounterMode(display=False) as fc:
            _TfSame().to("meta")(torch.empty(1, 3, h, h, device="meta"))
        assert cost.subs(B=1, H=h).flops == fc.get_total_flops()
    with pytest.raises(OutsideDomain, match="multiple of 32"):
        cost.subs(B=1, H=300)      # off the lattice: TF padding differs there
    with pytest.raises(OutsideDomain, match="verified up to"):
        cost.subs(B=1, H=hi + 32)


# ----------------------------------------------------------------------------- every path
# A property test per path: at random points inside the stated domain the formula equals a
# direct count (FlopCounterMode on meta, torch convention); outside, one OutsideDomain.
_PATHS = {
    "trace: ceil-mode avg pool": (lambda: nn.Sequential(nn.AvgPool2d(3, 3, 1, ceil_mode=True),
                                                        nn.Conv2d(1, 4, 1)), "B 1 H W", {}),
    "trace: reshape naming the batch": (_ReshapesWithTheBatch, "B 3 H W",
                                        {"hints": {"H": 16, "W": 16}}),
    "trace: resized positions": (_ResizedPositions, "B 3 H W", {"hints": {"H": 16, "W": 16}}),
    "fit: TF SAME padding": (_TfSame, "B 3 H W", {"fallback": "fit"}),
    "fit: batch read as an int": (_IntBatch, "B 4 4", {"fallback": "fit"}),
}
_COSTS: dict[str, sf.Cost] = {}


def _path_cost(name: str) -> sf.Cost:
    if name not in _COSTS:
        make, spec, options = _PATHS[name]
        _COSTS[name] = sf.trace(make(), spec, convention="torch", warn=False, **options)
    return _COSTS[name]


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(_PATHS)), b=st.integers(1, 64), h=st.integers(1, 700),
       w=st.integers(1, 700), snap=st.booleans())
def test_inside_each_paths_domain_a_direct_count_outside_an_error(name: str, b: int, h: int,
                                                                  w: int, snap: bool) -> None:
    cost = _path_cost(name)
    make, spec, _options = _PATHS[name]
    point = {"B": b, "H": h, "W": w} if "H" in spec else {"B": b}
    if snap:  # half the draws moved onto the domain's own range of each size
        for n, v in point.items():
            lo, hi, step, offset = cost.domain.range_of(n)
            v = max(lo, v - (v - offset) % step)
            point[n] = v if hi is None else min(v, hi - (hi - offset) % step)
    b, h, w = point["B"], point.get("H", 0), point.get("W", 0)
    if not cost.domain.contains(**point):
        event("outside")
        with pytest.raises(OutsideDomain):
            cost.subs(**point)
        return
    event("inside")
    shape = (b, 3, h, w) if spec.startswith("B 3") else (b, 1, h, w) if "H" in spec else \
        (b, 4, 4)
    assert cost.subs(**point).flops == _flops_torch(make().to("meta"),
                                                    torch.empty(shape, device="meta"))


class _Positions(nn.Module):
    """GPT-2's way: token ids plus positions ``arange(N)`` looked up in a table of 64 rows.
    On fake tensors the lookup past the table's end raised nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(100, 16)
        self.pos = nn.Embedding(64, 16)
        self.fc = nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        past = 0  # transformers: arange(N) + the cached length
        p = (torch.arange(ids.shape[1], device=ids.device) + past).unsqueeze(0).expand_as(ids)
        return self.fc(self.tok(ids) + self.pos(p))


def test_positions_past_the_table_are_outside_the_domain() -> None:
    cost = sf.trace(_Positions(), (("B", "N"), torch.long), hints={"N": 16}, warn=False,
                    convention="torch")
    lo, hi, _step, _offset = cost.domain.range_of("N")
    assert hi == 64
    for n in (1, 37, 64):  # the model runs up to its table's 64 rows
        with FlopCounterMode(display=False) as fc:
            _Positions()(torch.zeros(3, n, dtype=torch.long))
        assert cost.subs(B=3, N=n).flops == fc.get_total_flops()
    with pytest.raises(IndexError):
        _Positions()(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(OutsideDomain, match="N <= 64"):
        cost.subs(B=1, N=65)
    # an example size past the table is moved to the table's length, and said
    moved = sf.trace(_Positions(), (("B", "N"), torch.long), hints={"N": 100}, warn=False,
                     convention="torch")
    assert moved.flops == cost.flops and moved.domain.range_of("N")[1] == 64
    assert any("N=100 -> 64" in n for n in moved.notes)
    # a concrete size past the table: one error naming the table
    with pytest.raises(sf.SymflopsError, match="index a table of 64 rows"):
        sf.trace(_Positions(), ((1, 65), torch.long), warn=False)


class _LastCell(nn.Module):
    """SSD's pattern: a map pooled to ``ceil(H/512) x ceil(W/512)`` cells, read as one
    cell per channel (a view that holds only while the map is 1 x 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.max_pool2d(self.conv(x), 512, ceil_mode=True)
        return y.view(x.shape[0], 4)


def test_an_equality_that_holds_on_a_range_of_sizes_is_that_range_not_a_pin() -> None:
    # torch guards ceil(H/512) ceil(W/512) == 1 (and each factor == 1): the sizes up to
    # 512 all take this path, so the formula holds for H, W <= 512 and refuses 513 (the
    # ceil-mode pool's last-window branch adds H < 512, W < 512)
    cost = sf.trace(_LastCell(), "B 3 H W", hints={"H": 320, "W": 320}, warn=False)
    assert not cost.report.fixed
    # read from the conditions however torch spelled them (H <= 512, or the cell count's
    # floor(H/512 - 1/512) + 1 <= 1 when torch records only the product of the two)
    assert cost.domain.range_of("H")[:2] == (1, 511)
    assert cost.domain.range_of("W")[:2] == (1, 512)
    torch_cost = cost.with_convention("torch")
    for b, h, w in ((1, 320, 320), (2, 17, 500), (3, 511, 1), (1, 511, 512)):
        with FlopCounterMode(display=False) as fc:
            _LastCell().to("meta")(torch.empty(b, 3, h, w, device="meta"))
        assert torch_cost.subs(B=b, H=h, W=w).flops == fc.get_total_flops()
    with pytest.raises(OutsideDomain):
        cost.subs(B=1, H=513, W=100)
    # a narrow range (a 4 x 4 grid's 16 <= H <= 19) stays a pin the trace moves off:
    # test_a_path_taken_only_at_the_trained_size_does_not_pin_it


@pytest.mark.slow
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_gpt2_at_one_token_is_exact_or_refused(device: str) -> None:
    # transformers may take another path for a single query token (no causal mask when
    # q_len is 1; on meta, before this check, the exact count at N = 1 was off by 24). Either
    # way the symbolic formula at N = 1 is exact or refused, and N given as the number 1
    # equals a fully concrete trace and FlopCounterMode
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)
    if device == "cpu":  # FlopCounterMode does not count CPU flash attention: eager's bmm
        config._attn_implementation = "eager"
    with torch.device(device):
        model = transformers.GPT2LMHeadModel(config).eval()
    cost = sf.trace(model, {"input_ids": ("B", "N")}, warn=False)
    one = sf.trace(model, {"input_ids": ("B", 1)}, warn=False)
    for b in (1, 3):
        concrete = sf.trace(model, {"input_ids": (b, 1)}, warn=False)
        assert one.subs(B=b).flops == concrete.flops
        if any(n.startswith("N = 1 refused") for n in cost.notes):
            with pytest.raises(OutsideDomain, match="N given as the number 1"):
                cost.subs(B=b, N=1)
        else:
            assert any(n.startswith("N = 1 checked") for n in cost.report.notes)
            assert cost.subs(B=b, N=1).flops == concrete.flops
        if device == "cpu":
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                model(torch.zeros(b, 1, dtype=torch.long))
            assert one.with_convention("torch").subs(B=b).flops == fc.get_total_flops()
    assert cost.subs(B=1, N=9).flops == sf.trace(model, {"input_ids": (1, 9)}, warn=False).flops


class _PinnedWidthOneImage(nn.Module):
    """A Linear over the last dim pins W = 16; one image takes a squeeze path (the same
    work). The B = 1 check traces with W the int 16, the size the formula holds at."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y[0].relu().unsqueeze(0) if x.shape[0] == 1 else y.relu()


def test_one_is_checked_at_the_sizes_the_model_pins() -> None:
    torch.manual_seed(0)
    model = _PinnedWidthOneImage()
    cost = sf.trace(model, "B H W", hints={"H": 8, "W": 16}, warn=False)
    assert cost.report.fixed == {"W": 16}
    assert any(n.startswith("B = 1 checked") for n in cost.report.notes)
    for b, h in [(1, 5), (1, 333), (4, 7)]:
        # by hand, torch convention: 2*16*4 FLOPs per row of the Linear
        assert cost.with_convention("torch").subs(B=b, H=h).flops == 2 * 16 * 4 * b * h == \
            _flops_torch(model, torch.zeros(b, h, 16))


def test_the_traces_that_only_check_keep_their_formulas_as_built(monkeypatch: Any) -> None:
    """settle's trace at B = 1 is compared with the user's at points and never shown, so it
    is built :func:`~symflops.cost.unsimplified`; the user's trace, and the cost returned,
    keep the simplified form, and the switch is back on after the trace."""
    import sympy as sp

    import symflops.cost as cost_module
    import symflops.tracing._run as run_module
    from symflops.simplification import simplify_expr

    seen: list[tuple[dict[str, int], bool]] = []
    real_run_once = run_module.run_once

    def watched(ctx: Any) -> Any:
        seen.append((dict(ctx.hint_of), cost_module._SIMPLIFIED.get()))
        return real_run_once(ctx)

    monkeypatch.setattr(run_module, "run_once", watched)
    cost = sf.trace(_OneImage(same=True), "B N", warn=False)
    assert seen[0][1] is True  # the user's own trace
    assert len(seen) >= 2 and all(not simplified for _, simplified in seen[1:])
    assert any(n.startswith("B = 1 checked") for n in cost.report.notes)
    assert cost_module._SIMPLIFIED.get() is True
    for path, node in cost.walk():
        for v in node.work.values():
            assert sp.srepr(v) == sp.srepr(simplify_expr(v)), path


def test_unsimplified_is_undone_on_error() -> None:
    import symflops.cost as cost_module

    with pytest.raises(RuntimeError), cost_module.unsimplified():
        assert cost_module._SIMPLIFIED.get() is False
        raise RuntimeError("inside")
    assert cost_module._SIMPLIFIED.get() is True


class PadToPatch(nn.Module):
    """HF FocalNet's patch embedding: each side padded up to a multiple of the 4-pixel
    patch only when it is not one (``if w % 4 != 0: pad``), then a stride-4 conv. Traced
    at 32, the sizes sit on the lattice of multiples of 4; symflops traces again at 33 for
    the general path, and there the pad is ``4 - W mod 4``, a formula that is wrong at
    multiples of 4 (one patch too many): that formula, returned, refused the size the user
    traced at."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if w % 4 != 0:
            x = nn.functional.pad(x, (0, 4 - w % 4))
        if h % 4 != 0:
            x = nn.functional.pad(x, (0, 0, 0, 4 - h % 4))
        return self.patch(x)


def _fcm(model: nn.Module, *shape: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(*shape, device="meta"))
    return int(counter.get_total_flops())


def test_a_trace_on_a_lattice_keeps_the_example_sizes_when_off_it_costs_otherwise() -> None:
    with torch.device("meta"):
        model = PadToPatch().eval()
    on = sf.trace(model, "B 3 H W", hints={"H": 32, "W": 32}, warn=False, convention="torch")
    assert any("off the lattice (traced again at H=33, W=33)" in n for n in on.report.notes)
    for b, h, w in ((1, 32, 32), (2, 4, 8), (3, 1024, 96)):
        assert on.subs(B=b, H=h, W=w).flops == _fcm(model, b, 3, h, w)
    with pytest.raises(OutsideDomain, match="multiple of 4"):
        on.subs(B=1, H=33, W=32)
    off = sf.trace(model, "B 3 H W", hints={"H": 33, "W": 37}, warn=False, convention="torch")
    for b, h, w in ((1, 33, 37), (2, 5, 7), (1, 999, 1001)):
        assert off.subs(B=b, H=h, W=w).flops == _fcm(model, b, 3, h, w)
    with pytest.raises(OutsideDomain):
        off.subs(B=1, H=32, W=37)


class _BranchesBelow512(nn.Module):
    """A test on ``-N > -512`` (torch's own spelling in HF XLNet of ``N < 512``): an upper
    bound written as a lower one. ``same``: both sides cost one op per element."""

    def __init__(self, same: bool) -> None:
        super().__init__()
        self.same = same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if -x.shape[1] > -512:
            return x * 2
        return x + x if self.same else x * 2 + 1


def test_an_upper_bound_spelled_as_a_lower_one_is_a_branch_traced_on_its_other_side() -> None:
    # it was read as a size's lower bound: no trace at N = 512, and the domain said
    # "verified up to 511", as though a range had been checked
    differs = sf.trace(_BranchesBelow512(same=False), "B N", warn=False)
    assert str(differs.domain) == "1 <= N <= 511 (another code path above 511)"
    assert any("on its other side the cost differs (at B=2, N=512)" in n
               for n in differs.notes)
    with pytest.raises(OutsideDomain, match="another code path past N = 511") as e:
        differs.subs(B=1, N=512)
    assert e.value.options == {"hints": {"N": 512}}  # just past the bound
    assert "trace the model at such a size (--hint N=512)" in e.value.cli_text()
    there = sf.trace(_BranchesBelow512(same=False), "B N", hints=e.value.options["hints"],
                     warn=False)
    assert there.domain.contains(N=512) and not there.domain.contains(N=511)
    # the same cost on both sides: the bound goes, and the formula holds at N = 4096
    same = sf.trace(_BranchesBelow512(same=True), "B N", warn=False)
    assert any("-N > -512 dropped: a trace at N=512" in n for n in same.notes)
    assert same.subs(B=3, N=4096).flops == 3 * 4096


class _TableFromSixteen(nn.Module):
    """Below 16 one path; from 16 on, a 16-entry table added along the sequence, which
    works only at N = 16 (MPT's ALiBi table of ``max_seq_len`` rows). Both paths cost one
    multiply and one add per element."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.arange(16.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < 16:
            return x * 3 + x
        return x * 3 + self.table


def test_a_branch_whose_other_side_pins_a_size_is_kept() -> None:
    # the trace at N = 16 pins N there; its formula equals this one at every size, so the
    # guard was dropped and the domain said "every size", though the model fails at 17
    cost = sf.trace(_TableFromSixteen(), "B N", hints={"N": 8}, warn=False)
    assert any("N < 16 kept as a condition: on its other side the model fixes N=16" in n
               for n in cost.notes)
    assert str(cost.domain) == "1 <= N <= 15 (another code path above 15)"
    with pytest.raises(RuntimeError):
        _TableFromSixteen()(torch.zeros(2, 17))
    with pytest.raises(OutsideDomain, match="another code path past N = 15"):
        cost.subs(B=2, N=17)
    assert cost.subs(B=3, N=15).flops == 2 * 3 * 15  # a multiply and an add per element


class _PositionTable(nn.Module):
    """GPT-2's way: positions ``arange(N)`` index a table of 32 rows."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Embedding(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos(torch.arange(x.shape[1]))


def test_a_table_end_is_not_called_another_code_path() -> None:
    # the trace past the table fails (no path there): the bound is where the model stops,
    # which the domain's fix says, not where a branch turns
    cost = sf.trace(_PositionTable(), "B N 4", hints={"N": 16}, warn=False)
    assert "another code path" not in str(cost.domain)
    assert "N <= 32" in str(cost.domain)


class _TestsFifteen(nn.Module):
    """A test in the model's code spelled as torch spells Mistral's sliding-window test
    (``-N <= -15``); both paths cost one op per element."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if -x.shape[1] <= -15:
            return x * 2
        return x + x


def test_a_range_torch_narrowed_by_a_branch_is_no_lower_bound() -> None:
    # torch narrowed N's range to N >= 15 by the branch itself, and that range entered the
    # domain as a lower bound: settle found no size on the branch's other side inside it
    # and kept the branch; the domain said N >= 15 (HF Mistral, refused at N = 14)
    cost = sf.trace(_TestsFifteen(), "B N", warn=False)
    assert any("-N <= -15 dropped: a trace at N=8" in n for n in cost.notes)
    assert str(cost.domain) == "every size"
    for b, n in [(1, 1), (2, 14), (3, 15), (1, 300)]:
        assert cost.subs(B=b, N=n).flops == b * n  # one op per element, by hand


class _OtherPathOnMultiplesOf8(nn.Module):
    """One op per element off multiples of 8 (x * 2), a sigmoid on them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[2] % 8 else x.sigmoid()


def test_a_branch_on_a_multiple_gives_the_point_to_trace_as_hints() -> None:
    # the fix said "trace it at such a size (hints=)", in Python and on the command line
    cost = sf.trace(_OtherPathOnMultiplesOf8(), "B 3 H W", hints={"H": 30, "W": 32},
                    warn=False)
    assert str(cost.domain) == "H mod 8 in 1..7"
    with pytest.raises(OutsideDomain, match="another branch where 8 divides H") as e:
        cost.subs(B=1, H=32, W=32)
    assert e.value.options == {"hints": {"B": 1, "H": 32, "W": 32}}
    assert "trace it at such a size (--hint B=1 --hint H=32 --hint W=32)" in \
        e.value.cli_text()
    there = sf.trace(_OtherPathOnMultiplesOf8(), "B 3 H W", hints=e.value.options["hints"],
                     warn=False)
    x = torch.zeros(1, 3, 32, 32)
    assert there.with_convention("torch").subs(B=1, H=32, W=32).flops == \
        _flops_torch(_OtherPathOnMultiplesOf8(), x)
    assert str(there.domain) == "H a multiple of 8"  # the other side's own formula


def test_the_command_line_follows_its_own_advice_below_a_tested_bound(tmp_path,
                                                                       capsys) -> None:
    from symflops.cli import main

    (tmp_path / "small.py").write_text(
        "from tests.test_trace_domain import _SmallInputsElsewhere\n"
        "def make():\n    return _SmallInputsElsewhere()\n", encoding="utf-8")
    args = ["trace", f"{tmp_path / 'small.py'}:make", "--input", "B 3 H W", "--hint", "H=32",
            "--hint", "W=32", "--at", "B=1,H=2,W=32"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "trace at H = 16 (--hint H=16) to see which, or with --paths all" in err
    assert main([*args, "--paths", "all"]) == 0  # the advice, as typed
    # below 17 the sigmoid path: 3 * 2 * 32 elements, 3 each (exp(-x), add 1, divide)
    assert re.search(r"FLOPs \(exact\) +576\b", capsys.readouterr().out)
