"""Layer-level twins and recipe traps (recipe_twins.py), run in one subprocess per Keras
backend for test_layers.py and test_recipe_traps.py (Keras on the backend given
in KERAS_BACKEND, PyTorch beside it). Prints {check: max abs diff} as JSON.

Each check builds a Keras layer, converts its weights to torch with
`twinbench.models.layout`, feeds both the same input and compares. "naive_*" checks show
the trap itself: what you get without the fix (they must *differ*).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from twinbench.models import layout
from twinbench.models.init import init_weights
from twinbench.models.torch_layers import KerasBatchNorm, freeze_second_bias, pad_same

RNG = np.random.default_rng(0)
T = torch.from_numpy


def diff(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else keras.ops.convert_to_numpy(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else keras.ops.convert_to_numpy(b)
    return float(np.max(np.abs(a - b)))


def x_of(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv1d() -> dict[str, float]:
    x = x_of(2, 12, 4)  # (B, L, C)
    k = keras.layers.Conv1D(5, 3)
    y = k(x)
    t = nn.Conv1d(4, 5, 3)
    kernel, bias = k.get_weights()
    t.load_state_dict({"weight": T(layout.conv1d_to_torch(kernel)), "bias": T(bias)})
    back = layout.conv1d_from_torch(layout.conv1d_to_torch(kernel))
    return {"conv1d": diff(y, t(T(x.transpose(0, 2, 1))).permute(0, 2, 1)),
            "conv1d_roundtrip": float(np.abs(back - kernel).max())}


def conv2d_same_stride2() -> dict[str, float]:
    x = x_of(2, 8, 8, 3)  # even size: Keras pads (0, 1)
    k = keras.layers.Conv2D(4, 3, strides=2, padding="same")
    y = k(x)
    kernel, bias = k.get_weights()
    w, b = T(layout.conv2d_to_torch(kernel)), T(bias)
    xt = T(x.transpose(0, 3, 1, 2))
    ours = F.conv2d(pad_same(xt, 3, 2), w, b, stride=2).permute(0, 2, 3, 1)
    naive = F.conv2d(xt, w, b, stride=2, padding=1).permute(0, 2, 3, 1)
    return {"conv2d_same_stride2": diff(y, ours), "naive_conv2d_same_stride2": diff(y, naive)}


def embedding() -> dict[str, float]:
    ids = RNG.integers(0, 20, (2, 7))
    k = keras.layers.Embedding(20, 6)
    y = k(ids)
    t = nn.Embedding(20, 6)
    t.load_state_dict({"weight": T(k.get_weights()[0])})
    return {"embedding": diff(y, t(T(ids)))}


def lstm() -> dict[str, float]:
    x = x_of(3, 9, 5)
    w = init_weights({"kernel": ((5, 32), "glorot_uniform"),
                      "recurrent_kernel": ((8, 32), "orthogonal"),
                      "bias": ((32,), "lstm_bias")}, seed=1)
    k = keras.layers.LSTM(8)
    k.build(x.shape)
    k.set_weights([w["kernel"], w["recurrent_kernel"], w["bias"]])
    t = nn.LSTM(5, 8, batch_first=True)
    freeze_second_bias(t)
    conv = layout.lstm_to_torch(w["kernel"], w["recurrent_kernel"], w["bias"])
    t.load_state_dict({f"{n}_l0": T(v) for n, v in conv.items()})
    trainable = sum(p.numel() for p in t.parameters() if p.requires_grad)
    _, (h, _) = t(T(x))
    back = layout.lstm_from_torch(conv)
    return {"lstm": diff(k(x), h[0]),
            "lstm_trainable_params_diff": float(abs(trainable - k.count_params())),
            "lstm_roundtrip": float(max(
                np.abs(a - b).max()
                for a, b in zip(back, (w["kernel"], w["recurrent_kernel"], w["bias"]))))}


def gru() -> dict[str, float]:
    x = x_of(3, 9, 5)
    out = {}
    for reset_after in (True, False):
        k = keras.layers.GRU(8, reset_after=reset_after)
        k.build(x.shape)
        kernel, rec, bias = k.get_weights()
        bias = RNG.standard_normal((2, 24)).astype(np.float32) if reset_after else bias
        if reset_after:
            k.set_weights([kernel, rec, bias])
        else:  # torch has no reset_before form: feed the same weights, one bias
            bias = np.stack([bias, np.zeros_like(bias)])
        t = nn.GRU(5, 8, batch_first=True)
        conv = layout.gru_to_torch(kernel, rec, bias)
        t.load_state_dict({f"{n}_l0": T(v) for n, v in conv.items()})
        _, h = t(T(x))
        out["gru_reset_after" if reset_after else "naive_gru_reset_before"] = diff(k(x), h[0])
    return out


def batchnorm() -> dict[str, float]:
    x = x_of(16, 4, 4, 3) * 2 + 1
    k = keras.layers.BatchNormalization()  # momentum 0.99, epsilon 1e-3
    k.build(x.shape)
    ours = KerasBatchNorm(3, keras_momentum=0.99, epsilon=1e-3)
    naive = nn.BatchNorm2d(3, momentum=0.99)  # the copied-momentum bug, torch epsilon
    xt = T(x.transpose(0, 3, 1, 2))
    for _ in range(3):  # training steps update the moving statistics
        yk = k(x, training=True)
        yt, _ = ours(xt), naive(xt)
    mk, vk = (keras.ops.convert_to_numpy(v) for v in (k.moving_mean, k.moving_variance))
    ours.eval(), naive.eval()
    return {
        "batchnorm_train": diff(yk, yt.permute(0, 2, 3, 1)),
        "batchnorm_moving_mean": float(np.abs(mk - ours.running_mean.numpy()).max()),
        "batchnorm_moving_var": float(np.abs(vk - ours.running_var.numpy()).max()),
        "batchnorm_infer": diff(k(x, training=False), ours(xt).permute(0, 2, 3, 1)),
        "naive_batchnorm_moving_mean": float(np.abs(mk - naive.running_mean.numpy()).max()),
        "naive_batchnorm_infer": diff(k(x, training=False), naive(xt).permute(0, 2, 3, 1)),
    }


def layernorm() -> dict[str, float]:
    x = x_of(2, 5, 6) * 0.01  # small variance: epsilon matters
    k = keras.layers.LayerNormalization(epsilon=1e-5)
    return {"layernorm": diff(k(x), F.layer_norm(T(x), (6,), eps=1e-5)),
            "naive_layernorm_default_eps": diff(keras.layers.LayerNormalization()(x),
                                                F.layer_norm(T(x), (6,)))}


def mha() -> dict[str, float]:
    x = x_of(2, 7, 8)
    mask = np.ones((2, 7), dtype=bool)
    mask[1, 5:] = False  # padding at the end of the second sequence
    k = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    y = k(x, x, attention_mask=mask[:, None, :])
    names = [v.path.split("/", 1)[1] for v in k.weights]
    conv = layout.mha_to_torch(dict(zip(names, k.get_weights())))
    t = nn.MultiheadAttention(8, 2, batch_first=True)
    t.load_state_dict({n: T(v) for n, v in conv.items()})
    yt, _ = t(T(x), T(x), T(x), key_padding_mask=T(~mask))  # torch: True = ignore
    back = layout.mha_from_torch(conv, heads=2)
    return {"mha": diff(y, yt),
            "mha_roundtrip": float(max(np.abs(back[n] - w).max()
                                       for n, w in zip(names, k.get_weights())))}


def dropout() -> dict[str, float]:
    x = np.ones((4, 1000), dtype=np.float32)
    yk = keras.ops.convert_to_numpy(keras.layers.Dropout(0.5, seed=0)(x, training=True))
    yt = F.dropout(T(x), 0.5, training=True).numpy()
    # inverted dropout: survivors are scaled by 1 / (1 - p) = 2 in both
    return {"dropout_keras_values_off": float(np.setdiff1d(np.unique(yk), [0.0, 2.0]).size),
            "dropout_torch_values_off": float(np.setdiff1d(np.unique(yt), [0.0, 2.0]).size),
            "dropout_mean_gap": float(abs(yk.mean() - 1.0) + abs(yt.mean() - 1.0))}


if __name__ == "__main__":
    torch.manual_seed(0)
    results: dict[str, float] = {}
    from recipe_twins import CHECKS as RECIPE_CHECKS  # beside this file (sys.path[0])

    for check in (conv1d, conv2d_same_stride2, embedding, lstm, gru, batchnorm, layernorm,
                  mha, dropout, *RECIPE_CHECKS):
        results.update(check())
    print(json.dumps(results))
