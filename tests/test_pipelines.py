"""Input pipelines: the numpy reference transforms, the seeded plan, and the equivalence
of every pipeline's batches with the reference (each framework in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twinbench.api import TwinbenchError
from twinbench.data.text import OOV, PAD, Vocabulary, encode
from twinbench.pipelines import PIPELINES, incompatible, resolve_pipelines
from twinbench.pipelines.api import PipelineConfig, plan
from twinbench.pipelines.spec import (
    EpochPlan,
    PipelineData,
    image_data,
    plan_epoch,
    reference,
    shift_flip,
    support_ulps,
    within_support,
)

HERE = Path(__file__).parent
TEXTS = ["Don't STOP -- it's 2 good!!", "", "   ", "Café ÉLAN naïve", "İstanbul \u212a x",
         "tab\there\nnew", "a--b__c 12'ab 3'", "x'y'z' O'NEILL's", "ÀÉÎ !!", "emoji 😀 ok",
         "w1 w2 w3 w4 w5 w6 w7 w8 w9"]
ALPHABET = list("abcxyzABCXYZ0189'' -_.,!?\t\nàÉßİ\u212a😀\u00a0")


def text_data(n_random: int = 30) -> PipelineData:
    rng = np.random.default_rng(0)
    rand = ["".join(rng.choice(ALPHABET, size=rng.integers(0, 25))) for _ in range(n_random)]
    texts = TEXTS + rand
    return PipelineData("t", "text", np.array(texts, dtype=str),
                        rng.integers(0, 2, len(texts)).astype(np.int64), 2,
                        vocab=Vocabulary.build(texts, min_count=1), length=6)


def small_images(augment: bool) -> PipelineData:
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, size=(12, 8, 8, 3)) / 255).astype(np.float32)
    return image_data("i", x, rng.integers(0, 3, 12).astype(np.int64), 3, augment,
                      pad=2, flip=True)


def test_shift_moves_content_by_pad_minus_offset_and_fills_zeros():
    x = np.zeros((1, 5, 5, 1), np.float32)
    x[0, 2, 2, 0] = 1.0
    out = shift_flip(x, np.array([[0, 4]]), np.array([False]), pad=2)  # dy=0: down 2, dx=4
    assert out[0, :, :, 0].nonzero() == (np.array([4]), np.array([0]))
    flipped = shift_flip(x, np.array([[0, 4]]), np.array([True]), pad=2)
    assert flipped[0, :, :, 0].nonzero() == (np.array([4]), np.array([4]))
    assert shift_flip(x, np.array([[2, 2]]), np.array([False]), pad=2).tolist() == x.tolist()


def test_plan_is_seeded_shares_the_epoch_order_and_is_centred_without_augmentation():
    d = small_images(augment=True)
    a, b, c = plan_epoch(d, 3, 0), plan_epoch(d, 3, 0), plan_epoch(d, 3, 1)
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.flips, b.flips)
    assert not np.array_equal(a.order, c.order) or not np.array_equal(a.offsets, c.offsets)
    assert a.offsets.min() >= 0 and a.offsets.max() <= 4 and a.flips.any()
    from twinbench.data.dataset import epoch_order

    assert np.array_equal(a.order, epoch_order(12, 3, 0))  # what `twinbench run` trains on
    fixed = plan_epoch(small_images(augment=False), 3, 0)
    assert (fixed.offsets == 2).all() and not fixed.flips.any()


def test_normalisation_uses_training_statistics():
    d = small_images(augment=False)
    out = reference(d, np.arange(12), plan_epoch(d, 0, 0))
    assert np.allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    assert np.allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)


def test_support_check_accepts_allowed_shifts_only():
    d = small_images(augment=True)
    p = plan_epoch(d, 5, 0)
    ids = np.arange(12)
    out = reference(d, ids, p)
    assert within_support(out, d, ids).all()
    nudged = out.copy()
    nudged[0, 3, 3, 0] = np.nextafter(nudged[0, 3, 3, 0], np.float32(9))
    assert support_ulps(nudged, d, ids)[0] == 1 and not within_support(nudged, d, ids)[0]
    assert not within_support(out[::-1].copy(), d, ids).all()  # someone else's image


def test_stacks_each_pipeline_can_feed():
    feeds = {p: [s for s in ("torch", "torch-compile", "keras-tensorflow", "keras-jax",
                             "keras-torch") if incompatible(p, s, "image") is None]
             for p in PIPELINES}
    assert feeds["numpy"] == ["torch", "torch-compile", "keras-tensorflow", "keras-jax",
                              "keras-torch"]
    assert feeds["torch-dataloader-2"] == ["torch", "torch-compile", "keras-torch"]
    assert feeds["tf-data"] == feeds["keras-pydataset-0"] == feeds["keras-layers-inside"] == [
        "keras-tensorflow", "keras-jax", "keras-torch"]
    assert incompatible("keras-layers-inside", "keras-tensorflow", "text") is None
    assert "TensorFlow" in incompatible("keras-layers-inside", "keras-jax", "text")


def test_plan_lists_measurements_and_rejects_bad_names():
    todo, skipped = plan(PipelineConfig(tasks=("digits",), stacks=("torch", "keras-jax"),
                                        pipelines=("numpy", "torch-dataloader-0")))
    assert [(m.pipeline, m.stack) for m in todo] == [
        ("numpy", None), ("torch-dataloader-0", None), ("numpy", "torch"),
        ("torch-dataloader-0", "torch"), ("numpy", "keras-jax")]
    assert skipped == [{"task": "digits", "pipeline": "torch-dataloader-0",
                        "stack": "keras-jax", "reason": incompatible(
                            "torch-dataloader-0", "keras-jax", "image")}]
    with pytest.raises(ValueError, match="valid: numpy, torch-dataloader-0"):
        resolve_pipelines(["nope"])
    with pytest.raises(TwinbenchError, match="--epochs 3 or more"):
        plan(PipelineConfig(epochs=2, warmup_epochs=2, pipeline_epochs=5))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinbench.cli", "pipelines", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("args, needle", [
    (["--pipelines", "nope"], "valid: numpy, torch-dataloader-0, torch-dataloader-2, tf-data"),
    (["--stacks", "nope"], "valid: torch, torch-compile"),
    (["--tasks", "nope"], "valid: digits, text"),
    (["--measure", "x"], "'both', 'pipeline' or 'train'"),
    (["--epochs", "1"], "valid: --epochs 2 or more"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    r = cli(*args, "--out", str(tmp_path))
    assert r.returncode == 2 and needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and len(r.stderr.strip().splitlines()) == 1


# Each framework in its own process, as in a measurement: (KERAS_BACKEND, pipelines[@stack]).
PROCESSES = {
    "tensorflow": ("tensorflow", ["tf-data", "keras-pydataset-0", "keras-pydataset-2",
                                  "keras-layers-outside", "keras-layers-inside"]),
    "jax": ("jax", ["keras-layers-outside", "keras-layers-inside"]),
    "keras-torch": ("torch", ["keras-layers-inside", "torch-dataloader-0", "torch-dataloader-2",
                              "torch-dataloader-0@keras-torch"]),
}
# Keras layers inside the model run on the backend's own ops; measured ulps allowed there
# (see twinbench.pipelines.measure.tolerance_ulps). Everything else: bit for bit.
INSIDE_ULPS = {"tensorflow": 0, "jax": 1, "keras-torch": 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pipeline_data")
    small_images(augment=True).save(folder / "img_aug.npz")
    small_images(augment=False).save(folder / "img_fixed.npz")
    text_data().save(folder / "txt.npz")
    return folder


@pytest.fixture(scope="module", params=list(PROCESSES))
def dumps(request, data_dir, tmp_path_factory) -> tuple[str, Path, list[str]]:
    backend, pipes = PROCESSES[request.param]
    for module in ("keras", backend):
        pytest.importorskip(module)
    out = tmp_path_factory.mktemp(f"batches_{request.param}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    env["KERAS_BACKEND"] = backend
    r = subprocess.run([sys.executable, str(HERE / "pipeline_batches.py"), str(out),
                        str(data_dir), *pipes], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return request.param, out, json.loads(r.stdout.strip().splitlines()[-1])


def batches_of(path: Path, prefix: str = "x") -> list[tuple[np.ndarray, np.ndarray]]:
    with np.load(path) as z:
        n = sum(1 for k in z.files if k.startswith("y"))
        return [(z[f"{prefix}{k}"], z[f"y{k}"]) for k in range(n)]


def test_every_pipeline_yields_the_reference_batches(dumps, data_dir):
    """Same samples, same order, same shifts and flips, same ids: bit for bit, except the
    Keras layers inside a model, which draw their own shifts (each must be an allowed
    one) and compute on the backend's ops (within the measured ulps)."""
    proc, out, names = dumps
    assert len(names) >= 5
    for name in names:
        stem, pipeline, _ = name[:-4].split("__")
        data = PipelineData.load(data_dir / f"{stem}.npz")
        plan = plan_epoch(data, 3, 0)
        got, seen = batches_of(out / name), 0
        n = len(data.y)
        assert [len(y) for _, y in got] == [min(5, n - i) for i in range(0, n, 5)], name
        for x, y in got:
            ids = plan.order[seen:seen + len(y)]
            seen += len(y)
            assert np.array_equal(y, data.y[ids]), name
            ref = reference(data, ids, plan)
            assert x.shape == ref.shape and x.dtype == ref.dtype, name
            if pipeline != "keras-layers-inside" or data.kind == "text":
                assert np.array_equal(x, ref), name
            else:  # own random shifts: each one allowed (only the centre when off)
                assert support_ulps(x, data, ids).max() <= INSIDE_ULPS[proc], name


def test_planned_augmentation_is_really_applied_so_equality_means_something(data_dir):
    """The plan shifts and flips most samples: equal batches are not the identity."""
    data = PipelineData.load(data_dir / "img_aug.npz")
    plan = plan_epoch(data, 3, 0)
    centred = EpochPlan(plan.order, np.full_like(plan.offsets, 2), np.zeros_like(plan.flips))
    moved = [not np.array_equal(reference(data, [i], plan), reference(data, [i], centred))
             for i in range(12)]
    assert sum(moved) >= 9 and plan.flips.any() and not plan.flips.all()


def test_keras_layers_inside_the_model_augment_in_training_only(dumps, data_dir):
    """In-model layers shift samples when training (not all centred), and the compiled
    inference path (`predict_on_batch`, XLA on JAX) leaves them unshifted."""
    proc, out, names = dumps
    inside = [n for n in names if "__keras-layers-inside__" in n and n.startswith("img")]
    if not inside:
        pytest.skip(f"no in-model Keras layers in the {proc} process")
    for name in inside:
        data = PipelineData.load(data_dir / f"{name.split('__')[0]}.npz")
        plan = plan_epoch(data, 3, 0)
        fixed = PipelineData(**{**data.__dict__, "augment": False})
        shifted = 0
        for k, (x, y) in enumerate(batches_of(out / name)):
            ids = plan.order[5 * k:5 * k + len(y)]
            centre = reference(fixed, ids, plan)
            shifted += int((np.abs(x - centre).reshape(len(y), -1).max(axis=1) > 1e-3).sum())
            compiled = batches_of(out / name, "c")[k][0]
            assert support_ulps(compiled, fixed, ids).max() <= INSIDE_ULPS[proc], name
        assert (shifted > 0) == data.augment, name


def test_text_pipelines_match_the_numpy_tokenizer_on_hard_strings(data_dir):
    """Empty and whitespace-only texts become one OOV token; apostrophes, Unicode case
    and non-ASCII separators tokenise as `re.findall` does (checked in the dumps above)."""
    data = PipelineData.load(data_dir / "txt.npz")
    ids = encode(list(data.x[:3]), data.vocab, data.length)
    assert ids[1].tolist() == ids[2].tolist() == [OOV] + [PAD] * 5
    assert (ids[0] > OOV).sum() == 5  # don't, stop, it's, 2, good



@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """A small real run: two pipelines alone and feeding the torch stack."""
    pytest.importorskip("torch")
    from twinbench.pipelines.api import run

    out = tmp_path_factory.mktemp("pipelines_run")
    results = run(tasks=("digits",), stacks=("torch",), threads=1, samples=96, epochs=2,
                  pipeline_epochs=2, pipelines=("numpy", "torch-dataloader-2"), out=out)
    return results, out


def test_a_run_writes_every_measurement_with_its_settings(torch_run):
    from twinbench.results import Results

    out = torch_run[1]
    stored = Results.read(out / "pipelines.json")
    assert [(c.pipeline, c.stack, c.status) for c in stored.cells] == [
        ("numpy", "-", "ok"), ("torch-dataloader-2", "-", "ok"),
        ("numpy", "torch", "ok"), ("torch-dataloader-2", "torch", "ok")]
    for c in stored.cells:
        m = c.metrics
        assert m["samples_per_s"]["median"] > 0 and m["cpu_s_per_1k_samples"] > 0
        assert [e["samples"] for e in m["epochs"]] == [96, 96] and m["epochs_timed"] == 1
        assert c.settings["threads"] == 1 and c.settings["affinity"] == [0]
        assert c.settings["transforms"]["shift_pad"] == 2 and not c.settings["transforms"]["flip"]
        assert c.settings["foreign_modules_loaded"] == []
    alone = stored.cells[1]
    assert alone.equivalence["pass"] and alone.equivalence["bit_identical"]
    assert alone.settings["pipeline_settings"]["num_workers"] == 2
    train = stored.cells[3]
    assert train.params == 34_826 and train.settings["stack"] == "torch"
    assert set(train.metrics) >= {"step_ms", "adapter_step_ms", "between_steps_ms",
                                  "ms_per_step_epoch"}


def test_the_same_batches_train_the_same_model(torch_run):
    """numpy and a 2-worker DataLoader feed the torch twin identical batches, so every
    epoch's training loss is identical to the last bit."""
    a, b = (c.metrics["epochs"] for c in torch_run[0].cells[2:])
    assert [e["train_loss"] for e in a] == [e["train_loss"] for e in b]


def test_report_rows_and_chart_come_from_the_results(torch_run):
    from twinbench.report.pipelines import figure, rows, table

    results, _ = torch_run
    r = rows(results)
    assert [x["same_loss_as_numpy"] for x in r] == [None, None, True, True]
    assert r[1]["equivalence"] == "same, bit for bit" and r[3]["stack"] == "torch"
    assert r[0]["samples_per_s"] == results.cells[0].metrics["samples_per_s"]["median"]
    assert table(results).row_count == 4
    pytest.importorskip("plotly")
    fig = figure(results)
    assert {t.name for t in fig.data} == {"(alone)", "torch"}


def test_a_pydataset_with_workers_trains_like_numpy(tmp_path):
    """Keras 3.15's fit peeks one batch to build an unbuilt loss; from a PyDataset with
    workers that batch was then trained last (order 1..n-1, 0) and the loss differed from
    numpy's. KerasStack.prepare_fit builds it first: the same losses, to the last bit."""
    pytest.importorskip("keras")
    from twinbench.pipelines.api import run

    results = run(tasks=("digits",), stacks=("keras-torch",), threads=1, samples=96,
                  epochs=2, pipelines=("numpy", "keras-pydataset-2"),
                  out=tmp_path, measure="train")
    trained = [c for c in results.cells if c.stack == "keras-torch"]
    assert [c.status for c in trained] == ["ok", "ok"], [c.reason for c in trained]
    a, b = (c.metrics["epochs"] for c in trained)
    assert [e["train_loss"] for e in a] == [e["train_loss"] for e in b]
