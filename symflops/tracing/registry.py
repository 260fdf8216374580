"""The op-handler registry: aten overload packet -> a small formula function.

A handler receives an :class:`OpCall` (shapes, not tensors: every tensor argument is a
:class:`TShape` of SymPy sizes in the user's symbols), maps the op's arguments to its
layer family's derivation in :mod:`symflops.formulas` (the call ``sf.nn`` makes) and
returns one or more :class:`Part` s (``Part.of(derivation)``): the general formula in
canonical symbols, the bindings that turn it into this call's work, and that work.

>>> import torch
>>> from symflops.tracing.registry import register, HANDLERS
>>> torch.ops.aten.convolution in HANDLERS
True
>>> @register(torch.ops.aten.convolution)        # a second handler for one op raises
... def mine(call): ...
Traceback (most recent call last):
...
symflops.errors.SymflopsError: register: an op has a handler already (op=aten.convolution); fix: ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation

__all__ = ["TShape", "OpCall", "Part", "Handler", "HANDLERS", "ZERO_COST", "register",
           "register_zero_cost", "op_name"]


@dataclass(frozen=True)
class TShape:
    """A tensor argument seen by a handler: its shape (SymPy sizes) and dtype name."""

    shape: tuple[sp.Expr, ...]
    dtype: str = "float32"

    @property
    def numel(self) -> sp.Expr:
        out: sp.Expr = sp.Integer(1)
        for s in self.shape:
            out = out * s
        return out

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class OpCall:
    """One recorded aten call: ``args``/``kwargs`` with tensors as :class:`TShape`,
    ``out`` the tensor outputs, ``module`` the type name of the innermost nn.Module,
    ``options`` the trace's counting options (``skip_masked``)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: tuple[TShape, ...]
    module: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Positional argument ``i`` or keyword ``name`` (schema order)."""
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(name, default)


@dataclass
class Part:
    """Work of (part of) one op with its derivation pieces.

    Built from a family derivation with :meth:`of` (the work is computed once, from the
    general formula and the bindings); the fields stay readable one by one.

    >>> from symflops.formulas.linear import linear_derivation
    >>> p = Part.of(linear_derivation(2, 4, 3), name="fc")
    >>> p.work["matmul_mul"], p.general_params
    (24, I*O + O)
    """

    work: dict[str, Any]
    general: Mapping[str, Any]
    bindings: Mapping[sp.Symbol, Any]
    explanation: str
    name: str = ""                      # "" for the op itself, else e.g. "scores"
    layer: str = ""                     # overrides the leaf's layer type
    rates: Mapping[str, str] = field(default_factory=dict)
    #: the parameter formula of the module this op usually implements, in canonical
    #: symbols (conv: C_out*(C_in*K^2/groups + 1)); used when it matches the module's count
    general_params: Any = None
    #: the family derivation this part was built from (None for hand-made parts)
    derivation: Derivation | None = None
    #: what the count cannot know (data-dependent work): copied into the leaf's ``notes``
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, derivation: Derivation, *, name: str = "", layer: str = "",
           notes: tuple[str, ...] = ()) -> Part:
        """The part a family derivation describes: its work is ``derivation.work``."""
        return cls(derivation.work, derivation.general, derivation.bindings,
                   derivation.explanation, name=name, layer=layer, rates=derivation.rates,
                   general_params=derivation.general_params, derivation=derivation,
                   notes=notes)


Handler = Callable[[OpCall], Sequence[Part]]

_HANDLERS: dict[Any, Handler] = {}
_ZERO_COST: dict[Any, None] = {}
#: aten overload packet -> handler (read-only: change it with :func:`register` and
#: :func:`unregister`, which refuse a second handler for one op)
HANDLERS: Mapping[Any, Handler] = MappingProxyType(_HANDLERS)
#: aten overload packets that move or allocate data and do no arithmetic (a read-only,
#: live view: :func:`register_zero_cost` adds to it)
ZERO_COST: AbstractSet[Any] = _ZERO_COST.keys()


def op_name(packet: Any) -> str:
    """``aten.convolution`` for ``torch.ops.aten.convolution``."""
    return str(getattr(packet, "_qualified_op_name", packet)).replace("::", ".")


def _check_new(packet: Any) -> None:
    if packet in HANDLERS or packet in ZERO_COST:
        raise SymflopsError("an op has a handler already", layer="register",
                            values={"op": op_name(packet)},
                            fix="each aten op gets one handler; unregister it first")


def register(*packets: Any) -> Callable[[Handler], Handler]:
    """Decorator: ``fn`` handles every listed overload packet; registering twice raises."""

    def deco(fn: Handler) -> Handler:
        for p in packets:
            _check_new(p)
        for p in packets:
            _HANDLERS[p] = fn
        return fn

    return deco


def register_zero_cost(*packets: Any) -> None:
    """Declare ops that do no arithmetic (views, copies, allocation, selection)."""
    for p in packets:
        _check_new(p)
    _ZERO_COST.update(dict.fromkeys(packets))


def unregister(packet: Any) -> None:
    """Remove a handler or a zero-cost declaration (for users overriding a built-in)."""
    _HANDLERS.pop(packet, None)
    _ZERO_COST.pop(packet, None)
