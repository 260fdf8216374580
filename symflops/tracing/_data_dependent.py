"""Data-dependent sizes: counts an op reads from the data (``nonzero``, ``nms``,
``masked_select``, ``unique``), which torch's fake tensors carry as unbacked symbols.

The trace keeps each as a symbol of its own: ``n1, n2, ...`` in the order the model makes
them, or the name the user gives (``data_dependent={"R": "rpn"}``: R is the first size of
the first tensor module ``rpn`` returns; ``{"R": "n3"}``: the third count made). Each
count carries its domain: ``0 <= R`` (a count may be 0: an FPN level that gets no RoI; the
symbols are non-negative integers, :func:`symflops.symbols.count`), ``R <= bound`` where the
op bounds it (``nonzero``: the input's element count; ``nms``: the boxes it gets), the
branches the model took on it, and ``R >= 1`` where the formula is not the work at 0
(:func:`refused_at_zero`: an op on no elements does nothing, so every op's count must
vanish there; ``R - 1`` adds of a mean over R rows do not).

Branches on a count (``if boxes.numel() == 0``, torchvision's ``batched_nms`` switching
kernels at 4000 coordinates) cannot be decided from shapes: torch decides them at an
example value (the count's bound at the example sizes: everything kept, unless the user
gives one, ``data_dependent={"R": ("rpn", 300)}``), and the condition becomes part of the
formula's domain, so a point on the other side of a branch is refused, never silently
counted on the wrong path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
import torch

from symflops.errors import SymflopsError
from symflops.tracing import _torch_compat as C

__all__ = ["Count", "CountLog", "check_option", "DataDependentSpec"]

#: what the user passes: name -> a module path or a default name (``"n3"``), optionally
#: with an example value for the branches: ``{"R": "rpn"}``, ``{"R": ("rpn", 300)}``
DataDependentSpec = Mapping[str, Any]

#: the example value of a count torch cannot bound (``item()`` of a tensor)
_UNBOUNDED_EXAMPLE = 64


@dataclass
class Count:
    """One data-dependent size: torch's symbol, its default name (``n1``), the op and the
    module that made it, its upper bound (a torch-SymPy expression, or None), the example
    value torch decided branches at."""

    torch_sym: sp.Symbol
    default: str
    op: str
    path: str
    bound: Any
    example: int


@dataclass
class CountLog:
    """The counts one recording made, in order (fed by the recorder after every op)."""

    env: C.SymEnv
    examples: dict[str, int] = field(default_factory=dict)  # default name -> example
    #: module path -> example for every count made inside it
    path_examples: dict[str, int] = field(default_factory=dict)
    counts: list[Count] = field(default_factory=list)
    by_sym: dict[sp.Symbol, Count] = field(default_factory=dict)
    _known: int = 0

    def after(self, func: Any, args: Any, kwargs: Any, out: Any, path: str) -> None:
        """Called after each op: log the counts it made (cheap when it made none)."""
        n = C.symbol_count(self.env)
        if n == self._known:
            return
        self._known = n
        found: list[sp.Symbol] = []
        for o in _flat(out):
            sizes = o.shape if isinstance(o, torch.Tensor) else [o]
            for s in sizes:
                for u in C.unbacked_in(s):
                    if u not in self.by_sym and u not in found:
                        found.append(u)
        for u in found:
            bound = _bound(func, args, kwargs)
            if bound is None:
                _lo, hi = C.unbacked_range(self.env, u)
                bound = hi
            default = f"n{len(self.counts) + 1}"
            most = self._value(bound) if bound is not None else None
            example = self.examples.get(default)
            for p, v in self.path_examples.items():
                if example is None and (path == p or path.startswith(p + ".")):
                    example = v
            if example is None:
                example = most if most is not None else _UNBOUNDED_EXAMPLE
            elif most is not None:  # an example past what the op can make decides nothing
                example = min(example, most)
            example = max(int(example), 0)
            C.set_example(self.env, u, example)
            c = Count(u, default, _op(func), path, bound, example)
            self.counts.append(c)
            self.by_sym[u] = c

    def _value(self, expr: Any) -> int | None:
        """``expr`` at the example sizes and the example counts (None: not a number)."""
        if isinstance(expr, int):
            return expr
        vals = C.example_values(self.env)
        vals.update({c.torch_sym: sp.Integer(c.example) for c in self.counts})
        v = sp.sympify(expr).xreplace(vals)
        return int(v) if v.is_Integer else None


def _flat(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flat(item)]
    return [x] if isinstance(x, (torch.Tensor, torch.SymInt)) else []


def _op(func: Any) -> str:
    return str(getattr(func._overloadpacket, "_qualified_op_name", func)).replace("::", ".") \
        if hasattr(func, "_overloadpacket") else str(func)


def _numel(t: Any) -> Any:
    out: Any = 1
    for s in t.shape:
        out = out * C.sym_expr(s)
    return out


def _bound(func: Any, args: Any, kwargs: Any) -> Any:
    """The largest value the count the op makes can take, from its inputs' shapes."""
    name = _op(func)
    ts = [a for a in args if isinstance(a, torch.Tensor)]
    if not ts:
        return None
    if name in ("aten.nonzero", "aten.argwhere", "aten.nonzero_static", "aten._unique2",
                "aten.unique_consecutive", "aten._unique", "aten.unique_dim"):
        return _numel(ts[0])
    if name == "aten.masked_select":
        return _numel(ts[0]) if len(ts) < 2 else sp.Max(_numel(ts[0]), _numel(ts[1]))
    if name == "aten.index" and len(args) > 1 and isinstance(args[1], (list, tuple)):
        # x[mask]: at most the mask's elements (SSD's per-class score threshold)
        masks = [m for m in args[1] if isinstance(m, torch.Tensor) and m.dtype == torch.bool]
        if len(masks) == 1:
            return _numel(masks[0])
    if name in ("torchvision.nms", "torchvision.batched_nms"):
        return C.sym_expr(ts[0].shape[0])
    return None


def check_option(spec: Any) -> dict[str, tuple[str | None, int | None]]:
    """The user's ``data_dependent`` option as ``name -> (source, example)``: a source is
    a module path (``"rpn"``, ``"roi_heads.box_predictor"``), a default name (``"n3"``) or
    ``None`` (an example value for the default name itself: ``{"n2": 300}``)."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise SymflopsError("data_dependent must map a name to a module path or a count",
                            layer="trace", values={"data_dependent": repr(spec)[:80]},
                            fix='pass e.g. {data_dependent}',
                            options={"data_dependent": {"R": "rpn", "D": "roi_heads"}})
    out: dict[str, tuple[str | None, int | None]] = {}
    for name, v in spec.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SymflopsError("a data-dependent size's name must be an identifier",
                                layer="trace", values={"name": repr(name)})
        source: Any = v
        example: Any = None
        if isinstance(v, tuple) and len(v) == 2:
            source, example = v
        elif isinstance(v, int) and not isinstance(v, bool):
            source, example = None, v
        if source is not None and not isinstance(source, str):
            raise SymflopsError("a data-dependent size comes from a module path or a "
                                "count's default name", layer="trace",
                                values={name: repr(v)[:80]},
                                fix='pass e.g. "rpn" (the first size of its first output), '
                                    '"n2" (the second count made), or ("rpn", 300) with an '
                                    "example value")
        if example is not None and (isinstance(example, bool) or not isinstance(example, int)
                                    or example < 0):
            raise SymflopsError("a data-dependent size's example must be an int >= 0",
                                layer="trace", values={name: repr(example)})
        out[name] = (source, example)
    return out


def name_counts(log: CountLog, io_out: Mapping[tuple[str, ...], Any],
                wanted: Mapping[str, tuple[str | None, int | None]],
                taken: set[str]) -> dict[sp.Symbol, str]:
    """torch symbol -> the name it carries in the formula: the user's (``wanted``: name ->
    module path or default name) or its default ``n1, n2, ...``. ``io_out``: each module's
    first output shape (torch-SymPy sizes); ``taken``: the input dims' names."""
    by_default = {c.default: c for c in log.counts}
    names: dict[sp.Symbol, str] = {}
    for name, (source, _example) in wanted.items():
        if name in taken:
            raise SymflopsError(f"the data-dependent size {name!r} has the name of an input "
                                "dim", layer="trace", values={"dims": ", ".join(sorted(taken))},
                                fix="choose another name")
        key = source if source is not None else name
        if key in by_default:
            sym = by_default[key].torch_sym
        else:
            sym = _output_count(key, io_out, log, name)
        if sym in names:
            raise SymflopsError("two names for one data-dependent size", layer="trace",
                                values={"names": f"{names[sym]}, {name}", "source": key})
        names[sym] = name
    used = set(names.values()) | set(taken)
    for c in log.counts:
        if c.torch_sym not in names:
            if c.default in used:
                raise SymflopsError(f"the default name {c.default!r} of a data-dependent size "
                                    "is taken", layer="trace", values={"made by": c.op},
                                    fix=f"name it: data_dependent={{'X': {c.default!r}}}")
            names[c.torch_sym] = c.default
    return names


def _output_count(path: str, io_out: Mapping[tuple[str, ...], Any], log: CountLog,
                  name: str) -> sp.Symbol:
    key = tuple(path.split(".")) if path else ()
    made = ", ".join(f"{c.default} ({c.op} at {c.path or '(root)'})" for c in log.counts) \
        or "none"
    if key not in io_out:
        raise SymflopsError(f"data_dependent: {path!r} is neither a module the model called "
                            "nor a data-dependent count", layer="trace",
                            values={name: path, "counts made": made},
                            fix="name a module path (its first output's first size is the "
                                "count) or a count's default name")
    shape = io_out[key]
    first = shape.shape[0] if shape is not None and shape.shape else None
    if isinstance(first, sp.Symbol) and first in log.by_sym:
        return first
    cut = _top_k_cut(first, log)
    if cut is not None:
        return cut
    raise SymflopsError(f"data_dependent: the first size of {path}'s output is not one "
                        "data-dependent count", layer="trace",
                        values={name: path, "size": str(first), "counts made": made},
                        fix="name the count itself by its default name (n1, n2, ...)")


def _top_k_cut(size: Any, log: CountLog) -> sp.Symbol | None:
    """The count ``u`` of a size ``Min(k, u)`` (``keep[:k]`` after an NMS: torchvision's
    RPN keeps at most ``post_nms_top_n`` proposals, its heads ``detections_per_img``): the
    name then stands for the count before the cut, and the formula carries the cut
    (``Min(1000, R)``); at a measured number of kept items ``r`` (< k, or = k) ``R = r`` is
    exact, since ``Min(k, r) = r``."""
    if type(size).__name__ != "Min" or len(size.args) != 2:  # sympy.Min or torch's
        return None
    consts = [a for a in size.args if a.is_Integer]
    rest = [a for a in size.args if isinstance(a, sp.Symbol) and a in log.by_sym]
    return rest[0] if len(consts) == 1 and len(rest) == 1 else None


def count_conditions(log: CountLog, names: Mapping[sp.Symbol, str], smap: Any
                     ) -> list[sp.Basic]:
    """Each count's upper bound and the data-dependent branches torch decided (as
    conditions over the user's symbols; conditions that hold for every positive count are
    left out)."""
    out: list[sp.Basic] = []
    for c in log.counts:
        if c.bound is None:
            continue
        cond = sp.Le(smap(c.torch_sym), smap(c.bound))
        if cond is not sp.true and cond not in out:
            out.append(cond)
    for e in C.decided(log.env):
        if not C.unbacked_in(e):
            continue
        cond = smap(e)
        if cond is sp.true or cond in out or _always(cond):
            continue
        out.append(cond)
    return out


def _always(cond: sp.Basic) -> bool:
    """A condition every value of its symbols meets (``R >= 0``, ``4*R >= 0``, ``Min(1000,
    n) <= n``: a top-k cut is at most what it cuts), a count taken non-negative, a size
    positive (``Ne(R, 0)``, a branch torch decided at a count's example, is kept)."""
    if isinstance(cond, sp.Le) and isinstance(cond.lhs, sp.Min) and cond.rhs in cond.lhs.args:
        return True
    if _fails_somewhere(cond):
        return False
    try:
        pos = {s: sp.Symbol(s.name, integer=True, positive=s.is_positive,
                            nonnegative=True) for s in cond.free_symbols}
        return bool(cond.xreplace(pos).simplify() is sp.true)
    except (TypeError, ValueError):
        return False


def _fails_somewhere(cond: sp.Basic) -> bool:
    """``cond`` is false at a point its symbols may take (each at its least value, 0 or 1
    for a positive one; each at 1; each at 2): a counterexample, so it does not hold for
    every value, found without SymPy's simplify. SSD's ``Ne(Min(300, n1) + ... + Min(300,
    n90), 0)`` (the kept detections are not none) took simplify 8 s of a 21 s trace; at
    every count 0 it reads ``Ne(0, 0)``."""
    free = sorted(cond.free_symbols, key=lambda s: s.name)
    least = {s: sp.Integer(1 if s.is_positive else 0) for s in free}
    for point in (least, dict.fromkeys(free, sp.Integer(1)), dict.fromkeys(free, sp.Integer(2))):
        try:
            if cond.xreplace(point) is sp.false:
                return True
        except (TypeError, ValueError, ZeroDivisionError):  # no value there (x mod a count)
            return False
    return False


def refused_at_zero(root: Any, names: Mapping[sp.Symbol, str],
                    symbols: Mapping[str, sp.Symbol]) -> list[tuple[sp.Basic, str]]:
    """``(R >= 1, why)`` for each count ``R`` that some op's formula does not take to 0.

    An op whose output has no element at ``R = 0`` (``R`` rows of a linear layer, one RoI
    level's pooling) does no work there, and its formula, a product with ``R``, says 0. An
    op that reduces over the ``R`` rows to an output that stays (a mean over them, one
    number) is written for at least one row (``R - 1`` adds and a divide: ``R``, which at
    ``R = 0`` says 0 for a divide the kernel still does), so the count stays ``>= 1``. A
    count whose every op is of the first kind takes 0: an FPN level that gets no RoI."""
    out: list[tuple[sp.Basic, str]] = []
    for name in dict.fromkeys(names.values()):
        sym, zero = symbols[name], {symbols[name]: sp.Integer(0)}
        for path, leaf in root.leaves():
            kinds = sorted(k for k, w in leaf.work.items()
                           if sym in getattr(w, "free_symbols", ()))
            if not kinds:
                continue
            left = sp.expand(sp.Mul(*leaf.output_shape).xreplace(zero))
            bad = [k for k in kinds if sp.expand(leaf.work[k].xreplace(zero)) != 0]
            if left != 0 or bad:
                what = (f"its {', '.join(bad)} formula is not 0 there" if bad else
                        f"it reduces the {name} rows to an output that stays: {left} "
                        f"element{'' if left == 1 else 's'}")
                out.append((sp.Ge(sym, 1), f"{name} >= 1: at {name} = 0, "
                            f"{path or '(root)'} is written for at least one element "
                            f"({what})"))
                break
    return out


def counts_for(ctx: Any, env: C.SymEnv) -> CountLog:
    """The empty log of one recording, with the user's example values."""
    log = CountLog(env)
    for _name, (source, example) in ctx.data_dependent.items():
        if example is None:
            continue
        if source is None or (source[:1] == "n" and source[1:].isdigit()):
            log.examples[source or _name] = example
        else:
            log.path_examples[source] = example
    return log


def describe_counts(log: CountLog, names: Mapping[sp.Symbol, str], smap: Any
                    ) -> dict[str, dict[str, Any]]:
    """For the report: each count's name -> op, module path, bound, example."""
    return {names[c.torch_sym]: {"op": c.op, "at": c.path or "(root)",
                                 "bound": None if c.bound is None else smap(c.bound),
                                 "example": c.example, "default": c.default}
            for c in log.counts}
