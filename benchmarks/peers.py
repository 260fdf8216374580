"""The benchmark cases and the counters compared with symflops (the "peers").

A *case* builds one model (torchvision's when it imports, else the plain-torch mirror in
``examples/``; transformers' GPT-2 and Llama when it imports) and its example input; a *peer*
counts that model's cost at one size and names the convention of its number. Both are
registries (``CASES``, ``PEERS``): ``run.py`` times every peer on every case and
``agreement.py`` explains why their numbers differ.

>>> sorted(PEERS)[:3]
['calflops', 'export', 'fcm_cpu']
>>> PEERS["fvcore"].convention.split(";")[0]
'MACs of conv/linear/matmul/bmm/einsum'
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import io
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(fn: Callable[[], Any], reps: int, slow_s: float = float("inf")
                   ) -> tuple[float, int, Any]:
    """(median wall time of up to ``reps`` calls of ``fn``, calls made, last result); stops
    after the first call when it took ``slow_s`` or more (a minute-long export is not
    repeated). ``bench_trace.best`` keeps the minimum; BENCHMARKS.md reports medians."""
    times: list[float] = []
    out = None
    for _ in range(max(1, reps)):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if times[0] >= slow_s:
            break
    return statistics.median(times), len(times), out


def missing(module: str) -> str | None:
    """None when ``module`` imports, else why not (one line)."""
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - a peer that does not import is reported, not fatal
        return f"{module} not importable ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    return None


def load_example(name: str) -> Any:
    """``examples/<name>.py`` as a module (examples/ is not a package)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One model: ``build()`` makes it on the current default device (wrap in
    ``torch.device("meta")`` for meta), ``size`` is H = W (vision) or N (language)."""

    name: str
    label: str
    family: str  # "vision" (input x of (B, 3, H, W)) or "lm" (input_ids of (B, N))
    build: Callable[[], Any]
    size: int
    source: str
    cpu: bool = True  # False: too big to build with real weights

    def spec(self) -> Any:
        """The input spec ``sf.trace`` takes."""
        return "B 3 H W" if self.family == "vision" else {"input_ids": ("B", "N")}

    def values(self, size: int | None = None) -> dict[str, int]:
        """Concrete values of the input symbols at ``size`` (default: the case's size)."""
        s = self.size if size is None else size
        return {"B": 1, "H": s, "W": s} if self.family == "vision" else {"B": 1, "N": s}

    def example(self, device: str = "cpu", size: int | None = None) -> Any:
        """The concrete input: ``x`` of (1, 3, s, s) or ``input_ids`` of (1, s)."""
        import torch

        s = self.size if size is None else size
        if self.family == "vision":
            return torch.randn(1, 3, s, s, device=device)
        return torch.zeros(1, s, dtype=torch.long, device=device)

    def kwargs(self, x: Any) -> dict[str, Any]:
        """The keyword arguments of one forward. A language model returns no cache on
        real tensors (a cache object in the output breaks jit tracing and torch.export) but
        keeps it on meta (without one, transformers' mask code calls ``.item()``)."""
        if self.family == "vision":
            return {"x": x}
        return {"input_ids": x, "use_cache": x.device.type == "meta"}

    def call(self, model: Any, x: Any) -> Any:
        return model(x) if self.family == "vision" else model(**self.kwargs(x))


CASES: dict[str, Case] = {}


def case(c: Case) -> Case:
    if c.name in CASES:
        raise ValueError(f"case {c.name!r} registered twice")
    CASES[c.name] = c
    return c


def _torchvision(name: str, mirror: tuple[str, str]) -> tuple[Callable[[], Any], str]:
    if missing("torchvision") is None:
        import torchvision

        return (lambda: torchvision.models.get_model(name, weights=None).eval(),
                f"torchvision {torchvision.__version__} `{name}`")
    return (lambda: getattr(load_example(mirror[0]), mirror[1])().eval(),
            f"examples/{mirror[0]}.py `{mirror[1]}` (torchvision missing)")


def _hf(kind: str) -> tuple[Callable[[], Any], str]:
    if missing("transformers") is None:
        import transformers

        def build() -> Any:
            if kind == "gpt2":  # GPT2Config() is GPT-2 small: 12 layers, dim 768, 12 heads
                cfg = transformers.GPT2Config()
                return transformers.GPT2LMHeadModel(cfg).eval()
            cfg = transformers.LlamaConfig(  # Llama-2-7B widths, 32 layers
                vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32)
            return transformers.LlamaForCausalLM(cfg).eval()

        what = ("GPT2Config() (GPT-2 small)" if kind == "gpt2" else
                "LlamaConfig(dim 4096, 32 layers, 32 heads, MLP 11008, vocab 32000)")
        return build, f"transformers {transformers.__version__} {what}"
    fn = "gpt" if kind == "gpt2" else "llama"
    return (lambda: getattr(load_example("gpt"), fn)(),
            f"examples/gpt.py `{fn}()` (transformers missing)")


def register_cases() -> None:
    """Fill ``CASES`` (lazily: building the factories imports torchvision/transformers)."""
    if CASES:
        return
    for name, label, mirror in (("resnet50", "ResNet-50", ("resnet", "resnet50")),
                                ("mobilenet_v2", "MobileNetV2", ("mobilenet", "mobilenet_v2")),
                                ("vit_b_16", "ViT-B/16", ("vit", "vit_b_16"))):
        build, source = _torchvision(name, mirror)
        case(Case(name, label, "vision", build, 224, source))
    build, source = _hf("gpt2")
    case(Case("gpt2", "GPT-2 small", "lm", build, 1024, source))
    build, source = _hf("llama")
    case(Case("llama32", "Llama 32 layers", "lm", build, 1024, source, cpu=False))


# ----------------------------------------------------------------------------------------- peers
@dataclass(frozen=True)
class Peer:
    """A counter: ``count(case, model, device)`` returns its number for the case's size,
    ``model`` living on ``device``. ``needs`` is the module it imports (reported when
    missing); ``device`` is where it runs: "meta", or "cpu" (real tensors; a model too big for
    real weights runs on meta instead, see :func:`device_for`)."""

    name: str
    label: str
    convention: str
    count: Callable[[Case, Any, str], int]
    device: str
    needs: str = "torch"


PEERS: dict[str, Peer] = {}
Counter = Callable[[Case, Any, str], int]


def peer(name: str, label: str, convention: str, device: str, needs: str = "torch"
         ) -> Callable[[Counter], Counter]:
    def register(fn: Counter) -> Counter:
        if name in PEERS:
            raise ValueError(f"peer {name!r} registered twice")
        PEERS[name] = Peer(name, label, convention, fn, device, needs)
        return fn
    return register


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the peers' warnings and printed tables."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def symflops_trace(case: Case, model: Any, convention: str = "torch") -> Any:
    """The symbolic trace (the thing being measured)."""
    import symflops as sf

    with quiet():
        return sf.trace(model, case.spec(), convention=convention, warn=False)


def at_size(cost: Any, case: Case, size: int | None = None) -> Any:
    """``cost`` at the case's concrete size (only the symbols the trace left free)."""
    names = {s.name for s in cost.free_symbols}
    return cost.subs(**{k: v for k, v in case.values(size).items() if k in names})


@peer("symflops", "symflops sf.trace (symbolic)", "torch (2 per MAC), from the symbolic "
      "formula at the size", "cpu")
def _symflops(case: Case, model: Any, device: str) -> int:
    return int(at_size(symflops_trace(case, model), case).flops)


@peer("symflops_floor", "symflops sf.trace at concrete sizes (the floor)", "torch (2 per "
      "MAC); the same recording with every size an int", "cpu")
def _symflops_floor(case: Case, model: Any, device: str) -> int:
    import symflops as sf

    x = case.example("meta")
    spec = tuple(x.shape) if case.family == "vision" else {"input_ids": tuple(x.shape)}
    with quiet():
        return int(sf.trace(model, spec, convention="torch", warn=False).flops)


def fcm_count(case: Case, model: Any, device: str, size: int | None = None) -> int:
    """FlopCounterMode on one concrete input (no_grad)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = case.example(device, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        case.call(model, x)
    return int(fc.get_total_flops())


@peer("fcm_cpu", "FlopCounterMode, real CPU tensors", "torch (2 per MAC)", "cpu")
def _fcm_cpu(case: Case, model: Any, device: str) -> int:
    return fcm_count(case, model, device)


@peer("fcm_meta", "FlopCounterMode, meta tensors", "torch (2 per MAC)", "meta")
def _fcm_meta(case: Case, model: Any, device: str) -> int:
    return fcm_count(case, model, "meta")


@peer("fcm_symbolic", "FlopCounterMode, symbolic fake tensors", "torch (2 per MAC), "
      "a SymInt total evaluated at the size", "meta")
def _fcm_symbolic(case: Case, model: Any, device: str) -> int:
    """FlopCounterMode under a FakeTensorMode whose input sizes are symbols (B stays 1: torch
    specializes sizes 0 and 1), the total a SymInt; its value at the hint is the count."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import (
        DimDynamic,
        ShapeEnv,
        StatelessSymbolicContext,
    )
    from torch.utils.flop_counter import FlopCounterMode

    x = case.example(device)
    mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
    ctx = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC] * x.dim())
    fake = mode.from_tensor(x, symbolic_context=ctx)
    with mode, torch.no_grad(), FlopCounterMode(display=False) as fc:
        case.call(model, fake)
    return int(fc.get_total_flops())


@peer("export", "torch.export (dynamic dims) + flop formulas on the graph",
      "torch (2 per MAC), torch's flop_registry on the exported graph", "cpu")
def _export(case: Case, model: Any, device: str) -> int:
    """Export with every input dim automatic-dynamic, decompose to core aten, then sum
    torch's own per-op flop formulas over the graph's symbolic shapes and substitute."""
    import torch
    from torch.export import Dim, export
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import flop_registry

    x = case.example(device)  # B = 1 is specialized by torch; H, W or N stay symbols
    key = "x" if case.family == "vision" else "input_ids"
    dyn: dict[str, Any] = {key: dict.fromkeys(range(x.dim()), Dim.AUTO)}
    kwargs = case.kwargs(x)
    dyn = {k: dyn.get(k) for k in kwargs}
    with quiet():
        ep = export(model, (), kwargs, dynamic_shapes=dyn).run_decompositions()
    total: Any = 0
    for n in ep.graph.nodes:
        fn = flop_registry.get(getattr(n.target, "overloadpacket", None)) \
            if n.op == "call_function" else None
        if fn is None:
            continue
        a, k = tree_map(lambda v: v.meta["val"] if isinstance(v, torch.fx.Node) else v,
                        (n.args, n.kwargs))
        total = total + fn(*a, **k, out_val=n.meta["val"])
    user = next(n for n in ep.graph.nodes if n.op == "placeholder"
                and n.name == ep.graph_signature.user_inputs[0])
    want = case.example("meta").shape
    subs = {d.node.expr: v for d, v in zip(user.meta["val"].shape, want, strict=True)
            if isinstance(d, torch.SymInt)}
    expr = total.node.expr if isinstance(total, torch.SymInt) else total
    return int(expr.subs(subs)) if hasattr(expr, "subs") else int(expr)


@peer("fvcore", "fvcore FlopCountAnalysis", "MACs of conv/linear/matmul/bmm/einsum; per "
      "element: batch_norm 1 (2 with affine), layer/group_norm 5, adaptive_avg_pool input 1; "
      "other ops (SDPA included) 0", "cpu", "fvcore")
def _fvcore(case: Case, model: Any, device: str) -> int:
    import torch
    from fvcore.nn import FlopCountAnalysis

    class Logits(torch.nn.Module):  # jit tracing needs tensors out, not a ModelOutput
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Any) -> Any:
            out = case.call(self.model, x)
            return out if case.family == "vision" else out.logits

    with quiet():
        a = FlopCountAnalysis(Logits(), (case.example(device),))
        a.unsupported_ops_warnings(False)
        a.uncalled_modules_warnings(False)
        return int(a.total())


def _ptflops(case: Case, model: Any, device: str, backend: str) -> int:
    from ptflops import get_model_complexity_info

    shape = (3, case.size, case.size) if case.family == "vision" else (case.size,)

    def make(_: Any) -> Any:
        return case.kwargs(case.example(device))

    with quiet():
        macs, _params = get_model_complexity_info(
            model, shape, input_constructor=make, as_strings=False,
            print_per_layer_stat=False, backend=backend)
    if macs is None:
        raise RuntimeError("ptflops returned None (it failed inside and printed why)")
    return int(macs)


@peer("ptflops", "ptflops (default pytorch backend)", "MACs of modules and patched "
      "matmuls; per element: bias 1, affine BatchNorm 2, activations and pools 1 per module "
      "hook and 1 per patched torch.nn.functional call", "cpu", "ptflops")
def _ptflops_pytorch(case: Case, model: Any, device: str) -> int:
    return _ptflops(case, model, device, "pytorch")


@peer("ptflops_aten", "ptflops (aten backend)", "MACs of aten conv/mm/bmm/addmm", "cpu",
      "ptflops")
def _ptflops_aten(case: Case, model: Any, device: str) -> int:
    return _ptflops(case, model, device, "aten")


@peer("calflops", "calflops calculate_flops", "its FLOPs: 2 per MAC plus per-element work "
      "of norms, activations and pools (patched torch.nn.functional calls)", "cpu",
      "calflops")
def _calflops(case: Case, model: Any, device: str) -> int:
    from calflops import calculate_flops

    with quiet():
        flops, _macs, _params = calculate_flops(
            model, kwargs=case.kwargs(case.example(device)),
            output_as_string=False, print_results=False, print_detailed=False)
    return int(flops)


def available(p: Peer) -> str | None:
    """None when the peer can run here, else why not."""
    return missing(p.needs)


def device_for(p: Peer, c: Case) -> str | None:
    """Where ``p`` runs on ``c``: its own device, meta when the case has no real weights,
    None when the peer only makes sense on real tensors and the case has none."""
    if p.device == "meta" or c.cpu:
        return p.device
    return None if p.name == "fcm_cpu" else "meta"
