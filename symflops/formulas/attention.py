"""Scaled dot-product attention, split into its parts.

For ``B`` sequences, ``h`` query heads, ``q`` queries, ``s`` keys and head width
``d`` (values of width ``d_v``), hand count in the exact convention:

* scores ``Q K^T``: ``B h q s`` dot products of length ``d``: ``B h q s d`` MACs,
  ``B h q s (d - 1)`` adds; the seed article's ``heads * N * (dim/heads) * N``;
* scale by ``1/sqrt(d)``: ``B h q s`` multiplies (kind ``elementwise``);
* softmax over each of ``B h q`` rows of ``s``: ``5 s - 2`` each;
* context ``A V``: ``B h q d_v`` dot products of length ``s``.

Grouped-query attention (fewer key/value heads) shares K and V between query
heads; the products are still computed per query head, so the count does not
change. A causal mask is a select, not arithmetic. With ``skip_masked=True``
(kernels that skip masked blocks, like FlashAttention) only the ``q (q + 1) / 2``
unmasked pairs count; the default counts the dense product, as torch's math kernel
computes it and as FlopCounterMode reports it.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symflops import symbols as sym
from symflops.errors import SymflopsError
from symflops.formulas.arith import Size, Work, add_work, exact_div, work
from symflops.formulas.derivation import Derivation
from symflops.formulas.linear import linear_work, matmul_grad_derivations, matmul_work
from symflops.formulas.pointwise import (
    dropout_grad_derivation,
    elementwise_derivation,
    softmax_grad_derivation,
)
from symflops.formulas.resize import reduction_derivation

__all__ = ["attention_parts", "attention_work", "attention_derivations",
           "attention_mask_derivation", "attention_grad_derivations",
           "attention_projection_derivation", "attention_core_grad_derivations",
           "flash_attention_io", "flash_attention_io_parts", "standard_attention_io"]

#: width of one value head when it differs from ``head_dim``
head_dim_v = sym.symbol("head_dim_v")


def attention_parts(batch: Size, heads: Size, q_len: Size, kv_len: Size, head_dim: Size,
                    v_head_dim: Size | None = None, *, causal: bool = False,
                    skip_masked: bool = False, scale: bool = True) -> dict[str, Work]:
    """Work of each part of attention: ``scores``, ``scale``, ``softmax``, ``context``."""
    dv = head_dim if v_head_dim is None else v_head_dim
    rows = batch * heads
    if skip_masked:
        if not causal:
            raise SymflopsError("skip_masked only applies to causal attention",
                                layer="attention", values={"causal": causal},
                                fix="pass causal=True or drop skip_masked")
        if q_len != kv_len:
            raise SymflopsError("skip_masked needs as many queries as keys",
                                layer="attention", values={"q_len": q_len, "kv_len": kv_len})
        pairs = exact_div(q_len * (q_len + 1), 2)
        return {
            "scores": work(matmul_mul=rows * pairs * head_dim,
                           matmul_add=rows * pairs * (head_dim - 1)),
            "scale": work(elementwise=rows * pairs if scale else 0),
            # row i has i + 1 keys: sum_i (5 (i + 1) - 2)
            "softmax": work(softmax=rows * (5 * pairs - 2 * q_len)),
            # row i: d_v dot products of length i + 1: i adds each
            "context": work(matmul_mul=rows * pairs * dv,
                            matmul_add=rows * dv * exact_div(q_len * (q_len - 1), 2)),
        }
    pairs = q_len * kv_len
    return {
        "scores": work(matmul_mul=rows * pairs * head_dim,
                       matmul_add=rows * pairs * (head_dim - 1)),
        "scale": work(elementwise=rows * pairs if scale else 0),
        "softmax": work(softmax=rows * q_len * (5 * kv_len - 2)),
        "context": work(matmul_mul=rows * pairs * dv, matmul_add=rows * q_len * dv * (kv_len - 1)),
    }


def attention_work(batch: Size, heads: Size, q_len: Size, kv_len: Size, head_dim: Size,
                   v_head_dim: Size | None = None, *, causal: bool = False,
                   skip_masked: bool = False, scale: bool = True) -> Work:
    """Total work of scaled dot-product attention (the sum of :func:`attention_parts`)."""
    parts = attention_parts(batch, heads, q_len, kv_len, head_dim, v_head_dim, causal=causal,
                            skip_masked=skip_masked, scale=scale)
    return add_work(*parts.values())


@cache
def _attention_general(cross: bool, causal: bool, skip_masked: bool) -> dict[str, Work]:
    kv, dv = (sym.S, head_dim_v) if cross else (sym.N, None)
    return attention_parts(sym.B, sym.heads, sym.N, kv, sym.head_dim, dv, causal=causal,
                           skip_masked=skip_masked)


def attention_derivations(batch: Size, heads: Size, q_len: Size, kv_len: Size, head_dim: Size,
                          v_head_dim: Size | None = None, *, causal: bool = False,
                          skip_masked: bool = False, custom_scale: bool = False,
                          note: str = "") -> dict[str, Derivation]:
    """The derivations of attention's parts (``scores``, ``scale``, ``softmax``,
    ``context``; :func:`attention_parts`), for ``sf.nn.MultiheadAttention`` and the SDPA
    kernels alike. Self-attention (as many keys as queries, values as wide as keys) is
    written in ``N`` and ``head_dim``; otherwise keys are ``S`` and values ``head_dim_v``
    wide. ``custom_scale``: the scores are scaled by a given factor, not ``1/sqrt(head_dim)``;
    ``note`` is appended to every explanation.

    >>> d = attention_derivations(1, 2, 4, 4, 8)
    >>> d["scores"].general["matmul_mul"], d["scores"].work["matmul_mul"]
    (B*N**2*head_dim*heads, 256)
    """
    dv = head_dim if v_head_dim is None else v_head_dim
    cross = not (sp.sympify(kv_len) == sp.sympify(q_len) and
                 sp.sympify(dv) == sp.sympify(head_dim))
    general = _attention_general(cross, bool(causal), bool(skip_masked))
    bindings = {sym.B: batch, sym.heads: heads, sym.N: q_len, sym.head_dim: head_dim}
    keys, width = "N", "head_dim"
    if cross:
        bindings.update({sym.S: kv_len, head_dim_v: dv})
        keys, width = "S", "head_dim_v"
    explain = {
        "scores": f"Q K^T: B*heads*N*{keys} dot products of length head_dim",
        "scale": ("scores times the scale" if custom_scale else
                  "scores times 1/sqrt(head_dim)") + ": one multiply per score",
        "softmax": f"softmax over each of B*heads*N rows of {keys} scores "
                   f"(5{keys} - 2 per row)",
        "context": f"A V: B*heads*N*{width} dot products of length {keys}",
    }
    if skip_masked:
        note = "; only the N(N+1)/2 unmasked pairs" + note
    return {part: Derivation(dict(g), sp.Integer(0), bindings, explain[part] + note)
            for part, g in general.items()}


def attention_mask_derivation(batch: Size, heads: Size, q_len: Size, kv_len: Size) -> Derivation:
    """An additive attention mask: one add per score (a boolean mask is a select, free).

    >>> attention_mask_derivation(1, 2, 3, 5).work
    {'elementwise': 30}
    """
    return Derivation({"elementwise": sym.B * sym.heads * sym.N * sym.S}, sp.Integer(0),
                      {sym.B: batch, sym.heads: heads, sym.N: q_len, sym.S: kv_len},
                      "an additive mask: one add per score")


@cache
def _attention_backward_general() -> dict[str, Work]:
    rows = sym.B * sym.heads
    return {
        "grad_v": matmul_work(rows, sym.S, sym.N, head_dim_v),
        "grad_probs": matmul_work(rows, sym.N, head_dim_v, sym.S),
        "grad_softmax": work(elementwise=4 * rows * sym.N * sym.S),
        "grad_q": matmul_work(rows, sym.N, sym.S, sym.head_dim),
        "grad_k": matmul_work(rows, sym.S, sym.N, sym.head_dim),
    }


def attention_grad_derivations(batch: Size, heads: Size, q_len: Size, kv_len: Size,
                                   head_dim: Size, v_head_dim: Size) -> dict[str, Derivation]:
    """Attention's gradients: four products (``dV = A^T dO``, ``dA = dO V^T``, ``dQ = dS K``,
    ``dK = dS^T Q``), each as many MACs as a forward product, and the softmax gradient
    (4 per score: multiply, row-sum add, subtract, multiply).

    >>> attention_grad_derivations(1, 1, 2, 3, 4, 4)["grad_softmax"].work
    {'elementwise': 24}
    """
    bindings = {sym.B: batch, sym.heads: heads, sym.N: q_len, sym.S: kv_len,
                sym.head_dim: head_dim, head_dim_v: v_head_dim}
    explain = {"grad_v": "A^T dO", "grad_probs": "dO V^T",
               "grad_softmax": "softmax gradient: 4 per score", "grad_q": "dS K",
               "grad_k": "dS^T Q"}
    return {part: Derivation(dict(g), sp.Integer(0), bindings, explain[part])
            for part, g in _attention_backward_general().items()}


@cache
def _projection_general(bias: bool) -> Work:
    return add_work(linear_work(sym.B * sym.N, sym.dim, sym.dim, bias),
                    linear_work(sym.B * sym.S, sym.dim, 2 * sym.dim, bias))


def attention_projection_derivation(batch: Size, q_len: Size, kv_len: Size, embed_dim: Size,
                                    bias: bool = True) -> Derivation:
    """The q projection of ``N`` query tokens and the k, v projections of ``S`` key
    tokens (``dim -> dim`` and ``dim -> 2 dim``), as ``nn.MultiheadAttention``'s fast path
    computes them.

    >>> attention_projection_derivation(1, 2, 3, 4).work["matmul_mul"]
    128
    """
    return Derivation(dict(_projection_general(bool(bias))), sp.Integer(0),
                      {sym.B: batch, sym.N: q_len, sym.S: kv_len, sym.dim: embed_dim},
                      "q from N tokens, k and v from S tokens: length-dim dot products")


def attention_core_grad_derivations(batch: Size, heads: Size, q_len: Size, kv_len: Size,
                                        head_dim: Size, *, dropout: bool = False,
                                        kv_heads: Size | None = None,
                                        v_dim: Size | None = None) -> dict[str, Derivation]:
    """The gradients of attention computed op by op (``S = Q K^T``, ``S * scale``,
    softmax, optional dropout, ``O = A V``), in the order autograd runs them:
    ``grad_probs = dO V^T`` and ``grad_v = A^T dO`` (two bmm), dropout's gradient (2 per
    score), the softmax gradient (``4 S - 1`` per row), the scale's gradient (1 per
    score), ``grad_q = dS K`` and ``grad_k = dS^T Q`` (two bmm). With fewer key/value
    heads (``kv_heads``: K and V expanded to every query head), the gradients of V and K
    are summed back over each group of query heads (``grad_v_expand``,
    ``grad_k_expand``: the backward of ``expand``, an ``aten.sum``). ``v_dim``: the values'
    width when it is not the queries' and keys' ``head_dim`` (multi-head latent attention).

    >>> d = attention_core_grad_derivations(1, 1, 2, 2, 4)
    >>> list(d), d["grad_softmax"].work
    (['grad_probs', 'grad_v', 'grad_softmax', 'grad_scale', 'grad_q', 'grad_k'], \
{'elementwise': 14})
    """
    rows = batch * heads
    scores = rows * q_len * kv_len
    out = matmul_grad_derivations(rows, q_len, kv_len, head_dim if v_dim is None else v_dim,
                                  names=("grad_probs", "grad_v"))
    groups_of = heads if kv_heads is None else kv_heads
    grouped = sp.sympify(groups_of) != sp.sympify(heads)
    width_v = head_dim if v_dim is None else v_dim
    if grouped:
        out["grad_v_expand"] = reduction_derivation("sum", rows * kv_len * width_v,
                                                    batch * groups_of * kv_len * width_v)
    if dropout:
        out["grad_dropout"] = dropout_grad_derivation(scores)
    out["grad_softmax"] = softmax_grad_derivation(rows * q_len, kv_len)
    out["grad_scale"] = elementwise_derivation(scores, 1, "the scale's gradient: one "
                                                          "multiply per score")
    out.update(matmul_grad_derivations(rows, q_len, head_dim, kv_len,
                                           names=("grad_q", "grad_k")))
    if grouped:
        out["grad_k_expand"] = reduction_derivation("sum", rows * kv_len * head_dim,
                                                    batch * groups_of * kv_len * head_dim)
    return out


def _io_size(value: Size, name: str, least: int = 1) -> sp.Expr:
    v = sp.sympify(value)
    if v.is_number and (not v.is_Integer or v < least):
        raise SymflopsError(f"attention IO: {name} must be an integer >= {least}",
                            layer="attention IO", values={name: value},
                            fix=f"give {name} as a whole number of elements >= {least}")
    return v


def standard_attention_io(n: Size, d: Size) -> dict[str, sp.Expr]:
    """HBM reads and writes, in elements, of standard attention for one head (Dao et al.
    2022, Algorithm 0): ``S = Q K^T`` (reads Q, K: ``2 N d``; writes S: ``N^2``), ``P =
    softmax(S)`` (reads and writes ``N^2``), ``O = P V`` (reads P and V, ``N^2 + N d``;
    writes O, ``N d``): ``3 N d + 2 N^2`` read, ``2 N^2 + N d`` written, Theta(N d + N^2).

    >>> standard_attention_io(4, 2)
    {'read': 56, 'write': 40}
    """
    n, d = _io_size(n, "N"), _io_size(d, "d")
    return {"read": 3 * n * d + 2 * n**2, "write": 2 * n**2 + n * d}


def flash_attention_io(n: Size, d: Size, sram: Size, kv_len: Size | None = None
                       ) -> dict[str, sp.Expr]:
    """HBM reads and writes, in elements, of FlashAttention's forward for one head (Dao et
    al. 2022, Algorithm 1) with an on-chip SRAM of ``M = sram`` elements, counted exactly.

    Line by line: column blocks of ``B_c = ceil(M / 4d)`` keys, ``T_c = ceil(N / B_c)`` of
    them (the last one may be short). Line 2 writes O, l and m (``N d + 2 N``). Line 6 loads
    each K_j, V_j once (``2 N d`` over all j). For every j, lines 8, 12 and 13 load
    Q_i, O_i, l_i, m_i and write O_i, l_i, m_i for every row block i: ``2 N d + 2 N`` read
    and ``N d + 2 N`` written per j, whatever the row block size ``B_r``. So

        read  = 2 N d + T_c (2 N d + 2 N),   write = N d + 2 N + T_c (N d + 2 N),

    Theta(N^2 d^2 / M) as the paper's Theorem 2 says (``T_c`` is about ``4 N d / M``). With
    ``kv_len = S`` keys (a decode step: ``N`` new queries, ``S`` cached keys) the loops are
    the same with K and V ``S`` rows long: ``2 S d`` for line 6 and ``T_c = ceil(S / B_c)``.
    The domain: ``M >= 4 d`` (a block holds at least one key's K and V rows with room for Q
    and O: below it the algorithm's block sizes are not defined as written).

    >>> flash_attention_io(1024, 64, 4 * 64 * 16)     # B_c = 16 keys per block: T_c = 64
    {'read': 8650752, 'write': 4392960}
    """
    n, d, m = _io_size(n, "N"), _io_size(d, "d"), _io_size(sram, "M")
    keys = n if kv_len is None else _io_size(kv_len, "S")
    if (m - 4 * d).is_number and m - 4 * d < 0:
        raise SymflopsError("FlashAttention's blocks need an SRAM of at least 4 d elements",
                            layer="attention IO", values={"M": sram, "d": d},
                            fix="give M >= 4*d (e.g. an A100's 192 KB of SRAM per SM holds "
                                "98304 bf16 elements)")
    parts = flash_attention_io_parts(n, d, m, keys)
    return {"read": sp.Add(*(r for r, _ in parts.values())),
            "write": sp.Add(*(w for _, w in parts.values()))}


def flash_attention_io_parts(n: Size, d: Size, sram: Size, kv_len: Size
                             ) -> dict[str, tuple[sp.Expr, sp.Expr]]:
    """:func:`flash_attention_io` by tensor, ``name -> (read, written)`` elements: ``kv``
    (K and V, line 6), ``q_o`` (Q and O, lines 2, 8 and 12) and ``stats`` (the row
    statistics l and m, lines 2, 8 and 13), so each can take its own bytes per element."""
    n, d, m = sp.sympify(n), sp.sympify(d), sp.sympify(sram)
    t_c = sp.ceiling(sp.sympify(kv_len) / sp.ceiling(m / (4 * d)))
    return {"kv": (2 * sp.sympify(kv_len) * d, sp.Integer(0)),
            "q_o": (t_c * 2 * n * d, n * d + t_c * n * d),
            "stats": (t_c * 2 * n, 2 * n + t_c * 2 * n)}
