"""The one error type symflops raises, carrying the layer, the values and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SymflopsError", "OutsideDomain", "SymbolicShapesFailed", "TimeBudgetSpent"]


class SymflopsError(ValueError):
    """A problem with a layer, a shape or a request, said in one readable line (a value
    that prints over several lines, a numpy array, is joined onto it).

    >>> e = SymflopsError("groups must divide in_channels", layer="Conv2d",
    ...                   values={"in_channels": 6, "groups": 4}, fix="use groups=1, 2, 3 or 6")
    >>> print(e)
    Conv2d: groups must divide in_channels (in_channels=6, groups=4); fix: use groups=1, 2, 3 or 6
    """

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        values: Mapping[str, Any] | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.layer = layer
        self.values = dict(values or {})
        self.fix = fix
        self.path: list[str] = []
        super().__init__(self._text())

    def at(self, name: str) -> SymflopsError:
        """Prepend a module name to where the error happened (containers call this)."""
        self.path.insert(0, name)
        self.args = (self._text(),)
        return self

    def _text(self) -> str:
        where = self.layer or ""
        if self.path:
            where = f"{where} at {'.'.join(self.path)}" if where else ".".join(self.path)
        text = f"{where}: {self.message}" if where else self.message
        if self.values:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.values.items()) + ")"
        if self.fix:
            text += f"; fix: {self.fix}"
        return " ".join(text.split("\n"))  # one line, whatever a value prints as


class OutsideDomain(SymflopsError):
    """A point outside the domain a formula was proven on (a lower bound, a lattice, an
    upper bound where a fit or a factory stopped looking, a pinned size): no number is
    given there.

    >>> raise OutsideDomain("the formula's condition Eq(Mod(H, 32), 0) fails", layer="trace",
    ...                     values={"H": 100}, fix="choose H a multiple of 32")
    Traceback (most recent call last):
    ...
    symflops.errors.OutsideDomain: trace: the formula's condition Eq(Mod(H, 32), 0) fails ...
    """


class SymbolicShapesFailed(SymflopsError):
    """torch could not run a model on symbolic sizes (``fallback="fit"`` may fit instead)."""


class TimeBudgetSpent(SymflopsError):
    """A call used up its ``time_budget`` (``fallback="fit"`` then fits instead)."""
