"""Text data sets in their upstream formats, and the task-level dataset they become.

Real sets come from their upstream URL (pinned checksum, cached) or from `--data-dir`.
When a source has no test split (SMS Spam), or when `--holdout` asks to split what a
folder holds (e.g. only AG News's test.csv), the split is stratified and seeded.
"""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinbench.data import synthetic
from twinbench.data.dataset import Dataset
from twinbench.data.download import DataError, Remote, cache_dir, locate
from twinbench.data.download import read_local, safe_extract
from twinbench.data.text import TOKEN_PATTERN, Vocabulary, encode

UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip"
AG = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
TREC = "https://cogcomp.seas.upenn.edu/Data/QA/QC/"
IMDB = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
REVIEW_BYTES = 1 << 20  # one IMDB review; the longest upstream one is under 14 KB

REMOTES = {  # pins: SHA-256 from shared checksums / upstream loaders; MD5 from torchtext
    "sms_zip": Remote("smsspamcollection.zip", UCI, "sha256",
                      "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3"),
    "sms_tsv": Remote("SMSSpamCollection", UCI, "sha256",
                      "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"),
    "ag_train": Remote("train.csv", AG + "train.csv", "md5", "b1a00f826fdfbd249f79597b59e1dc12"),
    "ag_test": Remote("test.csv", AG + "test.csv", "sha256",
                      "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699"),
    "trec_train": Remote("train_5500.label", TREC + "train_5500.label", "sha256",
                         "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3"),
    "trec_test": Remote("TREC_10.label", TREC + "TREC_10.label", "sha256",
                        "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e"),
    # IMDB: the SHA-256 that several independent loaders pin (Julia DataDeps
    # registrations, GoMLX's IMDB example, Rust dataset crates); torchtext pins MD5
    # 7c2ac02c03563afcf9b574c7e56c153a for the same file. Not verified here (84 MB).
    "imdb": Remote("aclImdb_v1.tar.gz", IMDB, "sha256",
                   "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"),
}


@dataclass
class RawText:
    """Texts and labels; `test_texts` is None when the source has no test split."""

    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str] | None
    test_labels: np.ndarray | None
    classes: int
    files: list[str] = field(default_factory=list)


def parse_sms(text: str) -> tuple[list[str], np.ndarray]:
    """`label<TAB>message` lines; quoting off (stray quotes would merge lines)."""
    rows = [r for r in csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE) if r]
    bad = [r for r in rows if len(r) != 2 or r[0] not in ("ham", "spam")]
    if bad:
        raise DataError(f"SMSSpamCollection: unexpected row {bad[0][:2]!r}")
    return [r[1] for r in rows], np.array([r[0] == "spam" for r in rows], dtype=np.int64)


def load_sms(data_dir: Path | None, holdout: float | None) -> RawText:
    if data_dir is not None and (Path(data_dir) / "SMSSpamCollection").is_file():
        path = locate(REMOTES["sms_tsv"], data_dir, "sms-spam")
        text = path.read_text(encoding="utf-8")
    else:
        path = locate(REMOTES["sms_zip"], data_dir, "sms-spam")
        with zipfile.ZipFile(path) as z:
            text = z.read("SMSSpamCollection").decode("utf-8")
    texts, labels = parse_sms(text)
    return RawText(texts, labels, None, None, 2, [str(path)])


def parse_ag(path: Path) -> tuple[list[str], np.ndarray]:
    """`"class","title","description"`, classes 1..4, RFC-4180 quoting, no header."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    try:
        labels = np.array([int(r[0]) - 1 for r in rows], dtype=np.int64)
    except (ValueError, IndexError):
        raise DataError(f"{path}: not AG News CSV (class,title,description)") from None
    return [f"{r[1]} {r[2]}".replace("\\", " ") for r in rows], labels


def load_ag(data_dir: Path | None, holdout: float | None) -> RawText:
    test_path = locate(REMOTES["ag_test"], data_dir, "ag-news")
    test = parse_ag(test_path)
    if holdout is not None:  # split what is there (e.g. a folder with test.csv only)
        return RawText(*test, None, None, 4, [str(test_path)])
    if data_dir is not None and not (Path(data_dir) / "train.csv").is_file():
        raise DataError(f"ag-news: train.csv not in {data_dir}; pass --holdout 0.2 to "
                        "split test.csv instead")
    train_path = locate(REMOTES["ag_train"], data_dir, "ag-news")
    return RawText(*parse_ag(train_path), *test, 4, [str(train_path), str(test_path)])


def parse_trec(path: Path) -> tuple[list[str], list[str]]:
    """`COARSE:fine question`; latin-1 (the train file is not valid UTF-8)."""
    lines = [ln for ln in path.read_text(encoding="latin-1").splitlines() if ln.strip()]
    coarse = [ln.split(":", 1)[0] for ln in lines]
    return [ln.split(" ", 1)[1] if " " in ln else "" for ln in lines], coarse


def load_trec(data_dir: Path | None, holdout: float | None) -> RawText:
    tr_path = locate(REMOTES["trec_train"], data_dir, "trec")
    te_path = locate(REMOTES["trec_test"], data_dir, "trec")
    (tr, tr_c), (te, te_c) = parse_trec(tr_path), parse_trec(te_path)
    names = sorted(set(tr_c))
    idx = {c: i for i, c in enumerate(names)}
    return RawText(tr, np.array([idx[c] for c in tr_c]), te, np.array([idx[c] for c in te_c]),
                   len(names), [str(tr_path), str(te_path)])


def _imdb_review(m: tarfile.TarInfo) -> bool:
    """The labelled reviews, `aclImdb/{train,test}/{neg,pos}/*.txt` (not the 50,000 unsup)."""
    parts = m.name.split("/")
    return (m.isfile() and len(parts) == 4 and parts[0] == "aclImdb"
            and parts[1] in ("train", "test") and parts[2] in ("neg", "pos"))


def _imdb_folder(archive: Path) -> Path:
    """The archive's labelled reviews, extracted once (safely) into the cache, in a
    folder named by the archive's pin so another archive never reuses it."""
    dest = cache_dir() / "imdb" / f"extracted-{REMOTES['imdb'].digest[:16]}"
    if not (dest / "aclImdb").is_dir():
        safe_extract(archive, dest, select=_imdb_review)
    return dest / "aclImdb"


def _imdb_members(root: Path) -> dict[str, list[tuple[str, bytes]]]:
    """{"train"/"test": [(label, text bytes)]} from an extracted `aclImdb` folder. Each
    review is read as a regular file under `root` within REVIEW_BYTES (see read_local);
    both splits must hold reviews, so a partial folder stops the run before any cell."""
    out: dict[str, list[tuple[str, bytes]]] = {"train": [], "test": []}
    for split in out:
        for label in ("neg", "pos"):
            for p in sorted((root / split / label).glob("*.txt")):
                rel = p.relative_to(root)
                out[split].append((label, read_local(root, rel, REVIEW_BYTES)))
        if not out[split]:
            raise DataError(f"imdb: no {split} reviews (aclImdb/{split}/{{neg,pos}}/*.txt) "
                            f"in {root.parent}")
    return out


def load_imdb(data_dir: Path | None, holdout: float | None) -> RawText:
    folder = Path(data_dir) / "aclImdb" if data_dir is not None else None
    if folder is not None and folder.is_dir():
        files, root = [str(folder)], folder
    else:
        archive = locate(REMOTES["imdb"], data_dir, "imdb")
        files, root = [str(archive)], _imdb_folder(archive)
    members = _imdb_members(root)
    (tr, tr_y), (te, te_y) = (
        ([b.decode("utf-8", "replace").replace("<br />", " ") for _, b in members[s]],
         np.array([lab == "pos" for lab, _ in members[s]], dtype=np.int64))
        for s in ("train", "test"))
    return RawText(tr, tr_y, te, te_y, 2, files)


def load_synthetic(seed: int, n_train: int = 5000, n_test: int = 1000) -> RawText:
    texts, labels = synthetic.generate(n_train + n_test, seed)
    return RawText(texts[:n_train], labels[:n_train], texts[n_train:], labels[n_train:], 2,
                   ["generated (see twinbench/data/synthetic.py)"])


def to_dataset(name: str, raw: RawText, seed: int, length: int, holdout: float | None,
               min_count: int = 2, max_size: int = 20000) -> Dataset:
    """Split (if needed), build the vocabulary on the training split, encode both."""
    from sklearn.model_selection import train_test_split

    split_note = "upstream train/test"
    if raw.test_texts is None:
        frac = holdout if holdout is not None else 0.2
        tr, te, ytr, yte = train_test_split(raw.train_texts, raw.train_labels, test_size=frac,
                                            stratify=raw.train_labels, random_state=seed)
        raw = RawText(tr, ytr, te, yte, raw.classes, raw.files)
        split_note = f"stratified {1 - frac:.0%}/{frac:.0%}, seed {seed}"
    vocab = Vocabulary.build(raw.train_texts, min_count, max_size)
    return Dataset(name=name, x_train=encode(raw.train_texts, vocab, length),
                   y_train=np.asarray(raw.train_labels, dtype=np.int64),
                   x_test=encode(raw.test_texts, vocab, length),
                   y_test=np.asarray(raw.test_labels, dtype=np.int64), classes=raw.classes,
                   provenance={"files": raw.files, "split": split_note, "vocab_size": vocab.size,
                               "sequence_length": length, "token_pattern": TOKEN_PATTERN,
                               "min_count": min_count, "max_vocab": max_size})
