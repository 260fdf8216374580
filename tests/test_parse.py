"""The safe parser: what it accepts, what it refuses, and that nothing it sees executes."""

from __future__ import annotations

import builtins
import contextlib
import re
import time

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symflops.errors import SymflopsError
from symflops.parse import (
    MAX_DEPTH,
    MAX_DIMS,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_RANGE_POINTS,
    parse_assignments,
    parse_dims,
    parse_expr,
    parse_int,
    parse_name,
    parse_names,
    parse_range,
    parse_symbol,
)
from symflops.symbols import C_in, H, N, W, symbol


@pytest.fixture
def nothing_executes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make eval/exec and SymPy's string parser fail loudly if the parser calls them."""
    import sympy.parsing.sympy_parser as sympy_parser

    calls: list[str] = []

    def trap(name: str):  # type: ignore[no-untyped-def]
        def f(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(name)
            raise AssertionError(f"the parser called {name}")
        return f

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, trap(name))
    monkeypatch.setattr(sympy_parser, "parse_expr", trap("sympy parse_expr"))
    return calls


# --------------------------------------------------------------------------- accepted
@pytest.mark.parametrize("text, expected", [
    ("224", sp.Integer(224)),
    ("  2 * H * W ", 2 * H * W),
    ("C_in", C_in),
    ("(H - 1)/2 + 1", (H - 1) / 2 + 1),
    ("2**10", sp.Integer(1024)),
    ("-H**2", -(H**2)),          # ** binds tighter than unary minus, as in Python
    ("2**-1", sp.Rational(1, 2)),
    ("2**3**2", sp.Integer(512)),  # right associative: 2**(3**2)
    ("H/2*2", H),
    ("+-+H", -H),
    ("((H))", H),
])
def test_accepts_arithmetic(text: str, expected: sp.Expr, nothing_executes: list[str]) -> None:
    assert parse_expr(text) == expected
    assert nothing_executes == []


def test_names_become_canonical_or_new_positive_symbols() -> None:
    assert parse_expr("H") is H
    seq = parse_expr("seq")
    assert seq.is_Symbol and seq.is_positive and seq.is_integer
    assert seq == symbol("seq")


def test_restricted_names() -> None:
    names = {"H": H, "W": W}
    assert parse_expr("H*W", names) == H * W
    with pytest.raises(SymflopsError, match="unknown symbol 'X'.*H, W"):
        parse_expr("H*X", names)


# --------------------------------------------------------------------------- refused
HOSTILE = [
    "__import__('os')", "().__class__", "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1", "lambda x: x", "H.real", "'H'", '"H"', "1,2", "H if 1 else 2", "[1]",
    "{}", "H; import os", "import os", "exec('1')", "eval('1')", "open('/etc/passwd')",
    "2.0", "1e3", ".5", "H//2", "H%2", "~H", "H @ W", "H == 1", "H < 2", "not H",
    "H and W", "0x10", "1_000", "2H", "H(2)", "f(x)", "H[0]", "H=1", "H\n", "$H", "H!",
    "\\H", "`H`", "Ｈ", "é", "_H", "__H__", "H ** H", "2 ** 65", "H ** 0.5", "(", ")",
    "H +", "* H", "", "   ", "H H", "2 3", "()", "1/0", "H/(H-H)", "0**-1", "9**9**9",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_refuses_everything_else(text: str, nothing_executes: list[str]) -> None:
    with pytest.raises(SymflopsError) as info:
        parse_expr(text)
    assert "\n" not in str(info.value)  # one readable line
    assert "fix:" in str(info.value)
    assert nothing_executes == []


def test_limits() -> None:
    ok = "+".join(["H"] * (MAX_LENGTH // 2))
    assert parse_expr(ok) == (MAX_LENGTH // 2) * H
    with pytest.raises(SymflopsError, match="longer than"):
        parse_expr("H+" * MAX_LENGTH + "H")
    parse_expr("(" * MAX_DEPTH + "H" + ")" * MAX_DEPTH)
    with pytest.raises(SymflopsError, match="nested deeper"):
        parse_expr("(" * (MAX_DEPTH + 1) + "H" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(SymflopsError, match="nested deeper"):
        parse_expr("-" * (MAX_DEPTH + 1) + "H")
    assert parse_expr(f"H**{MAX_EXPONENT}") == H**MAX_EXPONENT
    with pytest.raises(SymflopsError, match="exponents"):
        parse_expr(f"H**{MAX_EXPONENT + 1}")
    with pytest.raises(SymflopsError, match="longer than 30 digits"):
        parse_expr("1" * 31)
    with pytest.raises(SymflopsError, match="larger than"):
        parse_expr("(2**64)**64")       # 2**4096: refused before it is computed
    with pytest.raises(SymflopsError, match="larger than"):
        parse_expr("(10**30)**30*(10**30)**30")
    with pytest.raises(SymflopsError):
        parse_expr(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fuzz
ALPHABET = "HWBN_12309+-*/() .,'\"=:;[]{}%~@!lambdimportos\t"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_fuzz_grammar_alphabet(text: str) -> None:
    try:
        result = parse_expr(text)
    except SymflopsError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(result, sp.Expr)
    # whatever parses is built only from integers, rationals and symbols
    for atom in result.atoms():
        assert isinstance(atom, (sp.Symbol, sp.Rational)), atom
    # and no character outside the grammar got through (letters only ever form names:
    # "lambda" or "import" alone are just symbols with those names)
    assert set(text) <= set("HWBN_0123456789+-*/() \tlambdimportos")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_any_text_never_crashes(text: str) -> None:
    calls: list[str] = []
    real_eval = builtins.eval
    builtins.eval = lambda *a, **k: calls.append("eval")  # type: ignore[assignment]
    try:
        parse_expr(text)
    except SymflopsError:
        pass
    finally:
        builtins.eval = real_eval
    assert calls == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_assignments_and_ranges_never_crash(text: str) -> None:
    for fn in (parse_assignments, parse_range, parse_names):
        with contextlib.suppress(SymflopsError):
            fn(text)


_syms = st.sampled_from([H, W, C_in, symbol("B")])
_leaf = st.one_of(_syms, st.integers(0, 10**6).map(sp.Integer))
_exprs = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: t[0] + t[1]),
        st.tuples(inner, inner).map(lambda t: t[0] * t[1]),
        st.tuples(inner, inner).map(lambda t: t[0] - t[1]),
        st.tuples(inner, st.integers(1, 9)).map(lambda t: t[0] / t[1]),
        st.tuples(inner, st.integers(0, 3)).map(lambda t: t[0] ** t[1]),
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(_exprs)
def test_round_trip_of_printed_expressions(expr: sp.Expr) -> None:
    text = str(expr)
    if len(text) > MAX_LENGTH or re.search(r"\d{31}", text):
        with pytest.raises(SymflopsError):  # past the limits: refused, never truncated
            parse_expr(text)
        return
    assert sp.simplify(parse_expr(text) - expr) == 0


# --------------------------------------------------------------------------- helpers
def test_parse_int_and_names() -> None:
    assert parse_int("7*32") == 224
    with pytest.raises(SymflopsError, match="integer"):
        parse_int("H")
    with pytest.raises(SymflopsError, match="integer"):
        parse_int("1/2")
    assert parse_name("C_in") == "C_in"
    assert parse_symbol("C_in") is C_in
    for bad in ("H W", "2", "H*2", "", "a.b"):
        with pytest.raises(SymflopsError):
            parse_name(bad)
    assert parse_names("H, W") == ["H", "W"]
    with pytest.raises(SymflopsError, match="repeated"):
        parse_names("H,H")


def test_parse_assignments() -> None:
    B = symbol("B")
    # a value naming an assigned name is resolved to its value, in any order
    assert parse_assignments("B=1, H=224, W=H") == {B: 1, H: 224, W: 224}
    assert parse_assignments("W=2*H, H=224") == {W: 448, H: 224}
    assert parse_assignments("N=H*W/256, H=W, W=32") == {N: 4, H: 32, W: 32}
    assert parse_assignments("W=H") == {W: H}  # H is not assigned: a tie, kept symbolic
    assert parse_assignments("H = 2**8") == {H: 256}
    with pytest.raises(SymflopsError, match="loop.*H -> W -> H"):
        parse_assignments("H=W, W=H")
    with pytest.raises(SymflopsError, match="loop.*H -> H"):
        parse_assignments("H=H+1")
    with pytest.raises(SymflopsError, match="B, with the names it uses replaced, has total "
                                            "degree above 64"):
        parse_assignments("A=H**64, B=A**2")  # each within limits, not once resolved
    with pytest.raises(SymflopsError, match="more than 16 terms together"):
        parse_assignments("M=(H+1)**3, N=(B+1)**7")  # 4 x 8 terms: a cost of M N has 32
    for bad in ("H", "H=1=2", "H=1,,W=2", "H=1,H=2", "=1", "H=", "H.x=1", "H=1;W=2"):
        with pytest.raises(SymflopsError):
            parse_assignments(bad)
    with pytest.raises(SymflopsError, match="unknown symbol 'Q'"):
        parse_assignments("Q=1", names={"H": H})


def test_parse_range() -> None:
    assert parse_range("64:1024:32")[:3] == [64, 96, 128]
    assert parse_range("64:1024:32")[-1] == 1024  # the stop is included when on the grid
    assert len(parse_range("64:1024:32")) == 31
    assert parse_range("1:5") == [1, 2, 3, 4, 5]
    assert parse_range("2**6:2**10:*2") == [64, 128, 256, 512, 1024]
    assert parse_range("224, 384") == [224, 384]
    assert parse_range("64:2**62:*2")[-1] == 2**62 and len(parse_range("64:2**62:*2")) == 57
    for bad in ("10:1", "1:10:0", "1:10:*1", "1:2:3:4", "a:b", "1.5:3", "1:10**9"):
        with pytest.raises(SymflopsError):
            parse_range(bad)


@pytest.mark.parametrize("text, message, fix", [
    ("64-1024", "'64-1024' is a subtraction, not a range", "64:1024:32"),
    ("224, 1024 - 64", "'1024 - 64' is a subtraction", "64:1024:32"),
    ("0:64:16", "sizes and must be positive (range=0:64:16, value=0)", "start the range at 1"),
    ("-5,8", "must be positive", "start the range at 1"),
    ("1:10**7", f"at most {MAX_RANGE_POINTS:,} points (range=1:10**7, points=10000000)",
     "larger step"),
    ("64:2**64:*2", "must fit int64 (range=64:2**64:*2, value=9223372036854775808)",
     "2**62"),
    ("1:2*10**6:2", "points=1000000", None),  # exactly the cap: accepted
    (",".join(["7"] * (MAX_RANGE_POINTS + 1)), "longer than", None),
], ids=["dash-is-not-a-range", "dash-in-a-list", "zero-start", "negative-value",
        "ten-million-points", "beyond-int64", "the-cap-itself", "list-too-long"])
def test_parse_range_refuses_with_the_fix(text: str, message: str, fix: str | None) -> None:
    if message == "points=1000000":
        assert len(parse_range(text)) == MAX_RANGE_POINTS
        return
    with pytest.raises(SymflopsError) as info:
        parse_range(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    if fix:
        assert fix in (info.value.fix or "")


def test_parse_dims() -> None:
    assert parse_dims("B 3 H W") == ["B", 3, "H", "W"]
    assert parse_dims("B, 2**3, N") == ["B", 8, "N"]
    with pytest.raises(SymflopsError, match=f"at most {MAX_DIMS} dims.*dims=65"):
        parse_dims(" ".join(["H"] * 65))
    with pytest.raises(SymflopsError, match="longer than"):
        parse_dims(" ".join(["H"] * 50_000))
    for bad in ("", "B 0 H", "B 3 H.x", "B 3*H"):
        with pytest.raises(SymflopsError):
            parse_dims(bad)


# --------------------------------------------------------------------------- size bounds
@pytest.mark.parametrize("text, message", [
    ("((I+1)**64)**64", "more than 16 terms"),
    ("((((H**64)**64)**64)**64)", "total degree above 64"),
    ("H**33*W**32", "total degree above 64"),
    ("(H*W)**33", "total degree above 64"),
    ("((H*W)**8)**8*H", "total degree above 64"),
    ("(H+W+B+C)**64", "more than 16 terms"),
    ("((H+1)*(W+1))**2*(N+1)**8", "more than 16 terms"),
    ("(H+W+1)**5", "more than 16 terms"),
    ("(2**64)**64", "number larger than 2**1024"),
    ("(10**30*H)**40", "number larger than 2**1024"),
    ("(H+1)**15*(3**60)**10*2**40", "number larger than 2**1024"),
], ids=["nested-power-of-a-sum", "nested-powers", "product-degree", "power-of-product",
        "nested-power-of-product",
        "power-of-a-long-sum", "product-of-powers-of-sums", "three-term-power-5",
        "nested-number-power",
        "coefficient-of-a-power", "big-coefficient-after-a-sum-power"])
def test_size_of_what_a_string_builds_is_bounded(text: str, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SymflopsError, match=re.escape(message)) as info:
        parse_expr(text)
    assert time.perf_counter() - start < 2.0  # a hang guard, generous: it answers at once
    assert "fix:" in str(info.value)


@pytest.mark.parametrize("text", ["H**64", "(H*W)**32", "(H+1)**15", "(H+W+1)**4",
                                  "((H+1)/(W+1))**2", "2**64*H**2", "(10**30)**10"],
                         ids=["power-at-the-limit", "product-at-the-limit", "sum-power-15",
                              "three-term-power", "ratio-power", "big-coefficient",
                              "301-digit-number"])
def test_within_the_bounds_is_accepted(text: str) -> None:
    e = parse_expr(text)
    assert sp.expand(e) == sp.expand(parse_expr(text))  # expanding it is quick
