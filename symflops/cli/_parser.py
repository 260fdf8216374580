"""The ``symflops`` argument parser: every library option has a flag (render options,
trace options), grouped by what they act on so each command takes the groups it needs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NoReturn

from symflops.conventions import conventions
from symflops.errors import SymflopsError
from symflops.parse import parse_int

__all__ = ["FORMATS", "build_parser", "positive_int"]

FORMATS = ("summary", "md", "markdown", "latex", "tex", "text", "txt", "json")


def positive_int(flag: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= 1 read by symflops' parser (no eval)."""

    def read(text: str) -> int:
        try:
            value = parse_int(text, flag)
        except SymflopsError as e:
            raise argparse.ArgumentTypeError(e.message) from None
        if value < 1:
            unit = " second" if flag == "--time-budget" else ""
            raise argparse.ArgumentTypeError(f"{flag} must be 1{unit} or more, not {value}")
        return value

    read.__name__ = flag.strip("-").replace("-", "_")
    return read


def _outputs(p: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    p.add_argument("--convention", default="exact",
                   help="counting convention, any case: " + ", ".join(sorted(conventions())) +
                        " (default exact)")
    p.add_argument("--format", default="summary", choices=formats,
                   help="output format (default summary)")
    p.add_argument("--at", metavar="NAME=VALUE,...",
                   help="substitute values, e.g. B=1,H=224,W=224 (or W=H)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


def _render(p: argparse.ArgumentParser) -> None:
    """The sf.render options (passed only when given: sf.render's defaults hold)."""
    p.add_argument("--depth", type=int, default=None,
                   help="parts shown, by tree depth")
    g = p.add_argument_group("rendering")
    g.add_argument("--title", help="the heading of the output (default: the target and "
                                   "its convention)")
    g.add_argument("--numbers", metavar="STYLE",
                   help="how numbers are written: grouped, plain or si (sf.render's numbers=)")
    g.add_argument("--style", metavar="STYLE",
                   help="report, paper or appendix (LaTeX/Markdown; sf.render's style=)")
    g.add_argument("--fold", action=argparse.BooleanOptionalAction, default=None,
                   help="fold repeated identical blocks into one row with a count")
    g.add_argument("--math-only", action="store_true",
                   help="only the totals as display math")
    g.add_argument("--standalone", action="store_true",
                   help="LaTeX: a whole compilable document")
    g.add_argument("--symbols", metavar="NAME,...",
                   help="collect the total in these symbols, e.g. H,W")


def _trace(p: argparse.ArgumentParser) -> None:
    """Inputs and sf.trace options (each passed only when given)."""
    p.add_argument("--input", action="append", metavar="SPEC",
                   help='input shape, e.g. "B 3 H W"; repeat for several inputs; '
                        '"input_ids=B N" for a keyword input')
    s = p.add_argument_group("factory arguments and serving (sf.nn networks and presets)")
    s.add_argument("--args", metavar="ARG=VALUE[,ARG=VALUE]",
                   help='arguments for the factory, integers or expressions in symbols, e.g. '
                        'sf:llama --args "dim=4096,heads=32,kv_heads=8,layers=32,'
                        'vocab=128256,hidden=14336" (sf:NAME is symflops.presets:NAME)')
    s.add_argument("--mode", choices=("prefill", "decode"),
                   help="prefill: the prompt's forward, writing the KV cache; decode: one "
                        "step attending to --context cached tokens (sf.nn networks)")
    s.add_argument("--context", metavar="EXPR",
                   help="decode: the tokens already cached, a symbol or a number (e.g. T); "
                        "a traced transformers decoder runs with a DynamicCache that long")
    s.add_argument("--weight-format", metavar="NAME",
                   help="serving: the weights' storage, e.g. nf4-dq, q4_0, q8_0, bf16 "
                        "(symflops.serving.WEIGHT_FORMATS; default bf16)")
    s.add_argument("--kv-bytes", metavar="N",
                   help="serving: bytes per cached key/value element (default 2; 1 for an "
                        "8-bit cache)")
    t = p.add_argument_group("training memory (with --train, sf.nn networks and presets)")
    t.add_argument("--zero", metavar="STAGE",
                   help="ZeRO stage 0-3: what data parallelism shards (1 optimizer states, "
                        "2 and gradients, 3 and parameters)")
    t.add_argument("--data-parallel", metavar="EXPR",
                   help="data-parallel degree, a number or a symbol (e.g. D)")
    t.add_argument("--tensor-parallel", metavar="EXPR", help="tensor-parallel degree")
    t.add_argument("--pipeline-parallel", metavar="EXPR", help="pipeline-parallel degree")
    t.add_argument("--precision", metavar="NAME",
                   help="mixed (bf16 with fp32 master weights, the default) or fp32")
    t.add_argument("--recompute", choices=("none", "selective", "full"),
                   help="activation recomputation (Korthikanti et al.)")
    g = p.add_argument_group("tracing torch models")
    g.add_argument("--hint", action="append", metavar="NAME=VALUE",
                   help="example size of an --input dim for tracing, e.g. H=224")
    g.add_argument("--vary", metavar="ARG=EXPR[,ARG=EXPR]",
                   help='constructor arguments as symbols, e.g. "image_size=H,num_layers=L,'
                        'hidden_dim=dim": an exact formula derived from traces '
                        '(sf.trace_factory)')
    g.add_argument("--train", action="store_true",
                   help="count forward + backward (sf.trace mode='train'; an sf.nn network's "
                        "mode='train', with its training memory)")
    g.add_argument("--time-budget", type=positive_int("--time-budget"), metavar="SECONDS",
                   help="how long tracing may take (default 300); when spent, one error "
                        "naming the fixes")
    g.add_argument("--fallback", choices=("fit",),
                   help="fit: when torch cannot trace on symbolic sizes (or the budget is "
                        "spent), fit an exact formula from concrete traces")
    g.add_argument("--strict", action="store_true",
                   help="an op without a formula is an error, not a warning")
    g.add_argument("--real", action="store_true",
                   help="run the model on real tensors (every --input size an integer)")
    g.add_argument("--skip-masked", action="store_true",
                   help="causal attention: count only the unmasked half")
    g.add_argument("--paths", choices=("one", "all"),
                   help="all: trace the model past each bound of its domain where its code "
                        "takes another path, and join the paths into one formula (sf.trace "
                        "paths='all'; default one: the example's path)")


class ArgParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"symflops: error: {self.prog}: {message}; fix: see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``symflops`` argument parser."""
    from symflops.cli._commands import cmd_doc, cmd_formula, cmd_trace
    from symflops.cli._compare import cmd_compare
    from symflops.cli._report import cmd_report
    from symflops.cli._scale import cmd_scale

    parser = ArgParser(
        prog="symflops",
        description="Parameters, MACs and FLOPs of neural networks as formulas.")
    parser.add_argument("--traceback", action="store_true",
                        help="show Python's traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ArgParser)

    p = sub.add_parser("formula", help="the formula of one layer type (e.g. Conv2d)")
    p.add_argument("layer", help="a layer name from symflops.nn, any case (Conv2d, linear)")
    _outputs(p)
    _render(p)
    p.set_defaults(func=cmd_formula)

    p = sub.add_parser("trace", help="trace a model into a symbolic cost")
    p.add_argument("target", help="FILE.py:FACTORY or package.module:FACTORY")
    _trace(p)
    _outputs(p)
    _render(p)
    p.add_argument("--aligned", action="store_true",
                   help="remove floors by taking sizes as multiples of the total stride")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("scale", help="how a cost grows with a symbol: table, order, plot")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="layer names or FILE.py:FACTORY / package.module:FACTORY")
    _trace(p)
    _outputs(p, ("summary", "json"))
    _sweep(p)
    p.add_argument("--crossover", metavar="PATH,PATH",
                   help="where one part overtakes another, e.g. attention.mha,mlp")
    p.add_argument("--depth", type=int, default=None,
                   help="tree depth of the largest parts shown (default: below every "
                        "wrapper holding 90%% or more)")
    p.add_argument("--device", metavar="NAME",
                   help="a roofline on this device (e.g. H100-SXM5-80GB): the time lower "
                        "bound at each size and the batch B where the work turns "
                        "compute-bound (symflops.devices)")
    p.add_argument("--dtype", default="bf16",
                   help="--device: the peak FLOP/s of this dtype (default bf16)")
    p.set_defaults(func=cmd_scale)

    p = sub.add_parser("compare", help="two models side by side: ratio, its limit, crossovers")
    p.add_argument("targets", nargs=2, metavar="TARGET",
                   help="two FILE.py:FACTORY / package.module:FACTORY (or layer names)")
    _trace(p)
    _outputs(p, ("summary", "json"))
    _sweep(p, range_required=False)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="an interactive HTML page of a model (several: compared)")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="FILE.py:FACTORY / package.module:FACTORY (or layer names)")
    _trace(p)
    p.add_argument("--convention", default="exact",
                   help="counting convention, any case: " + ", ".join(sorted(conventions())) +
                        " (default exact)")
    p.add_argument("--at", metavar="NAME=VALUE,...",
                   help="fix symbols before the report, e.g. B=1 (no slider for them)")
    p.add_argument("--start", metavar="NAME=VALUE,...",
                   help="where the sliders start, e.g. H=224,W=224 (default: the --hint "
                        "sizes, else typical sizes)")
    p.add_argument("--var", metavar="NAME", help="the symbol the plot runs along")
    p.add_argument("--quantity", choices=("flops", "macs", "params", "memory"),
                   help="what the plot shows (default: the convention's total)")
    p.add_argument("--depth", type=int, default=None,
                   help="levels of the block table (default 2)")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=True,
                   help="fold repeated identical blocks into one row with a count")
    p.add_argument("--title", help="the page's heading")
    p.add_argument("--output", "-o", metavar="FILE", help="the HTML file (default stdout)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("doc", help="the formula reference of every layer, or of one model")
    p.add_argument("target", nargs="?", metavar="MODEL",
                   help="FILE.py:FACTORY: write that model's formula document instead")
    _trace(p)
    p.add_argument("--convention", default="exact", help="counting convention (model doc)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="e.g. docs/formulas.md; a model's document: x.md or x.tex")
    p.add_argument("--var", metavar="NAME[,NAME]",
                   help="model doc: the symbol(s) its plot sweeps (default: the input's "
                        "spatial or sequence dims)")
    p.add_argument("--range", metavar="START:STOP:STEP", help="model doc: the plot's sizes")
    p.add_argument("--depth", type=int, default=None,
                   help="model doc: block depth of the per-block formulas (default 1)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if FILE (default docs/formulas.md) is not what would be written")
    p.set_defaults(func=cmd_doc)
    return parser


def _sweep(p: argparse.ArgumentParser, range_required: bool = True) -> None:
    p.add_argument("--var", required=True, metavar="NAME[,NAME]",
                   help="symbol(s) to sweep; several names take the same values (H,W)")
    p.add_argument("--range", required=range_required, metavar="START:STOP:STEP",
                   help="values: 64:1024:32, 64:1024:*2 or 224,384")
    p.add_argument("--quantity", default="flops", choices=("flops", "macs", "params"))
    p.add_argument("--plot", metavar="FILE",
                   help="save a log-log plot as FILE.png, .svg or .pdf (no suffix: .png; "
                        "needs matplotlib)")
