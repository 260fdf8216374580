"""What the command line prints when something goes wrong: one line per error or warning,
with library advice written in Python (``hints={'H': 32}``) translated to the flags that
do the same thing (``--hint H=32``).

>>> to_cli("give hints (example sizes) the model accepts, e.g. hints={'H': 32}")
'give hints (example sizes) the model accepts, e.g. --hint H=32'
>>> to_cli("pass a larger time_budget=..., or pass fallback='fit' to fit an exact formula")
'pass a larger --time-budget SECONDS, or pass --fallback fit to fit an exact formula'
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["TRANSLATIONS", "to_cli", "one_line", "show_warning"]

Replacement = str | Callable[[re.Match[str]], str]


def _hints(m: re.Match[str]) -> str:
    pairs = re.findall(r"['\"](\w+)['\"]\s*:\s*(\d+)", m.group(1))
    return " ".join(f"--hint {k}={v}" for k, v in pairs) or "--hint NAME=SIZE"


#: Python advice in library messages -> the command-line flag that does it, in order
#: (one entry per keyword the library names; a new option adds its row here)
TRANSLATIONS: list[tuple[re.Pattern[str], Replacement]] = [
    (re.compile(r"hints=\{([^}]*)\}"), _hints),
    (re.compile(r"\bhints=(?:\.\.\.)?"), "--hint NAME=SIZE"),
    (re.compile(r"\btime_budget=(\d+)"), r"--time-budget \1"),
    (re.compile(r"\btime_budget=(?:\.\.\.)?"), "--time-budget SECONDS"),
    (re.compile(r", or None for no limit"), ""),
    (re.compile(r"\bfallback=['\"]fit['\"]"), "--fallback fit"),
    (re.compile(r"\b(?:symflops|sf)\.tracing\.fit(?:\(\.\.\.\))?"), "--fallback fit"),
    (re.compile(r"\bpass strict=False"), "leave --strict out"),
    (re.compile(r"\bstrict=False"), "without --strict"),
    (re.compile(r"\b(symflops\.tracing\.register\(\.\.\.\))"), r"\1 in Python"),
    (re.compile(r"\bsubstitute the dims\b"), "give every --input size as an integer"),
    (re.compile(r"\bstrict=True"), "--strict"),
    (re.compile(r"\breal=True"), "--real"),
    (re.compile(r"\bskip_masked=True"), "--skip-masked"),
    (re.compile(r"\bmode=['\"]train['\"]"), "--train"),
    (re.compile(r"\b(convention|numbers|style)=['\"](\w+)['\"]"), r"--\1 \2"),
    (re.compile(r"\bmath_only=True"), "--math-only"),
    (re.compile(r" or register_convention\(\.\.\.\)"), ""),
    (re.compile(r"\(at= in Python, (--at \S+) on the command line\)"), r"(\1)"),
    (re.compile(r" \(in Python, [^)]*\)"), ""),
    (re.compile(r"\bat=\{[^}]*\}"), "--at NAME=VALUE"),
    (re.compile(r"\bat=(?=[\s;,)]|$)"), "--at"),
    (re.compile(r"\bsf\.trace: "), "trace: "),
]


def to_cli(text: str) -> str:
    """``text`` with every Python keyword the library advises replaced by its flag."""
    for pattern, replacement in TRANSLATIONS:
        text = pattern.sub(replacement, text)
    return text


def one_line(text: str) -> str:
    """A message on one line: the lines of a multi-line one joined by `` / ``.

    >>> one_line("first\\n  second\\n")
    'first / second'
    """
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def show_warning(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: Any = None, line: str | None = None) -> None:
    """A Python warning as one line on stderr, ``symflops: warning: ...`` (not Python's
    two-line ``file.py:272: UserWarning:`` form with the source line)."""
    sys.stderr.write(f"symflops: warning: {to_cli(one_line(str(message)))}\n")
