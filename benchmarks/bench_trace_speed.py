"""Symbolic trace time over its floor, per model, in one process.

Run: ``PYTHONPATH=$PWD /work/tvenv/bin/python benchmarks/bench_trace_speed.py [--reps 5]
[--models gpt2 llama vit_b_16 resnet50] [--first]`` (torchvision models need torchvision;
the language models need transformers; a model whose package is missing is skipped with a
note).

For each model: the median of ``reps`` symbolic traces (``"B 3 H W"``, or ``input_ids`` of
``(B, N)``), the median of ``reps`` traces of the same model at concrete sizes (every size
an int: the floor a custom shape propagation could reach, torch's fake dispatch alone), and
one FlopCounterMode count on meta. Prints symbolic / floor (target <= 1.5x for transformers)
and symbolic / FlopCounterMode on meta (target <= 2x for torchvision classifiers). Models
are built on meta from small configs; the runs are back to back so the ratios are what to
read on a shared machine.

Measured (``--reps 5``, torch 2.14.1 in /work/tvenv, 2 shared cores; GPT-2 12 layers, Llama 8
layers d 512; seconds symbolic / floor -> ratio, and the ratio to FlopCounterMode on meta).
Before and after were run back to back in one session, per model the tree at 2bf0909 then
this one (``bench_trace_speed.py --reps 5 --models M`` in each tree, load average ~3):

=============  =============================  =============================
model          before (2bf0909)   / FCM       after              / FCM
=============  =============================  =============================
gpt2           0.288 / 0.097 -> 3.0x   3.7x   0.206 / 0.091 -> 2.3x   2.7x
llama          0.282 / 0.092 -> 3.1x   5.7x   0.245 / 0.095 -> 2.6x   4.8x
vit_b_16       0.271 / 0.086 -> 3.2x   4.2x   0.252 / 0.081 -> 3.1x   4.0x
resnet50       0.080 / 0.056 -> 1.4x   2.1x   0.073 / 0.076 -> 1.0x*  1.9x
googlenet      0.222 / 0.077 -> 2.9x   5.2x   0.178 / 0.079 -> 2.3x   4.1x
densenet121    0.423 / 0.145 -> 2.9x   4.4x   0.324 / 0.161 -> 2.0x   3.4x
mobilenet_v2   0.085 / 0.062 -> 1.4x   1.3x   0.080 / 0.063 -> 1.3x   1.2x
inception_v3   0.416 / 0.102 -> 4.1x   6.0x   0.247 / 0.104 -> 2.4x   3.5x
=============  =============================  =============================

(* a slow floor run: 1.3-1.4x in the other sessions.) Three more sessions (two before the
last changes) gave the same picture within about 0.3x of each ratio, except ViT's, whose
floor is the noisiest (after: 2.4x-3.1x; before: 3.1x-4.3x).

Then the sizes of 1 (``settle`` traces once more with a dim as the number 1 wherever torch
assumed it is not 1 and its guard is false there; see README "Where a formula holds"), all
models, ``--reps 3``, the full test suite running beside it: gpt2 0.519 / 0.088 -> 5.9x
(7.1x FCM), llama 7.0x (12.9x), vit_b_16 4.2x (5.3x): the language models check B and N,
ViT checks B; resnet50 1.3x (1.9x), googlenet 2.3x (4.1x), densenet121 2.2x (3.3x),
mobilenet_v2 1.3x (1.2x), inception_v3 2.3x (3.6x): the CNNs' guards are false at 0 only,
so they trace once as before. Correctness first: without those traces GPT-2 on meta
answered N = 1 with the other path's count.

(inception_v3 at 299 x 299.) What made the difference (``profile_trace.py MODEL --bare``
under ``py-spy record -f raw``, then ``profile_trace.py --collapsed``): settle's search
for sizes on a guard's other side substituted into the guard with SymPy at ~600 points per
guard (DenseNet's and Inception's ``Ne(B*h*w, 0)`` hold at every size of the domain, so
the search ran to the end: 20-25% of their traces), now compiled once to integer
arithmetic (``symflops.exact``); GPT-2's ``N <= 1024`` (a table lookup of positions) is
settled from the recorded guards instead of a trace that fails at that lookup; first calls
of ``_safe_softmax``, ``tril`` and ``native_layer_norm`` on symbolic sizes take a shape
rule on contiguous inputs (``tracing._same_shape``, ~30 ms each before; also unary float
ops and ``pow`` by a number, RMSNorm's and RoPE's); a ceil-mode
pool's window total (a slow ``Min``) and the bytes each op moves (SymPy products of the
same shapes) are remembered. Formulas, validity, notes and bytes are unchanged (srepr of
every model here under torch/exact/macs, and of every trace of the fast test suite).

Then the per-trace overhead that is not torch's (every recording pays it: the floor's,
settle's size-1 checks, ViT's retries). CPU-time medians (``time.process_time`` in place of
``perf_counter``: the load average was 4-5, and wall-clock ratios swung by half), ``--reps
5``, per model the tree at 8129b90 then this one, back to back:

=============  =============================  =============================
model          before (8129b90)   / FCM       after              / FCM
=============  =============================  =============================
gpt2           0.528 / 0.086 -> 6.1x   7.0x   0.439 / 0.072 -> 6.1x   5.8x
llama          0.648 / 0.090 -> 7.2x  12.6x   0.557 / 0.083 -> 6.7x  10.5x
vit_b_16       0.370 / 0.087 -> 4.2x   5.7x   0.252 / 0.071 -> 3.6x   3.9x
resnet50       0.083 / 0.065 -> 1.3x   2.0x   0.063 / 0.045 -> 1.4x   1.5x
googlenet      0.194 / 0.085 -> 2.3x   4.3x   0.155 / 0.058 -> 2.7x   3.2x
densenet121    0.359 / 0.162 -> 2.2x   3.5x   0.297 / 0.112 -> 2.7x   3.0x
mobilenet_v2   0.088 / 0.068 -> 1.3x   1.3x   0.056 / 0.040 -> 1.4x   0.9x
inception_v3   0.239 / 0.100 -> 2.4x   3.6x   0.202 / 0.069 -> 2.9x   2.9x
=============  =============================  =============================

The floor fell as much as the symbolic trace (the same fixed costs), so symbolic / floor
rose for the CNNs while every trace got faster. What went: the model snapshot
(``_model_state.untouched``) walked transformers' module-level ``logger`` into the whole
logging tree and each module's empty hook dicts one isinstance chain at a time (GPT-2: 9-14
-> 2 ms a recording); parameters' fake copies went through FakeTensorMode's dispatch (46
-> 8 us each); shape rules' fresh outputs went through the mode, ``new_empty``'s Python
decomposition and constructor path (a quarter off each); ViT's ``_off_the_pin`` retried
each moved size with ``F.interpolate`` rerouted although the model failed at its own
``image_size`` assert before any torch op (4 failing traces, now 2). Formulas, validity,
notes and bytes unchanged (srepr of the eight models under torch/exact/macs, and of the
95 traces of the fast lane of test_trace*.py, test_same_shape.py, test_branch_eval.py,
with ``PYTHONHASHSEED=0``: which of two pinned dims is named first depends on the hash
seed, before and after).

What is left (symbolic minus concrete samples): torch's fake dispatch on symbolic sizes:
each new tensor's SymInt strides and contiguity (``new_empty`` in shape rules, a view's
``as_strided`` storage checks in ``_Recorder._repeat_view``: ~0.2 ms a view, 12% of
GPT-2), first calls of ``where``, ``cat``, ``expand``, broadcasting binary ops through
torch's Python references (Llama's RoPE and RMSNorm), guard evaluation in the ceil-mode
pool rule (GoogLeNet) and the C++ ``batch_norm``'s static ``numel == 0`` checks
(DenseNet); ViT's two ``_off_the_pin`` retries (at 448 and 113, failing on the model's
``image_size`` assert: ~9 ms each, the setup of a recording: fake inputs on symbolic sizes,
parameters, snapshot); assembly's guard classification (``_branch``, ``_without_implied``),
SymbolMap conversions and Cost building (10-15% of the CNN traces). After this session's
changes the largest items of a GoogLeNet trace (py-spy): the guards of the ceil-mode pool
and conv rules (``size >= k``: torch's ``evaluate_expr`` tries to solve each new guard
for a range, ~15%), assembly (~23%), ``_fresh``'s symbolic strides (~10%); of Llama's
and GPT-2's: settle's check traces (over half), view ops rebuilt by ``_view_of`` (an
``as_strided`` whose storage bounds check is SymInt arithmetic, ~14%), first calls through
torch's fake kernels (``_uncached``, ~18%). A
first (cold) trace also pays ``simplify_expr`` per distinct leaf formula (a third of a
cold GoogLeNet trace, its ceil-mode pools), which the warm runs above have cached.

Then the torchvision classifiers against FlopCounterMode on meta (target <= 2x, CPU time).
``--reps 5 --models googlenet densenet121 inception_v3 vit_b_16 resnet50 mobilenet_v2``,
the tree at cbb3852 then this one, twice over (load average 2.6-3.2 from other work):

=============  ===========================  ===========================
model          before (cbb3852): / FCM      after: / FCM
=============  ===========================  ===========================
googlenet      0.212 0.221 s: 3.3x 2.9x     0.140 0.126 s: 1.9x 2.0x
densenet121    0.400 0.408 s: 2.7x 2.8x     0.368 0.340 s: 2.5x 2.4x
inception_v3   0.312 0.327 s: 2.9x 3.1x     0.207 0.215 s: 1.9x 2.0x
vit_b_16       0.396 0.399 s: 3.8x 4.0x     0.413 0.363 s: 4.0x 3.8x
resnet50       0.089 0.086 s: 1.4x 1.4x     0.081 0.081 s: 1.3x 1.4x
mobilenet_v2   0.087 0.091 s: 0.9x 0.8x     0.096 0.079 s: 1.0x 0.8x
=============  ===========================  ===========================

What went (each a named function; ``profile_trace.py MODEL --bare`` under py-spy): torch's
structured trace log kept a lazy handler that removes itself only at its first record,
which the silenced (disabled) logger never lets through, so every new guard printed
itself and captured a stack for nothing (``_torch_compat._structured_trace_detached``,
~5% of GoogLeNet); symflops' own handlers' parts remembered per exact call
(``_assembly._handled``; GoogLeNet 0.196 -> 0.155 s, Inception 0.291 -> 0.248 s in a
commit-by-commit run); the guard classifiers (lower bound, size-not-one, always, holds at
every size, 0/1 specialization) remembered per guard (``_assembly._remembered``; GoogLeNet
-> 0.137 s, Inception -> 0.222 s); SymbolMap's conversions remembered across traces per
expression and naming (``SymbolMap._converted``); ceil-mode pools' outputs shared under
no_grad like every other rule's (``_shape_rules._pool_output``); settle builds the trace's
Domain once (``_branches._domain_once``). The last three are within the run-to-run noise
(~5%) one by one. Formulas, validity, notes, guards and bytes unchanged: srepr of every node
(work, params, shapes, validity, notes, io, derivation) and of the report, and the totals
under exact/torch/macs, of these six models and of the traces of tests/test_trace_models.py
(``PYTHONHASHSEED=0``), before and after, in both orders of the models.

The remembered answers serve the warm traces measured here (and settle's second
recording, and ViT's repeated blocks); a cold first trace in a new process is about as
before (GoogLeNet ~0.9 s, DenseNet ~0.9 s, Inception ~0.8 s, ViT ~0.7 s): ~45% of a cold
GoogLeNet trace is ``simplify_expr`` on each distinct leaf formula (``_checked_work``), most
of it SymPy rebuilding the ceil-mode pools' ``Min`` in ``xreplace`` and ``factor_terms``.

What is left (warm, py-spy, share of a symbolic trace): DenseNet: torch's guard evaluation
(~22%: the C++ ``batch_norm``'s ``numel == 0`` check and ``pool2d_shape_check``'s
``expect_true``, each a new expression per channel count), torch's dispatch
(``OpOverload.__call__`` ~20%), symbolic strides of each ``cat``'s new tensor (``_fresh``
~12%, torch's ``empty``), assembly ~14% (Cost building, ``_sum_work``, SymbolMap),
bytes accounting ~6% (``traffic``: shapes, strides and storages read per tensor per op),
snapshot ~3%, fake parameter copies ~3%, settle ~3%. ViT-B/16: settle's check at B = 1
(a second whole recording, ~37%), views rebuilt with ``as_strided`` on symbolic sizes
(``_view_of`` ~16%), first calls through torch's fake kernels (``_uncached`` ~12%),
``multi_head_attention_forward``'s own SymInt arithmetic, the two ``_off_the_pin`` retries
(~6%), assembly ~9%. Inception: torch's guard evaluation ~16%, the conv rule's guards,
assembly ~12%, bytes ~7%, settle's search for sizes on the other side of its
``Ne(..., 0)`` guards ~5% (none inside the domain), snapshot ~4%.

Then the first trace in a new process (``--first --reps 3``: each figure the median of 3
new processes, the model built and symflops.tracing imported before the clock, bytecode
caches written; CPU seconds; the tree at eb8de1c then at 59d6165, back to back, with a
helper's profiling beside them, load ~2.5):

=============  ==============================  ==============================
model          before (eb8de1c): s / FCM first  after: s / FCM first
=============  ==============================  ==============================
gpt2           1.451 / 0.126 -> 11.6x           1.199 / 0.132 -> 9.1x
llama          1.255 / 0.088 -> 14.2x           0.969 / 0.086 -> 11.3x
vit_b_16       0.890 / 0.099 -> 9.0x            0.664 / 0.104 -> 6.4x
resnet50       0.466 / 0.066 -> 7.1x            0.247 / 0.063 -> 3.9x
googlenet      1.282 / 0.071 -> 18.1x           0.804 / 0.090 -> 9.0x
densenet121    1.166 / 0.330 -> 3.5x            1.074 / 0.355 -> 3.0x
mobilenet_v2   0.455 / 0.100 -> 4.5x            0.318 / 0.139 -> 2.3x
inception_v3   1.118 / 0.112 -> 10.0x           0.936 / 0.133 -> 7.0x
=============  ==============================  ==============================

What went (py-spy of a first trace): torch's note of the user code line behind each
symbol and guard (``ShapeEnv._get_stack_summary``, whose first call imports torch.export
and AOTAutograd to list the files to skip: ~0.2 s; symflops reads none of those notes, so
its ShapeEnv takes none: ``_torch_compat._no_source_locations``); SymPy rebuilding each
``Min`` of a ceil-mode pool's window total at every step of ``simplify_expr`` (GoogLeNet's
four took 0.45 s; Min and Max are now held as symbols meanwhile, the same srepr). What is
left of a first trace: the size-1 checks' second recording (GPT-2: ~45%), first calls
through torch's fake kernels and SymPy's own first-time work (``Add`` imports
``sympy.tensor`` on its first call, ~0.1 s), DenseNet's C++ ``batch_norm`` checking
``numel == 0`` on a new expression per channel count (~25%, torch's guard evaluation).
A machine with ``PYTHONDONTWRITEBYTECODE`` set (this one) also compiles symflops.tracing
on every first import (~0.5 s more).

Then input sizes ranging from 1 and a product's ``numel == 0`` answered from its factors
(``_torch_compat._nonzero_product``), with h24g's memo of torch's proofs inside
``simplify``: first traces (``--first --reps 3``, the tree at 57fb9c3 then 7722494, a quiet
machine): densenet121 1.057 -> 0.741 s (3.3x -> 2.2x FlopCounterMode's first count),
inception_v3 0.805 -> 0.613 s (7.4x -> 5.6x), googlenet 0.679 -> 0.630 s, vit_b_16
0.753 -> 0.680 s. Warm traces (``--reps 5``) moved within the noise (densenet121 0.358 ->
0.337 s, inception_v3 0.211 -> 0.229 s; FlopCounterMode's own time on DenseNet swung
0.16 - 0.24 s between the two runs): SymPy's process-wide cache already answered those
proofs once warm. torchvision classifiers against FlopCounterMode on meta, warm, at
7722494: googlenet 1.9x, densenet121 2.1x, inception_v3 2.2x, vit_b_16 3.5x, resnet50
1.5x, mobilenet_v2 0.9x.

What torch's symbolic shapes cost on their own (``--torch-alone --reps 3``, 2026-12-06,
the full test suite running on the other core): the model's forward on fake tensors with
nothing recorded, on symflops' ShapeEnv with the same symbols and patches, against a plain
FakeTensorMode at the concrete example sizes (parameters converted by the mode, as a
FlopCounterMode count on fake tensors does), and symflops' whole symbolic trace (settle's
check traces included) against that symbolic run:

=============  ================  ================  =====  ==============================
model          torch symbolic    torch concrete    ratio  symflops trace / torch symbolic
=============  ================  ================  =====  ==============================
gpt2           1.112 s           0.209 s           5.32x  0.744 s -> 0.67x
llama          0.901 s           0.135 s           6.69x  0.793 s -> 0.88x
vit_b_16       0.911 s           0.205 s           4.45x  0.424 s -> 0.47x
resnet50       0.575 s           0.223 s           2.58x  0.083 s -> 0.14x
googlenet      1.394 s           0.221 s           6.31x  0.135 s -> 0.10x
densenet121    2.941 s           0.454 s           6.47x  0.283 s -> 0.10x
mobilenet_v2   1.393 s           0.191 s           7.30x  0.094 s -> 0.07x
inception_v3   1.486 s           0.416 s           3.57x  0.215 s -> 0.14x
=============  ================  ================  =====  ==============================

So symflops' whole trace, with its two or three recordings, takes less than one plain
run of the model on torch's symbolic shapes (its shape rules and its per-op reuse skip
most of torch's fake dispatch), and torch's symbolic shapes alone cost 2.6-7.3x torch's
concrete fake run. The transformer target (1.5x the concrete floor) asks a symbolic trace
with its size-1 checks (GPT-2 and Llama: three recordings, ViT two) to cost what one
concrete recording costs: what is left is torch's symbolic dispatch and the checks'
recordings, not symflops' own work. swin_t has no such baseline: torch alone does not run
it on symbolic shapes (``F.pad`` by a size computed from H: "SymIntArrayRef expected to
contain only concrete integers"); symflops' shape rules do.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import symflops as sf


def _gpt2() -> tuple[torch.nn.Module, Any, Any, Any]:
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        m = GPT2LMHeadModel(GPT2Config(n_layer=12)).eval()
    return m, {"input_ids": ("B", "N")}, {"input_ids": (1, 128)}, \
        {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


def _llama() -> tuple[torch.nn.Module, Any, Any, Any]:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=4, vocab_size=32000)
    with torch.device("meta"):
        m = LlamaForCausalLM(cfg).eval()
    return m, {"input_ids": ("B", "N")}, {"input_ids": (1, 128)}, \
        {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


def _tv(name: str, side: int = 224) -> Callable[[], tuple[torch.nn.Module, Any, Any, Any]]:
    def build() -> tuple[torch.nn.Module, Any, Any, Any]:
        import torchvision

        with torch.device("meta"):
            m = getattr(torchvision.models, name)().eval()
        return m, "B 3 H W", (1, 3, side, side), \
            {"x": torch.zeros(1, 3, side, side, device="meta")}
    return build


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, Any, Any, Any]]] = {
    "gpt2": _gpt2, "llama": _llama, "vit_b_16": _tv("vit_b_16"), "resnet50": _tv("resnet50"),
    "googlenet": _tv("googlenet"), "densenet121": _tv("densenet121"),
    "mobilenet_v2": _tv("mobilenet_v2"), "inception_v3": _tv("inception_v3", 299),
}


def median_time(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        gc.collect()
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def trace(model: torch.nn.Module, spec: Any) -> sf.Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sf.trace(model, spec, convention="torch", warn=False)


def fcm_meta(model: torch.nn.Module, kwargs: dict[str, Any]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(**kwargs)
    return int(fc.get_total_flops())


def measure(name: str, reps: int) -> tuple[float, float, float]:
    """(symbolic s, floor s, FlopCounterMode on meta s), medians of ``reps``."""
    model, spec, concrete, example = MODELS[name]()
    trace(model, spec)  # warm imports and caches
    trace(model, concrete)
    fcm_meta(model, example)
    t_sym = median_time(lambda: trace(model, spec), reps)
    t_floor = median_time(lambda: trace(model, concrete), reps)
    t_fcm = median_time(lambda: fcm_meta(model, example), reps)
    return t_sym, t_floor, t_fcm


def torch_alone(model: torch.nn.Module, spec: Any, example: dict[str, Any],
                symbolic: bool) -> None:
    """The model's forward under torch's fake tensors and nothing else: no recording, no
    assembly, no settle. ``symbolic``: on symflops' own ShapeEnv and FakeTensorMode
    (``_torch_compat.SymEnv``, its patches included) with one symbol per named dim, at the
    sizes a trace takes as its examples (the example's, a batch of 2: torch fixes sizes of
    1); else on a plain FakeTensorMode at the example's concrete sizes. What any tracer
    built on torch's symbolic shapes pays before it counts anything."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from symflops.tracing import _torch_compat as C

    if not symbolic:
        mode = FakeTensorMode(allow_non_fake_inputs=True)
        with mode, torch.no_grad():
            model(**{k: mode.from_tensor(v) for k, v in example.items()})
        return
    with C.SymEnv() as env:
        inputs = {}
        for key, x in example.items():
            names = spec[key] if isinstance(spec, dict) else spec.split()
            shape = [int(n) if str(n).isdigit() else
                     env.symint(n, 2 if i == 0 else int(x.shape[i]))
                     for i, n in enumerate(names)]
            with env.mode:
                inputs[key] = torch.empty(shape, dtype=x.dtype, device="meta")
        with env.mode, torch.no_grad():
            model(**inputs)


def measure_torch_alone(name: str, reps: int) -> tuple[float, float, float]:
    """(torch alone symbolic s, torch alone concrete s, symflops symbolic trace s)."""
    model, spec, _, example = MODELS[name]()
    for symbolic in (True, False):
        torch_alone(model, spec, example, symbolic)  # warm
    trace(model, spec)
    t_sym = median_time(lambda: torch_alone(model, spec, example, True), reps)
    t_con = median_time(lambda: torch_alone(model, spec, example, False), reps)
    t_trace = median_time(lambda: trace(model, spec), reps)
    return t_sym, t_con, t_trace


def first_in_new_process(name: str, what: str) -> float:
    """CPU seconds of the first symbolic trace (``what == "symbolic"``) or the first
    FlopCounterMode count on meta (``"fcm"``) of model ``name`` in a new process, the model
    built and torch, torchvision and symflops imported before the clock starts. Bytecode
    caching is left on (``PYTHONDONTWRITEBYTECODE`` dropped), as on a user's machine."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run([sys.executable, __file__, "--one-first", name, what], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise (ImportError if "ModuleNotFoundError" in last else RuntimeError)(last)
    return float(out.stdout.strip().splitlines()[-1])


def _one_first(name: str, what: str) -> None:
    torch.set_num_threads(1)
    model, spec, _, example = MODELS[name]()
    import symflops.tracing  # noqa: F401  (imported before the clock, as torch is)

    t = time.process_time()
    if what == "symbolic":
        trace(model, spec)
    else:
        fcm_meta(model, example)
    print(time.process_time() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=list(MODELS),
                    choices=sorted(MODELS))
    ap.add_argument("--first", action="store_true",
                    help="time the first trace in a new process (medians of --reps "
                         "processes) against FlopCounterMode's first count on meta")
    ap.add_argument("--torch-alone", action="store_true",
                    help="time torch's own forward on fake tensors, symbolic and concrete "
                         "(nothing recorded), against symflops' whole symbolic trace")
    ap.add_argument("--one-first", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one_first:
        _one_first(*a.one_first)
        return
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, symflops {sf.__version__}, median of {a.reps}")
    for name in a.models:
        try:
            if a.first:
                first_in_new_process(name, "symbolic")  # writes the bytecode caches
                s = statistics.median(first_in_new_process(name, "symbolic")
                                      for _ in range(a.reps))
                m = statistics.median(first_in_new_process(name, "fcm") for _ in range(a.reps))
                print(f"{name:13s} first trace {s:6.3f} s | FlopCounterMode's first count on "
                      f"meta {m:6.3f} s -> {s / m:4.2f}x", flush=True)
                continue
            if a.torch_alone:
                ts, tc, t = measure_torch_alone(name, a.reps)
                print(f"{name:13s} torch alone: symbolic {ts:6.3f} s | concrete {tc:6.3f} s "
                      f"-> {ts / tc:4.2f}x | symflops' whole symbolic trace {t:6.3f} s -> "
                      f"{t / ts:4.2f}x torch's symbolic run", flush=True)
                continue
            s, f, m = measure(name, a.reps)
        except ImportError as e:
            print(f"{name}: skipped ({e})")
            continue
        print(f"{name:13s} symbolic {s:6.3f} s | floor {f:6.3f} s -> {s / f:4.2f}x "
              f"| FlopCounterMode meta {m:6.3f} s -> {s / m:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
