"""Recurrent layers: the fused ops torch runs for ``nn.LSTM`` / ``nn.GRU``.

What runs, measured on torch 2.13 CPU:

* ``nn.LSTM`` (no ``proj_size``) calls ``aten.mkldnn_rnn_layer`` once per layer and
  direction: counted here from the gate equations
  (:func:`symflops.formulas.recurrent.recurrent_derivation`, the count ``sf.nn.LSTM`` gives).
* ``nn.LSTM(proj_size=...)``, ``nn.GRU``, ``nn.LSTMCell`` and ``nn.GRUCell`` decompose into
  ``addmm``/``mm``, pointwise adds, multiplies, sigmoids and tanhs, one step at a time:
  counted op by op, the same totals (the cells kind by kind; ``nn.GRU`` adds its input
  bias outside the product, so ``b_ih`` counts as ``elementwise`` rather than ``bias``).
* The sequence length cannot stay symbolic: the layers step through ``T`` in C++, so
  torch pins ``T`` (and, for ``nn.GRU``, ``B``) to the hint, which the trace reports as
  fixed, and ``nn.LSTM`` on symbolic sizes fails inside torch ("Cannot call numel() on
  tensor with symbolic sizes"). Trace at concrete sizes, fit a formula over a few
  (``symflops.tracing.fit``), or write the model with ``sf.nn.LSTM``/``GRU``, whose counts
  are symbolic in ``T`` and ``B``.
"""

from __future__ import annotations

from symflops import formulas
from symflops.errors import SymflopsError
from symflops.tracing.handlers._common import aten, one
from symflops.tracing.registry import OpCall, Part, register

__all__: list[str] = []

#: ideep's ``rnn_kind`` (the ``mode`` argument of ``mkldnn_rnn_layer``) -> cell
_MODES = {2: "lstm", 3: "gru"}


@register(aten.mkldnn_rnn_layer)
def _mkldnn_rnn_layer(call: OpCall) -> list[Part]:
    """``mkldnn_rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes, mode,
    hidden_size, num_layers, has_biases, bidirectional, batch_first, train)``: one layer,
    one direction, every step."""
    x = call.args[0].shape
    mode, hidden, has_bias = call.args[9], call.args[10], bool(call.args[12])
    batch_first = bool(call.args[14])
    if mode not in _MODES:
        raise SymflopsError("unknown recurrent mode in a fused RNN layer",
                            layer="aten.mkldnn_rnn_layer", values={"mode": mode},
                            fix="trace an LSTM or GRU, or report this model")
    steps, batch = (x[1], x[0]) if batch_first else (x[0], x[1])
    return one(formulas.recurrent.recurrent_derivation(_MODES[mode], batch, steps, x[2], hidden,
                                             has_bias))
