"""Sorting and histograms (``aten.sort``, ``aten.histc``): the routing of a mixture of
experts (transformers' grouped experts sort the ``T k`` expert ids and count them per
expert), and any model that sorts.

Both are compares and adds, no multiply-accumulate: they count under the exact convention
(kind ``elementwise``) and are 0 under ``torch`` and ``macs``, which count only
multiply-accumulates (``FlopCounterMode`` has no formula for either op).

Hand counts, exact convention:

* **sort** of ``n`` values (per row): how many compares a sort makes depends on the data and
  the algorithm, so the count is the worst case of one named algorithm, top-down merge sort
  (Knuth, TAOCP vol. 3, 5.2.4, exercise 14): merging runs of ``a`` and ``b`` values takes at
  most ``a + b - 1`` compares, so ``W(1) = 0`` and ``W(n) = W(ceil(n/2)) + W(floor(n/2)) +
  n - 1``, whose solution is ``W(n) = sum_{i=1..n} ceil(log2 i) = n L - 2^L + 1`` with ``L =
  ceil(log2 n)``, between ``n log2 n - n + 1`` and ``n log2 n - 0.914 n + 1``; every
  comparison sort needs ``ceil(log2 n!) = n log2 n - 1.443 n + O(log n)`` in its worst case
  (``W(8) = 17``, ``ceil(log2 8!) = 16``). The indices torch returns move with the values
  (no arithmetic).
* **histc** of ``n`` values into ``bins`` bins over ``[min, max]`` (torch's CPU kernel):
  per value 2 compares (is it inside ``[min, max]``), a subtract and a multiply by the
  precomputed ``bins / (max - min)`` (its bin; the rounding down to an index is a
  conversion), and an add to that bin's count: 5 per value. The scale is computed once
  per call, and moving a value equal to ``max`` into the last bin is a compare of integer
  indices: neither is counted.

>>> sort_work(1, 8), sort_work(3, 5)
({'elementwise': 17}, {'elementwise': 24})
>>> histogram_work(10)
{'elementwise': 50}
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, is_int, work
from symflops.formulas.derivation import Derivation

__all__ = ["ceil_log2", "merge_sort_compares", "sort_work", "sort_derivation",
           "histogram_work", "histogram_derivation", "HISTOGRAM_RATE"]

#: values per row of a sort
n_sort = sym.symbol("n")
#: exact-convention operations per value of a histogram (2 compares, subtract, multiply,
#: add)
HISTOGRAM_RATE = 5


class ceil_log2(sp.Function):  # noqa: N801 (a SymPy function reads as one)
    r"""``ceil(log2 n)`` for an integer ``n >= 1``: the bits of ``n - 1`` (``0`` for ``n = 1``),
    computed exactly (``int.bit_length``), never through a float logarithm. Symbolic
    arguments stay as they are; it prints ``\lceil \log_2 n \rceil`` in LaTeX.

    >>> ceil_log2(1), ceil_log2(8), ceil_log2(9), ceil_log2(2**70 + 1)
    (0, 3, 4, 71)
    >>> from symflops.symbols import N
    >>> ceil_log2(N).is_integer, ceil_log2(N).is_nonnegative
    (True, True)
    """

    is_integer = True
    is_nonnegative = True

    @classmethod
    def eval(cls, n: Any) -> Any:
        if isinstance(n, sp.Integer):
            if n < 1:
                raise SymflopsError("ceil(log2 n) needs n >= 1", layer="sort",
                                    values={"n": int(n)}, fix="sort at least one value")
            return sp.Integer((int(n) - 1).bit_length())
        if n.is_number and not n.is_Integer:
            raise SymflopsError("ceil(log2 n) needs an integer n", layer="sort",
                                values={"n": str(n)}, fix="give an integer size")
        return None

    def _latex(self, printer: Any) -> str:
        return r"\left\lceil \log_2 " + printer._print(self.args[0]) + r" \right\rceil"

    def _numpycode(self, printer: Any) -> str:
        # no vectorized integer program: symflops.evaluate computes it exactly with SymPy
        raise TypeError("ceil_log2 is evaluated point by point")


def merge_sort_compares(n: Size) -> Size:
    """``W(n) = n L - 2^L + 1``, ``L = ceil(log2 n)``: the most compares a top-down merge
    sort of ``n >= 1`` values makes (0 for no values).

    >>> [merge_sort_compares(n) for n in range(9)]
    [0, 0, 1, 3, 5, 8, 11, 14, 17]
    """
    if is_int(n):
        if int(n) < 0:
            raise SymflopsError("a sort of a negative number of values", layer="sort",
                                values={"n": int(n)}, fix="give a size >= 0")
        if int(n) == 0:
            return 0
        lg = (int(n) - 1).bit_length()
        return int(n) * lg - 2 ** lg + 1
    lg = ceil_log2(n)
    return n * lg - 2 ** lg + 1


def sort_work(rows: Size, n: Size) -> Work:
    """Compares of sorting ``rows`` rows of ``n`` values (merge sort's worst case)."""
    return work(elementwise=rows * merge_sort_compares(n))


@cache
def _sort_general() -> Work:
    return sort_work(sym.M, n_sort)


def sort_derivation(rows: Size, n: Size) -> Derivation:
    """``M = rows`` rows of ``n`` values sorted (``aten.sort``, ``argsort``): merge sort's
    worst case per row, compares only.

    >>> d = sort_derivation(2, 16)
    >>> d.work, d.general["elementwise"]
    ({'elementwise': 98}, M*(-2**ceil_log2(n) + n*ceil_log2(n) + 1))
    """
    if is_int(n) and int(n) == 0:
        return Derivation({}, 0, {}, "a sort of no values: no compares")
    return Derivation(dict(_sort_general()), 0, {sym.M: rows, n_sort: n},
                      "sort: per row the worst case of a top-down merge sort, n L - 2^L + 1 "
                      "compares (L = ceil(log2 n)); 0 under torch and macs (compares are "
                      "not multiply-accumulates)",
                      {"elementwise": "n ceil(log2 n) - 2^ceil(log2 n) + 1 compares per row"})


def histogram_work(values: Size) -> Work:
    """A histogram (``histc``) of ``values`` values: 5 per value."""
    return work(elementwise=HISTOGRAM_RATE * values)


@cache
def _histogram_general() -> Work:
    return histogram_work(sym.M)


def histogram_derivation(values: Size) -> Derivation:
    """``M = values`` values counted into bins (``aten.histc``): per value 2 range compares,
    a subtract and a multiply (its bin) and an add (its count).

    >>> histogram_derivation(6).work
    {'elementwise': 30}
    """
    return Derivation(dict(_histogram_general()), 0, {sym.M: values},
                      "histogram: per value 2 range compares, a subtract and a multiply "
                      "(its bin) and an add (its count); 0 under torch and macs",
                      {"elementwise": f"{HISTOGRAM_RATE} per value"})
