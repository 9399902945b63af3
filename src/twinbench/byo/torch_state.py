"""Canonical (Keras-layout) weights of a graph <-> a torch twin's state_dict, with the
permutations of `twinbench.models.layout` (exact: no arithmetic, except torch's second
RNN bias, which is added into Keras's one on the way back).

`prefixes` names each weighted node's module in the torch model ("conv1", "rnn.rnn"),
`hwc` the (H, W, C) a Dense reads after a channels-first flatten (its rows permuted).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinbench.byo.graph import Graph, Node
from twinbench.models import layout

BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
      "moving_variance": "running_var"}
MHA_PARTS = ("query", "key", "value", "attention_output")
MHA_TORCH = {"query": "query", "key": "key", "value": "value", "attention_output": "output"}

Pair = tuple[Callable[[dict], dict], Callable[[dict], dict]]


def _leaf(name: str) -> str:
    return name.rsplit("/", 1)[1]


def _dense(n: Node, p: str, hwc: tuple[int, int, int] | None) -> Pair:
    k, b = n.weights[0], n.weights[1:]

    def to(w):
        kernel = (layout.dense_after_flatten_to_torch(w[k], hwc) if hwc
                  else layout.dense_to_torch(w[k]))
        return {f"{p}.weight": kernel, **{f"{p}.bias": w[x] for x in b}}

    def back(s):
        out = {}
        if f"{p}.weight" in s:
            out[k] = (layout.dense_after_flatten_from_torch(s[f"{p}.weight"], hwc) if hwc
                      else layout.dense_from_torch(s[f"{p}.weight"]))
        out.update({x: s[f"{p}.bias"] for x in b if f"{p}.bias" in s})
        return out

    return to, back


def _conv(n: Node, p: str) -> Pair:
    to_t, from_t = ((layout.conv1d_to_torch, layout.conv1d_from_torch) if n.attrs["rank"] == 1
                    else (layout.conv2d_to_torch, layout.conv2d_from_torch))
    k, b = n.weights[0], n.weights[1:]
    return (lambda w: {f"{p}.weight": to_t(w[k]), **{f"{p}.bias": w[x] for x in b}},
            lambda s: {**({k: from_t(s[f"{p}.weight"])} if f"{p}.weight" in s else {}),
                       **{x: s[f"{p}.bias"] for x in b if f"{p}.bias" in s}})


def _renamed(n: Node, p: str, names: dict[str, str], extra: dict | None = None) -> Pair:
    """Same arrays under other names (BatchNorm, LayerNorm, Embedding)."""
    pairs = {c: f"{p}.{names[_leaf(c)]}" for c in n.weights}
    return (lambda w: {**{t: w[c] for c, t in pairs.items()}, **(extra or {})},
            lambda s: {c: s[t] for c, t in pairs.items() if t in s})


def _rnn(n: Node, p: str) -> Pair:
    cell = n.attrs["cell"]
    dirs = [("", n.weights[:3])] + ([("_reverse", n.weights[3:6])] if
                                    n.attrs["bidirectional"] else [])
    to_t = {"lstm": layout.lstm_to_torch, "gru": layout.gru_to_torch,
            "simple": layout.lstm_to_torch}[cell]  # SimpleRNN: transposes, one bias
    from_t = layout.gru_from_torch if cell == "gru" else layout.lstm_from_torch

    def to(w):
        out = {}
        for sfx, (k, r, b) in dirs:
            conv = to_t(w[k], w[r], w[b])
            out.update({f"{p}.{name}_l0{sfx}": v for name, v in conv.items()})
        return out

    def back(s):
        out = {}
        for sfx, names in dirs:
            sub = {name: s[f"{p}.{name}_l0{sfx}"] for name in
                   ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if f"{p}.{name}_l0{sfx}" in s}
            if "weight_ih" in sub:
                out.update(dict(zip(names, from_t(sub))))
        return out

    return to, back


def _mha(n: Node, p: str) -> Pair:
    """Keras kernels (E, heads, d) / output (heads, d, E) <-> Linear weights; biases
    (heads, d) <-> (heads * d,)."""
    names = {(part, _leaf(c)): c for c in n.weights for part in MHA_PARTS
             if f"/{part}/" in c}

    def to(w):
        out = {}
        for (part, leaf), c in names.items():
            a = w[c]
            t = f"{p}.{MHA_TORCH[part]}.{'weight' if leaf == 'kernel' else 'bias'}"
            if leaf == "kernel":
                a = a.reshape(-1, a.shape[-1]) if part == "attention_output" else \
                    a.reshape(a.shape[0], -1)
                out[t] = layout.dense_to_torch(a)
            else:
                out[t] = a.reshape(-1).copy()
        return out

    def back(s):
        out = {}
        heads, d = n.attrs["heads"], n.attrs["key_dim"]
        for (part, leaf), c in names.items():
            t = f"{p}.{MHA_TORCH[part]}.{'weight' if leaf == 'kernel' else 'bias'}"
            if t not in s:
                continue
            a = layout.dense_from_torch(s[t]) if leaf == "kernel" else s[t]
            shape = ((heads, d, a.shape[-1]) if part == "attention_output" else
                     (a.shape[0], heads, d)) if leaf == "kernel" else \
                ((a.shape[0],) if part == "attention_output" else (heads, d))
            out[c] = np.ascontiguousarray(a.reshape(shape))
        return out

    return to, back


def pairs(graph: Graph, prefixes: dict[str, str], hwc: dict[str, tuple[int, int, int]]
          ) -> list[Pair]:
    out = []
    for n in graph.nodes:
        if not n.weights:
            continue
        p = prefixes[n.name]
        if n.op == "dense":
            out.append(_dense(n, p, hwc.get(n.name)))
        elif n.op == "conv":
            out.append(_conv(n, p))
        elif n.op == "batch_norm":
            out.append(_renamed(n, p, BN, {f"{p}.num_batches_tracked": np.array(0)}))
        elif n.op == "layer_norm":
            out.append(_renamed(n, p, {"gamma": "weight", "beta": "bias"}))
        elif n.op == "embedding":
            out.append(_renamed(n, p, {"embeddings": "weight"}))
        elif n.op == "rnn":
            out.append(_rnn(n, p))
        elif n.op == "mha":
            out.append(_mha(n, p))
        else:
            raise ValueError(f"{n.op} node {n.name} has weights")
    return out


def to_torch(graph: Graph, prefixes: dict, hwc: dict, weights: dict) -> dict[str, np.ndarray]:
    state: dict[str, np.ndarray] = {}
    for to, _ in pairs(graph, prefixes, hwc):
        state.update(to(weights))
    return state


def from_torch(graph: Graph, prefixes: dict, hwc: dict, state: dict) -> dict[str, np.ndarray]:
    """Inverse of `to_torch` for the names present (gradients: no buffers, no frozen
    bias)."""
    out: dict[str, np.ndarray] = {}
    for _, back in pairs(graph, prefixes, hwc):
        out.update(back(state))
    return out
