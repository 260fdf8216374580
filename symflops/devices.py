"""Named devices (peak FLOP/s per dtype, memory bandwidth and capacity) and the roofline.

Every figure is the vendor's published peak, dense (without 2:4 structured sparsity), as an exact
rational: FLOP/s, bytes/s and bytes (decimal units as the datasheets print them: 1 TB/s = 10**12
bytes/s, 1 GB = 10**9 bytes). A FLOP is one multiply or one add (a multiply-add is 2 FLOPs), the
convention symflops counts FLOPs in, which is also the one the datasheets use. A figure that could
not be sourced is left out (the dtype is absent from ``peak``), never guessed.

Sources:

- ``H100-SXM5-80GB``: NVIDIA H100 Tensor Core GPU datasheet (SXM column): FP64 34 TFLOPS,
  FP64 Tensor Core 67, FP32 67, TF32 / BF16 / FP16 / FP8 / INT8 Tensor Core 989 / 1,979 / 1,979 /
  3,958 / 3,958 "shown with sparsity, specifications 1/2 lower without sparsity" (halved here:
  494.5 / 989.5 / 989.5 / 1,979 / 1,979), GPU memory 80 GB, bandwidth 3.35 TB/s.
- ``TPU v5e``: Google Cloud TPU documentation, "TPU v5e" (docs.cloud.google.com/tpu/docs/v5e), key
  chip specifications: peak compute per chip 197 TFLOPs (bf16), 393 TOPs (int8), HBM2 16 GB at
  819 GB/s.
- ``CPU``: no single datasheet describes "a CPU": its peak and bandwidth are symbols
  (``P_cpu``, ``BW_cpu``) and its capacity is left out; substitute your machine's figures or
  register your own device with :func:`register_device`.

- ``A100-SXM4-80GB``: NVIDIA A100 Tensor Core GPU datasheet
  (nvidia-a100-datasheet-us-nvidia-1758950-r4), SXM 80GB column: FP64 9.7 TFLOPS,
  FP64 Tensor Core 19.5, FP32 19.5, TF32 156, BF16 / FP16 312, INT8 624 TOPS
  (dense; the starred figures are with sparsity), 80 GB HBM2e at 2,039 GB/s.

- ``H200-SXM-141GB``: NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column: the same Hopper
  compute as the H100 SXM (FP64 34, FP64 Tensor Core 67, FP32 67; TF32 / BF16 / FP16 / FP8 /
  INT8 Tensor Core 989 / 1,979 / 1,979 / 3,958 / 3,958 "with sparsity", halved here), GPU memory
  141 GB HBM3e at 4.8 TB/s.
- ``L4``: NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS; TF32 / FP16 / BF16 / FP8 /
  INT8 Tensor Core 120 / 242 / 242 / 485 / 485 "with sparsity" (halved here: 60 / 121 / 121 /
  242.5 / 242.5), 24 GB GDDR6 at 300 GB/s.
- ``MI300X``: AMD Instinct MI300X accelerator data sheet, peak theoretical (dense; the
  structured-sparsity figures are the doubled ones): FP64 vector 81.7 TFLOPS, FP64 / FP32 matrix
  163.4, TF32 653.7, FP16 / BF16 1,307.4, FP8 2,614.9, INT8 2,614.9 TOPS; 192 GB HBM3 at
  5.3 TB/s. (Third-party spec pages quote the sparse 2,614.9 as "FP16", or vector rates; the
  data sheet's matrix figures are the ones a GEMM reaches.)

>>> h100 = get_device("H100-SXM5-80GB")
>>> h100.peak["bf16"], h100.bandwidth
(989500000000000, 3350000000000)
>>> ridge_point("H100-SXM5-80GB", "bf16")
19790/67
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symflops.errors import SymflopsError

__all__ = [
    "Device",
    "register_device",
    "get_device",
    "devices",
    "intensity",
    "ridge_point",
    "roofline_time",
    "op_time",
    "compute_bound_at",
]

_T = 10**12
_G = 10**9


def _number(value: Any, what: str, device: str) -> sp.Expr:
    """An exact positive number or a symbol; floats and non-positive values are refused."""
    if isinstance(value, (bool, float, sp.Float)):
        raise SymflopsError(
            f"{what} must be exact (an int, a Rational or a Symbol), not a float",
            layer=device,
            values={what: value},
            fix="write e.g. sympy.Rational(3350, 1) * 10**9 instead of 3.35e12",
        )
    if isinstance(value, int):
        value = sp.Integer(value)
    if not isinstance(value, sp.Expr):
        raise SymflopsError(
            f"{what} must be a number or a sympy expression",
            layer=device,
            values={what: repr(value)},
            fix="pass an int, a sympy.Rational or a sympy.Symbol",
        )
    if value.has(sp.Float):
        raise SymflopsError(
            f"{what} contains a float", layer=device, values={what: value},
            fix="use sympy.Rational for fractional figures",
        )
    if value.is_positive is False:
        raise SymflopsError(
            f"{what} must be positive", layer=device, values={what: value},
            fix="give the device's published peak / bandwidth / capacity",
        )
    return value


@dataclass(frozen=True)
class Device:
    """A device: ``peak`` FLOP/s per dtype name (dense), ``bandwidth`` in bytes/s, ``capacity``
    in bytes (None when not given), ``source`` naming where the figures come from. Any number may
    be a sympy expression in symbols (``bandwidth=BW`` to ask what a faster memory changes)."""

    name: str
    peak: Mapping[str, Any]
    bandwidth: Any
    capacity: Any = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SymflopsError("a device needs a non-empty name", values={"name": self.name},
                                fix="Device(name='my-gpu', ...)")
        if not self.peak:
            raise SymflopsError("a device needs a peak FLOP/s for at least one dtype",
                                layer=self.name, fix="peak={'bf16': ...}")
        peak = {str(k): _number(v, f"peak[{k}]", self.name) for k, v in self.peak.items()}
        object.__setattr__(self, "peak", peak)
        object.__setattr__(self, "bandwidth", _number(self.bandwidth, "bandwidth", self.name))
        if self.capacity is not None:
            object.__setattr__(self, "capacity", _number(self.capacity, "capacity", self.name))

    def peak_for(self, dtype: str) -> sp.Expr:
        """Peak FLOP/s for ``dtype``; a dtype without a sourced figure is an error."""
        try:
            value: sp.Expr = self.peak[dtype]
            return value
        except KeyError:
            raise SymflopsError(
                "no peak FLOP/s for this dtype on this device",
                layer=self.name,
                values={"dtype": dtype, "known": ", ".join(sorted(self.peak))},
                fix="pick one of the known dtypes or register a device with that figure",
            ) from None


_DEVICES: dict[str, Device] = {}


def register_device(device: Device, *, replace: bool = False) -> Device:
    """Add ``device`` to the registry; a name already there is refused unless ``replace``."""
    if not isinstance(device, Device):
        raise SymflopsError("register_device takes a Device", values={"got": type(device).__name__},
                            fix="register_device(Device(name=..., peak=..., bandwidth=...))")
    if device.name in _DEVICES and not replace:
        raise SymflopsError("a device with this name is already registered",
                            layer=device.name, fix="choose another name or pass replace=True")
    _DEVICES[device.name] = device
    return device


def get_device(name: str | Device) -> Device:
    """The device called ``name`` (a :class:`Device` is returned as is)."""
    if isinstance(name, Device):
        return name
    try:
        return _DEVICES[name]
    except (KeyError, TypeError):
        raise SymflopsError("unknown device", values={"device": name,
                            "known": ", ".join(sorted(_DEVICES))},
                            fix="use a known name or register_device(Device(...))") from None


def devices() -> dict[str, Device]:
    """A copy of the registry, name -> Device."""
    return dict(_DEVICES)


def intensity(flops: Any, nbytes: Any) -> sp.Expr:
    """Arithmetic intensity, FLOPs per byte moved (exact)."""
    f = sp.sympify(flops) if isinstance(flops, (int, sp.Basic)) else flops
    b = sp.sympify(nbytes) if isinstance(nbytes, (int, sp.Basic)) else nbytes
    if not isinstance(f, sp.Expr) or not isinstance(b, sp.Expr):
        raise SymflopsError("intensity takes exact numbers or sympy expressions",
                            values={"flops": flops, "bytes": nbytes},
                            fix="pass ints or sympy expressions")
    if b.is_zero:
        raise SymflopsError("intensity of an op that moves no bytes is undefined",
                            values={"flops": f, "bytes": b}, fix="leave views out")
    return f / b


def ridge_point(device: str | Device, dtype: str = "bf16") -> sp.Expr:
    """The intensity (FLOPs per byte) above which ``device`` is compute-bound: peak / bandwidth."""
    d = get_device(device)
    ridge: sp.Expr = d.peak_for(dtype) / d.bandwidth
    return ridge


def op_time(flops: Any, nbytes: Any, device: str | Device, dtype: str = "bf16") -> sp.Expr:
    """Roofline lower bound for one op, in seconds: max(flops / peak, bytes / bandwidth)."""
    d = get_device(device)
    f, b = sp.sympify(flops), sp.sympify(nbytes)
    if f.has(sp.Float) or b.has(sp.Float):
        raise SymflopsError("op_time takes exact counts", values={"flops": f, "bytes": b},
                            fix="pass ints or exact sympy expressions")
    t: sp.Expr = sp.Max(f / d.peak_for(dtype), b / d.bandwidth)
    return t


def roofline_time(ops: Iterable[tuple[Any, Any]], device: str | Device,
                  dtype: str = "bf16") -> sp.Expr:
    """Sum over ops ``(flops, bytes)`` of :func:`op_time`: seconds, an exact rational at numbers
    (per op max(flops/peak, bytes/bandwidth); no overlap between ops is assumed)."""
    total: sp.Expr = sp.Integer(0)
    for flops, nbytes in ops:
        total += op_time(flops, nbytes, device, dtype)
    return total


def compute_bound_at(flops: Any, nbytes: Any, symbol: sp.Symbol, device: str | Device,
                     dtype: str = "bf16") -> sp.Expr:
    """The value of ``symbol`` (a batch size, say) at which ``flops`` FLOPs over ``nbytes``
    bytes reach ``device``'s ridge point: ``flops / peak == nbytes / bandwidth``, solved
    exactly over the positive reals. Below it the work is memory-bound, above it
    compute-bound (when the intensity grows with ``symbol``). Other symbols stay in the
    answer. One clear error when there is no such value or more than one.

    The answer is ``oo`` where the work never turns compute-bound (its intensity stays
    below the ridge however large ``symbol`` grows), 0 where it is compute-bound at every
    value, and a Piecewise when that depends on the other symbols (a decode step's context
    length).

    >>> B = sp.Symbol("B", positive=True)
    >>> compute_bound_at(2 * 10**9 * B, 2 * 10**9 + 10**6 * B, B, "H100-SXM5-80GB")
    3958000/11421
    """
    d = get_device(device)
    f, b = sp.sympify(flops), sp.sympify(nbytes)
    if f.has(sp.Float) or b.has(sp.Float):
        raise SymflopsError("compute_bound_at takes exact counts", values={"flops": f},
                            fix="pass ints or exact sympy expressions")
    x = sp.Dummy("x", real=True)
    equation = sp.expand(f.xreplace({symbol: x}) * d.bandwidth -
                         b.xreplace({symbol: x}) * d.peak_for(dtype))
    roots = [r for r in sp.solve(equation, x) if r.is_positive is not False]
    if not roots:  # one side of the ridge at every positive value
        side = sp.sign(equation.subs(x, 1))
        if side == -1:
            return sp.oo
        if side in (0, 1):
            return sp.Integer(0)
    if len(roots) != 1:
        raise SymflopsError(
            "no single value where the work turns compute-bound" if not roots else
            "several values where the work changes bound", layer=d.name,
            values={"symbol": symbol, "solutions": roots},
            fix="check that the FLOPs and bytes both depend on the symbol (a decode step's "
                "batch size), or bound the other symbols first")
    root: sp.Expr = sp.simplify(roots[0])
    if root.is_positive:
        return root
    if root.is_positive is False:
        return sp.oo
    answer: sp.Expr = sp.Piecewise((root, root > 0), (sp.oo, True))
    return answer


#: dense peak FLOP/s of NVIDIA's Hopper SXM parts (H100 and H200 share the GH100 die and
#: clocks: the datasheets print the same compute, the H200 with more and faster memory)
_HOPPER_SXM_PEAK = {
    "fp64": 34 * _T,
    "fp64_tensor": 67 * _T,
    "fp32": 67 * _T,
    "tf32": sp.Rational(989, 2) * _T,
    "bf16": sp.Rational(1979, 2) * _T,
    "fp16": sp.Rational(1979, 2) * _T,
    "fp8": 1979 * _T,
    "int8": 1979 * _T,
}

register_device(Device(
    name="H100-SXM5-80GB",
    peak=dict(_HOPPER_SXM_PEAK),
    bandwidth=3350 * _G,
    capacity=80 * _G,
    source="NVIDIA H100 Tensor Core GPU datasheet, SXM column (sparse figures halved)",
))

register_device(Device(
    name="A100-SXM4-80GB",
    peak={
        "fp64": sp.Rational(97, 10) * _T,
        "fp64_tensor": sp.Rational(195, 10) * _T,
        "fp32": sp.Rational(195, 10) * _T,
        "tf32": 156 * _T,
        "bf16": 312 * _T,
        "fp16": 312 * _T,
        "int8": 624 * _T,
    },
    bandwidth=2039 * _G,
    capacity=80 * _G,
    source="NVIDIA A100 Tensor Core GPU datasheet, SXM 80GB column (dense figures)",
))

register_device(Device(
    name="TPU v5e",
    peak={"bf16": 197 * _T, "int8": 393 * _T},
    bandwidth=819 * _G,
    capacity=16 * _G,
    source="Google Cloud TPU documentation, TPU v5e key chip specifications",
))

register_device(Device(
    name="CPU",
    peak={"fp32": sp.Symbol("P_cpu", positive=True)},
    bandwidth=sp.Symbol("BW_cpu", positive=True),
    source="symbolic: substitute your CPU's peak FLOP/s and memory bandwidth",
))

register_device(Device(
    name="H200-SXM-141GB",
    peak=dict(_HOPPER_SXM_PEAK),
    bandwidth=4800 * _G,
    capacity=141 * _G,
    source="NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (sparse figures halved)",
))

register_device(Device(
    name="L4",
    peak={
        "fp32": sp.Rational(303, 10) * _T,
        "tf32": 60 * _T,
        "bf16": 121 * _T,
        "fp16": 121 * _T,
        "fp8": sp.Rational(485, 2) * _T,
        "int8": sp.Rational(485, 2) * _T,
    },
    bandwidth=300 * _G,
    capacity=24 * _G,
    source="NVIDIA L4 Tensor Core GPU datasheet (sparse figures halved)",
))

register_device(Device(
    name="MI300X",
    peak={
        "fp64": sp.Rational(817, 10) * _T,
        "fp64_tensor": sp.Rational(1634, 10) * _T,
        "fp32": sp.Rational(1634, 10) * _T,
        "tf32": sp.Rational(6537, 10) * _T,
        "bf16": sp.Rational(13074, 10) * _T,
        "fp16": sp.Rational(13074, 10) * _T,
        "fp8": sp.Rational(26149, 10) * _T,
        "int8": sp.Rational(26149, 10) * _T,
    },
    bandwidth=5300 * _G,
    capacity=192 * _G,
    source="AMD Instinct MI300X accelerator data sheet, peak theoretical dense figures "
           "(fp64_tensor: FP64 matrix)",
))
