"""Symbolic layers that mirror ``torch.nn``: same names, same arguments.

Each layer's ``cost(input_shape)`` checks its arguments and the input shape, then calls
its family's derivation in :mod:`symflops.formulas` (the same call the tracer's op
handlers make) and returns a :class:`~symflops.cost.Cost`. Sizes may be ints or SymPy
expressions (names such as ``"B"`` or ``"H"`` are turned into the canonical symbols).

>>> import symflops as sf
>>> from symflops.symbols import B, C_in, C_out, K, H, W
>>> c = sf.nn.Conv2d(C_in, C_out, K, padding="same").cost((B, C_in, H, W))
>>> c.flops
2*B*C_in*C_out*H*K**2*W
>>> c.params
C_out*(C_in*K**2 + 1)

Every layer class registers itself (:data:`symflops.nn._base.REGISTRY`) by carrying its
reference ``example``; :data:`LAYERS` and ``__all__`` are that registry.
"""

from __future__ import annotations

from types import MappingProxyType

# the family modules, in the order of the formula reference (each registers its layers)
# isort: off
from symflops.nn import (
    _base,
    _train,
    _conv,
    _linear,
    _norm,
    _pool,
    _pointwise,
    _resize,
    _embedding,
    _attention,
    _containers,
    _views,
    _tokens,
    _window,
    _recurrent,
    _transformer,
    _moe,
)
from symflops.nn._conv import *  # noqa: F403
from symflops.nn._linear import *  # noqa: F403
from symflops.nn._norm import *  # noqa: F403
from symflops.nn._pool import *  # noqa: F403
from symflops.nn._pointwise import *  # noqa: F403
from symflops.nn._resize import *  # noqa: F403
from symflops.nn._embedding import *  # noqa: F403
from symflops.nn._attention import *  # noqa: F403
from symflops.nn._containers import *  # noqa: F403
from symflops.nn._views import *  # noqa: F403
from symflops.nn._tokens import *  # noqa: F403
from symflops.nn._window import *  # noqa: F403
from symflops.nn._recurrent import *  # noqa: F403
from symflops.nn._transformer import *  # noqa: F403
from symflops.nn._moe import *  # noqa: F403
# isort: on
from symflops.errors import SymflopsError
from symflops.nn._base import REGISTRY, Layer, SizeLike, to_size

#: Every layer class by name, in the order the formula reference lists them (the
#: reference, the CLI and the tests look layers up here): the registry, read-only.
LAYERS: MappingProxyType[str, type[Layer]] = MappingProxyType(REGISTRY)

__all__ = ["Layer", "LAYERS", "SizeLike", "to_size", *REGISTRY]

# (each family module's ``__all__`` names its classes for type checkers, which do not run
# the registry; a class it leaves out is an error here, not a silently missing name)
if _missing := sorted(n for n in REGISTRY if globals().get(n) is not REGISTRY[n]):
    raise SymflopsError("layer classes missing from their family module's __all__",
                        values={"layers": _missing}, fix="add them to the module's __all__")


#: the family modules, each imported for the layers it registers
FAMILIES = (_base, _train, _conv, _linear, _norm, _pool, _pointwise, _resize, _embedding,
            _attention, _containers, _views, _tokens, _window, _recurrent, _transformer, _moe)
