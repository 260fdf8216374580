"""How a cost grows: aligned polynomials, growth orders, leading terms, breakdowns,
crossovers, sweeps, plots and comparisons.

Every function takes a :class:`~symflops.cost.Cost` (its ``quantity``, ``"flops"`` by
default) or a SymPy expression. Symbols may be given as Symbols or by name.

>>> import symflops as sf
>>> from symflops import analysis as A
>>> from symflops.symbols import B, H, W
>>> stem = sf.nn.Sequential(sf.nn.Conv2d(3, 8, 3, stride=2, padding=1), sf.nn.ReLU())
>>> c = stem.cost((B, 3, H, W), convention="macs")
>>> c.flops
216*B*(floor(H/2 - 1/2) + 1)*(floor(W/2 - 1/2) + 1)
>>> A.aligned(c, {H: 2, W: 2}).flops
54*B*H*W
>>> A.growth_order(c, [H, W]), A.growth_order(c, "H")
(2, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import sympy as sp

from symflops.cost import Cost, simplify_expr
from symflops.errors import SymflopsError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "expression", "relax_floors", "aligned", "alignment", "total_stride", "growth_order",
    "Term", "terms", "leading_terms", "Share", "breakdown", "term_breakdown", "Crossover",
    "crossover", "Sweep", "sweep", "fit_slope", "plot", "Comparison", "compare",
]

Costlike: TypeAlias = Cost | sp.Expr | int
SymbolLike: TypeAlias = sp.Symbol | str


# ----------------------------------------------------------------------------- helpers
def expression(x: Costlike, quantity: str = "flops") -> sp.Expr:
    """The expression to analyse: ``x.quantity(quantity)`` for a Cost, ``x`` itself else."""
    if isinstance(x, Cost):
        return x.quantity(quantity)
    if isinstance(x, bool):
        raise SymflopsError("expected a Cost or an expression", values={"value": x})
    if isinstance(x, (int, np.integer)):
        return sp.Integer(int(x))
    if isinstance(x, sp.Expr):
        return x
    raise SymflopsError("expected a Cost or a SymPy expression",
                        values={"type": type(x).__name__},
                        fix="pass a Cost, or parse text with symflops.parse.parse_expr")


def _free(x: Costlike) -> set[sp.Symbol]:
    if isinstance(x, Cost):
        return x.free_symbols
    return expression(x).free_symbols


def _symbol(s: SymbolLike, known: Iterable[sp.Symbol] = ()) -> sp.Symbol:
    if isinstance(s, sp.Symbol):
        return s
    if isinstance(s, str):
        from symflops.parse import parse_name
        from symflops.symbols import symbol

        name = parse_name(s)
        for k in known:
            if k.name == name:
                return k
        return symbol(name)
    raise SymflopsError("expected a symbol or a symbol name", values={"symbol": repr(s)})


def _symbols(syms: SymbolLike | Iterable[SymbolLike], known: Iterable[sp.Symbol] = ()
             ) -> tuple[sp.Symbol, ...]:
    known = tuple(known)
    if isinstance(syms, (str, sp.Symbol)):
        return (_symbol(syms, known),)
    out = tuple(_symbol(s, known) for s in syms)
    if not out:
        raise SymflopsError("no symbols given", fix="name at least one symbol, e.g. H")
    return out


def _mapping(values: Mapping[Any, Any] | None, known: Iterable[sp.Symbol] = ()
             ) -> dict[sp.Symbol, Any]:
    known = tuple(known)
    return {_symbol(k, known): v for k, v in (values or {}).items()}


def _numeric_subs(expr: sp.Expr, values: Mapping[sp.Symbol, Any]) -> sp.Expr:
    vals = {k: sp.sympify(v) if not isinstance(v, sp.Basic) else v for k, v in values.items()}
    return expr.xreplace(vals)


def relax_floors(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``floor(a)``/``ceiling(a)`` replaced by ``a``.

    The result differs from ``expr`` by lower-order terms only, so it has the same
    growth order and leading coefficients.
    """
    return expr.replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)),
                        lambda e: e.args[0])


def _floors_in(expr: sp.Expr, sym: sp.Symbol) -> list[sp.Expr]:
    return [f for f in expr.atoms(sp.floor, sp.ceiling) if sym in f.free_symbols]


# ----------------------------------------------------------------------------- aligned form
def aligned(x: Any, multiples: Mapping[SymbolLike, int], *, quantity: str | None = None,
            verify: bool = True) -> Any:
    """The floor-free form of ``x`` when each symbol is a multiple of the given number.

    Substitutes ``H = m*h`` (``h`` a positive integer), lets SymPy take the integer parts
    out of every ``floor``/``ceiling``, and writes the result in ``H`` again, so
    ``floor((H - 1)/2) + 1`` becomes ``H/2`` for ``H`` a multiple of 2. A Cost gives a
    Cost (every node aligned), an expression an expression (``quantity`` picks one
    quantity of a Cost instead). The result is checked against ``x`` at several
    multiples. Raises when a floor in an aligned symbol remains (the multiple is too
    small: :func:`alignment` finds one that works).

    >>> from symflops.symbols import H
    >>> aligned(sp.floor((H - 1) / 2) + 1, {H: 32})
    H/2
    """
    if quantity is not None:
        x = expression(x, quantity)
    elif not isinstance(x, Cost):
        x = expression(x)
    mapping = _mapping(multiples, _free(x))
    forward: dict[sp.Symbol, sp.Expr] = {}
    back: dict[sp.Symbol, sp.Expr] = {}
    for sym, m in mapping.items():
        if isinstance(m, bool) or not isinstance(m, (int, np.integer, sp.Integer)) or m < 1:
            raise SymflopsError("alignment multiples must be positive integers",
                                values={sym.name: m}, fix=f"pass e.g. {{{sym.name}: 32}}")
        q = sp.Dummy(f"{sym.name}_q", integer=True, positive=True)
        forward[sym] = sp.Integer(int(m)) * q
        back[q] = sym / sp.Integer(int(m))
    if isinstance(x, Cost):
        result: Any = x.subs(forward).subs(back)
        exprs = [n.quantity(k) for _, n in result.walk() for k in ("params", *n.work)]
        exprs += [s for _, n in result.walk() for s in n.output_shape]
        checks = [(expression(x, k), expression(result, k)) for k in ("params", "macs", "flops")]
    else:
        result = sp.expand(x.xreplace(forward)).xreplace(back)
        exprs, checks = [result], [(x, result)]
    for e in exprs:
        for sym in mapping:
            left = _floors_in(e, sym)
            if left:
                raise SymflopsError(
                    f"{sym.name} = {mapping[sym]}*k does not remove every floor",
                    values={"floor": left[0]},
                    fix="use a multiple of the total stride; "
                        "symflops.analysis.alignment(...) finds the smallest")
    if verify:
        _verify_aligned(checks, mapping)
    return result


def _verify_aligned(pairs: Sequence[tuple[sp.Expr, sp.Expr]], mapping: Mapping[sp.Symbol, Any]
                    ) -> None:
    others: set[sp.Symbol] = set()
    for a, b in pairs:
        others |= (a.free_symbols | b.free_symbols) - set(mapping)
    primes = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)
    fill = {s: primes[i % len(primes)] for i, s in enumerate(sorted(others, key=str))}
    for k in (1, 2, 3, 7, 10):
        point = {s: int(m) * (k + i) for i, (s, m) in enumerate(mapping.items())}
        point.update(fill)
        for a, b in pairs:
            va, vb = _numeric_subs(a, point), _numeric_subs(b, point)
            if sp.simplify(va - vb) != 0:
                raise SymflopsError("aligned form disagrees with the exact form",
                                    values={"at": point, "exact": va, "aligned": vb},
                                    fix="report this as a bug in symflops.analysis")


def _divisor_bound(expr: sp.Expr, sym: sp.Symbol) -> int:
    """A multiple that removes every floor in ``sym``: the lcm over floors of the product
    of the denominators along each chain of nested floors."""
    best = 1
    for f in expr.atoms(sp.floor, sp.ceiling):
        if sym not in f.free_symbols:
            continue
        arg = f.args[0]
        inner_free = relax_floors(arg) if arg.atoms(sp.floor, sp.ceiling) else arg
        den = 1
        for term in sp.Add.make_args(sp.expand(inner_free)):
            d = term.as_numer_denom()[1]
            if not d.is_Integer:
                raise SymflopsError("cannot align a floor with a symbolic divisor",
                                    values={"floor": f},
                                    fix="substitute the divisor first (--at)")
            den = math.lcm(den, int(d))
        nested = _divisor_bound(arg, sym) if arg.atoms(sp.floor, sp.ceiling) else 1
        best = math.lcm(best, den * nested)
    return best


def alignment(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
              quantity: str = "flops") -> dict[sp.Symbol, int]:
    """The smallest multiple of each symbol that makes ``x`` floor-free in it.

    For a network this is its total stride (32 for a ResNet).

    >>> from symflops.symbols import H
    >>> alignment(sp.floor(sp.floor((H - 1) / 2) / 2) + 1, H)
    {H: 4}
    """
    expr = expression(x, quantity)
    out: dict[sp.Symbol, int] = {}
    for sym in _symbols(symbols, expr.free_symbols):
        if not _floors_in(expr, sym):
            out[sym] = 1
            continue
        bound = _divisor_bound(expr, sym)
        for d in sorted(d for d in sp.divisors(bound)):
            q = sp.Dummy("q", integer=True, positive=True)
            if not _floors_in(expr.xreplace({sym: d * q}), q):
                out[sym] = int(d)
                break
        else:  # pragma: no cover - the bound always works for linear floor arguments
            raise SymflopsError("no multiple removes the floors", values={"symbol": sym})
    return out


def total_stride(cost: Cost) -> dict[sp.Symbol, int]:
    """The multiple of each dim that removes every floor anywhere in ``cost``: in the work
    and parameters of every node and in every output shape (a network's total stride).

    >>> from symflops import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.MaxPool2d(2))
    >>> total_stride(net.cost(("B", 3, "H", "W")))
    {H: 4, W: 4}
    """
    floors: set[sp.Expr] = set()
    for _, node in cost.walk():
        for e in (node.params, *node.work.values(), *node.output_shape):
            floors |= e.atoms(sp.floor, sp.ceiling)
    syms = sorted({s for f in floors for s in f.free_symbols}, key=lambda s: s.name)
    return {s: alignment(sp.Add(*(f for f in floors if s in f.free_symbols)), s)[s]
            for s in syms}


def _polynomial_expr(x: Costlike, syms: tuple[sp.Symbol, ...], quantity: str,
                     align: Mapping[SymbolLike, int] | str | None) -> sp.Expr:
    expr = expression(x, quantity)
    if not any(_floors_in(expr, s) for s in syms):
        return expr
    if align is None:
        return relax_floors(expr)
    if align == "auto":
        align = alignment(expr, syms)
    if isinstance(align, str):
        raise SymflopsError("align must be 'auto', None or a mapping", values={"align": align})
    return aligned(expr, align)


# ----------------------------------------------------------------------------- growth
def growth_order(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                 quantity: str = "flops") -> sp.Expr:
    """The degree of ``x`` in a symbol, or jointly in a group of symbols.

    Scaling every symbol of the group by ``t`` and letting ``t`` grow, the cost grows as
    ``t**order``. Floors do not change the order. ResNets: 1 in ``H``, 2 in ``[H, W]``.

    >>> from symflops.symbols import N, dim
    >>> growth_order(N**2 * dim + N * dim**2, "N"), growth_order(N**2 * dim, [N, dim])
    (2, 3)
    """
    expr = expression(x, quantity)
    syms = _symbols(symbols, expr.free_symbols)
    if expr == 0:
        return sp.S.NegativeInfinity
    t = sp.Dummy("t", positive=True)
    scaled = relax_floors(expr).xreplace({s: t * s for s in syms})
    try:
        return sp.Integer(sp.Poly(sp.expand(scaled), t).degree())
    except sp.PolynomialError:
        order = sp.limit(sp.log(scaled) / sp.log(t), t, sp.oo)
        if not order.is_finite:
            raise SymflopsError("cannot find a growth order", values={"expr": expr}) from None
        return order


@dataclass(frozen=True)
class Term:
    """One term of a cost polynomial: ``coefficient * monomial``, with ``degree`` the
    total degree of ``monomial`` in the symbols asked about."""

    monomial: sp.Expr
    coefficient: sp.Expr
    degree: int

    @property
    def expr(self) -> sp.Expr:
        return self.coefficient * self.monomial

    def __str__(self) -> str:
        return str(self.expr)


def terms(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike], quantity: str = "flops",
          align: Mapping[SymbolLike, int] | str | None = "auto") -> list[Term]:
    """``x`` as a polynomial in ``symbols``: its terms, highest degree first.

    Coefficients may hold the other symbols. Floors in ``symbols`` are first removed:
    ``align="auto"`` aligns to the smallest multiple that removes them (so the terms are
    exact at multiples of the total stride), a mapping aligns to given multiples, and
    ``None`` drops the floors (leading terms stay exact, lower ones are approximate).

    >>> from symflops.symbols import N, dim
    >>> [str(t) for t in terms(3 * N**2 * dim + 2 * N * dim**2 + 5, "N")]
    ['3*N**2*dim', '2*N*dim**2', '5']
    """
    expr = expression(x, quantity)
    syms = _symbols(symbols, expr.free_symbols)
    poly_expr = sp.expand(_polynomial_expr(expr, syms, quantity, align))
    try:
        poly = sp.Poly(poly_expr, *syms)
    except sp.PolynomialError:
        raise SymflopsError("the cost is not a polynomial in these symbols",
                            values={"symbols": [s.name for s in syms]},
                            fix="use growth_order for non-polynomial costs") from None
    out = []
    for exps, coeff in poly.terms():
        mono = sp.Mul(*(s**e for s, e in zip(syms, exps, strict=True)))
        out.append(Term(mono, simplify_expr(sp.sympify(coeff)), int(sum(exps))))
    out.sort(key=lambda t: (-t.degree, sp.default_sort_key(t.monomial)))
    return out


def leading_terms(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                  quantity: str = "flops", align: Mapping[SymbolLike, int] | str | None = None
                  ) -> list[Term]:
    """The terms of highest total degree in ``symbols`` (see :func:`terms`).

    >>> from symflops.symbols import H, W
    >>> [str(t) for t in leading_terms(sp.floor(H / 2) * sp.floor(W / 2) + H, [H, W])]
    ['H*W/4']
    """
    all_terms = terms(x, symbols, quantity, align)
    if not all_terms:
        return []
    top = all_terms[0].degree
    return [t for t in all_terms if t.degree == top]


# ----------------------------------------------------------------------------- breakdowns
@dataclass(frozen=True)
class Share:
    """One part's contribution: its ``value`` (an expression, or a number with ``at``)
    and its ``share`` of the total (with ``at``)."""

    path: str
    layer: str
    value: sp.Expr
    share: float | None


def breakdown(cost: Cost, at: Mapping[SymbolLike, Any] | None = None, *,
              quantity: str = "flops", depth: int = 1) -> list[Share]:
    """Each part of ``cost`` down to ``depth`` (repeat counts included), largest first
    when ``at`` gives every symbol a value.

    >>> import symflops as sf
    >>> net = sf.nn.Sequential(sf.nn.Linear(8, 32), sf.nn.ReLU(), sf.nn.Linear(32, 8))
    >>> [(s.path, int(s.value)) for s in breakdown(net.cost(("B", 8)), {"B": 1})]
    [('0', 512), ('2', 512), ('1', 32)]
    """
    if not isinstance(cost, Cost):
        raise SymflopsError("breakdown needs a Cost", values={"type": type(cost).__name__})
    if depth < 1:
        raise SymflopsError("depth must be >= 1", values={"depth": depth})
    values = _mapping(at, cost.free_symbols)
    parts: list[tuple[str, Cost, sp.Expr]] = []

    def visit(node: Cost, path: str, mult: sp.Expr, level: int) -> None:
        for child in node.children:
            p = f"{path}.{child.name}" if path else child.name
            m = mult * child.count
            if level + 1 >= depth or not child.children:
                parts.append((p, child, m * child.quantity(quantity)))
            else:
                visit(child, p, m, level + 1)

    visit(cost, "", sp.Integer(1), 0)
    if not parts:
        parts = [("", cost, cost.quantity(quantity))]
    total = expression(cost, quantity)
    if values:
        total = _numeric_subs(total, values)
        parts = [(p, c, _numeric_subs(v, values)) for p, c, v in parts]
    out = []
    numeric = total.is_number and all(v.is_number for _, _, v in parts)
    for p, c, v in parts:
        share = float(v / total) if numeric and total != 0 else None
        out.append(Share(p, c.layer, simplify_expr(v) if not v.is_number else v, share))
    if numeric:
        out.sort(key=lambda s: -float(s.value))
    return out


def term_breakdown(x: Costlike, symbols: SymbolLike | Iterable[SymbolLike],
                   at: Mapping[SymbolLike, Any], quantity: str = "flops",
                   align: Mapping[SymbolLike, int] | str | None = "auto",
                   ) -> list[tuple[Term, sp.Expr, float]]:
    """Which formula term dominates at ``at``: ``(term, value, share)``, largest first.

    >>> from symflops.symbols import N, dim
    >>> e = 4 * N**2 * dim + 8 * N * dim**2
    >>> [(str(t), int(v)) for t, v, _ in term_breakdown(e, "N", {"N": 4096, "dim": 768})]
    [('4*N**2*dim', 51539607552), ('8*N*dim**2', 19327352832)]
    """
    expr = expression(x, quantity)
    values = _mapping(at, expr.free_symbols)
    rows = [(t, _numeric_subs(t.expr, values)) for t in terms(expr, symbols, quantity, align)]
    missing = sorted({s.name for _, v in rows for s in v.free_symbols})
    if missing:
        raise SymflopsError("term_breakdown needs a value for every symbol",
                            values={"missing": missing}, fix="give them in at=")
    total = sum((v for _, v in rows), sp.Integer(0))
    rows.sort(key=lambda r: -float(r[1]))
    return [(t, v, float(v / total) if total != 0 else 0.0) for t, v in rows]


# ----------------------------------------------------------------------------- crossover
@dataclass(frozen=True)
class Crossover:
    """Where ``a`` and ``b`` are equal as ``symbol`` grows.

    ``solutions`` are exact (symbolic) roots when SymPy finds them; ``values`` are the
    numeric crossing points (for a numeric search: the first integer at which the
    sign of ``a - b`` has changed); ``method`` says which was used.
    """

    symbol: sp.Symbol
    solutions: tuple[sp.Expr, ...]
    values: tuple[float, ...]
    method: str


def crossover(a: Costlike, b: Costlike, symbol: SymbolLike,
              at: Mapping[SymbolLike, Any] | None = None, *, quantity: str = "flops",
              search: tuple[int, int] = (1, 10**9)) -> Crossover:
    """Where ``a`` overtakes ``b`` (or the reverse) as ``symbol`` grows.

    Solved exactly when ``a - b`` is a polynomial of degree <= 4 in ``symbol`` (other
    symbols may stay symbolic); numerically otherwise, which needs ``at`` to give every
    other symbol a value.

    >>> from symflops.symbols import N, dim, mlp_ratio
    >>> crossover(4 * N**2 * dim, 4 * N * dim**2 * mlp_ratio, "N").solutions
    (dim*mlp_ratio,)
    """
    ea, eb = expression(a, quantity), expression(b, quantity)
    free = ea.free_symbols | eb.free_symbols
    sym = _symbol(symbol, free)
    values = _mapping(at, free)
    values.pop(sym, None)
    diff = _numeric_subs(ea - eb, values)
    x = sp.Dummy(sym.name, positive=True)
    dx = diff.xreplace({sym: x})
    floor_free = not dx.atoms(sp.floor, sp.ceiling)
    if floor_free:
        num, _ = sp.fraction(sp.together(dx))
        try:
            poly = sp.Poly(sp.expand(num), x)
        except sp.PolynomialError:
            poly = None
        if poly is not None and poly.degree() <= 4 and poly.degree() >= 1:
            sols = [sp.factor(s) for s in sp.solve(poly.as_expr(), x)]
            keep = tuple(s.xreplace({x: sym}) for s in sols
                         if s.is_positive is not False and s.is_real is not False)
            keep_t = tuple(simplify_expr(s) for s in keep)
            nums = tuple(float(s) for s in keep_t if s.is_number)
            return Crossover(sym, keep_t, tuple(sorted(nums)), "symbolic")
    others = diff.free_symbols - {sym}
    if others:
        raise SymflopsError("a numeric crossover needs values for the other symbols",
                            values={"missing": sorted(s.name for s in others)},
                            fix="give them with at=")
    from symflops.evaluate import compile_expr

    fn = compile_expr(diff, (sym,))
    lo, hi = search
    grid = np.unique(np.geomspace(lo, hi, 4000).astype(np.int64))

    def sign(points: np.ndarray) -> np.ndarray:  # exact: Python ints, no int64 overflow
        return np.sign(np.asarray(fn(points.astype(object)), dtype=object).astype(float))

    vals = sign(grid)
    found = []
    for i in np.nonzero(vals[:-1] * vals[1:] < 0)[0]:
        left, right = int(grid[i]), int(grid[i + 1])
        s_left = vals[i]
        while right - left > 1:  # exact integer bisection
            mid = (left + right) // 2
            if sign(np.array([mid]))[0] == s_left:
                left = mid
            else:
                right = mid
        found.append(float(right))
    return Crossover(sym, (), tuple(found), "numeric")


# ----------------------------------------------------------------------------- sweeps
@dataclass
class Sweep:
    """Values of one or more quantities over a range or grid of symbols.

    ``variables`` maps each swept symbol name to its (broadcast) array, ``results``
    maps each quantity to its array of the same shape; ``labels`` names each quantity
    with its convention (``FLOPs (exact)``, ``MACs``).
    """

    variables: dict[str, np.ndarray]
    results: dict[str, np.ndarray]
    labels: dict[str, str] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row (a dict) per point, variables first."""
        cols = {**self.variables, **self.results}
        flat = {k: np.asarray(v).ravel() for k, v in cols.items()}
        n = len(next(iter(flat.values())))
        return [{k: v[i].item() for k, v in flat.items()} for i in range(n)]

    def slope(self, quantity: str = "flops", variable: str | None = None) -> float:
        """The fitted log-log slope of ``quantity`` against ``variable`` (1-d sweeps)."""
        var = variable or next(iter(self.variables))
        return fit_slope(self.variables[var], self.results[quantity])

    def to_text(self, separators: bool = True) -> str:
        """An aligned plain-text table (integers with thousands separators)."""
        heads = list(self.variables) + [self.labels.get(q, q) for q in self.results]
        rows = [[_fmt_num(v, separators) for v in row.values()] for row in self.table()]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(heads)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)


def _fmt_num(v: Any, separators: bool) -> str:
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if separators else str(int(v))
    return f"{float(v):.6g}"


def sweep(x: Costlike, values: Mapping[SymbolLike, Any], *,
          quantity: str | Sequence[str] = "flops", at: Mapping[SymbolLike, Any] | None = None,
          grid: bool = True) -> Sweep:
    """Evaluate ``x`` over ranges of symbols, vectorized (compiled once).

    ``values`` maps symbols to 1-d arrays; with several symbols and ``grid=True`` every
    combination is evaluated (``numpy.meshgrid``, ``ij`` order), with ``grid=False``
    the arrays are zipped. Several names may share one array (``{("H", "W"): sizes}``
    sweeps square inputs). ``at`` fixes the other symbols. Integer inputs give exact
    int64 results.

    >>> import symflops as sf
    >>> c = sf.nn.Conv2d(3, 8, 3, padding=1).cost(("B", 3, "H", "W"))
    >>> sweep(c, {("H", "W"): [32, 64]}, at={"B": 1}).results["flops"].tolist()
    [442368, 1769472]
    """
    names = [quantity] if isinstance(quantity, str) else list(quantity)
    free = _free(x)
    fixed = _mapping(at, free)
    groups: list[tuple[tuple[sp.Symbol, ...], np.ndarray]] = []
    for key, arr in values.items():
        syms = _symbols(key, free) if isinstance(key, tuple) else (_symbol(key, free),)
        a = np.asarray(arr)
        if a.ndim != 1:
            raise SymflopsError("sweep values must be 1-d arrays",
                                values={"symbol": ",".join(s.name for s in syms)})
        if a.dtype.kind == "i":
            a = a.astype(np.int64)
        groups.append((syms, a))
    if grid and len(groups) > 1:
        # each swept symbol on its own axis: terms in H alone are computed on H's values
        # only, and numpy broadcasting forms the grid in the products
        k = len(groups)
        axes = [a.reshape([-1 if i == j else 1 for j in range(k)])
                for i, (_, a) in enumerate(groups)]
        full = tuple(len(a) for _, a in groups)
        meshes = [np.broadcast_to(a, full) for a in axes]
    else:
        if len({len(a) for _, a in groups}) > 1:
            raise SymflopsError("zipped sweeps need arrays of one length",
                                fix="pass grid=True for every combination")
        meshes = [a for _, a in groups]
    arrays: dict[sp.Symbol, np.ndarray] = {}
    variables: dict[str, np.ndarray] = {}
    inputs = axes if grid and len(groups) > 1 else meshes
    for (syms, _), mesh, arr in zip(groups, meshes, inputs, strict=True):
        variables[",".join(s.name for s in syms)] = mesh
        for s in syms:
            arrays[s] = arr
    for s, v in fixed.items():
        if s not in arrays:
            arrays[s] = np.asarray(int(v) if isinstance(v, (int, sp.Integer)) else v)
    results: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    for q in names:
        expr = expression(x, q)
        missing = sorted(s.name for s in expr.free_symbols if s not in arrays)
        if missing:
            raise SymflopsError("sweep needs a value for every symbol",
                                values={"missing": missing},
                                fix="sweep them or give them values (at= in Python, --at " +
                                    ",".join(f"{m}=..." for m in missing) + " on the command "
                                    "line)")
        if isinstance(x, Cost):  # Cost.evaluate also checks the formulas' conditions
            out = x.evaluate(q, **{s.name: a for s, a in arrays.items()})
        else:
            syms_t = tuple(sorted(expr.free_symbols, key=str))
            from symflops.evaluate import compile_expr

            out = compile_expr(expr, syms_t)(*(arrays[s] for s in syms_t)) if syms_t else \
                np.asarray(int(expr) if expr.is_Integer else float(expr))
        results[q] = np.broadcast_to(out, meshes[0].shape).copy() if meshes else out
        labels[q] = _label(x, q)
    return Sweep(variables, results, labels)


def _label(x: Costlike, quantity: str) -> str:
    if quantity == "flops":
        return x.convention.label if isinstance(x, Cost) else "FLOPs"
    return {"macs": "MACs", "params": "params"}.get(quantity, quantity)


def fit_slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the empirical growth order)."""
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = (xa > 0) & (ya > 0)
    if ok.sum() < 2 or np.unique(xa[ok]).size < 2:
        raise SymflopsError("a slope needs at least two distinct positive points",
                            fix="sweep a wider range")
    return float(np.polyfit(np.log(xa[ok]), np.log(ya[ok]), 1)[0])


def plot(costs: Costlike | Mapping[str, Costlike], var: SymbolLike | Sequence[SymbolLike],
         values: Any, *, quantity: str = "flops", at: Mapping[SymbolLike, Any] | None = None,
         path: str | None = None, title: str | None = None) -> Figure:
    """Plot ``quantity`` of one or more costs against ``var`` on log-log axes, each
    labelled with its fitted slope; saved to ``path`` (PNG, PDF, SVG) when given.

    ``var`` may be several symbols set to the same values (``["H", "W"]``: square inputs).
    Needs matplotlib (``pip install symflops[plot]``); uses the Agg backend.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise SymflopsError("plotting needs matplotlib",
                            fix="pip install 'symflops[plot]' (or matplotlib)") from None
    curves = dict(costs) if isinstance(costs, Mapping) else {"": costs}
    key: Any = var if isinstance(var, (str, sp.Symbol)) else tuple(var)
    names = key.name if isinstance(key, sp.Symbol) else key if isinstance(key, str) else \
        " = ".join(_symbol(v).name for v in key)
    xs = np.asarray(values)
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    labels = set()
    for name, cost in curves.items():
        sw = sweep(cost, {key: xs}, quantity=quantity, at=at)
        ys = sw.results[quantity]
        slope = fit_slope(xs, ys)
        label = f"{name} (slope {slope:.2f})" if name else f"slope {slope:.2f}"
        ax.loglog(xs, ys.astype(float), marker="o", markersize=3, label=label)
        labels.add(sw.labels[quantity])
    ax.set_xlabel(names)
    ax.set_ylabel(" / ".join(sorted(labels)))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


# ----------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class Comparison:
    """``a / b`` as a function of ``symbol`` and its limit as ``symbol`` grows."""

    symbol: sp.Symbol
    ratio: sp.Expr
    limit: sp.Expr

    def evaluate(self, values: Any, at: Mapping[SymbolLike, Any] | None = None) -> np.ndarray:
        """The ratio at each value of ``symbol`` (floats)."""
        expr = _numeric_subs(self.ratio, _mapping(at, self.ratio.free_symbols))
        from symflops.evaluate import compile_expr

        missing = expr.free_symbols - {self.symbol}
        if missing:
            raise SymflopsError("the ratio needs values for the other symbols",
                                values={"missing": sorted(s.name for s in missing)},
                                fix="give them with at=")
        fn = compile_expr(expr, (self.symbol,))
        return np.asarray(fn(np.asarray(values, dtype=float)), dtype=float)


def compare(a: Costlike, b: Costlike, symbol: SymbolLike,
            at: Mapping[SymbolLike, Any] | None = None, quantity: str = "flops") -> Comparison:
    """The ratio ``a / b`` and its limit as ``symbol`` goes to infinity.

    >>> from symflops.symbols import N, dim
    >>> c = compare(4 * N**2 * dim + 8 * N * dim**2, 8 * N * dim**2, "N")
    >>> c.ratio, c.limit
    ((N + 2*dim)/(2*dim), oo)
    """
    ea, eb = expression(a, quantity), expression(b, quantity)
    free = ea.free_symbols | eb.free_symbols
    sym = _symbol(symbol, free)
    values = _mapping(at, free)
    values.pop(sym, None)
    ea, eb = _numeric_subs(ea, values), _numeric_subs(eb, values)
    if eb == 0:
        raise SymflopsError("cannot divide by a zero cost", values={"b": eb})
    ratio = ea / eb
    if not ratio.atoms(sp.floor, sp.ceiling):
        ratio = sp.factor(sp.cancel(ratio))
    x = sp.Dummy(sym.name, positive=True)
    relaxed = (relax_floors(ea) / relax_floors(eb)).xreplace({sym: x})
    lim = sp.limit(sp.cancel(relaxed), x, sp.oo)
    return Comparison(sym, ratio, lim)
