"""A PyTorch nn.Module read into a `Graph` with torch.fx (symbolic_trace, then ShapeProp
on one batch of the data for every tensor's shape).

The graph is in Keras's layout, so each torch tensor is tracked as a graph tensor and a
permutation: torch tensor = graph tensor.permute(perm). An image enters as NHWC with
perm (0, 3, 1, 2); Conv / pool / BatchNorm want that channels-first perm and keep it;
`x.permute`, `x.transpose` only change the perm; Linear, LayerNorm, reshape and
indexing want the identity and get a graph `permute` node when it is not. A flatten of
a channels-first tensor is a graph flatten in Keras's (h, w, c) order whose Dense
readers get their kernel rows permuted (`rows_hwc`), as layout.py does for the
built-in CNN; read by anything else, it flattens in torch's order (a permute first).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from twinbench.byo.graph import Graph, Node, Unsupported, identifier

MODULES = ("Conv1d", "Conv2d", "Linear", "MaxPool1d", "MaxPool2d", "AvgPool1d",
           "AvgPool2d", "AdaptiveAvgPool1d(1)", "AdaptiveAvgPool2d(1)", "Flatten", "Dropout",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Embedding", "LSTM", "GRU", "ReLU",
           "GELU", "Tanh", "Sigmoid", "SiLU", "Softmax", "LogSoftmax", "Identity")
FUNCTIONS = ("F.relu", "F.gelu", "torch.tanh", "torch.sigmoid", "F.silu", "F.softmax",
             "F.log_softmax", "F.max_pool1d/2d", "F.avg_pool1d/2d",
             "F.adaptive_avg_pool1d/2d(x, 1)", "F.dropout", "torch.flatten", "+", "*",
             "torch.cat", "x.view", "x.reshape", "x.flatten", "x.permute", "x.transpose",
             "x.mean(dims)", "x[...]")
SUPPORTED = MODULES + FUNCTIONS
ACTS = {F.relu: "relu", torch.relu: "relu", F.gelu: "gelu", torch.tanh: "tanh",
        F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.silu: "silu",
        F.softmax: "softmax", torch.softmax: "softmax", F.log_softmax: "log_softmax",
        torch.log_softmax: "log_softmax"}
ACT_MODULES = {nn.ReLU: "relu", nn.GELU: "gelu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
               nn.SiLU: "silu", nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}
ACT_METHODS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
               "softmax": "softmax", "log_softmax": "log_softmax"}
POOLS = {F.max_pool1d: ("max", 1), F.max_pool2d: ("max", 2), F.avg_pool1d: ("avg", 1),
         F.avg_pool2d: ("avg", 2)}


@dataclass(frozen=True)
class Val:
    """A torch tensor: graph tensor `ref`, permuted by `perm` (batch axis included)."""

    ref: str
    perm: tuple[int, ...]


@dataclass(frozen=True)
class States:
    """An RNN's (directions, B, H) final states: indexing picks one direction's ref."""

    refs: tuple[str, ...]
    usable: bool = True  # False for an LSTM's cell states, which Keras does not return


def ident(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_first(rank: int) -> tuple[int, ...]:
    """(B, C, *spatial) from channels-last: (0, r - 1, 1, ..., r - 2)."""
    return (0, rank - 1, *range(1, rank - 1)) if rank > 2 else ident(rank)


def _pair(v: Any, rank: int) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [int(v)] * rank


def _shape(node: fx.Node) -> list[int]:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise Unsupported(str(node.target), node.name, "has no single tensor output",
                          SUPPORTED)
    return list(meta.shape)


class TorchReader:
    def __init__(self, gm: fx.GraphModule, name: str) -> None:
        self.gm, self.name = gm, name
        self.nodes: list[Node] = []
        self.taken: set[str] = set()
        self.vals: dict[str, Any] = {}  # fx node name -> Val / States / tuple / int
        self.variables: dict[str, tuple[list[int], bool]] = {}

    # graph building

    def add(self, op: str, ins: list[str], attrs: dict, shape: list, cls: str, path: str,
            weights: list[tuple[str, list[int], bool]] = (), where: str | None = None,
            extra_shapes: list[list] = ()) -> str:
        node = Node(identifier(path, self.taken), op, ins, attrs, [shape, *extra_shapes],
                    path=path, cls=cls, where={"torch": where} if where else {})
        for suffix, wshape, trainable in weights:
            node.weights.append(f"{node.name}/{suffix}")
            self.variables[node.weights[-1]] = (wshape, trainable)
        self.nodes.append(node)
        return node.name

    def shape_of(self, ref: str) -> list:
        name, _, k = ref.partition(":")
        return next(n for n in self.nodes if n.name == name).shapes[int(k or 0)]

    def as_perm(self, v: Val, want: tuple[int, ...], path: str) -> str:
        """The graph ref of a tensor whose torch form is graph.permute(want): `v` itself
        when its perm already is `want`, else a graph permute node."""
        if v.perm == want:
            return v.ref
        inv = [want.index(i) for i in range(len(want))]
        q = [v.perm[i] for i in inv]  # graph2 = graph.permute(q)
        shape = self.shape_of(v.ref)
        new = [shape[d - 1] for d in q[1:]]
        return self.add("permute", [v.ref], {"dims": q[1:]}, new, "permute",
                        f"{path}_permute")

    def tensor(self, a: Any, path: str) -> Val:
        v = self.vals.get(a.name) if isinstance(a, fx.Node) else None
        if not isinstance(v, Val):
            raise Unsupported(type(a).__name__, path, "is used as a tensor", SUPPORTED)
        return v

    # reading

    def read(self, example: torch.Tensor) -> Graph:
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.placeholder(n, example)
            elif n.op == "output":
                out = self.tensor(n.args[0], "output")
                ref = self.as_perm(out, ident(len(out.perm)), "output")
            elif n.op == "call_module":
                self.vals[n.name] = self.call_module(n, self.gm.get_submodule(n.target))
            elif n.op in ("call_function", "call_method"):
                self.vals[n.name] = self.call(n)
            elif n.op == "get_attr":
                raise Unsupported("get_attr", str(n.target), "reads a parameter or buffer "
                                  "directly", SUPPORTED)
        g = Graph(self.name, "torch", self.nodes, ref, variables=self.variables)
        rows_hwc(g)
        return g

    def placeholder(self, n: fx.Node, example: torch.Tensor) -> None:
        if self.nodes:
            raise Unsupported("forward", self.name, "takes more than one input",
                              ("forward(self, x)",))
        shape = list(example.shape[1:])
        perm = channels_first(example.dim()) if example.dim() == 4 else ident(example.dim())
        keras_shape = [shape[perm.index(i) - 1] for i in range(1, example.dim())]
        ref = self.add("input", [], {"dtype": str(example.dtype).replace("torch.", "")},
                       keras_shape, "input", "input")
        self.vals[n.name] = Val(ref, perm)

    def call_module(self, n: fx.Node, m: nn.Module) -> Any:
        path, cls = str(n.target), type(m).__name__
        x = n.args[0] if n.args else None
        if type(m) in ACT_MODULES:
            dim = getattr(m, "dim", -1)
            return self.activation(self.tensor(x, path), ACT_MODULES[type(m)], dim, path, cls,
                                   getattr(m, "approximate", "none"))
        if isinstance(m, nn.Identity):
            return self.tensor(x, path)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self.conv(n, m, path)
        if isinstance(m, nn.Linear):
            return self.linear(n, m, path)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            return self.pool(n, "max" if "Max" in cls else "avg", int(cls[-2]), m.kernel_size,
                             m.stride, m.padding, getattr(m, "ceil_mode", False), path, cls)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            return self.adaptive(n, m.output_size, int(cls[-2]), path, cls)
        if isinstance(m, nn.Flatten):
            return self.flatten(n, self.tensor(x, path), m.start_dim, m.end_dim, path)
        if isinstance(m, nn.Dropout):
            v = self.tensor(x, path)
            return Val(self.add("dropout", [v.ref], {"rate": m.p}, self.shape_of(v.ref), cls,
                                path, where=path), v.perm)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batch_norm(n, m, path)
        if isinstance(m, nn.LayerNorm):
            return self.layer_norm(n, m, path)
        if isinstance(m, nn.Embedding):
            return self.embedding(n, m, path)
        if isinstance(m, (nn.LSTM, nn.GRU)):
            return self.rnn(n, m, path)
        raise Unsupported(cls, path, "is not converted", SUPPORTED)

    def activation(self, v: Val, act: str, dim: Any, path: str, cls: str,
                   approximate: str = "none") -> Val:
        if act == "gelu" and approximate != "none":
            raise Unsupported(cls, path, "uses the tanh approximation", ("approximate='none'",))
        attrs: dict = {"activation": act}
        if act in ("softmax", "log_softmax"):
            if dim is None:
                raise Unsupported(cls, path, "has no dim", ("dim=-1 or dim=1",))
            axis = v.perm[dim % len(v.perm)]
            attrs["axis"] = -1 if axis == len(v.perm) - 1 else axis
        ref = self.add("activation", [v.ref], attrs, self.shape_of(v.ref), cls, path)
        return Val(ref, v.perm)

    def conv(self, n: fx.Node, m: nn.Conv1d | nn.Conv2d, path: str) -> Val:
        rank, cls = len(m.kernel_size), type(m).__name__
        if m.padding_mode != "zeros":
            raise Unsupported(cls, path, f"has padding_mode={m.padding_mode!r}",
                              ("padding_mode='zeros'",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, channels_first(rank + 2), path)
        k, s, d = list(m.kernel_size), list(m.stride), list(m.dilation)
        padding = self.conv_padding(m, k, s, d)
        if isinstance(padding, list):  # explicit, as torch pads: a ZeroPadding first
            shape = self.shape_of(ref)
            padded = [size + 2 * p for size, p in zip(shape[:-1], padding)] + shape[-1:]
            ref = self.add("zero_pad", [ref], {"padding": [[p, p] for p in padding]}, padded,
                           "padding", f"{path}_padding")
            padding = "valid"
        weights = [("kernel", [*k, m.in_channels // m.groups, m.out_channels], True)]
        if m.bias is not None:
            weights.append(("bias", [m.out_channels], True))
        out = _shape(n)
        attrs = {"rank": rank, "filters": m.out_channels, "kernel": k, "strides": s,
                 "padding": padding, "dilation": d, "groups": m.groups,
                 "use_bias": m.bias is not None, "activation": "linear"}
        return Val(self.add("conv", [ref], attrs, out[2:] + out[1:2], cls, path, weights,
                            path), channels_first(rank + 2))

    @staticmethod
    def conv_padding(m: nn.Module, k: list, s: list, d: list) -> str | list[int]:
        if m.padding == "valid" or all(p == 0 for p in _pair(m.padding, len(k))):
            return "valid"
        if m.padding == "same":
            return "same"
        pad = _pair(m.padding, len(k))
        if all(st == 1 and (kk - 1) * dd == 2 * p for kk, st, dd, p in zip(k, s, d, pad)):
            return "same"  # symmetric, as Keras pads with stride 1 and odd kernels
        return pad

    def linear(self, n: fx.Node, m: nn.Linear, path: str) -> Val:
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, ident(len(v.perm)), path)
        weights = [("kernel", [m.in_features, m.out_features], True)]
        if m.bias is not None:
            weights.append(("bias", [m.out_features], True))
        attrs = {"units": m.out_features, "use_bias": m.bias is not None,
                 "activation": "linear"}
        shape = self.shape_of(ref)[:-1] + [m.out_features]
        return Val(self.add("dense", [ref], attrs, shape, "Linear", path, weights, path),
                   ident(len(v.perm)))

    def pool(self, n: fx.Node, kind: str, rank: int, size: Any, stride: Any, padding: Any,
             ceil: bool, path: str, cls: str) -> Val:
        size = _pair(size, rank)
        stride = _pair(stride if stride not in (None, []) else size, rank)
        if any(_pair(padding, rank)) or ceil:
            raise Unsupported(cls, path, "pads or uses ceil_mode", ("padding=0, ceil_mode=False",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, channels_first(rank + 2), path)
        out = _shape(n)
        attrs = {"kind": kind, "rank": rank, "size": size, "strides": stride,
                 "padding": "valid"}
        return Val(self.add("pool", [ref], attrs, out[2:] + out[1:2], cls, path),
                   channels_first(rank + 2))

    def adaptive(self, n: fx.Node, size: Any, rank: int, path: str, cls: str) -> Val:
        if any(s != 1 for s in _pair(size, rank)):
            raise Unsupported(cls, path, f"has output size {size}", ("output size 1",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, channels_first(rank + 2), path)
        c = self.shape_of(ref)[-1]
        return Val(self.add("global_pool", [ref], {"kind": "avg", "rank": rank,
                                                   "keepdims": True},
                            [1] * rank + [c], cls, path), channels_first(rank + 2))

    def reduce_mean(self, n: fx.Node, v: Val, dims: Any, keepdim: bool, kind: str,
                    path: str) -> Val:
        """x.mean(dim=(2, 3)) over every spatial axis of a channels-first tensor: a global
        pool; anything else is not converted."""
        rank = len(v.perm)
        dims = sorted(d % rank for d in (dims if isinstance(dims, (tuple, list)) else [dims]))
        if v.perm != channels_first(rank) or rank < 3 or dims != list(range(2, rank)):
            raise Unsupported(f"x.{kind}", path, f"reduces dims {dims} of a {rank}-D tensor",
                              ("the spatial dims of (B, C, ...)",))
        c = self.shape_of(v.ref)[-1]
        shape = [1] * (rank - 2) + [c] if keepdim else [c]
        ref = self.add("global_pool", [v.ref], {"kind": "avg" if kind == "mean" else "max",
                                                "rank": rank - 2, "keepdims": keepdim},
                       shape, f"x.{kind}", path)
        return Val(ref, channels_first(rank) if keepdim else ident(2))

    def flatten(self, n: fx.Node, v: Val, start: int, end: int, path: str) -> Val:
        rank = len(v.perm)
        if start % rank != 1 or end % rank != rank - 1:
            raise Unsupported("flatten", path, f"flattens dims {start}..{end}",
                              ("start_dim=1, end_dim=-1",))
        if rank == 2:
            return v
        # The graph flattens channels-last; a channels-first torch tensor flattens in
        # torch's order: `rows_hwc` later turns that into a row permutation of Dense.
        spatial = self.shape_of(v.ref)[:-1]
        order = "chw" if v.perm == channels_first(rank) and any(d != 1 for d in spatial) \
            else "keras"
        ref = v.ref if order == "chw" or v.perm == channels_first(rank) else \
            self.as_perm(v, ident(rank), path)
        size = 1
        for d in self.shape_of(ref):
            size *= d
        return Val(self.add("flatten", [ref], {"order": order}, [size], "flatten", path),
                   ident(2))

    def reshape(self, n: fx.Node, v: Val, path: str) -> Val:
        out = _shape(n)
        if len(out) == 2 and len(v.perm) > 2:
            return self.flatten(n, v, 1, -1, path)
        ref = self.as_perm(v, ident(len(v.perm)), path)
        return Val(self.add("reshape", [ref], {"target": out[1:], "order": "keras"}, out[1:],
                            "reshape", path), ident(len(out)))

    def batch_norm(self, n: fx.Node, m: nn.modules.batchnorm._BatchNorm, path: str) -> Val:
        cls = type(m).__name__
        if m.momentum is None or not m.track_running_stats:
            raise Unsupported(cls, path, "has momentum=None or no running stats",
                              ("momentum > 0, track_running_stats=True",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, channels_first(len(v.perm)), path)
        c = m.num_features
        weights = ([("gamma", [c], True), ("beta", [c], True)] if m.affine else []) + \
            [("moving_mean", [c], False), ("moving_variance", [c], False)]
        attrs = {"momentum": 1.0 - m.momentum, "epsilon": m.eps, "center": m.affine,
                 "scale": m.affine, "variance": "unbiased"}  # torch's moving-variance update
        return Val(self.add("batch_norm", [ref], attrs, self.shape_of(ref), cls, path,
                            weights, path), channels_first(len(v.perm)))

    def layer_norm(self, n: fx.Node, m: nn.LayerNorm, path: str) -> Val:
        if len(m.normalized_shape) != 1:
            raise Unsupported("LayerNorm", path, f"normalises {m.normalized_shape}",
                              ("the last dim",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, ident(len(v.perm)), path)
        c, affine = m.normalized_shape[0], m.elementwise_affine
        bias = affine and m.bias is not None
        weights = ([("gamma", [c], True)] if affine else []) + ([("beta", [c], True)]
                                                                if bias else [])
        attrs = {"epsilon": m.eps, "center": bias, "scale": affine}
        return Val(self.add("layer_norm", [ref], attrs, self.shape_of(ref), "LayerNorm", path,
                            weights, path), ident(len(v.perm)))

    def embedding(self, n: fx.Node, m: nn.Embedding, path: str) -> Val:
        if m.padding_idx is not None or m.max_norm is not None or m.sparse or \
                m.scale_grad_by_freq:
            raise Unsupported("Embedding", path, "has padding_idx, max_norm, sparse or "
                              "scale_grad_by_freq", ("nn.Embedding(num, dim)",))
        v = self.tensor(n.args[0], path)
        attrs = {"input_dim": m.num_embeddings, "output_dim": m.embedding_dim,
                 "mask_zero": False}
        shape = self.shape_of(v.ref) + [m.embedding_dim]
        weights = [("embeddings", [m.num_embeddings, m.embedding_dim], True)]
        return Val(self.add("embedding", [v.ref], attrs, shape, "Embedding", path, weights,
                            path), ident(len(v.perm) + 1))

    def rnn(self, n: fx.Node, m: nn.LSTM | nn.GRU, path: str) -> tuple:
        cls = type(m).__name__
        if not m.batch_first or m.num_layers != 1 or not m.bias or m.dropout or \
                getattr(m, "proj_size", 0) or len(n.args) > 1:
            raise Unsupported(cls, path, "is not batch_first, single-layer, with bias, "
                              "no initial state", ("nn.LSTM/GRU(in, hidden, batch_first=True)",))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, ident(3), path)
        cell, h = cls.lower(), m.hidden_size
        k = identifier(path, set(self.taken))  # the name `add` will give the node
        gates = {"lstm": 4, "gru": 3}[cell]
        bias = [gates * h] if cell == "lstm" else [2, gates * h]
        weights = []
        for d in (["forward", "backward"] if m.bidirectional else [None]):
            pre = f"{d}_{k}/" if d else ""
            weights += [(f"{pre}{cell}_cell/kernel", [m.input_size, gates * h], True),
                        (f"{pre}{cell}_cell/recurrent_kernel", [h, gates * h], True),
                        (f"{pre}{cell}_cell/bias", bias, True)]
        dirs = 2 if m.bidirectional else 1
        steps = self.shape_of(ref)[0]
        attrs = {"cell": cell, "units": h, "activation": "tanh", "return_sequences": True,
                 "go_backwards": False, "bidirectional": m.bidirectional,
                 "merge_mode": "concat" if m.bidirectional else None, "return_state": True}
        name = self.add("rnn", [ref], attrs, [steps, dirs * h], cls, path, weights, path,
                        extra_shapes=[[h]] * dirs)
        states = States(tuple(f"{name}:{i + 1}" for i in range(dirs)))
        seq = Val(f"{name}:0", ident(3))
        return (seq, (states, States(states.refs, usable=False))) if cell == "lstm" else \
            (seq, states)

    def getitem(self, n: fx.Node, path: str) -> Any:
        obj, key = self.vals.get(n.args[0].name), n.args[1]
        if obj is None and n.args[0].name in self.vals:
            return None  # an index into x.size(): shapes come from ShapeProp
        if isinstance(obj, tuple):
            return obj[key]
        if isinstance(obj, States):
            if not obj.usable or not isinstance(key, int):
                raise Unsupported("RNN state", path,
                                  "is a cell state or a slice of states",
                                  ("h_n[i] of an LSTM or GRU",))
            return Val(obj.refs[key], ident(2))
        v = self.tensor(n.args[0], path)
        ref = self.as_perm(v, ident(len(v.perm)), path)
        keys = key if isinstance(key, tuple) else (key,)
        items = []
        for k in keys:
            if isinstance(k, int):
                items.append({"int": k})
            elif isinstance(k, slice) and all(x is None or isinstance(x, int)
                                              for x in (k.start, k.stop, k.step)):
                items.append({"slice": [k.start, k.stop, k.step]})
            else:
                raise Unsupported("x[...]", path, f"indexes with {k!r}", ("ints", "slices"))
        if items and items[0] != {"slice": [None, None, None]}:
            raise Unsupported("x[...]", path, "indexes the batch axis", ("x[:, ...]",))
        out = _shape(n)
        return Val(self.add("getitem", [ref], {"key": items}, out[1:], "getitem", path),
                   ident(len(out)))

    def call(self, n: fx.Node) -> Any:
        """A function (F.relu, torch.flatten, operator.add, ...) or a tensor method."""
        t, path = n.target, n.name
        args, kw = list(n.args), dict(n.kwargs)
        label = t if isinstance(t, str) else getattr(t, "__name__", str(t))
        if t is operator.getitem:
            return self.getitem(n, path)
        if n.op == "call_method" and t in ("size", "dim"):
            return None  # shapes come from ShapeProp
        if n.op == "call_method" and t in ("contiguous", "clone", "float"):
            return self.tensor(args[0], path)
        if t in ACTS or (n.op == "call_method" and t in ACT_METHODS):
            act = ACTS.get(t) if not isinstance(t, str) else ACT_METHODS[t]
            dim = kw.get("dim", args[1] if len(args) > 1 else None)
            return self.activation(self.tensor(args[0], path), act, dim, path, label,
                                   kw.get("approximate", "none"))
        if t in POOLS:
            kind, rank = POOLS[t]
            get = lambda i, k, d: kw.get(k, args[i] if len(args) > i else d)  # noqa: E731
            return self.pool(n, kind, rank, get(1, "kernel_size", None), get(2, "stride", None),
                             get(3, "padding", 0), get(5 if kind == "max" else 4, "ceil_mode",
                                                       False), path, f"F.{t.__name__}")
        if t in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
            return self.adaptive(n, kw.get("output_size", args[1] if len(args) > 1 else None),
                                 1 if t is F.adaptive_avg_pool1d else 2, path, label)
        if t is F.dropout:
            v = self.tensor(args[0], path)
            p = kw.get("p", args[1] if len(args) > 1 else 0.5)
            return Val(self.add("dropout", [v.ref], {"rate": p}, self.shape_of(v.ref),
                                "F.dropout", path), v.perm)
        return self.call_tensor_op(n, t, args, kw, label, path)

    def call_tensor_op(self, n: fx.Node, t: Any, args: list, kw: dict, label: str,
                       path: str) -> Any:
        if t in (torch.flatten,) or (n.op == "call_method" and t == "flatten"):
            start = kw.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kw.get("end_dim", args[2] if len(args) > 2 else -1)
            return self.flatten(n, self.tensor(args[0], path), start, end, path)
        if n.op == "call_method" and t in ("view", "reshape") or t is torch.reshape:
            return self.reshape(n, self.tensor(args[0], path), path)
        if n.op == "call_method" and t in ("permute", "transpose") or \
                t in (torch.permute, torch.transpose):
            return self.permute(n, t, args, path)
        if n.op == "call_method" and t in ("mean", "amax") or t in (torch.mean, torch.amax):
            dims = kw.get("dim", args[1] if len(args) > 1 else None)
            keep = kw.get("keepdim", args[2] if len(args) > 2 else False)
            kind = t if isinstance(t, str) else t.__name__
            return self.reduce_mean(n, self.tensor(args[0], path), dims, keep, kind, path)
        if t in (operator.add, torch.add, operator.mul, torch.mul) or \
                (n.op == "call_method" and t in ("add", "mul")):
            op = "add" if t in (operator.add, torch.add, "add") else "multiply"
            return self.elementwise(n, op, args, path, label)
        if t is torch.cat:
            return self.cat(n, args[0], kw.get("dim", args[1] if len(args) > 1 else 0), path)
        raise Unsupported(label, path, "is not converted", SUPPORTED)

    def permute(self, n: fx.Node, t: Any, args: list, path: str) -> Val:
        v = self.tensor(args[0], path)
        rank = len(v.perm)
        if t in ("transpose", torch.transpose):
            a, b = args[1] % rank, args[2] % rank
            p = list(range(rank))
            p[a], p[b] = p[b], p[a]
        else:
            dims = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) \
                else args[1]
            p = [d % rank for d in dims]
        if p[0] != 0:
            raise Unsupported("permute", path, "moves the batch axis", ("dims[0] == 0",))
        return Val(v.ref, tuple(v.perm[i] for i in p))

    def elementwise(self, n: fx.Node, op: str, args: list, path: str, label: str) -> Val:
        if not all(isinstance(a, fx.Node) for a in args[:2]):
            raise Unsupported(label, path, "combines a tensor with a constant",
                              ("tensor + tensor",))
        a, b = (self.tensor(x, path) for x in args[:2])
        refs = [a.ref, self.as_perm(b, a.perm, path)]
        return Val(self.add(op, refs, {}, self.shape_of(a.ref), label, path), a.perm)

    def cat(self, n: fx.Node, items: list, dim: int, path: str) -> Val:
        vals = [self.tensor(x, path) for x in items]
        perm = vals[0].perm
        refs = [self.as_perm(v, perm, path) for v in vals]
        axis = perm[dim % len(perm)]
        shape = list(self.shape_of(refs[0]))
        shape[axis - 1] = sum(self.shape_of(r)[axis - 1] for r in refs)
        attrs = {"axis": -1 if axis == len(perm) - 1 else axis}
        return Val(self.add("concatenate", refs, attrs, shape, "torch.cat", path), perm)


def rows_hwc(g: Graph) -> None:
    """A flatten in torch's (c, h, w) order read only by Dense layers (through dropout
    or element-wise activations) becomes Keras's (h, w, c) flatten, and those Dense
    kernels' rows are permuted on load (layout.dense_after_flatten_*)."""
    from twinbench.byo.torch_writer import dense_readers

    for n in g.nodes:
        if n.op != "flatten" or n.attrs["order"] != "chw":
            continue
        dense = dense_readers(g, n.name)
        if dense:
            shape = g.shape_of(n.inputs[0])
            hwc = shape if len(shape) == 3 else [1, *shape]
            n.attrs["order"] = "hwc"
            for d in dense:
                g.node(d).attrs["rows_hwc"] = hwc


def trace(module: nn.Module, name: str) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(module)
    except Exception as e:  # data-dependent control flow, unsupported Python
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise Unsupported(type(module).__name__, name, f"cannot be traced by torch.fx "
                          f"({first})", ("a forward() without data-dependent control flow",)) \
            from None


def read_torch(module: nn.Module, name: str, example: torch.Tensor) -> Graph:
    """`example`: one batch as the module takes it (NCHW images, int64 ids)."""
    gm = trace(module, name)
    ShapeProp(gm).propagate(example)
    return TorchReader(gm, name).read(example)
