"""The device registry and the roofline: exact rationals, symbols kept, bad input refused."""

from __future__ import annotations

import pytest
import sympy as sp

from symflops import devices as dv
from symflops.errors import SymflopsError


def test_h100_figures_are_the_datasheets_dense_halves() -> None:
    h = dv.get_device("H100-SXM5-80GB")
    # datasheet: 1,979 TFLOPS BF16 with sparsity, half without -> 989.5e12
    assert h.peak["bf16"] == sp.Rational(1979, 2) * 10**12
    assert h.bandwidth == 3350 * 10**9
    assert h.capacity == 80 * 10**9
    # ridge = 989.5e12 / 3.35e12 = 19790/67 FLOPs per byte (about 295)
    assert dv.ridge_point(h, "bf16") == sp.Rational(19790, 67)


def test_roofline_is_max_per_op_summed_exactly() -> None:
    h = dv.get_device("H100-SXM5-80GB")
    ops = [(2 * 10**12, 10**6), (10, 67 * 10**9), (3 * 4096**2, 2 * 4096**2)]
    expect = sum(
        (max(sp.Rational(f) / h.peak["bf16"], sp.Rational(b) / h.bandwidth) for f, b in ops),
        sp.Integer(0),
    )
    t = dv.roofline_time(ops, "H100-SXM5-80GB")
    assert t == expect and isinstance(t, sp.Rational)
    # first op compute-bound, second memory-bound: by hand
    assert dv.op_time(2 * 10**12, 10**6, h) == sp.Rational(2 * 10**12) / h.peak["bf16"]
    assert dv.op_time(10, 67 * 10**9, h) == sp.Rational(1, 50)
    assert dv.intensity(10, 4) == sp.Rational(5, 2)


def test_symbolic_bandwidth_answers_what_if() -> None:
    bw = sp.Symbol("BW", positive=True)
    d = dv.Device(name="what-if", peak={"bf16": 10**15}, bandwidth=bw)
    t = dv.op_time(10**6, 10**9, d)
    assert t.subs(bw, 10**12) == sp.Rational(1, 1000)
    # bandwidth 10% higher: time of a memory-bound op divides by 11/10
    assert t.subs(bw, sp.Rational(11, 10) * 10**12) == sp.Rational(1, 1100)


def test_register_refuses_duplicates_and_unknown_names() -> None:
    d = dv.Device(name="test-dev-1", peak={"fp32": 10**12}, bandwidth=10**11, capacity=10**9)
    dv.register_device(d)
    try:
        assert dv.get_device("test-dev-1") is d
        with pytest.raises(SymflopsError, match="already registered"):
            dv.register_device(dv.Device(name="test-dev-1", peak={"fp32": 1}, bandwidth=1))
    finally:
        dv._DEVICES.pop("test-dev-1")
    with pytest.raises(SymflopsError, match="unknown device"):
        dv.get_device("H100-PCIE-NOPE")
    with pytest.raises(SymflopsError, match="no peak"):
        dv.ridge_point("TPU v5e", "fp64")


@pytest.mark.parametrize("bad", [3.35e12, -1, 0, "fast"])
def test_inexact_or_nonpositive_figures_are_refused(bad: object) -> None:
    with pytest.raises(SymflopsError):
        dv.Device(name="x", peak={"bf16": 1}, bandwidth=bad)



#: the datasheets' printed figures (TFLOPS as printed, "s" where printed with sparsity),
#: bandwidth in GB/s and capacity in GB: the registry must hold their dense values exactly
DATASHEETS = {
    "H200-SXM-141GB": ({"fp32": "67", "bf16": "1979s", "fp8": "3958s", "tf32": "989s"},
                       4800, 141),
    "L4": ({"fp32": "30.3", "bf16": "242s", "fp16": "242s", "fp8": "485s", "tf32": "120s"},
           300, 24),
    "MI300X": ({"fp64": "81.7", "fp32": "163.4", "bf16": "1307.4", "fp8": "2614.9",
                "tf32": "653.7"}, 5300, 192),
}


@pytest.mark.parametrize("name", sorted(DATASHEETS))
def test_new_devices_hold_their_datasheets_dense_figures(name: str) -> None:
    printed, bandwidth, capacity = DATASHEETS[name]
    d = dv.get_device(name)
    for dtype, text in printed.items():
        sparse = text.endswith("s")
        dense = sp.Rational(text.rstrip("s")) / (2 if sparse else 1)
        assert d.peak[dtype] == dense * 10**12, dtype
    assert d.bandwidth == bandwidth * 10**9 and d.capacity == capacity * 10**9
    # the ridge point is peak / bandwidth, exactly
    assert dv.ridge_point(d, "bf16") == d.peak["bf16"] / d.bandwidth


def test_h200_is_an_h100_with_more_memory() -> None:
    # same Hopper compute, 4.8 vs 3.35 TB/s: a memory-bound op runs 4800/3350 times faster
    h100, h200 = dv.get_device("H100-SXM5-80GB"), dv.get_device("H200-SXM-141GB")
    assert h100.peak == h200.peak
    ratio = dv.op_time(1, 10**9, h100) / dv.op_time(1, 10**9, h200)
    assert ratio == sp.Rational(4800, 3350)


def test_compute_bound_at_is_where_the_intensity_crosses_the_ridge() -> None:
    import symflops as sf
    from symflops.symbols import B, T

    # one Llama-3-8B layer: its matmuls reach the H100's ridge near B = 300 at short
    # contexts; the unfused attention's score traffic grows with B*T and keeps a long
    # context below the ridge at any batch (oo)
    m = sf.presets.llama(dim=4096, heads=32, kv_heads=8, layers=1, vocab=1000, hidden=14336)
    dec = m.cost((B, 1), mode="decode", context=T, convention="torch")
    at = dec.compute_bound_at("H100-SXM5-80GB")
    ridge = dv.ridge_point("H100-SXM5-80GB")
    # checked by bisection on the integers: below the crossing memory-bound, above compute
    for t in (0, 16, 64):
        b_star = at.subs(T, t)
        intensity = dec.intensity.subs(T, t)
        if b_star == sp.oo:  # the attention's traffic keeps it below the ridge
            assert intensity.subs(B, 10**9) < ridge
            continue
        lo, hi = 1, 10**7
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if intensity.subs(B, mid) < ridge else (lo, mid)
        assert lo < b_star <= hi
    assert at.subs(T, 0) < 1000 and at.subs(T, 10**6) == sp.oo
    with pytest.raises(SymflopsError, match="MACs"):
        dec.with_convention("macs").compute_bound_at("H100-SXM5-80GB")
