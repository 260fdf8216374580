"""Models that fix their input size in the constructor: :func:`follow_input_size`.

Two of torchvision's models compute sizes from the input size they are built for and keep
them as attributes, which their forward then uses instead of the input's:

* **MaxViT** (``maxvit_t``, ``MaxVit(input_size=...)``): each ``PartitionAttentionLayer``
  keeps ``grid_size`` (its feature map's side), ``n_partitions = grid_size[0] //
  partition_size`` and the partition and grid sizes ``p``, ``g`` that its window
  partition and departition reshape with; each ``MaxVitBlock`` keeps its ``grid_size``.
  With a symbolic ``H`` the departition reshapes to the built size, and torch spends its
  time proving guards on nested quotients (a bare trace of ``maxvit_t`` ran out of its
  300 s budget).
* **MViT v2** (``mvit_v2_s``, ``MViT(spatial_size=..., temporal_size=...)``): the
  positional encoding keeps ``temporal_size`` and ``spatial_size``, the ``thw`` every
  pooled attention reshapes its tokens to; and ``_add_rel_pos`` calls ``int()`` on sizes
  (``int(2 * max(q_h, k_h) - 1)``), which pins a symbolic size to its example value.

:func:`follow_input_size` returns the model with those attributes computed from the input
on every call, as the constructor computes them from ``input_size`` (MaxViT: the stem's
and each block's 3x3 stride-2 convolution, ``_get_conv_output_shape``; MViT: the patch
embedding's Conv3d), set only while its forward runs and put back afterwards, also on
error. During an MViT forward, ``int`` in the modules that define its classes leaves a
symbolic size as it is (``int()`` of a SymInt would only add the guard that pins it; any
other value goes to the builtin). The user's model is not changed: the returned module is
a copy of its module tree sharing its parameters, buffers and hooks (see
``docs/partitions.md``).

>>> import torch, symflops as sf
>>> from symflops.tracing.input_size import follow_input_size
>>> from torchvision.models import maxvit_t  # doctest: +SKIP
>>> with torch.device("meta"):  # doctest: +SKIP
...     m = maxvit_t().eval()
>>> cost = sf.trace(follow_input_size(m), "B 3 H H", {"H": 448},  # doctest: +SKIP
...                 convention="macs")
>>> cost.macs  # doctest: +SKIP
5555486720*B*floor(H/224)**2 + 2560000*B

:func:`refuse_fixed_size` is what ``sf.trace`` calls first: a model that fixes its input
size, traced with a symbolic spatial size and not through :func:`follow_input_size`, is
refused at once with the fix, instead of spending its time budget.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from symflops.errors import SymflopsError

__all__ = ["follow_input_size"]

_LAYER = "follow_input_size"
#: set on the module :func:`follow_input_size` returns
_MARK = "_symflops_follows_input_size"
#: the attributes of torchvision's ``PartitionAttentionLayer`` that depend on the size
_PARTITION_ATTRS = ("partition_type", "grid_size", "n_partitions", "p", "g")
#: what the error says follow_input_size knows
_KNOWN = ("torchvision's MaxVit (maxvit_t) and MViT with relative positions (mvit_v2_s)")


def _is_partition_layer(m: Any) -> bool:
    return all(hasattr(m, a) for a in _PARTITION_ATTRS)


def _kind(model: Any) -> str | None:
    """``"maxvit"``, ``"mvit"`` or None, read from the attributes torchvision's classes
    have (a model written like them, without torchvision, is recognised the same way)."""
    if not isinstance(model, torch.nn.Module):
        return None
    blocks = getattr(model, "blocks", None)
    if isinstance(getattr(model, "partition_size", None), int) and hasattr(model, "stem") \
            and isinstance(blocks, torch.nn.Module) \
            and any(_is_partition_layer(m) for m in blocks.modules()):
        return "maxvit"
    pe = getattr(model, "pos_encoding", None)
    if isinstance(getattr(model, "conv_proj", None), torch.nn.Module) and pe is not None \
            and hasattr(pe, "temporal_size") and hasattr(pe, "spatial_size"):
        return "mvit"
    return None


def _built_size(model: Any, kind: str) -> tuple[int, ...]:
    """The input size (``(H, W)`` or ``(T, H, W)``) ``model`` was built for, as its
    constructor's attributes say (the smallest input that makes them)."""
    if kind == "maxvit":
        side = model.blocks[0].grid_size  # after the stem's and the block's stride 2
        return (4 * side[0], 4 * side[1])
    stride = model.conv_proj.stride
    pe = model.pos_encoding
    return tuple(int(n) * int(s) for n, s in zip((pe.temporal_size, *pe.spatial_size),
                                                 stride, strict=True))


def follow_input_size(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (torchvision's ``MaxVit`` or ``MViT`` v2) with the sizes its constructor
    fixed computed from the input on every call, so that a trace stays symbolic in it.

    * MaxViT: trace a square input, ``H`` a multiple of ``partition_size * 2 ** (blocks +
      1)`` (224 for ``maxvit_t``: every block's map splits into 7 x 7 windows and a 7 x 7
      grid), at an example size of at least twice that (at 224 the last grid partition has
      size 1, where torch takes another path): ``sf.trace(follow_input_size(m), "B 3 H H",
      {"H": 448})``.
    * MViT v2: ``sf.trace(follow_input_size(m), "B 3 T H W", {"T": 16, "H": 256, "W":
      256})``; at the built size (16 x 224 x 224) the relative-position tables need no
      resizing, another path: trace that size with concrete sizes.

    The user's model is not changed: the result is a copy of its module tree, taken when
    this is called (call it after ``.eval()``), that shares its parameters, buffers and
    hooks; the sizes are set on the copy only while its forward runs. Anything else is
    refused with one SymflopsError.

    >>> follow_input_size(torch.nn.Linear(2, 2))
    Traceback (most recent call last):
    ...
    symflops.errors.SymflopsError: follow_input_size: ...
    """
    kind = _kind(model)
    if getattr(model, _MARK, False):
        return model  # already follows its input
    if kind is None:
        raise SymflopsError(f"follow_input_size knows {_KNOWN}; this model fixes no size it "
                            "knows", layer=_LAYER,
                            values={"model": type(model).__name__},
                            fix="trace the model directly (sf.trace(model, ...)), or set "
                                "the sizes it keeps from the input in a wrapper of your own")
    if kind == "mvit":
        _check_mvit(model)
    else:
        _check_maxvit(model)
    clone = _tree_copy(model, {})
    forward = _maxvit_forward if kind == "maxvit" else _mvit_forward
    object.__setattr__(clone, "forward", types.MethodType(forward, clone))
    object.__setattr__(clone, _MARK, True)
    return clone


def _check_maxvit(model: Any) -> None:
    layers = [m for m in model.blocks.modules() if _is_partition_layer(m)]
    bad = [m.partition_type for m in layers if m.partition_type not in ("window", "grid")]
    if bad or not all(hasattr(b, "grid_size") for b in model.blocks):
        raise SymflopsError("a MaxVit whose blocks and partition layers are not torchvision's",
                            layer=_LAYER, values={"model": type(model).__name__,
                                                  "partition_type": bad[:1]},
                            fix="pass torchvision.models.maxvit_t() or a MaxVit(...)")


def _check_mvit(model: Any) -> None:
    pe, conv = model.pos_encoding, model.conv_proj
    if getattr(pe, "spatial_pos", None) is not None or getattr(pe, "temporal_pos", None) \
            is not None:
        raise SymflopsError("this MViT adds absolute positional embeddings, whose parameters "
                            "have one row per position of the size it was built for: its "
                            "cost cannot follow the input size", layer=_LAYER,
                            values={"model": type(model).__name__,
                                    "built for (T, H, W)": _built_size(model, "mvit")},
                            fix="trace it at that size with concrete sizes "
                                "(sf.trace(model, 'B 3 16 224 224')); MViT v2 (mvit_v2_s, "
                                "relative positions) follows the input")
    if not all(isinstance(getattr(conv, a, None), tuple) and len(getattr(conv, a)) == 3
               and all(isinstance(v, int) for v in getattr(conv, a))
               for a in ("kernel_size", "stride", "padding", "dilation")):
        raise SymflopsError("the MViT's patch embedding is not a Conv3d with int padding",
                            layer=_LAYER, values={"conv_proj": type(conv).__name__},
                            fix="pass torchvision.models.video.mvit_v2_s() or an MViT(...)")


def _tree_copy(module: torch.nn.Module, memo: dict[int, torch.nn.Module]) -> torch.nn.Module:
    """A copy of ``module`` and of every submodule (a shared submodule copied once) whose
    attributes can be set without reaching the original: each one's ``__dict__`` and the
    dicts and sets in it (parameters, buffers, submodules, hooks) are new, the values in
    them (tensors, hook functions) the same objects."""
    if id(module) in memo:
        return memo[id(module)]
    clone = copy.copy(module)
    memo[id(module)] = clone
    for name, value in list(clone.__dict__.items()):
        if type(value) in (dict, set) or isinstance(value, dict):
            clone.__dict__[name] = copy.copy(value)
    clone._modules = {k: (None if m is None else _tree_copy(m, memo))
                      for k, m in module._modules.items()}
    return clone


@contextlib.contextmanager
def _attributes(changes: Sequence[tuple[Any, str, Any]]) -> Iterator[None]:
    """Each ``(obj, name, value)`` set for the duration, then each attribute put back as it
    was (also on error)."""
    saved = [(obj, name, obj.__dict__[name]) for obj, name, _ in changes]
    try:
        for obj, name, value in changes:
            obj.__dict__[name] = value
        yield
    finally:
        for obj, name, old in reversed(saved):
            obj.__dict__[name] = old


def _example(size: Any) -> int:
    """A size's value at the example sizes, read without a guard (the int itself when
    concrete)."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        if hint is None:
            raise SymflopsError("the input's size is data-dependent", layer=_LAYER,
                                values={"size": str(size)})
        return int(hint)
    return int(size)


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` the same size: the same int, or the same symbolic expression."""
    if isinstance(a, torch.SymInt) or isinstance(b, torch.SymInt):
        if not (isinstance(a, torch.SymInt) and isinstance(b, torch.SymInt)):
            return False
        return bool(a.node.expr == b.node.expr)
    return bool(a == b)


def _half(n: Any) -> Any:
    """A 3x3 stride-2 padding-1 convolution's output side, as torchvision's
    ``_get_conv_output_shape(size, 3, 2, 1)`` computes it."""
    return (n - 3 + 2 * 1) // 2 + 1


def _input(x: Any, dims: tuple[int, ...], model: str, spec: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() not in dims:
        raise SymflopsError(f"follow_input_size({model}) takes one batch tensor {spec}",
                            layer=_LAYER,
                            values={"input": tuple(getattr(x, "shape", ())) or
                                    type(x).__name__})
    return x


def _maxvit_forward(self: Any, x: Any) -> Any:
    """MaxViT's forward with every block's and partition layer's sizes from ``x``."""
    x = _input(x, (4,), type(self).__name__, "(B, 3, H, H)")
    h, w = x.shape[-2], x.shape[-1]
    if not _same(h, w):
        raise _not_square({"H": _example(h), "W": _example(w)})
    size = self.partition_size
    lattice = size * 2 ** (len(self.blocks) + 1)
    if isinstance(h, torch.SymInt) and _example(h) == lattice:
        raise SymflopsError(f"at an example size of {lattice} the last block's grid is 1 x 1, "
                            "where torch takes another path than at every larger size",
                            layer=_LAYER, values={"H": lattice},
                            fix=f"trace at an example size of {2 * lattice} or more ({{hints}}), "
                                f"or trace {lattice} with concrete sizes",
                            options={"hints": {"H": 2 * lattice}})
    if _example(h) % lattice:
        raise SymflopsError(f"MaxViT needs H a multiple of {lattice}: every block's map "
                            f"splits into {size} x {size} windows and a {size} x {size} grid",
                            layer=_LAYER, values={"H": _example(h)},
                            fix=f"give an example size that is a multiple of {lattice}, "
                                f"at least {2 * lattice}: {{hints}}",
                            options={"hints": {"H": 2 * lattice}})
    torch._check(h % lattice == 0)  # the lattice: every partition divides evenly
    q = h // lattice
    # the same size spelt lattice * q, so every size below is a polynomial in q
    x = x[:, :, :lattice * q, :lattice * q]
    side = _half(x.shape[-2])  # the stem
    changes: list[tuple[Any, str, Any]] = []
    for block in self.blocks:
        side = _half(side)  # the block's first MBConv halves the map
        changes.append((block, "grid_size", (side, side)))
        for m in block.modules():
            if _is_partition_layer(m):
                n = side // size
                window = m.partition_type == "window"
                changes += [(m, "grid_size", (side, side)), (m, "n_partitions", n),
                            (m, "p", size if window else n), (m, "g", n if window else size)]
    with _attributes(changes):
        return type(self).forward(self, x)


def _not_square(values: dict[str, Any]) -> SymflopsError:
    return SymflopsError("MaxViT takes a square input: its grid partition splits both sides "
                         "by the height's partition count", layer=_LAYER, values=values,
                         fix="trace 'B 3 H H' (one name for both sides)")


def _mvit_forward(self: Any, x: Any) -> Any:
    """MViT's forward with the positional encoding's ``thw`` from ``x`` and ``int`` kept
    symbolic in the modules that define its classes."""
    x = _input(x, (4, 5), type(self).__name__, "(B, 3, T, H, W) or (B, 3, H, W)")
    sizes = tuple(x.shape[2:]) if x.dim() == 5 else (1, *x.shape[2:])
    c = self.conv_proj
    t, h, w = ((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
               zip(sizes, c.kernel_size, c.stride, c.padding, c.dilation, strict=True))
    pe = self.pos_encoding
    with _attributes([(pe, "temporal_size", t), (pe, "spatial_size", (h, w))]), \
            _int_kept_symbolic(_defining_modules(self)):
        return type(self).forward(self, x)


def _defining_modules(model: torch.nn.Module) -> list[types.ModuleType]:
    """The Python modules that define the classes of ``model`` and its submodules (their
    bases too), torch's own left out."""
    names: dict[str, None] = {}
    for m in model.modules():
        for cls in type(m).__mro__:
            if cls.__module__.split(".")[0] not in ("torch", "builtins"):
                names[cls.__module__] = None
    return [sys.modules[n] for n in names if n in sys.modules]


def _symbolic_int(value: Any = 0, *args: Any) -> Any:
    """``int`` that leaves a SymInt as it is (the same number, without the guard that
    ``int()`` adds); anything else goes to the builtin."""
    if isinstance(value, torch.SymInt) and not args:
        return value
    return builtins.int(value, *args)


_PATCH_LOCK = threading.Lock()
#: module name -> (how many forwards have it patched, what ``int`` was in it, if anything)
_PATCHED: dict[str, tuple[int, tuple[Any, ...]]] = {}


@contextlib.contextmanager
def _int_kept_symbolic(modules: Sequence[types.ModuleType]) -> Iterator[None]:
    """``int`` in each of ``modules`` is :func:`_symbolic_int` for the duration, then
    what it was (a module-level name of its own, or none), also on error; nested or
    concurrent forwards share one patch, put back when the last one ends."""
    with _PATCH_LOCK:
        for mod in modules:
            count, old = _PATCHED.get(mod.__name__, (0, ()))
            if count == 0:
                old = (mod.__dict__["int"],) if "int" in mod.__dict__ else ()
                mod.__dict__["int"] = _symbolic_int
            _PATCHED[mod.__name__] = (count + 1, old)
    try:
        yield
    finally:
        with _PATCH_LOCK:
            for mod in modules:
                count, old = _PATCHED[mod.__name__]
                if count > 1:
                    _PATCHED[mod.__name__] = (count - 1, old)
                    continue
                del _PATCHED[mod.__name__]
                if old:
                    mod.__dict__["int"] = old[0]
                else:
                    mod.__dict__.pop("int", None)


def built_for(model: torch.nn.Module
              ) -> tuple[str, torch.nn.Module, str, tuple[int, ...]] | None:
    """The first module of ``model`` whose constructor fixed its input size and that
    :func:`follow_input_size` does not wrap, as ``(path, module, kind, built size)``, or
    None: where a symbolic size is refused and a concrete one (the built size) traces."""
    if getattr(model, _MARK, False):
        return None
    for path, m in model.named_modules():
        kind = _kind(m)
        if kind is not None and not getattr(m, _MARK, False):
            return path, m, kind, _built_size(m, kind)
    return None


def refuse_fixed_size(model: torch.nn.Module, dims: Sequence[Sequence[int | str]]) -> None:
    """Refuse at once a trace with a symbolic size beyond the batch (``dims``: each
    input's sizes, names for the symbolic ones) of a model that contains a MaxVit or MViT
    not wrapped by :func:`follow_input_size`: its constructor fixed the sizes, and the trace
    would spend its time budget (MaxViT) or pin them."""
    symbolic = sorted({d for spec in dims for d in list(spec)[1:] if isinstance(d, str)})
    if getattr(model, _MARK, False):
        first = list(dims[0]) if dims else []
        if _kind(model) == "maxvit" and len(first) == 4 and first[2] != first[3] and \
                any(isinstance(d, str) for d in first[2:]):
            raise _not_square({"H": first[2], "W": first[3]})
        return
    found = built_for(model) if symbolic else None
    if found is not None:
        path, m, kind, built = found
        square = "B 3 H H" if kind == "maxvit" else "B 3 T H W"
        hint = ({"H": 448} if kind == "maxvit" else {"T": 16, "H": 256, "W": 256})
        where = "model" if not path else f"model.{path}"
        raise SymflopsError(
            f"{type(m).__name__} fixes its input size in its constructor (built for "
            f"{' x '.join(map(str, built))}): traced with a symbolic size it would be pinned "
            "to that size, or not finish", layer="trace",
            values={"module": path or "the model", "symbolic": ", ".join(symbolic)},
            fix=f"trace it at that size with concrete sizes (B 3 "
                f"{' '.join(map(str, built))}), or follow the input: "
                f"sf.trace(symflops.tracing.input_size.follow_input_size({where}), "
                f"'{square}', {hint})" + ("" if not path else
                                          f" with model.{path} replaced by that module"))
