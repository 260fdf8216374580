"""Data movement, views, allocation and selection: no arithmetic under any convention."""

from __future__ import annotations

from symflops.tracing.handlers._common import aten
from symflops.tracing.registry import register_zero_cost

__all__: list[str] = []


# Data movement, views, allocation and selection: no arithmetic under any convention.
# (sort/topk compare elements, so they are not here: they are reported until counted.)
_ZERO = [
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t",
    "expand", "expand_as", "squeeze", "unsqueeze", "cat", "stack", "split", "split_with_sizes",
    "chunk", "slice", "select", "clone", "contiguous", "detach", "alias", "as_strided",
    "as_strided_",
    "copy", "copy_", "_to_copy", "to", "lift_fresh", "lift_fresh_copy", "empty", "empty_like",
    "empty_strided", "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full",
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "fill", "fill_", "zero_",
    "arange", "scalar_tensor", "index", "index_select", "gather", "masked_fill",
    "masked_fill_", "where", "tril", "triu", "tril_", "triu_", "constant_pad_nd", "flip",
    "roll", "repeat", "unbind", "narrow", "unfold", "im2col", "_local_scalar_dense",
    "slice_scatter", "select_scatter", "index_put", "index_put_", "scatter", "scatter_",
    "embedding_dense_backward_unused", "diagonal", "view_as_real", "view_as_complex",
    "unsafe_split", "unsafe_chunk", "bernoulli", "bernoulli_", "rand", "randn", "rand_like",
    "randn_like", "uniform_", "normal_", "linspace", "_unsafe_index", "pad", "reflection_pad1d",
    "reflection_pad2d", "replication_pad1d", "replication_pad2d",
    "set_", "resize_", "_assert_async",
    "_assert_scalar", "sym_constrain_range_for_size", "_functional_sym_constrain_range",
    "detach_", "t_", "transpose_", "squeeze_", "unsqueeze_", "_has_compatible_shallow_copy_type",
    "item", "_conj", "conj", "resolve_conj", "resolve_neg", "is_same_size", "masked_select",
    "nonzero", "one_hot", "_to_dense", "movedim", "swapaxes",
    "flatten", "unflatten", "_unsafe_index_put", "index_copy", "index_fill", "type_as",
    "_foreach_copy_", "alias_copy", "view_copy", "permute_copy", "split_copy",
    "select_backward", "slice_backward", "index_select_backward", "diagonal_backward",
    "unfold_backward", "as_strided_scatter",
]
register_zero_cost(*{getattr(aten, n) for n in _ZERO if hasattr(aten, n)})
