"""What a trace is asked: input specs (sizes and dim names), example sizes, and the
:class:`TraceContext` every later stage reads instead of a long parameter list.

>>> pos, kw = parse_inputs("B 3 H W")
>>> pos[0].dims, dim_names(pos, kw)
(('B', 3, 'H', 'W'), ['B', 'H', 'W'])
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from symflops.conventions import Convention
from symflops.errors import SymflopsError

__all__ = ["InputSpec", "TraceContext", "parse_inputs", "dim_names", "with_sizes",
           "check_model_and_mode", "ids_by_position",
           "DEFAULT_HINTS", "DEFAULT_TIME_BUDGET", "checked_budget"]

#: seconds a trace (or a fit's concrete traces together) may take by default
DEFAULT_TIME_BUDGET = 300.0
#: example sizes used when the user gives none (any other dim: 64)
DEFAULT_HINTS = {"B": 2, "H": 224, "W": 224, "D": 16, "T": 128, "N": 128, "S": 128,
                 "L": 128}
_OTHER_HINT = 64
#: the smallest example size torch keeps symbolic (it specializes 0 and 1)
_SYMBOLIC_MIN = 2
#: keyword inputs with these names are token ids (int64)
_LONG_NAMES = ("input_ids", "ids", "tokens", "token_ids", "labels", "position_ids",
               "decoder_input_ids", "idx")


@dataclass(frozen=True)
class InputSpec:
    """One tensor input: sizes (ints or dim names) and a dtype."""

    dims: tuple[int | str, ...]
    dtype: Any = None


def _is_dim(x: Any) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or \
        (isinstance(x, str) and x.isidentifier())


def _one_spec(spec: Any, name: str = "") -> InputSpec:
    dtype = None
    if isinstance(spec, InputSpec):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], torch.dtype):
        spec, dtype = spec
    if isinstance(spec, str):
        dims: list[Any] = []
        for tok in spec.split():
            dims.append(int(tok) if tok.isdigit() else tok)
        spec = tuple(dims)
    if not isinstance(spec, (tuple, list)) or not all(_is_dim(d) for d in spec):
        raise SymflopsError("an input spec must be sizes and dim names", layer="trace",
                            values={"input": repr(spec)},
                            fix='pass e.g. "B 3 H W", ("B", 3, "H", "W") or '
                                '(("B", "N"), torch.long)')
    for d in spec:
        if isinstance(d, str) and not d.isidentifier():
            raise SymflopsError("dim names must be identifiers", layer="trace",
                                values={"dim": d})
        if isinstance(d, int) and d < 0:
            raise SymflopsError("sizes must be >= 0", layer="trace", values={"size": d})
    if dtype is None and name in _LONG_NAMES:
        dtype = torch.long
    return InputSpec(tuple(spec), dtype)


def parse_inputs(inputs: Any) -> tuple[list[InputSpec], dict[str, InputSpec]]:
    """Positional and keyword input specs from what the user passed.

    >>> pos, kw = parse_inputs("B 3 H W")
    >>> pos[0].dims
    ('B', 3, 'H', 'W')
    >>> parse_inputs({"input_ids": ("B", "N")})[1]["input_ids"].dtype
    torch.int64
    """
    if isinstance(inputs, Mapping):
        return [], {k: _one_spec(v, k) for k, v in inputs.items()}
    if isinstance(inputs, (str, InputSpec)):
        return [_one_spec(inputs)], {}
    if isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], torch.dtype):
        return [_one_spec(inputs)], {}
    if isinstance(inputs, (tuple, list)):
        if all(_is_dim(d) for d in inputs):
            return [_one_spec(tuple(inputs))], {}
        pos: list[InputSpec] = []
        kw: dict[str, InputSpec] = {}
        for item in inputs:
            if isinstance(item, Mapping):
                kw.update({k: _one_spec(v, k) for k, v in item.items()})
            else:
                pos.append(_one_spec(item))
        return pos, kw
    raise SymflopsError("cannot read the input spec", layer="trace",
                        values={"inputs": repr(inputs)},
                        fix='pass "B 3 H W", a tuple of sizes, a list of those or a dict')


def ids_by_position(model: Any, pos: Sequence[InputSpec]) -> list[InputSpec]:
    """Positional specs without a dtype whose parameter of ``model.forward`` has a token-id
    name (``input_ids``, ...) as int64, as keyword inputs of those names are: a
    transformers model traced on ``"B N"`` gets token ids.

    >>> class LM(torch.nn.Module):
    ...     def forward(self, input_ids, attention_mask=None): ...
    >>> ids_by_position(LM(), parse_inputs("B N")[0])[0].dtype
    torch.int64
    """
    try:
        names = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError, AttributeError):
        return list(pos)
    return [InputSpec(s.dims, torch.long) if s.dtype is None and i < len(names)
            and names[i] in _LONG_NAMES else s for i, s in enumerate(pos)]


def dim_names(pos: Sequence[InputSpec], kw: Mapping[str, InputSpec]) -> list[str]:
    """The dim names of the inputs, in first-seen order."""
    names: list[str] = []
    for spec in [*pos, *kw.values()]:
        for d in spec.dims:
            if isinstance(d, str) and d not in names:
                names.append(d)
    return names


def with_sizes(pos: Sequence[InputSpec], kw: Mapping[str, InputSpec],
               values: Mapping[str, int]) -> tuple[list[InputSpec], dict[str, InputSpec]]:
    """The same inputs with each named dim in ``values`` replaced by its value.

    >>> with_sizes(*parse_inputs("B 3 H W"), {"B": 1, "H": 8, "W": 8})[0]
    [InputSpec(dims=(1, 3, 8, 8), dtype=None)]
    >>> with_sizes(*parse_inputs("B 3 H W"), {"B": 1})[0]
    [InputSpec(dims=(1, 3, 'H', 'W'), dtype=None)]
    """
    def sub(s: InputSpec) -> InputSpec:
        return InputSpec(tuple(values.get(d, d) if isinstance(d, str) else d for d in s.dims),
                         s.dtype)

    return [sub(s) for s in pos], {k: sub(v) for k, v in kw.items()}


def check_model_and_mode(model: Any, mode: str, layer: str) -> None:
    """Refuse what ``trace``/``fit`` (``layer``) cannot run: a mode other than eval/train,
    a model that is not a ``torch.nn.Module``."""
    if mode not in ("eval", "train"):
        raise SymflopsError("mode must be 'eval' or 'train'", layer=layer,
                            values={"mode": mode})
    if not isinstance(model, torch.nn.Module):
        raise SymflopsError(f"{layer} needs a torch.nn.Module", layer=layer,
                            values={"model": type(model).__name__})


def checked_budget(budget: Any, layer: str) -> float | None:
    """``budget`` as seconds (a positive finite number, or None for no limit)."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or \
            not math.isfinite(budget) or budget <= 0:
        raise SymflopsError("time_budget must be a positive number of seconds", layer=layer,
                            values={"time_budget": repr(budget)},
                            fix="pass a positive number of seconds, e.g. {time_budget}",
                            options={"time_budget": 600})
    return float(budget)


@dataclass(frozen=True)
class TraceContext:
    """One trace run's settings: the model, its inputs, the example size of each dim
    (``hint_of``), the convention and the switches (``train``, ``strict``, ``real``,
    ``resize``: reroute ``F.interpolate`` to keep sizes symbolic; ``skip_masked``: causal
    attention kernels count their unmasked half), and the time budget:
    ``deadline`` (a ``time.perf_counter()`` value; ``None``: no limit) of ``budget`` s."""

    model: torch.nn.Module
    positional: tuple[InputSpec, ...]
    keyword: Mapping[str, InputSpec]
    hint_of: Mapping[str, int]
    convention: Convention
    train: bool = False
    strict: bool = False
    real: bool = False
    resize: bool = False
    skip_masked: bool = False
    deadline: float | None = None
    budget: float | None = None
    #: ``trace(past=)``: the KV cache the model reads (a ``_cache.PastSpec``)
    past: Any = None
    #: names (and example values) of data-dependent sizes: name -> (source, example),
    #: see :mod:`symflops.tracing._data_dependent`
    data_dependent: Mapping[str, tuple[str | None, int | None]] = \
        dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, model: torch.nn.Module, pos: Sequence[InputSpec],
              kw: Mapping[str, InputSpec], hints: Mapping[str, int], convention: Convention,
              **switches: Any) -> TraceContext:
        """A context whose example sizes are ``hints``, else the defaults. A hint is only
        an example: torch specializes sizes 0 and 1 (a dim traced at 1 would come out
        fixed), so a hint of 1 is traced at 2.

        >>> from symflops.conventions import get_convention
        >>> ctx = TraceContext.build(None, *parse_inputs("B N"), {"B": 1},
        ...                          get_convention("exact"))
        >>> ctx.hint_of
        {'B': 2, 'N': 128}
        """
        names = dim_names(pos, kw)
        past = switches.get("past")
        if past is not None and isinstance(past.length, str) and past.length not in names:
            names.append(past.length)  # the cached length: a dim of the cache's tensors
        hint_of = {n: max(hints.get(n, DEFAULT_HINTS.get(n, _OTHER_HINT)), _SYMBOLIC_MIN)
                   for n in names}
        return cls(model, tuple(pos), dict(kw), hint_of, convention, **switches)

    @property
    def specs(self) -> list[InputSpec]:
        """Every input spec, positional then keyword."""
        return [*self.positional, *self.keyword.values()]
