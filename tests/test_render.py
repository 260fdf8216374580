"""Rendering: golden files per format, LaTeX that compiles, Markdown tables that parse.

Regenerate the golden files after an intended change to the output:

    SYMFLOPS_UPDATE_GOLDEN=1 python -m pytest tests/test_render.py

then review ``git diff tests/golden`` (and run the tests again without the variable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sympy as sp

import symflops as sf
from symflops.errors import SymflopsError
from symflops.notation import format_number, latex_escape, markdown_code
from symflops.rendering import (
    Format,
    build_context,
    get_format,
    register_format,
    render,
    unregister_format,
)
from symflops.symbols import B, H, L, N, W, dim, heads

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("SYMFLOPS_UPDATE_GOLDEN") == "1"

#: module names with every LaTeX special character, a Markdown pipe and code fence
SPECIAL_NAMES = ("layer1.0.conv_1", "bn#2&%", "act~^\\{x}", "pool$|<>`")


def conv_cost() -> sf.Cost:
    return sf.nn.Conv2d(3, 64, 7, stride=2, padding=3).cost((B, 3, H, W))


def cnn_cost() -> sf.Cost:
    conv, bn, act, pool = SPECIAL_NAMES
    net = sf.nn.Sequential({
        conv: sf.nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
        bn: sf.nn.BatchNorm2d(16),
        act: sf.nn.ReLU(),
        pool: sf.nn.MaxPool2d(2),
        "res": sf.nn.Residual(sf.nn.Sequential(sf.nn.Conv2d(16, 16, 3, padding=1),
                                               sf.nn.ReLU())),
        "head": sf.nn.Sequential(sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(),
                                 sf.nn.Linear(16, 10)),
    })
    return net.cost((B, 3, H, W))


def transformer_cost() -> sf.Cost:
    return sf.nn.Repeat(sf.nn.TransformerBlock(dim, heads), L).cost((B, N, dim))


def long_cost() -> sf.Cost:
    """11 blocks of two layers: 33 rows, more than a LaTeX float holds (a longtable)."""
    blocks = [sf.nn.Sequential(sf.nn.Conv2d(8, 8, 3, padding=1), sf.nn.ReLU())
              for _ in range(11)]
    return sf.nn.Sequential(*blocks).cost((1, 8, 32, 32))


AT_224 = {"B": 1, "H": 224, "W": 224}

#: name -> (cost factory, render keyword arguments)
CASES: dict[str, tuple[Callable[[], sf.Cost], dict]] = {
    "conv": (conv_cost, {"at": AT_224}),
    "cnn": (cnn_cost, {}),
    "cnn_macs_si_depth1": (cnn_cost, {"at": {"B": 8, "H": 224, "W": 224}, "numbers": "si",
                                      "depth": 1, "convention": "macs"}),
    "transformer": (transformer_cost, {"convention": "torch"}),
    "long_table": (long_cost, {"numbers": "si", "derivations": False, "fold": False}),
    # the same 11 identical blocks folded into one row (x11): the default
    "long_table_folded": (long_cost, {"numbers": "si", "derivations": False}),
    "transformer_at": (transformer_cost, {"at": {"B": 1, "N": 197, "dim": 768, "heads": 12,
                                                 "L": 12}}),
}
SUFFIX = {"markdown": "md", "latex": "tex", "json": "json", "text": "txt"}


def _render_case(case: str, fmt: str) -> str:
    factory, kwargs = CASES[case]
    extra = {"standalone": True} if fmt == "latex" else {}
    return render(factory(), fmt, **kwargs, **extra)


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, fmt: str) -> None:
    out = _render_case(case, fmt)
    path = GOLDEN / f"{case}.{SUFFIX[fmt]}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert path.exists(), "golden file missing: run with SYMFLOPS_UPDATE_GOLDEN=1"
    assert out == path.read_text(encoding="utf-8"), (
        f"{path} differs; if intended, regenerate: SYMFLOPS_UPDATE_GOLDEN=1 python -m pytest "
        "tests/test_render.py")
    # the same call twice in one process gives the same bytes
    assert _render_case(case, fmt) == out


def test_output_identical_across_processes_and_hash_seeds() -> None:
    here = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {here!r}); import test_render as t; "
            "sys.stdout.write(t._render_case('cnn', 'latex') + t._render_case('cnn', 'json'))")
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0] == outs[1]
    assert outs[0] == _render_case("cnn", "latex") + _render_case("cnn", "json")


# ----------------------------------------------------------------------------- LaTeX
def _pdflatex() -> str:
    exe = shutil.which("pdflatex")
    if exe is None:  # the CI script installs texlive; a missing compiler is a failure
        pytest.fail("pdflatex not found: apt-get install texlive-latex-base "
                    "texlive-latex-recommended")
    return exe


@pytest.mark.parametrize("case", sorted(CASES))
def test_latex_golden_compiles(case: str, tmp_path: Path) -> None:
    src = GOLDEN / f"{case}.tex"
    (tmp_path / "doc.tex").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run([_pdflatex(), "-interaction=nonstopmode", "-halt-on-error",
                           "-no-shell-escape", "doc.tex"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    assert "Missing character" not in log  # every special character was escaped to a glyph


def test_latex_escapes_every_special_character() -> None:
    # each special character becomes its escape; the original is gone from the text
    assert latex_escape("a_b") == r"a\_b"
    assert latex_escape("50% & #1") == r"50\% \& \#1"
    assert latex_escape("{x}") == r"\{x\}"
    assert latex_escape("~^") == r"\textasciitilde{}\textasciicircum{}"
    assert latex_escape("\\") == r"\textbackslash{}"
    assert latex_escape("$|<>") == r"\$\textbar{}\textless{}\textgreater{}"


def test_latex_module_names_escaped_in_output() -> None:
    out = render(cnn_cost(), "latex")
    assert r"\texttt{layer1.0.conv\_1}" in out
    assert r"\texttt{bn\#2\&\%}" in out
    assert r"\texttt{act\textasciitilde{}\textasciicircum{}\textbackslash{}\{x\}}" in out
    for raw in SPECIAL_NAMES:
        assert raw not in out
    # math uses the canonical LaTeX names, not Python identifiers
    c = sf.nn.Conv2d(sf.symbols.C_in, sf.symbols.C_out, sf.symbols.K, stride=2).cost(
        (B, sf.symbols.C_in, H, W))
    tex = render(c, "latex")
    assert r"C_{\mathrm{in}}" in tex and "C_in" not in tex.replace(r"C\_in", "")
    assert r"\left\lfloor" in tex and r"\right\rfloor" in tex
    assert r"\begin{align*}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\documentclass" not in tex
    assert r"\begin{tabular}" in tex and "longtable" not in tex
    long = render(long_cost(), "latex", fold=False)
    assert r"\begin{longtable}" in long and r"\endhead" in long and "tabular" not in long
    assert r"\documentclass" in render(c, "latex", standalone=True)


# ----------------------------------------------------------------------------- Markdown
def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table in ``text`` as rows of cell texts, parsed by markdown-it-py."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables: list[list[list[str]]] = []
    row: list[str] | None = None
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            assert row is not None
            row.append(tokens[i + 1].content if tokens[i + 1].type == "inline" else "")
        elif tok.type == "tr_close":
            assert row is not None
            tables[-1].append(row)
    return tables


def _count_rows(cost: sf.Cost, depth: int | None, fold: bool = True) -> int:
    """Rows of the per-layer table: every node down to ``depth`` below the root (module
    names may contain dots, so count tree levels, not dots); with ``fold`` a sibling
    numbered next after the previous one and equal to it in every total (and with as many
    nodes below) adds no row."""
    if not cost.children:
        return 1

    def same(a: sf.Cost, b: sf.Cost) -> bool:  # b follows a: 3 after 2 (Sequential indices)
        numbered = a.name.isdigit() and b.name.isdigit() and int(b.name) == int(a.name) + 1
        return numbered and (a.spec, a.params, a.macs, a.flops, len(list(a.walk()))) == (
            b.spec, b.params, b.macs, b.flops, len(list(b.walk())))

    def below(node: sf.Cost, level: int) -> int:
        if depth is not None and level >= depth:
            return 0
        kids = node.children
        return sum(1 + below(c, level + 1) for i, c in enumerate(kids)
                   if not (fold and i and same(kids[i - 1], c)))

    return below(cost, 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_markdown_tables_parse(case: str) -> None:
    factory, kwargs = CASES[case]
    cost = factory()
    text = render(cost, "markdown", **kwargs)
    tables = markdown_tables(text)
    assert len(tables) == 1
    header, *body = tables[0]
    label = cost.with_convention(kwargs.get("convention", "exact")).convention.label
    assert header[0] == "module" and header[-2] == label and header[-1] == "share"
    assert all(len(r) == len(header) for r in body)
    expected_rows = _count_rows(cost, kwargs.get("depth"), kwargs.get("fold", True))
    assert len(body) == expected_rows + 1  # + the total row
    assert body[-1][0] == "**total**"


def test_markdown_special_names_stay_in_one_cell() -> None:
    tables = markdown_tables(render(cnn_cost(), "markdown"))
    first_cells = [r[0] for r in tables[0][1:]]
    # each module name (pipes, backticks, $ ...) is one code-span cell
    for name in SPECIAL_NAMES:
        assert any(name in cell for cell in first_cells), name
    assert markdown_code("a`b|c") == "``a`b\\|c``"


def test_macs_convention_never_says_flops() -> None:
    out = render(cnn_cost(), "markdown", convention="macs", at=AT_224)
    header = markdown_tables(out)[0][0]
    assert header == ["module", "type", "output shape", "params", "MACs", "share"]
    assert "FLOPs" not in out.replace("FLOPs (exact)", "")  # no FLOPs label at all
    assert "FLOPs" not in out
    text = render(cnn_cost(), "text", convention="macs")
    assert "FLOPs" not in text and "MACs" in text


def test_every_format_names_its_convention() -> None:
    c = cnn_cost()
    for fmt in ("markdown", "latex", "text"):
        for name in ("exact", "torch", "macs"):
            label = sf.get_convention(name).label
            assert label in render(c, fmt, convention=name, derivations=False), (fmt, name)
    doc = json.loads(render(c, "json", convention="torch"))
    assert doc["convention"]["label"] == "FLOPs (torch)"


# ----------------------------------------------------------------------------- content
def test_derivation_steps_general_substituted_simplified_value() -> None:
    text = render(conv_cost(), "text", at=AT_224)
    # 2 C_in C_out K^2 H_out W_out per image: the general exact formula (bias cancels the -1)
    assert "FLOPs (exact) = 2*B*C_in*C_out*H_out*K**2*W_out    [general]" in text
    # H_out = floor((H + 6 - 6 - 1)/2) + 1 = floor((H - 1)/2) + 1, shown as ceiling(H/2)
    assert "= 2*B*3*64*ceiling(H/2)*7**2*ceiling(W/2)    [substituted]" in text
    # 2*3*64*49 = 18816 per output position
    assert "= 18816*B*ceiling(H/2)*ceiling(W/2)    [simplified]" in text
    exact = render(conv_cost(), "text", at=AT_224, exact=True)
    assert "= 2*B*3*64*(floor(H/2 - 1/2) + 1)*7**2*(floor(W/2 - 1/2) + 1)    [substituted]" \
        in exact
    assert "= 18816*B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1)    [simplified]" in exact
    # 18816 * 112 * 112 = 236,027,904
    assert "= 236027904    [value]" in text
    # params: C_out (C_in K^2 + 1) = 64 * (3*49 + 1) = 9472
    assert "params        = C_out*(C_in*K**2 + 1)    [general]" in text
    assert "9,472" in text


def test_numbers_grouped_plain_and_si() -> None:
    c = conv_cost()
    # 236,027,904 FLOPs at 224x224, batch 1
    assert "236,027,904" in render(c, "text", at=AT_224)
    assert "236 M" in render(c, "text", at=AT_224, numbers="si")
    assert "236027904" in render(c, "text", at=AT_224, numbers="plain")
    assert "236,027,904" not in render(c, "text", at=AT_224, numbers="plain")
    assert format_number(4_089_184_256, "si") == "4.09 G"
    with pytest.raises(SymflopsError, match="number style"):
        render(c, "text", numbers="dots")


def test_depth_folds_children_into_parent_rows() -> None:
    c = cnn_cost()
    full = markdown_tables(render(c, "markdown"))[0]
    top = markdown_tables(render(c, "markdown", depth=1))[0]
    assert len(top) == 1 + len(c.children) + 1
    assert len(full) == 1 + sum(1 for p, _ in c.walk() if p) + 1
    folded = [r for r in top if "(folded)" in r[1]]
    assert [r[0] for r in folded] == ["`res`", "`head`"]
    with pytest.raises(SymflopsError, match="depth"):
        render(c, "markdown", depth=0)


def test_repeat_with_symbolic_count_shows_times_L_and_share() -> None:
    c = transformer_cost()
    text = render(c, "text")
    assert "TransformerBlock x L" in text
    md = render(c, "markdown")
    assert r"TransformerBlock $\times L$" in md
    # the repeated block is the whole model: share 100 %
    row = [r for r in markdown_tables(md)[0] if r[0] == "`block`"][0]
    assert row[-1] == "100.0 %"


def test_share_adds_up_over_top_level_rows() -> None:
    c = cnn_cost()
    ctx_rows = build_context(c, at=AT_224, depth=1)["rows"]
    assert sum(r["share"] for r in ctx_rows) == pytest.approx(1.0)
    # the shares are FLOPs ratios: conv_1 = 848 * 112 * 112 / total
    total = int(c.subs(**AT_224).flops)
    assert ctx_rows[0]["share"] == pytest.approx(848 * 112 * 112 / total)


# ----------------------------------------------------------------------------- JSON
def _nodes(node: dict) -> list[dict]:
    return [node] + [n for c in node.get("children", []) for n in _nodes(c)]


def test_json_round_trips_expressions_and_values() -> None:
    c = cnn_cost()
    doc = json.loads(render(c, "json", at=AT_224))
    nodes = _nodes(doc["tree"])
    assert len(nodes) == sum(1 for _ in c.walk())
    at_c = c.subs(**AT_224)
    for (path, orig), (_, sub), node in zip(c.walk(), at_c.walk(), nodes, strict=True):
        assert node["path"] == path
        for q in ("params", "macs", "flops"):
            rebuilt = sp.sympify(node[q]["expr"]["srepr"])  # our own trusted file
            assert sp.simplify(rebuilt - getattr(orig, q)) == 0, (path, q)
            assert node[q]["value"]["int"] == int(getattr(sub, q)), (path, q)
        assert [sp.sympify(s["srepr"]) for s in node["output_shape"]] == list(orig.output_shape)
    assert doc["at"] == {"B": {"int": 1, "latex": "1", "srepr": "Integer(1)", "str": "1"},
                         "H": {"int": 224, "latex": "224", "srepr": "Integer(224)",
                               "str": "224"},
                         "W": {"int": 224, "latex": "224", "srepr": "Integer(224)",
                               "str": "224"}}


def test_json_keeps_derivations_and_symbols_assumptions() -> None:
    doc = json.loads(render(conv_cost(), "json"))
    d = doc["tree"]["derivation"]
    flops = sp.sympify(d["general_flops"]["srepr"])
    assert flops.free_symbols and all(s.is_integer and s.is_positive for s in flops.free_symbols)
    assert d["bindings"]["K"]["int"] == 7


# ----------------------------------------------------------------------------- API
def test_format_builtin_and_aliases() -> None:
    c = conv_cost()
    assert format(c, "latex") == render(c, "latex") == render(c, "tex")
    assert format(c, "md") == render(c, "markdown")
    assert format(c, "txt") == render(c, "text")
    assert format(c, "") == repr(c)
    assert sf.render(c, "text") == render(c, "text")  # sf.render is callable however imported
    with pytest.raises(SymflopsError, match="unknown render format"):
        render(c, "html")
    with pytest.raises(SymflopsError, match="takes a Cost"):
        render("Conv2d", "markdown")  # type: ignore[arg-type]


def test_jupyter_reprs() -> None:
    c = cnn_cost()
    tex = c._repr_latex_()
    # display math as \[ ... \] (issue 11: never the plain-TeX $$ in LaTeX)
    assert tex.startswith("\\[\n\\begin{aligned}") and tex.rstrip().endswith("\\]")
    assert "$$" not in tex
    assert r"\text{FLOPs (exact)}" in tex and r"\text{params}" in tex
    md = c._repr_markdown_()
    assert len(markdown_tables(md)[0]) == 1 + len(c.children) + 1  # depth 1


def test_new_format_is_a_template_and_one_line(tmp_path: Path) -> None:
    (tmp_path / "cost.csv.j2").write_text(
        "path,{{ label }}\n{% for r in rows %}{{ r.path }},{{ r.flops | cell }}\n{% endfor %}")
    text = get_format("text")
    fmt = register_format(Format("csv_test", "cost.csv.j2", math=text.math, text=str, code=str,
                                 aliases=("csv",)))
    try:
        assert fmt is get_format("csv_test") is get_format("csv")
        out = render(cnn_cost(), "csv", at=AT_224, template_dir=tmp_path)
        lines = out.splitlines()
        assert lines[0] == "path,FLOPs (exact)"
        # 848 FLOPs per output position, 112 x 112 positions
        assert lines[1] == f"layer1.0.conv_1,{848 * 112 * 112:,}"
        with pytest.raises(SymflopsError, match="already registered"):
            register_format(Format("csv_test", "x.j2", math=str, text=str, code=str))
    finally:
        unregister_format("csv_test")
    with pytest.raises(SymflopsError, match="unknown render format"):
        get_format("csv")
    with pytest.raises(SymflopsError, match="built-in"):
        unregister_format("latex")


def test_strict_undefined_raises(tmp_path: Path) -> None:
    (tmp_path / "cost.md.j2").write_text("{{ rows | length }} {{ no_such_variable }}\n")
    with pytest.raises(SymflopsError, match="undefined variable.*no_such_variable"):
        render(conv_cost(), "markdown", template_dir=tmp_path)
    # an attribute missing from a row is an error too, not blank output
    (tmp_path / "cost.md.j2").write_text("{% for r in rows %}{{ r.nonexistent }}{% endfor %}")
    with pytest.raises(SymflopsError, match="undefined"):
        render(conv_cost(), "markdown", template_dir=tmp_path)


def test_user_template_dir_overrides_builtin(tmp_path: Path) -> None:
    (tmp_path / "cost.tex.j2").write_text(
        "{% for r in rows %}{{ r.path | code }} & {{ r.flops | cell }}\\\\\n{% endfor %}")
    out = render(cnn_cost(), "latex", at=AT_224, template_dir=tmp_path)
    assert out.splitlines()[0] == r"\texttt{layer1.0.conv\_1} & 10,637,312\\"
    with pytest.raises(SymflopsError, match="not a folder"):
        render(conv_cost(), "latex", template_dir=tmp_path / "missing")


def test_every_registered_format_has_its_builtin_template() -> None:
    from symflops.rendering import formats
    from symflops.rendering._environment import builtin_loader, template_environment

    loader = builtin_loader()
    env = template_environment()
    for name, fmt in formats().items():
        source, _, _ = loader.get_source(env, fmt.template)
        assert source.strip(), name
    assert loader.get_source(env, "reference.md.j2")[0].startswith("{#-")


def test_partial_at_keeps_remaining_symbols_and_shares() -> None:
    # H = W = 224 but B left symbolic: every FLOPs count is a multiple of B, so the shares
    # are still numbers; conv_1: 848 * 112 * 112 = 10,637,312 per image
    ctx = build_context(cnn_cost(), at={"H": 224, "W": 224}, depth=1)
    first = ctx["rows"][0]
    assert first["flops"].value == 10_637_312 * B
    total = ctx["total"]["flops"].value
    assert first["share"] == pytest.approx(float(10_637_312 * B / total))
    assert sum(r["share"] for r in ctx["rows"]) == pytest.approx(1.0)


def test_json_depth_folds_subtrees() -> None:
    c = cnn_cost()
    doc = json.loads(render(c, "json", depth=1))
    children = doc["tree"]["children"]
    assert [ch["name"] for ch in children] == [ch.name for ch in c.children]
    assert all("children" not in ch for ch in children)
    assert {ch["name"]: ch["folded"] for ch in children if "folded" in ch} == {"res": 3,
                                                                               "head": 3}
    assert doc["depth"] == 1


# ----------------------------------------------------------------------------- summary
def test_summary_is_a_registered_format_the_cli_prints() -> None:
    from symflops.cli import main

    c = cnn_cost()
    out = render(c, "summary", at=AT_224, depth=1, title="cnn -- FLOPs (exact)")
    assert get_format("summary").template == "cost.summary.j2"
    lines = out.splitlines()
    assert lines[0] == "cnn -- FLOPs (exact)"
    assert lines[1] == "input (1, 3, 224, 224) -> output (1, 10)"
    assert "at B=1, H=224, W=224" in lines
    total = int(c.subs(**AT_224).flops)
    assert f"FLOPs (exact)  {total:,} (" in out
    # parts largest first, each with its share of the total; conv_1: 848 * 112 * 112
    parts = out.split("\n\n")[-1].splitlines()
    assert parts[0].split() == ["path", "layer", "FLOPs", "(exact)", "share"]
    by_name = {ch.name: ch for ch in c.subs(**AT_224).children}  # names may contain dots
    values = [int(by_name[p].flops) for p in ("res", "layer1.0.conv_1")]
    assert values[0] > values[1] == 848 * 112 * 112
    for line, path, value in zip(parts[1:3], ("res", "layer1.0.conv_1"), values, strict=True):
        assert line.startswith(path) and f"{value:,}" in line
        assert line.endswith(f"{100 * value / total:5.1f}%")
    assert len(parts) == 1 + len(c.children)
    assert all(not ln.endswith(" ") for ln in lines)
    with pytest.raises(SymflopsError, match="built-in"):
        unregister_format("summary")
    # the command line's default output is this format
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["formula", "Linear", "--at", "M=4,I=8,O=2"]) == 0
    from symflops.reference import EXAMPLES

    linear = EXAMPLES["Linear"].build().cost(EXAMPLES["Linear"].input_shape)
    assert printed.getvalue() == render(linear, "summary", at={"M": 4, "I": 8, "O": 2},
                                        title="Linear(I, O) -- FLOPs (exact)")


def test_summary_formula_lines_and_general_formula() -> None:
    c = conv_cost()
    out = render(c, "summary", at={"B": 1})
    # with partial values the formula is printed first; a strided size as a ceiling
    formula = out.split("formula:")[1].split("at B=1")[0]
    assert "ceiling(H/2)" in formula and "floor" not in formula
    # 2 C_in C_out K^2 per output position: 2*3*64*49 = 18816
    assert "FLOPs (exact)  18816*ceiling(H/2)*ceiling(W/2)" in out
    # exactly: floors over one denominator
    exact = render(c, "summary", at={"B": 1}, exact=True)
    formula = exact.split("formula:")[1].split("at B=1")[0]
    assert "floor((H - 1)/2)" in formula and "floor(H/2 - 1/2)" not in formula
    assert "FLOPs (exact)  18816*(floor((H - 1)/2) + 1)*(floor((W - 1)/2) + 1)" in exact
    assert "general formula: FLOPs (exact) = 2*B*C_in*C_out*H_out*K**2*W_out/groups" in out
    macs = render(c, "summary", convention="macs")
    assert "FLOPs" not in macs.split("general formula")[0]


def test_text_table_widths_and_overflow() -> None:
    from symflops.notation import text_table

    # widest cell per column, right-aligned numbers, a rule under the header
    assert text_table([["a", "1"], ["bbb", "22"]], ["x", "n"], "lr", rule=True) == (
        "x     n\n---  --\na     1\nbbb  22")
    # fixed widths: a long cell pushes the rest of its row, the column stays as given
    fixed = text_table([["a", "1"], ["abcdef", "2"]], None, "lr", widths=(3, 2), gaps=(" ",))
    assert fixed.splitlines() == ["a    1", "abcdef  2"]
    assert text_table([]) == ""


# ----------------------------------------------------------------------------- the domain
def test_a_lattice_in_the_domain_removes_the_rounding_from_the_render() -> None:
    import sympy as sp

    from symflops.symbols import H, W

    c = conv_cost()  # H_out = floor((H - 1)/2) + 1: H/2 when H is even
    even = c.replace(validity=(sp.Eq(sp.Mod(H, 2), 0), sp.Eq(sp.Mod(W, 2), 0)))
    text = render(even, "text", derivations=False)
    # 18816 * (H/2) * (W/2) = 4704 H W FLOPs, output (B, 64, H/2, W/2)
    assert "(B, 64, H/2, W/2)" in text and "4704*B*H*W" in text
    assert "ceiling" not in text and "floor" not in text
    assert "assumes: H a multiple of 2, W a multiple of 2" in text
    # the exact form stays available, and equals the shown one on the lattice only
    exact = render(even, "text", derivations=False, exact=True)
    assert "18816*B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1)" in exact
    for h in (2, 4, 224, 226):
        assert c.subs(B=1, H=h, W=h).flops == 4704 * h * h
    assert c.subs(B=1, H=223, W=223).flops != 4704 * 223 * 223  # off the lattice: not H/2
    tex = render(even, "latex", derivations=False)
    assert r"H \equiv 0 \pmod{2}" in tex


def test_the_domain_is_printed_where_the_conditions_were() -> None:
    import sympy as sp

    from symflops.symbols import B, H

    c = conv_cost().replace(validity=(sp.Eq(sp.Mod(H, 32), 0), sp.Le(H, 8192), sp.Eq(B, 2)))
    text = render(c, "text", derivations=False)
    assert ("assumes: B = 2 (pinned), H a multiple of 32, 32 <= H <= 8192 (verified up to "
            "8192)") in text
    md = render(c, "markdown", derivations=False)
    assert r"$B = 2 \text{ (pinned)}$" in md and r"\pmod{32}" in md
    # JSON is data: its expressions stay exact
    doc = json.dumps(json.loads(render(c, "json"))["tree"])
    assert "floor(H/2 - 1/2) + 1" in doc and "ceiling" not in doc
