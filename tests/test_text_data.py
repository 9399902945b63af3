"""Text preparation, the synthetic task, and the real loaders in their upstream formats."""

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from twinbench.data import synthetic, text_sets
from twinbench.data.download import DataError, Remote
from twinbench.data.registry import load_dataset
from twinbench.data.text import OOV, PAD, Vocabulary, encode, lengths, tokenize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


def test_tokenizer_lowercases_and_keeps_apostrophe_words():
    assert tokenize("Don't STOP -- it's 2 good!!") == ["don't", "stop", "it's", "2", "good"]


def test_vocabulary_is_built_from_counts_with_min_count_and_max_size():
    v = Vocabulary.build(["b a a c", "a b d"], min_count=2, max_size=10)
    assert v.tokens == ("a", "b") and v.index() == {"a": 2, "b": 3} and v.size == 4
    assert Vocabulary.build(["a a b b c c"], min_count=1, max_size=4).tokens == ("a", "b")


def test_encode_pads_truncates_and_maps_unknowns():
    v = Vocabulary(("a", "b"))
    ids = encode(["a b zzz", "b " * 10, "", "!!!"], v, length=4)
    assert ids.tolist() == [[2, 3, OOV, PAD], [3, 3, 3, 3], [OOV, PAD, PAD, PAD],
                            [OOV, PAD, PAD, PAD]]
    assert lengths(ids).tolist() == [3, 4, 1, 1]


def test_synthetic_sentiment_is_seeded_balanced_and_noisy():
    texts, y = synthetic.generate(400, seed=0)
    again, y2 = synthetic.generate(400, seed=0)
    assert texts == again and np.array_equal(y, y2)
    assert 0.4 < y.mean() < 0.6
    assert any(t.split()[0] in synthetic.NEGATORS or " not " in t for t in texts)


def _order_rule(text: str) -> int:
    """Reads order: a sentiment word's polarity flips if a negator precedes it closely."""
    words, votes = text.split(), 0
    for i, w in enumerate(words):
        if w.startswith(("good", "bad")):
            s = 1 if w.startswith("good") else -1
            window = words[max(0, i - synthetic.NEGATION_WINDOW):i]
            votes += -s if any(n in window for n in synthetic.NEGATORS) else s
    return int(votes > 0)


def test_synthetic_sentiment_needs_word_order():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    tr, ytr = synthetic.generate(4000, seed=1)
    te, yte = synthetic.generate(1000, seed=2)
    vec = CountVectorizer(token_pattern=r"\S+")
    bow = LogisticRegression(max_iter=2000).fit(vec.fit_transform(tr), ytr)
    bow_acc = bow.score(vec.transform(te), yte)
    order_acc = np.mean([_order_rule(t) == y for t, y in zip(te, yte)])
    assert order_acc > 0.93  # only label noise (3%) and ties stop a reader of order
    assert bow_acc < order_acc - 0.04, (bow_acc, order_acc)


def pin(path: Path) -> Remote:
    return Remote(path.name, "http://127.0.0.1:1/unused", "sha256",
                  hashlib.sha256(path.read_bytes()).hexdigest())


def test_sms_zip_and_tsv_in_upstream_format(tmp_path, monkeypatch):
    rows = ["ham\tHello there", 'spam\tWIN "cash" now', "ham\tsee you"] * 5
    tsv = "\n".join(rows) + "\n"
    with zipfile.ZipFile(tmp_path / "smsspamcollection.zip", "w") as z:
        z.writestr("SMSSpamCollection", tsv)
        z.writestr("readme", "x")
    monkeypatch.setitem(text_sets.REMOTES, "sms_zip", pin(tmp_path / "smsspamcollection.zip"))
    raw = text_sets.load_sms(tmp_path, None)
    assert len(raw.train_texts) == 15 and raw.train_labels.sum() == 5
    assert raw.train_texts[1] == 'WIN "cash" now'  # quoting off: the quotes stay
    data = load_dataset("sms-spam", seed=0, data_dir=tmp_path)
    assert data.x_train.shape == (12, 48) and data.x_test.shape == (3, 48)
    assert data.provenance["split"] == "stratified 80%/20%, seed 0"


def test_ag_news_csv_and_holdout(tmp_path, monkeypatch):
    lines = [f'"{1 + i % 4}","Title {i}","Body, with ""quotes"" {i}"' for i in range(40)]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setitem(text_sets.REMOTES, "ag_test", pin(tmp_path / "test.csv"))
    with pytest.raises(DataError, match="pass --holdout"):
        text_sets.load_ag(tmp_path, None)
    raw = text_sets.load_ag(tmp_path, 0.25)
    assert raw.train_texts[0] == 'Title 0 Body, with "quotes" 0'
    assert sorted(set(raw.train_labels)) == [0, 1, 2, 3] and raw.test_texts is None


def _imdb_tar(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for label, text in (("pos", b"Great film<br />loved it"), ("neg", b"awful")):
                data = io.BytesIO(text)
                info = tarfile.TarInfo(f"aclImdb/{split}/{label}/0_{split}.txt")
                info.size = len(text)
                tar.addfile(info, data)
        evil = tarfile.TarInfo("../evil.txt")  # never selected, and refused if it were
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))


def test_imdb_archive_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBENCH_CACHE", str(tmp_path / "cache"))
    _imdb_tar(tmp_path / "aclImdb_v1.tar.gz")
    monkeypatch.setitem(text_sets.REMOTES, "imdb", pin(tmp_path / "aclImdb_v1.tar.gz"))
    raw = text_sets.load_imdb(tmp_path, None)
    assert sorted(zip(raw.train_texts, raw.train_labels.tolist())) == [
        ("Great film loved it", 1), ("awful", 0)]  # <br /> becomes a space
    assert len(raw.test_texts) == 2 and not (tmp_path.parent / "evil.txt").exists()
    # extracted once, safely, into the cache: the labelled reviews only
    extracted = sorted(p.relative_to(tmp_path / "cache" / "imdb").as_posix()
                       for p in (tmp_path / "cache").rglob("*.txt"))
    assert [e.split("/", 1)[1] for e in extracted] == [
        "aclImdb/test/neg/0_test.txt", "aclImdb/test/pos/0_test.txt",
        "aclImdb/train/neg/0_train.txt", "aclImdb/train/pos/0_train.txt"]
    assert text_sets.load_imdb(tmp_path, None).train_texts == raw.train_texts  # cached
    folder = tmp_path / "unpacked"
    (folder / "aclImdb" / "train" / "pos").mkdir(parents=True)
    (folder / "aclImdb" / "train" / "pos" / "1_9.txt").write_text("fine")
    (folder / "aclImdb" / "test" / "neg").mkdir(parents=True)
    (folder / "aclImdb" / "test" / "neg" / "2_1.txt").write_text("bad")
    raw = text_sets.load_imdb(folder, None)
    assert raw.train_texts == ["fine"] and raw.test_labels.tolist() == [0]


def test_a_file_that_misses_its_pin_is_refused_by_name(tmp_path):
    (tmp_path / "TREC_10.label").write_text("NUM:dist How far ?\n")
    (tmp_path / "train_5500.label").write_text("NUM:dist How far ?\n")
    with pytest.raises(DataError, match="train_5500.label: sha256 .* does not match"):
        text_sets.load_trec(tmp_path, None)


@needs_shared
def test_real_sms_spam():
    raw = text_sets.load_sms(SHARED / "sms_spam", None)
    assert len(raw.train_texts) == 5574 and raw.train_labels.sum() == 747


@needs_shared
def test_real_ag_news_test_split():
    raw = text_sets.load_ag(SHARED / "ag_news", 0.2)
    assert len(raw.train_texts) == 7600
    assert np.bincount(raw.train_labels).tolist() == [1900] * 4


@needs_shared
def test_real_trec_is_read_as_latin1():
    raw = text_sets.load_trec(SHARED / "trec", None)
    assert len(raw.train_texts) == 5452 and len(raw.test_texts) == 500 and raw.classes == 6
