"""Activations, softmax and elementwise arithmetic.

Per-element rates in the exact convention (each transcendental, exp/erf/tanh,
counts as one operation):

=============  ====  ===============================================================
relu           1     one compare
relu6          2     two compares
leaky_relu     2     compare, multiply
sigmoid        3     exp(-x), add 1, divide
tanh           1     one transcendental
silu           4     sigmoid (3) and a multiply
gelu           5     x / sqrt(2), erf, add 1, times 0.5, times x
gelu_tanh      9     x^3 (2), times 0.044715, add x, times sqrt(2/pi), tanh, add 1,
                     times 0.5, times x
hardswish      5     add 3, two compares, multiply, divide by 6
hardsigmoid    4     add 3, two compares, divide by 6
elu            4     compare, exp, subtract 1, multiply by alpha
softplus       3     exp, add 1, log
mish           5     softplus (3), tanh, multiply
=============  ====  ===============================================================

Softmax over a row of ``n`` (the numerically stable form torch computes):
``n - 1`` compares for the max, ``n`` subtracts, ``n`` exps, ``n - 1`` adds, ``n``
divides: ``5n - 2``.
"""

from __future__ import annotations

from symflops.errors import SymflopsError
from symflops.formulas._arith import Size, Work, work

__all__ = ["ACTIVATION_RATES", "activation_work", "softmax_work", "log_softmax_work",
           "elementwise_work"]

#: Exact-convention operations per element of each activation, with the count spelled out.
ACTIVATION_RATES: dict[str, tuple[int, str]] = {
    "relu": (1, "one compare"),
    "relu6": (2, "two compares"),
    "leaky_relu": (2, "compare, multiply"),
    "sigmoid": (3, "exp(-x), add 1, divide"),
    "tanh": (1, "one transcendental"),
    "silu": (4, "sigmoid (3) and a multiply"),
    "gelu": (5, "x/sqrt(2), erf, add 1, times 0.5, times x"),
    "gelu_tanh": (9, "x^3 (2), times 0.044715, add x, times sqrt(2/pi), tanh, add 1, "
                     "times 0.5, times x"),
    "hardswish": (5, "add 3, two compares, multiply, divide by 6"),
    "hardsigmoid": (4, "add 3, two compares, divide by 6"),
    "elu": (4, "compare, exp, subtract 1, multiply by alpha"),
    "softplus": (3, "exp, add 1, log"),
    "mish": (5, "softplus (3), tanh, multiply"),
}


def activation_work(name: str, numel: Size) -> Work:
    """Work of activation ``name`` over ``numel`` elements.

    >>> activation_work("gelu", 10)
    {'activation': 50}
    """
    try:
        rate = ACTIVATION_RATES[name][0]
    except KeyError:
        raise SymflopsError("unknown activation", layer="activation", values={"name": name},
                            fix="use one of " + ", ".join(ACTIVATION_RATES)) from None
    return work(activation=rate * numel)


def softmax_work(rows: Size, n: Size) -> Work:
    """``rows * (5 n - 2)``."""
    return work(softmax=rows * (5 * n - 2))


def log_softmax_work(rows: Size, n: Size) -> Work:
    """Max, subtract, exp, sum, log, subtract: ``rows * (5 n - 1)``."""
    return work(softmax=rows * (5 * n - 1))


def elementwise_work(numel: Size, ops_per_element: Size = 1) -> Work:
    """Plain pointwise arithmetic, e.g. a residual add: ``numel * ops_per_element``."""
    return work(elementwise=numel * ops_per_element)
