"""`python -m twinbench.byo.inspect JOB.json`: read a user's model in its own process
(the driver imports no framework), on the run's data, and write what every cell needs:
model.json (a ByoRecord), the canonical initial weights per seed, the generated twin's
source and a copy of the user's source file.

Initial weights: the model's own initialisers, drawn once per seed in this process
(`keras.utils.set_random_seed` / `torch.manual_seed`) and loaded into every twin. A
.keras file's stored weights are not used: it is re-initialised (`clone_model`), so
every run trains from a fresh, seeded start.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from twinbench.byo.graph import Graph, Unsupported, forward_flops
from twinbench.byo.record import RECORD, ByoRecord
from twinbench.byo.source import ByoError, ModelSource, build_model, framework_of
from twinbench.data.dataset import Dataset

HEAD_TOLERANCE = 1e-4


def head_of_outputs(out: np.ndarray) -> str:
    """What a model outputs, from one batch: probabilities (rows >= 0 summing to 1),
    log-probabilities (exp rows summing to 1) or logits."""
    out = out.astype(np.float64)
    if out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0, atol=HEAD_TOLERANCE):
        return "softmax"
    if out.max() <= 0 and np.allclose(np.exp(out).sum(axis=1), 1.0, atol=HEAD_TOLERANCE):
        return "log_softmax"
    return "logits"


def check_output(src: ModelSource, out: np.ndarray, data: Dataset) -> int:
    if out.ndim != 2:
        raise ByoError(f"--model {src.spec}: outputs shape {out.shape[1:]} per sample; "
                       "expected (classes,)")
    if out.shape[1] < data.classes:
        raise ByoError(f"--model {src.spec}: outputs {out.shape[1]} classes, the data has "
                       f"{data.classes}")
    return int(out.shape[1])


def seeded_build(src: ModelSource, seed: int, data: Dataset) -> Any:
    """A fresh model drawn under `seed`. Keras's session is cleared first, so every
    build names its layers alike ("conv2d", not "conv2d_3"): the canonical names."""
    from twinbench.byo.source import import_file

    if src.kind == "python":
        import_file(Path(src.path))  # its imports decide which frameworks get seeded
    else:
        import keras  # noqa: F401
    if "keras" in sys.modules:
        import keras

        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
    model = build_model(src)
    if src.kind == "keras-file":  # fresh, seeded initial weights
        import keras

        model = keras.models.clone_model(model)
    if framework_of(model, src) == "keras" and not model.built:
        model.build((None, *data.x_train.shape[1:]))
    return model


def keras_inputs(src: ModelSource, model: Any, data: Dataset) -> np.ndarray:
    want = list(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    got = list(data.x_train.shape[1:])
    if want is not None and (len(want) != len(got) or any(w not in (None, g)
                                                          for w, g in zip(want, got))):
        raise ByoError(f"--model {src.spec}: takes inputs of shape {tuple(want)}, the data "
                       f"has {tuple(got)}")
    return data.x_train[:4]


def inspect_keras(src: ModelSource, model: Any, data: Dataset, seeds: list[int], out: Path
                  ) -> dict:
    import keras

    from twinbench.byo.keras_reader import read_keras
    from twinbench.byo.torch_writer import write

    y = keras.ops.convert_to_numpy(model(keras_inputs(src, model, data), training=False))
    rec: dict = {"classes": check_output(src, y, data), "head": head_of_outputs(y),
                 "input_shape": list(data.x_train.shape[1:]),
                 "input_dtype": str(data.x_train.dtype),
                 "variables": [(v.path, list(v.shape), bool(v.trainable))
                               for v in model.weights]}
    names = [v[0] for v in rec["variables"]]
    save_weights(out, seeds[0], dict(zip(names, (np.asarray(v.numpy()) for v in model.weights))))
    for seed in seeds[1:]:
        again = seeded_build(src, seed, data)
        save_weights(out, seed, dict(zip(names, (np.asarray(v.numpy()) for v in again.weights))))
    try:
        graph = read_keras(model, src.name)
        twin = write(graph)
        (out / "twin_torch.py").write_text(twin.source, encoding="utf-8")
        rec.update(graph=graph, twin_file="twin_torch.py", prefixes=twin.prefixes,
                   hwc={k: list(v) for k, v in twin.hwc.items()})
    except Unsupported as e:
        rec.update(graph=None, refusal=f"{e} (no PyTorch twin)")
    return rec


def save_weights(out: Path, seed: int, weights: dict[str, np.ndarray]) -> None:
    np.savez(out / f"weights_s{seed}.npz", **weights)


def torch_input(x: np.ndarray) -> np.ndarray:
    """A batch as the torch stacks feed it: images NCHW (the stack transposes NHWC)."""
    return x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x


def torch_graph(src: ModelSource, model: Any, x: Any, state: dict) -> dict:
    """The graph of a torch module and how its state_dict maps to canonical weights;
    a refusal (one line) when something is not converted or not mapped."""
    from twinbench.byo import torch_state
    from twinbench.byo.keras_writer import write
    from twinbench.byo.torch_reader import read_torch

    try:
        graph = read_torch(model, src.name, x)
        source = write(graph)
    except Unsupported as e:
        return {"graph": None, "refusal": f"{e} (no Keras twin)"}
    prefixes = {n.name: n.where["torch"] for n in graph.nodes if n.weights}
    hwc = {n.name: list(n.attrs["rows_hwc"]) for n in graph.nodes if "rows_hwc" in n.attrs}
    canon = torch_state.from_torch(graph, prefixes, hwc, state)
    unmapped = sorted(set(state) - set(torch_state.to_torch(graph, prefixes, hwc, canon)))
    if unmapped:
        return {"graph": None, "refusal": f"{type(model).__name__} at {src.name!r} holds "
                f"{unmapped[0]}, which no converted layer reads (no Keras twin); supported: "
                "parameters of converted modules"}
    return {"graph": graph, "source": source, "prefixes": prefixes, "hwc": hwc,
            "folded": [n.where["torch"] for n in graph.nodes
                       if n.op == "rnn" and n.attrs["cell"] == "lstm"]}


def inspect_torch(src: ModelSource, model: Any, data: Dataset, seeds: list[int], out: Path
                  ) -> dict:
    import torch

    from twinbench.byo import torch_state

    model.eval()
    x = torch.from_numpy(torch_input(data.x_train[:4]))
    try:
        with torch.no_grad():
            y = model(x).numpy()
    except Exception as e:
        raise ByoError(f"--model {src.spec}: does not take the data's inputs {tuple(x.shape)} "
                       f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]})") \
            from None
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    found = torch_graph(src, model, x, state)
    twin_source = found.pop("source", None)
    rec: dict = {"classes": check_output(src, y, data), "head": head_of_outputs(y),
                 "input_shape": list(data.x_train.shape[1:]),
                 "input_dtype": str(data.x_train.dtype), **found}
    graph = found.get("graph")
    for seed in seeds:
        st = state if seed == seeds[0] else {k: v.detach().numpy().copy() for k, v in
                                             seeded_build(src, seed, data).state_dict().items()}
        save_weights(out, seed, torch_state.from_torch(graph, found["prefixes"],
                                                       found["hwc"], st) if graph else st)
    if graph:
        (out / "twin_keras.py").write_text(twin_source, encoding="utf-8")
        rec["variables"] = [(k, s, t) for k, (s, t) in graph.variables.items()]
        rec["twin_file"] = "twin_keras.py"
    else:
        params = {k for k, p in model.named_parameters() if p.requires_grad}
        rec["variables"] = [(k, list(v.shape), k in params) for k, v in state.items()]
    return rec


def inspect(job: dict) -> ByoRecord:
    src = ModelSource(**job["source"])
    out = Path(job["out_dir"])
    data = Dataset.load(Path(job["data_path"]))
    seeds = job["seeds"]
    model = seeded_build(src, seeds[0], data)
    framework = framework_of(model, src)
    rec = (inspect_keras if framework == "keras" else inspect_torch)(src, model, data, seeds,
                                                                     out)
    graph: Graph | None = rec.pop("graph", None)
    rec.setdefault("twin_file", None)
    rec.setdefault("refusal", None)
    if graph is not None:
        graph.head = rec["head"]
        length = data.x_train.shape[1] if data.x_train.ndim == 2 else 1
        rec["flops_per_sample"] = forward_flops(graph, length)
        rec["masks_padding"] = any(n.op == "embedding" and n.attrs["mask_zero"]
                                   for n in graph.nodes)
    shutil.copyfile(src.path, out / f"source{Path(src.path).suffix}")
    return ByoRecord(name=job["name"], source=src.record(), framework=framework,
                     graph=graph.to_json() if graph else None,
                     weights={str(s): f"weights_s{s}.npz" for s in seeds}, **rec)


def main(job_path: str) -> int:
    from twinbench.process.child import die_with_parent, write_json_atomic

    die_with_parent()
    job = json.loads(Path(job_path).read_text())
    out = Path(job["out_dir"])
    try:
        record = inspect(job)
    except ByoError as e:
        write_json_atomic(out / "error.json", {"reason": str(e)})
        return 1
    (out / RECORD).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
