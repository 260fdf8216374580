"""The display policy: how an expression is simplified, collected and signed before it is
shown. Rendering, analysis, the CLI and :class:`~symflops.cost.Cost` all use it, so a
formula reads the same wherever it is printed.

- :func:`simplify_expr`: the canonical collected form a Cost stores (expanded, factored when
  that reads shorter, output sizes ``floor(x) + 1`` kept together, positive factors);
- :func:`shown`: the form a rendered table shows (floors, ceilings, Min and Max held as
  opaque symbols while factoring, so it stays fast; long sums only collected);
- :func:`collect`: the cheap common-factor pull used for long sums;
- :func:`tidy`: the plain-text summary's form (floor arguments over one denominator).

>>> from symflops.symbols import H, W
>>> h2 = sp.floor((H - 1) / 2) + 1
>>> simplify_expr(2 * h2 * W + h2 * W)
3*W*(floor(H/2 - 1/2) + 1)
>>> tidy(2 * h2 * W + h2 * W)
3*W*(floor((H - 1)/2) + 1)
"""

from __future__ import annotations

import functools
import math

import sympy as sp

from symflops.formulas.arith import rounded

__all__ = ["simplify_expr", "shown", "collect", "tidy", "clear_cache"]


@functools.lru_cache(maxsize=4096)
def simplify_expr(expr: sp.Expr) -> sp.Expr:
    """Expand and collect an expression by its symbols; floors stay floors.

    Output sizes ``floor(x) + 1`` are kept together as one factor (a strided layer's
    ``H_out``), and factors are written with a positive leading size, so totals read as
    sums of ``coefficient * H_out * W_out``.

    >>> from symflops.symbols import H, W
    >>> simplify_expr(2*H*(W + 1) + H*W)
    H*(3*W + 2)
    >>> h2 = sp.floor((H - 1) / 2) + 1
    >>> simplify_expr(3 * h2 * h2 + h2)
    (floor(H/2 - 1/2) + 1)*(3*floor(H/2 - 1/2) + 4)
    """
    if not expr.free_symbols:
        return expr
    coeff, rest = expr.as_coeff_Mul()
    if coeff.is_Integer and coeff > 1:
        # a layer's formula is often an integer times a shape (channels times sizes):
        # simplify the shape once for every layer sharing it. ``coeff * r`` is the full
        # result when ``r`` is a product with coefficient 1 (nothing to pull or regroup)
        r = simplify_expr(rest)
        if r.is_Mul and r.as_coeff_Mul()[0] == 1 or r.is_Symbol or r.is_Pow:
            return sp.Mul(coeff, r)
    return _simplified(expr)


def _simplified(expr: sp.Expr) -> sp.Expr:
    """:func:`simplify_expr` without the shared-shape shortcut. Each Min and Max is held
    as one symbol meanwhile (SymPy rebuilds a Min at every step, comparing its arguments
    pairwise: a ceil-mode pool's window total took ~0.1 s, a quarter of a first GoogLeNet
    trace), then put back as it was."""
    if _product_of_sizes(expr):
        return expr
    held = sorted(expr.atoms(sp.Min, sp.Max), key=sp.default_sort_key)
    if held:
        names = {a: sp.Dummy(f"held{i}", integer=True) for i, a in enumerate(held)}
        return _simplified(expr.xreplace(names)).xreplace({v: k for k, v in names.items()})
    if not expr.has(sp.floor, sp.ceiling):
        return _positive_factors(_factored(expr))
    # Each floor is held as one symbol while expanding and factoring (its argument expanded
    # first, as expand would): the same algebra, without SymPy re-evaluating the floor and
    # asking its sign at every step (two thirds of a first AlexNet trace). Two candidates:
    # collected in floor(x), and in s = floor(x) + 1 (an output size); the shorter wins,
    # compared in those held forms (a floor counts as one symbol, as in _complexity).
    expr = _canonical_floors(expr)
    floors = sorted(expr.atoms(sp.floor, sp.ceiling), key=sp.default_sort_key)
    opaque = {f: sp.Dummy(f"floor{i}", integer=True) for i, f in enumerate(floors)}
    sizes = {f: sp.Dummy(f"size{i}", integer=True, positive=True)
             for i, f in enumerate(floors)}
    in_floors = _factored(expr.xreplace(opaque))
    in_sizes = _factored(expr.xreplace({f: s - 1 for f, s in sizes.items()}))
    as_floors = {d: f for f, d in opaque.items()}
    lengths = (sp.count_ops(in_floors),
               sp.count_ops(in_sizes.xreplace({s: opaque[f] + 1 for f, s in sizes.items()})))
    candidates = [lambda: in_floors.xreplace(as_floors),
                  lambda: in_sizes.xreplace({s: f + 1 for f, s in sizes.items()})]
    if lengths[0] != lengths[1]:
        best = candidates[lengths.index(min(lengths))]()
    else:  # as long: the first in SymPy's order, as before
        best = min((c() for c in candidates), key=sp.default_sort_key)
    return _positive_factors(best)


def _product_of_sizes(expr: sp.Expr) -> bool:
    """``expr`` is a product of positive integers, symbols and sizes (``floor(x)``,
    ``floor(x) + c`` with ``c`` a positive integer, ``ceiling`` alike; each argument in
    expanded form), each to a positive integer power: what :func:`_simplified` makes of it
    is itself (expanding and factoring it gives it back, no factor reads negative), so it
    is not worked out again. A conv's ``B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1)``
    took 6 ms, a twentieth of a first GoogLeNet trace."""
    for f in sp.Mul.make_args(expr):
        base = f.base if f.is_Pow and f.exp.is_Integer and f.exp > 0 else f
        if base.is_Integer and base > 0 or base.is_Symbol:
            continue
        if base.is_Add and len(base.args) == 2:
            c, r = base.args
            if not (c.is_Integer and c > 0):
                return False
            base = r
        if not isinstance(base, (sp.floor, sp.ceiling)) or base.args[0] != sp.expand(
                base.args[0]):
            return False
    return True


def _complexity(expr: sp.Expr) -> int:
    """Operation count with each floor/ceiling as one symbol (how long it reads)."""
    rounded = expr.atoms(sp.floor, sp.ceiling)
    plain = expr.xreplace({f: sp.Dummy() for f in rounded}) if rounded else expr
    return int(sp.count_ops(plain))


def _canonical_floors(expr: sp.Expr) -> sp.Expr:
    """One spelling per floor: ``factor`` writes ``floor((H - 1)/2)`` where the rest of the
    tree has ``floor(H/2 - 1/2)``; expanding the argument makes them the same object."""
    respelled = {}
    for f in expr.atoms(sp.floor, sp.ceiling):
        arg = sp.expand(f.args[0])
        if arg != f.args[0]:  # an expanded argument is spelled as SymPy spells it already
            respelled[f] = rounded(f.func, arg)
    return expr.xreplace(respelled) if respelled else expr


def _factored(expr: sp.Expr) -> sp.Expr:
    """Expanded, then factored when that reads shorter (small polynomials only). A
    product of sums in disjoint unknowns whose expansion is long (an adaptive pool's H
    windows times its W windows) stays a product, each sum collected on its own: the
    expansion has a term for every pair, none of which can combine with another of them
    (VGG's pool: 196 terms, 1,847 operations, and half of a first VGG-11 trace spent
    expanding them).

    >>> from symflops.symbols import H, W
    >>> rows = sum(sp.ceiling(i * H / 5) for i in range(1, 6))  # 5 terms in H
    >>> cols = sum(sp.ceiling(i * W / 5) for i in range(1, 6))  # 5 in W: 25 pairs
    >>> _factored(rows * cols) == rows * cols
    True
    >>> _factored((H + 1) * (W + 1) - H * W)  # 4 pairs: expanded, they cancel
    H + W + 1
    """
    held, sums, pairs = _disjoint_sums_held(expr)
    # only where expanding makes more terms than full factoring takes back (a short
    # product is expanded as before: other terms may cancel its pairs, (H + 1)*(W + 1) - H*W
    # reads H + W + 1, and the forms shown for it stay as they were); for a long one the
    # other terms would have to cancel most of the pairs
    if pairs > _FACTOR_LIMIT:
        return _factored(held).xreplace({d: _factored(f) for f, d in sums.items()})
    return _expanded_and_factored(expr)


def _expanded_and_factored(expr: sp.Expr) -> sp.Expr:
    expanded = sp.expand(expr)
    best = sp.factor_terms(expanded)
    # full factoring only pays (and stays fast) for small polynomials in few unknowns
    generators = len(expanded.free_symbols) + len(expanded.atoms(sp.floor, sp.ceiling))
    if len(sp.Add.make_args(expanded)) <= _FACTOR_LIMIT and generators <= _FACTOR_GENERATORS:
        factored = sp.factor(expanded)
        if _complexity(factored) < _complexity(best):
            best = factored
    return best


def _disjoint_sums_held(expr: sp.Expr) -> tuple[sp.Expr, dict[sp.Expr, sp.Dummy], int]:
    """``expr`` with the sums of each term that multiplies two or more sums in pairwise
    disjoint unknowns held as symbols, those sums (none: ``expr`` as it was), and how many
    terms expanding those products would make."""
    sums: dict[sp.Expr, sp.Dummy] = {}
    terms = []
    pairs = 0
    for term in sp.Add.make_args(expr):
        factors = sp.Mul.make_args(term)
        added = [f for f in factors if f.is_Add and f.free_symbols]
        unknowns = [f.free_symbols for f in added]
        if len(added) < 2 or sum(map(len, unknowns)) != len(set().union(*unknowns)):
            terms.append(term)
            continue
        held = [sums.setdefault(f, sp.Dummy(f"sum{len(sums)}")) if f in added else f
                for f in factors]
        terms.append(sp.Mul(*held))
        pairs += math.prod(len(f.args) for f in added)
    return (sp.Add(*terms), sums, pairs) if sums else (expr, {}, 0)


def _reads_negative(factor: sp.Expr) -> bool:
    """True when a sum is better written negated: its highest-degree terms add up to a
    negative coefficient, or (a tie) most of its terms are negative."""
    def degree(term: sp.Expr) -> int:
        total = 0
        for f in sp.Mul.make_args(term):
            if f.is_number:
                continue
            total += int(f.exp) if f.is_Pow and f.exp.is_Integer else 1
        return total

    terms = sp.Add.make_args(factor)
    top = max(degree(t) for t in terms)
    lead = sum(t.as_coeff_Mul()[0] for t in terms if degree(t) == top)
    if lead != 0:
        return bool(lead < 0)
    return sum(1 for t in terms if t.as_coeff_Mul()[0] < 0) * 2 > len(terms)


def _positive_factors(expr: sp.Expr) -> sp.Expr:
    """``-2*(H - K + 1)*(K - W - 1)`` -> ``2*(H - K + 1)*(W - K + 1)``: flip factors whose
    terms are mostly negative, keeping the product's value."""
    if expr.is_Add:
        return sp.Add(*(_positive_factors(a) for a in expr.args))
    if not expr.is_Mul:
        return expr
    sign = 1
    factors = []
    for f in expr.args:
        base, exp = (f.base, f.exp) if f.is_Pow else (f, sp.Integer(1))
        if base.is_Add and exp.is_Integer and _reads_negative(base):
            factors.append(sp.Pow(-base, exp))
            sign *= (-1) ** int(exp)
        else:
            factors.append(f)
    return sp.Mul(sign, *factors) if sign == -1 or factors != list(expr.args) else expr


#: polynomials with more terms than this are only collected, not factored (factoring is slow)
_FACTOR_LIMIT = 24
#: ... or with more unknowns (symbols and floors) than this
_FACTOR_GENERATORS = 8


#: the atoms :func:`shown` holds as symbols while factoring
_OPAQUE = (sp.floor, sp.ceiling, sp.Min, sp.Max)

#: sums with more terms than this are collected (:func:`collect`), not factored, by shown
_SHOWN_FACTOR_TERMS = 8


@functools.lru_cache(maxsize=8192)
def shown(expr: sp.Expr) -> sp.Expr:
    """An expression as a render shows it: :func:`simplify_expr`, with every floor,
    ceiling, Min and Max first replaced by a plain symbol (factoring a polynomial in a
    few symbols is fast; SymPy factoring the floors themselves is slow), then put back.
    Long sums are only collected (:func:`collect`).

    >>> from symflops.symbols import H, W
    >>> shown(2 * sp.floor(H / 2) * W + 4 * sp.floor(H / 2))
    2*(W + 2)*floor(H/2)
    """
    if not expr.free_symbols:
        return expr
    if not expr.has(*_OPAQUE):
        return simplify_expr(expr)
    if not expr.is_Add:  # a product of simplified factors reads best as it is
        return expr
    opaque = sorted((a for a in expr.atoms(*_OPAQUE)), key=sp.default_sort_key)
    names = {a: sp.Symbol(f"_opaque{i}") for i, a in enumerate(opaque)}
    poly = sp.expand(expr.xreplace(names))
    if len(sp.Add.make_args(poly)) > _SHOWN_FACTOR_TERMS:
        return collect(sp.expand(expr))
    back = {v: k for k, v in names.items()}
    return simplify_expr(poly).xreplace(back)


def collect(expr: sp.Expr) -> sp.Expr:
    """Pull the common numeric and symbolic factor out of a sum (a cheap factor_terms):
    ``256 B (74 floor(...) + ...)``.

    >>> from symflops.symbols import B, H
    >>> collect(sp.expand(256 * B * (74 * sp.floor(H / 2) + 3 * H)))
    256*B*(3*H + 74*floor(H/2))
    """
    terms = sp.Add.make_args(expr)
    if len(terms) == 1:
        return expr
    content, prim = expr.primitive()
    common: dict[sp.Expr, sp.Expr] | None = None
    for t in sp.Add.make_args(prim):
        powers = {b: e for b, e in (f.as_base_exp() for f in sp.Mul.make_args(t))
                  if not b.is_number and e.is_Integer and e > 0}
        common = powers if common is None else {
            b: min(e, powers[b]) for b, e in common.items() if b in powers}
        if not common:
            break
    factor = sp.Mul(*(b**e for b, e in (common or {}).items()))
    if factor != 1:
        prim = sp.Add(*(t / factor for t in sp.Add.make_args(prim)))
    if content == 1:
        return factor * prim
    return sp.Mul(content, factor, prim, evaluate=False) if factor != 1 else \
        sp.Mul(content, prim, evaluate=False)


def tidy(expr: sp.Expr) -> sp.Expr:
    """:func:`simplify_expr`, with each floor's argument over one denominator (the
    plain-text summary's form): ``floor((H - 1)/2)`` rather than ``floor(H/2 - 1/2)``.
    The result is for printing only (the floors are left unevaluated)."""
    if expr.is_number:
        return expr
    simple = simplify_expr(expr)
    rounded = simple.atoms(sp.floor, sp.ceiling)
    return simple.xreplace({f: f.func(sp.factor_terms(f.args[0]), evaluate=False)
                            for f in rounded})


def clear_cache() -> None:
    """Forget the memoised display forms (benchmarks time a first render)."""
    simplify_expr.cache_clear()
    shown.cache_clear()
