"""Model factories named on the command line (``FILE.py:FACTORY`` or
``package.module:FACTORY``), loaded and called with the user's code kept in its place:
its prints go to stderr (stdout carries only symflops' output), and whatever it raises or
exits with becomes one :class:`~symflops.errors.SymflopsError` naming what ran.

>>> factory = load_factory("symflops.symbols:canonical")
>>> sorted(call_factory(factory, "symflops.symbols:canonical"))[:3]
['B', 'C', 'C_in']
>>> load_factory("model.py")
Traceback (most recent call last):
...
symflops.errors.SymflopsError: cannot read target 'model.py'; fix: write FILE.py:FACTORY ...
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from symflops.errors import FLAGS, SymflopsError
from symflops.parse import parse_assignments, parse_name

if TYPE_CHECKING:
    from symflops.cost import Cost

__all__ = ["INSTALL", "MAX_TARGET_LENGTH", "load_factory", "call_factory", "user_code",
           "is_model", "missing_module", "progress", "PROGRESS_AFTER", "spec_dims", "parse_hints",
           "torch_only", "build_cost", "parse_vary", "parse_pairs"]

#: seconds a model may take to build and trace before progress is shown on stderr
PROGRESS_AFTER = 1.5

#: the longest ``FILE.py:FACTORY`` accepted
MAX_TARGET_LENGTH = 1000

#: how to install a missing package, by the top-level module name an import asks for
INSTALL: dict[str, str] = {
    "torch": "pip install torch==2.13.0",
    "torchvision": "pip install torchvision (the build that matches your torch)",
    "transformers": "pip install transformers",
    "timm": "pip install timm",
    "matplotlib": "pip install matplotlib",
    "PIL": "pip install pillow",
    "yaml": "pip install pyyaml",
    "einops": "pip install einops",
}

#: the name a FILE.py target is imported under starts so (with its path after it)
_MODULE_PREFIX = "_symflops_target_"

_FORM = "write FILE.py:FACTORY or package.module:FACTORY, e.g. examples/resnet.py:resnet50"


def _shown(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _raised(e: BaseException) -> str:
    text = _shown(str(e), 300)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a broken or half-imported package
        return False


def missing_module(e: ModuleNotFoundError, what: str) -> SymflopsError:
    """The error for code that imports a module that is not installed: install it (or, for
    a submodule an installed package lacks, check its name and the package's version)."""
    name = e.name or str(e)
    top = name.split(".")[0]
    if name != top and _installed(top):
        return SymflopsError(f"{what} imports {name!r}, which the installed {top} does not "
                             "have", fix=f"check the module name, or the version of {top}")
    if top in INSTALL:
        fix = f"install {top}: {INSTALL[top]}"
    else:
        fix = (f"install the package that provides {top!r} (often: pip install {top}), "
               f"or put {top}.py beside the file that imports it")
    return SymflopsError(f"{what} needs the module {name!r}, which is not installed", fix=fix)


@contextlib.contextmanager
def user_code(what: str, fix: str | None = None, exit_fix: str | None = None
              ) -> Iterator[None]:
    """Run the user's code (importing a file, calling a factory, tracing a model).

    Its prints go to stderr. ``sys.exit``, a missing module and other escapes
    (``GeneratorExit``, custom ``BaseException`` subclasses) become one error naming
    ``what``; ordinary exceptions too when ``fix`` is given (else they pass through, for
    the caller to report); ``exit_fix`` says what to do about a ``sys.exit``. Ctrl-C
    (``KeyboardInterrupt``) passes through.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (SymflopsError, KeyboardInterrupt):
        raise
    except SystemExit as e:
        raise SymflopsError(f"{what} called sys.exit({e.code!r})",
                            fix=exit_fix or "return the model instead of exiting; put script "
                                            "code under `if __name__ == '__main__':`") from None
    except ModuleNotFoundError as e:
        raise missing_module(e, what) from None
    except Exception as e:
        if fix is None:
            raise
        raise SymflopsError(f"{what} raised {_raised(e)}", fix=fix) from None
    except BaseException as e:  # GeneratorExit and user-defined escapes
        raise SymflopsError(f"{what} raised {_raised(e)}",
                            fix=fix or "raise an Exception subclass, or return normally"
                            ) from None


def _import_file(path: Path, where: str) -> Any:
    mod_name = _MODULE_PREFIX + "".join(c if c.isalnum() else "_"
                                             for c in str(path.resolve()))
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise SymflopsError(f"cannot load {where} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:  # let the file import its neighbours, as `python FILE.py` would
        sys.path.insert(0, folder)
    try:
        with user_code(f"importing {where}", fix="fix the error in that file"):
            spec.loader.exec_module(module)
    except SymflopsError:
        sys.modules.pop(mod_name, None)
        raise
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _import_module(where: str) -> Any:
    for part in where.split("."):
        parse_name(part)
    with user_code(f"importing {where}", fix="fix the error in that module"):
        try:
            return importlib.import_module(where)
        except ModuleNotFoundError as e:  # the module itself, not one it imports?
            if e.name and (where == e.name or where.startswith(e.name + ".")):
                raise SymflopsError(f"cannot import module {where!r}: no module named "
                                    f"{e.name!r}",
                                    fix="check the module name (python -c 'import "
                                        f"{where}' must work), or give a FILE.py path"
                                    ) from None
            raise


def _file_or_module(where: str, spec: str) -> Any:
    """The module ``where`` names: a ``.py`` file, or a dotted module name."""
    if not where:
        raise SymflopsError(f"no file or module before the factory in {spec!r}",
                            fix=_FORM)
    path = Path(where)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as e:
        raise SymflopsError(f"cannot read {_shown(where)}: {e.strerror}",
                            fix="check the path to the .py file") from None
    if is_dir:
        raise SymflopsError(f"{_shown(where)} is a folder, not a .py file",
                            fix=f"name a file in it, e.g. {_shown(str(path / 'model.py'))}"
                                ":FACTORY")
    if where.endswith(".py"):
        if not exists:
            raise SymflopsError(f"no such file: {_shown(where)}",
                                fix="check the path to the .py file")
        return _import_file(path, where)
    if exists or "/" in where or "\\" in where:
        raise SymflopsError(f"{_shown(where)} is not a .py file",
                            fix="name a Python file ending in .py, or a module as "
                                "package.module")
    return _import_module(where)


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable ``spec`` names (``FILE.py:FACTORY`` or ``package.module:FACTORY``).

    Importing the file runs its code, as Python would; nothing else of ``spec`` is run.
    """
    if len(spec) > MAX_TARGET_LENGTH:
        raise SymflopsError(f"target longer than {MAX_TARGET_LENGTH} characters",
                            values={"length": len(spec)}, fix="use a shorter path")
    if ":" not in spec:
        fix = _FORM
        with contextlib.suppress(SymflopsError):
            from symflops.reference import EXAMPLES

            if spec in EXAMPLES:
                fix += f"; for the layer, run: symflops formula {spec}"
        raise SymflopsError(f"cannot read target {_shown(spec)!r}", fix=fix)
    where, _, attr = spec.rpartition(":")
    if where == "sf":  # sf:llama -> symflops.presets:llama
        where = "symflops.presets"
    if not attr.strip():
        raise SymflopsError(f"no factory named in {_shown(spec)!r}",
                            fix="add :FACTORY after the file, e.g. model.py:make")
    attr = parse_name(attr)
    module = _file_or_module(where, spec)
    factory = getattr(module, attr, None)
    if not callable(factory):
        names = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_") and not isinstance(v, type)
                       and getattr(v, "__module__", None) == module.__name__)
        raise SymflopsError(f"{where} has no factory {attr!r}",
                            fix="use one of " + (", ".join(names) or "its functions"))
    return factory


def _required(factory: Callable[..., Any]) -> list[str]:
    """The parameters ``factory`` cannot be called without (none known: [])."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or an odd callable: just call it
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in sig.parameters.values()
            if p.kind in kinds and p.default is inspect.Parameter.empty]


def call_factory(factory: Callable[..., Any], name: str,
                 arguments: Mapping[str, Any] | None = None) -> Any:
    """``factory(**arguments)``, guarded by :func:`user_code`; a factory that needs
    arguments not given is refused before it runs."""
    arguments = dict(arguments or {})
    missing = [n for n in _required(factory) if n not in arguments]
    if missing:
        raise SymflopsError(f"{name} needs arguments: {', '.join(missing)}",
                            fix="pass them with --args " + ",".join(f"{n}=..." for n in missing)
                                + ", give them defaults, or name a factory that takes none")
    with user_code(f"calling {name}", fix="fix the factory or its --args"):
        return factory(**arguments)


def is_model(obj: Any) -> bool:
    """A torch ``nn.Module``, an ``sf.nn`` layer or a :class:`~symflops.cost.Cost`
    (checked without importing torch: a Module exists only once torch is imported)."""
    from symflops.cost import Cost
    from symflops.nn import Layer

    if isinstance(obj, (Cost, Layer)):
        return True
    module_type = getattr(getattr(sys.modules.get("torch"), "nn", None), "Module", None)
    return isinstance(module_type, type) and isinstance(obj, module_type)


def torch_only(what: str, *, train: bool, hinted: bool,
               options: Mapping[str, Any] | None = None) -> None:
    """``--train``, ``--hint`` and the trace options (``options``: sf.trace keywords the
    user gave, e.g. ``{"strict": True}``) act on a traced torch model only: never ignored
    silently."""
    given_flags = [("--train", train), ("--hint", hinted)] + [
        ("--" + key.replace("_", "-"), True) for key in (options or {})]
    for flag, given in given_flags:
        if given:
            raise SymflopsError(f"{flag} applies to traced torch models, and {what}",
                                fix=f"leave {flag} out, or return a torch.nn.Module")


def parse_pairs(text: str, flag: str, example: str, what: str = "EXPRESSION"
                ) -> dict[str, str]:
    """``NAME=TEXT`` pairs separated by commas (``--vary``, ``--args``): each name a bare
    name given once, each text left as typed for the caller to parse.

    >>> parse_pairs("dim=64, layers=L", "--args", "dim=64")
    {'dim': '64', 'layers': 'L'}
    """
    from symflops.parse import MAX_LIST_LENGTH, parse_name

    fix = f'write e.g. {flag} "{example}"'
    if len(text) > MAX_LIST_LENGTH or not text.strip():
        raise SymflopsError(f"{flag}: give ARGUMENT={what} pairs", fix=fix)
    out: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or not value.strip():
            raise SymflopsError(f"{flag}: each item is ARGUMENT={what}",
                                values={"item": _shown(item.strip())}, fix=fix)
        name = parse_name(key.strip())
        if name in out:
            raise SymflopsError(f"{flag}: {name} is given twice", fix=fix)
        out[name] = value.strip()
    return out


def parse_vary(text: str) -> dict[str, str]:
    """``--vary "image_size=H,num_layers=L,mlp_dim=4*dim"``: constructor argument ->
    expression text (parsed by :mod:`symflops.parse` inside ``trace_factory``).

    >>> parse_vary("image_size=H, mlp_dim=4*dim")
    {'image_size': 'H', 'mlp_dim': '4*dim'}
    """
    return parse_pairs(text, "--vary", "image_size=H,num_layers=L,hidden_dim=dim")


def build_cost(factory: Callable[..., Any], name: str, spec: Any, *, convention: str,
               hints: dict[str, int], train: bool, time_budget: int | None = None,
               options: Mapping[str, Any] | None = None, vary: str | None = None,
               factory_args: Mapping[str, Any] | None = None,
               serving: Mapping[str, Any] | None = None,
               training: Mapping[str, Any] | None = None) -> Cost:
    """The cost of what ``factory`` returns: a :class:`~symflops.cost.Cost` (weighed by
    ``convention``), an ``sf.nn`` network on the one input ``spec``, or a torch model
    traced on ``spec`` (``None``: no input given) with ``hints``, forward and backward
    when ``train``, within ``time_budget`` seconds (``None``: sf.trace's default), with
    the further sf.trace keywords ``options`` (``strict``, ``real``, ``fallback``, ...).
    ``vary``: constructor arguments as symbols (:func:`parse_vary`): the factory is
    traced by ``sf.trace_factory`` into an exact formula in them. ``factory_args``: the
    factory's own arguments; ``serving``: ``mode``/``context`` of an sf.nn network's
    prefill or decode step; ``training``: an sf.nn network's training options (``zero``,
    ``data_parallel``, ...: ``Layer.cost(mode="train")`` keywords) with ``train``."""
    from symflops.cost import Cost
    from symflops.nn import Layer

    if serving and vary is not None:
        raise SymflopsError("--mode prefill/decode are derived for sf.nn networks, not for "
                            "--vary traces", fix="drop --vary, or drop --mode")
    if vary is not None:
        params = parse_vary(vary)
        if spec is None:
            raise SymflopsError("--vary needs an input spec", fix='pass --input "B 3 H H"')
        with user_code("tracing"):
            from symflops.tracing import trace_factory
        with user_code(f"tracing {name}", exit_fix="take the sys.exit out of the model"):
            factory_options: dict[str, Any] = dict(options or {})
            if time_budget is not None:
                factory_options["time_budget"] = time_budget
            if hints:
                factory_options["hints"] = hints
            return trace_factory(factory, spec, params, convention=convention,
                                 mode="train" if train else "eval", **factory_options)

    model = call_factory(factory, name, factory_args)
    past = _traced_serving(serving, name, model) \
        if serving and not isinstance(model, (Layer, Cost)) else None
    if not is_model(model):
        kind = type(model)
        typename = kind.__qualname__ if kind.__module__.startswith(("builtins", _MODULE_PREFIX)) \
            else f"{kind.__module__}.{kind.__qualname__}"
        raise SymflopsError(f"{name} returned {typename}, not a model symflops can cost",
                            fix="return a torch.nn.Module, an sf.nn layer or an sf.Cost")
    if isinstance(model, Cost):
        torch_only(f"{name} returns a Cost", train=train, hinted=bool(hints), options=options)
        return model.with_convention(convention)
    if training and not isinstance(model, Layer):
        flag = FLAGS[next(iter(training))].flag
        raise SymflopsError(f"{flag} sizes the training memory of sf.nn networks and "
                            f"presets; {name} is not one", values={flag: next(iter(
                                training.values()))},
                            fix=f"drop {flag}, or use a preset such as sf:llama")
    if isinstance(model, Layer):
        if train and serving:
            raise SymflopsError(f"--train and --mode {serving['mode']} are two passes",
                                fix="give one of them")
        torch_only(f"{name} returns an sf.nn network", train=False, hinted=bool(hints),
                   options=options)
        if spec is None:
            raise SymflopsError(f"{name} returns an sf.nn network: it needs an input",
                                fix='pass --input "B 3 H W"')
        if isinstance(spec, (dict, list)):
            raise SymflopsError("an sf.nn network takes one positional input",
                                fix='pass one --input "B 3 H W"')
        if train:
            return model.cost(spec, convention=convention, mode="train", **dict(training or {}))
        return model.cost(spec, convention=convention, **dict(serving or {}))
    if spec is None:
        raise SymflopsError(f"tracing {name} needs an input spec",
                            fix='pass --input "B 3 H W" (or "input_ids=B N" for keywords)')
    with user_code("tracing"):
        from symflops.tracing import trace
    # (sf.trace drops torch's own log records while it runs: no 35-line tracebacks)
    with user_code(f"tracing {name}", exit_fix="take the sys.exit out of the model's forward"):
        extra: dict[str, Any] = dict(options or {})
        if time_budget is not None:
            extra["time_budget"] = time_budget
        if past is not None:
            extra["past"] = past
        cost: Cost = trace(model, spec, hints=hints or None, convention=convention,
                           mode="train" if train else "eval", **extra)
    return cost


def _traced_serving(serving: Mapping[str, Any], name: str, model: Any) -> int | str:
    """``--mode``/``--context`` for a traced torch model: a decode step traces with a KV
    cache of ``--context`` tokens (``sf.trace(past=...)``), a prefill with an empty one
    (``past=0``: the prompt's forward, writing the cache). The serving memory options are
    sf.nn's."""
    for key in ("weight_format", "kv_bytes"):
        flag = FLAGS[key].flag
        if key in serving:
            raise SymflopsError(f"{flag} sizes the serving memory of sf.nn networks and "
                                f"presets; {name} is traced", values={flag: serving[key]},
                                fix=f"drop {flag}, or use a preset such as sf:llama")
    if getattr(model, "config", None) is None:
        raise SymflopsError(f"--mode {serving['mode']} is for decoders: sf.nn networks, "
                            f"presets and transformers models; {name} returned "
                            f"{type(model).__name__}", values={"--mode": serving["mode"]},
                            fix="drop --mode, or use a preset such as sf:llama")
    if serving.get("mode") != "decode":
        return 0  # a prefill: the prompt's forward, into an empty cache
    context = serving["context"]
    if context.is_Integer:
        return int(context)
    if context.is_Symbol:
        return str(context.name)
    raise SymflopsError("a traced decode step's --context is a symbol or a number",
                        values={"--context": str(context)}, fix="e.g. --context T or 4096")


@contextlib.contextmanager
def progress(what: str, stream: Any) -> Iterator[None]:
    """Show ``what ... N s`` on stderr while a slow step runs (after PROGRESS_AFTER s)."""
    done = threading.Event()
    start = time.monotonic()

    live = bool(getattr(stream, "isatty", lambda: False)())

    def tick() -> None:
        # a terminal gets one line rewritten each second; a log or pipe gets one line
        if done.wait(PROGRESS_AFTER):
            return
        if not live:
            stream.write(f"symflops: {what}...\n")
            stream.flush()
            return
        while not done.is_set():
            stream.write(f"\rsymflops: {what}... {time.monotonic() - start:.0f} s")
            stream.flush()
            done.wait(1.0)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    failed = True
    try:
        yield
        failed = False
    finally:
        done.set()
        thread.join()
        elapsed = time.monotonic() - start
        if elapsed > PROGRESS_AFTER and not failed:
            start_of_line = "\r" if live else ""
            stream.write(f"{start_of_line}symflops: {what} done in {elapsed:.1f} s\n")
            stream.flush()
        elif elapsed > PROGRESS_AFTER and live:  # clear the progress line for the error
            stream.write("\r\x1b[K")
            stream.flush()


def spec_dims(spec: Any) -> list[str]:
    """The symbolic dims of an input spec, in order: one shape, a list of them or a dict.

    >>> spec_dims(("B", 3, "H", "W")), spec_dims({"ids": ("B", "N"), "mask": ("B", "N")})
    (['B', 'H', 'W'], ['B', 'N'])
    """
    shapes = spec.values() if isinstance(spec, dict) else spec if isinstance(spec, list) \
        else [spec]
    return list(dict.fromkeys(d for shape in shapes for d in shape if isinstance(d, str)))


def parse_hints(texts: Sequence[str], dims: Sequence[str], inputs: str) -> dict[str, int]:
    """``--hint`` values: positive integers for ``dims`` (the symbolic dims of the input
    ``inputs``), each given once.

    >>> parse_hints(["H=224", "W=160"], ["B", "H", "W"], "B 3 H W")
    {'H': 224, 'W': 160}
    """
    hints: dict[str, int] = {}
    for text in texts:
        for sym, val in parse_assignments(text).items():
            if sym.name not in dims:
                raise SymflopsError(f"--hint: {sym.name} is not a dim of the input",
                                    values={"input": inputs},
                                    fix="hint one of: " + (", ".join(dims) if dims else
                                                           'nothing; pass --input "B 3 H W"'))
            if not (val.is_Integer and val > 0):
                raise SymflopsError("hints must be positive integers", values={sym.name: val},
                                    fix="write --hint H=224")
            if sym.name in hints:
                raise SymflopsError(f"--hint: {sym.name} is given twice",
                                    values={sym.name: f"{hints[sym.name]} and {val}"},
                                    fix="give each hint once")
            hints[sym.name] = int(val)
    return hints
