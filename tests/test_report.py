"""sf.report / ``symflops report``: the formulas compiled to JavaScript give Cost.subs's
integers (run with node), the sliders follow the domain, and the page in a real headless
chromium recomputes every number exactly, with nothing fetched."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops.cli import main
from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.rendering._html_report import report_quantities, symbol_range
from symflops.rendering._js import RUNTIME, js_expr
from symflops.symbols import B, H, W

NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def small_cnn(convention: str = "exact", mode: str = "eval") -> Cost:
    """A stride-2 stem without padding (floors and a lower bound on H, W), a repeated
    block, a head: floors are active at every odd size."""
    def block() -> sf.nn.Sequential:
        return sf.nn.Sequential(sf.nn.Conv2d(8, 8, 3, padding=1), sf.nn.BatchNorm2d(8),
                                sf.nn.ReLU())
    net = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 5, stride=2), sf.nn.ReLU(),
                           sf.nn.MaxPool2d(3, stride=2), block(), block(),
                           sf.nn.AdaptiveAvgPool2d(1), sf.nn.Flatten(), sf.nn.Linear(8, 10))
    return net.cost((B, 3, H, W), convention=convention, mode=mode)


def run_node(source: str) -> object:
    """Run ``source`` (which prints one JSON line) with node."""
    assert NODE is not None, "node is needed (.ci/run installs it)"
    done = subprocess.run([NODE, "-e", source], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def evaluate_in_node(exprs: dict[str, sp.Expr], points: list[dict[str, int]]) -> list[dict]:
    """Each formula at each point, computed by the compiled JavaScript: exact strings."""
    fns = ", ".join(f"{json.dumps(k)}: (v) => {js_expr(e)}" for k, e in exprs.items())
    source = RUNTIME + f"""
const F = {{{fns}}};
const P = {json.dumps(points)};
const out = P.map(p => {{
  const v = {{}}; for (const k in p) v[k] = Q(BigInt(p[k]));
  const r = {{}};
  for (const k in F) {{ const x = F[k](v); r[k] = x.d === 1n ? x.n.toString()
                                                       : x.n + "/" + x.d; }}
  return r;
}});
console.log(JSON.stringify(out));
"""
    result = run_node(source)
    assert isinstance(result, list)
    return result


def test_node_is_installed() -> None:
    assert NODE is not None, "node is needed for the report's tests: .ci/run installs it"


def test_compiled_totals_equal_cost_subs_with_floors() -> None:
    cost = small_cnn("torch", mode="train")
    exprs = {key: e for key, _, e in report_quantities(cost)}
    assert set(exprs) == {"params", "macs", "flops", "memory"}
    rng = random.Random(21)
    lo_h = symbol_range(cost, H)[0]
    # odd and even sizes (every floor active), near the lower bound and far above it
    points = [{"B": rng.randint(1, 9), "H": rng.randint(lo_h, 700), "W": rng.randint(lo_h, 700)}
              for _ in range(60)] + [{"B": 1, "H": lo_h, "W": lo_h + 1},
                                     {"B": 3, "H": 4001, "W": 2**20 + 3}]
    got = evaluate_in_node(exprs, points)
    for p, row in zip(points, got, strict=True):
        at = cost.subs(**p)
        want = {"params": at.params, "macs": at.macs, "flops": at.flops,
                "memory": at.memory.total}
        assert {k: str(v) for k, v in want.items()} == row, p


def test_compiled_functions_exact_on_hand_cases() -> None:
    """Each construct against SymPy at points where it matters: negative floors, Mod of a
    negative, Min/Max, Piecewise, negative powers (rationals), big integers."""
    x, y = sp.Symbol("x", integer=True), sp.Symbol("y", integer=True, positive=True)
    exprs = {
        "floor": sp.floor(sp.Rational(7, 3) * x - sp.Rational(1, 2)),
        "ceil": sp.ceiling(x / 4 - sp.Rational(5, 7)),
        "mod": sp.Mod(x, 7) + sp.Mod(-3 * x + 1, 5),
        "minmax": sp.Min(x, 3 * y - 5) * sp.Max(x, y, 4) + sp.Abs(x - 2 * y),
        "piecewise": sp.Piecewise((x**2, x < 0), (x * y, sp.Eq(sp.Mod(x, 2), 0)), (-y, True)),
        "rational": (x + 1) ** 3 / y**2 + sp.Rational(1, 3),
        "big": (x + 2**40) ** 5 * y,
    }
    points = [{"x": a, "y": b} for a in (-37, -8, -1, 0, 1, 2, 7, 64, 1001) for b in (1, 3, 32)]
    got = evaluate_in_node(exprs, points)
    for p, row in zip(points, got, strict=True):
        values = {x: sp.Integer(p["x"]), y: sp.Integer(p["y"])}
        want = {k: sp.Rational(e.xreplace(values)) for k, e in exprs.items()}
        assert row == {k: str(v) for k, v in want.items()}, p


def test_compiler_refuses_what_it_cannot_compute_exactly() -> None:
    with pytest.raises(SymflopsError, match="non-integer exponent"):
        js_expr(sp.sqrt(H))
    with pytest.raises(SymflopsError, match="cannot compute log"):
        js_expr(sp.log(H))


def lattice_cost() -> Cost:
    """The small CNN with the conditions a fit leaves: H a multiple of 32 up to 8192, W
    at least 40, B pinned to 2."""
    cost = small_cnn()
    extra = (sp.Eq(sp.Mod(H, 32), 0), sp.Le(H, 8192), sp.Ge(W, 40), sp.Eq(B, 2))
    return cost.replace(validity=(*cost.validity, *extra))


def test_symbol_range_reads_the_validity_conditions() -> None:
    cost = small_cnn()
    lo = symbol_range(cost, H)[0]
    # the stem (k=5, s=2) then the pool (k=3, s=2) need floor((H-5)/2)+1 >= 3: H >= 9
    assert lo == 9
    with pytest.raises(SymflopsError):
        cost.subs(B=1, H=lo - 1, W=64)
    cost.subs(B=1, H=lo, W=64)
    fitted = lattice_cost()
    assert symbol_range(fitted, H) == (32, 8192, 32, 0)
    assert symbol_range(fitted, W) == (40, None, 1, 0)
    assert symbol_range(fitted, B) == (2, 2, 1, 0)
    shifted = cost.replace(validity=(sp.Eq(sp.Mod(H + 1, 4), 0), sp.Gt(2 * H, 21)))
    lo, hi, step, offset = symbol_range(shifted, H)
    assert (lo, hi, step, offset) == (11, None, 4, 3)
    assert all(c.xreplace({H: lo + 4 * k}) for c in shifted.validity for k in range(5))
    assert not any(all(c.xreplace({H: v}) for c in shifted.validity) for v in range(1, lo))


def test_page_sliders_follow_the_domain() -> None:
    html = sf.report(lattice_cost())
    assert '<input type="range" id="slider-H" data-symbol="H" min="32"' in html
    assert 'max="8192" step="32" value="224"' in html
    assert 'data-symbol="W" min="40"' in html
    assert 'data-symbol="B" min="2"\n         max="2" step="1" value="2" disabled' in html


def test_page_is_self_contained() -> None:
    html = sf.report(small_cnn())
    # the one URL on the page is the SVG namespace, which is a name, never fetched
    assert html.count("http") == html.count('"http://www.w3.org/2000/svg"')
    for tag in ("<link", "<img", "<iframe", "src=", "@import", "url("):
        assert tag not in html
    assert "MACs" in html and "FLOPs (exact)" in html
    macs_only = sf.report(small_cnn("macs"))
    assert 'data-quantity="flops"' not in macs_only and "FLOPs" not in macs_only


def test_report_refuses_bad_arguments(tmp_path: Path) -> None:
    cost = lattice_cost()
    with pytest.raises(SymflopsError, match="outside the formula's domain"):
        sf.report(cost, at={"H": 100})
    with pytest.raises(SymflopsError, match="do not depend on Q"):
        sf.report(cost, var="Q")
    with pytest.raises(SymflopsError, match="no such quantity"):
        sf.report(cost, quantity="memory")
    with pytest.raises(SymflopsError, match="a Cost or"):
        sf.report("resnet.py")  # type: ignore[arg-type]
    out = tmp_path / "m.html"
    assert sf.report(cost, out, at={"H": 96}) == out.read_text(encoding="utf-8")


def test_cli_report_writes_one_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    out = tmp_path / "linear.html"
    assert main(["report", "Linear", "--output", str(out), "--at", "M=4",
                 "--convention", "MACs"]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'data-symbol="I"' in html and 'data-symbol="M"' not in html
    assert main(["report", "Linear", "Linear", "-o", str(tmp_path / "x.html")]) == 2
    assert "named twice" in capsys.readouterr().err
    both = tmp_path / "both.html"
    assert main(["report", "Linear", "Conv2d", "-o", str(both), "--quantity", "params"]) == 0
    html = both.read_text(encoding="utf-8")
    assert 'data-model="Linear" data-quantity="params"' in html
    assert 'data-model="Conv2d" data-quantity="params"' in html
    assert "Linear vs Conv2d -- params, FLOPs (exact)" in html
    assert main(["report", "Linear", "--var", "Q", "-o", str(tmp_path / "q.html")]) == 2
    assert "do not depend on Q" in capsys.readouterr().err


# ------------------------------------------------------------------ the real browser
def crossing_pair() -> dict[str, Cost]:
    """A wide head (a large constant) against a wide stem (fast growth): they cross."""
    head = sf.nn.Sequential(sf.nn.Conv2d(3, 4, 3, padding=1), sf.nn.AdaptiveAvgPool2d(1),
                            sf.nn.Flatten(), sf.nn.Linear(4, 20000))
    stem = sf.nn.Sequential(sf.nn.Conv2d(3, 32, 3, padding=1, stride=2))
    return {"head": head.cost((B, 3, H, W)), "stem": stem.cost((B, 3, H, W))}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    assert CHROMIUM is not None and CHROMEDRIVER is not None, \
        "chromium and chromium-driver are needed (.ci/run installs them)"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _value(driver: object, selector: str) -> str:
    return driver.find_element("css selector", selector).get_attribute("data-value")  # type: ignore[attr-defined]


def test_browser_sliders_recompute_exactly_offline(browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    driver: object = browser
    cost = lattice_cost().replace(convention="torch")
    page = tmp_path / "cnn.html"
    sf.report(cost, page, at={"W": 41})
    driver.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {  # type: ignore[attr-defined]
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    driver.get_log("performance")  # type: ignore[attr-defined]
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    name = next(iter(sf.rendering._html_report._named(cost)))

    def check(values: dict[str, int]) -> None:
        at = cost.subs(**values)
        for key, want in (("params", at.params), ("macs", at.macs), ("flops", at.flops)):
            got = _value(driver, f'[data-model="{name}"][data-quantity="{key}"]')
            assert got == str(want), (key, values)
        # a block's cell and share: the repeated block (rows 3-4) under the torch convention
        block = cost["3"].subs(**values).flops * 2
        assert _value(driver, '[data-block="3"][data-block-quantity="flops"]') == str(block)
        # the run's first part (its conv), for the whole run, one level down
        conv = cost["3.0"].subs(**values).flops * 2
        assert _value(driver, '[data-block="4"][data-block-quantity="flops"]') == str(conv)

    check({"B": 2, "H": 224, "W": 41})
    h = driver.find_element("css selector", 'input[type=range][data-symbol="H"]')  # type: ignore[attr-defined]
    w = driver.find_element("css selector", 'input[type=range][data-symbol="W"]')  # type: ignore[attr-defined]
    h.send_keys(Keys.ARROW_RIGHT)  # one lattice step: 256
    check({"B": 2, "H": 256, "W": 41})
    w.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)  # 43: odd, the floors bite
    check({"B": 2, "H": 256, "W": 43})
    h.send_keys(Keys.HOME)  # the domain's lower end
    w.send_keys(Keys.HOME)
    check({"B": 2, "H": 32, "W": 40})
    assert driver.find_element("css selector", 'input[data-symbol="B"]').get_attribute(  # type: ignore[attr-defined]
        "disabled") is not None
    # the box beside a slider takes any size on the domain, past the slider's end too
    box = driver.find_element("css selector", 'input[data-symbol-box="W"]')  # type: ignore[attr-defined]
    box.clear()
    box.send_keys("100003", Keys.ENTER)
    check({"B": 2, "H": 32, "W": 100003})
    hbox = driver.find_element("css selector", 'input[data-symbol-box="H"]')  # type: ignore[attr-defined]
    hbox.clear()
    hbox.send_keys("100", Keys.ENTER)  # not a multiple of 32: refused, nothing changes
    assert "outside the formula's domain" in driver.find_element(  # type: ignore[attr-defined]
        "css selector", "#status").text
    check({"B": 2, "H": 32, "W": 100003})
    urls = [json.loads(e["message"])["message"]["params"].get("request", {}).get("url", "")
            for e in driver.get_log("performance")]  # type: ignore[attr-defined]
    urls = [u for u in urls if u]
    assert urls and all(u.startswith(("file://", "data:")) for u in urls), urls
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
    assert not errors, errors


def test_browser_comparison_shows_exact_crossover(browser: object, tmp_path: Path) -> None:
    driver: object = browser
    costs = crossing_pair()
    page = tmp_path / "cmp.html"
    sf.report(costs, page, var="H", at={"H": 64, "W": 64})
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    marks = driver.find_elements("css selector", "#crossovers li[data-crossover]")  # type: ignore[attr-defined]
    assert len(marks) == 1
    x = int(marks[0].get_attribute("data-crossover"))

    def sign(h: int) -> int:
        a = int(costs["head"].subs(B=1, H=h, W=64).flops)
        b = int(costs["stem"].subs(B=1, H=h, W=64).flops)
        return (a > b) - (a < b)

    assert sign(x) != sign(x - 1)  # the exact first size where the order changes
    assert all(sign(h) == sign(1) for h in range(1, x))
    for name, cost in costs.items():
        want = cost.subs(B=1, H=64, W=64).flops
        assert _value(driver, f'[data-model="{name}"][data-quantity="flops"]') == str(want)


# ------------------------------------------------- symflops scale: the largest parts
def test_scale_largest_parts_reach_attention_and_mlp(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """Below the wrappers (the ModuleList, each decoder layer) the parts a reader compares;
    each share is the sum over the layers, checked against the traced cost's own parts."""
    from example_models import load_example

    from symflops.cli._scale import part_of

    args = ["scale", "examples/gpt.py:llama_tiny", "--input", "input_ids=B N", "--var", "N",
            "--range", "64:4096:*4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    cost = sf.trace(load_example("gpt").llama_tiny(), {"input_ids": ("B", "N")})
    layers = len(cost["layers"].children)
    assert layers >= 2

    def share(part: str, n: int) -> str:
        total = cost.subs(B=1, N=n).flops
        whole = sum(part_of(cost, f"layers.{i}.{part}", "flops").xreplace(
            {s: 1 if s.name == "B" else n for s in cost.free_symbols}) for i in range(layers))
        return f"{100 * float(sp.Rational(whole, total)):.1f}%"

    assert (f"largest part at N = 64: layers.*.self_attn x{layers} (LlamaAttention, "
            f"{share('self_attn', 64)}); next: layers.*.down_proj x{layers} (Linear, "
            f"{share('down_proj', 64)})") in out
    assert f"largest part at N = 4096: layers.*.self_attn x{layers} (LlamaAttention, " \
           f"{share('self_attn', 4096)})" in out
    assert main([*args, "--depth", "1"]) == 0
    assert "largest part at N = 64: layers (ModuleList, " in capsys.readouterr().out


# ------------------------------------------------------------ plots: y ticks
def test_plot_has_more_y_ticks_under_two_decades(tmp_path: Path) -> None:
    """FLOPs of a conv over H = 128..512 span 1.2 decades: every 1-2-5 value inside the
    data's range is a labelled tick (a plot had shown only "10 G" and "100 G")."""
    from symflops.analysis import plot

    conv = sf.nn.Conv2d(3, 64, 3, padding=1).cost((B, 3, H, W))
    sizes = [128, 192, 256, 384, 512]
    fig = plot({"conv": conv}, ["H", "W"], sizes, at={"B": 1}, path=str(tmp_path / "p.png"))
    ax = fig.axes[0]
    ys = [int(conv.subs(B=1, H=s, W=s).flops) for s in sizes]
    lo, hi = min(ys), max(ys)
    want = sorted(m * 10**k for k in range(20) for m in (1, 2, 5) if lo <= m * 10**k <= hi)
    assert len(want) >= 3
    shown = sorted(int(round(t)) for t in ax.get_yticks() if lo <= t <= hi)
    assert shown == want
    labels = {t.get_text() for t in ax.get_yticklabels()}
    assert {"50 M", "100 M", "200 M"} <= labels, labels
    wide = plot({"conv": conv}, ["H", "W"], [8, 64, 512, 4096], at={"B": 1})
    ticks = [t for t in wide.axes[0].get_yticks()]
    assert all(float(np.log10(t)).is_integer() for t in ticks)  # decades alone


MLP_FILE = '''import torch


def mlp(width=8, depth=2):
    return torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
'''


def test_browser_cli_report_with_vary_and_train(browser: object, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``symflops report`` takes trace's options: a --vary fit and a --train trace give
    pages whose numbers are the library's own at the sliders' positions."""
    from example_models import load_example

    driver: object = browser
    (tmp_path / "m.py").write_text(MLP_FILE)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "m.py:mlp", "--vary", "width=C,depth=L", "--input", "B C",
                 "--convention", "macs", "--start", "C=96,L=3,B=2", "-o", "mlp.html"]) == 0
    driver.get((tmp_path / "mlp.html").as_uri())  # type: ignore[attr-defined]
    # L layers of a C x C linear layer: B*C^2*L MACs, L*(C^2 + C) params
    assert _value(driver, '[data-quantity="macs"]') == str(2 * 96**2 * 3)
    assert _value(driver, '[data-quantity="params"]') == str(3 * (96**2 + 96))
    assert main(["report", str(Path(__file__).parents[1] / "examples" / "resnet.py") + ":tiny",
                 "--input", "B 3 H W", "--train", "--start", "H=33,W=47", "--at", "B=2",
                 "-o", "tiny.html"]) == 0
    driver.get((tmp_path / "tiny.html").as_uri())  # type: ignore[attr-defined]
    cost = sf.trace(load_example("resnet").tiny(), ("B", 3, "H", "W"), mode="train")
    at = cost.subs(B=2, H=33, W=47)
    assert at.memory is not None
    assert _value(driver, '[data-quantity="memory"]') == str(at.memory.total)
    assert _value(driver, '[data-quantity="flops"]') == str(at.flops)


def test_browser_outside_a_joint_condition_is_an_error_not_a_number(browser: object,
                                                                    tmp_path: Path) -> None:
    """A condition across symbols (H >= W) is not a slider bound: past it the page shows
    the failing condition and no value at all, never a stale or clamped number."""
    from selenium.webdriver.common.keys import Keys

    driver: object = browser
    cost = small_cnn()
    cost = cost.replace(validity=(*cost.validity, sp.Ge(H, W)))
    page = tmp_path / "joint.html"
    sf.report(cost, page, at={"H": 64, "W": 64})
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    name = next(iter(sf.rendering._html_report._named(cost)))
    selector = f'[data-model="{name}"][data-quantity="macs"]'
    assert _value(driver, selector) == str(cost.subs(B=1, H=64, W=64).macs)
    w = driver.find_element("css selector", 'input[type=range][data-symbol="W"]')  # type: ignore[attr-defined]
    w.send_keys(Keys.ARROW_RIGHT)  # W = 65 > H
    assert _value(driver, selector) == ""
    status = driver.find_element("css selector", "#status").text  # type: ignore[attr-defined]
    assert "H >= W" in status and "fails" in status
    with pytest.raises(SymflopsError, match="H >= W"):
        cost.subs(B=1, H=64, W=65)
    w.send_keys(Keys.ARROW_LEFT)
    assert _value(driver, selector) == str(cost.subs(B=1, H=64, W=64).macs)
    assert driver.find_element("css selector", "#status").text == ""  # type: ignore[attr-defined]


def test_browser_models_with_different_quantities(browser: object, tmp_path: Path) -> None:
    """One model with training memory, one under the MACs convention: each shows what it
    has, the other's cell is a dash, the plot offers only what both have alike."""
    driver: object = browser
    costs = {"train": small_cnn("exact", mode="train"), "macs": small_cnn("macs")}
    page = tmp_path / "mixed.html"
    html = sf.report(costs, page, at={"H": 64, "W": 64})
    assert '<option value="macs" selected>' in html and '<option value="flops"' not in html
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    train = costs["train"].subs(B=1, H=64, W=64)
    assert train.memory is not None
    assert _value(driver, '[data-model="train"][data-quantity="memory"]') == \
        str(train.memory.total)
    forward = costs["macs"].subs(B=1, H=64, W=64)
    assert _value(driver, '[data-model="macs"][data-quantity="macs"]') == str(forward.macs)
    assert _value(driver, '[data-model="train"][data-quantity="macs"]') == str(train.macs)
    assert driver.find_elements("css selector", '[data-model="macs"][data-quantity="flops"]') == []  # type: ignore[attr-defined]
    ratio = driver.find_element("css selector", '[data-ratio="macs"]').text  # type: ignore[attr-defined]
    # training MACs over forward MACs, to three decimals (rounded half up), exactly
    want = (2000 * int(train.macs) + int(forward.macs)) // (2 * int(forward.macs))
    assert ratio == f"{want // 1000}.{want % 1000:03d}"
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []  # type: ignore[attr-defined]
