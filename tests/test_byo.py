"""Bring your own model and data (twinbench.byo): every bad --data case and bad --model
source is one line naming the file; what a model's output implies for its loss; which
stacks a model without a twin skips. In process, no framework imported: fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinbench.byo.data_files import load_user_data
from twinbench.byo.inspect import head_of_outputs
from twinbench.byo.record import ByoRecord
from twinbench.byo.source import ByoError, parse_model
from twinbench.cli import main

RNG = np.random.default_rng(0)


def images(n: int = 20, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    return RNG.random((n, 6, 6, 1), dtype=np.float32), np.arange(n) % classes


def npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "my data.npz"
    np.savez(path, **arrays)
    return path


def split_arrays(**override) -> dict:
    x, y = images()
    return {"x_train": x, "y_train": y, "x_test": x[:6], "y_test": y[:6], **override}


BAD_NPZ = {  # case -> (arrays, what the message must say)
    "missing arrays": ({"x_train": images()[0]}, "expected x_train, y_train"),
    "x and y without --holdout": (dict(zip("xy", images())), "--holdout"),
    "label count": (split_arrays(y_train=np.zeros(3, np.int64)), "one label per sample"),
    "string images": (split_arrays(x_train=np.full((20, 2), "a")), "expected numbers"),
    "one-d images": (split_arrays(x_train=np.zeros(20, np.float32)), "expected images"),
    "NaN": (split_arrays(x_train=np.full((20, 6, 6, 1), np.nan, np.float32)), "NaN or inf"),
    "inf": (split_arrays(x_test=np.full((6, 6, 6, 1), np.inf, np.float32)), "NaN or inf"),
    "float labels": (split_arrays(y_train=np.full(20, 0.5)), "not integers"),
    "negative labels": (split_arrays(y_test=-np.ones(6, np.int64)), "negative labels"),
    "empty class": (split_arrays(y_train=np.arange(20) % 2 * 2), "class 1 has no training"),
    "one class": (split_arrays(y_train=np.zeros(20, np.int64),
                               y_test=np.zeros(6, np.int64)), "only one class"),
    "train/test shapes": (split_arrays(x_test=np.zeros((6, 5, 5, 1), np.float32)),
                          "they must match"),
    "negative ids": (split_arrays(x_train=-np.ones((20, 4), np.int64),
                                  x_test=np.ones((6, 4), np.int64)), "negative token ids"),
}


@pytest.mark.parametrize("case", BAD_NPZ)
def test_bad_npz_is_one_line_naming_the_file(tmp_path, case):
    arrays, expect = BAD_NPZ[case]
    path = npz(tmp_path, **arrays)
    with pytest.raises(ByoError) as e:
        load_user_data(path, seed=0, holdout=None)
    assert str(path) in str(e.value) and expect in str(e.value)
    assert "\n" not in str(e.value)


def test_not_an_npz_and_a_pickled_array_are_refused(tmp_path):
    text = tmp_path / "data.npz"
    text.write_text("not a zip")
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x_train=np.array([{}], dtype=object), y_train=[0], x_test=[0],
             y_test=[0])
    for path in (text, pickled, tmp_path / "missing.npz"):
        with pytest.raises(ByoError, match=str(path.name)):
            load_user_data(path, 0, None)


def test_good_npz_records_its_sha256_and_splits_with_holdout(tmp_path):
    x, y = images(40, 4)
    path = npz(tmp_path, x=(x * 255).astype(np.uint8), y=y)
    data = load_user_data(path, seed=0, holdout=0.25)
    assert data.classes == 4 and len(data.y_test) == 10 and data.x_train.dtype == np.float32
    assert data.x_train.max() <= 1.0 and data.summary()["sha256"] == \
        __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    ids = npz(tmp_path, **split_arrays(x_train=RNG.integers(0, 9, (20, 5)),
                                       x_test=RNG.integers(0, 9, (6, 5))))
    text = load_user_data(ids, 0, None)
    assert text.x_train.dtype == np.int64 and text.provenance["vocab_size"] <= 9


def write_png(path: Path, size: int = 5, mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), 128).save(path)


def test_image_folder_reads_resizes_and_refuses_bad_folders(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "pets"
    for cls in ("cat", "dog"):
        for i in range(5):
            write_png(root / cls / f"{i}.png", size=4 + i)
    data = load_user_data(root, 0, None, image_size=8)
    assert data.x_train.shape[1:] == (8, 8, 1) and data.classes == 2
    assert data.provenance["class_names"] == ["cat", "dog"] and len(data.provenance["sha256"]) == 64
    (root / "dog" / "3.png").write_bytes(b"not an image")
    with pytest.raises(ByoError, match="3.png: not an image"):
        load_user_data(root, 0, None)
    (root / "bird").mkdir()
    with pytest.raises(ByoError, match="'bird' holds no images"):
        load_user_data(root, 0, None)
    single = tmp_path / "single"
    write_png(single / "only" / "a.png")
    with pytest.raises(ByoError, match="at least 2"):
        load_user_data(single, 0, None)


CSV_CASES = {
    "no label column": ("body,words,when\nhello,hi,now\n", "names no text column"),
    "short row": ("text,label\nhello,1\nbye\n", "row 3"),
    "one class": ("text,label\na,0\nb,0\nc,0\n", "only one class"),
    "header only": ("text,label\n", "at least one text"),
    "too few to split": ("text,label\na,0\nb,0\nc,1\n", "at least 2 are needed"),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_bad_csv_is_one_line_naming_the_file(tmp_path, case):
    body, expect = CSV_CASES[case]
    path = tmp_path / "reviews.csv"
    path.write_text(body)
    with pytest.raises(ByoError) as e:
        load_user_data(path, 0, None)
    assert str(path) in str(e.value) and expect in str(e.value) and "\n" not in str(e.value)


def test_csv_and_tsv_are_tokenised_with_named_labels(tmp_path):
    rows = [("a great film", "pos"), ("awful, truly awful", "neg")] * 10
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("label,text\n" + "".join(f'{lab},"{t}"\n' for t, lab in rows))
    tsv_path = tmp_path / "reviews.tsv"
    tsv_path.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    for path in (csv_path, tsv_path):
        data = load_user_data(path, 0, None)
        assert data.x_train.dtype == np.int64 and data.classes == 2
        assert data.provenance["class_names"] == ["neg", "pos"]
        assert data.provenance["format"] == path.suffix[1:]


def test_model_sources_are_checked_without_running_them(tmp_path):
    src = tmp_path / "model.py"
    src.write_text("import nothing_here\n\ndef net():\n    pass\n")
    assert parse_model(f"{src}:net").name == "net"  # the import is not run
    for spec, expect in ((f"{src}:other", "defines no 'other'"), (f"{src}", "path/model.py:NAME"),
                         (f"{tmp_path}/gone.py:net", "no such file"),
                         (f"{tmp_path}/gone.keras", "no such file")):
        with pytest.raises(ByoError, match=expect):
            parse_model(spec)
    bad = tmp_path / "broken.py"
    bad.write_text("def net(:\n")
    with pytest.raises(ByoError, match="not valid Python"):
        parse_model(f"{bad}:net")


def test_cli_bad_model_and_data_are_one_line_exit_2(tmp_path, capsys):
    x, y = images()
    data = npz(tmp_path, x=x, y=y)
    for args, expect in ((["--model", "nope.py:net"], "no such file"),
                         (["--data", str(data)], "--holdout"),
                         (["--data", str(data), "--holdout", "0.25", "--models", "bilstm"],
                          "does not fit")):
        with pytest.raises(SystemExit) as e:
            main(["run", *args, "--dry-run", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and expect in err and len(err.strip().splitlines()) == 1


def test_the_head_a_model_outputs_decides_its_loss():
    z = RNG.standard_normal((4, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert [head_of_outputs(a) for a in (z, p, np.log(p))] == ["logits", "softmax",
                                                                "log_softmax"]


def record(**kw) -> ByoRecord:
    base = dict(name="net", source={}, framework="keras", graph=None, refusal=None,
                variables=[], head="logits", input_shape=[4], input_dtype="float32",
                classes=2, twin_file=None)
    return ByoRecord(**{**base, **kw})


def test_a_model_without_a_twin_skips_only_the_other_frameworks_stacks(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from twinbench.byo import plan

    refused = "Lambda at 'net/double' is not converted; supported: Dense (no PyTorch twin)"
    folder = tmp_path / "byo" / "net__d"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(record(refusal=refused).model_dump_json())
    monkeypatch.setattr(plan, "is_byo", lambda config, model: model == "net")
    p = SimpleNamespace(config=None, out_dir=tmp_path)
    key = ("custom", "d", "net", "torch", 0)
    assert plan.skip_reason(p, key, "torch") == refused
    assert plan.skip_reason(p, key, "keras") is None
    (folder / "model.json").write_text(record(twin_file="twin_torch.py").model_dump_json())
    assert plan.skip_reason(p, key, "torch") is None
    assert json.loads((folder / "model.json").read_text())["head"] == "logits"


def test_a_bias_batchnorm_cancels_is_left_out_of_the_update_checks():
    """In training mode the batch mean cancels a conv bias before a BatchNorm: its update
    is rounding noise (listed, not compared); a real update difference still fails."""
    from twinbench.parity.compare import compare

    init = {"conv/kernel": np.ones(4), "conv/bias": np.zeros(2)}
    ref = {"logits": np.zeros(2), "loss": np.float64(1), "grad:conv/kernel": np.ones(4),
           "grad:conv/bias": np.ones(2), **{f"init:{k}": v for k, v in init.items()},
           "sgd@1:conv/kernel": np.full(4, 0.9), "sgd@1:conv/bias": np.full(2, 1e-9)}
    probe = {**ref, "sgd@1:conv/bias": np.full(2, -3e-9)}
    checks = compare(probe, ref)
    assert checks["sgd_update_rel"]["pass"]
    assert checks["sgd_update_rel"]["noise_only_excluded"] == ["conv/bias"]
    wrong = compare({**probe, "sgd@1:conv/kernel": np.full(4, 0.8)}, ref)
    assert not wrong["sgd_update_rel"]["pass"]


def test_live_models_and_arrays_become_files_the_cells_rebuild_from(tmp_path, monkeypatch):
    """twinbench.run(model=<object>, data=<arrays>): a factory or a class defined at the
    top of a .py file becomes `file.py:NAME`, arrays an .npz; a nested or file-less
    object is refused in one line."""
    import importlib.util

    from twinbench.byo.live import materialize

    src = tmp_path / "mymodels.py"
    src.write_text("class Net:\n    def forward(self, x):\n        return x\n\n\n"
                   "def factory():\n    def inner():\n        pass\n    return inner\n")
    spec = importlib.util.spec_from_file_location("mymodels", src)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(__import__("sys").modules, "mymodels", mod)  # as `import mymodels`
    spec.loader.exec_module(mod)
    x, y = images()
    for model, name in ((mod.Net(), "Net"), (mod.Net, "Net"), (mod.factory, "factory")):
        out = materialize({"model": model, "data": (x, y, x, y)}, tmp_path / "run")
        assert out["model"] == f"{src}:{name}"
        assert sorted(np.load(out["data"]).files) == ["x_test", "x_train", "y_test", "y_train"]
    with pytest.raises(ByoError, match="not at the top level"):
        materialize({"model": mod.factory()}, tmp_path / "run")
    with pytest.raises(ByoError, match="expected \\(x_train"):
        materialize({"data": (x,)}, tmp_path / "run")
