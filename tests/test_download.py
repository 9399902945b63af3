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
