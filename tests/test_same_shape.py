"""``_same_shape``'s rules give what torch's fake dispatch gives (sizes, strides, dtype)
on symbolic sizes. (Torch's decompositions also record 0/1-specialization guards, ``N > 1``,
``B*N*N >= 2``, on the way; those never enter a formula's validity, and the traced zoo's
formulas, validity and notes are the same with the rules and without.)"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from symflops.tracing import _torch_compat as C
from symflops.tracing._same_shape import (
    _UNARY,
    _layer_norm,
    _pow,
    _roll,
    _softmax,
    _triangle,
    _unary,
    contiguous_strides,
)

aten = torch.ops.aten


def _exprs(t: torch.Tensor) -> tuple[Any, ...]:
    return tuple(C.sym_expr(v) for v in (*t.shape, *t.stride()))


def _env_tensor(dims: list[Any], dtype: torch.dtype) -> tuple[C.SymEnv, torch.Tensor]:
    env = C.SymEnv()
    hints = {"B": 3, "N": 17, "H": 5}
    with env.mode:
        sizes = [env.symint(d, hints[d]) if isinstance(d, str) else d for d in dims]
        return env, torch.empty(sizes, dtype=dtype, device="meta")


@pytest.mark.parametrize("dims", [["B", "H", "N", "N"], ["N", "N"], ["B", 1, "N", 7],
                                  [2, "N", "N"]])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_safe_softmax_rule_is_torchs_output(dims: list[Any], dtype: torch.dtype) -> None:
    for dim, out_dtype in ((-1, None), (0, None), (-1, torch.float32)):
        env, x = _env_tensor(dims, dtype)
        with env.mode:
            ours = _softmax((x, dim, out_dtype), {})
            theirs = aten._safe_softmax(x, dim, out_dtype)
        assert ours is not None and ours is not x
        assert _exprs(ours) == _exprs(theirs) and ours.dtype == theirs.dtype


@pytest.mark.parametrize("dims", [["N", "N"], ["B", "N", "N"], ["B", "H", "N", 9]])
@pytest.mark.parametrize("op", [aten.tril, aten.triu])
def test_triangle_rule_is_torchs_output(dims: list[Any], op: Any) -> None:
    for dtype, diagonal in ((torch.float32, 0), (torch.bool, 1), (torch.float16, -2)):
        env, x = _env_tensor(dims, dtype)
        with env.mode:
            ours = _triangle((x, diagonal), {})
            theirs = op(x, diagonal)
        assert ours is not None
        assert _exprs(ours) == _exprs(theirs) and ours.dtype == theirs.dtype


@pytest.mark.parametrize("dims", [["B", "N", 8], ["N", 8], ["B", "H", 4, 8], [2, "N", 8]])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_rule_is_torchs_output(dims: list[Any], dtype: torch.dtype) -> None:
    for shape, affine in (([8], True), ([8], False), ([4, 8], True)):
        env, x = _env_tensor(dims, dtype)
        if list(x.shape[-len(shape):]) != shape:
            continue
        w = torch.empty(shape, dtype=dtype, device="meta") if affine else None
        with env.mode:
            w = env.fake(w) if w is not None else None
            ours = _layer_norm((x, shape, w, w, 1e-5), {})
            theirs = aten.native_layer_norm(x, shape, w, w, 1e-5)
        assert ours is not None
        for a, b in zip(ours, theirs, strict=True):
            assert _exprs(a) == _exprs(b) and a.dtype == b.dtype


@pytest.mark.parametrize("name", [*_UNARY, "pow"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_unary_rules_are_torchs_output(name: str, dtype: torch.dtype) -> None:
    for dims in (["B", "N", 8], ["N", "N"], [2, "H", 1, "N"]):
        env, x = _env_tensor(dims, dtype)
        extra: tuple[Any, ...] = (2,) if name == "pow" else ()
        with env.mode:
            ours = (_pow if name == "pow" else _unary)((x, *extra), {})
            theirs = getattr(aten, name)(x, *extra)
            if name == "pow":
                half = _pow((x, 0.5), {})
                assert half is not None and half.dtype == aten.pow(x, 0.5).dtype
        assert ours is not None
        assert _exprs(ours) == _exprs(theirs) and ours.dtype == theirs.dtype


def test_other_layouts_take_torchs_path() -> None:
    env, x = _env_tensor(["B", "N", "N"], torch.float32)
    with env.mode:
        t = x.transpose(0, 2)
        assert not contiguous_strides(t) and contiguous_strides(x)
        assert _softmax((t, -1), {}) is None and _triangle((t,), {}) is None
        assert _triangle((x[0, 0],), {}) is None  # a vector: torch raises its own error
        assert _softmax((x, 3), {}) is None  # no such dim
        assert _softmax((x.to(torch.int64), -1), {}) is None
        assert _unary((x.to(torch.int64),), {}) is None  # rsqrt of ints: promoted by torch
        assert _pow((x, x), {}) is None and _pow((x, True), {}) is None
        assert _layer_norm((x, [5], None, None, 1e-5), {}) is None  # not x's last size
        assert _layer_norm((x.to(torch.bfloat16), [17], None, None, 1e-5), {}) is None


def test_strides_written_with_max_one_count_as_contiguous() -> None:
    # torch writes the stride after a size it cannot prove positive as Max(1, size):
    # empty((N//4, H//2, 8)) has strides (8*Max(1, H//2), 8, 1), Swin's tensors after its
    # patch embedding. Contiguous wherever the tensor has an element: the rules answer,
    # and what they answer is torch's own output.
    env = C.SymEnv()
    with env.mode:
        n, h = env.symint("N", 17), env.symint("H", 5)
        x = torch.empty((n // 4, h // 2, 8), device="meta")
        assert "Max(1," in str(C.sym_expr(x.stride()[0]))
        assert contiguous_strides(x)
        assert not contiguous_strides(x.transpose(0, 1))
        assert _softmax((x.transpose(0, 1), -1), {}) is None
        pairs = [(_layer_norm((x, [8], None, None, 1e-5), {}),
                  aten.native_layer_norm(x, [8], None, None, 1e-5)),
                 ((_softmax((x, -1), {}),), (aten._safe_softmax(x, -1),)),
                 ((_unary((x,), {}),), (aten.exp(x),)),
                 ((_triangle((x,), {}),), (aten.tril(x),))]
        for ours, theirs in pairs:
            assert all(o is not None for o in ours)
            for a, b in zip(ours, theirs, strict=True):
                assert _exprs(a) == _exprs(b) and a.dtype == b.dtype


@pytest.mark.parametrize("dims", [["B", "N", "H", 8], ["N", "N"], [2, "H", 1, "N"]])
def test_roll_rule_is_torchs_output(dims: list[Any]) -> None:
    for shifts, on in (((3, -3), (0, 1)), ((1,), (-1,)), ((-2, 5), (1, 1))):
        env, x = _env_tensor(dims, torch.float32)
        with env.mode:
            ours = _roll((x, shifts, on), {})
            theirs = aten.roll(x, shifts, on)
        assert ours is not None and ours is not x
        assert _exprs(ours) == _exprs(theirs) and ours.dtype == theirs.dtype
    env, x = _env_tensor(dims, torch.float32)
    with env.mode:  # torch's path: a flattening roll, shifts and dims apart, no such dim
        assert _roll((x, (1,)), {}) is None and _roll((x, (1, 2), (0,)), {}) is None
        assert _roll((x, (1,), (len(dims),)), {}) is None
        assert _roll((x.transpose(0, 1), (1,), (0,)), {}) is None


@pytest.mark.parametrize("layout", ["permuted", "sliced", "expanded", "transposed"])
def test_layer_norm_rule_is_torchs_output_whatever_the_input_strides(layout: str) -> None:
    # Swin's and ConvNeXt's norms run on a permuted (channels-last) view; torch's kernel
    # returns contiguous out, mean and rstd for any input strides, and so does the rule
    env = C.SymEnv()
    with env.mode:
        b, h, w = env.symint("B", 3), env.symint("H", 5), env.symint("N", 17)
        x = {"permuted": lambda: torch.empty((b, 8, h, w), device="meta").permute(0, 2, 3, 1),
             "sliced": lambda: torch.empty((b, h, 2 * w, 8), device="meta")[:, :, ::2, :],
             "expanded": lambda: torch.empty((1, h, 8), device="meta").expand(b, h, 8),
             "transposed": lambda: torch.empty((b, 8, h), device="meta").transpose(1, 2),
             }[layout]()
        assert not contiguous_strides(x)
        weight = env.fake(torch.empty(8, device="meta"))
        ours = _layer_norm((x, [8], weight, weight, 1e-5), {})
        theirs = aten.native_layer_norm(x, [8], weight, weight, 1e-5)
    assert ours is not None
    for a, b_ in zip(ours, theirs, strict=True):
        assert _exprs(a) == _exprs(b_) and a.dtype == b_.dtype
