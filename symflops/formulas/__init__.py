"""Pure formula functions: shapes in, work (a dict of kind -> count) out.

They use plain arithmetic, so the same function serves the symbolic layers in
:mod:`symflops.nn` (SymPy sizes) and the torch op handlers in
:mod:`symflops.tracing` (sizes from symbolic shapes), and brute-force checks (ints).

>>> from symflops.formulas import conv_work
>>> conv_work(1, 3, 64, (3, 3), (8, 8))["matmul_mul"]
110592
"""

from symflops.formulas._arith import (
    Size,
    Work,
    add_work,
    ceildiv,
    exact_div,
    floordiv,
    prod,
    scale_work,
    smin,
    work,
)
from symflops.formulas.attention import attention_parts, attention_work
from symflops.formulas.conv import (
    conv_output_size,
    conv_params,
    conv_transpose_covered,
    conv_transpose_output_size,
    conv_transpose_work,
    conv_work,
)
from symflops.formulas.linear import linear_params, linear_work, matmul_work
from symflops.formulas.norm import (
    batch_norm_work,
    group_norm_work,
    layer_norm_work,
    norm_params,
    rms_norm_work,
    row_stats,
)
from symflops.formulas.pointwise import (
    ACTIVATION_RATES,
    activation_work,
    elementwise_work,
    log_softmax_work,
    softmax_work,
)
from symflops.formulas.pool import (
    adaptive_avg_pool_work,
    adaptive_max_pool_work,
    adaptive_window_total,
    avg_pool_work,
    max_pool_work,
    pool_output_size,
    pool_window_total,
)

__all__ = [
    "Size", "Work", "add_work", "ceildiv", "exact_div", "floordiv", "prod", "scale_work", "smin",
    "work", "attention_parts", "attention_work", "conv_output_size", "conv_params",
    "conv_transpose_covered", "conv_transpose_output_size", "conv_transpose_work", "conv_work",
    "linear_params", "linear_work", "matmul_work", "batch_norm_work", "group_norm_work",
    "layer_norm_work", "norm_params", "rms_norm_work", "row_stats", "ACTIVATION_RATES",
    "activation_work", "elementwise_work", "log_softmax_work", "softmax_work",
    "adaptive_avg_pool_work", "adaptive_max_pool_work", "adaptive_window_total", "avg_pool_work",
    "max_pool_work", "pool_output_size", "pool_window_total",
]
