"""A Keras 3 model (Sequential, Functional, nested) read into a `Graph`.

Each supported layer class maps to one graph op with its settings. Anything else (a
Lambda, a Conv3D, a subclassed model whose `call` is Python code, a setting the torch
twin cannot reproduce) raises `Unsupported`, one line naming the class and its path.
Masks are propagated as Keras does it: an `Embedding(mask_zero=True)` starts one, layers
with `supports_masking` pass it on, RNNs (when returning sequences) keep it, and the
others drop it.
"""

from __future__ import annotations

from typing import Any

from twinbench.byo.graph import ACTIVATIONS, Graph, Node, Unsupported, identifier

LAYERS = ("InputLayer", "Dense", "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D",
          "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D",
          "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
          "Flatten", "Reshape", "Permute", "Dropout", "Activation", "ReLU", "Softmax",
          "BatchNormalization", "LayerNormalization", "Embedding", "LSTM", "GRU",
          "SimpleRNN", "Bidirectional", "MultiHeadAttention", "Add", "Multiply",
          "Concatenate", "ZeroPadding1D", "ZeroPadding2D", "Sequential", "Functional")
SUPPORTED = LAYERS + ("ops: +, *, x[...]",)
MASK_KEEPERS = ("dense", "dropout", "activation", "batch_norm", "layer_norm")


def _act(cfg: dict, path: str, cls: str, key: str = "activation") -> str:
    name = cfg.get(key) or "linear"
    name = {"swish": "silu"}.get(name, name) if isinstance(name, str) else repr(name)
    if name not in ACTIVATIONS:
        raise Unsupported(cls, path, f"has {key}={name!r}, which is not converted",
                          tuple(f"{key}={a}" for a in ACTIVATIONS))
    return name


def _check_plain(layer: Any, cfg: dict, path: str) -> None:
    """Settings no converter reproduces: refuse rather than twin another function."""
    cls = type(layer).__name__
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "bias_constraint", "recurrent_regularizer",
                "embeddings_regularizer", "embeddings_constraint", "gamma_regularizer",
                "beta_regularizer"):
        if cfg.get(key) is not None:
            raise Unsupported(cls, path, f"has {key} set, which is not converted", SUPPORTED)
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(cls, path, "is channels_first", ("data_format='channels_last'",))
    if not layer.trainable and layer.weights:
        raise Unsupported(cls, path, "is frozen (trainable=False)", ("trainable layers",))


def _conv(layer, cfg, path):
    rank = len(cfg["kernel_size"])
    if cfg["padding"] not in ("valid", "same"):
        raise Unsupported(type(layer).__name__, path, f"has padding={cfg['padding']!r}",
                          ("padding='valid'", "padding='same'"))
    return "conv", {"rank": rank, "filters": cfg["filters"], "kernel": list(cfg["kernel_size"]),
                    "strides": list(cfg["strides"]), "padding": cfg["padding"],
                    "dilation": list(cfg["dilation_rate"]), "groups": cfg.get("groups", 1),
                    "use_bias": cfg["use_bias"],
                    "activation": _act(cfg, path, type(layer).__name__)}


def _pool(layer, cfg, path):
    name = type(layer).__name__
    size = cfg["pool_size"]
    size = list(size) if isinstance(size, (list, tuple)) else [size]
    strides = cfg.get("strides") or size
    strides = list(strides) if isinstance(strides, (list, tuple)) else [strides]
    return "pool", {"kind": "max" if name.startswith("Max") else "avg", "rank": len(size),
                    "size": size, "strides": strides, "padding": cfg["padding"]}


def _rnn_attrs(layer, path: str) -> dict:
    cfg, cls = layer.get_config(), type(layer).__name__
    cell = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple"}[cls]
    for key in ("dropout", "recurrent_dropout"):
        if cfg.get(key):
            raise Unsupported(cls, path, f"has {key}={cfg[key]}", (f"{key}=0",))
    if cfg.get("return_state") or cfg.get("stateful") or not cfg.get("use_bias", True):
        raise Unsupported(cls, path, "returns states, is stateful or has no bias",
                          ("return_state=False, stateful=False, use_bias=True",))
    if cell == "gru" and not cfg.get("reset_after", True):
        raise Unsupported(cls, path, "has reset_after=False (torch's GRU is reset_after)",
                          ("reset_after=True",))
    act = _act(cfg, path, cls)
    if cell != "simple" and (act != "tanh" or _act(cfg, path, cls, "recurrent_activation")
                             != "sigmoid"):
        raise Unsupported(cls, path, "has non-default activations",
                          ("activation='tanh', recurrent_activation='sigmoid'",))
    if cell == "simple" and act not in ("tanh", "relu"):
        raise Unsupported(cls, path, f"has activation={act!r}", ("tanh", "relu"))
    return {"cell": cell, "units": cfg["units"], "activation": act,
            "zero_output": bool(getattr(layer, "zero_output_for_mask", False)),
            "return_sequences": cfg["return_sequences"], "go_backwards": cfg["go_backwards"],
            "bidirectional": False, "merge_mode": None}


def _bidirectional(layer, cfg, path):
    inner = layer.forward_layer
    if type(inner).__name__ not in ("LSTM", "GRU", "SimpleRNN"):
        raise Unsupported(type(inner).__name__, f"{path}/{inner.name}", "inside Bidirectional",
                          ("LSTM", "GRU", "SimpleRNN"))
    if cfg["merge_mode"] not in ("concat", "sum", "ave", "mul"):
        raise Unsupported("Bidirectional", path, f"has merge_mode={cfg['merge_mode']!r}",
                          ("concat", "sum", "ave", "mul"))
    attrs = _rnn_attrs(inner, f"{path}/{inner.name}")
    if attrs["go_backwards"]:
        raise Unsupported("Bidirectional", path, "wraps a go_backwards RNN",
                          ("go_backwards=False",))
    return "rnn", {**attrs, "bidirectional": True, "merge_mode": cfg["merge_mode"]}


def _mha(layer, cfg, path):
    axes = cfg.get("attention_axes")
    if cfg.get("output_shape") or axes not in (None, (1,), [1]) or cfg.get("use_gate") \
            or cfg.get("sliding_window") or (cfg.get("value_dim") or cfg["key_dim"]) != \
            cfg["key_dim"]:
        raise Unsupported("MultiHeadAttention", path, "has output_shape, attention_axes, a "
                          "gate, a sliding window or value_dim != key_dim",
                          ("MultiHeadAttention(num_heads, key_dim)",))
    return "mha", {"heads": cfg["num_heads"], "key_dim": cfg["key_dim"],
                   "use_bias": cfg["use_bias"], "dropout": cfg["dropout"]}


def _norm(layer, cfg, path):
    cls = type(layer).__name__
    axis = cfg["axis"]
    if axis not in (-1, [-1]) and axis != [len(layer.input.shape) - 1] and \
            axis != len(layer.input.shape) - 1:
        raise Unsupported(cls, path, f"normalises axis {axis}", ("axis=-1",))
    attrs = {"epsilon": cfg["epsilon"], "center": cfg["center"], "scale": cfg["scale"]}
    if cls == "BatchNormalization":
        if cfg.get("renorm") or cfg.get("synchronized"):
            raise Unsupported(cls, path, "uses renorm or synchronized", ("plain BatchNorm",))
        return "batch_norm", {**attrs, "momentum": cfg["momentum"]}
    if cfg.get("rms_scaling"):
        raise Unsupported(cls, path, "uses rms_scaling", ("rms_scaling=False",))
    return "layer_norm", attrs


def _activation_layer(layer, cfg, path):
    cls = type(layer).__name__
    if cls == "ReLU":
        if cfg.get("max_value") is not None or cfg.get("negative_slope") or cfg.get("threshold"):
            raise Unsupported(cls, path, "has max_value, negative_slope or threshold",
                              ("ReLU()",))
        return "activation", {"activation": "relu"}
    if cls == "Softmax":
        return "activation", {"activation": "softmax", "axis": cfg["axis"]}
    return "activation", {"activation": _act(cfg, path, cls)}


def _zero_pad(layer, cfg, path):
    pad = cfg["padding"]
    pad = [list(p) if isinstance(p, (list, tuple)) else [p, p] for p in
           (pad if isinstance(pad[0], (list, tuple)) else [pad])]
    return "zero_pad", {"padding": pad}


CONVERTERS = {
    "Dense": lambda layer, c, p: ("dense", {"units": c["units"], "use_bias": c["use_bias"],
                                        "activation": _act(c, p, "Dense")}),
    "Conv1D": _conv, "Conv2D": _conv,
    **{k: _pool for k in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
                          "AveragePooling2D")},
    **{k: (lambda layer, c, p: ("global_pool", {
        "kind": "max" if "Max" in type(layer).__name__ else "avg",
        "rank": int(type(layer).__name__[-2]), "keepdims": c.get("keepdims", False)}))
       for k in ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
                 "GlobalAveragePooling2D")},
    "Flatten": lambda layer, c, p: ("flatten", {"order": "hwc"}),
    "Reshape": lambda layer, c, p: ("reshape", {"target": list(c["target_shape"]),
                                            "order": "keras"}),
    "Permute": lambda layer, c, p: ("permute", {"dims": list(c["dims"])}),
    "Dropout": lambda layer, c, p: ("dropout", {"rate": c["rate"]}),
    "Activation": _activation_layer, "ReLU": _activation_layer, "Softmax": _activation_layer,
    "BatchNormalization": _norm, "LayerNormalization": _norm,
    "Embedding": lambda layer, c, p: ("embedding", {"input_dim": c["input_dim"],
                                                "output_dim": c["output_dim"],
                                                "mask_zero": c["mask_zero"]}),
    **{k: (lambda layer, c, p: ("rnn", _rnn_attrs(layer, p)))
       for k in ("LSTM", "GRU", "SimpleRNN")},
    "Bidirectional": _bidirectional, "MultiHeadAttention": _mha,
    "Add": lambda layer, c, p: ("add", {}), "Multiply": lambda layer, c, p: ("multiply", {}),
    "Concatenate": lambda layer, c, p: ("concatenate", {"axis": c["axis"]}),
    "ZeroPadding1D": _zero_pad, "ZeroPadding2D": _zero_pad,
}


def _layers(model: Any) -> list:
    """A model's layers in a fixed order: the one the reader records as each layer's
    index, and the cell process finds it again by (auto names differ between builds)."""
    inner = getattr(model, "_functional", None)
    return list(inner.layers) if inner is not None else list(model.layers)


def _is_model(layer: Any) -> bool:
    return type(layer).__name__ in ("Sequential", "Functional")


def _mask_plumbing(kn: Any) -> bool:
    """An op Keras recorded while computing a mask (`ids != 0`, a logical and): the
    reader propagates masks itself, so these are not part of the model's function."""
    return type(kn.operation).__module__.startswith("keras.src.ops") and \
        all("bool" in str(t.dtype) for t in kn.output_tensors)


def _data_inputs(kn: Any) -> list:
    """The tensors a node computes on: its positional arguments, and MultiHeadAttention's
    `key`, never a `mask=` that Keras passes along."""
    from keras import tree

    args = list(kn.arguments.args) + [kn.arguments.kwargs[k] for k in ("key",)
                                      if kn.arguments.kwargs.get(k) is not None]
    return [t for t in tree.flatten(args) if hasattr(t, "_keras_history")]


def _getitem_key(key: Any, path: str) -> list:
    items = key if isinstance(key, tuple) else (key,)
    out: list = []
    for k in items:
        if isinstance(k, int):
            out.append({"int": k})
        elif isinstance(k, slice) and all(v is None or isinstance(v, int)
                                          for v in (k.start, k.stop, k.step)):
            out.append({"slice": [k.start, k.stop, k.step]})
        else:
            raise Unsupported("GetItem", path, f"indexes with {k!r}", ("ints", "slices"))
    return out


class KerasReader:
    """Reads one model; `nodes` fill in execution order."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.taken: set[str] = set()
        self.variables: dict[str, tuple[list[int], bool]] = {}

    def read(self, model: Any, name: str) -> Graph:
        if not _is_model(model):
            raise Unsupported(type(model).__name__, name, "is a subclassed keras.Model (its "
                              "call() is Python code, not a graph)", ("Sequential", "Functional"))
        fn = getattr(model, "_functional", model) if type(model).__name__ == "Sequential" \
            else model
        if fn is None:
            raise Unsupported("Sequential", name, "is not built (give it a keras.Input "
                              "first)", ("built models",))
        if len(fn.inputs) != 1 or len(fn.outputs) != 1:
            raise Unsupported(type(model).__name__, name, f"has {len(fn.inputs)} inputs and "
                              f"{len(fn.outputs)} outputs", ("one input, one output",))
        t = fn.inputs[0]
        node = Node(identifier("input", self.taken), "input", shapes=[list(t.shape[1:])],
                    attrs={"dtype": str(t.dtype)}, path=name, cls="InputLayer")
        self.nodes.append(node)
        (out, _), = self.functional(fn, name, [], [(node.name, None)])
        return Graph(name=name, source="keras", nodes=self.nodes, output=out,
                     variables=self.variables)

    def functional(self, fn: Any, path: str, index: list[int],
                   given: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        """Walk one Functional graph whose inputs are `given` (ref, mask ref) pairs."""
        seen = {id(t): g for t, g in zip(fn.inputs, given)}
        order = _layers(fn)
        for depth in sorted(fn._nodes_by_depth, reverse=True):
            for kn in fn._nodes_by_depth[depth]:
                op = kn.operation
                if type(op).__name__ == "InputLayer" or _mask_plumbing(kn):
                    continue
                ins = [seen[id(t)] for t in _data_inputs(kn)]
                where = index + [next(i for i, lay in enumerate(order) if lay is op)] \
                    if any(lay is op for lay in order) else None
                outs = self.operation(op, kn, f"{path}/{op.name}", where, ins)
                seen.update({id(t): o for t, o in zip(kn.output_tensors, outs)})
        return [seen[id(t)] for t in fn.outputs]

    def operation(self, op: Any, kn: Any, path: str, where: list[int] | None,
                  ins: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        cls = type(op).__name__
        if _is_model(op):
            inner = getattr(op, "_functional", op) if cls == "Sequential" else op
            return self.functional(inner, path, where or [], ins)
        extra = [k for k, v in kn.arguments.kwargs.items()
                 if k not in ("training", "mask", "key") and v is not None]
        if extra:
            raise Unsupported(cls, path, f"is called with {extra[0]}=", ("plain calls",))
        if type(op).__module__.startswith("keras.src.ops"):
            op_name, attrs = self.keras_op(op, kn, path)
        elif cls in CONVERTERS:
            cfg = op.get_config()
            _check_plain(op, cfg, path)
            op_name, attrs = CONVERTERS[cls](op, cfg, path)
        else:
            raise Unsupported(cls, path, "is not converted", SUPPORTED)
        node = Node(identifier(path.split("/", 1)[-1], self.taken), op_name,
                    [r for r, _ in ins], attrs,
                    [list(t.shape[1:]) for t in kn.output_tensors], path=path, cls=cls,
                    where={"keras_index": where} if where is not None else {})
        if where is not None:
            node.weights = [v.path for v in op.weights]
            self.variables.update({v.path: (list(v.shape), bool(v.trainable))
                                   for v in op.weights})
        self.nodes.append(node)
        return [(node.name if len(node.shapes) == 1 else f"{node.name}:{k}",
                 self.masks(node, ins)) for k in range(len(node.shapes))]

    def keras_op(self, op: Any, kn: Any, path: str) -> tuple[str, dict]:
        cls = type(op).__name__
        if cls in ("Add", "Multiply"):
            return cls.lower(), {}
        if cls == "GetItem":
            return "getitem", {"key": _getitem_key(kn.arguments.args[1], path)}
        raise Unsupported(f"keras.ops.{cls}", path, "is not converted", SUPPORTED)

    def masks(self, node: Node, ins: list[tuple[str, str | None]]) -> str | None:
        """The mask the node consumes (node.mask) and the one its output carries."""
        masks = {m for _, m in ins if m is not None}
        if len(masks) > 1:
            raise Unsupported(node.cls, node.path, "merges two different masks",
                              ("one Embedding(mask_zero=True) per path",))
        mask = next(iter(masks), None)
        if node.op == "embedding":
            return ins[0][0] if node.attrs["mask_zero"] else None
        if mask is None:
            return None
        a = node.attrs
        if node.op == "mha":
            node.mask, a["value_mask"] = ins[0][1], ins[1][1]
            return ins[0][1]
        if node.op == "rnn" or (node.op == "global_pool" and a["kind"] == "avg"
                                and a["rank"] == 1):
            node.mask = mask
            return mask if a.get("return_sequences") else None
        if node.op == "concatenate" and a["axis"] not in (-1, len(node.shape)):
            raise Unsupported(node.cls, node.path, "concatenates masked tensors over time",
                              ("axis=-1",))
        if node.op in MASK_KEEPERS or (node.op in ("add", "multiply", "concatenate")
                                       and node.cls in ("Add", "Multiply", "Concatenate")):
            return mask
        return None


def read_keras(model: Any, name: str) -> Graph:
    return KerasReader().read(model, name)


def locate(model: Any, index: list[int]) -> Any:
    """The layer at a reader's `keras_index` in another build of the same model."""
    for i in index:
        model = _layers(model)[i]
    return model
