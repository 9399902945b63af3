"""Image loaders in their upstream formats (IDX gzip, CIFAR-10 pickle batches in a
tar.gz), the restricted unpickler, and safe tar extraction. The tests write small files
in each format; the real MNIST test files are used where ../shared/data exists."""

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from twinbench.data import image_sets
from twinbench.data.download import DataError, Remote, safe_extract
from twinbench.data.registry import load_dataset
from twinbench.data.safe_pickle import UnsafePickleError, restricted_loads

# ../shared/data beside the project root; TWINBENCH_SHARED_DATA points elsewhere (a worktree)
SHARED = Path(os.environ.get("TWINBENCH_SHARED_DATA")
              or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason="../shared/data is absent")


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX: 0, 0, dtype 0x08 (ubyte), ndim, big-endian int32 dims, then the values."""
    header = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, ">i4").tobytes()
    return header + a.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int, n_test: int, seed: int = 0) -> dict:
    """Four gzipped IDX files; returns the arrays written (images (N, 28, 28) uint8)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[prefix] = (rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
        for kind, a in zip(("images-idx3", "labels-idx1"), arrays[prefix]):
            (folder / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(idx_bytes(a)))
    return arrays


def pin_idx(monkeypatch, folder: Path, name: str = "mnist") -> None:
    for f in folder.glob("*-ubyte.gz"):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        monkeypatch.setitem(image_sets.REMOTES, f"{name}:{f.name}",
                            Remote(f.name, "http://127.0.0.1:1/unused", "sha256", digest))


def test_idx_header_dims_and_values_are_parsed():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert np.array_equal(image_sets.parse_idx(idx_bytes(a), "t"), a)
    with pytest.raises(DataError, match="not an IDX file"):
        image_sets.parse_idx(b"\x00\x00\x0d\x01" + b"\0" * 8, "floats")  # 0x0d: float32
    with pytest.raises(DataError, match=r"header says \(2, 3, 4\), the file holds 23"):
        image_sets.parse_idx(idx_bytes(a)[:-1], "truncated")


def test_mnist_train_and_test_files_in_idx_format(tmp_path, monkeypatch):
    arrays = write_idx_set(tmp_path, n_train=30, n_test=20)
    pin_idx(monkeypatch, tmp_path)
    d = load_dataset("mnist", seed=0, data_dir=tmp_path)
    assert d.x_train.shape == (30, 28, 28, 1) and d.x_test.shape == (20, 28, 28, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert np.array_equal(d.x_train[..., 0] * 255.0, arrays["train"][0])  # / 255, exact
    assert np.array_equal(d.y_test, arrays["t10k"][1])
    assert d.provenance["split"] == "upstream train/test"
    assert len(d.provenance["files"]) == 4
    assert d.provenance["checksums"]["t10k-images-idx3-ubyte.gz"].startswith("sha256 ")


def test_a_test_only_folder_needs_holdout_and_is_split_stratified(tmp_path, monkeypatch):
    write_idx_set(tmp_path, n_train=10, n_test=100)
    for f in tmp_path.glob("train-*"):
        f.unlink()
    pin_idx(monkeypatch, tmp_path, "fashion-mnist")
    with pytest.raises(DataError, match="pass --holdout 0.2"):
        load_dataset("fashion-mnist", seed=0, data_dir=tmp_path)
    d = load_dataset("fashion-mnist", seed=0, data_dir=tmp_path, holdout=0.2)
    assert len(d.y_train) == 80 and len(d.y_test) == 20
    assert np.bincount(d.y_test).tolist() == [2] * 10  # stratified
    assert d.provenance["split"] == "stratified 80%/20% of the 100 upstream test samples, seed 0"
    assert [Path(f).name for f in d.provenance["files"]] == ["t10k-images-idx3-ubyte.gz",
                                                              "t10k-labels-idx1-ubyte.gz"]
    again = load_dataset("fashion-mnist", seed=0, data_dir=tmp_path, holdout=0.2)
    assert np.array_equal(d.x_test, again.x_test)
    other = load_dataset("fashion-mnist", seed=1, data_dir=tmp_path, holdout=0.2)
    assert not np.array_equal(d.y_train, other.y_train)


@needs_shared
def test_real_mnist_test_set_split_8k_2k():
    d = load_dataset("mnist", seed=0, data_dir=SHARED / "mnist", holdout=0.2)
    assert d.x_train.shape == (8000, 28, 28, 1) and d.x_test.shape == (2000, 28, 28, 1)
    full = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert full.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.abs(np.bincount(d.y_test) - 0.2 * full).max() <= 1  # stratified
    assert 0.12 < d.x_train.mean() < 0.14 and d.x_train.max() == 1.0


@needs_shared
def test_real_fashion_mnist_labels_parse():
    labels = image_sets.read_idx(SHARED / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    assert np.bincount(labels).tolist() == [1000] * 10


def cifar_batch(n: int, seed: int, protocol: int = 2) -> tuple[bytes, np.ndarray, list]:
    """A batch as CIFAR-10 ships it: a dict of bytes keys, `data` uint8 (n, 3072) in
    (C, H, W) order, `labels` a list of ints."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [(seed + i // 2) % 10 for i in range(n)]  # each label twice: stratifiable
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": labels, b"data": data,
             b"filenames": [b"img_%d.png" % i for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol), data, labels


def write_cifar(path: Path, n: int = 4) -> dict:
    """The archive's layout: cifar-10-batches-py/data_batch_1..5 and test_batch."""
    written = {}
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate([*image_sets.CIFAR_TRAIN, "test_batch"]):
            raw, data, labels = cifar_batch(n, seed=i)
            written[name] = (data, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return written


def pin_cifar(monkeypatch, path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(image_sets.REMOTES, "cifar10",
                        Remote(path.name, "http://127.0.0.1:1/unused", "sha256", digest))


def test_cifar10_pickle_batches_from_the_tar_gz(tmp_path, monkeypatch):
    written = write_cifar(tmp_path / "cifar-10-python.tar.gz")
    pin_cifar(monkeypatch, tmp_path / "cifar-10-python.tar.gz")
    d = load_dataset("cifar10", seed=0, data_dir=tmp_path)
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    data, labels = written["test_batch"]
    # pixel (h=1, w=2) of channel c of image 0 is data[0, c*1024 + 1*32 + 2]
    assert [d.x_test[0, 1, 2, c] * 255.0 for c in range(3)] == [
        float(data[0, c * 1024 + 34]) for c in range(3)]
    assert d.y_test.tolist() == labels
    assert d.y_train[4:8].tolist() == written["data_batch_2"][1]  # batches in order
    held = load_dataset("cifar10", seed=0, data_dir=tmp_path, holdout=0.5)
    assert len(held.y_train) == 2 and len(held.y_test) == 2
    assert held.provenance["members"] == ["cifar-10-batches-py/test_batch"]


def test_cifar_batch_written_by_python3_protocol2_loads():
    """Python 3's protocol 2 stores bytes as _codecs.encode(str, 'latin1')."""
    raw, _, labels = cifar_batch(3, seed=5, protocol=2)
    assert b"_codecs" in raw
    images, y = image_sets.read_cifar_batch(raw, "batch")
    assert images.shape == (3, 32, 32, 3) and y.tolist() == labels


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """The bytes Python 2's cPickle (protocol 2) writes for a CIFAR batch, assembled
    opcode by opcode: str is BINSTRING (bytes in Python 3), the array refers to
    `numpy.core.multiarray._reconstruct`, and no `_codecs` appears."""
    def s(b: bytes) -> bytes:  # SHORT_BINSTRING
        return b"U" + bytes([len(b)]) + b

    def k(i: int) -> bytes:  # BININT1 / BININT2
        return b"K" + bytes([i]) if i < 256 else b"M" + i.to_bytes(2, "little")

    n, width = data.shape
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + k(0) + k(1) + b"\x87R(" + k(3) + s(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff" + k(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + k(0)
             + b"\x85" + s(b"b") + b"\x87R(" + k(1) + k(n) + k(width) + b"\x86" + dtype
             + b"\x89T" + len(data.tobytes()).to_bytes(4, "little") + data.tobytes() + b"tb")
    label_list = b"](" + b"".join(k(v) for v in labels) + b"e"
    return (b"\x80\x02}(" + s(b"batch_label") + s(b"testing batch 1 of 1") + s(b"data")
            + array + s(b"labels") + label_list + b"u.")


def test_a_python2_cpickle_batch_loads_as_upstream_writes_it():
    data = np.random.default_rng(3).integers(0, 256, (2, 3072), dtype=np.uint8)
    raw = py2_cifar_pickle(data, [7, 1])
    assert b"_codecs" not in raw and b"numpy.core.multiarray" in raw
    batch = pickle.loads(raw, encoding="bytes")  # the stock loader agrees on the format
    assert batch[b"batch_label"] == b"testing batch 1 of 1"
    images, y = image_sets.read_cifar_batch(raw, "py2 batch")
    assert np.array_equal(images, data.reshape(2, 3, 32, 32).transpose(0, 2, 3, 1))
    assert y.tolist() == [7, 1]


class Exploit:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_restricted_unpickler_refuses_a_malicious_pickle(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": Exploit(marker), b"labels": [1]}, protocol=protocol)
    pickle.loads(pickle.dumps(Exploit(tmp_path / "control")))  # the exploit is real
    assert (tmp_path / "control").exists()
    with pytest.raises(UnsafePickleError, match=r"refers to posix\.system, which is not "
                                                r"allowed; allowed: numpy\.core"):
        restricted_loads(evil)
    assert not marker.exists()


def test_restricted_unpickler_refuses_object_arrays_and_other_codecs(tmp_path):
    with pytest.raises(UnsafePickleError, match="object dtype"):
        restricted_loads(pickle.dumps(np.array([1, "a"], dtype=object), protocol=2))
    with pytest.raises(UnsafePickleError, match="not allowed"):
        restricted_loads(pickle.dumps(Path("x"), protocol=2))


def test_a_malicious_cifar_batch_is_a_one_line_data_error(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        payload = pickle.dumps({b"data": Exploit(marker), b"labels": []}, protocol=2)
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    pin_cifar(monkeypatch, path)
    with pytest.raises(DataError, match=r"test_batch: pickle refers to posix\.system"):
        load_dataset("cifar10", seed=0, data_dir=tmp_path, holdout=0.2)
    assert not marker.exists()


def _tar(path: Path, members: list[tarfile.TarInfo]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_safe_extract_writes_the_selected_members(tmp_path):
    _tar(tmp_path / "a.tar.gz", [_file("top/keep/a.txt"), _file("top/skip/b.txt"),
                                 _link("top/keep/ln", "a.txt")])
    out = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out",
                       select=lambda m: "/keep/" in m.name)
    assert (out / "top" / "keep" / "a.txt").read_bytes() == b"x"
    assert not (out / "top" / "skip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp


@pytest.mark.parametrize("member, why", [
    (_file("../escape.txt"), "its path leaves the target folder"),
    (_file("/abs.txt"), "its path leaves the target folder"),
    (_file("a/../../escape.txt"), "its path leaves the target folder"),
    (_link("ln", "/etc/passwd"), "it links to '/etc/passwd', outside"),
    (_link("d/ln", "../../outside"), "it links to '../../outside', outside"),
    (_link("hard", "../outside", tarfile.LNKTYPE), "it links to '../outside', outside"),
    (_link("dev", "", tarfile.CHRTYPE), "it is not a regular file or folder"),
])
def test_safe_extract_refuses_traversal_links_and_devices(tmp_path, member, why):
    _tar(tmp_path / "evil.tar.gz", [_file("ok.txt"), member])
    with pytest.raises(DataError, match=f"member {member.name!r} refused: {why}"):
        safe_extract(tmp_path / "evil.tar.gz", tmp_path / "box" / "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["box", "evil.tar.gz"]
