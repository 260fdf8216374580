"""A handful of transformers architectures from small configs (the sweep of
``benchmarks/check_transformers.py``, whose model list and builder this reuses): each
traces symbolic in B and N with every op counted, and under the torch convention equals
FlopCounterMode on a real forward at two sizes. BLOOM's ALiBi scores need the baddbmm
shape rule; DeepSeek-V2's complex rotation the polar rule; MPT, whose ALiBi table has
as many rows as the default example length, a second trace at a smaller one; XLNet,
built on meta, keeps its legacy ``torch.Tensor(...)`` parameters on the CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

_spec = importlib.util.spec_from_file_location(
    "check_transformers",
    Path(__file__).resolve().parent.parent / "benchmarks" / "check_transformers.py")
assert _spec is not None and _spec.loader is not None
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)


@pytest.mark.parametrize("kind", ["bloom", "t5", "gemma2", "phi3", "deepseek_v2", "mpt", "xlnet"])
def test_symbolic_fully_counted_and_equal_to_flop_counter(kind: str) -> None:
    row, ok = zoo.check(kind)
    assert ok, row
