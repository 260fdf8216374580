"""Which conditions on data-dependent counts a detector's formula keeps: one that some
count values break is kept, one every value meets is left out; a counterexample among the
counts' least values settles it without SymPy's simplify (SSD's 90 per-class counts)."""

from __future__ import annotations

import pytest
import sympy as sp

pytest.importorskip("torch")

from symflops.tracing._data_dependent import _always, _fails_somewhere  # noqa: E402

counts = sp.symbols("n1:91", integer=True, nonnegative=True)
R = sp.Symbol("R", integer=True, positive=True)


@pytest.mark.parametrize("cond, always", [
    (sp.Ne(sp.Add(*(sp.Min(300, n) for n in counts)), 0), False),  # no detection at all
    (sp.Ne(counts[0], 0), False),
    (counts[0] >= 1, False),
    (sp.Ne(counts[0] + 1, 0), True),
    (4 * counts[0] >= 0, True),
    (sp.Min(300, counts[0]) <= counts[0], True),
    (sp.Ne(R, 0), True),  # a positive count
    (R >= 2, False),
], ids=["sum-of-cuts-not-0", "count-not-0", "count-at-least-1", "count-plus-1-not-0",
        "scaled-count-not-negative", "cut-at-most-count", "positive-count-not-0",
        "positive-count-at-least-2"])
def test_a_condition_is_left_out_only_when_every_count_meets_it(cond: sp.Basic,
                                                               always: bool) -> None:
    assert _always(cond) is always
    if always:  # a condition that always holds has no counterexample to find
        assert not _fails_somewhere(cond)


def test_a_counterexample_spares_simplify_on_ninety_counts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # SymPy's simplify took 8 s on this condition of SSD's postprocessing; the counts at 0
    # break it, and simplify is not asked
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("simplify was called")

    cond = sp.Ne(sp.Add(*(sp.Min(300, n) for n in counts)), 0)
    monkeypatch.setattr(sp.Basic, "simplify", refuse)
    assert _fails_somewhere(cond) and not _always(cond)


def test_a_subexpression_is_converted_once_per_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # SSD sums Min(300, n_c) over its 90 classes in several expressions; each Min was built
    # anew in SymPy for each (995 Mins at 3.7 ms, 91 distinct)
    from torch.utils._sympy.functions import Min as TorchMin

    from symflops.tracing import _torch_compat as C

    env = C.SymEnv()
    h = env.symint("H", 8)
    u = env.shape_env.create_unbacked_symint()  # a data-dependent count
    cut = TorchMin(300, u.node.expr)
    made: list[tuple[sp.Expr, ...]] = []
    monkeypatch.setitem(C._FUNCS, TorchMin, lambda *a: made.append(a) or sp.Min(*a))
    smap = C.SymbolMap(env, {"H": sp.Symbol("H", integer=True, positive=True)})
    first, second = smap(cut + h.node.expr), smap(2 * cut + 1)
    assert len(made) == 1
    n = next(iter(first.atoms(sp.Min))).args[1]
    assert first == sp.Min(300, n) + sp.Symbol("H", integer=True, positive=True)
    assert second == 2 * sp.Min(300, n) + 1
    env.close()
