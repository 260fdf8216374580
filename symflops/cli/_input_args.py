"""What every command reads off its flags: the target, the input spec, the convention,
the trace options, ``--at`` values; and where the result goes (stdout or ``--output``)."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy as sp

from symflops.conventions import conventions
from symflops.cost import Cost
from symflops.errors import FLAGS, SymflopsError
from symflops.files import check_output, write_text
from symflops.parse import MAX_DIMS, parse_assignments, parse_dims, parse_name
from symflops.targets import (
    build_cost,
    load_factory,
    parse_hints,
    progress,
    spec_dims,
    torch_only,
)

__all__ = ["canonical_layer", "Target", "target_of", "input_spec", "shape_text", "cost_of",
           "convention_name", "trace_options", "needs_keyword", "resolve_at", "write",
           "fixed_dims", "at_names", "TRACE_FLAGS", "short_names", "read_range", "swept_at"]

#: sf.trace keywords with a flag of their own: keyword -> flag (given only when typed)
TRACE_FLAGS = {"strict": "--strict", "real": "--real", "fallback": "--fallback",
               "skip_masked": "--skip-masked", "paths": "--paths"}


def canonical_layer(name: str) -> tuple[Any, tuple[Any, ...], str]:
    """``(layer, input_shape, call)``: the ``sf.nn`` layer called ``name`` (any case) built
    on canonical symbols, as the formula reference shows it
    (:data:`symflops.reference.EXAMPLES`).

    >>> layer, shape, call = canonical_layer("linear")
    >>> call, layer.cost(shape).flops
    ('Linear(I, O)', 2*I*M*O)
    """
    from symflops.nn import LAYERS
    from symflops.reference import EXAMPLES

    if name not in EXAMPLES:
        lower = {k.lower(): k for k in EXAMPLES}
        if name.lower() not in lower:
            known = sorted(set(EXAMPLES) | set(LAYERS))
            raise SymflopsError(f"unknown layer {name!r}", fix="use one of " + ", ".join(known))
        name = lower[name.lower()]
    example = EXAMPLES[name]
    return example.build(), tuple(example.input_shape), example.call


def convention_name(text: str) -> str:
    """The registered convention ``text`` names, in any case (``MACs`` -> ``macs``).

    >>> convention_name("MACs"), convention_name("Exact")
    ('macs', 'exact')
    """
    known = conventions()
    if text in known:
        return text
    lower = {k.lower(): k for k in known}
    if text.lower() in lower:
        return lower[text.lower()]
    raise SymflopsError("--convention: unknown convention", values={"convention": text},
                        fix="use one of " + ", ".join(sorted(known)))


@dataclass
class Target:
    """A traced model, an ``sf.nn`` network or a canonical layer, by its command-line name."""

    name: str
    factory: Callable[[], Any] | None = None
    layer: Any = None
    shape: Any = None


def short_names(specs: Sequence[str]) -> dict[str, str]:
    """The names a legend or a table shows for command-line targets: the factory
    (``resnet50``), with its file's stem or module where two would read the same.

    >>> list(short_names(["examples/resnet.py:resnet50", "pkg.vit:vit_b", "Linear"]).values())
    ['resnet50', 'vit_b', 'Linear']
    >>> short_names(["a/model.py:make", "b/other.py:make"])
    {'a/model.py:make': 'model:make', 'b/other.py:make': 'other:make'}
    """
    first = {spec: spec.rpartition(":")[2] for spec in specs}
    short = dict(first)
    for spec in specs:
        if list(first.values()).count(first[spec]) > 1 and ":" in spec:
            where, _, attr = spec.rpartition(":")
            stem = Path(where).stem if where.endswith(".py") else where.rpartition(".")[2]
            short[spec] = f"{stem}:{attr}"
    return {spec: short[spec] if list(short.values()).count(short[spec]) == 1 else spec
            for spec in specs}


def target_of(spec: str) -> Target:
    """``FILE.py:FACTORY``/``package.module:FACTORY`` (a factory) or a layer name."""
    if ":" in spec:
        return Target(spec, factory=load_factory(spec))
    layer, shape, _ = canonical_layer(parse_name(spec))
    return Target(spec, layer=layer, shape=shape)


def input_spec(texts: Sequence[str]) -> Any:
    """``--input`` values -> what ``sf.trace`` takes: one shape tuple, a list of them
    (several positional inputs) or a dict (``name=B N`` keyword inputs).

    >>> input_spec(["B 3 H W"]), input_spec(["input_ids=B N"])
    (('B', 3, 'H', 'W'), {'input_ids': ('B', 'N')})
    """
    positional: list[tuple[Any, ...]] = []
    keyword: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        key = None
        if "=" in text:
            key_text, _, text = text.partition("=")
            key = parse_name(key_text.strip())
        if len(texts) > MAX_DIMS:
            raise SymflopsError(f"--input: more than {MAX_DIMS} inputs",
                                values={"inputs": len(texts)},
                                fix='write one shape per input, e.g. --input "B 3 H W"')
        try:  # names and positive integer sizes, at most MAX_DIMS of them
            dims: list[Any] = parse_dims(text)
        except SymflopsError as e:
            raise SymflopsError(e.message, layer=e.layer or "--input", values=e.values,
                                fix=e.fix, options=e.options) from None
        if key is None:
            positional.append(tuple(dims))
        elif key in keyword:
            raise SymflopsError(f"input {key!r} given twice", fix="give each input once")
        else:
            keyword[key] = tuple(dims)
    if keyword and positional:
        raise SymflopsError("mix of positional and keyword inputs",
                            fix="name every input (name=B N) or none")
    if keyword:
        return keyword
    if len(positional) == 1:
        return positional[0]
    return positional


def shape_text(shape: Any) -> str:
    """An input spec as the user typed it (``B 3 H W``)."""
    if isinstance(shape, dict):
        return ", ".join(f"{k}=({' '.join(map(str, v))})" for k, v in shape.items())
    if isinstance(shape, list):
        return ", ".join("(" + " ".join(map(str, s)) + ")" for s in shape)
    return " ".join(map(str, shape))


def needs_keyword(fn: Callable[..., Any], keyword: str, flag: str, what: str) -> None:
    """Refuse ``flag`` when ``fn`` (``what``) has no ``keyword`` parameter in this build,
    instead of a TypeError from deep inside."""
    params = inspect.signature(fn).parameters
    if keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    raise SymflopsError(f"{flag}: {what} in this version of symflops has no {keyword} option",
                        fix=f"leave {flag} out, or update symflops")


def trace_options(args: argparse.Namespace, check: bool = True) -> dict[str, Any]:
    """The sf.trace keywords the user gave a flag for (:data:`TRACE_FLAGS`); the ones
    not typed are left out, so sf.trace's defaults hold. ``check``: refuse one this
    build's sf.trace does not take."""
    given = {key: getattr(args, key) for key in TRACE_FLAGS if getattr(args, key, None)}
    if given and check:
        from symflops.targets import user_code

        with user_code("tracing"):
            from symflops.tracing import trace
        for key in given:
            needs_keyword(trace, key, TRACE_FLAGS[key], "sf.trace")
    return given


def cost_of(target: Target, args: argparse.Namespace) -> Cost:
    """The cost of ``target`` with the flags of ``args`` (input, hints, trace options)."""
    train, hinted = getattr(args, "train", False), bool(getattr(args, "hint", None))
    if target.layer is not None:
        torch_only(f"{target.name} is an sf.nn layer", train=train, hinted=hinted,
                   options=trace_options(args, check=False))
        return target.layer.cost(target.shape, convention=args.convention)
    options = trace_options(args)
    texts = args.input or []
    spec = input_spec(texts) if texts else None
    shown = shape_text(spec) if spec is not None else "none"
    hints = parse_hints(getattr(args, "hint", None) or [],
                        spec_dims(spec) if spec is not None else [], shown)  # before building
    what = f"building and costing {target.name}" + (f" on {shown}" if texts else "")
    assert target.factory is not None
    factory_args = parse_factory_args(getattr(args, "args", None))
    serving = serving_options(args)
    training = training_options(args)
    with progress(what, sys.stderr):
        return build_cost(target.factory, target.name, spec, convention=args.convention,
                          hints=hints, train=train, time_budget=getattr(args, "time_budget", None),
                          options=options, vary=getattr(args, "vary", None),
                          factory_args=factory_args, serving=serving, training=training)


#: the ``Layer.cost(mode="train")`` keywords with a flag (:data:`symflops.errors.FLAGS`)
TRAINING_OPTIONS = ("zero", "data_parallel", "tensor_parallel", "pipeline_parallel",
                    "precision", "recompute")


def training_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--zero``, ``--data-parallel``, ... as ``Layer.cost(mode="train")`` keywords; each
    needs ``--train``. Degrees are read by :mod:`symflops.parse` (never evaluated)."""
    from symflops.parse import parse_expr

    out: dict[str, Any] = {}
    for key in TRAINING_OPTIONS:
        flag = FLAGS[key].flag
        value = getattr(args, key, None)
        if value is None:
            continue
        if not getattr(args, "train", False):
            raise SymflopsError(f"{flag} sizes the training memory", values={flag: value},
                                fix=f"add --train, or drop {flag}")
        if key.endswith("_parallel"):
            e = parse_expr(value)
            out[key] = int(e) if e.is_Integer else e
        elif key == "zero":
            out[key] = int(value) if value.isdigit() else value
        else:
            out[key] = value
    return out


def parse_factory_args(text: str | None) -> dict[str, Any]:
    """``--args "dim=4096,heads=32,layers=L"``: factory argument -> an integer or an
    expression in symbols (read by :mod:`symflops.parse`, never evaluated as Python).

    >>> parse_factory_args("dim=4096, layers=L, hidden=4*dim")
    {'dim': 4096, 'layers': L, 'hidden': 4*dim}
    """
    if text is None:
        return {}
    from symflops.parse import parse_expr
    from symflops.targets import parse_pairs

    out: dict[str, Any] = {}
    for name, value in parse_pairs(text, "--args", "dim=4096,heads=32,layers=32",
                                   "VALUE").items():
        e = parse_expr(value)
        out[name] = int(e) if e.is_Integer else e
    return out


def serving_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--mode prefill|decode``, ``--context``, ``--weight-format`` and ``--kv-bytes``, as
    ``Layer.cost`` keywords."""
    mode, context = getattr(args, "mode", None), getattr(args, "context", None)
    fmt, kv_bytes = getattr(args, "weight_format", None), getattr(args, "kv_bytes", None)
    if context is not None and mode != "decode":
        raise SymflopsError("--context is the cached length of a decode step",
                            fix="add --mode decode, or drop --context")
    for flag, value in ((FLAGS["weight_format"].flag, fmt),
                        (FLAGS["kv_bytes"].flag, kv_bytes)):
        if value is not None and mode is None:
            raise SymflopsError(f"{flag} sizes the memory of a prefill or decode step",
                                fix=f"add --mode prefill or --mode decode, or drop {flag}")
    if mode is None:
        return {}
    if mode == "decode" and context is None:
        raise SymflopsError("--mode decode attends to a cache: give its length",
                            fix="add --context T (a symbol) or --context 4096")
    out: dict[str, Any] = {"mode": mode}
    if context is not None:
        from symflops.parse import parse_expr

        out["context"] = parse_expr(context)
    if fmt is not None:
        from symflops.serving import get_weight_format

        out["weight_format"] = get_weight_format(fmt).name  # an unknown name: one error
    if kv_bytes is not None:
        if not kv_bytes.isdigit() or int(kv_bytes) < 1:
            raise SymflopsError("--kv-bytes is a whole number of bytes >= 1",
                                values={"--kv-bytes": kv_bytes},
                                fix="e.g. --kv-bytes 1 (an 8-bit cache) or 2 (bf16)")
        out["kv_bytes"] = int(kv_bytes)
    return out


def resolve_at(cost: Cost, text: str | None, flag: str = "--at") -> dict[sp.Symbol, sp.Expr]:
    """``--at`` values for symbols of ``cost``, each within its symbol's assumptions: a
    positive integer for a size (0 too for a padding), or an expression in the symbols
    that is so wherever they are (``W=H``, ``N=H*W``)."""
    if text is None:
        return {}
    if not text.strip():
        raise SymflopsError(f"{flag}: no values given", fix=f"write e.g. {flag} B=1,H=224, "
                            f"or leave {flag} out")
    from symflops.cost import _memory_symbols

    names = {s.name: s for s in cost.free_symbols | _memory_symbols(cost.memory)}
    try:
        at = parse_assignments(text, names=names, values_names=names)
    except SymflopsError as e:
        raise SymflopsError(f"{flag}: {e.message}", values=e.values, fix=e.fix,
                            options=e.options) from None
    for sym, val in at.items():
        least = 1 if sym.is_positive else 0 if sym.is_nonnegative else None
        what = "sizes must be positive integers" if least == 1 else \
            f"{sym.name} must be an integer >= 0"
        if val.is_number and ((sym.is_integer and not val.is_Integer)
                              or (least is not None and val < least)):
            raise SymflopsError(f"{flag}: {what}", values={sym.name: val},
                                fix=f"give {sym.name} a value >= {least or 0}")
        holds = val.is_positive if least == 1 else val.is_nonnegative if least == 0 else True
        if not val.is_number and holds is not True:
            raise SymflopsError(f"{flag}: {sym.name}={val} can be "
                                + ("zero or negative" if least == 1 else "negative"),
                                fix=f"give {sym.name} a value that is >= {least} for every "
                                    "positive size (e.g. W=H, N=H*W, I=2*O)")
    return at


def read_range(text: str, minimum: int = 1) -> list[int]:
    """``--range`` values (``64:1024:32``, ``64:1024:*2``, ``224,384``), its errors
    naming the flag."""
    from symflops.parse import parse_range

    try:  # beyond int64 and too many points are refused here
        return parse_range(text, minimum=minimum)
    except SymflopsError as e:
        raise SymflopsError(e.message, layer=e.layer or "--range", values=e.values,
                            fix=e.fix, options=e.options) from None


def swept_at(cost: Cost, text: str | None, var_names: Sequence[str], verb: str = "sweep"
             ) -> tuple[dict[sp.Symbol, sp.Expr], bool]:
    """``--at`` values for a sweep of ``var_names`` over ``cost`` (no swept name fixed too),
    with the batch ``B = 1`` when it is neither given nor swept: ``(at, B defaulted)``."""
    from symflops.symbols import B

    at = resolve_at(cost, text)  # a name unknown to the cost is an error
    given = [s.name for s in at if s.name in var_names]
    if given:
        raise SymflopsError(f"--var {given[0]} is also given a value in --at",
                            fix=f"{verb} {given[0]} or fix it with --at, not both")
    default_batch = B in cost.free_symbols and B not in at and "B" not in var_names
    if default_batch:  # per sample unless asked otherwise
        at[B] = sp.Integer(1)
    return at, default_batch


def write(text: str, output: str | None) -> None:
    """``text`` to ``--output`` (whole or not at all) or to stdout."""
    if output is not None:
        path = write_text(check_output(output), text)
        sys.stderr.write(f"symflops: wrote {path}\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()  # a closed pipe fails here, inside main's error handling


def fixed_dims(cost: Cost, args: argparse.Namespace, names: Sequence[str], flag: str) -> None:
    """Refuse a name of an ``--input`` dim that the traced cost no longer has: the model
    fixed it to one size, so a value for it (or a sweep of it) would be ignored."""
    dims = spec_dims(input_spec(args.input)) if getattr(args, "input", None) else []
    free = {s.name for s in cost.free_symbols}
    report = getattr(cost, "report", None)  # a trace's: the size it fixes, and where
    fixed = getattr(report, "fixed", {})
    sites = getattr(report, "pin_sites", {})
    for name in names:
        if name in dims and name not in free:
            at = f" = {fixed[name]}" if name in fixed else ""
            where = f" (at {sites[name]})" if name in sites else ""
            raise SymflopsError(f"{flag}: the traced model fixes {name}{at}{where} (its forward "
                                "takes one size only), so the result does not depend on it",
                                values={"symbols": ", ".join(sorted(free)) or "none"},
                                fix=f"leave {name} out: the result holds at the size the "
                                    "model fixes (see its note)")


def at_names(text: str | None) -> list[str]:
    """The names ``--at`` assigns (its errors are reported where it is resolved)."""
    try:
        return [s.name for s in parse_assignments(text)] if text and text.strip() else []
    except SymflopsError:
        return []
