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

GLU (gated linear unit) splits its input in two halves ``a, b`` along a dim and returns
``a * sigmoid(b)``: per output element a sigmoid (3: exp(-x), add 1, divide) and a
multiply, ``4`` (kind ``activation``).

Softmax over a row of ``n`` (the numerically stable form torch computes):
``n - 1`` compares for the max, ``n`` subtracts, ``n`` exps, ``n - 1`` adds, ``n``
divides: ``5n - 2``.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, work
from symflops.formulas.derivation import Derivation

__all__ = ["glu_grad_derivation",
           "ACTIVATION_RATES", "activation_work", "softmax_work", "log_softmax_work",
           "elementwise_work", "activation_derivation", "softmax_derivation",
           "log_softmax_derivation", "elementwise_derivation", "GLU_RATE", "glu_work",
           "glu_derivation", "ACTIVATION_GRAD_RATES", "activation_grad_derivation",
           "softmax_grad_derivation", "dropout_derivation", "dropout_grad_derivation",
           "grad_accumulation_derivation", "DROPOUT_RATE", "DROPOUT_GRAD_RATE",
           "COMPLEX_RATES", "complex_rate", "POLAR_RATE"]

#: exact-convention operations per output element of GLU, with the count spelled out
GLU_RATE: tuple[int, str] = (4, "sigmoid of the gate half (3: exp(-x), add 1, divide) and a "
                                "multiply by the other half")

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


@cache
def _activation_general(name: str) -> Work:
    return activation_work(name, sym.M)


def activation_derivation(name: str, numel: Size) -> Derivation:
    """The derivation of activation ``name`` over ``M = numel`` elements; the rate and
    its operation-by-operation count come from :data:`ACTIVATION_RATES`.

    >>> d = activation_derivation("silu", 10)
    >>> d.work, d.explanation
    ({'activation': 40}, '4 per element: sigmoid (3) and a multiply')
    """
    general = _activation_general(name)
    rate, why = ACTIVATION_RATES[name]
    return Derivation(dict(general), sp.Integer(0), {sym.M: numel},
                      f"{rate} per element: {why}",
                      {"activation": f"{rate} per element ({why})"})


@cache
def _row_general(log: bool) -> Work:
    return (log_softmax_work if log else softmax_work)(sym.M, sym.N)


def softmax_derivation(rows: Size, n: Size) -> Derivation:
    """The derivation of softmax over ``M = rows`` rows of ``N = n`` values.

    >>> softmax_derivation(3, 4).work
    {'softmax': 54}
    """
    return Derivation(dict(_row_general(False)), sp.Integer(0), {sym.M: rows, sym.N: n},
                      "per row of N: N - 1 compares (max), N subtracts, N exps, N - 1 adds, "
                      "N divides")


def log_softmax_derivation(rows: Size, n: Size) -> Derivation:
    """The derivation of log-softmax over ``M = rows`` rows of ``N = n`` values.

    >>> log_softmax_derivation(3, 4).work
    {'softmax': 57}
    """
    return Derivation(dict(_row_general(True)), sp.Integer(0), {sym.M: rows, sym.N: n},
                      "per row of N: max, subtract, exp, sum, log, subtract")


@cache
def _elementwise_general(ops_per_element: Size) -> Work:
    return elementwise_work(sym.M, ops_per_element)


def elementwise_derivation(numel: Size, ops_per_element: Size = 1,
                           explanation: str = "one add per output element") -> Derivation:
    """The derivation of plain pointwise arithmetic over ``M = numel`` outputs.

    >>> elementwise_derivation(6, 2, "fused multiply-add: 2 per output element").work
    {'elementwise': 12}
    """
    return Derivation(dict(_elementwise_general(ops_per_element)), sp.Integer(0),
                      {sym.M: numel}, explanation)


def glu_work(outputs: Size) -> Work:
    """Work of GLU producing ``outputs`` elements (from twice as many inputs).

    >>> glu_work(6)
    {'activation': 24}
    """
    return work(activation=GLU_RATE[0] * outputs)


@cache
def _glu_general() -> Work:
    return glu_work(sym.M)


def glu_derivation(outputs: Size) -> Derivation:
    """The derivation of GLU (``sf.nn.GLU`` and ``aten.glu``): ``M = outputs`` gated
    elements, 4 each.

    >>> glu_derivation(6).work
    {'activation': 24}
    """
    rate, why = GLU_RATE
    return Derivation(dict(_glu_general()), sp.Integer(0), {sym.M: outputs},
                      f"{rate} per output element: {why}",
                      {"activation": f"{rate} per output element ({why})"})


#: exact-convention operations per element of each activation's gradient, op by op as
#: torch's CPU kernels compute it (their vectorized forms evaluate every branch of a
#: ``where``; a compare counts, the select does not)
ACTIVATION_GRAD_RATES: dict[str, tuple[int, str]] = {
    "relu": (1, "compare x <= 0 (the select is free)"),
    "relu6": (2, "two compares"),
    "leaky_relu": (2, "compare, grad times the slope"),
    "sigmoid": (3, "1 - y, times y, times grad"),
    "tanh": (3, "y*y, 1 - it, times grad"),
    "silu": (8, "sigmoid (3), grad*sigmoid, 1 - sigmoid, times x, 1 + it, times"),
    "gelu": (11, "cdf: x/sqrt(2), erf, add 1, times 0.5 (4); pdf: x*x, times -0.5, exp, "
                 "times 1/sqrt(2 pi) (4); x*pdf, cdf + it, times grad (3)"),
    "gelu_tanh": (18, "x^2, x^3, times 0.044715, add x, times sqrt(2/pi), tanh (6); 0.5 x, "
                      "1 + tanh, times 0.5 (3); tanh^2, 1 - it (2); times x^2, add 1, times "
                      "sqrt(2/pi) (3); two multiplies (2); add, times grad (2)"),
    "hardswish": (5, "two compares, x/3, add 0.5, times grad"),
    "hardsigmoid": (3, "two compares, grad times 1/6"),
    "elu": (7, "compare; grad*input_scale*alpha*scale*exp(x*input_scale) (5); grad*scale"),
    "elu_from_result": (5, "compare; grad*input_scale*(y + alpha*scale) (3); grad*scale"),
}


@cache
def _grad_general(rate: int) -> Work:
    return work(elementwise=rate * sym.M)


def activation_grad_derivation(name: str, numel: Size) -> Derivation:
    """The derivation of an activation's gradient over ``M = numel`` elements.

    >>> activation_grad_derivation("silu", 10).work
    {'elementwise': 80}
    """
    rate, why = ACTIVATION_GRAD_RATES[name]
    return Derivation(dict(_grad_general(rate)), sp.Integer(0), {sym.M: numel},
                      f"{name} gradient, {rate} per element: {why}")


@cache
def _softmax_grad_general() -> Work:
    return work(elementwise=sym.M * (4 * sym.N - 1))


def softmax_grad_derivation(rows: Size, n: Size, *, log: bool = False) -> Derivation:
    """The derivation of the softmax (or log-softmax) gradient over ``M = rows`` rows of
    ``N = n``: per row ``4 N - 1``. Softmax: ``g*y`` (N), its row sum (N - 1), ``y`` times
    the sum (N), subtract (N). Log-softmax: ``exp(y)`` (N), the row sum of ``g``
    (N - 1), multiply (N), subtract (N).

    >>> softmax_grad_derivation(2, 5).work
    {'elementwise': 38}
    """
    what = ("log-softmax gradient: exp(y), the row sum of grad, multiply, subtract" if log
            else "softmax gradient: grad*y, its row sum, y times the sum, subtract")
    return Derivation(dict(_softmax_grad_general()), sp.Integer(0), {sym.M: rows, sym.N: n},
                      f"{what}: 4 N - 1 per row of N")


def glu_grad_derivation(outputs: Size) -> Derivation:
    """GLU's gradient (``aten.glu_backward``) per output element: ``s = sigmoid(b)`` (3),
    ``grad_a = g s`` (1), ``grad_b = (1 - s) s a g`` (4): 8.

    >>> glu_grad_derivation(5).work
    {'elementwise': 40}
    """
    return elementwise_derivation(
        outputs, 8, "GLU gradient: sigmoid of the gate (3), grad times it (1), "
        "(1 - s) s a grad (4): 8 per output element")


#: dropout in training, per element: the compare ``rand > p``, the multiply by the mask
#: and by ``1 / (1 - p)`` (drawing the random numbers is not arithmetic)
DROPOUT_RATE = 3
#: dropout's gradient per element: the mask times the scale, times the gradient
DROPOUT_GRAD_RATE = 2


def dropout_derivation(numel: Size) -> Derivation:
    """Dropout in training (``aten.native_dropout``): 3 per element.

    >>> dropout_derivation(10).work
    {'elementwise': 30}
    """
    return elementwise_derivation(
        numel, DROPOUT_RATE, "dropout in training: the mask compare rand > p, the multiply "
        "by the mask and by 1/(1 - p): 3 per element")


def dropout_grad_derivation(numel: Size) -> Derivation:
    """Dropout's gradient (``aten.native_dropout_backward``): 2 per element.

    >>> dropout_grad_derivation(10).work
    {'elementwise': 20}
    """
    return elementwise_derivation(numel, DROPOUT_GRAD_RATE,
                                  "dropout gradient: the mask times the scale, times grad")


def grad_accumulation_derivation(numel: Size) -> Derivation:
    """A tensor used twice (a residual's input) gets two gradients; autograd adds them:
    one add per element.

    >>> grad_accumulation_derivation(6).work
    {'elementwise': 6}
    """
    return elementwise_derivation(numel, 1, "gradient accumulation: the two gradients of a "
                                            "tensor used twice, added (1 per element)")


#: real operations per output element of complex arithmetic, by (op, both operands
#: complex): with ``x = a + bi`` and ``y = c + di``,
#:   x + y = (a + c) + (b + d)i                       2 adds      (x + c: 1)
#:   x * y = (ac - bd) + (ad + bc)i                   4 mul 2 add (x * c: 2 mul)
#:   x / y = ((ac + bd) + (bc - ad)i) / (c^2 + d^2)   6 mul 3 add 2 div: 11 (x / c: 2 div)
#: (the textbook forms; a kernel that scales to avoid overflow, Smith's algorithm, does
#: other work for the same values)
COMPLEX_RATES: dict[tuple[str, bool], int] = {
    ("add", True): 2, ("add", False): 1, ("sub", True): 2, ("sub", False): 1,
    ("mul", True): 6, ("mul", False): 2, ("div", True): 11, ("div", False): 2}

#: ``polar(r, theta) = r cos(theta) + i r sin(theta)``: a cosine, a sine and two multiplies
#: per output element
POLAR_RATE = 4


def complex_rate(op: str, both_complex: bool) -> int:
    """Real operations per element of ``op`` (add, sub, mul, div) on complex tensors,
    ``both_complex`` when neither operand is real (:data:`COMPLEX_RATES`).

    >>> complex_rate("mul", True), complex_rate("mul", False)
    (6, 2)
    """
    return COMPLEX_RATES[(op, both_complex)]
