"""Patterns of timm's image models that once kept a trace from being symbolic, each in a
miniature torch module (timm itself is not needed): benchmarks/check_timm.py runs the real
models. Every formula is compared with FlopCounterMode at sizes far apart.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops.errors import OutsideDomain  # noqa: E402
from symflops.tracing._assembly import TracedCost  # noqa: E402


def _flops(model: nn.Module, *shape: int) -> int:
    """FlopCounterMode's count of one forward of the (meta) model at ``shape``."""
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.empty(*shape, device="meta"))
    return int(fc.get_total_flops())


def _meta(cls: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return cls().eval()


class UnfoldFold(nn.Module):
    """MobileViT's block (timm ``MobileVitBlock``): a stride-8 feature map cut into 2 x 2
    patches (rounded up to even by interpolation), ``(B, C, H, W) -> (4B, N, C)``,
    attention over the N patches, then folded back. The fold's ``view(B, 4, N, -1)`` made
    torch compare ``4*B`` with ``floor(h/ceiling(h/2))*floor(w/ceiling(w/2))``, which is
    4 wherever the formula holds (h, w even): ``4*B != 4``, torch's 0/1 check of the
    batch. Read as a branch, it refused B = 1."""

    def __init__(self, c: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.stem = nn.Conv2d(3, c, 3, stride=8, padding=1)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        b, c, h, w = x.shape
        new_h, new_w = math.ceil(h / 2) * 2, math.ceil(w / 2) * 2
        nh, nw = new_h // 2, new_w // 2
        n = nh * nw
        if new_h != h or new_w != w:
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
        x = x.reshape(b * c * nh, 2, nw, 2).transpose(1, 2)
        x = x.reshape(b, c, n, 4).transpose(1, 3).reshape(b * 4, n, -1)
        q, k, v = self.qkv(x).reshape(4 * b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        x = ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(4 * b, n, c)
        x = self.proj(x)
        x = x.contiguous().view(b, 4, n, -1)
        x = x.transpose(1, 3).reshape(b * c * nh, nw, 2, 2)
        return x.transpose(1, 2).reshape(b, c, nh * 2, nw * 2)


@pytest.mark.slow  # many guards of nested floors: ~15 s of SymPy alone
def test_unfold_fold_answers_batch_one_at_every_even_grid() -> None:
    model = _meta(UnfoldFold)
    cost = sf.trace(model, "B 3 H W", {"H": 128, "W": 128}, convention="torch", warn=False)
    assert isinstance(cost, TracedCost)
    assert not cost.report.fixed
    assert not any("4*B" in str(c) for c in cost.validity), cost.validity
    # hand count at B = 1, 128 x 128: the stem's 16 x 16 x 8 outputs of 27 MACs (2,048 x 27
    # = 55,296 MACs), then N = 64 patches of 4 pixels, 4B = 4 sequences: qkv 4*64*8*24 =
    # 49,152, the two attention products 2*4*2*64*64*4 = 262,144, proj 4*64*64 = 16,384:
    # 382,976 MACs; torch counts 2 FLOPs each
    assert cost.subs(B=1, H=128, W=128).flops == 2 * (55_296 + 49_152 + 262_144 + 16_384)
    for b, h, w in ((1, 128, 128), (3, 256, 320), (1, 2048, 1040), (2, 96, 1600)):
        assert cost.subs(B=b, H=h, W=w).flops == _flops(model, b, 3, h, w), (b, h, w)


class GlobalQueryWindows(nn.Module):
    """GCViT's global attention (timm ``WindowAttentionGlobal``): keys and values from 2 x 2
    windows of the map, one query grid per image from a stride-8 convolution, repeated over
    the image's windows (``repeat_interleave(B_windows // B)``) and read as one query per
    window token. The query grid is 2 x 2 only at 16 x 16, so the model runs at that size
    alone; torch's reshape recorded ``B == floor(B*ceiling(H/8)*ceiling(W/8)/4)``, which
    pinned the batch too."""

    def __init__(self, c: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.down = nn.Conv2d(c, c, 1, stride=8)
        self.kv = nn.Linear(c, 2 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x: Tensor) -> Tensor:
        g = self.down(x).permute(0, 2, 3, 1)
        x = x.permute(0, 2, 3, 1)
        b, h, w, c = x.shape
        win = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5).contiguous() \
            .view(-1, 4, c)
        bw, n, _ = win.shape
        k, v = self.kv(win).reshape(bw, n, 2, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        q = g.repeat_interleave(bw // g.shape[0], dim=0)
        q = q.reshape(bw, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        a = ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c)
        a = self.proj(a)
        return a.view(-1, h // 2, w // 2, 2, 2, c).permute(0, 1, 3, 2, 4, 5).contiguous() \
            .view(-1, h, w, c)


@pytest.mark.slow  # ~10 s of SymPy alone
def test_global_query_pins_the_grid_not_the_batch() -> None:
    model = _meta(GlobalQueryWindows)
    cost = sf.trace(model, "B 8 H W", {"H": 16, "W": 16}, convention="torch", warn=False)
    assert isinstance(cost, TracedCost)
    assert cost.report.fixed == {"H": 16, "W": 16}
    # hand count per image: the 1x1 stride-8 conv 2*2*8*8 = 256 MACs; 64 windows of 4
    # tokens: kv 256*8*16 = 32,768, the attention products 2 * 64*2*4*4*4 = 16,384, proj
    # 256*8*8 = 16,384; 65,792 MACs = 131,584 FLOPs an image
    for b in (1, 3, 40):
        assert cost.subs(B=b).flops == 131_584 * b == _flops(model, b, 8, 16, 16)
    with pytest.raises(OutsideDomain):
        cost.subs(B=1, H=32, W=32)


class ScaleToBranches(nn.Module):
    """CrossViT's input (timm ``scale_image``): each branch resizes the image to its own
    size unless it is that size already, then embeds 8 x 8 patches. Off the branch sizes
    one formula holds; at 32 or 24 a resize is skipped, so the symbolic formula refuses
    those sizes and a trace there answers them."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes = (32, 24)
        self.embed = nn.ModuleList(nn.Conv2d(3, 8, 8, stride=8) for _ in self.sizes)

    def forward(self, x: Tensor) -> Tensor:
        out = []
        for s, embed in zip(self.sizes, self.embed, strict=True):
            h, w = x.shape[-2:]
            y = x if (h == s and w == s) else F.interpolate(x, size=(s, s), mode="bicubic",
                                                              align_corners=False)
            out.append(embed(y).flatten(1))
        return torch.cat(out, 1)


def test_resize_unless_already_that_size_refuses_the_branch_sizes() -> None:
    model = _meta(ScaleToBranches)
    cost = sf.trace(model, "B 3 H W", {"H": 40, "W": 40}, warn=False)
    assert isinstance(cost, TracedCost)
    assert not cost.report.fixed
    at = cost.with_convention("torch")
    # the patch embeddings only: (16 + 9) patches of 8 outputs x 192 MACs, 2 FLOPs each
    for b, h, w in ((1, 40, 40), (3, 100, 72), (2, 513, 7)):
        assert at.subs(B=b, H=h, W=w).flops == 2 * 25 * 8 * 192 * b == \
            _flops(model, b, 3, h, w), (b, h, w)
    for s in (32, 24):  # the exact count differs there (no resize): refused, not guessed
        with pytest.raises(OutsideDomain):
            cost.subs(B=1, H=s, W=s)
        there = sf.trace(model, f"B 3 {s} {s}", warn=False)
        assert there.with_convention("torch").subs(B=2).flops == _flops(model, 2, 3, s, s)
        assert there.subs(B=2).flops != cost.subs(B=2, H=s + 1, W=s + 1).flops


class WindowLattice(nn.Module):
    """MaxViT's window partition (timm ``window_partition``/``window_reverse``): the map must
    split into 8 x 8 windows, asserted in Python, so torch cannot run it at the default 224
    (28 is no multiple of 8 after the stride-8 stem). The model declares its size as timm
    does (``pretrained_cfg``), and the error suggests it as hints. Traced at 512 (8 x 8
    windows), the windows' way back, ``view(-1, h // 8, w // 8, 8, 8, c)``, makes torch test
    whether there is more than one window: the formula from 512 refuses one window (64 x 64)
    and a trace there answers it."""

    pretrained_cfg = {"input_size": (3, 512, 512)}  # noqa: RUF012 - timm's attribute

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=8, padding=1)
        self.mix = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        b, c, h, w = x.shape
        assert h % 8 == 0 and w % 8 == 0, f"{h} x {w} must be divisible by the window (8)"
        win = x.view(b, c, h // 8, 8, w // 8, 8).permute(0, 2, 4, 3, 5, 1).reshape(-1, 64, c)
        win = self.mix(win.softmax(1))
        return win.view(-1, h // 8, w // 8, 8, 8, c)  # the windows back (window_reverse)


@pytest.mark.slow  # two traces with retries, ~10 s on a loaded machine
def test_window_lattice_names_the_declared_size() -> None:
    model = _meta(WindowLattice)
    with pytest.raises(sf.SymflopsError) as e:
        sf.trace(model, "B 3 H W", warn=False)
    said = str(e.value)
    assert "'H': 224" in said and "hints={'H': 512, 'W': 512}" in said, said
    cost = sf.trace(model, "B 3 H W", {"H": 512, "W": 512}, convention="torch", warn=False)
    # hand: 4 outputs x 27 MACs a stem position, (H/8) x (W/8) positions; the Linear 4 x 4
    # MACs a token
    def hand(b: int, h: int, w: int) -> int:
        return 2 * b * (h // 8) * (w // 8) * (4 * 27 + 16)

    for b, h, w in ((1, 512, 512), (2, 128, 1024), (3, 1024, 192)):
        assert cost.subs(B=b, H=h, W=w).flops == hand(b, h, w) == _flops(model, b, 3, h, w)
    with pytest.raises(OutsideDomain):  # one window: another code path of torch's view
        cost.subs(B=1, H=64, W=64)
    one = sf.trace(model, "B 3 64 64", convention="torch", warn=False)
    for b in (1, 3):
        assert one.subs(B=b).flops == hand(b, 64, 64) == _flops(model, b, 3, 64, 64)


class SamWindows(nn.Module):
    """timm's ``samvit`` (SAM's image encoder): a 16 x 16 patch embedding laid out NHWC,
    an absolute position table of the 14 x 14 grid of 224 x 224 (it fixes H and W), then
    14 x 14 window attention's partition (padded up to whole windows) and unpartition,
    whose window count torch divides the batch by. Classifying its guards substituted
    sizes where a divisor is 0: ``ZeroDivisionError: Modulo by zero`` came out of the
    trace instead of a formula."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 16, 16)
        self.pos = nn.Parameter(torch.zeros(1, 14, 14, 8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch(x).permute(0, 2, 3, 1) + self.pos
        b, h, w, c = x.shape
        s = 14
        pad_h, pad_w = (s - h % s) % s, (s - w % s) % s
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        x = x.view(b, hp // s, s, wp // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s, s, c)
        x = self.proj(x)
        n = x.shape[0] // (hp * wp // s // s)
        x = x.view(n, hp // s, wp // s, s, s, -1).permute(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, -1)
        return x[:, :h, :w, :].contiguous()


def test_sam_windows_pin_the_grid_without_a_division_by_zero() -> None:
    model = _meta(SamWindows)
    cost = sf.trace(model, "B 3 H W", warn=False, convention="torch")
    assert cost.report.fixed == {"H": 224, "W": 224}
    for b in (1, 3, 16):
        assert int(cost.subs(B=b, H=224, W=224).flops) == _flops(model, b, 3, 224, 224)
