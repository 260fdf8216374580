"""Counting conventions: which kinds of work count, and at what rate.

Every formula in symflops returns its work split into *kinds* (the keys of
:data:`KINDS`). A convention is a weighting of those kinds; ``Cost.flops`` is
the weighted sum. The three built-in conventions:

========  =====================================================================
exact     every scalar multiply, add, compare, divide, exp and sqrt counts once
torch     2 per multiply-accumulate of conv/matmul/attention, nothing else
          (what ``torch.utils.flop_counter.FlopCounterMode`` reports)
macs      1 per multiply-accumulate of conv/matmul/attention, nothing else
          (what vision papers and torchvision's ``_ops`` call "GFLOPS")
========  =====================================================================

>>> from symflops.conventions import get_convention, Convention, register_convention
>>> get_convention("torch").rates["matmul_mul"]
2
>>> mine = Convention("no_stats", {k: 1 for k in KINDS if k != "norm_stats"},
...                   "exact, without normalization statistics")
>>> register_convention(mine, replace=True) is mine
True

A convention is checked when it is made: every rate is a non-negative integer (an int,
a numpy int, or a ``Fraction``/SymPy number equal to one, kept as an int). A fractional
rate is refused: a count is an integer at every size, and a weight of 1/2 would make
totals fractional (``evaluate`` could not give them exactly as integers, JSON output
could not write them). Floats (0.5 is not exact), NaN, negatives, bools, strings,
``None`` and unknown kinds are refused with the fix.

>>> Convention("twice", {"matmul_mul": Fraction(4, 2)}).rate("matmul_mul")
2
>>> Convention("bad", {"activation": 0.5})
Traceback (most recent call last):
...
symflops.errors.SymflopsError: Convention 'bad': rates must be non-negative integers \
(activation=0.5); fix: give activation an int rate such as 1 (a float is not exact)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError

__all__ = [
    "KINDS", "Convention", "register_convention", "get_convention", "conventions",
    "unregister_convention",
]

#: The kinds of work a formula reports, with what one unit of each means.
KINDS: dict[str, str] = {
    "matmul_mul": "multiplies of conv/linear/matmul/attention dot products (one per MAC)",
    "matmul_add": "adds inside those dot products: n - 1 per output of a length-n dot product",
    "bias": "one add per output element that has a bias",
    "norm_affine": "per-element scale and shift of a norm (BatchNorm folded: 2 per element)",
    "norm_stats": "mean, variance, rsqrt and normalize of LayerNorm/GroupNorm/RMSNorm",
    "activation": "pointwise nonlinearity (ReLU 1, GELU 5, SiLU 4 per element; see formulas)",
    "pooling": "window reductions: compares (max) or adds and one divide (average)",
    "softmax": "max, subtract, exp, sum and divide over a row: 5n - 2 for a row of n",
    "elementwise": "residual adds, attention score scaling, masks and other pointwise arithmetic",
}


def _rate(name: str, kind: str, value: object) -> int:
    """``value`` as a non-negative int rate, or an error naming it and the fix."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    if isinstance(value, (Fraction, sp.Rational)) and value.denominator == 1 and value >= 0:
        return int(value.numerator)
    why = " (a float is not exact)" if isinstance(value, float) else \
        " (a fractional rate makes counts fractional)" if isinstance(
            value, (Fraction, sp.Rational)) and value >= 0 else ""
    raise SymflopsError("rates must be non-negative integers",
                        layer=f"Convention {name!r}", values={kind: repr(value)},
                        fix=f"give {kind} an int rate such as 1{why}")


@dataclass(frozen=True)
class Convention:
    """A named weighting of the kinds of work.

    ``rates`` maps a kind to its weight (a non-negative integer); a kind left out
    counts 0. ``unit`` is how the weighted sum is labelled when printed ("FLOPs" or
    "MACs"). Everything is checked here, not when the convention is first used.
    """

    name: str
    rates: Mapping[str, int] = field(default_factory=dict)
    description: str = ""
    unit: str = "FLOPs"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SymflopsError(
                "convention name must be an identifier",
                layer="Convention",
                values={"name": repr(self.name)},
                fix="use letters, digits and underscores",
            )
        for what in ("description", "unit"):
            if not isinstance(getattr(self, what), str) or not (self.unit or what != "unit"):
                raise SymflopsError(
                    f"convention {what} must be text", layer=f"Convention {self.name!r}",
                    values={what: repr(getattr(self, what))},
                    fix='e.g. unit="FLOPs" and a one-line description')
        if not isinstance(self.rates, Mapping):
            raise SymflopsError("rates must map kinds of work to numbers",
                                layer=f"Convention {self.name!r}",
                                values={"rates": repr(self.rates)},
                                fix="pass a dict such as {\"matmul_mul\": 2}")
        unknown = sorted(map(repr, set(self.rates) - set(KINDS)))
        if unknown:
            raise SymflopsError(
                "convention names unknown kinds of work",
                layer=f"Convention {self.name!r}",
                values={"unknown": unknown},
                fix="use only " + ", ".join(KINDS),
            )
        rates = {k: _rate(self.name, k, v) for k, v in self.rates.items()}
        object.__setattr__(self, "rates", rates)  # a checked copy: later edits to the
        # caller's dict do not reach the convention

    def rate(self, kind: str) -> int:
        """The weight of one unit of ``kind`` (0 when the convention ignores it)."""
        return self.rates.get(kind, 0)

    def weigh(self, work: Mapping[str, Any]) -> Any:
        """``work`` (kind -> count) weighted by this convention: the one place FLOPs are
        summed from kinds (a Cost's total, a derivation's general formula).

        >>> from symflops.symbols import M
        >>> get_convention("torch").weigh({"matmul_mul": 4 * M, "bias": M})
        8*M
        """
        import sympy as sp

        return sp.Add(*(self.rate(k) * v for k, v in work.items()))

    @property
    def label(self) -> str:
        """How totals under this convention are labelled: ``FLOPs (exact)``, ``MACs``."""
        return self.unit if self.name == "macs" else f"{self.unit} ({self.name})"


_REGISTRY: dict[str, Convention] = {}


def register_convention(convention: Convention, *, replace: bool = False) -> Convention:
    """Make ``convention`` available by name; registering a name twice raises."""
    if not isinstance(convention, Convention):
        raise SymflopsError("only a Convention can be registered", layer="Convention",
                            values={"given": type(convention).__name__},
                            fix='build one: Convention("name", {"matmul_mul": 2}, "what")')
    if convention.name in _REGISTRY and not replace:
        raise SymflopsError(
            "a convention with this name is already registered",
            layer="Convention",
            values={"name": convention.name},
            fix="pick another name or pass replace=True",
        )
    _REGISTRY[convention.name] = convention
    return convention


def unregister_convention(name: str) -> None:
    """Remove a user convention (built-in ones stay)."""
    if name in ("exact", "torch", "macs"):
        raise SymflopsError("built-in conventions cannot be removed", layer="Convention",
                            values={"name": name}, fix="register a convention under a new name")
    _REGISTRY.pop(name, None)


def get_convention(convention: str | Convention) -> Convention:
    """Look a convention up by name (a :class:`Convention` passes through)."""
    if isinstance(convention, Convention):
        return convention
    try:
        return _REGISTRY[convention]
    except (KeyError, TypeError):
        raise SymflopsError(
            "unknown convention",
            layer="Convention",
            values={"convention": convention},
            fix="use one of " + ", ".join(sorted(_REGISTRY)) + " or register_convention(...)",
        ) from None


def conventions() -> dict[str, Convention]:
    """All registered conventions by name."""
    return dict(_REGISTRY)


register_convention(Convention(
    "exact", {k: 1 for k in KINDS},
    "every scalar multiply, add, compare, divide, exp and sqrt counted once",
))
register_convention(Convention(
    "torch", {"matmul_mul": 2},
    "2 per multiply-accumulate of conv/matmul/attention; bias and all else 0 "
    "(torch.utils.flop_counter.FlopCounterMode)",
))
register_convention(Convention(
    "macs", {"matmul_mul": 1},
    "1 per multiply-accumulate of conv/matmul/attention; all else 0 "
    "(torchvision _ops, fvcore, most vision papers)",
    unit="MACs",
))
register_convention(Convention(
    "chinchilla", {"matmul_mul": 2, "softmax": 1},
    "2 per multiply-accumulate and the softmax's operations (Hoffmann et al. 2022, "
    "Appendix F, counts the softmax too, at 3 per element; see docs/papers.md)",
))
