"""Every layer type's converter, against real Keras layers on each backend, and the trap
each one hides (the "naive_*" form must differ, or the test proves nothing). The checks run
in one child per backend (conftest's `layer_results`, shared with test_recipe_traps)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

EQUAL = {  # check -> max abs diff allowed (float32)
    "conv1d": 1e-5, "conv1d_roundtrip": 0.0, "conv2d_same_stride2": 1e-5, "embedding": 0.0,
    "lstm": 1e-5, "lstm_trainable_params_diff": 0.0, "lstm_roundtrip": 0.0,
    "gru_reset_after": 1e-5, "batchnorm_train": 1e-5, "batchnorm_moving_mean": 1e-6,
    "batchnorm_moving_var": 1e-5, "batchnorm_infer": 1e-5, "layernorm": 1e-5, "mha": 1e-5,
    "mha_roundtrip": 0.0, "dropout_keras_values_off": 0.0, "dropout_torch_values_off": 0.0,
    "dropout_mean_gap": 0.15,
}
DIFFERENT = ("naive_conv2d_same_stride2", "naive_gru_reset_before", "naive_batchnorm_moving_mean",
             "naive_batchnorm_infer", "naive_layernorm_default_eps")


def test_converted_layers_compute_the_same_function(layer_results):
    bad = {k: (layer_results[k], tol) for k, tol in EQUAL.items() if layer_results[k] > tol}
    assert not bad


def test_each_trap_changes_the_result_when_ignored(layer_results):
    """Padding "same" stride 2, GRU reset_after, BatchNorm momentum/epsilon/variance and
    LayerNorm epsilon: the naive port really differs (by far more than rounding)."""
    for k in DIFFERENT:
        assert layer_results[k] > 1e-3, k
