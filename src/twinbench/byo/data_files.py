"""`--data DIR` (an image folder) and `--data file.csv|tsv` (texts with labels).

Image folder: one subfolder per class (sorted names are classes 0..K-1), images read
with Pillow as grey (if every image is) or RGB, resized to --image-size square
(bilinear), scaled to [0, 1]. Text table: a header row naming a text column ("text",
"sentence", "review", "content") and a label column ("label", "class", "category",
"target", "y"), or exactly two columns; labels that are all integers are class ids,
otherwise their sorted names are. Texts are tokenised and encoded by twinbench's own
tokenizer (twinbench.data.text) with the vocabulary built on the training split.
Neither holds a test split: --holdout (default 0.2) splits them, stratified and seeded.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from twinbench.byo.data import check_classes, data_name, load_npz, split
from twinbench.byo.source import ByoError, sha256_file
from twinbench.data.dataset import Dataset
from twinbench.data.download import DataError, read_local

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_BYTES = 64 << 20  # one image file
TABLE_BYTES = 2 << 30
DEFAULT_IMAGE_SIZE = 32
DEFAULT_HOLDOUT = 0.2
TEXT_COLUMNS = ("text", "sentence", "review", "content", "message")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")


def _class_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise ByoError(f"--data {root}: expected one subfolder per class (at least 2), "
                       f"found {len(folders)}")
    return folders


def _read_image(root: Path, rel: Path, size: int):
    from PIL import Image, UnidentifiedImageError

    try:
        raw = read_local(root, rel, IMAGE_BYTES)
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            return im.convert("RGB" if im.mode not in ("L", "1", "I;16", "I") else "L") \
                .resize((size, size), Image.Resampling.BILINEAR), raw
    except DataError as e:
        raise ByoError(f"--data {root}: {e}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ByoError(f"--data {root / rel}: not an image Pillow can read "
                       f"({type(e).__name__})") from None


def load_image_folder(root: Path, seed: int, holdout: float | None,
                      image_size: int | None) -> Dataset:
    size = image_size or DEFAULT_IMAGE_SIZE
    images, labels, digest = [], [], hashlib.sha256()
    for k, folder in enumerate(_class_folders(root)):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ByoError(f"--data {root}: class folder {folder.name!r} holds no images "
                           f"({', '.join(IMAGE_SUFFIXES)})")
        for p in files:
            im, raw = _read_image(root, p.relative_to(root), size)
            digest.update(f"{p.relative_to(root)}\0".encode() + hashlib.sha256(raw).digest())
            images.append(im)
            labels.append(k)
    grey = all(im.mode == "L" for im in images)
    x = np.stack([np.asarray(im if grey else im.convert("RGB"), dtype=np.uint8)
                  for im in images])
    x = (x[..., None] if grey else x).astype(np.float32) / np.float32(255)
    y = np.asarray(labels, dtype=np.int64)
    frac = holdout or DEFAULT_HOLDOUT
    x_tr, x_te, y_tr, y_te = split(root, x, y, frac, seed)
    k = check_classes(root, y_tr, y_te)
    prov = {"files": [str(root)], "sha256": digest.hexdigest(), "format": "image folder",
            "sha256_of": "each image's relative path and SHA-256, in sorted order",
            "class_names": [f.name for f in _class_folders(root)], "image_size": size,
            "channels": 1 if grey else 3, "split": f"stratified {1 - frac:.0%}/{frac:.0%}, "
                                                   f"seed {seed}"}
    return Dataset(data_name(root), x_tr, y_tr, x_te, y_te, k, prov)


def _columns(path: Path, header: list[str]) -> tuple[int, int]:
    """(text column, label column) by name, or the two columns of a two-column table."""
    low = [h.strip().lower() for h in header]
    text = next((low.index(c) for c in TEXT_COLUMNS if c in low), None)
    label = next((low.index(c) for c in LABEL_COLUMNS if c in low), None)
    if text is None and label is None and len(low) == 2:
        return 0, 1
    if text is None or label is None:
        raise ByoError(f"--data {path}: the header {header} names no text column "
                       f"({', '.join(TEXT_COLUMNS)}) and label column "
                       f"({', '.join(LABEL_COLUMNS)})")
    return text, label


def _rows(path: Path) -> tuple[list[str], list[str]]:
    if path.stat().st_size > TABLE_BYTES:
        raise ByoError(f"--data {path}: over {TABLE_BYTES >> 30} GiB")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ByoError(f"--data {path}: cannot be read as UTF-8 "
                       f"{'TSV' if delimiter == chr(9) else 'CSV'} ({e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ByoError(f"--data {path}: expected a header row and at least one text")
    t, lab = _columns(path, rows[0])
    texts, labels = [], []
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(rows[0]) or not r[lab].strip():
            raise ByoError(f"--data {path}: row {i} has {len(r)} fields (the header has "
                           f"{len(rows[0])}) or an empty label")
        texts.append(r[t])
        labels.append(r[lab].strip())
    return texts, labels


def _label_ids(path: Path, labels: list[str]) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels as they are; names as their sorted order (names recorded)."""
    try:
        return np.asarray([int(v) for v in labels], dtype=np.int64), None
    except ValueError:
        names = sorted(set(labels))
        index = {n: i for i, n in enumerate(names)}
        return np.asarray([index[v] for v in labels], dtype=np.int64), names


def load_text_table(path: Path, seed: int, holdout: float | None) -> Dataset:
    from twinbench.data.text_sets import RawText, to_dataset

    texts, raw_labels = _rows(path)
    y, names = _label_ids(path, raw_labels)
    if y.min() < 0:
        raise ByoError(f"--data {path}: negative label {int(y.min())}")
    check_classes(path, y, y)
    counts = np.bincount(y)
    if counts.min() < 2:
        raise ByoError(f"--data {path}: class {int(counts.argmin())} has "
                       f"{int(counts.min())} text; at least 2 are needed to split")
    lengths = sorted(len(t.split()) for t in texts)
    length = int(min(max(lengths[int(0.95 * (len(lengths) - 1))], 8), 256))
    raw = RawText(texts, y, None, None, int(y.max()) + 1, [str(path)])
    data = to_dataset(data_name(path), raw, seed, length, holdout or DEFAULT_HOLDOUT)
    check_classes(path, data.y_train, data.y_test)
    data.provenance.update(sha256=sha256_file(path), format=path.suffix.lower()[1:],
                           sequence_length_rule="95th percentile of word counts, 8..256",
                           **({"class_names": names} if names else {}))
    return data


def load_user_data(path: Path, seed: int, holdout: float | None,
                   image_size: int | None = None) -> Dataset:
    """--data, by what it is: an image folder, a CSV/TSV text table, or an npz file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return load_image_folder(path, seed, holdout, image_size)
    if path.suffix.lower() in (".csv", ".tsv"):
        return load_text_table(path, seed, holdout)
    return load_npz(path, seed, holdout)
