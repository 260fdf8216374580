"""Building a model from constructor arguments at one point of the hyperparameter
lattice and tracing it (each point once), for :func:`trace_factory`.

The model is built on the meta device (no weight memory) with the torch, Python and
numpy RNGs put back afterwards, so building it leaves no trace either.
"""

from __future__ import annotations

import contextlib
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from typing import Any, TypeAlias

import sympy as sp
import torch

from symflops.cost import Cost
from symflops.errors import SymbolicShapesFailed, SymflopsError
from symflops.parse import parse_expr
from symflops.tracing._folding import NodeTable, fold, merge_ops, only_kinds, table_of
from symflops.tracing._inputs import InputSpec
from symflops.tracing._tracer import trace

__all__ = ["Sampler", "ParamValue", "parse_params", "kept_rngs", "Point"]

#: a constructor argument: one expression, or a list of them (ResNet's ``layers``)
ParamValue: TypeAlias = "sp.Expr | tuple[sp.Expr, ...]"
#: a point of the lattice: hyperparameter name -> value
Point: TypeAlias = Mapping[str, int]


def _one_param(arg: str, value: Any) -> sp.Expr:
    if isinstance(value, str):
        try:
            return parse_expr(value)
        except SymflopsError as e:
            raise SymflopsError(f"params[{arg!r}]: {e.message}", layer="trace_factory",
                                values=e.values, fix=e.fix, options=e.options) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return sp.Integer(value)
    if isinstance(value, sp.Expr) and not value.has(sp.Float) and all(
            s.is_integer and s.is_positive for s in value.free_symbols):
        return value
    raise SymflopsError("a hyperparameter is an expression of size symbols", layer="trace_factory",
                        values={arg: repr(value)},
                        fix=f'write e.g. params={{"{arg}": "dim"}} or "4*dim" or "dim/64"')


def parse_params(params: Any, fixed: Any) -> dict[str, ParamValue]:
    """``params`` read through symflops' own parser (never ``eval``/``sympify``): each
    value a string like ``"4*dim"``, an int, a SymPy expression of size symbols or a
    list of those.

    >>> parse_params({"hidden_dim": "dim", "num_heads": "dim/64"}, None)
    {'hidden_dim': dim, 'num_heads': dim/64}
    """
    if not isinstance(params, Mapping) or not params:
        raise SymflopsError("params must map constructor arguments to symbols",
                            layer="trace_factory", values={"params": repr(params)},
                            fix='pass e.g. params={"num_layers": "L", "hidden_dim": "dim"}')
    if fixed is not None and not isinstance(fixed, Mapping):
        raise SymflopsError("fixed must map constructor arguments to values",
                            layer="trace_factory", values={"fixed": repr(fixed)},
                            fix='pass e.g. fixed={"patch_size": 16}')
    out: dict[str, ParamValue] = {}
    for arg, value in params.items():
        if not isinstance(arg, str) or not arg.isidentifier():
            raise SymflopsError("constructor arguments are named by identifiers",
                                layer="trace_factory", values={"argument": repr(arg)})
        if fixed and arg in fixed:
            raise SymflopsError(f"{arg} is both varied and fixed", layer="trace_factory",
                                fix=f"remove {arg} from params or from fixed")
        if isinstance(value, (list, tuple)):
            out[arg] = tuple(_one_param(arg, v) for v in value)
        else:
            out[arg] = _one_param(arg, value)
    return out


def _exact(value: sp.Expr) -> int | Fraction:
    """A SymPy rational as the exact Python number a constructor reads."""
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    raise SymflopsError("a hyperparameter is not a number at this point",
                        layer="trace_factory", values={"value": value})


@contextlib.contextmanager
def kept_rngs() -> Iterator[None]:
    """The torch, Python and numpy RNG states as they were, whatever the body draws."""
    py_state = random.getstate()
    numpy = sys.modules.get("numpy")
    np_state = numpy.random.get_state() if numpy is not None else None
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        if numpy is not None and np_state is not None:
            numpy.random.set_state(np_state)


def _meminfo(path: str, key: str) -> int:
    """A ``key: <n> kB`` line of a /proc file, in bytes."""
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise ValueError(key)


@contextlib.contextmanager
def memory_guard() -> Iterator[None]:
    """The process's address space capped at what it uses plus half the memory available,
    so that a constructor allocating real memory at a far size (a numpy position table of
    side^2 x dim) raises MemoryError, a point the factory cannot trace, instead of
    exhausting the machine. Linux only (elsewhere nothing changes); the limit is put back."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _meminfo("/proc/self/status", "VmSize") + \
            _meminfo("/proc/meminfo", "MemAvailable") // 2
    except (ImportError, OSError, ValueError):
        yield
        return
    unlimited = resource.RLIM_INFINITY
    if (soft != unlimited and soft <= cap) or (hard != unlimited and hard < cap):
        yield  # already capped tighter
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class Sampler:
    """Trace ``make(**fixed, **params at point)`` at lattice points, each point once.

    ``symbolic``: input dims left to the tracer (``B``); every dim that is also a
    hyperparameter symbol takes the point's value in the input specs. ``kinds``: the
    kinds of work the tables keep (None: all).
    """

    def __init__(self, make: Callable[..., Any], fixed: Mapping[str, Any],
                 params: Mapping[str, ParamValue], inputs: tuple[list[InputSpec],
                                                                 dict[str, InputSpec]],
                 trace_options: Mapping[str, Any],
                 dims: Mapping[str, sp.Expr] | None = None,
                 kinds: frozenset[str] | None = None) -> None:
        self.make, self.fixed, self.params = make, dict(fixed), dict(params)
        self.dims = dict(dims or {})  # input dims given as expressions of the symbols
        self.pos, self.kw = inputs
        self.options = dict(trace_options)
        self.cache: dict[tuple[tuple[str, int], ...], Cost | SymflopsError] = {}
        self.tables: dict[tuple[Any, ...], NodeTable] = {}
        self.pinned: dict[str, int] = {}
        #: read each trace at module level only (see :func:`merge_ops`)
        self.merged = False
        #: fold repeated blocks (off when two pieces of a formula fold differently)
        self.folding = True
        self.kinds = kinds

    @property
    def traces(self) -> int:
        """Points traced so far (failures included)."""
        return len(self.cache)

    def value(self, e: sp.Expr, point: Point) -> int | Fraction:
        """``e`` at ``point``: a positive exact number."""
        v = e.xreplace({s: sp.Integer(point[s.name]) for s in e.free_symbols
                        if s.name in point})
        if v.free_symbols:
            raise SymflopsError("a hyperparameter uses a symbol with no value",
                                layer="trace_factory",
                                values={"symbols": sorted(str(s) for s in v.free_symbols)})
        if v <= 0:
            raise SymflopsError("a hyperparameter is not positive at this point",
                                layer="trace_factory", values={"value": v, **point})
        return _exact(v)

    def arguments(self, point: Point) -> dict[str, Any]:
        """The constructor's keyword arguments at ``point``."""
        args = dict(self.fixed)
        for arg, e in self.params.items():
            args[arg] = ([self.value(x, point) for x in e] if isinstance(e, tuple)
                         else self.value(e, point))
        return args

    def build(self, point: Point) -> torch.nn.Module:
        """The model at ``point``, built on the meta device, RNGs kept."""
        args = self.arguments(point)
        name = getattr(self.make, "__name__", type(self.make).__name__)
        try:
            with kept_rngs(), torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self.make(**args)
        except SymflopsError:
            raise
        except Exception as e:  # the user's constructor refused these arguments
            raise SymflopsError(f"{name}(...) failed: {type(e).__name__}: {e}",
                                layer="trace_factory",
                                values={k: v for k, v in args.items()
                                        if k in self.params}) from None
        if not isinstance(model, torch.nn.Module):
            raise SymflopsError("the factory must return a torch.nn.Module",
                                layer="trace_factory", values={"returned": type(model).__name__},
                                fix="return the model from make(**kwargs)")
        return model

    def specs(self, point: Point) -> Any:
        """The input specs with the point's dims substituted (others stay symbolic)."""
        def size(d: int | str) -> int | str:
            if isinstance(d, str) and d in self.dims:
                v = self.value(self.dims[d], point)
                if not isinstance(v, int):
                    raise SymflopsError(f"input dim {d} is not an integer at this point",
                                        layer="trace_factory", values={d: v, **point})
                return v
            return point.get(d, d) if isinstance(d, str) else d

        def sub(s: InputSpec) -> InputSpec:
            return InputSpec(tuple(size(d) for d in s.dims), s.dtype)

        pos = [sub(s) for s in self.pos]
        kw = {k: sub(s) for k, s in self.kw.items()}
        return (pos + [kw]) if kw and pos else (kw or pos)

    def __call__(self, point: Point) -> NodeTable:
        """The folded table of the trace at ``point`` (cached; a failure raises again)."""
        key = tuple(sorted(point.items()))
        if key not in self.cache:
            self.cache[key] = self._trace(point)
        got = self.cache[key]
        if isinstance(got, SymflopsError):
            raise got
        mode = (key, self.merged, self.folding)
        if mode not in self.tables:
            tree = merge_ops(got) if self.merged else got
            tree = tree if self.kinds is None else only_kinds(tree, self.kinds)
            self.tables[mode] = table_of(fold(tree) if self.folding else tree)
        return self.tables[mode]

    def _symbolic_dims(self, point: Point) -> bool:
        """Whether some input dim is left to the tracer at ``point`` (symbolic traces)."""
        return any(isinstance(d, str) and d not in self.dims and d not in point
                   for spec in [*self.pos, *self.kw.values()] for d in spec.dims)

    def _trace(self, point: Point) -> Cost | SymflopsError:
        with memory_guard():
            return self._guarded(point)

    def _guarded(self, point: Point) -> Cost | SymflopsError:
        try:
            model = self.build(point)
            options = dict(self.options)
            hints = {k: v for k, v in dict(options.pop("hints", None) or {}).items()
                     if k not in point}
            specs = self.specs(point)
            cost = trace(model, specs, hints or None, warn=False, **options)
        except SymbolicShapesFailed as e:
            if self._symbolic_dims(point):
                return e
            # every size was a number: the forward itself raised (the tracer's words for
            # a symbolic failure would mislead), so name that error
            return SymflopsError(f"the model's forward raised {e.reason}",
                                 layer="trace_factory",
                                 values=dict(point),
                                 fix="check the constructor arguments at these values")
        except SymflopsError as e:
            return e
        fixed = getattr(getattr(cost, "report", None), "fixed", {}) or {}
        self.pinned.update({n: v for n, v in fixed.items() if n not in point})
        return cost
