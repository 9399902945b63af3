"""A graph (read from a Keras model) written out as a PyTorch nn.Module's source.

Layouts: image tensors (rank 4) are NCHW in the twin, as a PyTorch user writes it (the
stack transposes the input once); everything else keeps Keras's layout, so a (B, L, C)
sequence is transposed around each Conv1d / pooling, as torch text models do. The one
trap: Keras flattens (h, w, c), torch (c, h, w). A Flatten whose only readers are Dense
layers flattens NCHW and the Dense kernels' rows are permuted on load
(`layout.dense_after_flatten_to_torch`); any other Flatten permutes to NHWC first.

`write(graph)` returns the source and how its state_dict maps to canonical weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twinbench.byo.graph import Graph, Node, Unsupported, identifier

SUPPORTED = ("every layer keras_reader reads",)
ACT = {"relu": "F.relu({})", "gelu": "F.gelu({})", "tanh": "torch.tanh({})",
       "sigmoid": "torch.sigmoid({})", "silu": "F.silu({})", "linear": "{}"}
TO_NHWC, TO_NCHW = ".permute(0, 2, 3, 1)", ".permute(0, 3, 1, 2)"


@dataclass
class TorchTwin:
    source: str
    class_name: str
    prefixes: dict[str, str]  # graph node -> module path in the twin
    hwc: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def class_name(name: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else " " for c in name).split() if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    return out if out[0].isalpha() else f"Model{out}"


def _dims(shape: list, nchw: bool) -> str:
    """A shape comment: "(B, 32, 26, 26)"; None (a variable length) is L."""
    s = ["L" if d is None else str(d) for d in shape]
    if nchw and len(s) == 3:
        s = [s[2], s[0], s[1]]
    return "(B, " + ", ".join(s) + ")"


def _act(expr: str, act: str, dim: int = -1) -> str:
    if act in ("softmax", "log_softmax"):
        return f"F.{act}({expr}, dim={dim})"
    return ACT[act].format(expr)


def _tuple(v: list[int]) -> str:
    return str(v[0]) if len(set(v)) == 1 else str(tuple(v))


class TorchWriter:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.init: list[str] = []
        self.body: list[str] = []
        self.names: dict[str, str] = {}  # ref -> variable in forward()
        self.masks: dict[str, str] = {}  # ids ref -> mask variable
        self.prefixes: dict[str, str] = {}
        self.hwc: dict[str, tuple[int, int, int]] = {}
        self.taken: set[str] = set()
        self.helpers: set[str] = set()

    def uses(self, name: str) -> list[str]:
        refs = []
        for n in self.g.nodes:
            refs += [n.name for r in n.inputs if r.split(":")[0] == name]
            refs += [n.name for m in (n.mask, n.attrs.get("value_mask")) if m == name]
        return refs

    def var(self, i: int, n: Node) -> str:
        """`x` along a chain; a value read twice or later (a branch) keeps its name."""
        uses = self.uses(n.name)
        nxt = self.g.nodes[i + 1].name if i + 1 < len(self.g.nodes) else None
        if n.name == self.g.output.split(":")[0] or (len(uses) == 1 and uses[0] == nxt):
            return "x"
        return n.name

    def write(self) -> TorchTwin:
        for i, n in enumerate(self.g.nodes):
            if n.op == "input":
                chain = self.var(i, n) == "x"  # read once, by the next node
                self.names[n.name] = "ids" if self.is_ids(n) else "x" if chain else "inputs"
                continue
            expr = self.emit(n)
            out = self.var(i, n)
            self.body.append(f"{out} = {expr}  # {_dims(n.shape, self.nchw(n.name))}")
            self.names[n.name] = out
        return TorchTwin(self.source(), class_name(self.g.name), self.prefixes, self.hwc)

    def is_ids(self, n: Node) -> bool:
        return "int" in n.attrs.get("dtype", "")

    def nchw(self, ref: str) -> bool:
        return len(self.g.shape_of(ref)) == 3

    def module(self, n: Node, ctor: str, sub: str = "") -> str:
        """Declare `self.<name> = ctor` once; returns `self.<name>`."""
        attr = identifier(n.name, self.taken)
        self.init.append(f"self.{attr} = {ctor}")
        if n.weights:
            self.prefixes[n.name] = attr + sub
        return f"self.{attr}"

    def mask(self, ref: str | None) -> str:
        if ref is None:
            return "None"
        if ref not in self.masks:
            self.masks[ref] = f"mask_{ref}" if ref != self.g.nodes[0].name else "mask"
            self.body.append(f"{self.masks[ref]} = {self.names[ref]} != 0  # (B, L): "
                             "0 is padding")
        return self.masks[ref]

    def emit(self, n: Node) -> str:
        ins = [self.names[r] for r in n.inputs]
        fn = getattr(self, f"op_{n.op}", None)
        if fn is None:
            raise Unsupported(n.cls, n.path, "has no torch converter", SUPPORTED)
        return fn(n, ins)

    # One method per graph op: declare the module(s), return the forward expression.

    def op_dense(self, n: Node, ins: list[str]) -> str:
        c_in = self.g.shape_of(n.inputs[0])[-1]
        bias = "" if n.attrs["use_bias"] else ", bias=False"
        m = self.module(n, f"nn.Linear({c_in}, {n.attrs['units']}{bias})")
        if self.nchw(n.inputs[0]):  # Dense on an image acts on channels: NHWC around it
            return _act(f"{m}({ins[0]}{TO_NHWC}){TO_NCHW}", n.attrs["activation"], 1)
        return _act(f"{m}({ins[0]})", n.attrs["activation"])

    def op_conv(self, n: Node, ins: list[str]) -> str:
        a, rank = n.attrs, n.attrs["rank"]
        c_in = self.g.shape_of(n.inputs[0])[-1]
        k, s, d = a["kernel"], a["strides"], a["dilation"]
        eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
        pad, x = "", ins[0] if rank == 2 else f"{ins[0]}.transpose(1, 2)"
        if a["padding"] == "same":
            if all(ss == 1 and e % 2 == 1 for ss, e in zip(s, eff)):
                pad = f", padding={_tuple([e // 2 for e in eff])}"  # symmetric here
            else:  # Keras pads the extra pixel after: pad explicitly, asymmetrically
                self.helpers.add("keras_same_pad")
                x = f"keras_same_pad({x}, {tuple(k)}, {tuple(s)}, {tuple(d)})"
        opts = "".join([f", stride={_tuple(s)}" if set(s) != {1} else "", pad,
                        f", dilation={_tuple(d)}" if set(d) != {1} else "",
                        f", groups={a['groups']}" if a["groups"] != 1 else "",
                        "" if a["use_bias"] else ", bias=False"])
        m = self.module(n, f"nn.Conv{rank}d({c_in}, {a['filters']}, {_tuple(k)}{opts})")
        if rank == 2:
            return _act(f"{m}({x})", a["activation"], 1)
        return _act(f"{m}({x}).transpose(1, 2)", a["activation"])

    def op_pool(self, n: Node, ins: list[str]) -> str:
        a, rank = n.attrs, n.attrs["rank"]
        size, st = tuple(a["size"]), tuple(a["strides"])
        x = ins[0] if rank == 2 else f"{ins[0]}.transpose(1, 2)"
        if a["padding"] == "same" and a["kind"] == "max":
            self.helpers.add("keras_same_pad")
            x = f"keras_same_pad({x}, {size}, {st}, value=float('-inf'))"
        if a["padding"] == "same" and a["kind"] == "avg":
            self.helpers.add("keras_avg_pool_same")
            y = f"keras_avg_pool_same({x}, {size}, {st})"
        else:
            cls = f"nn.{'Max' if a['kind'] == 'max' else 'Avg'}Pool{rank}d"
            stride = "" if size == st else f", stride={_tuple(list(st))}"
            y = f"{self.module(n, f'{cls}({_tuple(list(size))}{stride})')}({x})"
        return y if rank == 2 else f"{y}.transpose(1, 2)"

    def op_global_pool(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        dims = "(2, 3)" if a["rank"] == 2 else "1"
        keep = ", keepdim=True" if a["keepdims"] else ""
        if a["kind"] == "avg" and n.mask:
            if a["keepdims"]:
                raise Unsupported(n.cls, n.path, "keeps dims under a mask", ("keepdims=False",))
            self.helpers.add("masked_mean")
            return f"masked_mean({ins[0]}, {self.mask(n.mask)})"
        return f"{ins[0]}.{'amax' if a['kind'] == 'max' else 'mean'}(dim={dims}{keep})"

    def op_flatten(self, n: Node, ins: list[str]) -> str:
        if not self.nchw(n.inputs[0]):
            return f"{ins[0]}.flatten(1)"
        dense = dense_readers(self.g, n.name)
        if dense:  # their kernels' rows get permuted instead
            self.hwc.update({d: tuple(self.g.shape_of(n.inputs[0])) for d in dense})
            return f"torch.flatten({ins[0]}, 1)"
        return f"{ins[0]}{TO_NHWC}.flatten(1)"

    def op_reshape(self, n: Node, ins: list[str]) -> str:
        x = f"{ins[0]}{TO_NHWC}" if self.nchw(n.inputs[0]) else ins[0]
        target = ", ".join(str(t) for t in n.attrs["target"])
        y = f"{x}.reshape({ins[0]}.shape[0], {target})"
        return f"{y}{TO_NCHW}" if self.nchw(n.name) else y

    def op_permute(self, n: Node, ins: list[str]) -> str:
        x = f"{ins[0]}{TO_NHWC}" if self.nchw(n.inputs[0]) else ins[0]
        y = f"{x}.permute(0, {', '.join(str(d) for d in n.attrs['dims'])})"
        return f"{y}{TO_NCHW}" if self.nchw(n.name) else y

    def op_dropout(self, n: Node, ins: list[str]) -> str:
        rate = n.attrs["rate"]
        return f"{self.module(n, f'nn.Dropout({rate})')}({ins[0]})"

    def op_activation(self, n: Node, ins: list[str]) -> str:
        axis = n.attrs.get("axis", -1)
        if self.nchw(n.inputs[0]):
            axis = {-1: 1, 3: 1, 1: 2, 2: 3}[axis]
        return _act(ins[0], n.attrs["activation"], axis)

    def op_batch_norm(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        if n.mask:
            raise Unsupported(n.cls, n.path, "normalises a masked input", ("unmasked input",))
        if a["center"] != a["scale"]:
            raise Unsupported(n.cls, n.path, "has center != scale", ("center == scale",))
        self.helpers.add("KerasBatchNorm")
        affine = "" if a["center"] else ", affine=False"
        m = self.module(n, f"KerasBatchNorm({self.g.shape_of(n.inputs[0])[-1]}, "
                           f"keras_momentum={a['momentum']}, epsilon={a['epsilon']}{affine})")
        if len(self.g.shape_of(n.inputs[0])) == 2:  # (B, L, C): channels to axis 1
            return f"{m}({ins[0]}.transpose(1, 2)).transpose(1, 2)"
        return f"{m}({ins[0]})"

    def op_layer_norm(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        if a["scale"] != a["center"] and not a["scale"]:
            raise Unsupported(n.cls, n.path, "has a center but no scale", ("scale=True",))
        opts = ("" if a["scale"] else ", elementwise_affine=False") + \
            ("" if a["center"] or not a["scale"] else ", bias=False")
        m = self.module(n, f"nn.LayerNorm({self.g.shape_of(n.inputs[0])[-1]}, "
                           f"eps={a['epsilon']}{opts})")
        if self.nchw(n.inputs[0]):
            return f"{m}({ins[0]}{TO_NHWC}){TO_NCHW}"
        return f"{m}({ins[0]})"

    def op_embedding(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        m = self.module(n, f"nn.Embedding({a['input_dim']}, {a['output_dim']})")
        ids = ins[0] if self.is_ids(self.g.node(n.inputs[0])) else f"{ins[0]}.long()"
        return f"{m}({ids})"

    def op_rnn(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        self.helpers.add("KerasRNN")
        opts = [f"bidirectional=True, merge_mode={a['merge_mode']!r}" if a["bidirectional"]
                else "", "return_sequences=True" if a["return_sequences"] else "",
                "go_backwards=True" if a["go_backwards"] else "",
                "zero_output=True" if a.get("zero_output") else "",
                f"activation={a['activation']!r}" if a["cell"] == "simple" else ""]
        feats = self.g.shape_of(n.inputs[0])[-1]
        m = self.module(n, f"KerasRNN({a['cell']!r}, {feats}, {a['units']}"
                           + "".join(f", {o}" for o in opts if o) + ")", sub=".rnn")
        return f"{m}({ins[0]}, {self.mask(n.mask)})" if n.mask else f"{m}({ins[0]})"

    def op_mha(self, n: Node, ins: list[str]) -> str:
        a = n.attrs
        if len(ins) > 2 and n.inputs[2] != n.inputs[1]:
            raise Unsupported(n.cls, n.path, "has a key other than its value", ("key=None",))
        self.helpers.add("KerasMultiHeadAttention")
        e, ev = (self.g.shape_of(r)[-1] for r in n.inputs[:2])
        opts = ("" if a["use_bias"] else ", bias=False") + \
            (f", dropout={a['dropout']}" if a["dropout"] else "") + \
            (f", value_embed={ev}" if ev != e else "")
        m = self.module(n, f"KerasMultiHeadAttention({e}, {a['heads']}, {a['key_dim']}{opts})")
        masks = ""
        if n.mask or a.get("value_mask"):
            masks = f", {self.mask(n.mask)}, {self.mask(a.get('value_mask'))}"
        return f"{m}({ins[0]}, {ins[1]}{masks})"

    def op_add(self, n: Node, ins: list[str]) -> str:
        return " + ".join(ins)

    def op_multiply(self, n: Node, ins: list[str]) -> str:
        return " * ".join(ins)

    def op_concatenate(self, n: Node, ins: list[str]) -> str:
        axis = n.attrs["axis"]
        if self.nchw(n.name):
            axis = {-1: 1, 3: 1, 1: 2, 2: 3, -3: 2, -2: 3}[axis]
        return f"torch.cat([{', '.join(ins)}], dim={axis})"

    def op_getitem(self, n: Node, ins: list[str]) -> str:
        if self.nchw(n.inputs[0]):
            raise Unsupported(n.cls, n.path, "indexes an image tensor", ("rank <= 3",))
        return f"{ins[0]}[{index_source(n.attrs['key'])}]"

    def op_zero_pad(self, n: Node, ins: list[str]) -> str:
        pads = n.attrs["padding"]
        if len(pads) == 2:  # (B, C, H, W): F.pad lists W first
            return f"F.pad({ins[0]}, {tuple(pads[1] + pads[0])})"
        return f"F.pad({ins[0]}, {(0, 0) + tuple(pads[0])})  # (B, L, C): pads L"

    def source(self) -> str:
        g, cls = self.g, class_name(self.g.name)
        arg = self.names[g.nodes[0].name]
        helpers = sorted(self.helpers)
        head = [f'"""PyTorch twin of the Keras model {g.name!r}, generated by twinbench from',
                'its Keras graph (twinbench/byo/torch_writer.py)."""', "",
                "import torch", "from torch import nn", "from torch.nn import functional as F",
                ""]
        if helpers:
            head += [f"from twinbench.models.torch_layers import {', '.join(helpers)}", ""]
        shape = _dims(g.nodes[0].shape, len(g.nodes[0].shape) == 3)
        lines = head + ["", f"class {cls}(nn.Module):", "    def __init__(self) -> None:",
                        "        super().__init__()"]
        lines += [f"        {s}" for s in self.init]
        lines += ["", f"    def forward(self, {arg}: torch.Tensor) -> torch.Tensor:  "
                      f"# {arg}: {shape}"]
        lines += [f"        {s}" for s in self.body]
        lines += [f"        return {self.names[g.output]}", "", "",
                  f"def build() -> {cls}:", f"    return {cls}()", ""]
        return "\n".join(lines)


ELEMENTWISE = ("dropout", "activation")


def dense_readers(g: Graph, name: str) -> list[str] | None:
    """The Dense layers that read a flattened vector, through element-wise layers (which
    commute with a permutation of its elements), or None if anything else reads it."""
    found: list[str] = []
    for r in g.consumers(name):
        if r.op == "dense" and len(r.inputs) == 1:
            found.append(r.name)
        elif r.op in ELEMENTWISE and r.attrs.get("activation") not in ("softmax",
                                                                        "log_softmax"):
            more = dense_readers(g, r.name)
            if more is None:
                return None
            found += more
        else:
            return None
    return found or None


def index_source(key: list) -> str:
    parts = []
    for k in key:
        if "int" in k:
            parts.append(str(k["int"]))
        else:
            a, b, c = k["slice"]
            parts.append(f"{'' if a is None else a}:{'' if b is None else b}"
                         + ("" if c is None else f":{c}"))
    return ", ".join(parts)


def write(graph: Graph) -> TorchTwin:
    return TorchWriter(graph).write()
