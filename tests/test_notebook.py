"""``examples/scaling.ipynb`` runs in a real Jupyter kernel (nbclient) and shows what it
promises: the Cost's LaTeX and Markdown displays, the formula, the table, the plot and
the crossover (checked against counts made here by hand)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

# left out of the fast lane: runs a notebook in a Jupyter kernel (4 s here)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "scaling.ipynb"


@pytest.fixture(scope="module")
def executed() -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    try:  # the kernel imports this checkout's symflops
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return nb


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_no_cell_fails(executed: Any) -> None:
    assert not [o for o in outputs(executed) if o["output_type"] == "error"]


def test_cost_displays_as_latex_and_markdown(executed: Any) -> None:
    data = [o.get("data", {}) for o in outputs(executed)]
    shown = next(d for d in data if "text/latex" in d and "text/markdown" in d)
    # the traced cnn() in MACs: 3*16*9 = 432 for the stem conv, 3 blocks of 16*16*9 = 2304
    # per pixel, so 432 + 6912 = 7344 per pixel, and the head 16*1000 = 16000
    assert "\\text{MACs}" in shown["text/latex"]
    assert "| **total** |" in shown["text/markdown"]
    formula = [d["text/latex"] for d in data if "text/latex" in d and "text/markdown" not in d]
    assert formula == ["$\\displaystyle 7344 B H W + 16000 B$"]
    assert any("text/markdown" in d and "text/latex" not in d for d in data)  # the table
    assert any("image/png" in d for d in data)  # the plot


def test_crossover_matches_the_hand_count(executed: Any) -> None:
    text = "".join(o.get("text", "") for o in outputs(executed) if o["output_type"] == "stream")
    # cnn-16: 7344 s^2 + 16000 MACs; cnn-8-big-head: (3*8*9 + 3*8*8*9) = 1944 s^2 + 800000.
    # Equal at 5400 s^2 = 784000, s = sqrt(784000/5400) = 28*sqrt(15)/9 = 12.05; at 13:
    # 7344*169 + 16000 = 1,257,136 and 1944*169 + 800000 = 1,128,536; the limit 7344/1944
    assert "equal at H = W = 28*sqrt(15)/9 (~12.05); at 13: 1,257,136 vs 1,128,536 MACs" \
        in text
    assert "ratio as H = W grows: 34/9" in text
