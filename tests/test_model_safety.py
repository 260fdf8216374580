"""A trace never changes the model: a zoo of forward patterns with side effects, traced
in eval and train mode (fake, real=True, fit, the fit fallback, a run that raises),
each compared with a deep snapshot taken before: every module attribute, every tensor
(values, dtype, device, requires_grad, grad, version, FakeTensor or not), hooks
(per-module and global), this module's globals, torch's global defaults (default dtype,
grad mode, anomaly mode, deterministic algorithms) and the RNGs (torch, random, numpy).
Nested containers, plain objects and globals a forward writes are checked too, and no
FakeTensor or SymInt may stay reachable from the model or the globals."""

from __future__ import annotations

import contextlib
import copy
import io
import random
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

import symflops as sf  # noqa: E402

GLOBAL_STATE = torch.zeros(3)
GLOBAL_CACHE: dict[str, Any] = {"calls": 0, "inner": {"seen": []}}
GLOBAL_LIST: list[Any] = []


# ----------------------------------------------------------------------------- snapshot
def _describe(v: Any, depth: int = 0) -> Any:
    """A comparable deep description of ``v`` (tensors by value and metadata)."""
    if isinstance(v, nn.parameter.UninitializedTensorMixin):
        return ("uninitialized", type(v).__name__, id(v), v.requires_grad)
    if isinstance(v, torch.Tensor):
        values = None if v.device.type == "meta" or type(v).__name__ == "FakeTensor" \
            else v.detach().cpu().tolist()
        return ("tensor", type(v).__name__, str(v.dtype), str(v.device), tuple(v.shape),
                v.requires_grad, v._version, values,
                None if v.grad is None else _describe(v.grad, depth + 1))
    if isinstance(v, nn.Module):
        return ("module", type(v).__name__, id(v))
    if isinstance(v, np.ndarray):
        return ("ndarray", str(v.dtype), v.tolist())
    if depth > 4:
        return ("deep", type(v).__name__, id(v))
    if isinstance(v, dict):
        return (type(v).__name__, tuple((repr(k), _describe(x, depth + 1)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_describe(x, depth + 1) for x in v))
    if isinstance(v, (set, frozenset)):
        return (type(v).__name__, tuple(sorted(repr(x) for x in v)))
    if v is None or isinstance(v, (bool, int, float, str, torch.dtype, torch.device)):
        return v
    return (type(v).__name__, id(v))


def deep_snapshot(model: nn.Module) -> dict[str, Any]:
    """Every module's ``__dict__`` described deeply, the global hook registries and the
    RNG states."""
    import torch.nn.modules.module as mm

    mods = {name: (type(m).__name__, tuple(sorted(
        (k, _describe(v)) for k, v in m.__dict__.items())))
        for name, m in model.named_modules(remove_duplicate=False)}
    hooks = {name: _describe(getattr(mm, name)) for name in dir(mm)
             if name.startswith("_global_") and isinstance(getattr(mm, name), dict)}
    return {"modules": mods, "global_hooks": hooks, "a global tensor": _describe(GLOBAL_STATE),
            "globals": _describe({k: v for k, v in globals().items() if k.isupper()}),
            # (the warnings machinery adds __warningregistry__ where a warning points)
            "global names": sorted(n for n in globals() if not n.startswith("__")),
            "torch defaults": (torch.get_default_dtype(), torch.is_grad_enabled(),
                               torch.is_anomaly_enabled(),
                               torch.are_deterministic_algorithms_enabled()),
            "torch_rng": torch.get_rng_state().tolist(), "random": random.getstate(),
            "numpy": _describe(list(np.random.get_state()))}


def symbolic_left(*roots: Any) -> list[str]:
    """Where a FakeTensor, SymInt, SymFloat or SymBool is reachable from ``roots``
    (containers, plain objects' attributes, modules' ``__dict__``)."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(v: Any, where: str, depth: int) -> None:
        if id(v) in seen or depth > 12:
            return
        seen.add(id(v))
        if isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)) or \
                type(v).__name__ == "FakeTensor":
            found.append(f"{where}: {type(v).__name__}")
            return
        if isinstance(v, (torch.Tensor, str, bytes, int, float, type)):
            return
        items: Any = ()
        if isinstance(v, dict):
            items = [(repr(k), x) for k, x in v.items()]
        elif isinstance(v, (list, tuple, set, frozenset)):
            items = [(str(i), x) for i, x in enumerate(v)]
        elif isinstance(v, (nn.Module, types.SimpleNamespace)):
            items = list(vars(v).items())
        for k, x in items:
            walk(x, f"{where}[{k}]", depth + 1)

    for i, root in enumerate(roots):
        walk(root, f"root{i}", 0)
    return found


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    for key in before:
        if key == "modules":
            assert set(before[key]) == set(after[key]), "modules added or removed"
            for name in before[key]:
                assert before[key][name] == after[key][name], f"module {name!r} changed"
        else:
            assert before[key] == after[key], f"{key} changed"


# ----------------------------------------------------------------------------- the zoo
class InplaceAttribute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.state = torch.zeros(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state.add_(1.0)
        return self.lin(x)


class InplaceGlobal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        GLOBAL_STATE.mul_(2).add_(1)
        return self.lin(x)


class InplaceBufferAndParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        with torch.no_grad():
            self.lin.weight.mul_(0.5)
        return self.lin(x)


class RotaryCache(nn.Module):
    """The lazy cache pattern: a buffer registered (and replaced) inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        if getattr(self, "cos_cached", None) is None or self.cos_cached.shape[0] < n:
            t = torch.arange(n, dtype=torch.float32)
            self.register_buffer("cos_cached", torch.cos(t)[:, None], persistent=False)
        return self.lin(x) * self.cos_cached[:n]


class AttributesSetInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.history: list[Any] = []
        self.stats: dict[str, Any] = {"calls": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = torch.softmax(x @ x.transpose(-1, -2), dim=-1)
        self.last_attn = attn
        self.history.append(attn)
        self.stats["calls"] += 1
        self.stats["last"] = attn
        self.training = not self.training
        return self.lin(attn @ x)


class RandomUse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = random.random() + float(np.random.rand())
        noise = torch.rand(8)
        return self.drop(self.lin(x) * scale + noise)


class RaisesHalfway(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.state = torch.zeros(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state.add_(1.0)
        self.partial = self.lin(x)
        self.register_buffer("halfway_buffer", torch.ones(1))
        raise ValueError("stops halfway")


class ValueDependent(nn.Module):
    """Control flow that reads values: symbolic tracing fails, the fit fallback runs
    concrete traces on real tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.state = torch.zeros(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state.add_(1.0)
        y = self.lin(x)
        return y if bool(y.sum() > -1e9) else -y


class Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():  # the legacy form is deprecated, and still used
            warnings.simplefilter("ignore", FutureWarning)
            self.wn = nn.utils.weight_norm(nn.Linear(8, 8))
        self.sn = nn.utils.spectral_norm(nn.Linear(8, 8))
        self.pwn = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwn(self.sn(self.wn(x)))
        return self.bn(y.transpose(1, 2)).transpose(1, 2)


def _pruned() -> nn.Module:
    m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    prune.l1_unstructured(m[0], "weight", amount=0.5)
    prune.random_unstructured(m[2], "bias", amount=0.25)
    return m


def _hooked() -> nn.Module:
    m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    kept: list[Any] = []
    m[0].register_forward_pre_hook(lambda mod, args: kept.append(args))
    m[0].register_forward_hook(lambda mod, args, out: kept.append(out))
    m[2].register_full_backward_hook(lambda mod, gi, go: kept.append(go))
    handle = m[2].register_forward_hook(lambda mod, args, out: handle.remove())
    m.kept = kept  # type: ignore[assignment]
    return m


ZOO: dict[str, Callable[[], nn.Module]] = {
    "inplace_attribute": InplaceAttribute,
    "inplace_global": InplaceGlobal,
    "inplace_buffer_and_parameter": InplaceBufferAndParameter,
    "rotary_cache_buffer": RotaryCache,
    "attributes_set_in_forward": AttributesSetInForward,
    "random_and_dropout": RandomUse,
    "weight_and_spectral_norm_batchnorm": Norms,
    "hooks_incl_self_removing": _hooked,
    "pruned": _pruned,
}


def _trace_quietly(*args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(*args, **kwargs)


def _warm(model: nn.Module) -> nn.Module:
    """One real forward first (caches, lazy buffers, spectral norm's vectors exist)."""
    with torch.no_grad():
        model(torch.randn(2, 4, 8))
    return model


@pytest.mark.parametrize("how", ["fake", "real"])
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", list(ZOO))
def test_trace_leaves_the_model_exactly_as_it_was(name: str, mode: str, how: str) -> None:
    model = _warm(ZOO[name]())
    model.train(mode == "eval")  # the opposite of the traced mode: it must come back
    twin = copy.deepcopy(model)
    before = deep_snapshot(model)
    if how == "fake":
        c = _trace_quietly(model, "B N 8", mode=mode)
    else:
        c = _trace_quietly(model, (2, 4, 8), mode=mode, real=True)
    assert c.params > 0
    assert_same(before, deep_snapshot(model))
    # a real forward afterwards: real tensors, the result of an untraced twin
    x = torch.randn(2, 4, 8)
    outputs = []
    for m in (twin, model):
        torch.manual_seed(1)
        random.seed(1)
        np.random.seed(1)
        with torch.no_grad():
            outputs.append(m(x))
    assert type(outputs[1]) is torch.Tensor and torch.equal(outputs[0], outputs[1])
    torch.save(model.state_dict(), io.BytesIO())


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("how", ["fake", "real"])
def test_a_forward_that_raises_halfway_leaves_the_model_as_it_was(mode: str, how: str) -> None:
    model = RaisesHalfway()
    before = deep_snapshot(model)
    spec: Any = "B N 8" if how == "fake" else (2, 4, 8)
    with pytest.raises(sf.SymflopsError, match="stops halfway"):
        _trace_quietly(model, spec, mode=mode, real=how == "real")
    assert_same(before, deep_snapshot(model))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fit_and_the_fit_fallback_leave_the_model_as_it_was(mode: str) -> None:
    model = ValueDependent()
    before = deep_snapshot(model)
    with pytest.raises(sf.SymflopsError, match="symbolic shapes"):
        _trace_quietly(model, "B N 8", mode=mode)
    assert_same(before, deep_snapshot(model))
    c = _trace_quietly(model, "B N 8", mode=mode, fallback="fit")
    assert "FITTED" in c.notes[0]
    assert_same(before, deep_snapshot(model))
    fitted = sf.tracing.fit(InplaceAttribute(), "B N 8", multiple=1)
    # Linear(8, 8) on B*N rows: 64 MACs per row, 8*9 = 72 parameters
    assert fitted.macs == 64 * sf.symbols.B * sf.symbols.N and fitted.params == 72


def test_user_hooks_do_not_run_during_a_trace_and_stay_registered() -> None:
    import torch.nn.modules.module as mm

    model = _hooked()
    calls: list[str] = []
    handle = mm.register_module_forward_hook(lambda mod, args, out: calls.append("global"))
    try:
        _trace_quietly(model, "B 8", mode="train")
        assert calls == [] and model.kept == []  # type: ignore[comparison-overlap]
        assert len(model[2]._forward_hooks) == 1  # the self-removing hook is still there
        model(torch.randn(2, 8))  # and runs (and removes itself) on a real call
        assert calls and model.kept and len(model[2]._forward_hooks) == 0
    finally:
        handle.remove()


def test_lazy_modules_are_a_clear_error_and_untouched() -> None:
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU())
    before = deep_snapshot(model)
    with pytest.raises(sf.SymflopsError) as info:
        sf.trace(model, "B 4")
    message = str(info.value)
    assert "lazy" in message and "'0'" in message and "fix:" in message
    assert "\n" not in message
    assert_same(before, deep_snapshot(model))
    with torch.no_grad():
        model(torch.randn(2, 4))  # initialized by one real call: traces
    c = sf.trace(model, "B 4", convention="macs")
    assert c.flops == 32 * sf.symbols.B


# ------------------------------------------- nested containers, globals, torch's defaults
class SideEffects(nn.Module):
    """A forward that writes two levels deep into its containers, into a plain config
    object, into this module's globals (a dict, a list, a rebound and a new name) and
    changes torch's defaults; optionally it then raises."""

    def __init__(self, raises: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.deep: dict[str, Any] = {"a": {"k": None}, "l": [[1]], "t": ([],)}
        self.cfg = types.SimpleNamespace(n=3, sub=types.SimpleNamespace(seen=[]))
        self.raises = raises

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global GLOBAL_STATE, GLOBAL_NEW
        y = self.lin(x)
        n = y.shape[0]  # a SymInt in a symbolic trace
        self.deep["a"]["k"] = y
        self.deep["a"]["n"] = n
        self.deep["l"][0].append(y)
        self.deep["t"][0].append(n)
        self.cfg.last, self.cfg.n = y, n
        self.cfg.sub.seen.append(y)
        GLOBAL_CACHE["calls"] += 1
        GLOBAL_CACHE["last"] = y
        GLOBAL_CACHE["inner"]["seen"].append(n)
        GLOBAL_LIST.append(y)
        GLOBAL_STATE = y  # rebinds the name
        GLOBAL_NEW = n  # noqa: F841  (a new global name)
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if self.raises:
            raise ValueError("stops after the side effects")
        return y


@pytest.fixture
def torch_defaults_kept() -> Any:
    """Whatever a failing test did, the rest of the session keeps torch's defaults."""
    saved = (torch.get_default_dtype(), torch.is_grad_enabled(),
             torch.are_deterministic_algorithms_enabled())
    yield
    torch.set_default_dtype(saved[0])
    torch.set_grad_enabled(saved[1])
    torch.use_deterministic_algorithms(saved[2])


@pytest.mark.parametrize("raises", [False, True], ids=["succeeds", "raises"])
@pytest.mark.parametrize("how", ["fake", "real", "fit"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_nested_containers_globals_and_torch_defaults_are_put_back(
        mode: str, how: str, raises: bool, torch_defaults_kept: Any) -> None:
    model = SideEffects(raises)
    before = deep_snapshot(model)
    global_state = GLOBAL_STATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how == "fit":
            run: Callable[[], Any] = lambda: sf.tracing.fit(model, "B 8", mode=mode)  # noqa: E731
        else:
            run = lambda: sf.trace(model, "B 8" if how == "fake" else (2, 8),  # noqa: E731
                                   mode=mode, real=how == "real")
        if raises:
            with pytest.raises(sf.SymflopsError, match="stops after the side effects"):
                run()
        else:
            assert run().params == 72
    assert_same(before, deep_snapshot(model))
    assert GLOBAL_STATE is global_state and "GLOBAL_NEW" not in globals()
    assert symbolic_left(model, GLOBAL_CACHE, GLOBAL_LIST) == []
    # the side effects are real: the same forward run for real does leave them
    with torch.no_grad(), contextlib.suppress(ValueError):
        model(torch.randn(2, 8))
    assert torch.get_default_dtype() == torch.float64 and model.deep["a"]["k"] is not None
    assert_changed = deep_snapshot(model)
    assert assert_changed["torch defaults"] != before["torch defaults"]
    GLOBAL_CACHE.update({"calls": 0, "inner": {"seen": []}})
    GLOBAL_CACHE.pop("last")
    GLOBAL_LIST.clear()
    globals()["GLOBAL_STATE"] = global_state
    globals().pop("GLOBAL_NEW")


def test_the_leftover_checker_sees_what_a_forward_leaves() -> None:
    """symbolic_left is not vacuous: a SymInt and a FakeTensor kept by hand are found."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    mode = FakeTensorMode(shape_env=ShapeEnv())
    fake = mode.from_tensor(torch.zeros(4, 3), symbolic_context=None)
    holder = {"deep": [types.SimpleNamespace(t=fake)]}
    assert symbolic_left(holder) == ["root0['deep'][0][t]: FakeTensor"]


def test_the_import_systems_objects_in_a_modules_globals_are_not_put_back() -> None:
    """What a module's dunders hold (``__loader__``, ``__builtins__``) is the import
    system's, not the model's state: under pytest 9.2 the test module's ``__loader__``
    reached the log records pytest was capturing, and putting them back erased the records
    the forward logged. A plain global container is still put back."""
    import sys

    module = types.ModuleType("symflops_test_loader_module")
    module.__loader__ = types.SimpleNamespace(records=[])  # like pytest's rewriting hook
    module.CACHE = []
    exec("import torch\n"
         "class Logs(torch.nn.Module):\n"
         "    def __init__(self):\n"
         "        super().__init__()\n"
         "        self.lin = torch.nn.Linear(8, 8)\n"
         "    def forward(self, x):\n"
         "        __loader__.records.append('logged')\n"
         "        CACHE.append(x)\n"
         "        return self.lin(x)\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        assert sf.trace(module.Logs(), "B 8").params == 72
    finally:
        del sys.modules[module.__name__]
    # the forward runs more than once (the B = 1 check): each log stays, the cache is as before
    assert module.__loader__.records and set(module.__loader__.records) == {"logged"}
    assert module.CACHE == []
