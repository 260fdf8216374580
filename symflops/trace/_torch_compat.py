"""Every private torch API the tracer touches, in one place.

Symbolic shapes come from ``FakeTensorMode(shape_env=ShapeEnv(...))``: a symbol per
named dim is created with ``ShapeEnv.create_symbol`` (one symbol per *name*, so a name
used twice is one symbol; ``duck_shape=False`` keeps equal hints apart), wrapped into a
``SymInt`` and used to build fake tensors. Shapes come back as ``SymInt`` whose
``.node.expr`` is a SymPy expression over torch's internal symbols; :class:`SymbolMap`
turns those into the user's symbols and torch's ``FloorDiv``/``CeilDiv``/``Mod`` into
plain SymPy ``floor``/``ceiling``/``Mod``.

Tested on torch 2.13 (CPU). If a torch upgrade moves one of these names, only this
module needs to change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import sympy as sp
import torch
import torch.utils._sympy.functions as _tfun
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["TorchDispatchMode", "SymEnv", "SymbolMap", "current_autograd_node",
           "module_hooks", "node_metadata", "SKIP_OPS", "TORCH_VERSION"]

TORCH_VERSION = torch.__version__

#: ops that only query metadata; the tracer never records them
SKIP_OPS = frozenset({
    torch.ops.prim.device.default, torch.ops.prim.layout.default,
    torch.ops.aten.size.default, torch.ops.aten.sym_size.default,
    torch.ops.aten.stride.default, torch.ops.aten.sym_stride.default,
    torch.ops.aten.numel.default, torch.ops.aten.sym_numel.default,
    torch.ops.aten.dim.default, torch.ops.aten.storage_offset.default,
    torch.ops.aten.sym_storage_offset.default, torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format, torch.ops.aten.sym_is_contiguous.default,
    torch.ops.aten.is_strides_like_format.default,
    torch.ops.aten.is_non_overlapping_and_dense.default,
})


class SymEnv:
    """A ShapeEnv, a FakeTensorMode on it, and one backed symbol per user dim name."""

    def __init__(self) -> None:
        self.shape_env = ShapeEnv(duck_shape=False)
        self.mode = FakeTensorMode(shape_env=self.shape_env, allow_non_fake_inputs=True)
        self.symints: dict[str, Any] = {}     # user name -> SymInt
        self.torch_syms: dict[sp.Symbol, str] = {}  # torch symbol -> user name
        self._fakes: dict[int, tuple[Any, Any]] = {}

    def symint(self, name: str, hint: int) -> Any:
        """The SymInt for dim ``name`` (created on first use with example size ``hint``)."""
        if name not in self.symints:
            source = ConstantSource(f"symflops_{name}")
            sym = self.shape_env.create_symbol(
                hint, source, dynamic_dim=DimDynamic.DYNAMIC, do_not_specialize_zero_one=True)
            self.symints[name] = self.shape_env.create_symintnode(sym, hint=hint, source=source)
            self.torch_syms[sym] = name
        return self.symints[name]

    def fake(self, tensor: Any) -> Any:
        """A fake copy of a real or meta tensor (memoized; the original is untouched)."""
        hit = self._fakes.get(id(tensor))
        if hit is not None and hit[0] is tensor:
            return hit[1]
        out = self._fake(tensor)
        self._fakes[id(tensor)] = (tensor, out)
        return out

    def _fake(self, tensor: Any) -> Any:
        if type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.is_contiguous() \
                and not tensor.is_sparse:
            # cheaper than from_tensor's full metadata copy; shape, strides, dtype, device
            # and requires_grad are all a size count needs
            with self.mode:
                return torch.empty_strided(tuple(tensor.shape), tuple(tensor.stride()),
                                           dtype=tensor.dtype, device=tensor.device,
                                           requires_grad=tensor.requires_grad)
        return self.mode.from_tensor(tensor, static_shapes=True)

    def replace(self, expr: Any) -> Any:
        """``expr`` with the replacements torch learned (e.g. ``s1 -> 224`` after ``H == 224``)."""
        return self.shape_env.replace(expr)

    def ranges(self) -> dict[str, tuple[int, int | None]]:
        """Each user dim's value range as torch inferred it (``None``: unbounded above)."""
        out: dict[str, tuple[int, int | None]] = {}
        for sym, name in self.torch_syms.items():
            vr = self.shape_env.var_to_range.get(sym)
            if vr is None:
                continue
            lo = int(vr.lower) if vr.lower.is_Integer else 1
            hi = int(vr.upper) if vr.upper.is_Integer else None
            out[name] = (lo, hi)
        return out

    def guards(self) -> list[Any]:
        """The guard expressions torch recorded (over torch's symbols)."""
        return [g.expr for g in self.shape_env.guards]

    def fixed(self) -> dict[str, int]:
        """User dims torch specialized to a constant (through an equality guard)."""
        out: dict[str, int] = {}
        for sym, name in self.torch_syms.items():
            r = self.shape_env.replace(sym)
            if r.is_Integer:
                out[name] = int(r)
        return out


def sym_expr(x: Any) -> Any:
    """A size as an int or a torch-SymPy expression."""
    if isinstance(x, torch.SymInt):
        node = x.node
        if node.is_constant():
            return int(x)
        # the raw expression: SymbolMap applies the ShapeEnv's replacements once per
        # distinct expression (``node.expr`` would redo them at every access)
        raw = getattr(node, "_expr", None)
        return raw if raw is not None else node.expr
    return x


_FUNCS: dict[type, Callable[..., sp.Expr]] = {
    _tfun.FloorDiv: lambda a, b: sp.floor(a / b),
    _tfun.CleanDiv: lambda a, b: a / b,
    _tfun.IntTrueDiv: lambda a, b: a / b,
    _tfun.CeilDiv: lambda a, b: sp.ceiling(a / b),
    _tfun.Mod: lambda a, b: sp.Mod(a, b),
    _tfun.PythonMod: lambda a, b: sp.Mod(a, b),
    _tfun.ModularIndexing: lambda a, b, c: sp.Mod(sp.floor(a / b), c),
    _tfun.CeilToInt: lambda a: sp.ceiling(a),
    _tfun.FloorToInt: lambda a: sp.floor(a),
    _tfun.TruncToInt: lambda a: sp.floor(a),
    _tfun.Identity: lambda a: a,
    _tfun.PowByNatural: lambda a, b: a ** b,
    _tfun.Max: lambda *a: sp.Max(*a),
    _tfun.Min: lambda *a: sp.Min(*a),
}


class SymbolMap:
    """Converts torch's SymPy expressions into plain SymPy over the user's symbols."""

    def __init__(self, env: SymEnv, symbols: dict[str, sp.Symbol]) -> None:
        self.env = env
        self.by_torch = {s: symbols[n] for s, n in env.torch_syms.items()}
        self.fresh: dict[sp.Symbol, sp.Symbol] = {}
        self._cache: dict[Any, sp.Expr] = {}

    def __call__(self, expr: Any) -> Any:
        if isinstance(expr, int):
            return sp.Integer(expr)
        hit = self._cache.get(expr)
        if hit is None:
            hit = self._convert(self.env.replace(expr))
            self._cache[expr] = hit
        return hit

    def _convert(self, e: Any) -> sp.Expr:
        if e.is_Integer or e.is_Rational:
            return e
        if e.is_Symbol:
            if e in self.by_torch:
                return self.by_torch[e]
            # an unbacked or derived torch symbol: keep it, under a readable name
            if e not in self.fresh:
                self.fresh[e] = sp.Symbol(f"u_{e.name}", integer=True, positive=True)
            return self.fresh[e]
        args = [self._convert(a) for a in e.args]
        fn = _FUNCS.get(type(e))
        if fn is not None:
            return fn(*args)
        return e.func(*args)


def node_metadata(node: Any) -> dict[str, Any]:
    """The per-node metadata dict autograd keeps (``Node.metadata``, a property)."""
    meta: dict[str, Any] = node.metadata
    return meta


def current_autograd_node() -> Any:
    """The autograd Node whose backward is running (None in forward)."""
    return torch._C._current_autograd_node()


@contextlib.contextmanager
def module_hooks(pre: Callable[..., Any], post: Callable[..., Any]) -> Iterator[None]:
    """Global forward pre/post hooks for every module call, removed on exit.

    Global hooks live in torch.nn.modules.module, not on the user's model.
    """
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )

    h1 = register_module_forward_pre_hook(pre)
    try:
        h2 = register_module_forward_hook(post, always_call=True)
    except BaseException:
        h1.remove()
        raise
    try:
        yield
    finally:
        h2.remove()
        h1.remove()
