"""The ``symflops`` command line (also ``python -m symflops``).

Commands::

    symflops formula Conv2d [--format summary|md|latex|text|json] [--convention exact|torch|macs]
                            [--at K=3] [--depth N] [render flags]
    symflops trace FILE.py:FACTORY|package.module:FACTORY --input "B 3 H W" [--hint H=224]
                   [--at B=1,H=224,W=224] [--aligned] [--depth 2] [--format ...]
                   [--convention ...] [--output FILE] [trace flags] [render flags]
    symflops scale TARGET [TARGET ...] --var H,W --range 64:1024:32 [--at B=1] [--plot out.svg]
    symflops compare A.py:make_a B.py:make_b --input "B 3 H W" --var H [--range ...]
                     [--plot out.pdf]
    symflops doc [--output docs/formulas.md]
    symflops doc MODEL.py:make --input "B 3 H W" --output model.md|model.tex

Render flags (passed to ``sf.render`` only when given): ``--title``, ``--numbers``,
``--style``, ``--fold/--no-fold``, ``--math-only``, ``--standalone``, ``--symbols``.
Trace flags (passed to ``sf.trace`` only when given): ``--train``, ``--hint``,
``--time-budget``, ``--fallback fit``, ``--strict``, ``--real``, ``--skip-masked``.
``--traceback`` may stand anywhere on the line. Conventions and layer names are read in
any case.

Everything typed (``--at``, ``--hint``, ranges, names, input specs) goes through
:mod:`symflops.parse`; nothing typed is evaluated as code. A ``FILE.py`` or module named
as a target is imported, which runs that module's own code, as Python would (its prints
go to stderr: stdout carries only the result; see :mod:`symflops.targets`). A mistake is
one line on stderr (``symflops: error: ...; fix: ...``, its advice in flags, not Python)
and exit code 2, before anything is written; a Python warning is one line
(``symflops: warning: ...``); ``--output`` and ``--plot`` files are written whole or not
at all (:mod:`symflops.files`). Ctrl-C exits 130, a closed pipe 141, a symflops bug 1.

>>> main(["formula", "linear", "--at", "I=8,O=4,M=1", "--convention", "MACS"])
Linear(I, O) -- MACs
input (1, 8) -> output (1, 4)
...
params  36
MACs    32
...
0
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

from symflops.cli._input_args import canonical_layer, convention_name
from symflops.cli._messages import error_line, one_line, show_warning
from symflops.cli._parser import build_parser
from symflops.errors import SymflopsError
from symflops.files import check_output

__all__ = ["main", "build_parser", "canonical_layer"]

TRACEBACK = "--traceback"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for a usage or symflops error)."""
    words = list(sys.argv[1:] if argv is None else argv)
    cut = words.index("--") if "--" in words else len(words)
    traceback = TRACEBACK in words[:cut]  # anywhere before a "--", not only first
    words = [w for i, w in enumerate(words) if i >= cut or w != TRACEBACK]
    args = build_parser().parse_args(words)
    args.traceback = traceback
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            if hasattr(args, "convention"):
                args.convention = convention_name(args.convention)
            if getattr(args, "depth", None) is not None and args.depth < 1:
                raise SymflopsError("--depth must be >= 1", values={"depth": args.depth},
                                    fix="give --depth 1 or more, or leave it out")
            if getattr(args, "output", None) is not None and not getattr(args, "check", False):
                check_output(args.output, make_parents=args.command == "doc")  # before work
            return int(args.func(args))
    except SymflopsError as e:
        if traceback:
            raise
        sys.stderr.write(error_line(e) + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("symflops: interrupted\n")
        return 130
    except BrokenPipeError:  # `symflops doc | head`: the reader left; nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, what the shell reports for a killed writer
    except Exception as e:  # a bug or a failing user model: one line, traceback on request
        if traceback:
            raise
        sys.stderr.write(f"symflops: error: {type(e).__name__}: {one_line(str(e))} "
                         "(run with --traceback for details)\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
