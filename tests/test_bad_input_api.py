"""Bad input to the Python API (issue 13, the API side): each case gives one
``SymflopsError`` whose one-line message names the layer or the values and the fix, or the
exact right result. Nothing computes on a value that is not a size."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symflops as sf
from symflops import analysis as A
from symflops import nn
from symflops.errors import SymflopsError
from symflops.rendering import render
from symflops.symbols import B, H, W


def conv() -> sf.Cost:
    """Conv2d(3, 8, 3, stride=2, padding=1) on (B, 3, H, W): 2*27*8 = 432 FLOPs per output
    position (27 multiplies, 26 adds, 1 bias add per output channel)."""
    return nn.Conv2d(3, 8, 3, stride=2, padding=1).cost((B, 3, H, W))


def linear() -> sf.Cost:
    """Linear(8, 4) on (B, 8): 2*8*4 = 64 FLOPs per row."""
    return nn.Linear(8, 4).cost((B, 8))


def _reference(layer: str) -> sf.Cost:
    """The formula reference's example of ``layer``, in its general symbols."""
    from symflops.reference import EXAMPLES

    ex = EXAMPLES[layer]
    return ex.build().cost(ex.input_shape)


def net() -> sf.Cost:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1)).cost((B, 3, H, W))


#: id -> (call that must raise, regex the one-line message must match)
ERRORS: dict[str, tuple[Callable[[], Any], str]] = {
    # -- Cost.subs ------------------------------------------------------------------------
    "subs_unknown_name": (lambda: conv().subs(h=3),
                          r"Conv2d.*no symbol h.*fix: its symbols are: B, H, W"),
    "subs_unknown_symbol": (lambda: linear().subs({H: 3}), r"no symbol H.*symbols are: B"),
    "subs_conflict_symbol_and_name": (lambda: conv().subs({H: 32}, H=64),
                                      r"H is given two values \(H=32 and 64\).*one value"),
    "subs_maybe_nonpositive": (lambda: conv().subs(B=H - 1000),
                               r"cannot prove this value positive \(B=H - 1000\).*H \+ 1"),
    "subs_zero": (lambda: conv().subs(H=0), r"sizes must be positive \(H=0\).*>= 1"),
    # a padding may be 0 but not negative (subs took p=-1 and gave a count for it)
    "subs_negative_padding": (lambda: _reference("Conv2d").subs(p=-1),
                              r"p must be an integer >= 0 \(p=-1\).*>= 0"),
    "subs_negative": (lambda: linear().subs(B=-3), r"sizes must be positive \(B=-3\)"),
    "subs_fraction": (lambda: conv().subs(H=sp.Rational(1, 2)), r"must be integers \(H=1/2\)"),
    "subs_half_of_size": (lambda: conv().subs(H=W / 2), r"must be integers \(H=W/2\)"),
    "subs_plain_symbol_value": (lambda: conv().subs(H=sp.Symbol("x")),
                                r"not sizes.*fix: make them with sf\.symbols\.symbol\('x'\)"),
    "subs_plain_symbol_key": (lambda: conv().subs({sp.Symbol("H"): 32}),
                              r"different symbol from the cost's H.*sf\.symbols\.symbol\('H'\)"),
    "subs_sympy_float": (lambda: conv().subs(H=sp.Float(224)), r"not floats.*224, not 224\.0"),
    "subs_python_float": (lambda: conv().subs(H=224.0), r"not floats"),
    "subs_nan": (lambda: conv().subs(H=sp.nan), r"Conv2d.*H=nan"),
    "subs_oo": (lambda: conv().subs(H=sp.oo), r"sizes must be positive|integers.*H=oo"),
    "subs_bool": (lambda: conv().subs(H=True), r"an int, not a bool \(H=True\)"),
    "subs_numpy_bool": (lambda: conv().subs(H=np.bool_(True)), r"an int, not a bool"),
    "subs_string_value": (lambda: conv().subs(H="224"), r"ints or expressions.*parse_expr"),
    "subs_positional_text": (lambda: conv().subs("H=224"),  # type: ignore[arg-type]
                             r"values, not text.*parse_assignments"),
    "subs_positional_list": (lambda: conv().subs([("H", 2)]),  # type: ignore[arg-type]
                             r"a mapping of symbols to values \(got=list\)"),
    "subs_bad_key": (lambda: conv().subs({3: 4}), r"keys must be symbols or names"),
    # -- Cost[...] and Cost itself ---------------------------------------------------------
    "getitem_int": (lambda: net()[5], r"looked up by its path, a string \(key=5\).*fix"),
    "getitem_missing": (lambda: net()["9"], r"no child called '9'.*children are: 0, 1, 2"),
    "setattr": (lambda: setattr(conv(), "params", 0), r"immutable.*replace\(params=\.\.\.\)"),
    # -- evaluate: every point checked at once, the first bad one named --------------------
    "evaluate_negative": (lambda: linear().evaluate(B=np.array([1, -3, 2])),
                          r"Linear.*size B must be an integer >= 1 \(B=-3, index=\(1,\)\)"),
    "evaluate_zero_in_grid": (lambda: conv().evaluate(B=1, H=np.array([[4], [0]]),
                                                      W=np.array([[8, 9]])),
                              r"size H must be an integer >= 1 \(H=0, index=\(1, 0\)\)"),
    "evaluate_nan": (lambda: linear().evaluate(B=np.array([2.0, np.nan])),
                     r"size B must be an integer >= 1 .*\(B=nan, index=\(1,\)\)"),
    "evaluate_inf": (lambda: linear().evaluate(B=np.array([np.inf])),
                     r"size B must be an integer >= 1 .*\(B=inf, index=\(0,\)\)"),
    "evaluate_bool": (lambda: linear().evaluate(B=True),
                      r"size B must be an integer >= 1, not bool \(B=True\)"),
    "evaluate_none": (lambda: linear().evaluate(B=None),
                      r"size B must be an integer >= 1, not NoneType \(B=None\)"),
    "evaluate_shapes": (lambda: conv().evaluate(B=1, H=np.arange(1, 4), W=np.arange(1, 5)),
                        r"do not broadcast.*H=\(3,\), W=\(4,\)"),
    "evaluate_unknown_name": (lambda: linear().evaluate(B=1, h=2), r"no symbol h"),
    "evaluate_condition": (lambda: nn.Conv2d(3, 8, 5).cost((1, 3, H, W)).evaluate(
        H=np.array([9, 3]), W=7), r"condition.*fails \(H=3, W=7\)"),
    # -- analysis ----------------------------------------------------------------------------
    "sweep_too_many_points": (lambda: A.sweep(conv(), {"H": np.arange(1, 10**5 + 1),
                                                       "W": np.arange(1, 10**5 + 1)},
                                              at={"B": 1}),
                              r"10,000,000,000 points is over the limit of 10,000,000"),
    "sweep_negative": (lambda: A.sweep(conv(), {"H": [32, -32]}, at={"B": 1, "W": 8}),
                       r"size H must be an integer >= 1 \(H=-32, index=\(1,\)\)"),
    "sweep_unknown": (lambda: A.sweep(linear(), {"H": [1, 2]}), r"does not have.*H"),
    "sweep_float_at": (lambda: A.sweep(conv(), {"H": [8]}, at={"B": 2.5, "W": 8}),
                       r"sweep: sizes must be integers, not floats \(B=2\.5\)"),
    "sweep_text_values": (lambda: A.sweep(linear(), "B=1:4"),  # type: ignore[arg-type]
                          r"mappings of symbols to values"),
    "sweep_expression_zero": (lambda: A.sweep(2 * H, {"H": [0, 1]}),
                              r"size H must be an integer >= 1 \(H=0, index=\(0,\)\)"),
    "breakdown_negative": (lambda: A.breakdown(net(), {"B": 1, "H": -8, "W": 8}),
                           r"sizes must be positive \(H=-8\)"),
    "breakdown_text_value": (lambda: A.breakdown(net(), {"B": "1", "H": 8, "W": 8}),
                             r"ints or expressions.*parse"),
    "breakdown_condition": (lambda: A.breakdown(nn.Sequential(nn.Conv2d(3, 8, 5)).cost(
        (1, 3, H, W)), {"H": 3, "W": 8}), r"condition.*fails"),
    "term_breakdown_text": (lambda: A.term_breakdown(H**2 + H, "H", {"H": "2"}),
                            r"ints or expressions"),
    "compare_negative": (lambda: A.compare(H**2, H, "H", at={"W": -1}), r"positive"),
    "plot_missing_folder": (lambda: A.plot(conv(), "H", [8, 16], at={"B": 1, "W": 8},
                                           path="/nonexistent-folder/x.png"),
                            r"folder does not exist.*create /nonexistent-folder"),
    "plot_unknown_at": (lambda: A.plot(linear(), "B", [1, 2], at={"Q": 1}),
                        r"no curve has \(unknown=\['Q'\]\)"),
    # -- rendering -----------------------------------------------------------------------------
    "render_at_unknown_text": (lambda: render(conv(), "text", at="X=1"), r"X"),
    "render_at_list": (lambda: render(conv(), "text", at=[("H", 2)]),  # type: ignore[arg-type]
                       r"a mapping of symbols to values"),
    "render_at_negative": (lambda: render(conv(), "markdown", at={"H": -1}),
                           r"sizes must be positive \(H=-1\)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_one_clear_error(case: str) -> None:
    call, pattern = ERRORS[case]
    with pytest.raises(SymflopsError, match=pattern) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and "fix:" in text, text


#: id -> (call, the exact result)
RIGHT: dict[str, tuple[Callable[[], Any], Any]] = {
    # H + 1 and 2*H are provably positive integers: accepted, exact
    "subs_sum_of_sizes": (lambda: sp.expand(linear().subs(B=H + 1).flops), 64 * H + 64),
    "subs_double_size": (lambda: linear().subs(B=2 * H).flops, 128 * H),
    "subs_value_names_another_size": (lambda: conv().subs(W=H).output_shape[2:],
                                      (sp.floor((H - 1) / 2) + 1,) * 2),
    # the same value by Symbol and by name is not a conflict
    "subs_same_value_twice": (lambda: linear().subs({B: 3}, B=3).flops, 192),
    "subs_numpy_int": (lambda: linear().subs(B=np.int64(3)).flops, 192),
    # at= as text goes through symflops.parse (never sympify): the same as the mapping
    "render_at_text": (lambda: render(conv(), "text", at="B=1,H=32"),
                       render(conv(), "text", at={"B": 1, "H": 32})),
    "evaluate_object_ints": (lambda: linear().evaluate(B=np.array([2**40], dtype=object))
                             .tolist(), [64 * 2**40]),
    "breakdown_symbolic_value": (lambda: [str(s.value) for s in
                                          A.breakdown(linear().replace(name="x"), {B: H + 1})],
                                 ["64*(H + 1)"]),
}


@pytest.mark.parametrize("case", sorted(RIGHT))
def test_valid_input_gives_the_exact_result(case: str) -> None:
    call, expected = RIGHT[case]
    assert call() == expected


# ----------------------------------------------------------------------------- aligned
def _pool_after_stride() -> sf.Cost:
    """A stride-2 conv, then AdaptiveAvgPool2d(7): its pooling work has floors and ceilings
    over 7 (ceiling(3*H/7), ...) that weigh 0 under ``macs``, so the MACs alone need only
    multiples of 2 while the tree aligned node by node needs multiples of 2*7 = 14."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(7),
                         nn.Flatten(), nn.Linear(8 * 49, 10)).cost((B, 3, H, W),
                                                                    convention="macs")


def test_aligned_advice_and_alignment_agree() -> None:
    c = _pool_after_stride()
    answer = A.alignment(c, [H, W])
    assert answer == {H: 14, W: 14} == A.total_stride(c)
    al = A.aligned(c, answer)  # the advice works
    for h in (14, 28, 224):  # and is exact there
        assert al.subs(B=1, H=h, W=h).flops == c.subs(B=1, H=h, W=h).flops
    # the MACs alone need only multiples of 2: asking for that quantity says so
    assert A.alignment(c, [H, W], quantity="flops") == {H: 2, W: 2}
    with pytest.raises(SymflopsError, match=r"H = 2\*k does not remove every floor.*"
                                            r"take H a multiple of 14"):
        A.aligned(c, {H: 2, W: 2})


# ----------------------------------------------------------------------------- rendering
STRANGE_NAMES = {"line\nbreak": "line\\nbreak", "cr\r\nlf": "cr\\nlf", "pipe|x": "pipe",
                 "tick`s": "tick", "中文层": "中文层", "emoji😀": "emoji😀"}


def strange_cost() -> sf.Cost:
    return nn.Sequential({name: nn.Linear(4, 4) for name in STRANGE_NAMES}).cost((B, 4))


def test_markdown_rows_survive_newlines_pipes_and_backticks() -> None:
    from markdown_it import MarkdownIt

    text = render(strange_cost(), "markdown")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
    cells = [tokens[i + 2].content for i in rows[1:]]  # the first cell of each body row
    assert len(rows) == 1 + len(STRANGE_NAMES) + 1  # header, one row a module, the total
    for cell, shown in zip(cells, STRANGE_NAMES.values(), strict=False):
        assert shown in cell, (cell, shown)
    assert "line\nbreak" not in text and "\r" not in text


def _pdflatex() -> str:
    exe = shutil.which("pdflatex")
    if exe is None:  # the CI script installs texlive; a missing compiler is a failure
        pytest.fail("pdflatex not found: apt-get install texlive-latex-base "
                    "texlive-latex-recommended")
    return exe


@pytest.mark.parametrize("name", ["中文层", "emoji😀", "line\nbreak\n\nagain", "café×ü"])
def test_standalone_latex_of_any_module_name_compiles(name: str, tmp_path: Path) -> None:
    cost = nn.Sequential({name: nn.Linear(4, 4), "ok": nn.ReLU()}).cost((B, 4))
    tex = render(cost, "latex", standalone=True)
    assert tex.isascii() or set(tex) - set(map(chr, range(256))) == set()
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run([_pdflatex(), "-interaction=nonstopmode", "-halt-on-error",
                           "-no-shell-escape", "doc.tex"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert "Missing character" not in log
    if not name.isascii() and "é" not in name:
        assert "[U+" in tex  # transliterated with a visible marker, not dropped


# ----------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(b=st.integers(-10**6, 10**6), h=st.integers(-50, 400), w=st.integers(-50, 400))
def test_subs_evaluate_and_sweep_agree_or_all_refuse(b: int, h: int, w: int) -> None:
    """At any point, subs, evaluate and sweep give the same exact count, or all three
    refuse with one SymflopsError (a size below 1)."""
    c = conv()
    results = []
    for compute in (lambda: int(c.subs(B=b, H=h, W=w).flops),
                    lambda: int(c.evaluate(B=np.array([b]), H=h, W=w)[0]),
                    lambda: int(A.sweep(c, {"H": [h]}, at={"B": b, "W": w})
                                .results["flops"][0])):
        try:
            results.append(compute())
        except SymflopsError as e:
            assert "positive" in str(e) and "fix:" in str(e)
            results.append(None)
    valid = b >= 1 and h >= 1 and w >= 1
    assert results == ([results[0]] * 3 if valid else [None] * 3)
    if valid:  # 432 FLOPs per output position, outputs floor((h - 1)/2) + 1 per side
        assert results[0] == 432 * b * ((h - 1) // 2 + 1) * ((w - 1) // 2 + 1)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 12))
def test_subs_accepts_exactly_the_values_sympy_proves_positive(k: int) -> None:
    """``H + k`` and ``k*H`` are positive integers for every size H; ``H - k`` is not."""
    c = linear()
    assert sp.expand(c.subs(B=H + k).flops - 64 * (H + k)) == 0
    assert c.subs(B=k * H).flops == 64 * k * H
    with pytest.raises(SymflopsError, match="cannot prove"):
        c.subs(B=H - k)
