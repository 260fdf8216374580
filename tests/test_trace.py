"""sf.trace: input specs, the module tree, unknown ops, strict mode, model unchanged,
agreement with sf.nn, guards, fixed dims, aligned form."""

from __future__ import annotations

import copy
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import symflops as sf  # noqa: E402
from symflops import analysis as A  # noqa: E402
from symflops.symbols import B, H, N, W  # noqa: E402
from symflops.tracing import registry  # noqa: E402

try:  # python -m pytest (the repository root on sys.path)
    from tests import bruteforce as bf
except ImportError:  # plain pytest: tests/ itself is on sys.path
    import bruteforce as bf  # type: ignore[no-redef]


def torch_count(model, *args, **kwargs):
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*args, **kwargs)
    return fc.get_total_flops()


# ----------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec", ["B 3 H W", ("B", 3, "H", "W"), ["B", 3, "H", "W"],
                                  [("B", 3, "H", "W")]])
def test_input_spec_forms_give_the_same_formula(spec):
    net = nn.Conv2d(3, 4, 3, padding=1)
    c = sf.trace(net, spec, convention="macs")
    # 3*3*3 MACs per output, 4 output channels: 108 per pixel
    assert c.flops == 108 * B * H * W
    assert c.free_symbols == {B, H, W}


def test_a_name_used_twice_is_one_symbol():
    c = sf.trace(nn.Conv2d(3, 4, 3, padding=1), "B 3 H H", convention="macs")
    assert c.flops == 108 * B * H**2


def test_several_positional_and_keyword_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 5)

        def forward(self, x, y, *, z):
            return self.a(x) @ y.transpose(-1, -2) + z.sum()

    c = sf.trace(Two(), [("B", "N", 8), ("B", "M", 5), {"z": ("B",)}], convention="macs")
    # linear: B*N*8*5 MACs; (B, N, 5) @ (B, 5, M): B*N*M*5 MACs
    M = sf.symbols.symbol("M")
    assert sp.expand(c.flops - (40 * B * N + 5 * B * N * M)) == 0


def test_int_token_inputs_by_name_and_by_dtype():
    emb = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 4))
    a = sf.trace(emb, {"input": (("B", "N"), torch.long)}, convention="macs")
    assert a.flops == 64 * B * N
    b = sf.trace(emb, (("B", "N"), torch.long), convention="macs")
    assert b.flops == a.flops

    class ByName(nn.Module):
        def __init__(self):
            super().__init__()
            self.e = nn.Embedding(50, 16)

        def forward(self, input_ids):
            assert input_ids.dtype == torch.long
            return self.e(input_ids)

    assert sf.trace(ByName(), {"input_ids": ("B", "N")}).flops == 0


def test_bad_specs_raise_symflops_error():
    with pytest.raises(sf.SymflopsError):
        sf.trace(nn.Linear(2, 2), "B 2+1")
    with pytest.raises(sf.SymflopsError):
        sf.trace(nn.Linear(2, 2), "B 2", mode="predict")
    with pytest.raises(sf.SymflopsError):
        sf.trace(nn.Linear(2, 2), "B 2", hints={"B": 0})


# ----------------------------------------------------------------------------- tree
def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def test_tree_mirrors_modules_and_leaves_carry_derivations():
    c = sf.trace(_net(), "B 3 H W")
    paths = [p for p, _ in c.walk()]
    assert paths == ["", "0", "1", "2", "3", "3.0", "3.1", "4", "6"]  # Flatten is a view
    conv = c["0"]
    assert conv.layer == "Conv2d" and conv.params == 8 * 27
    d = conv.derivation
    # the general conv formula in canonical symbols, bound to this layer's values
    gen = {k: v.xreplace(d.bindings) for k, v in d.general.items()}
    assert all(sp.simplify(gen[k] - conv.work[k]) == 0 for k in conv.work)
    assert c.params == sum(p.numel() for p in _net().parameters())


def test_sf_nn_and_trace_agree_on_conv_bn_relu_in_every_convention():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                        nn.ReLU(), nn.MaxPool2d(2)).eval()
    sym = sf.nn.Sequential(sf.nn.Conv2d(3, 16, 3, stride=2, padding=1), sf.nn.BatchNorm2d(16),
                           sf.nn.ReLU(), sf.nn.MaxPool2d(2))
    for conv in ("exact", "torch", "macs"):
        a = sf.trace(net, "B 3 H W", convention=conv)
        b = sym.cost((B, 3, H, W), convention=conv)
        assert sp.simplify(a.flops - b.flops) == 0, conv
        assert a.params == b.params
        for (_, x), (_, y) in zip(a.leaves(), b.leaves(), strict=True):
            assert sp.simplify(x.flops - y.flops) == 0
            pairs = zip(x.output_shape, y.output_shape, strict=True)
            assert all(sp.simplify(p - q) == 0 for p, q in pairs)


def test_torch_convention_matches_flop_counter_and_macs_is_half():
    net = _net()
    c = sf.trace(net, "B 3 H W", convention="torch")
    for b, h, w in ((1, 32, 32), (2, 17, 40), (3, 9, 5)):
        ref = torch_count(net, torch.randn(b, 3, h, w))
        assert c.subs(B=b, H=h, W=w).flops == ref
        assert 2 * c.with_convention("macs").subs(B=b, H=h, W=w).flops == ref


# ----------------------------------------------------------------------------- unknown ops
class _Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.special.bessel_j0(self.lin(x))


def test_unknown_ops_are_reported_with_name_count_and_warning():
    with pytest.warns(UserWarning, match="bessel_j0"):
        c = sf.trace(_Odd(), "B 4")
    assert c.report.unknown["aten.special_bessel_j0"] == 1
    assert any("NOT counted" in n and "bessel_j0" in n for n in c.notes)
    assert c.report.unknown_at["aten.special_bessel_j0"] == ["(root)"]
    # the report stays with the cost through every transformation
    for derived in (c.subs(B=2), c.simplify(), c.with_convention("macs")):
        assert derived.report.unknown["aten.special_bessel_j0"] == 1
        assert any("bessel_j0" in n for n in derived.notes)


def test_strict_raises_on_unknown_ops():
    with pytest.raises(sf.SymflopsError, match="bessel_j0"):
        sf.trace(_Odd(), "B 4", strict=True)


def test_registry_refuses_duplicates_and_accepts_new_handlers():
    with pytest.raises(sf.SymflopsError):
        registry.register(torch.ops.aten.convolution)(lambda call: [])
    op = torch.ops.aten.special_bessel_j0

    @registry.register(op)
    def bessel(call):
        n = call.out[0].numel
        return [registry.Part({"activation": 20 * n}, {"activation": 20 * sf.symbols.M},
                              {sf.symbols.M: n}, "20 per element (series)")]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c = sf.trace(_Odd(), "B 4")
        assert c.work["activation"] == 80 * B
    finally:
        registry.unregister(op)


def test_zero_cost_ops_are_listed():
    c = sf.trace(_net(), "B 3 H W")
    assert c.report.zero_cost["aten.view"] >= 1
    assert "aten.view" in sf.tracing.handlers.describe()["zero_cost"]


# ----------------------------------------------------------------------------- model unchanged
def _state(model):
    return {
        "sd": {k: v.clone() for k, v in model.state_dict().items()},
        "params": [(id(p), p.requires_grad, p.grad) for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks),
                   len(m._backward_hooks)) for m in model.modules()],
        "names": [n for n, _ in model.named_parameters()],
        "buffers": [n for n, _ in model.named_buffers()],
    }


def _same(a, b):
    assert a["sd"].keys() == b["sd"].keys()
    assert all(torch.equal(a["sd"][k], b["sd"][k]) for k in a["sd"])
    assert a["params"] == b["params"]
    assert a["training"] == b["training"]
    assert a["hooks"] == b["hooks"]
    assert a["names"] == b["names"] and a["buffers"] == b["buffers"]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_model_unchanged_after_trace(mode):
    net = _net()
    net.train()  # BatchNorm in train mode would update running stats if run for real
    net[0].weight.requires_grad_(False)
    before = _state(net)
    sf.trace(net, "B 3 H W", mode=mode)
    _same(before, _state(net))
    assert torch.nn.modules.module._global_forward_hooks == {}
    assert torch.nn.modules.module._global_forward_pre_hooks == {}


def test_model_unchanged_after_a_trace_that_raised():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(4)

        def forward(self, x):
            x = self.bn(x)
            raise RuntimeError("boom")

    net = Boom()
    before = _state(net)
    with pytest.raises(sf.SymflopsError, match="boom"):
        sf.trace(net, "B 4", mode="train")
    _same(before, _state(net))
    with pytest.raises(sf.SymflopsError):
        sf.trace(_Odd(), "B 4", strict=True)
    assert torch.nn.modules.module._global_forward_hooks == {}


def test_trace_does_not_touch_a_deep_copy_equal_model():
    net = _net()
    ref = copy.deepcopy(net)
    sf.trace(net, "B 3 H W", mode="train")
    for (n1, p1), (n2, p2) in zip(net.state_dict().items(), ref.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


# ----------------------------------------------------------------------------- guards, fixed dims
def test_guards_become_validity():
    net = nn.Conv2d(3, 4, 7)
    c = sf.trace(net, "B 3 H W")
    assert sp.Ge(H, 7) in c.validity and sp.Ge(W, 7) in c.validity
    with pytest.raises(sf.SymflopsError):
        c.subs(H=5)


def test_a_dim_the_model_fixes_is_reported_and_substituted():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            torch._assert(x.shape[1] == 16, "needs 16 features")
            return self.fc(x)

    with pytest.warns(UserWarning, match="fixes F = 16"):
        c = sf.trace(Fixed(), "B F", hints={"F": 16}, convention="macs")
    assert c.report.fixed == {"F": 16}
    assert c.flops == 32 * B


def test_aligned_form_removes_floors():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2, padding=1))
    c = sf.trace(net, "B 3 H W", convention="macs")
    assert c.flops.has(sp.floor)
    multiples = A.total_stride(c)
    assert multiples == {H: 4, W: 4}
    al = A.aligned(c, multiples)
    assert not al.flops.has(sp.floor)
    # 216 MACs per pixel at H/2 x W/2, 576 per pixel at H/4 x W/4
    assert sp.expand(al.flops - (54 * B * H * W + 36 * B * H * W)) == 0
    for h in (32, 64, 96):
        assert al.subs(B=1, H=h, W=h).flops == c.subs(B=1, H=h, W=h).flops


# ----------------------------------------------------------------------------- fitted fallback
class _ValueBranch(nn.Module):
    """Control flow that reads values: fake tensors cannot follow it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x):
        y = self.a(x)
        if y.abs().sum() >= 0:  # always true, but only known from the values
            y = self.b(y)
        return y


@pytest.mark.slow  # a fit (7 s)
def test_symbolic_failure_is_a_clear_error_and_fit_recovers_an_exact_formula():
    net = _ValueBranch().eval()
    with pytest.raises(sf.SymflopsError, match="fit"):
        sf.trace(net, "B 3 H W")
    c = sf.tracing.fit(net, "B 3 H W", multiple=4, convention="torch", real=True)
    assert "FITTED" in c.notes[0] and "verified at" in c.notes[0]
    # a: 2*27*8 per pixel at H/2 x W/2; b: 2*72*8 per pixel at H/4 x W/4
    assert sp.expand(c.flops - (108 * B * H * W + 72 * B * H * W)) == 0
    for b, h, w in ((1, 64, 32), (2, 28, 100)):  # sizes not used for the fit
        assert c.subs(B=b, H=h, W=w).flops == torch_count(net, torch.randn(b, 3, h, w))
    assert sp.Ge(H, 8) in c.validity
    with pytest.warns(UserWarning, match="fitted"):
        d = sf.trace(net, "B 3 H W", convention="torch", fallback="fit")
    assert "FITTED" in d.notes[0] and d.layer == "Fitted"


@pytest.mark.parametrize("convention", ["exact", "torch", "macs"])
def test_sf_nn_and_trace_agree_on_a_transformer_mlp_and_attention(convention):
    mlp = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 16),
                        nn.Softmax(dim=-1)).eval()
    sym = sf.nn.Sequential(sf.nn.LayerNorm(16), sf.nn.Linear(16, 64), sf.nn.GELU(),
                           sf.nn.Linear(64, 16), sf.nn.Softmax(dim=-1))
    a = sf.trace(mlp, "B N 16", convention=convention)
    b = sym.cost((B, N, 16), convention=convention)
    assert sp.expand(a.flops - b.flops) == 0 and a.params == b.params
    # nn.MultiheadAttention's fast path (no_grad, self-attention, no weights returned) vs
    # sf.nn.MultiheadAttention: the same parts
    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    a = sf.trace(SelfAttention().eval(), "B N 32", convention=convention)["mha"]
    assert a.output_shape == (B, N, 32)
    b = sf.nn.MultiheadAttention(32, 4).cost((B, N, 32), convention=convention)
    assert sp.expand(a.flops - b.flops) == 0
    assert a.params == b.params == 4 * 32 * 32 + 4 * 32
    assert {"scores", "softmax", "context", "out_proj"} <= {c.name for c in a.children}


# ----------------------------------------------------------------------------- torch compat
def test_torch_compat_maps_torch_symbols_and_functions_to_plain_sympy():
    from symflops.tracing import _torch_compat as C

    env = C.SymEnv()
    h, w = env.symint("H", 224), env.symint("W", 224)
    assert env.symint("H", 99) is h  # one symbol per name
    smap = C.SymbolMap(env, {"H": H, "W": W})
    assert smap(C.sym_expr((h - 1) // 2 + 1)) == sp.floor((H - 1) / 2) + 1
    assert smap(C.sym_expr(h * w + 3)) == H * W + 3
    assert smap(C.sym_expr(h % 7)) == sp.Mod(H, 7)
    assert smap(C.sym_expr(-(-h // 4))) == -sp.floor(-H / 4)
    assert smap(5) == 5
    assert all(not s.name.startswith("s") for s in smap(C.sym_expr(h + w)).free_symbols)


def test_a_model_that_needs_other_hints_says_so():
    class Only32(nn.Module):
        def forward(self, x):
            torch._assert(x.shape[2] == 32, "needs 32x32")
            return x.relu()

    with pytest.raises(sf.SymflopsError, match="hints"):
        sf.trace(Only32(), "B 3 H W")
    with pytest.warns(UserWarning, match="fixes H = 32") as rec:
        c = sf.trace(Only32(), "B 3 H W", hints={"H": 32})
    assert rec[0].filename == __file__  # the warning points at the caller
    assert c.report.fixed == {"H": 32} and c.free_symbols == {B, W}


class PositionEmbedding(nn.Module):
    """A ViT-like stem: 4x4 patches plus a learned position embedding for 8x8 patches,
    which pins H = W = 32."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.pos = nn.Parameter(torch.zeros(1, 64, 16))

    def forward(self, x):
        return self.patch(x).flatten(2).transpose(1, 2) + self.pos


@pytest.mark.parametrize("values", [{"H": 64}, {"H": 64, "W": 64}, {"W": 16},
                                   {"H": 2 * N}, {"H": True}],
                         ids=["H=64", "H=W=64", "W=16", "H=2N", "H=True"])
def test_substituting_a_dim_the_model_fixed_to_another_value_raises(values):
    c = sf.trace(PositionEmbedding(), "B 3 H W", hints={"H": 32, "W": 32}, warn=False)
    assert c.report.fixed == {"H": 32, "W": 32}
    name = next(iter(values))
    with pytest.raises(sf.SymflopsError, match=f"the model fixes {name} = 32") as info:
        c.subs(**values)
    assert "fix:" in str(info.value) and "\n" not in str(info.value)
    if type(values[name]) is int:
        with pytest.raises(sf.SymflopsError, match=f"the model fixes {name} = 32"):
            c.evaluate(B=1, **{name: np.array([32, int(values[name])])})


def test_substituting_the_fixed_value_itself_is_fine():
    c = sf.trace(PositionEmbedding(), "B 3 H W", hints={"H": 32, "W": 32}, warn=False,
                 convention="macs")
    # 64 patches of 4*4*3 inputs to 16 channels: 64*48*16 MACs per image
    assert c.subs(B=2, H=32, W=32).flops == 2 * 64 * 48 * 16
    assert c.subs({H: 32, W: 32}).flops == c.flops == 64 * 48 * 16 * B
    assert c.evaluate(B=np.array([1, 2]), H=32, W=np.array([32, 32])).tolist() == \
        [64 * 48 * 16, 2 * 64 * 48 * 16]


class AssertsWidth(nn.Module):
    """Checks its input's width in Python before any op (as torchvision's ViT checks its
    image size), then one Linear."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 2)

    def forward(self, x):
        torch._assert(x.shape[1] == 16, "Wrong width!")
        return self.lin(x)


def test_a_failure_before_any_op_is_told_apart_from_an_op_failing():
    # the model's own assert at N = 32: no torch op ran, so rerouting F.interpolate
    # (the retry with resize=True) cannot change it
    with pytest.raises(sf.errors.SymbolicShapesFailed, match="Wrong width") as info:
        sf.trace(AssertsWidth(), "B N", hints={"N": 32}, warn=False)
    assert info.value.before_any_op
    # its inputs have no H or W: no image size is offered as the fix
    assert "hints=" not in str(info.value) and "fix some dims to ints" in str(info.value)
    # the message names the model's line that failed, not one of torch's
    line = AssertsWidth.forward.__code__.co_firstlineno + 1
    assert f"(at tests/test_trace.py:{line}: torch._assert(x.shape[1] == 16" in \
        str(info.value).replace(str(Path(__file__).parent.parent) + "/", "")
    # a broadcast that fails inside torch (64 patches of 4x4 expected, 256 given)
    with pytest.raises(sf.errors.SymbolicShapesFailed) as info:
        sf.trace(PositionEmbedding(), "B 3 H W", hints={"H": 64, "W": 64}, warn=False)
    assert not info.value.before_any_op
    assert "hints={'H': 32, 'W': 32}" in str(info.value)  # a size the model may accept
    # a model that declares the size it fails at (timm's pretrained_cfg): not offered again
    declares = PositionEmbedding()
    declares.pretrained_cfg = {"input_size": (3, 64, 64)}
    with pytest.raises(sf.errors.SymbolicShapesFailed) as info:
        sf.trace(declares, "B 3 H W", hints={"H": 64, "W": 64}, warn=False)
    assert "hints=" not in str(info.value) and "fix some dims to ints" in str(info.value)
    # at the width it accepts: N pinned, the retries at other widths fail as before;
    # 2 outputs of 16 inputs per row, B rows (MACs)
    c = sf.trace(AssertsWidth(), "B N", hints={"N": 16}, warn=False, convention="macs")
    assert c.report.fixed == {"N": 16} and c.flops == 32 * B


class Loops(nn.Module):
    """Ten million ops: far beyond any small budget (the budget stops it)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        for _ in range(10**7):
            x = x + 1
        return self.lin(x)


class SlowOnlySymbolically(nn.Module):
    """Loops only on symbolic sizes (standing for torch's symbolic reasoning exploding):
    concrete traces are quick, so the fitted fallback can answer."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        loops = 10**7 if isinstance(x.shape[1], torch.SymInt) else 1
        for _ in range(loops):
            x = x + 1
        return self.lin(x)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_spent_time_budget_is_one_error_naming_the_fixes(mode):
    with pytest.raises(sf.SymflopsError, match="time budget") as info:
        sf.trace(Loops(), "B N 8", mode=mode, time_budget=0.5)
    message = str(info.value)
    assert "time_budget=" in message and "fallback='fit'" in message and "\n" not in message


@pytest.mark.slow  # waits out a budget, then fits
def test_a_spent_time_budget_falls_back_to_the_fit_when_asked():
    with pytest.warns(UserWarning, match="time budget"):
        c = sf.trace(SlowOnlySymbolically(), "B N 8", convention="macs", time_budget=3,
                     fallback="fit")
    assert c.notes[0].startswith("FITTED")
    # Linear(8, 8) per token: 64 MACs; the one concrete x + 1 is not a MAC
    assert c.flops == 64 * B * N


@pytest.mark.slow  # waits out a budget, then fits
def test_the_fit_fallback_starts_without_the_spent_trace(monkeypatch):
    """The fit has a budget of its own: it must not pay for the spent trace's garbage (in
    the full suite, the collections that garbage set off made the 3 s fit above run out),
    and the spent trace's watchdog must not interrupt what runs after the fit."""
    import gc
    import threading

    from torch._subclasses.fake_tensor import FakeTensor

    from symflops.tracing import _guard, _tracer

    def fakes() -> int:
        return sum(type(o) is FakeTensor for o in gc.get_objects())

    seen = {}
    real_fallback = _tracer._fit_fallback

    def watched(*args, **kwargs):
        seen["fakes at the fit"] = fakes()
        seen["traceback"] = args[4].__traceback__
        cost = real_fallback(*args, **kwargs)
        seen["trace's watchdog after the fit"] = _guard._levels[threading.get_ident()][-1].due()
        return cost

    monkeypatch.setattr(_tracer, "_fit_fallback", watched)
    gc.collect()
    before = fakes()
    with pytest.warns(UserWarning, match="time budget"):
        c = sf.trace(SlowOnlySymbolically(), "B N 8", convention="macs", time_budget=1,
                     fallback="fit")
    assert c.flops == 64 * B * N
    # thousands of fake tensors were made in that second; none is left when the fit starts
    assert seen == {"fakes at the fit": before, "traceback": None,
                    "trace's watchdog after the fit": None}


@pytest.mark.parametrize("budget", [0, -1, float("nan"), float("inf"), "10", True],
                         ids=["zero", "negative", "nan", "inf", "str", "bool"])
def test_bad_time_budgets_are_refused(budget):
    with pytest.raises(sf.SymflopsError, match="time_budget must be a positive number"):
        sf.trace(nn.Linear(8, 8), "B 8", time_budget=budget)


def test_the_budget_is_checked_at_every_guard_torch_evaluates():
    from symflops.tracing import _torch_compat as C

    env = C.SymEnv()
    calls = []
    env.watch(lambda: calls.append("checked"))
    with env.mode:
        x = torch.empty(env.symint("H", 64))
        assert x.shape[0] >= 3  # a guard: torch evaluates it
    assert calls


class LogsLikeTorch(nn.Module):
    """Logs as torch's symbolic-shape reasoning does when a guard fails (an FFT model
    printed ~35 such lines), from an existing and from a new torch logger."""

    def forward(self, x):
        logging.getLogger("torch.fx.experimental.symbolic_shapes").warning("guard failed")
        logging.getLogger("torch._symflops_test_new_logger").error("new torch logger")
        logging.getLogger("user.model").warning("the user's own log")
        return torch.fft.rfft(x, dim=-1).abs()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record):
        self.seen.append(record.getMessage())


def test_torch_logs_are_silenced_during_a_trace_and_restored_after(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    torch_log = logging.getLogger("torch")
    collect = _Collect()  # beside torch's own handlers (they write to stderr)
    torch_log.addHandler(collect)
    shapes_log.addHandler(collect)
    try:
        before = (shapes_log.level, shapes_log.disabled, torch_log.level, torch_log.disabled,
                  [list(h.filters) for h in torch_log.handlers + logging.getLogger().handlers])
        sf.trace(LogsLikeTorch(), "B N", warn=False)
        out, err = capfd.readouterr()
        assert collect.seen == [] and "guard failed" not in out + err
        # the user's own log passes (once per run of the forward: a pinned trace is made
        # again at other example sizes), torch's does not
        assert {r.name for r in caplog.records} == {"user.model"}
        assert before == (shapes_log.level, shapes_log.disabled, torch_log.level,
                          torch_log.disabled, [list(h.filters) for h in
                                               torch_log.handlers + logging.getLogger().handlers])
        shapes_log.warning("after the trace")
        logging.getLogger("torch._symflops_test_new_logger").warning("new one after")
        assert collect.seen == ["after the trace", "new one after"]
    finally:
        torch_log.removeHandler(collect)
        shapes_log.removeHandler(collect)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.att = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 50)

    def forward(self, input_ids):
        x = self.emb(input_ids)
        y, _ = self.att(x, x, x, need_weights=False)
        return self.head(x + y)


@pytest.mark.parametrize("hints", [{"B": 1}, {"B": 1, "N": 1}, {"N": 1}],
                         ids=["B=1", "B=N=1", "N=1"])
def test_a_hint_of_one_is_only_an_example_and_pins_nothing(hints):
    # torch specializes sizes 0 and 1: a dim traced at 1 would come out fixed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "the model fixes ..." warning
        c = sf.trace(TinyLM(), {"input_ids": ("B", "N")}, hints=hints, convention="macs")
    assert not c.report.fixed and c.free_symbols == {B, N}
    assert c.flops == sf.trace(TinyLM(), {"input_ids": ("B", "N")}, convention="macs").flops
    # in and out projections 4*16*16, scores and A.V 2*16*N, head 16*50 per token
    assert sp.expand(c.flops - B * N * (4 * 16 * 16 + 2 * 16 * N + 16 * 50)) == 0


# ----------------------------------------------------------------------------- more layer types
def test_an_adaptive_pools_window_totals_stay_a_product():
    """AdaptiveAvgPool2d((7, 7)) sums every output's window, B*C*(rows)*(cols) with rows
    the 7 window lengths along H added up (14 roundings), cols the same along W. The two
    sums share no size, so expanding their product (196 terms, as VGG's formula read)
    makes nothing shorter: the formula keeps the product, and stays exact."""
    m = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d((7, 7)))
    c = sf.trace(m, "B 3 H W")
    pool = dict(c.leaves())["1"].flops
    assert sp.count_ops(pool) < 300 and sp.count_ops(c.flops) < 400  # expanded: 3,334
    torch_conv = sf.trace(m, "B 3 H W", convention="torch").flops  # FlopCounterMode: the conv
    for b, h, w in [(2, 37, 150), (1, 301, 89), (3, 1000, 14), (1, 13, 13)]:
        ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        counted, _, _ = bf.adaptive_pool((b, 4, ho, wo), "avg", (7, 7))  # window by window
        assert pool.subs({B: b, H: h, W: w}) == counted["pooling"]
        assert torch_conv.subs({B: b, H: h, W: w}) == torch_count(m, torch.randn(b, 3, h, w))


def test_many_layer_types_agree_with_sf_nn_in_every_convention():
    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU(),
        nn.ConvTranspose2d(8, 8, 2, stride=2), nn.Hardswish(), nn.LeakyReLU(),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d((3, 3)), nn.Sigmoid(), nn.Tanh(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 5), nn.Hardsigmoid(),
    ).eval()
    sym = sf.nn.Sequential(
        sf.nn.Conv2d(4, 8, 3, padding=1), sf.nn.GroupNorm(2, 8), sf.nn.SiLU(),
        sf.nn.ConvTranspose2d(8, 8, 2, stride=2), sf.nn.Hardswish(), sf.nn.LeakyReLU(),
        sf.nn.AvgPool2d(2), sf.nn.AdaptiveAvgPool2d((3, 3)), sf.nn.Sigmoid(), sf.nn.Tanh(),
        sf.nn.AdaptiveMaxPool2d(1), sf.nn.Flatten(), sf.nn.Linear(8, 5), sf.nn.Hardsigmoid(),
    )
    for conv in ("exact", "torch", "macs"):
        a = sf.trace(net, "B 4 H W", convention=conv)
        b = sym.cost((B, 4, H, W), convention=conv)
        assert not a.report.unknown
        assert a.params == b.params
        for h, w in ((12, 12), (17, 9), (30, 41)):
            assert a.subs(B=2, H=h, W=w).flops == b.subs(B=2, H=h, W=w).flops, (conv, h, w)
    c = sf.trace(net, "B 4 H W", convention="torch")
    assert c.subs(B=2, H=17, W=9).flops == torch_count(net, torch.randn(2, 4, 17, 9))


def test_interpolate_stays_symbolic():
    class Up(nn.Module):
        def forward(self, x):
            a = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            b = nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
            c = nn.functional.interpolate(x, size=(x.shape[2] * 3, 7), mode="bicubic")
            d = nn.functional.interpolate(x, scale_factor=1.5, mode="bilinear",
                                          align_corners=True)
            return a + b, c, d

    # torch 2.13's interpolate kernels would pin every dim to its example size;
    # symflops computes the output size itself and keeps B, H, W symbolic
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = sf.trace(Up(), "B 3 H W")
    assert c.free_symbols == {B, H, W} and not c.report.fixed
    h15, w15 = sp.floor(sp.Rational(3, 2) * H), sp.floor(sp.Rational(3, 2) * W)
    # nearest: no arithmetic; (bi)linear: 7 per output; bicubic: 31 per output; add: 1
    expected = (7 + 1) * B * 3 * 4 * H * W + 31 * B * 3 * 3 * H * 7 + 7 * B * 3 * h15 * w15
    assert sp.expand(c.work["elementwise"] - expected) == 0
    for h, w in ((10, 13), (7, 7)):
        outs = Up()(torch.randn(2, 3, h, w))
        for key, out in zip(("add", "upsample_bicubic2d", "upsample_bilinear2d_1"), outs,
                            strict=True):
            assert c[key].subs(B=2, H=h, W=w).output_shape == tuple(out.shape)


def test_divisibility_conditions_are_kept_as_validity_not_pins():
    class Skip(nn.Module):  # down by 2, up by 2, add the input: needs even H and W
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(3, 8, 3, 2, 1)
            self.up = nn.Conv2d(8, 3, 3, 1, 1)

        def forward(self, x):
            y = nn.functional.interpolate(self.down(x), scale_factor=2, mode="bilinear")
            return self.up(y) + x

    net = Skip()
    for mode in ("eval", "train"):
        c = sf.trace(net, "B 3 H W", mode=mode, convention="torch")
        assert c.free_symbols == {B, H, W} and not c.report.fixed
        # torch's Eq(2*floor((H - 1)/2) + 2, H), read as the lattice it is
        assert sp.Eq(sp.Mod(H, 2), 0) in c.validity and "H a multiple of 2" in str(c.domain)
        net.train(mode == "train")
        with FlopCounterMode(display=False) as fc:
            y = net(torch.randn(2, 3, 16, 22))
            if mode == "train":
                y.sum().backward()
        net.zero_grad(set_to_none=True)
        assert c.subs(B=2, H=16, W=22).flops == fc.get_total_flops()
        with pytest.raises(sf.SymflopsError, match="condition"):
            c.subs(H=15)


def test_torch_errors_name_the_users_dims_not_torchs():
    # a conv fed a 3-d input: torch's message names its internal symbols (s0, s1, ...);
    # the SymflopsError names the user's dims instead
    net = torch.nn.Conv2d(3, 8, 3)
    with pytest.raises(sf.SymflopsError) as info:
        sf.trace(net, "B 3 H")
    message = str(info.value)
    assert "B" in message and "H" in message
    assert re.search(r"\bs\d+\b", message) is None


def test_a_hint_for_no_input_dim_is_refused_not_ignored():
    # hints={"Q": 3} used to be dropped silently: a name the user passed must mean something
    with pytest.raises(sf.SymflopsError, match=r"hint .Q. names no dim of the inputs \(dims=B\)"):
        sf.trace(torch.nn.Linear(8, 4), "B 8", hints={"Q": 3})
    # exact: each of the 4 outputs per row is 8 multiplies + 7 adds + 1 bias add = 16
    assert sf.trace(torch.nn.Linear(8, 4), "B 8", hints={"B": 3}).flops == 64 * B


class _WeightNormed(nn.Module):
    """A conv under ``nn.utils.weight_norm`` (wav2vec2's positional conv): on CPU its
    weight comes from the fused ``aten._weight_norm_interface``, once reported as not
    counted."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.utils.weight_norm(nn.Conv1d(4, 6, 3), dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _WeightNormSpelledOut(nn.Module):
    """The same weight as torch's decomposition of the fused kernel computes it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(6, 4, 3))
        self.g = nn.Parameter(torch.randn(*[(6, 4, 3)[i] if i == dim else 1 for i in range(3)]))
        self.b = nn.Parameter(torch.randn(6))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = tuple(i for i in range(3) if i != self.dim)
        w = self.v * (self.g / self.v.norm(2, keep, keepdim=True))
        return nn.functional.conv1d(x, w, self.b)


@pytest.mark.parametrize("dim", [0, 2], ids=["dim0", "dim2"])
def test_weight_norm_counts_as_its_decomposition(dim: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weight_norm is deprecated for parametrizations
        fused = sf.trace(_WeightNormed(dim).eval(), "B 4 N", warn=False)
    assert fused.report.counted["aten._weight_norm_interface"] == 1 and not fused.report.unknown
    spelled = sf.trace(_WeightNormSpelledOut(dim).eval(), "B 4 N", warn=False)
    for conv in ("exact", "torch", "macs"):
        assert sp.expand(fused.with_convention(conv).flops -
                         spelled.with_convention(conv).flops) == 0, conv
    # by hand, dim 0: the norm of each of the 6 output slices over 4*3 = 12 values (3 per
    # value, as every norm here), 6 divides g / norm, 72 multiplies v * (g / norm)
    if dim == 0:
        extra = fused.with_convention("exact").flops - 144 * B * (N - 2)
        assert extra == 3 * 72 + 6 + 72


class _LegacyParameter(nn.Module):
    """XLNet's way: parameters made with the legacy ``torch.Tensor(d, h, k)`` constructor,
    which ignores ``torch.device("meta")`` and lands on the CPU, beside a Linear that is on
    meta; an einsum and adds join them. (Some of XLNet's own adds go through torch's
    reference implementation, which refuses the two devices: test_transformers_zoo.py
    traces XLNet itself.)"""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.q = nn.Parameter(torch.Tensor(8, 2, 4))
        self.r_bias = nn.Parameter(torch.Tensor(2, 4))
        nn.init.normal_(self.q)
        nn.init.normal_(self.r_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)  # on meta; q and r_bias on the CPU
        return torch.einsum("bnd,dhk->bnhk", h, self.q) + h.unflatten(-1, (2, 4)) + self.r_bias


def test_a_meta_model_with_parameters_left_on_the_cpu_traces_as_all_cpu() -> None:
    with torch.device("meta"):
        model = _LegacyParameter()
    assert {p.device.type for p in model.parameters()} == {"meta", "cpu"}
    before = {n: (p.device, p.shape) for n, p in model.named_parameters()}
    cost = sf.trace(model, "B N 8", convention="torch", warn=False)
    assert cost.free_symbols == {B, N}
    assert any("meta and on the CPU (q on the CPU" in n for n in cost.notes)
    # nothing of the model moved: the fake run only claims the CPU
    assert {n: (p.device, p.shape) for n, p in model.named_parameters()} == before
    # hand: the Linear 2*8*8 per token, the einsum 2*8*(2*4) per token (the bias add is
    # no FLOP under the torch convention): 256 B N
    assert cost.flops == 256 * B * N
    real = _LegacyParameter()
    for b, n in [(1, 3), (4, 37)]:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            real(torch.randn(b, n, 8))
        assert cost.subs(B=b, N=n).flops == fc.get_total_flops()
    # a model all on meta claims nothing else, and says nothing of devices
    with torch.device("meta"):
        plain = nn.Linear(8, 8)
    assert not any("on the CPU" in n for n in sf.trace(plain, "B 8", warn=False).notes)
