"""Selective state spaces (Mamba, Gu & Dao 2023, arXiv:2312.00752): the selective scan.

For ``B`` sequences of ``T`` steps, ``D`` channels (Mamba's ``d_inner``, ``expand * dim``)
and a state of ``N`` per channel (``d_state``), with input-dependent ``dt`` ``(B, D, T)``,
``B_t``, ``C_t`` ``(B, T, N)`` and the diagonal ``A`` ``(D, N)`` (the paper's Algorithm 2 and
eq. 2a-2b, as transformers' ``mamba_selective_scan`` computes them), hand count, exact
convention, per ``(b, d, t, n)``:

* discretize: ``A dt`` (1 multiply), ``exp`` (1): ``A_bar``; ``dt B_t`` (1), times ``x`` (1):
  ``B_bar x``: 4 ``elementwise``;
* the recurrence ``h_t = A_bar h_{t-1} + B_bar x_t``: a multiply and an add, 2
  ``elementwise`` (the first step multiplies the zero state too, as the code does);
* the output ``y_t = C_t . h_t``: per ``(b, d, t)`` a length-``N`` dot product, ``N``
  multiplies and ``N - 1`` adds (``matmul_mul`` / ``matmul_add``: the ``bmm`` torch runs, which
  the ``torch`` convention and FlopCounterMode count as ``2 N``);

so ``B T D (8 N - 1)`` for the scan proper, plus per ``(b, d, t)`` the ``dt`` bias and
softplus, the ``D x`` skip (2) and the gate ``y * silu(z)`` (1 and the activation) that the
model adds. The paper's appendix and its reference code count the scan as ``9 B L D N``
(discretization, recurrence and output at 9 per element, the output's adds rounded up to
one per element): here ``8 B T D N - B T D``, the adds of a length-``N`` dot product being
``N - 1``.

A trace of transformers' ``MambaMixer`` records the recurrence (the Python loop over ``T``
that would fix ``T``) as one op whose work is :func:`selective_scan_derivation`; the
discretization, skip and gate are traced as torch runs them.

>>> selective_scan_work(2, 3, 5, 4)
{'matmul_mul': 120, 'matmul_add': 90, 'elementwise': 240}
>>> scan_total(1, 1, 1, 16)    # one element of the scan: 8 N - 1
127
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["d_inner", "d_state", "selective_scan_work", "selective_scan_derivation",
           "scan_total"]

#: channels of the scan (Mamba's ``d_inner = expand * dim``) and the state per channel
d_inner = sym.symbol("d_inner")
d_state = sym.symbol("d_state")


def selective_scan_work(batch: Size, channels: Size, steps: Size, state: Size) -> Work:
    """The recurrence and output of a selective scan (not its discretization): per step and
    ``(b, d)``, the state update (``2 N`` elementwise) and ``y = C . h`` (``N`` multiplies,
    ``N - 1`` adds)."""
    rows = batch * channels * steps
    return work(matmul_mul=rows * state, matmul_add=rows * (state - 1),
                elementwise=2 * rows * state)


@cache
def _general() -> Work:
    return selective_scan_work(sym.B, d_inner, sym.T, d_state)


def selective_scan_derivation(batch: Size, channels: Size, steps: Size, state: Size
                              ) -> Derivation:
    """The derivation of the recurrence ``h_t = A_bar h_{t-1} + B_bar x_t``, ``y_t = C_t .
    h_t`` over ``T = steps`` steps of ``B = batch`` sequences, ``d_inner = channels``,
    ``d_state = state``.

    >>> d = selective_scan_derivation(sym.B, 64, sym.T, 16)
    >>> d.general["elementwise"], d.work["matmul_add"]
    (2*B*T*d_inner*d_state, 960*B*T)
    """
    return Derivation(dict(_general()), sp.Integer(0),
                      {sym.B: batch, d_inner: channels, sym.T: steps, d_state: state},
                      "selective scan: per step, sequence and channel the state update "
                      "h = A_bar h + B_bar x (a multiply and an add per state element) and "
                      "the output C . h (a length-d_state dot product)",
                      {"elementwise": "2 per state element and step",
                       "matmul_mul": "d_state per channel and step (the output)"})


def scan_total(batch: Size, channels: Size, steps: Size, state: Size) -> Size:
    """The whole scan in the exact convention (discretization 4, recurrence 2, output
    ``2N - 1`` per channel): ``B T D (8 N - 1)``; the paper rounds it to ``9 B L D N``."""
    return batch * channels * steps * (8 * state - 1)
