"""Downloads with pinned checksums, a cache, and local copies (`--data-dir`).

A download lands in a temporary file next to its target and is moved into place only
after its checksum matches, so a partial or corrupt file is never used or cached. Pins
are SHA-256 where upstream libraries publish one; where they publish only MD5 (torchtext
for AG News's train.csv) that is the pin, and the record says which algorithm it is.
Archives that must be unpacked go through `safe_extract` (no path, link or device that
leaves the target folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class DataError(ValueError):
    """A data file is missing, corrupt, or does not match its pin (message is one line)."""


@dataclass(frozen=True)
class Remote:
    filename: str
    url: str
    algo: str  # "sha256" or "md5"
    digest: str


def cache_dir() -> Path:
    root = os.environ.get("TWINBENCH_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "twinbench"
    return Path(root)


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check(path: Path, remote: Remote) -> None:
    actual = file_digest(path, remote.algo)
    if actual != remote.digest:
        raise DataError(f"{path}: {remote.algo} {actual} does not match the pinned "
                        f"{remote.digest}; the file is corrupt or not the upstream one")


def download(remote: Remote, dest: Path, timeout: float = 60.0) -> Path:
    """Fetch `remote` to `dest` (atomic: temp file, checksum, rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=timeout) as r:
            for chunk in iter(lambda: r.read(CHUNK), b""):
                out.write(chunk)
        actual = file_digest(tmp, remote.algo)
        if actual != remote.digest:
            raise DataError(f"{remote.url}: downloaded {remote.algo} {actual} does not match "
                            f"the pinned {remote.digest}; nothing was kept")
        tmp.replace(dest)
    except OSError as e:
        raise DataError(f"{remote.url}: download failed ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate(remote: Remote, data_dir: Path | None, dataset: str) -> Path:
    """A verified local path for `remote`: from `data_dir` if given (never downloads),
    else from the cache, downloading (again, if the cached copy is corrupt)."""
    if data_dir is not None:
        path = Path(data_dir) / remote.filename
        if not path.is_file():
            raise DataError(f"{dataset}: {remote.filename} not found in {data_dir}")
        check(path, remote)
        return path
    path = cache_dir() / dataset / remote.filename
    if path.is_file():
        try:
            check(path, remote)
            return path
        except DataError:
            path.unlink()  # a corrupt cached copy: fetch it again
    return download(remote, path)


def _unsafe_member(m: tarfile.TarInfo, root: Path) -> str | None:
    """Why `m` may not be extracted under `root`, or None if it may."""
    target = (root / m.name).resolve()
    if m.name.startswith("/") or not target.is_relative_to(root):
        return "its path leaves the target folder"
    if m.issym() or m.islnk():
        link = (target.parent / m.linkname if m.issym() else root / m.linkname).resolve()
        if m.linkname.startswith("/") or not link.is_relative_to(root):
            return f"it links to {m.linkname!r}, outside the target folder"
    elif not (m.isfile() or m.isdir()):
        return "it is not a regular file or folder (device, fifo)"
    return None


def safe_extract(archive: Path, dest: Path,
                 select: Callable[[tarfile.TarInfo], bool] = lambda m: True) -> Path:
    """Extract the members of `archive` that `select` picks into `dest`, atomically.

    Two fences: every picked member is checked first (no absolute path, no `..` that
    leaves `dest`, no link pointing outside, no device file) and one bad member refuses
    the whole archive before anything is written; then tarfile's own `filter="data"`
    (PEP 706) applies the same rules again while writing. Extraction goes to a temporary
    sibling folder that is renamed to `dest` only when complete.
    """
    if not hasattr(tarfile, "data_filter"):
        raise DataError("safe extraction needs Python with tarfile filters (3.10.12+, 3.11.4+)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    root = tmp.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if select(m)]
            for m in members:
                why = _unsafe_member(m, root)
                if why:
                    raise DataError(f"{archive}: member {m.name!r} refused: {why}")
            tar.extractall(root, members=members, filter="data")
        tmp.replace(dest)
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"{archive}: cannot extract ({e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest
