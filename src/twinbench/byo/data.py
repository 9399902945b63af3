"""Your own data (`--data`): an .npz of arrays, an image folder, or a CSV/TSV of texts.

- `file.npz`: x_train, y_train, x_test, y_test; or x, y split with `--holdout`
  (stratified, seeded). Images are (N, H, W[, C]) float in [0, 1] or uint8 (divided by
  255); texts are (N, L) integer ids with 0 for padding.
- `DIR`: one subfolder per class, images read with Pillow, resized to --image-size.
- `file.csv` / `file.tsv`: a header row, a text column and a label column, tokenised
  and encoded by twinbench's own tokenizer (twinbench.data.text).

Every problem is a one-line `ByoError` naming the file: missing arrays, shapes that do
not match, a non-numeric dtype, NaN or inf, labels that are not integers in 0..K-1, a
class with no training sample. The SHA-256 of the input goes into each cell's `data`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from twinbench.byo.source import ByoError, sha256_file
from twinbench.data.dataset import Dataset

MAX_NPZ_BYTES = 8 << 30  # a link to /dev/zero or a sparse giant stops here


def data_name(path: Path) -> str:
    """A dataset name from the file or folder name, its suffix kept ("mnist.npz" ->
    "mnist-npz", never a built-in set's name): lower case, [a-z0-9-]."""
    return re.sub(r"[^a-z0-9]+", "-", Path(path).name.lower()).strip("-") or "data"


def _npz_arrays(path: Path) -> tuple[tuple[np.ndarray, ...], str]:
    """(x_train, y_train, x_test, y_test) or (x, y), and which form."""
    if not path.is_file():
        raise ByoError(f"--data {path}: no such file or folder")
    if path.suffix.lower() != ".npz":
        raise ByoError(f"--data {path}: expected a .npz, .csv or .tsv file or an image folder")
    if path.stat().st_size > MAX_NPZ_BYTES:
        raise ByoError(f"--data {path}: over {MAX_NPZ_BYTES >> 30} GiB")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if {"x_train", "y_train", "x_test", "y_test"} <= names:
                return tuple(z[k] for k in ("x_train", "y_train", "x_test", "y_test")), "split"
            if {"x", "y"} <= names:
                return (z["x"], z["y"]), "whole"
    except (OSError, ValueError) as e:  # not a zip, an object array (pickle refused)
        raise ByoError(f"--data {path}: cannot be read as .npz ({str(e).splitlines()[0]})") \
            from None
    raise ByoError(f"--data {path}: holds {sorted(names) or 'no arrays'}; expected x_train, "
                   "y_train, x_test, y_test (or x, y with --holdout)")


def _check_x(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "fiub":
        raise ByoError(f"--data {path}: {name} has dtype {x.dtype}; expected numbers")
    if len(x) == 0:
        raise ByoError(f"--data {path}: {name} is empty")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ByoError(f"--data {path}: {name} holds NaN or inf")
    if x.ndim == 2 and x.dtype.kind in "iu":  # token ids
        if x.min() < 0:
            raise ByoError(f"--data {path}: {name} holds negative token ids")
        return x.astype(np.int64)
    if x.ndim == 3:  # (N, H, W): one channel
        x = x[..., None]
    if x.ndim != 4:
        raise ByoError(f"--data {path}: {name} has shape {x.shape}; expected images "
                       "(N, H, W[, C]) or token ids (N, L) of integers")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    return x.astype(np.float32)


def _check_y(path: Path, name: str, y: np.ndarray, n: int) -> np.ndarray:
    y = np.squeeze(y, axis=1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != n:
        raise ByoError(f"--data {path}: {name} has shape {y.shape}; expected ({n},), one "
                       "label per sample")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise ByoError(f"--data {path}: {name} holds labels that are not integers")
    elif y.dtype.kind not in "iu":
        raise ByoError(f"--data {path}: {name} has dtype {y.dtype}; expected integer labels")
    if len(y) and y.min() < 0:
        raise ByoError(f"--data {path}: {name} holds negative labels ({int(y.min())})")
    return y.astype(np.int64)


def check_classes(path: Path, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """Classes 0..K-1 with K = the largest label + 1; each must have training samples."""
    k = int(max(y_train.max(), y_test.max())) + 1
    if k < 2:
        raise ByoError(f"--data {path}: only one class (label 0); expected at least 2")
    empty = sorted(set(range(k)) - set(np.unique(y_train).tolist()))
    if empty:
        raise ByoError(f"--data {path}: class {empty[0]} has no training sample (labels "
                       f"must be 0..{k - 1}); empty classes: {empty[:5]}")
    return k


def split(path: Path, x: np.ndarray, y: np.ndarray, holdout: float | None, seed: int
          ) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    if holdout is None:
        raise ByoError(f"--data {path}: holds x and y without a test split; pass --holdout "
                       "0.2 to split them")
    try:
        return tuple(train_test_split(x, y, test_size=holdout, stratify=y, random_state=seed))
    except ValueError as e:  # a class too small to stratify
        raise ByoError(f"--data {path}: cannot split with --holdout {holdout} ({e})") from None


def load_npz(path: Path, seed: int, holdout: float | None) -> Dataset:
    arrays, form = _npz_arrays(path)
    if form == "whole":
        x = _check_x(path, "x", arrays[0])
        y = _check_y(path, "y", arrays[1], len(x))
        x_tr, x_te, y_tr, y_te = split(path, x, y, holdout, seed)
        note = f"stratified {1 - holdout:.0%}/{holdout:.0%}, seed {seed}"
    else:
        x_tr, x_te = (_check_x(path, k, a) for k, a in (("x_train", arrays[0]),
                                                       ("x_test", arrays[2])))
        y_tr = _check_y(path, "y_train", arrays[1], len(x_tr))
        y_te = _check_y(path, "y_test", arrays[3], len(x_te))
        note = "the file's own train/test"
    if x_tr.shape[1:] != x_te.shape[1:] or x_tr.dtype != x_te.dtype:
        raise ByoError(f"--data {path}: x_train is {x_tr.shape[1:]} {x_tr.dtype} per sample, "
                       f"x_test {x_te.shape[1:]} {x_te.dtype}; they must match")
    k = check_classes(path, y_tr, y_te)
    prov = {"files": [str(path)], "sha256": sha256_file(path), "format": "npz", "split": note}
    if x_tr.ndim == 2:
        prov.update(vocab_size=int(max(x_tr.max(), x_te.max())) + 1,
                    sequence_length=int(x_tr.shape[1]))
    return Dataset(data_name(path), x_tr, y_tr, x_te, y_te, k, prov)
