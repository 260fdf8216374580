"""Block and grid partitions (MaxViT's mechanism) trace symbolically: a hand-written
miniature doing torchvision's ops (``reshape(B, C, H // P, P, W // P, P)``, permute,
``reshape(B, (H // P) * (W // P), P * P, C)``, the grid variant with the partition size
``P = H // G`` a function of the map's side and the two window axes swapped, attention per
partition, and the departition's reshape back), with the feature map's side spelt as a
multiple of the lattice (``x[..., :16 * (H // 16), ...]`` after ``torch._check``), as
benchmarks/check_partitions.py does for torchvision's maxvit_t. torch's own view
reference turned those sizes into nested quotients it could not simplify (the trace of
maxvit_t ran out of its budget); the view shape rule keeps them polynomial."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf
from symflops.errors import OutsideDomain, SymflopsError
from symflops.tracing._assembly import TracedCost
from symflops.tracing.input_size import follow_input_size

# the traces of the miniatures take ~5 s (MaxViT) to ~25 s (MViT) on a loaded machine: the
# tests that read them are slow; the refusals and the concrete forwards are the fast lane


class PartitionAttention(torch.nn.Module):
    """Attention inside ``P x P`` windows (``grid=False``) or across a ``G x G`` grid of
    stride ``H // G`` (``grid=True``): the tokens attended together are ``P*P`` or
    ``G*G``."""

    def __init__(self, dim: int, size: int, grid: bool) -> None:
        super().__init__()
        self.size, self.grid = size, grid
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        B, C, H, W = x.shape
        p = H // self.size if self.grid else self.size  # torchvision: n_partitions
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(B, (H // p) * (W // p), p * p, C)
        if self.grid:
            x = x.swapaxes(-2, -3)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v)
        if self.grid:
            x = x.swapaxes(-2, -3)
        x = x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)


class TinyMaxViT(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.down1 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.block1 = PartitionAttention(8, 2, grid=False)
        self.grid1 = PartitionAttention(8, 2, grid=True)
        self.down2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.block2 = PartitionAttention(16, 2, grid=False)
        self.grid2 = PartitionAttention(16, 2, grid=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2]
        torch._check(h % 16 == 0)  # every map splits into 2 x 2 windows and a 2 x 2 grid
        x = x[:, :, :16 * (h // 16), :16 * (h // 16)]
        x = self.grid1(self.block1(self.down1(self.stem(x))))
        return self.grid2(self.block2(self.down2(x))).mean((2, 3))


def _macs(model: torch.nn.Module, b: int, h: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(b, 3, h, h, device="meta"))
    return counter.get_total_flops() // 2


def _hand(b: int, h: int) -> int:
    """By hand, q = h/16 (maps 8q, 4q, 2q): convs 27*8 (8q)^2 + 72*8 (4q)^2 + 72*16 (2q)^2;
    a partition layer on n = s^2 tokens of dim d, attending in groups of 4: qkv 3d^2 n,
    proj d^2 n, QK^T and AV 4 d n each."""
    q = h // 16
    convs = 27 * 8 * (8 * q) ** 2 + 72 * 8 * (4 * q) ** 2 + 72 * 16 * (2 * q) ** 2
    layer = sum(2 * (4 * d * d * n + 8 * d * n) for d, n in ((8, (4 * q) ** 2),
                                                              (16, (2 * q) ** 2)))
    return b * (convs + layer)


@pytest.fixture(scope="module")
def traced() -> TracedCost:
    with torch.device("meta"):
        model = TinyMaxViT().eval()
    cost = sf.trace(model, "B 3 H H", {"H": 32}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    return cost


@pytest.mark.slow
def test_block_and_grid_partitions_symbolic_and_exact(traced: TracedCost) -> None:
    with torch.device("meta"):
        model = TinyMaxViT().eval()
    assert not traced.report.fixed
    assert {s.name for s in traced.macs.free_symbols} == {"B", "H"}
    # far from the hint (H = 32): 3 to 40 times the side
    for b, h in [(2, 48), (3, 160), (2, 1280)]:
        assert int(traced.subs(B=b, H=h).macs) == _macs(model, b, h) == _hand(b, h), (b, h)


@pytest.mark.slow
def test_partition_domain_is_the_lattice(traced: TracedCost) -> None:
    # off the lattice the model would crop the map: refused, not answered
    with pytest.raises(OutsideDomain):
        traced.subs(B=2, H=40)


def test_view_rule_sizes_and_minus_one() -> None:
    """The view shape rule's own cases: explicit sizes that multiply out, one ``-1``
    divided out, and a split that needs a divisibility torch must check (its path)."""

    class Views(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, 4)
            b, n, c = x.shape
            y = self.lin(x.view(-1, c)).view(b, n, 5)  # -1 = B*N, then explicit sizes
            z = x.reshape(b, n // 2, 2 * c)  # N even: torch's view decides (a guard)
            return y.sum() + self.lin(z[..., :4]).sum()

    with torch.device("meta"):
        model = Views().eval()
    cost = sf.trace(model, "B N 4", {"N": 6}, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    assert not cost.report.fixed
    for b, n in [(2, 10), (5, 64)]:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(b, n, 4, device="meta"))
        assert int(cost.subs(B=b, N=n).macs) == counter.get_total_flops() // 2 == \
            b * n * 20 + b * (n // 2) * 20
    with pytest.raises(OutsideDomain):  # odd N: the reshape fails in torch, refused here
        cost.subs(B=2, N=7)


# --- follow_input_size on miniatures of torchvision's MaxVit and MViT ---------------------
# The classes below copy the structure and attribute names torchvision's maxvit.py and
# video/mvit.py have (the sizes each constructor keeps, the ops each forward runs with
# them), at a few channels, so that symflops.tracing.input_size.follow_input_size is
# exercised without torchvision. benchmarks/check_partitions.py runs it on the real ones.


def _conv_out(size: int) -> int:
    """torchvision's ``_get_conv_output_shape(size, 3, 2, 1)``."""
    return (size - 3 + 2 * 1) // 2 + 1


class WindowPartition(torch.nn.Module):
    def forward(self, x: torch.Tensor, p: int) -> torch.Tensor:
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, (H // p) * (W // p), p * p, C)


class WindowDepartition(torch.nn.Module):
    def forward(self, x: torch.Tensor, p: int, hp: int, wp: int) -> torch.Tensor:
        B, G, PP, C = x.shape
        x = x.reshape(B, hp, wp, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, hp * p, wp * p)


class PartitionAttentionLayer(torch.nn.Module):
    """torchvision's: ``n_partitions``, ``p``, ``g`` and ``grid_size`` fixed in the
    constructor; attention over ``partition_size ** 2`` tokens with a bias table of that
    size (torchvision's relative position bias)."""

    def __init__(self, dim: int, partition_size: int, partition_type: str,
                 grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.n_partitions = grid_size[0] // partition_size
        self.partition_type = partition_type
        self.grid_size = grid_size
        if partition_type == "window":
            self.p, self.g = partition_size, self.n_partitions
        else:
            self.p, self.g = self.n_partitions, partition_size
        self.partition_op = WindowPartition()
        self.departition_op = WindowDepartition()
        self.to_qkv = torch.nn.Linear(dim, 3 * dim)
        self.merge = torch.nn.Linear(dim, dim)
        self.bias = torch.nn.Parameter(torch.zeros(partition_size ** 2, partition_size ** 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gh, gw = self.grid_size[0] // self.p, self.grid_size[1] // self.p
        torch._assert(self.grid_size[0] % self.p == 0 and self.grid_size[1] % self.p == 0,
                      "Grid size must be divisible by partition size")
        x = self.partition_op(x, self.p)
        if self.partition_type == "grid":
            x = x.swapaxes(-2, -3)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        x = x + self.merge(((q @ k.transpose(-2, -1)) + self.bias).softmax(-1) @ v)
        if self.partition_type == "grid":
            x = x.swapaxes(-2, -3)
        return self.departition_op(x, self.p, gh, gw)


class MaxVitLayer(torch.nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, partition_size: int,
                 grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(cin, cout, 3, stride=stride, padding=1),  # the MBConv
            PartitionAttentionLayer(cout, partition_size, "window", grid_size),
            PartitionAttentionLayer(cout, partition_size, "grid", grid_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MaxVitBlock(torch.nn.Module):
    def __init__(self, cin: int, cout: int, partition_size: int,
                 input_grid_size: tuple[int, int], n_layers: int) -> None:
        super().__init__()
        self.grid_size = (_conv_out(input_grid_size[0]), _conv_out(input_grid_size[1]))
        self.layers = torch.nn.ModuleList(
            MaxVitLayer(cin if i == 0 else cout, cout, 2 if i == 0 else 1, partition_size,
                        self.grid_size) for i in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MaxVit(torch.nn.Module):
    """torchvision's MaxVit at 2 x 2 partitions and two blocks: built for ``input_size``,
    a multiple of 16 (2 * 2 ** 3)."""

    def __init__(self, input_size: tuple[int, int] = (32, 32), partition_size: int = 2) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1))
        self.partition_size = partition_size
        size = (_conv_out(input_size[0]), _conv_out(input_size[1]))
        self.blocks = torch.nn.ModuleList()
        for cin, cout, n in ((4, 8, 2), (8, 16, 1)):
            self.blocks.append(MaxVitBlock(cin, cout, partition_size, size, n))
            size = self.blocks[-1].grid_size
        self.classifier = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.mean((2, 3)))


def _interpolate(embedding: torch.Tensor, d: int) -> torch.Tensor:
    if embedding.shape[0] == d:
        return embedding
    return torch.nn.functional.interpolate(embedding.permute(1, 0).unsqueeze(0), size=d,
                                           mode="linear").squeeze(0).permute(1, 0)


def _add_rel_pos(attn: torch.Tensor, q: torch.Tensor, q_thw: tuple[int, int, int],
                 k_thw: tuple[int, int, int], rel_pos_h: torch.Tensor,
                 rel_pos_w: torch.Tensor, rel_pos_t: torch.Tensor) -> torch.Tensor:
    """torchvision's, with its ``int()`` on sizes (which pins a symbolic size)."""
    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = k_thw
    dh = int(2 * max(q_h, k_h) - 1)
    dw = int(2 * max(q_w, k_w) - 1)
    dt = int(2 * max(q_t, k_t) - 1)

    def dist(qs: int, ks: int) -> torch.Tensor:
        q_ratio, k_ratio = max(ks / qs, 1.0), max(qs / ks, 1.0)
        return torch.arange(qs)[:, None] * q_ratio - \
            (torch.arange(ks)[None, :] + (1.0 - ks)) * k_ratio

    Rh = _interpolate(rel_pos_h, dh)[dist(q_h, k_h).long()]
    Rw = _interpolate(rel_pos_w, dw)[dist(q_w, k_w).long()]
    Rt = _interpolate(rel_pos_t, dt)[dist(q_t, k_t).long()]
    B, n_head, _, dim = q.shape
    r_q = q[:, :, 1:].reshape(B, n_head, q_t, q_h, q_w, dim)
    rel_h_q = torch.einsum("bythwc,hkc->bythwk", r_q, Rh)
    rel_w_q = torch.einsum("bythwc,wkc->bythwk", r_q, Rw)
    r_q = r_q.permute(2, 0, 1, 3, 4, 5).reshape(q_t, B * n_head * q_h * q_w, dim)
    rel_q_t = torch.matmul(r_q, Rt.transpose(1, 2)).transpose(0, 1)
    rel_q_t = rel_q_t.view(B, n_head, q_h, q_w, q_t, k_t).permute(0, 1, 4, 2, 3, 5)
    rel_pos = (rel_h_q[:, :, :, :, :, None, :, None] + rel_w_q[:, :, :, :, :, None, None, :]
               + rel_q_t[:, :, :, :, :, :, None, None]
               ).reshape(B, n_head, q_t * q_h * q_w, k_t * k_h * k_w)
    attn[:, :, 1:, 1:] += rel_pos
    return attn


class Pool(torch.nn.Module):
    def __init__(self, pool: torch.nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]
                ) -> tuple[torch.Tensor, tuple[int, int, int]]:  # (B, [heads,] 1 + THW, C)
        tokens = x.dim() == 3  # the block's skip: (B, 1 + THW, C), one head
        if tokens:
            x = x.unsqueeze(1)
        class_token, x = torch.tensor_split(x, indices=(1,), dim=2)
        x = x.transpose(2, 3)
        B, N, C = x.shape[:3]
        x = self.pool(x.reshape((B * N, C) + thw))
        T, H, W = x.shape[2:]
        x = torch.cat((class_token, x.reshape(B, N, C, -1).transpose(2, 3)), dim=2)
        return (x.squeeze(1) if tokens else x), (T, H, W)


class MultiscaleAttention(torch.nn.Module):
    """torchvision's, pooling keys and values (and queries when ``stride_q`` > 1) with a
    depthwise Conv3d, relative-position tables sized from the built input size."""

    def __init__(self, input_size: list[int], dim: int, heads: int, stride_q: list[int],
                 stride_kv: list[int]) -> None:
        super().__init__()
        self.num_heads, self.head_dim = heads, dim // heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.project = torch.nn.Linear(dim, dim)
        hd = self.head_dim

        def pool(stride: list[int]) -> Pool:
            return Pool(torch.nn.Conv3d(hd, hd, 3, stride=stride, padding=1, groups=hd,
                                        bias=False))

        self.pool_q = pool(stride_q) if max(stride_q) > 1 else None
        self.pool_k, self.pool_v = pool(stride_kv), pool(stride_kv)
        size = max(input_size[1:])
        spatial = 2 * max(size // stride_q[1], size // stride_kv[1]) - 1
        self.rel_pos_h = torch.nn.Parameter(torch.zeros(spatial, hd))
        self.rel_pos_w = torch.nn.Parameter(torch.zeros(spatial, hd))
        self.rel_pos_t = torch.nn.Parameter(torch.zeros(2 * input_size[0] - 1, hd))

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]
                ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim
                                      ).transpose(1, 3).unbind(dim=2)
        k, k_thw = self.pool_k(k, thw)
        v = self.pool_v(v, thw)[0]
        if self.pool_q is not None:
            q, thw = self.pool_q(q, thw)
        attn = torch.matmul(q * self.head_dim ** -0.5, k.transpose(2, 3))
        attn = _add_rel_pos(attn, q, thw, k_thw, self.rel_pos_h, self.rel_pos_w,
                            self.rel_pos_t)
        x = torch.matmul(attn.softmax(dim=-1), v) + q
        return self.project(x.transpose(1, 2).reshape(B, -1, C)), thw


class MultiscaleBlock(torch.nn.Module):
    def __init__(self, input_size: list[int], dim: int, stride_q: list[int],
                 stride_kv: list[int]) -> None:
        super().__init__()
        self.pool_skip = None
        if max(stride_q) > 1:
            self.pool_skip = Pool(torch.nn.MaxPool3d([s + 1 if s > 1 else s for s in stride_q],
                                                     stride=stride_q, padding=[
                                                         (s + 1) // 2 if s > 1 else 0
                                                         for s in stride_q]))
        self.norm1 = torch.nn.LayerNorm(dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.attn = MultiscaleAttention(input_size, dim, 2, stride_q, stride_kv)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(),
                                       torch.nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]
                ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x_attn, thw_new = self.attn(self.norm1(x), thw)
        x = (x if self.pool_skip is None else self.pool_skip(x, thw)[0]) + x_attn
        return x + self.mlp(self.norm2(x)), thw_new


class PositionalEncoding(torch.nn.Module):
    def __init__(self, dim: int, spatial_size: tuple[int, int], temporal_size: int,
                 absolute: bool = False) -> None:
        super().__init__()
        self.spatial_size, self.temporal_size = spatial_size, temporal_size
        self.class_token = torch.nn.Parameter(torch.zeros(dim))
        self.spatial_pos: torch.nn.Parameter | None = None
        self.temporal_pos: torch.nn.Parameter | None = None
        if absolute:  # MViT v1: one row per position of the built size
            self.spatial_pos = torch.nn.Parameter(
                torch.zeros(spatial_size[0] * spatial_size[1], dim))
            self.temporal_pos = torch.nn.Parameter(torch.zeros(temporal_size, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.class_token.expand(x.size(0), -1).unsqueeze(1), x), dim=1)


class MViT(torch.nn.Module):
    """torchvision's MViT v2 (relative positions) at 8 channels and two blocks, the
    second pooling its queries: built for ``(temporal_size,) + spatial_size``."""

    def __init__(self, spatial_size: tuple[int, int] = (32, 32), temporal_size: int = 4,
                 absolute: bool = False) -> None:
        super().__init__()
        self.conv_proj = torch.nn.Conv3d(3, 8, (3, 7, 7), stride=(2, 4, 4),
                                         padding=(1, 3, 3))
        input_size = [s // st for s, st in zip((temporal_size, *spatial_size),
                                               self.conv_proj.stride, strict=True)]
        self.pos_encoding = PositionalEncoding(8, (input_size[1], input_size[2]),
                                               input_size[0], absolute)
        self.blocks = torch.nn.ModuleList()
        for stride_q in ([1, 2, 2],):
            self.blocks.append(MultiscaleBlock(input_size, 8, stride_q, [1, 2, 2]))
            input_size = [s // st for s, st in zip(input_size, stride_q, strict=True)]
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = self.pos_encoding(x)
        thw = (self.pos_encoding.temporal_size,) + self.pos_encoding.spatial_size
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.head(self.norm(x)[:, 0])


def _freeze(value: Any) -> Any:
    """A comparable deep copy of an attribute: tensors by identity, dtype, shape, flags
    and values; containers by identity and contents; anything else by identity and repr."""
    if isinstance(value, torch.Tensor):
        data = None if value.is_meta else tuple(value.detach().flatten().tolist())
        return ("tensor", id(value), value.dtype, tuple(value.shape), value.requires_grad,
                value._version, data)
    if isinstance(value, torch.nn.Module):
        return ("module", id(value))
    if isinstance(value, dict):
        return ("dict", id(value), type(value), {k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, id(value) if isinstance(value, list) else None,
                [_freeze(v) for v in value])
    if isinstance(value, set):
        return ("set", id(value), frozenset(value))
    return ("value", id(value), repr(value))


def _snapshot(model: torch.nn.Module) -> dict[str, Any]:
    """Every module's ``__dict__`` (attributes, parameters, buffers, submodules, hooks)."""
    return {name: (id(m), id(m.__dict__), {k: _freeze(v) for k, v in m.__dict__.items()})
            for name, m in model.named_modules()}


def _flop_macs(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(*shape, device="meta"))
    return counter.get_total_flops() // 2


@dataclasses.dataclass
class Followed:
    """A user's model (on the CPU, with a hook), its snapshot before anything ran, the
    module follow_input_size returned and its symbolic trace."""

    model: torch.nn.Module
    before: dict[str, Any]
    followed: torch.nn.Module
    cost: TracedCost


def _follow_and_trace(model: torch.nn.Module, spec: str, hints: dict[str, int]) -> Followed:
    model.register_forward_hook(lambda m, i, o: None)
    before = _snapshot(model)
    followed = follow_input_size(model)
    cost = sf.trace(followed, spec, hints, convention="macs", warn=False)
    assert isinstance(cost, TracedCost)
    return Followed(model, before, followed, cost)


@pytest.fixture(scope="module")
def maxvit() -> Followed:
    torch.manual_seed(0)
    return _follow_and_trace(MaxVit().eval(), "B 3 H H", {"H": 32})


@pytest.fixture(scope="module")
def mvit() -> Followed:
    torch.manual_seed(0)
    return _follow_and_trace(MViT().eval(), "B 3 T H W", {"T": 8, "H": 64, "W": 64})


@pytest.mark.slow
def test_follow_maxvit_symbolic_and_exact(maxvit: Followed) -> None:
    """Traced once at H = 32 (the model built for 32 x 32): symbolic in B and H, equal
    to FlopCounterMode on the miniature built for each size (torchvision's only way to
    run MaxViT at another size) and on the followed module, up to 40 times the side."""
    cost = maxvit.cost
    assert not cost.report.fixed
    assert {s.name for s in cost.macs.free_symbols} == {"B", "H"}
    with torch.device("meta"):
        followed = follow_input_size(MaxVit().eval())  # as traced, on meta
    for b, h in [(2, 48), (3, 160), (2, 1280)]:
        with torch.device("meta"):
            built = MaxVit(input_size=(h, h)).eval()
        ours = int(cost.subs(B=b, H=h).macs)
        assert ours == _flop_macs(built, (b, 3, h, h)) == \
            _flop_macs(followed, (b, 3, h, h)), (b, h)
    with pytest.raises(OutsideDomain):  # off the lattice (a multiple of 16)
        cost.subs(B=2, H=40)
    with pytest.raises(OutsideDomain):  # 16: a 1 x 1 grid in the last block, another path
        cost.subs(B=2, H=16)


@pytest.mark.slow
def test_follow_mvit_symbolic_and_exact(mvit: Followed) -> None:
    """Traced once at T = 8, H = W = 64 (the model built for 4 x 32 x 32): symbolic in
    B, T, H, W (``int()`` on sizes in _add_rel_pos did not pin them), equal to
    FlopCounterMode on the miniature built for each size and on the followed module,
    non-square and up to 10 times the side."""
    cost = mvit.cost
    assert not cost.report.fixed
    assert {s.name for s in cost.macs.free_symbols} == {"B", "T", "H", "W"}
    with torch.device("meta"):
        followed = follow_input_size(MViT().eval())  # as traced, on meta
    for b, t, h, w in [(2, 6, 96, 96), (1, 12, 320, 160), (3, 16, 128, 640)]:
        with torch.device("meta"):
            built = MViT(spatial_size=(h, w), temporal_size=t).eval()
        ours = int(cost.subs(B=b, T=t, H=h, W=w).macs)
        assert ours == _flop_macs(built, (b, 3, t, h, w)) == \
            _flop_macs(followed, (b, 3, t, h, w)), (b, t, h, w)
    with pytest.raises(OutsideDomain):  # the built size: the tables need no resizing there
        cost.subs(B=2, T=4, H=32, W=32)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["maxvit", "mvit"])
def test_the_users_model_is_unchanged(which: str, request: pytest.FixtureRequest) -> None:
    """After follow_input_size, its symbolic trace, real forwards, a FlopCounterMode
    forward and a forward that fails, the user's model is as before: every module's
    attributes (the sizes its constructor fixed), parameters and their values, buffers,
    submodules and hooks; ``int`` is this module's builtin again."""
    f: Followed = request.getfixturevalue(which)
    shape = (2, 3, 48, 48) if which == "maxvit" else (2, 3, 6, 96, 64)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        assert f.followed(torch.randn(*shape)).shape == (2, 5)
    assert counter.get_total_flops() > 0
    bad = (2, 4) + shape[2:]  # 4 channels: the first convolution fails inside the forward
    with pytest.raises(RuntimeError):
        f.followed(torch.randn(*bad))
    assert "int" not in globals()
    assert _snapshot(f.model) == f.before
    assert not any(isinstance(getattr(m, "grid_size", None), tuple) and
                   any(isinstance(v, torch.SymInt) for v in m.grid_size)
                   for m in f.followed.modules())


def test_the_model_built_for_its_size_runs_as_followed() -> None:
    """At the size the model was built for, the followed module computes what the model
    computes (the same attributes, the same ops): equal outputs, not only equal counts."""
    torch.manual_seed(1)
    for model, shape in ((MaxVit().eval(), (2, 3, 32, 32)),
                         (MViT().eval(), (2, 3, 4, 32, 32))):
        x = torch.randn(*shape)
        with torch.no_grad():
            assert torch.allclose(model(x), follow_input_size(model)(x), atol=1e-6)


def test_symbolic_int_keeps_a_symint_and_is_int_otherwise() -> None:
    from symflops.tracing.input_size import _symbolic_int

    assert (_symbolic_int(3.7), _symbolic_int("12"), _symbolic_int("ff", 16),
            _symbolic_int()) == (3, 12, 255, 0)
    with pytest.raises(ValueError):
        _symbolic_int("x")


def test_follow_refuses_what_it_does_not_know() -> None:
    with pytest.raises(SymflopsError, match=r"follow_input_size knows .*model=Linear.*"
                                            r"fix: trace the model directly"):
        follow_input_size(torch.nn.Linear(2, 2))
    with pytest.raises(SymflopsError, match=r"absolute positional embeddings.*MViT.*"
                                            r"built for \(T, H, W\)=\(4, 32, 32\)"):
        follow_input_size(MViT(absolute=True))
    m = follow_input_size(MaxVit())
    assert follow_input_size(m) is m  # already following
    with pytest.raises(SymflopsError, match=r"takes one batch tensor \(B, 3, H, H\)"):
        m(torch.randn(2, 3, 32))
    with pytest.raises(SymflopsError, match=r"square input.*H=32, W=48"):
        m(torch.randn(1, 3, 32, 48))


@pytest.mark.parametrize("spec, hints, match", [
    ("B 3 H W", {"H": 32, "W": 32}, r"square input.*H=H, W=W.*fix: trace 'B 3 H H'"),
    ("B 3 H H", {"H": 16}, r"example size of 16 the last block's grid is 1 x 1.*"
                           r"hints=\{'H': 32\}"),
    ("B 3 H H", {"H": 40}, r"H a multiple of 16.*H=40.*hints=\{'H': 32\}"),
])
def test_follow_maxvit_refuses_bad_trace_inputs(spec: str, hints: dict[str, int],
                                                match: str) -> None:
    with torch.device("meta"):
        m = follow_input_size(MaxVit().eval())
    with pytest.raises(SymflopsError, match=match):
        sf.trace(m, spec, hints, convention="macs", warn=False)


@pytest.mark.parametrize("build, spec, match", [
    (lambda: MaxVit(), "B 3 H W", r"MaxVit fixes its input size in its constructor "
                                  r"\(built for 32 x 32\).*module=the model, symbolic=H, W.*"
                                  r"B 3 32 32.*follow_input_size\(model\), 'B 3 H H'"),
    (lambda: torch.nn.Sequential(MViT()), "B 3 T 32 32",
     r"MViT fixes .*\(built for 4 x 32 x 32\).*module=0, symbolic=T.*"
     r"follow_input_size\(model.0\).* with model.0 replaced by that module"),
])
def test_a_bare_model_that_fixes_its_size_is_refused_at_once(build: Any, spec: str,
                                                             match: str) -> None:
    """A symbolic size of a model whose constructor fixed it is refused before anything
    runs (torchvision's maxvit_t spent its 300 s budget proving guards), naming the helper;
    concrete sizes trace as before."""
    with torch.device("meta"):
        model = build().eval()
    started = time.perf_counter()
    with pytest.raises(SymflopsError, match=match):
        sf.trace(model, spec, convention="macs", warn=False)
    assert time.perf_counter() - started < 2.0


def test_a_bare_model_at_its_size_traces() -> None:
    with torch.device("meta"):
        model = MaxVit().eval()
    cost = sf.trace(model, "B 3 32 32", convention="macs", warn=False)
    assert int(cost.subs(B=3).macs) == _flop_macs(model, (3, 3, 32, 32))


def test_int_is_kept_symbolic_only_while_a_forward_runs() -> None:
    """The patch of ``int`` in a model's modules: in place during the forward, shared by a
    nested forward, then put back as it was, a module-level ``int`` of the module's own
    included, also when the forward fails."""
    import types as pytypes

    from symflops.tracing.input_size import _int_kept_symbolic, _symbolic_int

    plain, own = pytypes.ModuleType("plain"), pytypes.ModuleType("own")
    own_int = own.__dict__["int"] = lambda v: v  # the module's own int
    with pytest.raises(RuntimeError, match="inside"), _int_kept_symbolic([plain, own]):
        assert plain.__dict__["int"] is own.__dict__["int"] is _symbolic_int
        with _int_kept_symbolic([own]):  # a nested forward
            assert own.__dict__["int"] is _symbolic_int
        assert own.__dict__["int"] is _symbolic_int  # the outer forward still runs
        raise RuntimeError("inside")
    assert "int" not in plain.__dict__ and own.__dict__["int"] is own_int
