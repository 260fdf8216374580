"""Pure formula functions: shapes in, work (a dict of kind -> count) out; and per layer
family ONE ``<family>_derivation`` function returning the :class:`Derivation` (general
work per kind and params in canonical symbols, bindings, explanation, rates) that both
``sf.nn`` layers and the tracer's op handlers call.

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
from symflops.formulas.attention import (
    attention_backward_derivations,
    attention_derivations,
    attention_mask_derivation,
    attention_parts,
    attention_projection_derivation,
    attention_work,
)
from symflops.formulas.backward import (
    DROPOUT_GRAD_RATE,
    DROPOUT_RATE,
    attention_core_backward_derivations,
    dropout_derivation,
    dropout_grad_derivation,
    grad_accumulation_derivation,
    linear_backward_derivations,
    matmul_backward_derivations,
)
from symflops.formulas.conv import (
    conv_backward_derivations,
    conv_derivation,
    conv_output_size,
    conv_params,
    conv_transpose_covered,
    conv_transpose_derivation,
    conv_transpose_output_size,
    conv_transpose_work,
    conv_work,
)
from symflops.formulas.derivation import Derivation
from symflops.formulas.embedding import (
    embedding_backward_derivation,
    embedding_backward_work,
    embedding_derivation,
)
from symflops.formulas.linear import (
    linear_derivation,
    linear_params,
    linear_work,
    matmul_derivation,
    matmul_work,
)
from symflops.formulas.moe import (
    grouped_k_derivation,
    grouped_matmul_derivation,
    moe_combine_derivation,
    moe_combine_work,
    renormalize_derivation,
    topk_derivation,
    topk_work,
)
from symflops.formulas.norm import (
    batch_norm_derivation,
    batch_norm_work,
    group_norm_derivation,
    group_norm_work,
    layer_norm_derivation,
    layer_norm_grad_derivations,
    layer_norm_work,
    norm_params,
    rms_norm_derivation,
    rms_norm_work,
    row_stats,
)
from symflops.formulas.norm_grad import (
    batch_norm_grad_derivations,
    group_norm_grad_derivations,
    rms_norm_grad_derivations,
    running_stats_derivation,
)
from symflops.formulas.pointwise import (
    ACTIVATION_GRAD_RATES,
    ACTIVATION_RATES,
    GLU_RATE,
    activation_derivation,
    activation_grad_derivation,
    activation_work,
    elementwise_derivation,
    elementwise_work,
    glu_derivation,
    glu_work,
    log_softmax_derivation,
    log_softmax_work,
    softmax_derivation,
    softmax_grad_derivation,
    softmax_work,
)
from symflops.formulas.pool import (
    adaptive_avg_pool_grad_derivation,
    adaptive_avg_pool_work,
    adaptive_max_pool_work,
    adaptive_pool_derivation,
    adaptive_window_total,
    avg_pool_grad_derivation,
    avg_pool_grad_window_total,
    avg_pool_work,
    max_pool_work,
    pool_derivation,
    pool_output_size,
    pool_window_total,
    scatter_grad_derivation,
)
from symflops.formulas.recurrent import (
    RECURRENT_GATES,
    recurrent_derivation,
    recurrent_params,
    recurrent_step_work,
)
from symflops.formulas.resize import (
    INTERPOLATE_DIMS,
    INTERPOLATE_RATES,
    interpolate_derivation,
    interpolate_grad_derivation,
    interpolate_work,
    pixel_shuffle_derivation,
    pixel_shuffle_shape,
    reduction_derivation,
    reduction_work,
    upsample_output_size,
)
from symflops.formulas.rotary import (
    ROTARY_RATE,
    ROTARY_TABLE_RATE,
    rotary_derivation,
    rotary_table_derivation,
    rotary_table_work,
    rotary_work,
)
from symflops.formulas.tokens import (
    class_token_derivation,
    position_embedding_derivation,
    position_embedding_work,
)
from symflops.formulas.window import (
    patch_merging_size,
    relative_bias_params,
    window,
    window_attention_derivations,
    window_attention_parts,
    window_padded,
)

__all__ = [
    "Size", "Work", "add_work", "ceildiv", "exact_div", "floordiv", "prod", "scale_work", "smin",
    "work", "attention_parts", "attention_work", "conv_output_size", "conv_params",
    "conv_transpose_covered", "conv_transpose_output_size", "conv_transpose_work", "conv_work",
    "linear_params", "linear_work", "matmul_work", "batch_norm_work", "group_norm_work",
    "layer_norm_work", "norm_params", "rms_norm_work", "row_stats", "ACTIVATION_RATES",
    "activation_work", "elementwise_work", "log_softmax_work", "softmax_work",
    "adaptive_avg_pool_work", "adaptive_max_pool_work", "adaptive_window_total", "avg_pool_work",
    "max_pool_work", "pool_output_size", "pool_window_total", "Derivation",
    "attention_backward_derivations", "attention_derivations", "attention_mask_derivation",
    "attention_projection_derivation", "conv_backward_derivations", "conv_derivation",
    "conv_transpose_derivation", "embedding_backward_derivation", "embedding_backward_work",
    "embedding_derivation", "linear_derivation", "matmul_derivation", "batch_norm_derivation",
    "group_norm_derivation", "layer_norm_derivation", "rms_norm_derivation",
    "activation_derivation", "elementwise_derivation", "log_softmax_derivation",
    "softmax_derivation", "adaptive_pool_derivation", "pool_derivation", "INTERPOLATE_RATES",
    "interpolate_derivation", "interpolate_work", "reduction_derivation", "reduction_work",
    "GLU_RATE", "glu_derivation", "glu_work", "pixel_shuffle_derivation", "pixel_shuffle_shape",
    "ACTIVATION_GRAD_RATES", "activation_grad_derivation", "softmax_grad_derivation",
    "adaptive_avg_pool_grad_derivation", "avg_pool_grad_derivation", "scatter_grad_derivation",
    "interpolate_grad_derivation", "layer_norm_grad_derivations", "INTERPOLATE_DIMS",
    "upsample_output_size", "batch_norm_grad_derivations", "group_norm_grad_derivations",
    "rms_norm_grad_derivations", "avg_pool_grad_window_total", "running_stats_derivation",
    "class_token_derivation", "position_embedding_derivation", "position_embedding_work",
    "patch_merging_size", "relative_bias_params", "window", "window_attention_derivations",
    "window_attention_parts", "window_padded",
    "RECURRENT_GATES", "recurrent_derivation", "recurrent_params", "recurrent_step_work",
    "ROTARY_RATE", "ROTARY_TABLE_RATE", "rotary_derivation", "rotary_table_derivation",
    "rotary_table_work", "rotary_work",
    "DROPOUT_RATE", "DROPOUT_GRAD_RATE", "attention_core_backward_derivations",
    "dropout_derivation", "dropout_grad_derivation", "grad_accumulation_derivation",
    "linear_backward_derivations", "matmul_backward_derivations",
    "grouped_k_derivation", "grouped_matmul_derivation",
    "moe_combine_derivation", "moe_combine_work", "renormalize_derivation", "topk_derivation",
    "topk_work",
]
