"""Collection for ``--doctest-modules`` (configured in pyproject.toml): without torch, the
tracing package (the only code that imports torch) and the docstring examples that trace
are not collected; CI and the README install torch, so there everything runs."""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["symflops/tracing/*", "symflops/tracing/handlers/*"]
