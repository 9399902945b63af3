"""Every layer the byo converters handle, against the real layer, on the Keras backend in
KERAS_BACKEND (run by test_byo_layers.py, one process per backend). Prints one JSON line:
{"keras:<case>": max abs diff, "torch:<case>": max abs diff, "refusal:<case>": message}.

keras:<case>: a small Keras model -> graph -> generated torch twin, canonical weights
loaded, the same input through both (inference, then one training-mode call for
BatchNorm's moving statistics). torch:<case>: a small nn.Module -> graph -> generated
Keras twin, the same.
"""

from __future__ import annotations

import json
import os
import sys

from twinbench.process.guard import install

if os.environ.get("KERAS_BACKEND") != "tensorflow":  # `import keras` would load it: 5 s
    install(("tensorflow",))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import layers  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from twinbench.byo import torch_state  # noqa: E402
from twinbench.byo.graph import Unsupported  # noqa: E402
from twinbench.byo.keras_reader import read_keras  # noqa: E402
from twinbench.byo.keras_writer import write as write_keras  # noqa: E402
from twinbench.byo.torch_reader import read_torch  # noqa: E402
from twinbench.byo.torch_writer import write as write_torch  # noqa: E402
from twinbench.byo.twins import (functional_dropout_off, no_keras_dropout,  # noqa: E402
                                 no_torch_dropout)

RNG = np.random.default_rng(0)


def img(h=8, w=8, c=3) -> np.ndarray:
    return RNG.standard_normal((3, h, w, c)).astype(np.float32)


def seq(length=7, c=4) -> np.ndarray:
    return RNG.standard_normal((3, length, c)).astype(np.float32)


def ids(length=9, vocab=20, holes=True) -> np.ndarray:
    x = RNG.integers(1, vocab, (3, length))
    if holes:  # padding at the end, at the start and in the middle
        x[0, 6:], x[1, :2], x[2, 4] = 0, 0, 0
    return x


def knp(t) -> np.ndarray:
    return keras.ops.convert_to_numpy(t)


def nhwc(y: np.ndarray) -> np.ndarray:
    """A torch twin's image output in Keras's layout (the twins keep images NCHW)."""
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def keras_case(model: keras.Model, x: np.ndarray, train: bool = False
               ) -> tuple[np.ndarray, float]:
    """Keras model -> torch twin: per output column, the max abs diff over the batch (in
    inference, and with `train` also in a training-mode call); and the max abs diff of
    the weights after that call (BatchNorm's moving statistics), else 0."""
    g = read_keras(model, "m")
    tw = write_torch(g)
    ns: dict = {}
    exec(compile(tw.source, "twin", "exec"), ns)
    t = ns["build"]()
    w = {v.path: knp(v.value) for v in model.weights}
    state = torch_state.to_torch(g, tw.prefixes, tw.hwc, w)
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    t.eval()
    cols = np.abs(knp(model(x, training=False)) - nhwc(t(xt).detach().numpy())).max(axis=0)
    moving = 0.0
    if train:  # dropout off: its masks are random in both frameworks
        no_keras_dropout(model)
        t = no_torch_dropout(t, False).train()
        cols = np.maximum(cols, np.abs(knp(model(x, training=True)) -
                                       nhwc(t(xt).detach().numpy())).max(axis=0))
        back = torch_state.from_torch(g, tw.prefixes, tw.hwc,
                                      {k: v.detach().numpy() for k, v in t.state_dict().items()})
        moving = max(float(np.abs(back[v.path] - knp(v.value)).max()) for v in model.weights)
    return cols, moving


def torch_case(module: nn.Module, x: np.ndarray, train: bool = False) -> float:
    """nn.Module -> Keras twin; max abs diff as keras_case."""
    torch.manual_seed(0)
    module.eval()
    xt = torch.from_numpy(x)
    g = read_torch(module, "m", xt)
    ns: dict = {}
    exec(compile(write_keras(g), "twin", "exec"), ns)
    k = ns["build"]()
    prefixes = {n.name: n.where["torch"] for n in g.nodes if n.weights}
    hwc = {n.name: tuple(n.attrs["rows_hwc"]) for n in g.nodes if "rows_hwc" in n.attrs}

    def load() -> dict:
        state = {n: v.detach().numpy() for n, v in module.state_dict().items()}
        return torch_state.from_torch(g, prefixes, hwc, state)

    canon = load()
    for n in g.nodes:
        for name, var in zip(n.weights, k.get_layer(n.name).weights if n.weights else []):
            var.assign(canon[name])
    xk = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    with torch.no_grad():
        diff = float(np.abs(knp(k(xk, training=False)) - nhwc(module(xt).numpy())).max())
        if train:  # dropout off: its masks are random in both frameworks
            no_keras_dropout(k)
            module = functional_dropout_off(no_torch_dropout(module, False)).train()
            diff = max(diff, float(np.abs(knp(k(xk, training=True)) -
                                          nhwc(module(xt).numpy())).max()))
            canon = load()
            diff = max(diff, max(float(np.abs(canon[name] - knp(var.value)).max())
                                 for n in g.nodes if n.weights
                                 for name, var in zip(n.weights, k.get_layer(n.name).weights)))
    return diff


def branches(shape, cases: dict, dtype: str = "float32", pre=None
             ) -> tuple[keras.Model, dict[str, slice]]:
    """One Functional model of many branches from one input (after `pre`), each a
    (B, width) vector, concatenated: one build and one call per backend for many layer
    types, the diff still reported per branch (its slice of the output)."""
    inp = keras.Input(shape, dtype=dtype)
    x = pre(inp) if pre else inp
    outs = [fn(x) for fn in cases.values()]
    spans, start = {}, 0
    for name, o in zip(cases, outs):
        spans[name] = slice(start, start + o.shape[-1])
        start += o.shape[-1]
    return keras.Model(inp, layers.Concatenate()(outs)), spans


def pool(x):
    return layers.GlobalAveragePooling2D()(x) if len(x.shape) == 4 else \
        layers.GlobalAveragePooling1D()(x)


def nested(x):
    a = layers.Conv2D(4, 3, padding="same")(x)
    b = layers.Conv2D(4, 1)(x)
    y = layers.Add()([a, b])
    z = layers.Concatenate()([y, layers.Multiply()([y, a])])
    inner = keras.Sequential([keras.Input((8, 8, 8)), layers.Conv2D(2, 3)], name="inner")
    return pool(inner(z))


IMAGE = {  # (8, 8, 3) -> (B, width)
    "conv2d_same_stride2": lambda x: pool(layers.Conv2D(4, 3, strides=2, padding="same")(x)),
    "conv2d_same_even_kernel_maxpool_same": lambda x: pool(layers.MaxPooling2D(
        3, strides=2, padding="same")(layers.Conv2D(4, 2, padding="same", use_bias=False)(x))),
    "conv2d_dilated_relu": lambda x: pool(layers.Conv2D(4, 3, dilation_rate=2,
                                                        activation="relu")(x)),
    "maxpool_avgpool_valid": lambda x: pool(layers.AveragePooling2D(2, strides=1)(
        layers.MaxPooling2D(2)(x))),
    "avgpool_same": lambda x: pool(layers.AveragePooling2D(3, padding="same")(x)),
    "global_max_keepdims": lambda x: layers.Flatten()(layers.GlobalMaxPooling2D(
        keepdims=True)(x)),
    "flatten_dropout_dense": lambda x: layers.Dense(5)(layers.Dropout(0.3)(
        layers.Flatten()(x))),
    "flatten_reshape_permute": lambda x: pool(layers.Conv2D(2, 3)(layers.Reshape((8, 8, 3))(
        layers.Permute((2, 1))(layers.Reshape((24, 8))(layers.Flatten()(x)))))),
    "zero_padding": lambda x: pool(layers.Conv2D(2, 3)(layers.ZeroPadding2D(((1, 2), (0, 1)))(
        x))),
    "batchnorm": lambda x: pool(layers.BatchNormalization(momentum=0.9)(x)),
    "layernorm_relu_tanh": lambda x: pool(layers.Activation("tanh")(layers.ReLU()(
        layers.LayerNormalization(epsilon=1e-5)(x)))),
    "softmax_layer": lambda x: pool(layers.Softmax()(x)),
    "add_multiply_concat_nested": nested,
}
SEQUENCE = {  # (9, 4) -> (B, width)
    "conv1d_valid_strided": lambda x: pool(layers.Conv1D(5, 3, strides=2)(x)),
    "conv1d_same_dilated_maxpool_same": lambda x: pool(layers.MaxPooling1D(
        2, padding="same")(layers.Conv1D(5, 3, padding="same", dilation_rate=2)(x))),
    "avgpool1d_global_max": lambda x: layers.GlobalMaxPooling1D()(
        layers.AveragePooling1D(2)(x)),
    "batchnorm_no_center_scale": lambda x: pool(layers.BatchNormalization(
        center=False, scale=False)(x)),
    "bidirectional_gru_unmasked": lambda x: layers.Bidirectional(layers.GRU(3))(x),
    "dense_activations": lambda x: layers.Dense(3, activation="log_softmax")(
        layers.Flatten()(_dense_chain(x))),
    "getitem_last_step": lambda x: x[:, -1, :],
}
MASKED = {  # ids (9,) through Embedding(mask_zero=True) -> (B, width)
    "lstm": lambda e: layers.LSTM(5)(e),
    "lstm_sequences_backwards": lambda e: pool(layers.LSTM(
        5, return_sequences=True, go_backwards=True)(e)),
    "gru_sequences": lambda e: pool(layers.GRU(5, return_sequences=True)(e)),
    "simple_rnn_relu": lambda e: layers.SimpleRNN(5, activation="relu")(e),
    "bidirectional_concat": lambda e: layers.Bidirectional(layers.LSTM(3))(e),
    **{f"bidirectional_{m}_sequences": (lambda e, m=m: pool(layers.Bidirectional(
        layers.LSTM(3, return_sequences=True), merge_mode=m)(e)))
       for m in ("sum", "ave", "mul")},
    "attention_add_layernorm": lambda e: pool(layers.LayerNormalization(epsilon=1e-5)(
        layers.Add()([e, layers.MultiHeadAttention(2, 8)(e, e)]))),  # heads * key_dim != E
}
UNMASKED = {  # ids (9,) through Embedding -> (B, width)
    "conv1d_global_max": lambda e: layers.GlobalMaxPooling1D()(
        layers.Conv1D(4, 3, activation="relu")(e)),
    "attention": lambda e: pool(layers.MultiHeadAttention(2, 4)(e, e)),
}


def _dense_chain(x):
    for a in ("relu", "gelu", "tanh", "sigmoid", "silu", "linear", "softmax"):
        x = layers.Dense(5, activation=a)(x)
    return x


def keras_cases() -> dict[str, float]:
    groups = [("image", IMAGE, (8, 8, 3), "float32", None, img(), True),
              ("sequence", SEQUENCE, (9, 4), "float32", None, seq(9), True),
              ("masked", MASKED, (None,), "int32",
               lambda i: layers.Embedding(20, 8, mask_zero=True)(i), ids(), False),
              ("unmasked", UNMASKED, (None,), "int32", lambda i: layers.Embedding(20, 8)(i),
               ids(holes=False), False)]
    out: dict[str, float] = {}
    for group, cases, shape, dtype, pre, x, train in groups:
        model, spans = branches(shape, cases, dtype, pre)
        cols, moving = keras_case(model, x, train)
        out.update({f"keras:{group}:{k}": float(cols[sl].max()) for k, sl in spans.items()})
        if train:
            out[f"keras:{group}:moving_statistics"] = moving
    return out


class Seq(nn.Module):
    """nn.Sequential with a forward fx can trace (its own is traced too; this one names
    the layers in order)."""

    def __init__(self, *mods: nn.Module, fn=None) -> None:
        super().__init__()
        self.body = nn.Sequential(*mods)
        self.fn = fn

    def forward(self, x):
        x = self.body(x)
        return self.fn(x) if self.fn else x


class Image(nn.Module):
    """Conv2d (padding 1 = Keras "same", 2 = a ZeroPadding, stride 2), BatchNorm2d, the
    module and F. forms of pools and activations, AdaptiveAvgPool2d(1), nn.Flatten,
    torch.flatten, a view, +, torch.cat and a log_softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2))
        self.conv = nn.Conv2d(3, 4, 3, padding=2)
        self.strided = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 + 4 * 4 * 4 + 4 + 64, 5)

    def forward(self, x):  # x: (B, 3, 8, 8)
        a = self.flatten(self.pool(self.features(x)))  # (B, 4)
        b = F.max_pool2d(F.gelu(self.conv(x)), 2)  # (B, 4, 5, 5)
        b = F.avg_pool2d(torch.sigmoid(b), 2, stride=1)  # (B, 4, 4, 4)
        c = F.adaptive_avg_pool2d(b, 1).flatten(1)  # (B, 4)
        h = b.view(b.size(0), -1)  # (B, 64)
        d = torch.flatten(torch.tanh(self.strided(x)), 1)  # (B, 64)
        y = torch.cat([a, torch.tanh(h) + h, c, self.drop(d)], dim=1)
        return F.log_softmax(self.fc(F.dropout(y, 0.2, training=self.training)), dim=1)


class Text(nn.Module):
    """Embedding, Conv1d on (B, C, L) with MaxPool1d, a permute and a transpose, a
    bidirectional LSTM (sequence and final states), a GRU, LayerNorm, x[:, -1, :] and
    a softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.conv = nn.Conv1d(6, 5, 3, padding=1)
        self.pool = nn.MaxPool1d(3, stride=1, padding=0)
        self.lstm = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(8, 3, batch_first=True)
        self.ln = nn.LayerNorm(3)
        self.out = nn.Linear(8 + 3 + 3, 2)

    def forward(self, ids):  # ids: (B, L)
        x = self.pool(torch.relu(self.conv(self.emb(ids).permute(0, 2, 1)))).transpose(1, 2)
        seq, (h, c) = self.lstm(x)
        g, hg = self.gru(seq)
        last = torch.cat((h[-2], h[-1]), dim=1)
        return F.softmax(self.out(torch.cat([last, hg[-1], self.ln(g[:, -1, :])], dim=1)),
                         dim=-1)


def torch_cases() -> dict[str, float]:
    cases = {
        "image": (Image(), img().transpose(0, 3, 1, 2).copy(), True),
        "vector_bn1d_activations": (Seq(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.GELU(),
                                        nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 3),
                                        nn.SiLU(), nn.Tanh(), nn.Softmax(dim=1),
                                        nn.LogSoftmax(dim=-1)),
                                    RNG.standard_normal((8, 6)).astype(np.float32), True),
        "text": (Text(), ids(holes=False), False),
    }
    return {f"torch:{k}": torch_case(m, x, train) for k, (m, x, train) in cases.items()}


def refusal(fn) -> str:
    try:
        fn()
    except Unsupported as e:
        return str(e)
    return "not refused"


class Conv3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv3d(1, 2, 1))

    def forward(self, x):
        return self.block(x)


def chain(shape, *ls):
    def build():
        x = inp = keras.Input(shape)
        for layer in ls:
            x = layer()(x)
        return keras.Model(inp, x)
    return build


def refusals() -> dict[str, str]:
    """The converters refuse in one line, naming the class and where it sits."""
    lam = chain((4,), lambda: layers.Lambda(lambda t: t * 2, name="double"))
    conv3d = chain((4, 4, 4, 1), lambda: layers.Conv3D(2, 1))
    reg = chain((4,), lambda: layers.Dense(2, kernel_regularizer="l2"))
    x5 = torch.zeros(2, 1, 4, 4, 4)
    return {
        "refusal:keras_lambda": refusal(lambda: read_keras(lam(), "m")),
        "refusal:keras_conv3d": refusal(lambda: read_keras(conv3d(), "m")),
        "refusal:keras_regularizer": refusal(lambda: read_keras(reg(), "m")),
        "refusal:torch_conv3d": refusal(lambda: read_torch(Conv3d(), "m", x5)),
        "refusal:torch_rnn_tanh": refusal(lambda: read_torch(
            Seq(nn.RNN(3, 2, batch_first=True)), "m", torch.zeros(2, 4, 3))),
    }


if __name__ == "__main__":
    out = {**keras_cases(), **torch_cases()}
    if "--refusals" in sys.argv:
        out.update(refusals())
    print(json.dumps(out))
