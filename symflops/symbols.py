"""Canonical symbols: the quantities papers write formulas in.

Every symbol is a positive integer, so SymPy can simplify ``floor`` and
``Max`` expressions and never has to consider zero or negative sizes.

>>> from symflops.symbols import C_in, K, latex_name
>>> C_in.is_integer and C_in.is_positive
True
>>> latex_name(C_in)
'C_{\\\\mathrm{in}}'
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "B", "C", "C_in", "C_out", "K", "H", "W", "D", "H_out", "W_out", "D_out", "N", "dim",
    "heads", "kv_heads", "head_dim", "L", "V", "mlp_ratio", "groups", "I", "O", "M",
    "T", "T_out", "S",
    "LATEX_NAMES", "symbol", "count", "latex_name", "canonical", "spatial_in", "spatial_out",
    "kernel_symbols",
]


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)


B = _sym("B")                 #: batch size
C = _sym("C")                 #: channels of a norm or activation
C_in = _sym("C_in")           #: input channels
C_out = _sym("C_out")         #: output channels
K = _sym("K")                 #: kernel size (square kernels)
H = _sym("H")                 #: input height
W = _sym("W")                 #: input width
D = _sym("D")                 #: input depth (3-d convolutions)
T = _sym("T")                 #: input length (1-d convolutions, pooling)
H_out = _sym("H_out")         #: output height
W_out = _sym("W_out")         #: output width
D_out = _sym("D_out")         #: output depth
T_out = _sym("T_out")         #: output length
N = _sym("N")                 #: tokens (sequence length, or H*W patches)
S = _sym("S")                 #: key/value length when it differs from N (cross-attention)
dim = _sym("dim")             #: model width (embedding dimension)
heads = _sym("heads")         #: attention heads
kv_heads = _sym("kv_heads")   #: key/value heads (grouped-query attention)
head_dim = _sym("head_dim")   #: width of one head
L = _sym("L")                 #: number of repeated layers (depth)
V = _sym("V")                 #: vocabulary size
mlp_ratio = _sym("mlp_ratio")  #: hidden width of an MLP over dim
groups = _sym("groups")       #: convolution or norm groups
I = _sym("I")                 #: input features of a fully connected layer  # noqa: E741
O = _sym("O")                 #: output features of a fully connected layer
M = _sym("M")                 #: rows of a matrix product

LATEX_NAMES: dict[sp.Symbol, str] = {
    C_in: r"C_{\mathrm{in}}",
    C_out: r"C_{\mathrm{out}}",
    H_out: r"H_{\mathrm{out}}",
    W_out: r"W_{\mathrm{out}}",
    D_out: r"D_{\mathrm{out}}",
    T_out: r"T_{\mathrm{out}}",
    dim: r"d",
    heads: r"h",
    kv_heads: r"h_{\mathrm{kv}}",
    head_dim: r"d_{h}",
    mlp_ratio: r"r_{\mathrm{mlp}}",
    groups: r"g",
}

_BY_NAME: dict[str, sp.Symbol] = {
    s.name: s
    for s in (B, C, C_in, C_out, K, H, W, D, T, H_out, W_out, D_out, T_out, N, S, dim, heads,
              kv_heads, head_dim, L, V, mlp_ratio, groups, I, O, M)
}


def canonical() -> dict[str, sp.Symbol]:
    """All canonical symbols by name (a copy)."""
    return dict(_BY_NAME)


def symbol(name: str) -> sp.Symbol:
    """The canonical symbol called ``name``, or a new positive-integer symbol.

    Names are checked to be identifiers, so this never parses an expression.

    >>> symbol("H") is H
    True
    >>> symbol("seq").is_positive
    True
    """
    if not name.isidentifier():
        from symflops.errors import SymflopsError

        raise SymflopsError(
            f"{name!r} is not a valid symbol name",
            layer="symbol", values={"name": repr(name)},
            fix="use letters, digits and underscores, starting with a letter",
        )
    return _BY_NAME.get(name) or _sym(name)


def count(name: str) -> sp.Symbol:
    """A count read from the data (a trace's ``R`` proposals, ``n3`` boxes kept): a
    non-negative integer symbol, since a count may be 0 where a size may not.

    >>> count("R").is_nonnegative, count("R").is_positive
    (True, None)
    """
    symbol(name)  # the same name check
    return sp.Symbol(name, integer=True, nonnegative=True)


def latex_name(sym: sp.Symbol) -> str:
    """LaTeX for a symbol: ``C_{\\mathrm{in}}`` for ``C_in``; SymPy's default otherwise."""
    if sym in LATEX_NAMES:
        return LATEX_NAMES[sym]
    return str(sp.latex(sym))


#: input and output spatial symbols of an n-d layer, outermost first
_SPATIAL_IN = {1: (T,), 2: (H, W), 3: (D, H, W)}
_SPATIAL_OUT = {1: (T_out,), 2: (H_out, W_out), 3: (D_out, H_out, W_out)}
_KERNEL_NAMES = {1: ("K_t",), 2: ("K_h", "K_w"), 3: ("K_d", "K_h", "K_w")}


def spatial_in(n: int) -> tuple[sp.Symbol, ...]:
    """The input spatial symbols of an ``n``-d layer.

    >>> spatial_in(2), spatial_in(1)
    ((H, W), (T,))
    """
    return _SPATIAL_IN[n]


def spatial_out(n: int) -> tuple[sp.Symbol, ...]:
    """The output spatial symbols of an ``n``-d layer.

    >>> spatial_out(3)
    (D_out, H_out, W_out)
    """
    return _SPATIAL_OUT[n]


def kernel_symbols(n: int, square: bool) -> tuple[sp.Symbol, ...]:
    """Kernel symbols of an ``n``-d window: ``K`` in every dim when the kernel is square
    (same size in every dim), else one symbol per dim.

    >>> kernel_symbols(2, True), kernel_symbols(2, False)
    ((K, K), (K_h, K_w))
    """
    if square:
        return (K,) * n
    return tuple(symbol(x) for x in _KERNEL_NAMES[n])
