"""Traces from several threads at once: each result equals its serial run, and torch's
global state (a user's global forward hook) is as before, with no symflops hook left."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.modules import module as torch_module  # noqa: E402

import symflops as sf  # noqa: E402


def _models() -> list[nn.Module]:
    return [nn.Sequential(nn.Conv2d(3, 4 + i, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2, ceil_mode=True)) for i in range(4)]


def test_four_threads_trace_at_once_and_leave_torch_as_it_was() -> None:
    fired: list[str] = []

    def user_hook(mod: nn.Module, args: object, out: object) -> None:
        fired.append(type(mod).__name__)

    handle = torch_module.register_module_forward_hook(user_hook)
    try:
        before = dict(torch_module._global_forward_hooks)
        models = _models()
        serial = [sf.trace(m, "B 3 H W", warn=False).flops for m in models]
        results: list[object] = [None] * len(models)
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(models))

        def work(i: int) -> None:
            try:
                barrier.wait()
                for _ in range(3):
                    results[i] = sf.trace(models[i], "B 3 H W", warn=False).flops
            except BaseException as e:  # reported below, not lost in the thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(models))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert results == serial
        # the user's global hook is still registered, nothing of symflops is left...
        assert dict(torch_module._global_forward_hooks) == before
        for registry in (torch_module._global_forward_pre_hooks,
                         torch_module._global_backward_hooks,
                         torch_module._global_backward_pre_hooks):
            assert not any("symflops" in getattr(h, "__module__", "") for h in
                           registry.values())
        # ...and it still fires on a real forward (it did not fire during the traces)
        fired.clear()
        models[0](torch.zeros(1, 3, 8, 8))
        assert "Conv2d" in fired
    finally:
        handle.remove()
