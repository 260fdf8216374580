"""What the command line prints when something goes wrong: one line per error or warning.
A symflops error or warning carries the options its fix changes as data; the command line
prints them as the flags that set them (:data:`symflops.errors.FLAGS`), where Python prints
keyword arguments:

>>> from symflops.errors import SymflopsError
>>> e = SymflopsError("out of time", layer="trace", fix="pass a larger {time_budget}",
...                   options={"time_budget": ...})
>>> error_line(e)
'symflops: error: trace: out of time; fix: pass a larger --time-budget SECONDS'
"""

from __future__ import annotations

import sys
from typing import Any

from symflops.errors import SymflopsError, SymflopsWarning

__all__ = ["error_line", "one_line", "show_warning"]


def one_line(text: str) -> str:
    """A message on one line: the lines of a multi-line one joined by `` / ``.

    >>> one_line("first\\n  second\\n")
    'first / second'
    """
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def error_line(error: SymflopsError) -> str:
    """``symflops: error: ...``: the error's line with its options written as flags."""
    return f"symflops: error: {one_line(error.cli_text())}"


def show_warning(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: Any = None, line: str | None = None) -> None:
    """A Python warning as one line on stderr, ``symflops: warning: ...`` (not Python's
    two-line ``file.py:272: UserWarning:`` form with the source line)."""
    text = message.cli_text() if isinstance(message, SymflopsWarning) else str(message)
    sys.stderr.write(f"symflops: warning: {one_line(text)}\n")
