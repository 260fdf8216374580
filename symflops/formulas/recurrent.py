"""Recurrent cells (LSTM, GRU): one step's work from the gate equations, times the steps.

For ``B`` rows, input width ``I``, hidden width ``h`` (``p`` the recurrent width: ``h``, or
an LSTM's ``proj_size``), with biases, hand count in the exact convention:

LSTM (torch.nn.LSTM's equations; ``G = 4`` gates i, f, g, o)::

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh      # 4h outputs: length-I and length-p
                                                   # dot products, 2 bias adds, 1 add
    i, f, o = sigmoid(.), g = tanh(.)              # 3h sigmoids (3 each) + h tanh
    c' = f * c + i * g                             # 3h
    h' = o * tanh(c')                              # h tanh + h multiplies
    (proj_size p: h' = (o * tanh(c')) W_hr^T       # p dot products of length h)

per row: ``matmul_mul 4h (I + p)``, ``matmul_add 4h (I - 1 + p - 1)``, ``bias 8h``,
``elementwise 8h`` (4h gate sums, 4h cell arithmetic), ``activation 11h`` (9h + 2h).

GRU (``G = 3`` gates r, z, n), as torch computes it::

    r = sigmoid(x W_ir + b_ir + h W_hr + b_hr)     # h adds, h sigmoids
    z = sigmoid(x W_iz + b_iz + h W_hz + b_hz)     # h adds, h sigmoids
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn))  # h multiplies, h adds, h tanh
    h' = n + z * (h - n)                           # 3h (torch's form of (1 - z) n + z h)

per row: ``matmul_mul 3h (I + h)``, ``matmul_add 3h (I - 1 + h - 1)``, ``bias 6h``,
``elementwise 7h``, ``activation 7h`` (two sigmoids 6h, one tanh h).

A layer runs its cell ``T`` times per direction; layer ``l > 0`` reads the ``D p`` outputs
of the layer below (``D = 2`` if bidirectional).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, add_work, scale_work, work
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_work

__all__ = ["WKV_RATE", "wkv_derivation", "linear_scan_derivation", "RECURRENT_GATES",
           "recurrent_step_work", "recurrent_params", "recurrent_derivation", "hidden_size",
           "proj_size"]

#: gates per cell and the per-row (elementwise, activation) work per hidden unit, with the
#: count spelled out
RECURRENT_GATES: dict[str, tuple[int, int, int, str]] = {
    "lstm": (4, 8, 11, "gate sums 4h, c' = f c + i g 3h, o tanh(c') h; sigmoids 3 x 3h, "
                       "tanh 2h"),
    "gru": (3, 7, 7, "r and z sums 2h, r (h W_hn + b_hn) h, + x part h, n + z (h - n) 3h; "
                     "sigmoids 3 x 2h, tanh h"),
}

#: the hidden width of a recurrent cell
hidden_size = sym.symbol("h")
#: an LSTM's projection width (``proj_size``)
proj_size = sym.symbol("p")


def _gates(cell: str) -> tuple[int, int, int, str]:
    try:
        return RECURRENT_GATES[cell]
    except KeyError:
        raise SymflopsError("unknown recurrent cell", layer="recurrent", values={"cell": cell},
                            fix="use " + " or ".join(RECURRENT_GATES)) from None


def recurrent_step_work(cell: str, rows: Size, input_size: Size, hidden: Size,
                        bias: bool = True, proj: Size | None = None) -> Work:
    """Work of one step of ``cell`` (``"lstm"`` or ``"gru"``) on ``rows`` rows; ``proj``
    is an LSTM's projection width.

    >>> recurrent_step_work("lstm", 2, 4, 8)
    {'matmul_mul': 768, 'matmul_add': 640, 'bias': 128, 'elementwise': 128, 'activation': 176}
    """
    gates, ew, act, _ = _gates(cell)
    rec = hidden if proj is None else proj
    parts = [linear_work(rows, input_size, gates * hidden, bias),
             linear_work(rows, rec, gates * hidden, bias),
             work(elementwise=ew * rows * hidden, activation=act * rows * hidden)]
    if proj is not None:
        parts.append(linear_work(rows, hidden, proj, False))
    return add_work(*parts)


def recurrent_params(cell: str, input_size: Size, hidden: Size, bias: bool = True,
                     proj: Size | None = None) -> Size:
    """Parameters of one cell (one layer, one direction), as torch counts them:
    ``G h (I + p) + 2 G h`` with biases, plus ``p h`` for a projection.

    >>> recurrent_params("lstm", 4, 8), recurrent_params("gru", 4, 8, bias=False)
    (448, 288)
    """
    gates = _gates(cell)[0]
    rec = hidden if proj is None else proj
    return gates * hidden * (input_size + rec) + (2 * gates * hidden if bias else 0) + \
        (0 if proj is None else proj * hidden)


@cache
def _general(cell: str, bias: bool, projected: bool) -> tuple[Work, sp.Expr]:
    proj = proj_size if projected else None
    step = recurrent_step_work(cell, sym.B, sym.I, hidden_size, bias, proj)
    return (scale_work(step, sym.T),
            sp.sympify(recurrent_params(cell, sym.I, hidden_size, bias, proj)))


def recurrent_derivation(cell: str, batch: Size, steps: Size, input_size: Size, hidden: Size,
                         bias: bool = True, proj: Size | None = None) -> Derivation:
    """The derivation of ``T = steps`` steps of one ``cell`` (one layer, one direction) on
    ``B = batch`` rows: ``sf.nn.LSTM``/``GRU`` (per layer and direction), the cells
    (``T = 1``), and the tracer's fused ``aten.mkldnn_rnn_layer``.

    >>> d = recurrent_derivation("gru", 2, 5, 4, 8)
    >>> d.general["activation"], d.work["activation"], d.params
    (7*B*T*h, 560, 336)
    """
    general, params = _general(cell, bool(bias), proj is not None)
    bindings = {sym.B: batch, sym.T: steps, sym.I: input_size, hidden_size: hidden}
    if proj is not None:
        bindings[proj_size] = proj
    gates, ew, act, why = _gates(cell)
    return Derivation(dict(general), params, bindings,
                      f"{cell.upper()}: T steps of B rows; per row {gates}h outputs of x W_ih "
                      f"(length I) and h W_hh (length {'p' if proj is not None else 'h'})"
                      + (" with their biases" if bias else "")
                      + (", a projection to p" if proj is not None else "")
                      + f"; {why}",
                      {"elementwise": f"{ew} per hidden unit and row", "activation":
                       f"{act} per hidden unit and row"})


#: RWKV-4's WKV recurrence (Peng et al. 2023, eq. 14-16, in transformers'
#: ``rwkv_linear_attention_cpu``, which keeps a running maximum for stability), operations
#: per step, batch row and channel, all elementwise:
#:   output:  k + u, max(.), m - max, exp, k + u, - max, exp           7
#:            e1 a + e2 v (3), e1 b + e2 (2), their quotient (1)      6
#:   state:   m + w, max(., k), m + w, - max, exp, k - max, exp       7
#:            a' = e1 a + e2 v (3), b' = e1 b + e2 (2)                5
WKV_RATE = 25


def wkv_derivation(batch: Size, steps: Size, channels: Size) -> Derivation:
    """RWKV's WKV recurrence over ``T = steps`` tokens of ``B = batch`` rows and ``C =
    channels`` channels (:data:`WKV_RATE` per step, row and channel), the loop transformers
    runs on the CPU.

    >>> wkv_derivation(2, 3, 4).work
    {'elementwise': 600}
    """
    return Derivation({"elementwise": WKV_RATE * sym.B * sym.T * sym.C}, sp.Integer(0),
                      {sym.B: batch, sym.T: steps, sym.C: channels},
                      f"WKV: per token, row and channel {WKV_RATE} elementwise operations "
                      "(the output from the running state with its maximum, then the state)")


def linear_scan_derivation(batch: Size, steps: Size, width: Size) -> Derivation:
    """A diagonal linear recurrence ``h_t = a_t h_{t-1} + x_t`` over ``T = steps`` steps of
    ``B = batch`` rows of ``C = width`` channels (RecurrentGemma's RG-LRU scan, De et al.
    2024, *Griffin*, eq. 4): a multiply and an add per step, row and channel.

    >>> linear_scan_derivation(2, 3, 4).work
    {'elementwise': 48}
    """
    return Derivation({"elementwise": 2 * sym.B * sym.T * sym.C}, sp.Integer(0),
                      {sym.B: batch, sym.T: steps, sym.C: width},
                      "linear scan: h = a h + x, a multiply and an add per step and channel")
