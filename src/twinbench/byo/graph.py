"""The framework-free graph a user's model is read into, and written out of.

Tensors are in Keras's layout (channels-last; batch axis left out of every shape, `None`
for a variable length). A node is one layer or op of the user's model; its `inputs` are
references "node" or "node:k" (output k of a node with several, e.g. an RNN's final
states). Readers (keras_reader, torch_reader) build it; writers (torch_writer,
keras_writer) turn it into a twin's source; torch_state maps its weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Ops of the graph (see each writer for what it emits).
OPS = ("input", "dense", "conv", "pool", "global_pool", "flatten", "reshape", "permute",
       "dropout", "activation", "batch_norm", "layer_norm", "embedding", "rnn", "mha",
       "add", "multiply", "concatenate", "getitem", "zero_pad")
ACTIVATIONS = ("linear", "relu", "gelu", "tanh", "sigmoid", "softmax", "log_softmax",
               "silu")
HEADS = ("logits", "softmax", "log_softmax")


class Unsupported(ValueError):
    """A layer or op no converter handles: one line naming its class and its path."""

    def __init__(self, cls: str, path: str, why: str, supported: tuple[str, ...]) -> None:
        self.cls, self.path = cls, path
        super().__init__(f"{cls} at {path!r} {why}; supported: {', '.join(supported)}")


@dataclass
class Node:
    name: str  # unique, a Python identifier: the twin's attribute / layer name
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    shapes: list[list[int | None]] = field(default_factory=list)  # per output
    weights: list[str] = field(default_factory=list)  # canonical names, the layer's order
    path: str = ""  # where it sits in the user's model (for messages)
    cls: str = ""  # the user's class (or op) it was read from
    mask: str | None = None  # ref of the int ids whose `!= 0` masks this node's input
    where: dict[str, Any] = field(default_factory=dict)  # how to find it in the source

    @property
    def shape(self) -> list[int | None]:
        return self.shapes[0]


@dataclass
class Graph:
    """A whole model: nodes in execution order, the first one the input."""

    name: str  # the user's model name (class names of the twins derive from it)
    source: str  # "keras" or "torch": the framework the user wrote it in
    nodes: list[Node]
    output: str  # ref of the model's output
    head: str = "logits"  # what the output is: logits, softmax or log_softmax
    variables: dict[str, tuple[list[int], bool]] = field(default_factory=dict)

    def node(self, ref: str) -> Node:
        name = ref.split(":")[0]
        return next(n for n in self.nodes if n.name == name)

    def shape_of(self, ref: str) -> list[int | None]:
        name, _, k = ref.partition(":")
        return self.node(name).shapes[int(k or 0)]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if any(r.split(":")[0] == name for r in n.inputs)]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        raw = json.loads(text)
        raw["nodes"] = [Node(**n) for n in raw["nodes"]]
        raw["variables"] = {k: (list(s), bool(t)) for k, (s, t) in raw["variables"].items()}
        return cls(**raw)


def identifier(name: str, taken: set[str]) -> str:
    """A Python identifier from a layer or module path, unique among `taken` (and never a
    name nn.Module or keras.Layer already uses)."""
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_") or "layer"
    if base[0].isdigit() or base in RESERVED:
        base = f"layer_{base}"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


RESERVED = {"training", "forward", "call", "build", "input", "output", "weights", "name",
            "layers", "mask", "x", "ids", "self", "F", "nn", "torch", "keras", "ops"}


def head_of(graph: Graph) -> str:
    """What the model outputs, from its last node: a softmax or log_softmax over the
    classes (as an activation layer or a layer's `activation=`), else logits."""
    last = graph.node(graph.output)
    act = last.attrs.get("activation", "linear")
    if last.op in ("activation", "dense", "conv") and act in ("softmax", "log_softmax"):
        if last.attrs.get("axis", -1) in (-1, len(last.shape)):
            return act
    return "logits"


def _n(shape: list[int | None], length: int) -> int:
    return math.prod(length if d is None else d for d in shape)


def node_flops(g: Graph, n: Node, length: int) -> float:
    """Forward FLOPs of one node for one sample (2 per multiply-add of its matmuls and
    convolutions; the torch.utils.flop_counter convention), `length` for `None` dims."""
    a = n.attrs
    if n.op == "dense":
        return 2.0 * _n(n.shape, length) * g.shape_of(n.inputs[0])[-1]
    if n.op == "conv":
        c_in = g.shape_of(n.inputs[0])[-1]
        return 2.0 * _n(n.shape, length) * math.prod(a["kernel"]) * c_in // a.get("groups", 1)
    if n.op == "rnn":
        steps, f_in = (g.shape_of(n.inputs[0])[i] for i in (0, 1))
        gates = {"lstm": 4, "gru": 3, "simple": 1}[a["cell"]]
        per_step = 2.0 * gates * a["units"] * (f_in + a["units"])
        return per_step * (length if steps is None else steps) * (2 if a["bidirectional"] else 1)
    if n.op == "mha":
        q, v = g.shape_of(n.inputs[0]), g.shape_of(n.inputs[1])
        lq, lv = (length if s[0] is None else s[0] for s in (q, v))
        hd = a["heads"] * a["key_dim"]
        proj = 2.0 * hd * (q[-1] * lq + 2 * v[-1] * lv) + 2.0 * hd * q[-1] * lq
        return proj + 4.0 * hd * lq * lv
    return 0.0


def forward_flops(g: Graph, length: int = 1) -> float:
    return float(sum(node_flops(g, n, length) for n in g.nodes))
