"""The download path against a local HTTP server on 127.0.0.1 (files the test writes)."""

import hashlib
import http.server
import threading
from functools import partial

import pytest

from twinbench.data.download import DataError, Remote, download, locate


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.csv").write_bytes(b"1,hello\n2,world\n")
    (root / "corrupt.csv").write_bytes(b"1,hello\n2,w0rld\n")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


GOOD = hashlib.sha256(b"1,hello\n2,world\n").hexdigest()


def test_download_verifies_and_caches(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBENCH_CACHE", str(tmp_path / "cache"))
    remote = Remote("data.csv", f"{server}/good.csv", "sha256", GOOD)
    path = locate(remote, None, "demo")
    assert path == tmp_path / "cache" / "demo" / "data.csv"
    assert path.read_bytes() == b"1,hello\n2,world\n"
    path.write_bytes(b"tampered")  # a corrupt cached copy is fetched again
    assert locate(remote, None, "demo").read_bytes() == b"1,hello\n2,world\n"


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    remote = Remote("data.csv", f"{server}/corrupt.csv", "sha256", GOOD)
    with pytest.raises(DataError, match="corrupt.csv: downloaded sha256 .* does not match"):
        download(remote, tmp_path / "out" / "data.csv")
    assert list((tmp_path / "out").iterdir()) == []  # no partial or temp file left


def test_unreachable_url_is_a_data_error(server, tmp_path):
    remote = Remote("x.csv", f"{server}/missing.csv", "sha256", GOOD)
    with pytest.raises(DataError, match="download failed"):
        download(remote, tmp_path / "x.csv")


def test_data_dir_is_used_and_checked_without_download(tmp_path):
    (tmp_path / "data.csv").write_bytes(b"1,hello\n2,world\n")
    remote = Remote("data.csv", "http://127.0.0.1:9/never", "sha256", GOOD)
    assert locate(remote, tmp_path, "demo") == tmp_path / "data.csv"
    with pytest.raises(DataError, match="other.csv not found in"):
        locate(Remote("other.csv", "http://127.0.0.1:9/", "sha256", GOOD), tmp_path, "demo")


def test_md5_pins_work_and_are_named_in_the_error(server, tmp_path):
    good_md5 = hashlib.md5(b"1,hello\n2,world\n").hexdigest()
    path = download(Remote("a.csv", f"{server}/good.csv", "md5", good_md5), tmp_path / "a.csv")
    assert path.read_bytes() == b"1,hello\n2,world\n"
    with pytest.raises(DataError, match="downloaded md5 .* does not match the pinned"):
        download(Remote("b.csv", f"{server}/corrupt.csv", "md5", good_md5), tmp_path / "b.csv")


def test_mnist_is_downloaded_verified_cached_and_loaded(server, tmp_path, monkeypatch):
    """The whole path: URL -> temp file -> checksum -> cache -> IDX parse -> Dataset."""
    import numpy as np
    from test_image_data import write_idx_set

    from twinbench.data import image_sets
    from twinbench.data.registry import load_dataset

    www = tmp_path / "www"
    arrays = write_idx_set(www, n_train=20, n_test=10)
    for f in www.glob("*-ubyte.gz"):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        monkeypatch.setitem(image_sets.REMOTES, f"mnist:{f.name}",
                            Remote(f.name, f"{server}/{f.name}", "sha256", digest))
    monkeypatch.setenv("TWINBENCH_CACHE", str(tmp_path / "cache"))
    d = load_dataset("mnist", seed=0)
    assert np.array_equal(d.y_train, arrays["train"][1]) and d.x_test.shape == (10, 28, 28, 1)
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(p.name for p in www.glob("*-ubyte.gz"))
    assert all(str(tmp_path / "cache") in f for f in d.provenance["files"])
    # upstream changes a file: the mismatch is refused and nothing new is cached
    (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (www / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the pinned file")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: downloaded sha256"):
        load_dataset("mnist", seed=0)
    assert not (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
