"""Framework-free checks of the spec, the initialiser and the layout conversions."""

import math

import numpy as np
import pytest

from twinbench.models import layout
from twinbench.models.cnn.spec import CNNSpec
from twinbench.models.init import fans
from twinbench.models.resnet.spec import ResNetSpec


def test_cnn_parameter_count_and_shapes_are_computed_from_the_spec():
    spec = CNNSpec()
    assert spec.feature_hwc() == (5, 5, 64)
    assert spec.param_count() == 34_826  # 320 + 18,496 + 16,010
    assert spec.param_shapes()["dense/kernel"][0] == (1600, 10)
    assert CNNSpec(input_hwc=(32, 32, 3)).feature_hwc() == (6, 6, 64)


def test_initial_weights_are_seeded_glorot_and_zero_bias():
    spec = CNNSpec()
    w, again = spec.init_weights(seed=0), spec.init_weights(seed=0)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    assert not np.array_equal(w["conv1/kernel"], spec.init_weights(seed=1)["conv1/kernel"])
    assert fans((3, 3, 32, 64)) == (288, 576)
    limit = math.sqrt(6 / (288 + 576))
    k = w["conv2/kernel"]
    assert k.dtype == np.float32 and np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    assert not w["conv2/bias"].any()


def test_layout_round_trips_are_bit_exact():
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    assert np.array_equal(layout.conv2d_from_torch(layout.conv2d_to_torch(conv)), conv)
    dense = rng.standard_normal((2 * 3 * 4, 7)).astype(np.float32)
    back = layout.dense_after_flatten_from_torch(
        layout.dense_after_flatten_to_torch(dense, (2, 3, 4)), (2, 3, 4))
    assert np.array_equal(back, dense)


def test_flatten_order_trap_nhwc_vs_nchw():
    """Keras flattens (h, w, c), torch (c, h, w): the permuted kernel gives equal outputs,
    the plain transpose (the classic bug) does not."""
    rng = np.random.default_rng(1)
    feat = rng.standard_normal((2, 5, 5, 3))  # (B, H, W, C)
    kernel = rng.standard_normal((75, 4))
    keras_out = feat.reshape(2, -1) @ kernel
    torch_flat = feat.transpose(0, 3, 1, 2).reshape(2, -1)  # (B, C*H*W)
    good = torch_flat @ layout.dense_after_flatten_to_torch(kernel, (5, 5, 3)).T
    naive = torch_flat @ layout.dense_to_torch(kernel).T
    assert np.allclose(good, keras_out)
    assert not np.allclose(naive, keras_out)


def test_resnet20_has_the_papers_parameter_count_and_structure():
    """He et al. 2016, Table 6: ResNet-20 has 0.27M parameters (option A shortcuts add
    none). BatchNorm's moving statistics are state, not counted."""
    spec = ResNetSpec()
    assert spec.param_count() == 269_722
    assert len(spec.blocks()) == 9
    assert [(c_in, c_out, s) for _, c_in, c_out, s in spec.blocks()][2:5] == [
        (16, 16, 1), (16, 32, 2), (32, 32, 1)]
    shapes = spec.param_shapes()
    assert shapes["stage2_block1/conv1/kernel"] == ((3, 3, 16, 32), "he_normal")
    assert shapes["stage3_block3/bn2/moving_variance"] == ((64,), "ones")
    assert ResNetSpec(depth=56).param_count() > 850_000  # the paper's 0.85M
    with pytest.raises(ValueError, match="not 6n \\+ 2"):
        ResNetSpec(depth=21)


def test_he_normal_is_truncated_at_two_sigma_with_variance_two_over_fan_in():
    w = ResNetSpec().init_weights(seed=0)["stage3_block1/conv2/kernel"]  # fan_in 576
    std = math.sqrt(2 / 576)
    assert abs(w.std() / std - 1) < 0.02
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978
