"""``trace(..., past="T")``: a decode step of a Hugging Face decoder whose KV cache holds
``T`` tokens, ``T`` a dim name (symbolic) or an int.

The cache is a transformers ``DynamicCache`` whose tensors are made like the inputs: fake
tensors with the symbolic sizes (real random ones with ``real=True``). Their shapes are the
model's own: one probe forward at the example sizes, on fake tensors of another fake mode
(nothing recorded, the user's model and the trace's fakes untouched), fills an empty
``DynamicCache``; each layer's keys and values are ``(batch, heads, n, width)`` there
(``DynamicLayer`` appends along dim -2), and the traced cache is the same with the batch
dim the input's and dim -2 ``T`` long. So grouped-query attention caches its ``kv_heads``,
DeepSeek-V2 its latent (``kv_lora_rank``) and shared rotary key, each as transformers
writes them. The model then computes the positions itself (``cache_position`` =
``arange(T, T + n)``, the position ids and the causal mask from it), as in ``generate``.

The inputs are the new tokens: their first input is ``(batch, n)`` (``input_ids``) or
``(batch, n, dim)`` (``inputs_embeds``). The domain gets ``T + n <= max_position_embeddings``
(the length the model's config declares; a table of learned positions also gives it
through the trace's index check), stated in the cost's validity.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp
import torch

from symflops import symbols as S
from symflops.errors import SymflopsError
from symflops.tracing import _torch_compat as C
from symflops.tracing._inputs import InputSpec

__all__ = ["PastSpec", "parse_past", "cache_keyword", "make_cache", "position_limit",
           "default_hint"]

#: the names a decoder's forward takes its cache under (transformers 5.25 renamed
#: ``past_key_values`` to ``cache``; the old name is deprecated there)
_KEYWORDS = ("cache", "past_key_values")


@dataclass(frozen=True)
class PastSpec:
    """The KV cache a decode step reads: ``length`` tokens per sequence (a dim name or an
    int), passed as the model's ``keyword`` argument."""

    length: int | str
    keyword: str


def cache_keyword(model: torch.nn.Module) -> str | None:
    """The keyword ``model.forward`` takes its KV cache under, None if it takes none."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return next((k for k in _KEYWORDS if k in params), None)


def parse_past(past: Any, model: torch.nn.Module, specs: Sequence[InputSpec],
               mode: str, fallback: str | None) -> PastSpec:
    """Check ``past=`` and what it needs: a decoder with a config and a cache keyword, the
    new tokens as the first input ``(batch, n)`` or ``(batch, n, dim)``, inference."""
    ok = (isinstance(past, str) and past.isidentifier()) or (
        isinstance(past, int) and not isinstance(past, bool) and past >= 0)
    if not ok:
        raise SymflopsError("past is the number of cached tokens: a dim name or an int >= 0",
                            layer="trace", values={"past": repr(past)},
                            fix='pass e.g. past="T" (symbolic) or past=128')
    if mode != "eval":
        raise SymflopsError("past= traces a decode step (inference)", layer="trace",
                            values={"mode": mode}, fix='pass mode="eval", or drop past=')
    if fallback is not None:
        raise SymflopsError("past= is not available with {fallback}", layer="trace",
                            values={"fallback": fallback},
                            fix="drop fallback=, or give past as an int",
                            options={"fallback": "fit"})
    keyword = cache_keyword(model)
    if keyword is None or getattr(model, "config", None) is None:
        raise SymflopsError("past= needs a transformers decoder (a forward with a cache or "
                            "past_key_values argument, and a config)", layer="trace",
                            values={"model": type(model).__name__},
                            fix="trace a transformers ...ForCausalLM model, or pass the "
                                "cache's tensors as inputs of your own module")
    if not specs or len(specs[0].dims) not in (2, 3):
        raise SymflopsError("with past=, the first input is the new tokens: (batch, n) ids "
                            "or (batch, n, dim) embeddings", layer="trace",
                            values={"inputs": [s.dims for s in specs]},
                            fix='pass e.g. {"input_ids": ("B", 1)}')
    if past in specs[0].dims:
        raise SymflopsError("the cached length and a dim of the new tokens share a name",
                            layer="trace", values={"past": past, "input": specs[0].dims},
                            fix="name the cached length apart, e.g. past=\"T\" with "
                                "input (\"B\", \"N\")")
    return PastSpec(past, keyword)


def max_positions(model: torch.nn.Module) -> int | None:
    """The length the model's config declares (``max_position_embeddings``), if any."""
    config = getattr(model, "config", None)
    n = getattr(config, "max_position_embeddings", None)
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def default_hint(model: torch.nn.Module, new_hint: int, default: int) -> int:
    """The example size of the cached length: ``default``, or less so that the cache and
    the new tokens fit the model's declared length (at least 2: torch pins 0 and 1)."""
    top = max_positions(model)
    if top is None:
        return default
    return max(2, min(default, (top - new_hint) // 2))


def position_limit(model: torch.nn.Module, past: PastSpec, first: InputSpec
                   ) -> sp.Basic | None:
    """``T + n <= max_position_embeddings`` in the user's dim names, None when the config
    declares no length. (A concrete violation is an error before anything runs.)"""
    top = max_positions(model)
    if top is None:
        return None
    n = first.dims[1]
    size = [S.symbol(d) if isinstance(d, str) else sp.Integer(d) for d in (past.length, n)]
    cond = sp.Le(size[0] + size[1], top)
    if cond is sp.false:
        raise SymflopsError("the cache and the new tokens are longer than the model's "
                            "max_position_embeddings", layer="trace",
                            values={"past": past.length, "new": n,
                                    "max_position_embeddings": top},
                            fix="a shorter cache, or a model built with a larger "
                                "max_position_embeddings")
    return None if cond is sp.true else cond


def _probe_shapes(model: torch.nn.Module, past: PastSpec, first: tuple[str, InputSpec],
                  hint_of: dict[str, int], fdtype: torch.dtype, device: torch.device
                  ) -> list[tuple[tuple[int, ...], tuple[int, ...], torch.dtype]]:
    """Each layer's cached key and value shapes after the model ran on concrete example
    inputs with an empty ``DynamicCache`` (fake tensors of a fake mode of their own)."""
    from transformers import DynamicCache

    env = C.SymEnv()
    name, spec = first
    sizes = [hint_of[d] if isinstance(d, str) else d for d in spec.dims]
    with env.mode, torch.no_grad():
        x = torch.zeros(sizes, dtype=spec.dtype or fdtype, device=device)
        state = {n: env.fake(p) for n, p in model.named_parameters(remove_duplicate=False)}
        state.update({n: env.fake(b) for n, b in model.named_buffers(remove_duplicate=False)})
        cache = DynamicCache(config=_config(model))
        args: tuple[Any, ...] = (x,) if not name else ()
        kwargs: dict[str, Any] = {name: x} if name else {}
        kwargs.update({past.keyword: cache, "use_cache": True})
        torch.func.functional_call(model, state, args, kwargs, strict=False)
    shapes = []
    for i, layer in enumerate(getattr(cache, "layers", [])):
        k, v = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not (isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)) or \
                k.dim() != 4 or v.dim() != 4 or \
                any(t.shape[0] != sizes[0] or t.shape[2] != sizes[1] for t in (k, v)):
            raise SymflopsError("the model's cache layer is not keys and values of "
                                "(batch, heads, tokens, width)", layer="trace",
                                values={"layer": i, "type": type(layer).__name__},
                                fix="past= supports transformers' DynamicCache layers; "
                                    "trace this model without past=")
        shapes.append((tuple(int(d) for d in k.shape), tuple(int(d) for d in v.shape),
                       k.dtype))
    if not shapes:
        raise SymflopsError("the model wrote nothing to its cache", layer="trace",
                            values={"model": type(model).__name__},
                            fix="check that the model's config has use_cache=True")
    return shapes


def make_cache(model: torch.nn.Module, past: PastSpec, first: tuple[str, InputSpec],
               hint_of: dict[str, int], fdtype: torch.dtype, device: torch.device,
               make: Callable[[InputSpec], torch.Tensor]) -> tuple[Any, list[torch.Tensor]]:
    """A ``DynamicCache`` holding ``past.length`` tokens of the shapes the model writes
    (made by ``make``, as the inputs are) and its tensors. ``first``: the new tokens'
    keyword (``""``: positional) and spec."""
    from transformers import DynamicCache

    batch = first[1].dims[0]
    data = []
    made: list[torch.Tensor] = []
    for k, v, dtype in _probe_shapes(model, past, first, hint_of, fdtype, device):
        pair = tuple(make(InputSpec((batch, s[1], past.length, s[3]), dtype)) for s in (k, v))
        made.extend(pair)
        data.append(pair)
    return DynamicCache(data, config=_config(model)), made


def _config(model: torch.nn.Module) -> Any:
    return getattr(model, "config", None)
