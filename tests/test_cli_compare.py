"""``symflops compare A B --var H``: the ratio, its limit, the growth orders and the
crossovers with exact counts at the first whole size past them, checked against counts
made here by hand and against the Python API; ``scale --crossover`` between parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sympy as sp

from symflops import analysis as A
from symflops.cli import main
from symflops.symbols import H

MODELS = """
import symflops as sf


def wide():
    return sf.nn.Conv2d(3, 16, 3, padding=1)


def headed():
    return sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.AdaptiveAvgPool2d(1),
                            sf.nn.Flatten(), sf.nn.Linear(8, 100000))


def make():
    return sf.nn.Conv2d(3, 8, 3, padding=1)
"""

# MACs at B = 1, H = W = s:
#   wide:   3*16*3*3 = 432 per pixel            -> 432*s^2
#   headed: 3*8*3*3 = 216 per pixel, head 8*100000 -> 216*s^2 + 800000
# equal where 216*s^2 = 800000: s = sqrt(100000/27) = 100*sqrt(30)/9 = 60.86; at s = 61
# wide = 432*3721 = 1,607,472 and headed = 216*3721 + 800000 = 1,603,736 (at 60 wide is
# still the smaller: 1,555,200 < 1,577,600)
ROOT = sp.sqrt(sp.Rational(100000, 27))


def wide(s: int) -> int:
    return 432 * s * s


def headed(s: int) -> int:
    return 216 * s * s + 800000


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "nets.py"
    path.write_text(MODELS, encoding="utf-8")
    (tmp_path / "other.py").write_text(MODELS, encoding="utf-8")
    return path


def compare(models: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(["compare", f"{models}:wide", f"{models}:headed", "--input", "B 3 H W",
                 "--var", "H,W", "--convention", "macs", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_compare_reports_ratio_limit_orders_and_crossover(
        models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = compare(models, capsys)
    lines = out.splitlines()
    assert lines[0] == f"wide ({models}:wide) vs headed ({models}:headed) -- MACs against H = W"
    assert "growth order in H = W: wide 2, headed 2" in lines
    # 432 s^2 / (216 s^2 + 800000) = 54 s^2 / (27 s^2 + 100000) -> 2
    assert f"ratio wide / headed = {sp.factor(54 * H**2 / (27 * H**2 + 100000))}" in lines
    assert "limit of the ratio as H = W -> oo: 2" in lines
    assert math.ceil(float(ROOT)) == 61 and wide(60) < headed(60) and wide(61) > headed(61)
    assert (f"crossover: wide equals headed at H = W = {ROOT} (~{float(ROOT):.6g}); "
            f"at H = W = 61: wide {wide(61):,}, headed {headed(61):,} MACs") in lines


def test_compare_json_and_table_match_hand_counts(models: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    info = json.loads(compare(models, capsys, "--range", "32:128:*2", "--format", "json"))
    assert info["limit"] == "2" and info["growth_order"] == {"wide": "2", "headed": "2"}
    assert info["crossovers"] == [{"at": str(ROOT), "size": 61,
                                   "values": {"wide": wide(61), "headed": headed(61)}}]
    assert [(r["H"], r["wide"], r["headed"]) for r in info["table"]] == [
        (s, wide(s), headed(s)) for s in (32, 64, 128)]
    assert info["at"] == {"B": "1"}


def test_compare_agrees_with_the_api(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import symflops as sf

    a = sf.nn.Conv2d(3, 16, 3, padding=1).cost(("B", 3, "H", "W"), convention="macs")
    cmp = A.compare(a, 216 * H**2 + 800000, ["H", "W"], at={"B": 1})
    assert cmp.limit == 2 and cmp.orders == (2, 2)
    (x,) = cmp.crossings
    assert x.root == ROOT and x.size == 61 and x.values == (wide(61), headed(61))
    info = json.loads(compare(models, capsys, "--format", "json"))
    assert info["ratio"] == str(cmp.ratio)


def test_compare_same_factory_names_are_told_apart(models: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    other = models.parent / "other.py"
    assert main(["compare", f"{models}:make", f"{other}:make", "--input", "B 3 H W",
                 "--var", "H"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nets:make ({models}:make) vs other:make ({other}:make)")
    assert "limit of the ratio as H -> oo: 1" in out
    assert "crossover: none (equal for every size)" in out


@pytest.mark.parametrize("extra, message", [
    (["--var", "H", "--at", "W=H", "--plot", "x.png"], "--plot needs the sizes to plot"),
    (["--var", "Q", "--at", "W=8"], "wide does not depend on Q"),
    (["--var", "H", "--at", "H=3,W=3"], "--var H is also given a value in --at"),
], ids=["plot-without-range", "unknown-var", "var-and-at"])
def test_compare_errors(extra: list[str], message: str, models: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", f"{models}:wide", f"{models}:headed", "--input", "B 3 H W",
                 *extra]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"symflops: error: {message}")


def test_scale_crossover_names_the_children_that_exist(
        capsys: pytest.CaptureFixture[str], models: Path) -> None:
    assert main(["scale", f"{models}:headed", "--input", "B 3 H W", "--var", "H,W",
                 "--range", "8,16", "--crossover", "design_a,design_b"]) == 2
    line = capsys.readouterr().err.strip()
    assert "no child called 'design_a'" in line
    assert line.endswith("fix: children are: 0, 1, 2, 3")


def test_scale_crossover_gives_the_exact_counts_past_it(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from symflops.reference import EXAMPLES

    at = "B=1,dim=768,heads=12,mlp_ratio=4"
    assert main(["scale", "TransformerBlock", "--var", "N", "--range", "64:8192:*2", "--at",
                 at, "--crossover", "attention.mha,mlp"]) == 0
    out = capsys.readouterr().out
    ex = EXAMPLES["TransformerBlock"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, dim=768, heads=12, mlp_ratio=4)
    (x,) = A.crossings(cost["attention.mha"], cost["mlp"], "N")
    root = x.root
    size = math.ceil(root)

    def part(path: str, n: int) -> int:
        return int(cost[path].subs(N=n).flops)

    # the order flips between size - 1 and size: that is the first whole size past it
    assert (part("attention.mha", size - 1) < part("mlp", size - 1)) != \
        (part("attention.mha", size) < part("mlp", size))
    assert (f"; at N = {size}: attention.mha {part('attention.mha', size):,}, "
            f"mlp {part('mlp', size):,} {cost.convention.label}") in out


def test_a_rational_crossover_gives_a_plain_int_size() -> None:
    # 3 N^2 = 7 N at N = 7/3: the first whole size past it is 3 (27 against 21)
    (x,) = A.crossings(3 * H**2, 7 * H, "H")
    assert x.root == sp.Rational(7, 3)
    assert type(x.size) is int and x.size == 3 and x.values == (27, 21)
    assert json.loads(json.dumps({"size": x.size})) == {"size": 3}
