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


def test_wav2vec2_built_on_meta_traces_as_all_on_the_cpu() -> None:
    # its masked_spec_embed, made by torch.Tensor(...), stays on the CPU under
    # torch.device("meta"); torch refused the run mixing the two devices
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    import symflops as sf

    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    config._attn_implementation = "eager"  # FlopCounterMode counts no CPU SDPA kernel
    with torch.device("meta"):
        model = transformers.Wav2Vec2Model(config).eval()
    cost = sf.trace(model, "B T", hints={"T": 1600}, convention="torch", warn=False)
    assert {s.name for s in cost.free_symbols} == {"B", "T"} and not cost.report.unknown
    assert any("masked_spec_embed on the CPU" in n for n in cost.notes)
    torch.manual_seed(0)
    real = transformers.Wav2Vec2Model(config).eval()
    for b, t in [(1, 1600), (2, 2403)]:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            real(torch.randn(b, t))
        assert cost.subs(B=b, T=t).flops == fc.get_total_flops(), (b, t)
