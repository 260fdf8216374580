"""A mixture-of-experts MLP (Mixtral, Qwen2-MoE, DeepSeek-MoE): a router, top-k routing,
``E`` gated experts of which each token uses ``k``, optional shared experts.

>>> from symflops.symbols import dim, symbol
>>> E, k, F = symbol("E"), symbol("k"), symbol("F")
>>> c = MoE(dim, F, E, k).cost(("T", dim))
>>> c.params.expand()
3*E*F*dim + E*dim
>>> c["experts"].macs
3*F*T*dim*k
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import sympy as sp

from symflops.cost import Cost
from symflops.errors import SymflopsError
from symflops.formulas.derivation import Derivation
from symflops.formulas.moe import moe_combine_derivation, renormalize_derivation, topk_derivation
from symflops.formulas.pointwise import elementwise_derivation, softmax_derivation
from symflops.nn._base import (
    HIDDEN_F,
    Example,
    Layer,
    Shape,
    SizeLike,
    nonneg_size,
    numel,
    to_size,
)
from symflops.nn._linear import Linear
from symflops.nn._pointwise import Sigmoid
from symflops.nn._transformer import GatedMLP
from symflops.symbols import (
    B,
    N,
    dim,
    symbol,
)

__all__ = ["MoE"]


def _capacity_factor(value: Any) -> sp.Rational | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Fraction, sp.Rational)):
        hint = f" such as Fraction({Fraction(value).limit_denominator(1000)!s})" \
            if isinstance(value, float) and math.isfinite(value) else ""
        raise SymflopsError("capacity_factor must be exact: an int, a Fraction or a SymPy "
                            "Rational", layer="MoE", values={"capacity_factor": repr(value)},
                            fix="pass an exact ratio" + hint)
    r = sp.Rational(value.numerator, value.denominator) if isinstance(value, Fraction) \
        else sp.Rational(value)
    if r <= 0:
        raise SymflopsError("capacity_factor must be positive", layer="MoE",
                            values={"capacity_factor": value}, fix="pass e.g. Fraction(5, 4)")
    return r


class MoE(Layer):
    """A mixture of ``experts`` gated MLPs ``dim -> hidden -> dim`` on ``(..., dim)``;
    each of the ``T`` tokens goes to its ``top_k`` experts.

    Children (transformers' names): ``gate`` (the router, ``dim -> E`` without bias),
    ``softmax`` over the ``E`` logits, ``topk``, ``renormalize`` (the ``k`` weights over
    their sum; ``normalize=False`` skips it, as Qwen2-MoE by default), ``experts``,
    ``combine`` (each output the weighted sum of ``k`` expert outputs) and, with
    ``shared_hidden``, ``shared_expert`` (a gated MLP every token uses; ``shared_gate``: times
    ``sigmoid(Linear(dim, 1))``, as Qwen2-MoE) and ``shared_add``.

    ``experts`` holds ``routed`` (one expert's arithmetic over the ``T k`` routed token
    copies, however they are spread: each costs the same in any expert; its parameters are
    one expert's), ``active_weights`` (the ``k - 1`` other experts a token uses) and
    ``idle_weights`` (the ``E - k`` it does not): parameters only, so ``params`` counts
    all ``E`` experts and :func:`symflops.paper_counts.active_params` drops the idle ones.

    ``capacity_factor`` (exact: an int or a Fraction) gives each expert ``C = ceil(c T k /
    E)`` token slots, as capacity-limited training runs (Switch, GShard): the experts then
    process ``E C`` rows (padding counted, overflow dropped).

    ``dropped`` (with a capacity factor) is the number of token copies the capacity drops
    (how many depends on the routing: give it as a symbol, e.g. ``"D"``), for
    implementations that process only the kept copies, without padding: the experts then
    process ``T k - D`` rows, and the cost holds where ``T k - E C <= D <= T k`` (a kept copy
    has a slot). The combine is unchanged (a dropped copy's weight is 0 in the sum).
    """

    no_train = ("its backward depends on the routing, which sf.nn does not know: each "
                "expert's grad_weight sums over the tokens routed to it (rows_e - 1 adds "
                "per weight, and nothing for an expert no token reached), so the count "
                "changes with how many experts receive tokens; sf.trace(the torch module, "
                "mode='train') counts one routing")

    example = Example(
        "MoE(dim, F, E, k)", lambda: MoE(dim, HIDDEN_F, symbol("E"), symbol("k")), (B, N, dim),
        "router, top-k routing, E SwiGLU experts of which each token uses k: params count "
        "all E, the work k per token")

    def __init__(self, dim: SizeLike, hidden: SizeLike, experts: SizeLike, top_k: SizeLike, *,
                 activation: str = "silu", normalize: bool = True,
                 shared_hidden: SizeLike | None = None, shared_gate: bool = False,
                 capacity_factor: Any = None, dropped: SizeLike | None = None) -> None:
        self.dim = to_size(dim, "MoE", "dim")
        self.hidden = to_size(hidden, "MoE", "hidden")
        self.experts = to_size(experts, "MoE", "experts")
        self.top_k = to_size(top_k, "MoE", "top_k")
        if sp.Gt(self.top_k, self.experts) is sp.true:
            raise SymflopsError("top_k is larger than the number of experts", layer="MoE",
                                values={"experts": experts, "top_k": top_k},
                                fix="choose top_k <= experts")
        self.expert = GatedMLP(self.dim, self.hidden, activation)
        self.normalize = bool(normalize)
        self.shared = None if shared_hidden is None else \
            GatedMLP(self.dim, to_size(shared_hidden, "MoE", "shared_hidden"), activation)
        if shared_gate and self.shared is None:
            raise SymflopsError("shared_gate needs a shared expert", layer="MoE",
                                values={"shared_gate": shared_gate},
                                fix="pass shared_hidden=... or drop shared_gate")
        self.shared_gate = bool(shared_gate)
        self.capacity_factor = _capacity_factor(capacity_factor)
        self.dropped = None if dropped is None else nonneg_size(dropped, "MoE", "dropped")
        if self.dropped is not None and self.capacity_factor is None:
            raise SymflopsError("dropped tokens need a capacity factor (without one no token "
                                "is dropped)", layer="MoE", values={"dropped": dropped},
                                fix="pass capacity_factor=... too, or drop dropped")

    def spec(self) -> str:
        extra = "" if self.shared is None else f", shared_hidden={self.shared.hidden}"
        if self.capacity_factor is not None:
            extra += f", capacity_factor={self.capacity_factor}"
        if self.dropped is not None:
            extra += f", dropped={self.dropped}"
        return f"MoE({self.dim}, {self.hidden}, experts={self.experts}, top_k={self.top_k}{extra})"

    def slots(self, tokens: sp.Expr) -> sp.Expr:
        """Rows the experts process for ``tokens`` tokens: ``T k``, or ``E C`` with a
        capacity factor (``C = ceil(c T k / E)`` per expert), or ``T k - D`` with ``D``
        dropped copies (no padding)."""
        if self.capacity_factor is None:
            return tokens * self.top_k
        if self.dropped is not None:
            return tokens * self.top_k - self.dropped
        return self.experts * self._capacity(tokens)

    def _capacity(self, tokens: sp.Expr) -> sp.Expr:
        assert self.capacity_factor is not None
        return sp.ceiling(self.capacity_factor * tokens * self.top_k / self.experts)

    def _drop_conditions(self, tokens: sp.Expr) -> list[sp.Basic]:
        """Where ``D`` dropped copies are possible: each kept copy has a slot (``T k - D <=
        E C``) and no more copies are dropped than there are (``D <= T k``). Concrete
        values that break it raise."""
        if self.dropped is None:
            return []
        routed = tokens * self.top_k
        out = []
        for cond, what in ((sp.Le(self.dropped, routed), "more copies dropped than routed"),
                           (sp.Ge(self.dropped, routed - self.experts * self._capacity(tokens)),
                            "fewer copies dropped than overflow the E C slots")):
            if cond is sp.false:
                raise SymflopsError(f"dropped: {what}", layer=self.spec(),
                                    values={"dropped": self.dropped, "T k": routed,
                                            "E C": self.experts * self._capacity(tokens)},
                                    fix="give dropped between T k - E C and T k")
            if cond is not sp.true:
                out.append(cond)
        return out

    def _cost(self, shape: Shape, name: str) -> Cost:
        if not shape:
            raise SymflopsError("expects an input (..., dim)", layer=self.spec(),
                                values={"input_shape": shape}, fix="pass a shape like (B, N, dim)")
        self._check_channels(shape, shape[-1], self.dim, "features")
        t, e, k = numel(shape[:-1]), self.experts, self.top_k
        logits = shape[:-1] + (e,)

        def leaf(part: str, layer: str, d: Derivation, out: Shape) -> Cost:
            return Cost.from_derivation(part, layer, d, spec=part, input_shape=shape,
                                        output_shape=out)

        children = [Linear(self.dim, e, bias=False)._cost(shape, "gate"),
                    leaf("softmax", "Softmax", softmax_derivation(t, e), logits),
                    leaf("topk", "TopK", topk_derivation(t, e, k), shape[:-1] + (k,))]
        if self.normalize:
            children.append(leaf("renormalize", "Renormalize", renormalize_derivation(t, k),
                                 shape[:-1] + (k,)))
        rows = self.slots(t)
        routed = self.expert._cost((rows, self.dim), "routed")
        one = routed.params
        children.append(Cost("experts", "Experts", spec=f"{e} experts, top {k}", children=[
            routed,
            self._weights("active_weights", "ActiveExpertWeights", (k - 1) * one,
                          "the other k - 1 experts a token uses"),
            self._weights("idle_weights", "IdleExpertWeights", (e - k) * one,
                          "the E - k experts a token does not use"),
        ], input_shape=(rows, self.dim), output_shape=(rows, self.dim)))
        children.append(leaf("combine", "Combine", moe_combine_derivation(t, self.dim, k), shape))
        if self.shared is not None:
            children.append(self.shared._cost(shape, "shared_expert"))
            if self.shared_gate:
                gate_shape = shape[:-1] + (1,)
                children += [Linear(self.dim, 1, bias=False)._cost(shape, "shared_expert_gate"),
                             Sigmoid()._cost(gate_shape, "shared_sigmoid"),
                             leaf("shared_mul", "Mul", elementwise_derivation(
                                 numel(shape), 1, "the shared expert's output times its gate"),
                                  shape)]
            children.append(leaf("shared_add", "Add", elementwise_derivation(
                numel(shape), 1, "routed plus shared output: one add per element"), shape))
        fits = sp.Le(k, e)
        validity = ([] if fits is sp.true else [fits]) + self._drop_conditions(t)
        return Cost(name, "MoE", spec=self.spec(), children=children, input_shape=shape,
                    output_shape=shape, validity=validity)

    @staticmethod
    def _weights(name: str, layer: str, params: sp.Expr, what: str) -> Cost:
        return Cost(name, layer, params=params, work={}, spec=what,
                    derivation=Derivation({}, params, {}, what + ": weights, no arithmetic"))
