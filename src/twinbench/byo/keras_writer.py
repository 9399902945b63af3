"""A graph (read from a PyTorch module) written out as a Keras 3 Functional model's
source: one layer per graph node, named after the torch module it twins, in Keras's
channels-last layout (the graph's own). A torch BatchNorm becomes
`TorchBatchNormalization` (torch's unbiased moving variance); a flatten that must keep
torch's (c, h, w) order gets a Permute in front.
"""

from __future__ import annotations

from twinbench.byo.graph import Graph, Node, Unsupported
from twinbench.byo.torch_writer import _dims, class_name, index_source

SUPPORTED = ("every op torch_reader reads",)
STATE_INDEX = {("lstm", False): (1,), ("gru", False): (1,), ("lstm", True): (1, 3),
               ("gru", True): (1, 2)}


def _t(v: list) -> str:
    return str(v[0]) if len(set(v)) == 1 else str(tuple(v))


class KerasWriter:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.body: list[str] = []
        self.names: dict[str, str] = {}
        self.imports: set[str] = set()
        self.dropouts = 0

    def var(self, i: int, n: Node) -> str:
        uses = [m.name for m in self.g.nodes for r in m.inputs if r.split(":")[0] == n.name]
        nxt = self.g.nodes[i + 1].name if i + 1 < len(self.g.nodes) else None
        if len(n.shapes) == 1 and (n.name == self.g.output or (len(uses) == 1
                                                                and uses[0] == nxt)):
            return "x"
        return n.name

    def ref(self, r: str) -> str:
        name, _, k = r.partition(":")
        if not k:
            return self.names[name]
        n = self.g.node(name)
        index = (0,) + STATE_INDEX[(n.attrs["cell"], n.attrs["bidirectional"])]
        return f"{self.names[name]}[{index[int(k)]}]"

    def write(self) -> str:
        for i, n in enumerate(self.g.nodes):
            if n.op == "input":
                shape = tuple(n.shape)
                dtype = n.attrs["dtype"]
                self.body.append(f"inputs = keras.Input(shape={shape}, dtype={dtype!r})")
                self.names[n.name] = "inputs"
                continue
            fn = getattr(self, f"op_{n.op}", None)
            if fn is None:
                raise Unsupported(n.cls, n.path, "has no Keras converter", SUPPORTED)
            expr = fn(n, [self.ref(r) for r in n.inputs])
            out = self.var(i, n)
            shape = "" if len(n.shapes) > 1 else f"  # {_dims(n.shape, False)}"
            self.body.append(f"{out} = {expr}{shape}")
            self.names[n.name] = out
        return self.source()

    def layer(self, n: Node, ctor: str, ins: list[str], name: str | None = None) -> str:
        arg = ins[0] if len(ins) == 1 else f"[{', '.join(ins)}]"
        sep = ", " if not ctor.endswith("(") else ""
        return f"layers.{ctor}{sep}name={(name or n.name)!r})({arg})"

    def op_dense(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        opts = ("" if a["use_bias"] else ", use_bias=False") + \
            ("" if a["activation"] == "linear" else f", activation={a['activation']!r}")
        return self.layer(n, f"Dense({a['units']}{opts}", ins)

    def op_conv(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        opts = "".join([f", strides={_t(a['strides'])}" if set(a["strides"]) != {1} else "",
                        ", padding='same'" if a["padding"] == "same" else "",
                        f", dilation_rate={_t(a['dilation'])}" if set(a["dilation"]) != {1}
                        else "", f", groups={a['groups']}" if a["groups"] != 1 else "",
                        "" if a["use_bias"] else ", use_bias=False"])
        return self.layer(n, f"Conv{a['rank']}D({a['filters']}, {_t(a['kernel'])}{opts}", ins)

    def op_pool(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        kind = "Max" if a["kind"] == "max" else "Average"
        strides = "" if a["strides"] == a["size"] else f", strides={_t(a['strides'])}"
        pad = ", padding='same'" if a["padding"] == "same" else ""
        return self.layer(n, f"{kind}Pooling{a['rank']}D({_t(a['size'])}{strides}{pad}", ins)

    def op_global_pool(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        kind = "Max" if a["kind"] == "max" else "Average"
        keep = "keepdims=True" if a["keepdims"] else ""
        return self.layer(n, f"Global{kind}Pooling{a['rank']}D({keep}", ins)

    def op_flatten(self, n: Node, ins: list[str]) -> str:
        x = ins[0]
        if n.attrs["order"] == "chw":  # torch's (c, h, w) order: channels first, then flatten
            rank = len(self.g.shape_of(n.inputs[0]))
            dims = (rank, *range(1, rank))
            x = self.layer(n, f"Permute({dims}", [x], f"{n.name}_chw")
        return self.layer(n, "Flatten(", [x])

    def op_reshape(self, n: Node, ins: list[str]) -> str:
        return self.layer(n, f"Reshape({tuple(n.attrs['target'])}", ins)

    def op_permute(self, n: Node, ins: list[str]) -> str:
        return self.layer(n, f"Permute({tuple(n.attrs['dims'])}", ins)

    def op_dropout(self, n: Node, ins: list[str]) -> str:
        self.dropouts += 1  # an explicit seed per layer (see models/cnn/keras_model.py)
        return self.layer(n, f"Dropout({n.attrs['rate']}, seed=seed + {self.dropouts - 1}", ins)

    def op_activation(self, n: Node, ins: list[str]) -> str:
        act, axis = n.attrs["activation"], n.attrs.get("axis", -1)
        if act == "softmax" and axis != -1:
            return self.layer(n, f"Softmax(axis={axis}", ins)
        if act == "log_softmax" and axis != -1:
            raise Unsupported(n.cls, n.path, f"takes log_softmax over axis {axis}",
                              ("the last axis",))
        return self.layer(n, f"Activation({act!r}", ins)

    def op_batch_norm(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        cls = "BatchNormalization"
        if a.get("variance") == "unbiased":
            self.imports.add("TorchBatchNormalization")
            cls = "TorchBatchNormalization"
        opts = "" if a["center"] and a["scale"] else \
            f", center={a['center']}, scale={a['scale']}"
        ctor = f"{cls}(momentum={a['momentum']:.6g}, epsilon={a['epsilon']}{opts}"
        expr = self.layer(n, ctor, ins)
        return expr if cls == "BatchNormalization" else expr[len("layers."):]

    def op_layer_norm(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        opts = "".join(f", {k}=False" for k in ("center", "scale") if not a[k])
        return self.layer(n, f"LayerNormalization(epsilon={a['epsilon']}{opts}", ins)

    def op_embedding(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        mask = ", mask_zero=True" if a["mask_zero"] else ""
        return self.layer(n, f"Embedding({a['input_dim']}, {a['output_dim']}{mask}", ins)

    def op_rnn(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        cls = {"lstm": "LSTM", "gru": "GRU", "simple": "SimpleRNN"}[a["cell"]]
        opts = ", return_sequences=True" if a["return_sequences"] else ""
        opts += ", return_state=True" if a.get("return_state") else ""
        inner = f"layers.{cls}({a['units']}{opts}, name={n.name!r})"
        if a["bidirectional"]:
            return self.layer(n, f"Bidirectional({inner}, merge_mode={a['merge_mode']!r}",
                              ins)
        return f"{inner}({ins[0]})"

    def op_add(self, n: Node, ins: list[str]) -> str:
        return self.layer(n, "Add(", [f"[{', '.join(ins)}]"])

    def op_multiply(self, n: Node, ins: list[str]) -> str:
        return self.layer(n, "Multiply(", [f"[{', '.join(ins)}]"])

    def op_concatenate(self, n: Node, ins: list[str]) -> str:
        return self.layer(n, f"Concatenate(axis={n.attrs['axis']}", [f"[{', '.join(ins)}]"])

    def op_getitem(self, n: Node, ins: list[str]) -> str:
        return f"{ins[0]}[{index_source(n.attrs['key'])}]"

    def op_zero_pad(self, n: Node, ins: list[str]) -> str:
        pads = tuple(tuple(p) for p in n.attrs["padding"])
        return self.layer(n, f"ZeroPadding{len(pads)}D({pads if len(pads) > 1 else pads[0]}",
                          ins)

    def source(self) -> str:
        g = self.g
        head = [f'"""Keras 3 twin of the PyTorch model {g.name!r}, generated by twinbench',
                'from its torch.fx graph (twinbench/byo/keras_writer.py)."""', "",
                "import keras", "from keras import layers", ""]
        if self.imports:
            head += [f"from twinbench.models.keras_layers import "
                     f"{', '.join(sorted(self.imports))}", ""]
        lines = head + ["", "def build(seed: int = 0) -> keras.Model:"]
        lines += [f"    {s}" for s in self.body]
        lines += [f"    return keras.Model(inputs, {self.ref(g.output)}, "
                  f"name={class_name(g.name)!r})", ""]
        return "\n".join(lines)


def write(graph: Graph) -> str:
    return KerasWriter(graph).write()
