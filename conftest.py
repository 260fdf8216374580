"""Collection for ``--doctest-modules`` (configured in pyproject.toml): without torch, the
tracing package (the only code that imports torch) and the docstring examples that trace
are not collected; CI and the README install torch, so there everything runs."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator

import pytest

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["symflops/tracing/*", "symflops/tracing/handlers/*"]


# the conventions module itself: the package exports a function under the same name
_conventions = importlib.import_module("symflops.conventions")


@pytest.fixture(autouse=True)
def _builtin_conventions() -> Iterator[None]:
    """Every test starts from the built-in conventions, whatever an earlier test (or a
    README example run as a doctest) registered."""
    saved = dict(_conventions._REGISTRY)
    yield
    _conventions._REGISTRY.clear()
    _conventions._REGISTRY.update(saved)

#: tests the fast lane (``pytest -m "not slow"``) leaves out besides those marked in their
#: files: each took over 0.6 s in a timed run of the lane (``--durations``), and its
#: feature keeps a faster test in the lane. The full suite (CI) runs them all.
SLOW_TESTS = frozenset({
    "docs/serving.md::serving.md",
    "tests/test_analysis.py::test_plot_writes_png_with_slopes",
    "tests/test_backward_rates.py::test_avg_pool_grad_symbolic_trace_is_exact[k3-s2-p1-ceil]",
    "tests/test_backward_rates.py::test_avg_pool_grad_symbolic_trace_is_exact[k3-s2-p1]",
    "tests/test_bad_input_api.py::test_aligned_advice_and_alignment_agree",
    "tests/test_bytes.py::test_traced_bytes_equal_a_dispatch_count_of_real_tensors[gpt2-eager]",
    "tests/test_cost.py::test_simplify_expr_shares_a_shape_across_coefficients",
    "tests/test_domain.py::test_a_pinned_dim_of_a_trace_is_in_its_domain",
    "tests/test_domain.py::test_a_presented_formula_equals_the_exact_one_on_its_domain",
    "tests/test_domain.py::test_compare_refuses_a_table_size_outside_a_domain",
    "tests/test_domain.py::test_the_ceiling_form_of_a_strided_size_equals_the_exact_floor",
    "tests/test_evaluate_props.py::test_assignments_and_ranges_answer_at_once",
    "tests/test_evaluate_props.py::test_evaluate_is_exact_or_an_error[ConvTranspose3d]",
    "tests/test_evaluate_props.py::test_evaluate_is_exact_or_an_error[Hardswish]",
    "tests/test_evaluate_props.py::test_random_integer_expressions_are_exact_or_an_error",
    "tests/test_fold.py::test_fold_is_symbolic_and_equals_a_literal_count[5-2-3]",
    "tests/test_linear_rnn.py::test_rg_lru_scan_symbolic_equal_to_the_loop_and_to_flop_counter",
    "tests/test_linear_rnn.py::test_symbolic_equal_to_the_loop_and_to_flop_counter",
    "tests/test_memory.py::test_frozen_layers_save_what_torch_saves",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[conv-net]",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[grouped-query-block]",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[pool-net]",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[token-net]",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[transformer-block-dropout]",
    "tests/test_memory.py::test_sfnn_activation_memory_equals_the_saved_tensors_torch_keeps[transformer-block]",
    "tests/test_memory.py::test_the_saved_tensor_hooks_are_gone_after_a_trace_even_a_failed_one",
    "tests/test_model_safety.py::test_a_forward_that_raises_halfway_leaves_the_model_as_it_was[fake-eval]",
    "tests/test_model_safety.py::test_a_forward_that_raises_halfway_leaves_the_model_as_it_was[fake-train]",
    "tests/test_model_safety.py::test_fit_and_the_fit_fallback_leave_the_model_as_it_was[eval]",
    "tests/test_model_safety.py::test_fit_and_the_fit_fallback_leave_the_model_as_it_was[train]",
    "tests/test_model_safety.py::test_nested_containers_globals_and_torch_defaults_are_put_back[eval-fit-raises]",
    "tests/test_model_safety.py::test_nested_containers_globals_and_torch_defaults_are_put_back[eval-fit-succeeds]",
    "tests/test_model_safety.py::test_nested_containers_globals_and_torch_defaults_are_put_back[train-fake-raises]",
    "tests/test_model_safety.py::test_nested_containers_globals_and_torch_defaults_are_put_back[train-fit-raises]",
    "tests/test_model_safety.py::test_nested_containers_globals_and_torch_defaults_are_put_back[train-fit-succeeds]",
    "tests/test_model_safety.py::test_trace_leaves_the_model_exactly_as_it_was[weight_and_spectral_norm_batchnorm-train-fake]",
    "tests/test_parse.py::test_fuzz_any_text_never_crashes",
    "tests/test_plots.py::test_cli_plot_has_short_names_and_fixed_values[scale]",
    "tests/test_presets_lm.py::test_llama_equals_trace[d64-gqa-L2]",
    "tests/test_presets_lm.py::test_llama_equals_trace[d96-mha-L1]",
    "tests/test_presets_vision.py::test_cnn_preset_equals_symbolic_trace[resnet50]",
    "tests/test_presets_vision.py::test_preset_equals_trace_of_mirror[swin-12x20]",
    "tests/test_properties.py::test_adaptive_pool_subs_equals_int_formula",
    "tests/test_properties.py::test_conv_subs_equals_int_formula",
    "tests/test_properties.py::test_conv_transpose_subs_equals_int_formula",
    "tests/test_properties.py::test_evaluate_equals_subs_pointwise",
    "tests/test_properties.py::test_every_registered_layer_concrete_equals_symbolic[Conv2d]",
    "tests/test_properties.py::test_every_registered_layer_concrete_equals_symbolic[Conv3d]",
    "tests/test_properties.py::test_every_registered_layer_concrete_equals_symbolic[ConvTranspose3d]",
    "tests/test_properties.py::test_pool_subs_equals_int_formula",
    "tests/test_properties.py::test_simplify_keeps_floors_exact",
    "tests/test_render.py::test_output_identical_across_processes_and_hash_seeds",
    "tests/test_render_cnn.py::test_resnet50_appendix_and_report_fit[report]",
    "tests/test_render_cnn.py::test_small_cnn_golden[report-latex]",
    "tests/test_render_paper.py::test_vit_b16_paper_table_fits_a_column",
    "tests/test_render_reference.py::test_every_layer_renders_in_every_format_and_compiles",
    "tests/test_report.py::test_browser_cli_report_with_vary_and_train",
    "tests/test_report.py::test_browser_sliders_recompute_exactly_offline",
    "tests/test_report.py::test_compiled_totals_equal_cost_subs_with_floors",
    "tests/test_report.py::test_scale_largest_parts_reach_attention_and_mlp",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-border-False]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-border-True]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-reflection-False]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-reflection-True]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-zeros-False]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bicubic-zeros-True]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bilinear-reflection-False]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bilinear-reflection-True]",
    "tests/test_sampling.py::test_bruteforce_values_and_count[2-bilinear-zeros-False]",
    "tests/test_serving_mla.py::test_transformers_deepseek_v2_traces_symbolic_and_equals_the_preset",
    "tests/test_ssm.py::test_jamba_shares_mambas_scan_and_traces_symbolic",
    "tests/test_ssm.py::test_mamba2_is_symbolic_in_the_length_at_every_size",
    "tests/test_ssm.py::test_model_untouched_and_fallbacks",
    "tests/test_tf_same.py::test_equals_flop_counter_mode_anywhere",
    "tests/test_trace.py::test_a_model_that_needs_other_hints_says_so",
    "tests/test_trace.py::test_divisibility_conditions_are_kept_as_validity_not_pins",
    "tests/test_trace.py::test_substituting_a_dim_the_model_fixed_to_another_value_raises[H=2N]",
    "tests/test_trace.py::test_substituting_a_dim_the_model_fixed_to_another_value_raises[H=64]",
    "tests/test_trace.py::test_substituting_a_dim_the_model_fixed_to_another_value_raises[H=W=64]",
    "tests/test_trace.py::test_substituting_a_dim_the_model_fixed_to_another_value_raises[W=16]",
    "tests/test_trace_decode.py::test_latent_cache_of_deepseek_v2_equals_the_preset",
    "tests/test_trace_decode.py::test_llama_3_8b_shape_on_meta",
    "tests/test_trace_decode.py::test_llama_decode_equals_preset[eager-MQA]",
    "tests/test_trace_domain.py::test_a_fit_states_its_lattice_and_range_and_refuses_past_them",
    "tests/test_trace_domain.py::test_a_guard_that_changes_the_cost_becomes_a_condition",
    "tests/test_trace_domain.py::test_a_path_taken_only_at_the_trained_size_does_not_pin_it",
    "tests/test_trace_domain.py::test_a_pinned_batch_is_visible_and_a_fit_varies_it",
    "tests/test_trace_domain.py::test_a_reshape_that_names_the_batch_pins_the_sizes_not_the_batch",
    "tests/test_trace_domain.py::test_positions_past_the_table_are_outside_the_domain",
    "tests/test_trace_domain.py::test_traced_pool_equals_sfnn_piecewise",
    "tests/test_trace_moe.py::test_mixtral_8x7b_params_total_and_active",
    "tests/test_trace_props.py::test_conv_nets_match_flop_counter",
    "tests/test_trace_props.py::test_multihead_attention_matches_flop_counter",
    "tests/test_trace_windows.py::test_symbolic_pad_amounts[pad1]",
    "tests/test_train.py::test_sfnn_train_equals_the_tracer_kind_by_kind[conv-net]",
    "tests/test_train.py::test_sfnn_train_equals_the_tracer_kind_by_kind[token-net]",
    "tests/test_train_layers.py::test_cross_attention_trains_as_the_tracer_counts[gqa-dropout]",
    "tests/test_train_layers.py::test_latent_attention_trains_as_autograd_runs_it[q-proj-wide-v]",
    "tests/test_train_presets.py::test_gpt_train_equals_trace[d64-L2]",
    "tests/test_train_presets.py::test_llama_train_equals_trace[d64-gqa-L2]",
    "tests/test_train_presets.py::test_llama_train_equals_trace[d96-mha-L1]",
    "tests/test_train_rules.py::test_train_equals_the_tracer[pixel-unshuffle]",
    "tests/test_transformers_zoo.py::test_symbolic_fully_counted_and_equal_to_flop_counter[deepseek_v2]",
    "tests/test_transformers_zoo.py::test_symbolic_fully_counted_and_equal_to_flop_counter[gemma2]",
    "tests/test_transformers_zoo.py::test_symbolic_fully_counted_and_equal_to_flop_counter[mpt]",
    "tests/test_transformers_zoo.py::test_symbolic_fully_counted_and_equal_to_flop_counter[phi3]",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark :data:`SLOW_TESTS` slow; when the whole suite is collected, a listed test that
    no longer exists is an error (a renamed test must not leave the lane silently)."""
    seen = set()
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
            seen.add(item.nodeid)
    if len(items) > 2000 and not config.getoption("keyword") and SLOW_TESTS - seen:
        raise pytest.UsageError("conftest.SLOW_TESTS names tests that do not exist: " +
                                ", ".join(sorted(SLOW_TESTS - seen)))
