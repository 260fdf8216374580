"""The one error type symflops raises, carrying the layer, the values and the fix.

A fix that changes options carries them as data (``options={"hints": {"H": 32}}``) and
names where they go in its prose with ``{hints}``. Python prints them as keyword arguments,
the command line as flags, both from one table (:data:`FLAGS`):

>>> e = SymflopsError("symbolic shapes failed", layer="trace",
...                   fix="give {hints}, or pass {fallback}",
...                   options={"hints": {"H": 32}, "fallback": "fit"})
>>> print(e)
trace: symbolic shapes failed; fix: give hints={'H': 32}, or pass fallback='fit'
>>> print(e.cli_text())
trace: symbolic shapes failed; fix: give --hint H=32, or pass --fallback fit
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SymflopsError", "OutsideDomain", "SymbolicShapesFailed", "TimeBudgetSpent",
           "ExceedsInt64", "SymflopsWarning", "Flag", "FLAGS", "python_option", "cli_option"]


@dataclass(frozen=True)
class Flag:
    """How the command line writes one library option.

    ``kind``: ``"value"`` (``--time-budget 600``; a value of ``...`` prints ``placeholder``),
    ``"pairs"`` (one ``--hint K=V`` per item), ``"list"`` (``--at K=V,K=V``) or ``"switch"``
    (the flag alone when the value is ``on``; any other value is advice to leave the flag
    out, which Python says as ``pass strict=False``).
    """

    flag: str
    kind: str = "value"
    placeholder: str = "VALUE"
    on: Any = True


#: every library option an error's fix may name -> its command-line flag (a new option
#: that errors advise adds its row here; tests/test_errors.py checks each against the CLI)
FLAGS: dict[str, Flag] = {
    "hints": Flag("--hint", "pairs", "NAME=SIZE"),
    "at": Flag("--at", "list", "NAME=VALUE"),
    "time_budget": Flag("--time-budget", placeholder="SECONDS"),
    "fallback": Flag("--fallback", placeholder="fit"),
    "convention": Flag("--convention", placeholder="NAME"),
    "numbers": Flag("--numbers", placeholder="grouped|plain|comma|si"),
    "style": Flag("--style", placeholder="NAME"),
    "strict": Flag("--strict", "switch"),
    "real": Flag("--real", "switch"),
    "skip_masked": Flag("--skip-masked", "switch"),
    "math_only": Flag("--math-only", "switch"),
    "mode": Flag("--train", "switch", on="train"),
    "zero": Flag("--zero", placeholder="STAGE"),
    "data_parallel": Flag("--data-parallel", placeholder="EXPR"),
    "tensor_parallel": Flag("--tensor-parallel", placeholder="EXPR"),
    "pipeline_parallel": Flag("--pipeline-parallel", placeholder="EXPR"),
    "precision": Flag("--precision", placeholder="NAME"),
    "recompute": Flag("--recompute", placeholder="none|selective|full"),
    "weight_format": Flag("--weight-format", placeholder="NAME"),
    "kv_bytes": Flag("--kv-bytes", placeholder="N"),
    "paths": Flag("--paths", placeholder="one|all"),
}


def _python_value(value: Any) -> str:
    if value is Ellipsis:
        return "..."
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_python_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _cli_value(value: Any) -> str:
    return "..." if value is Ellipsis else str(value)


def python_option(name: str, value: Any) -> str:
    """``name=value`` as a Python call writes it (``...``: a value left to the reader).

    >>> python_option("hints", {"H": 32}), python_option("time_budget", ...)
    ("hints={'H': 32}", 'time_budget=...')
    >>> python_option("strict", False)
    'pass strict=False'
    """
    flag = FLAGS.get(name)
    text = f"{name}={_python_value(value)}"
    if flag is not None and flag.kind == "switch" and value != flag.on:
        return f"pass {text}"
    return text


def cli_option(name: str, value: Any) -> str:
    """The command-line flags that set option ``name`` to ``value``.

    >>> cli_option("hints", {"H": 32, "W": 48}), cli_option("time_budget", ...)
    ('--hint H=32 --hint W=48', '--time-budget SECONDS')
    >>> cli_option("mode", "train"), cli_option("strict", False)
    ('--train', 'leave --strict out')
    """
    flag = FLAGS[name]
    if flag.kind == "switch":
        return flag.flag if value == flag.on else f"leave {flag.flag} out"
    if value is Ellipsis:
        return f"{flag.flag} {flag.placeholder}"
    if flag.kind == "pairs":
        return " ".join(f"{flag.flag} {k}={_cli_value(v)}" for k, v in value.items())
    if flag.kind == "list":
        return f"{flag.flag} " + ",".join(f"{k}={_cli_value(v)}" for k, v in value.items())
    return f"{flag.flag} {_cli_value(value)}"


def _fill(text: str, options: Mapping[str, Any], say: Callable[[str, Any], str]) -> str:
    for name, value in options.items():
        text = text.replace("{" + name + "}", say(name, value))
    return text


class _Structured:
    """What an error and a warning share: the message, the layer, the values, the fix and
    the options the fix changes, written for Python (``str``) or the command line."""

    message: str
    layer: str | None
    values: dict[str, Any]
    fix: str | None
    options: dict[str, Any]
    path: list[str]

    def _text(self, say: Callable[[str, Any], str] = python_option) -> str:
        where = self.layer or ""
        if self.path:
            where = f"{where} at {'.'.join(self.path)}" if where else ".".join(self.path)
        message = _fill(self.message, self.options, say)
        text = f"{where}: {message}" if where else message
        if self.values:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.values.items()) + ")"
        fix = _fill(self.fix, self.options, say) if self.fix else None
        unplaced = [say(k, v) for k, v in self.options.items()
                    if "{" + k + "}" not in self.message + (self.fix or "")]
        if unplaced:
            fix = (f"{fix} " if fix else "") + "(" + ", ".join(unplaced) + ")"
        if fix:
            text += f"; fix: {fix}"
        return " ".join(text.split("\n"))  # one line, whatever a value prints as

    def cli_text(self) -> str:
        """The same line with every option written as the command-line flag that sets it."""
        return self._text(cli_option)


class SymflopsError(_Structured, ValueError):
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
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.layer = layer
        self.values = dict(values or {})
        self.fix = fix
        #: the options the fix changes and their values (``{"hints": {"H": 32}}``)
        self.options = dict(options or {})
        self.path: list[str] = []
        super().__init__(self._text())

    def at(self, name: str) -> SymflopsError:
        """Prepend a module name to where the error happened (containers call this)."""
        self.path.insert(0, name)
        self.args = (self._text(),)
        return self


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
    """torch could not run a model on symbolic sizes (``fallback="fit"`` may fit instead).
    ``reason``: torch's own error, one line, in the user's dim names. ``before_any_op``:
    the model's own Python code failed before it called any torch op (an ``assert`` on
    its input size), so no rerouting of torch's functions can change the outcome."""

    reason: str = ""
    before_any_op: bool = False


class TimeBudgetSpent(SymflopsError):
    """A call used up its ``time_budget`` (``fallback="fit"`` then fits instead)."""


class ExceedsInt64(SymflopsError):
    """An int64 evaluation would overflow (Python may pass ``dtype=object`` arrays instead;
    the command line, which computes int64, asks for smaller sizes)."""


class SymflopsWarning(_Structured, UserWarning):
    """A warning with the same parts as :class:`SymflopsError` (the command line prints
    its options as flags)."""

    def __init__(self, message: str, *, layer: str | None = None,
                 values: Mapping[str, Any] | None = None, fix: str | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        self.message, self.layer, self.fix = message, layer, fix
        self.values, self.options = dict(values or {}), dict(options or {})
        self.path: list[str] = []
        super().__init__(self._text())
