"""``symflops formula``, ``symflops trace`` and ``symflops doc``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from symflops.cli._input_args import (
    TRACE_FLAGS,
    Target,
    at_names,
    canonical_layer,
    cost_of,
    fixed_dims,
    input_spec,
    needs_keyword,
    resolve_at,
    shape_text,
    write,
)
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.files import check_output, write_text
from symflops.parse import parse_name

__all__ = ["RENDER_FLAGS", "render_options", "show", "cmd_formula", "cmd_trace", "cmd_doc"]

#: sf.render keywords with a flag of their own that are passed only when typed (so that
#: sf.render's own defaults hold): keyword -> flag
RENDER_FLAGS = {"numbers": "--numbers", "style": "--style", "fold": "--fold/--no-fold",
                "math_only": "--math-only", "standalone": "--standalone",
                "symbols": "--symbols"}


def render_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sf.render keywords the user gave a flag for (:data:`RENDER_FLAGS`)."""
    from symflops.rendering import render

    given = {key: getattr(args, key) for key in RENDER_FLAGS
             if getattr(args, key, None) not in (None, False)}
    if given.get("math_only") and given.get("standalone"):
        raise SymflopsError("--math-only and --standalone ask for opposite things (the "
                            "math alone, or a whole document to compile)",
                            fix="drop one of the two flags")
    if getattr(args, "fold", None) is False:  # --no-fold is a choice, not an absence
        given["fold"] = False
    if "symbols" in given:
        from symflops.parse import parse_names

        given["symbols"] = parse_names(given["symbols"])
    for key in given:
        needs_keyword(render, key, RENDER_FLAGS[key], "sf.render")
    return given


def show(cost: Cost, args: argparse.Namespace, title: str) -> str:
    """``cost`` rendered as ``--format`` with every render flag of ``args``; ``--title``
    replaces the default ``title``."""
    at = resolve_at(cost, args.at)
    texts = getattr(args, "input", None)
    inputs = shape_text(input_spec(texts)) if texts else None
    from symflops.rendering import render

    options = render_options(args)
    return render(cost, args.format, depth=args.depth, at=at or None,
                  title=args.title if getattr(args, "title", None) is not None else title,
                  inputs=inputs, **options)


def cmd_formula(args: argparse.Namespace) -> int:
    layer, shape, call = canonical_layer(parse_name(args.layer))
    cost = layer.cost(shape, convention=args.convention)
    write(show(cost, args, f"{call} -- {cost.convention.label}"), args.output)
    return 0


def _aligned(cost: Cost) -> tuple[Cost, str]:
    from symflops.analysis import aligned, total_stride

    multiples = total_stride(cost)
    if not multiples:
        return cost, "no floors to align"
    note = "aligned: " + ", ".join(f"{s.name} a multiple of {m}" for s, m in multiples.items()) \
        + " (exact there)"
    return aligned(cost, multiples), note


def cmd_trace(args: argparse.Namespace) -> int:
    from symflops.targets import load_factory

    target = Target(args.target, factory=load_factory(args.target))
    cost = cost_of(target, args)
    fixed_dims(cost, args, at_names(args.at), "--at")
    title = f"{args.target} -- {cost.convention.label}"
    if args.aligned:
        cost, note = _aligned(cost)
        title += f"\n{note}"
    write(show(cost, args, title), args.output)
    return 0


def cmd_doc(args: argparse.Namespace) -> int:
    """The formula reference of every layer, or (``doc MODEL.py:make``) a model's own
    formula document; ``--check`` exits 1 when the file is not what would be written."""
    if args.target is not None:
        from symflops.cli._model_doc import model_document

        default, make = args.output, lambda: model_document(args)
        if default is None and args.check:
            raise SymflopsError("--check needs the document's file",
                                fix="name it with --output, e.g. --output docs/model.md")
    else:
        model_only = {"--input": args.input, "--var": args.var, "--range": args.range,
                      "--hint": args.hint, "--vary": args.vary, "--train": args.train,
                      "--time-budget": args.time_budget, "--depth": args.depth,
                      **{flag: getattr(args, key) for key, flag in TRACE_FLAGS.items()}}
        for flag, given in model_only.items():
            if given:
                raise SymflopsError(f"doc: {flag} applies to a model's document",
                                    fix=f"name the model (symflops doc MODEL.py:make {flag} "
                                        f"...), or leave {flag} out for the formula reference")
        from symflops import reference

        default, make = args.output or reference.DEFAULT_PATH, reference.formula_reference
    if args.check:
        path = Path(default)
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise SymflopsError(f"--check: cannot read {path}: {reason}",
                                fix="name the file symflops doc wrote") from None
        if current != make():
            again = f"symflops doc {args.target} ... --output {path}" if args.target else \
                f"symflops doc --output {path}"
            sys.stderr.write(f"symflops: {path} is stale; run: {again}\n")
            return 1
        sys.stderr.write(f"symflops: {path} is up to date\n")
        return 0
    text = make()
    if args.output is not None:
        path = write_text(check_output(args.output, make_parents=True), text)
        sys.stderr.write(f"symflops: wrote {path}\n")
    else:
        write(text, None)
    return 0
