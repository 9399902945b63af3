"""Image data sets in their upstream formats: MNIST and Fashion-MNIST (IDX, gzip) and
CIFAR-10 (python pickle batches in `cifar-10-python.tar.gz`).

Every file comes from its upstream URL (pinned checksum, cached) or from `--data-dir`
(checked, never downloaded). With `holdout`, only the test files are read and split,
stratified and seeded: a folder that holds just the test set (as `t10k-*` only) is then
enough. The provenance records the files, their pins and the split.

Pins (SHA-256 unless noted):
- MNIST and Fashion-MNIST: torchvision's prototype datasets (`mnist.py`, `_CHECKSUMS`);
  the test files and the training labels are also byte-identical to the verified copies
  in the project's shared data (their MD5s are the ones torchvision's MNIST pins).
- CIFAR-10: the archive's SHA-256 as listed with the shared data (170,498,071 bytes).
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import numpy as np

from twinbench.data.dataset import Dataset
from twinbench.data.download import DataError, Remote, locate
from twinbench.data.safe_pickle import UnsafePickleError, restricted_loads

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
PINS = {
    "mnist": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
              "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
              "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    "fashion-mnist": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                      "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                      "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                      "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}
BASE_URLS = {"mnist": MNIST_URL, "fashion-mnist": FASHION_URL}
REMOTES: dict[str, Remote] = {
    f"{name}:{f}": Remote(f, BASE_URLS[name] + f, "sha256", digest)
    for name, digests in PINS.items() for f, digest in zip(IDX_FILES, digests)
}
REMOTES["cifar10"] = Remote("cifar-10-python.tar.gz", CIFAR_URL, "sha256",
                            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")

IDX_DTYPES = {0x08: np.uint8}  # MNIST-family files use unsigned bytes only
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def parse_idx(raw: bytes, source: str) -> np.ndarray:
    """IDX: 2 zero bytes, a dtype byte, the number of dims, big-endian int32 dims, data."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES:
        raise DataError(f"{source}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    body = np.frombuffer(raw, IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{source}: header says {dims}, the file holds {body.size} values")
    return body.reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
    return parse_idx(raw, str(path))


def _idx_pair(name: str, prefix: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray,
                                                                      list[Path]]:
    """(images (N, 28, 28, 1) float32 in [0, 1], labels int64, the two files)."""
    img_path = locate(REMOTES[f"{name}:{prefix}-images-idx3-ubyte.gz"], data_dir, name)
    lab_path = locate(REMOTES[f"{name}:{prefix}-labels-idx1-ubyte.gz"], data_dir, name)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{img_path}: images {images.shape} do not match labels {labels.shape}")
    x = to_unit(images)[..., None]
    return x, labels.astype(np.int64), [img_path, lab_path]


def _pins(name: str, files: list[Path]) -> dict[str, str]:
    """{file name: "<algo> <digest>"}: which hash each file was checked against."""
    return {p.name: f"{r.algo} {r.digest}" for p in files
            for r in (REMOTES[f"{name}:{p.name}"],)}


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], in place after the one copy."""
    x = images.astype(np.float32)
    x /= 255.0
    return x


def holdout_split(x: np.ndarray, y: np.ndarray, holdout: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded split of what is there: `holdout` of it is the test set."""
    from sklearn.model_selection import train_test_split

    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=holdout, stratify=y,
                                                  random_state=seed)
    except ValueError as e:  # e.g. a class with one sample cannot be stratified
        raise DataError(f"cannot split {len(y)} samples with --holdout {holdout}: "
                        f"{str(e).splitlines()[0]}") from None
    return np.ascontiguousarray(x_tr), y_tr, np.ascontiguousarray(x_te), y_te


def split_note(holdout: float, seed: int, n: int, source: str) -> str:
    return (f"stratified {1 - holdout:.0%}/{holdout:.0%} of the {n:,} {source} samples, "
            f"seed {seed}")


def load_idx_set(name: str, seed: int, data_dir: Path | None, holdout: float | None
                 ) -> Dataset:
    """MNIST or Fashion-MNIST: 28x28x1 in [0, 1], 10 classes."""
    x_te, y_te, files = _idx_pair(name, "t10k", data_dir)
    if holdout is not None:
        x_tr, y_tr, x_te, y_te = holdout_split(x_te, y_te, holdout, seed)
        split = split_note(holdout, seed, len(y_tr) + len(y_te), "upstream test")
    else:
        if data_dir is not None and not (Path(data_dir) / IDX_FILES[0]).is_file():
            raise DataError(f"{name}: {IDX_FILES[0]} not in {data_dir}; pass --holdout 0.2 "
                            "to split the test files instead")
        x_tr, y_tr, train_files = _idx_pair(name, "train", data_dir)
        files = train_files + files
        split = "upstream train/test"
    return Dataset(name, x_tr, y_tr, x_te, y_te, 10, provenance={
        "files": [str(p) for p in files], "checksums": _pins(name, files), "split": split,
        "transform": "uint8 / 255, NHWC (28, 28, 1)"})


def read_cifar_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (images (N, 32, 32, 3) uint8, labels int64)."""
    try:
        batch = restricted_loads(raw)
        data, labels = batch[b"data"], batch[b"labels"]
    except UnsafePickleError as e:
        raise DataError(f"{source}: {e}") from None
    except (KeyError, TypeError, EOFError, ValueError) as e:
        raise DataError(f"{source}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{source}: data {data.shape} and {len(labels)} labels are not a batch")
    # rows are 1024 red, 1024 green, 1024 blue values, each plane row-major: (N, C, H, W)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, np.int64)


def _cifar_batches(archive: Path, names: tuple[str, ...]) -> dict[str, tuple]:
    """Read the named batches member by member from the archive (nothing is extracted)."""
    wanted = {f"{CIFAR_DIR}/{n}": n for n in names}
    out: dict[str, tuple] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.name in wanted and m.isfile():
                    out[wanted[m.name]] = read_cifar_batch(tar.extractfile(m).read(),
                                                           f"{archive}:{m.name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: not a readable tar.gz ({e})") from None
    missing = [n for n in names if n not in out]
    if missing:
        raise DataError(f"{archive}: no {CIFAR_DIR}/{missing[0]} in the archive")
    return out


def load_cifar10(seed: int, data_dir: Path | None, holdout: float | None) -> Dataset:
    """CIFAR-10: 32x32x3 in [0, 1], 10 classes; 50,000 train and 10,000 test images."""
    archive = locate(REMOTES["cifar10"], data_dir, "cifar10")
    names = ("test_batch",) if holdout is not None else (*CIFAR_TRAIN, "test_batch")
    batches = _cifar_batches(archive, names)
    x_te, y_te = batches["test_batch"]
    if holdout is not None:
        x_tr, y_tr, x_te, y_te = holdout_split(x_te, y_te, holdout, seed)
        split = split_note(holdout, seed, len(y_tr) + len(y_te), "test_batch")
    else:
        x_tr = np.concatenate([batches[n][0] for n in CIFAR_TRAIN])
        y_tr = np.concatenate([batches[n][1] for n in CIFAR_TRAIN])
        split = "upstream train (data_batch_1..5) / test (test_batch)"
    remote = REMOTES["cifar10"]
    return Dataset("cifar10", to_unit(x_tr), y_tr, to_unit(x_te), y_te, 10, provenance={
                       "files": [str(archive)], "members": [f"{CIFAR_DIR}/{n}" for n in names],
                       "checksums": {remote.filename: f"{remote.algo} {remote.digest}"},
                       "split": split, "transform": "uint8 / 255, NHWC (32, 32, 3)"})
