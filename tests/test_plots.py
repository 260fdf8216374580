"""Plots that explain themselves, read back from the matplotlib figure: plain-number ticks
at the swept sizes, short legend names outside the data, fixed values in the title, the
growth order and the fitted slope as two different things, crossovers marked, and the
file format chosen by the suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy as sp

import symflops as sf
from symflops import analysis as A
from symflops.analysis.plots import MAX_TICKS
from symflops.cli import main
from symflops.symbols import B, H, W

pytest.importorskip("matplotlib")  # the [plot] extra; installed with [test]


def ticks(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


def legend(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def conv() -> sf.Cost:
    # MACs: 3*8*3*3 = 216 per output pixel, H*W pixels (padding 1 keeps the size)
    return sf.nn.Conv2d(3, 8, 3, padding=1).cost((B, 3, H, W), convention="macs")


def headed() -> sf.Cost:
    # the conv above, then a fixed-size head: 216*H*W + 8*100000 MACs
    net = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.AdaptiveAvgPool2d(1),
                           sf.nn.Flatten(), sf.nn.Linear(8, 100000))
    return net.cost((B, 3, H, W), convention="macs")


@pytest.mark.parametrize("values, expected", [
    ([32, 64, 128, 256], ["32", "64", "128", "256"]),
    ([224, 384, 512], ["224", "384", "512"]),
], ids=["powers-of-two", "crop-sizes"])
def test_ticks_are_the_swept_sizes_in_plain_numbers(values: list[int],
                                                    expected: list[str]) -> None:
    fig = A.plot({"conv": conv()}, ["H", "W"], values, at={"B": 1})
    assert ticks(fig) == expected


def test_many_sizes_are_thinned_to_swept_ones_with_both_ends() -> None:
    values = list(range(32, 1025, 32))  # 32 sizes
    fig = A.plot({"conv": conv()}, ["H", "W"], values, at={"B": 1})
    shown = ticks(fig)
    assert 2 <= len(shown) <= MAX_TICKS
    assert shown[0] == "32" and shown[-1] == "1024"
    assert all(int(t) in values for t in shown)  # plain integers, each one swept


def test_title_names_the_fixed_values_and_the_convention() -> None:
    fig = A.plot({"conv": conv()}, ["H", "W"], [32, 64], at={"B": 1})
    assert fig.axes[0].get_title() == "MACs against H = W\nat B = 1"
    fig = A.plot({"conv": conv()}, "H", [32, 64], at={"B": 2, "W": 16}, title="Stem")
    assert fig.axes[0].get_title() == "Stem\nat B = 2, W = 16"


def test_order_and_fitted_slope_are_labelled_apart() -> None:
    sizes = np.array([16, 32, 64, 128])
    fig = A.plot({"headed": headed()}, ["H", "W"], sizes, at={"B": 1})
    # the slope of log(216*s^2 + 800000) against log(s) over the range, fitted here by hand
    expected = np.polyfit(np.log(sizes), np.log(216.0 * sizes**2 + 800000), 1)[0]
    assert expected < 1.5  # the fixed head flattens the curve at these sizes
    assert legend(fig) == [f"headed: growth order 2 as H = W → ∞; fitted log-log slope "
                           f"{expected:.2f} over 16–128"]


def test_legend_does_not_cover_the_data() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = A.plot({"conv": conv(), "headed": headed()}, ["H", "W"], [16, 32, 64, 128],
                 at={"B": 1})
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not box.overlaps(fig.axes[0].get_window_extent(renderer))
    assert legend(fig)[0].startswith("conv: ") and legend(fig)[1].startswith("headed: ")


def test_crossovers_are_marked_at_the_first_whole_size() -> None:
    # H^2 = 10 H + 5 at H = 5 + sqrt(30) = 10.48: the first whole size past it is 11
    fig = A.plot({"square": H**2, "line": 10 * H + 5}, "H", [2, 4, 8, 16, 32, 64])
    ax = fig.axes[0]
    vertical = [ln.get_xdata()[0] for ln in ax.lines
                if len(set(ln.get_xdata())) == 1 and len(ln.get_xdata()) == 2]
    assert vertical == [11]
    assert [t.get_text() for t in ax.texts] == ["square and line cross by H = 11"]
    fig = A.plot({"square": H**2, "line": 10 * H + 5}, "H", [16, 32, 64])
    assert len(fig.axes[0].texts) == 0  # outside the range: nothing marked


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"),
                                           (".svg", b"<?xml")], ids=["png", "pdf", "svg"])
def test_format_by_suffix(suffix: str, magic: bytes, tmp_path: Path) -> None:
    out = tmp_path / f"plot{suffix}"
    A.plot({"conv": conv()}, ["H", "W"], [32, 64], at={"B": 1}, path=str(out))
    data = out.read_bytes()
    assert data.startswith(magic)
    if suffix == ".svg":
        assert b"<svg" in data


# --------------------------------------------------------------------------- from the CLI
MODELS = """
import symflops as sf


def stem():
    return sf.nn.Conv2d(3, 8, 3, padding=1)


def headed():
    return sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, padding=1), sf.nn.AdaptiveAvgPool2d(1),
                            sf.nn.Flatten(), sf.nn.Linear(8, 100000))
"""


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the command line draws (the real plot function, its result kept)."""
    figures: list[Any] = []
    real = A.plot

    def keep(*args: Any, **kwargs: Any) -> Any:
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr("symflops.analysis.plot", keep)
    return figures


@pytest.mark.parametrize("command", ["scale", "compare"])
def test_cli_plot_has_short_names_and_fixed_values(command: str, tmp_path: Path,
                                                   captured: list[Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "nets.py"
    models.write_text(MODELS, encoding="utf-8")
    out = tmp_path / "plot.svg"
    assert main([command, f"{models}:stem", f"{models}:headed", "--input", "B 3 H W",
                 "--var", "H,W", "--range", "16:128:*2", "--convention", "macs",
                 "--plot", str(out)]) == 0, capsys.readouterr().err
    assert out.read_bytes().startswith(b"<?xml")
    (fig,) = captured
    names = [text.split(":")[0] for text in legend(fig)]
    assert names == ["stem", "headed"]  # the factories, not the paths
    assert fig.axes[0].get_title() == "MACs against H = W\nat B = 1"
    assert ticks(fig) == ["16", "32", "64", "128"]
    # stem 216*s^2 and headed 216*s^2 + 800000 MACs never meet: no crossover marked
    assert len(fig.axes[0].texts) == 0


def test_symbolic_growth_order_matches_the_label() -> None:
    # vit-like: N = H*W/256 tokens, attention N^2 -> order 4 in H = W
    tb = sf.nn.TransformerBlock(64, 4, 4).cost((B, H * W // 256, 64), convention="macs")
    fig = A.plot({"block": tb}, ["H", "W"], [256, 512, 1024], at={"B": 1})
    order = A.growth_order(A.aligned(tb, {H: 16, W: 16}), [H, W])
    assert order == sp.Integer(4)
    assert legend(fig)[0].startswith(f"block: growth order {order} as H = W → ∞")


def test_y_axis_under_two_decades_has_more_than_the_powers_of_ten() -> None:
    # 216*H*W MACs for H = W from 160 to 448: 5.5 M to 43.3 M, under one decade; the
    # labelled y ticks inside that range are not just "10 M" (a ConvNeXt sweep showed only
    # "10 G" and "100 G")
    import matplotlib.pyplot as plt

    fig = A.plot({"conv": conv()}, ["H", "W"], [160, 224, 320, 448], at={"B": 1})
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    inside = [t for t in ax.yaxis.get_major_locator().tick_values(lo, hi) if lo <= t <= hi]
    assert len(inside) >= 3, inside
    assert lo <= 216 * 160 * 160 and hi >= 216 * 448 * 448
    plt.close(fig)
