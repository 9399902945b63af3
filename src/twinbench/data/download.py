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
import stat
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
# A pinned file is checked against its digest, so this only stops a link to /dev/zero or a
# sparse giant before hashing starts; the largest pinned file (CIFAR-10) is 170 MB.
MAX_PINNED_BYTES = 1 << 30


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


def safe_local_file(root: Path, relative: str | Path, limit: int) -> Path:
    """`root/relative`, checked to be a regular file of at most `limit` bytes that stays
    inside `root` once every link is resolved. A local folder is input like a download: a
    FIFO would hang the reader, a link to /dev/zero would fill memory, and a link to any
    other file would be read in as data. Raises DataError (one line) otherwise."""
    base = Path(root).resolve()
    path = Path(root) / relative
    try:
        real = path.resolve(strict=True)
        st = os.stat(real)
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise DataError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not real.is_relative_to(base):
        raise DataError(f"{path}: links to {real}, outside {root}; copy the file in instead")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a folder, FIFO, socket or device)")
    if st.st_size > limit:
        raise DataError(f"{path}: {st.st_size:,} bytes, over the {limit:,}-byte limit for "
                        f"this file")
    return real


def read_local(root: Path, relative: str | Path, limit: int) -> bytes:
    """The bytes of `safe_local_file(root, relative, limit)`, read through a descriptor
    that is checked again (no link followed, regular, within the limit), so a file swapped
    for a FIFO or a growing file after the first check still cannot hang or flood us."""
    real = safe_local_file(root, relative, limit)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(real, flags)
    except OSError as e:
        raise DataError(f"{real}: cannot be read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"{real}: not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise DataError(f"{real}: over the {limit:,}-byte limit for this file")
    return data


def writable_folder(folder: Path, what: str) -> Path:
    """Create `folder` (and its parents) or say in one line why it cannot be: a file where
    a folder should be, a read-only file system, no permission."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(folder, e, what) from None
    return folder


def _unwritable(folder: Path, e: OSError, what: str = "cache folder") -> DataError:
    return DataError(f"{what} {folder}: not writable ({e.strerror or e}); set "
                     f"TWINBENCH_CACHE to a writable folder")


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
    writable_folder(dest.parent, "cache folder")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    except OSError as e:
        raise _unwritable(dest.parent, e) from None
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
        if not os.path.lexists(path):
            raise DataError(f"{dataset}: {remote.filename} not found in {data_dir}")
        safe_local_file(data_dir, remote.filename, MAX_PINNED_BYTES)
        check(path, remote)
        return path
    path = cache_dir() / dataset / remote.filename
    if os.path.lexists(path):
        try:
            safe_local_file(path.parent, path.name, MAX_PINNED_BYTES)
            check(path, remote)
            return path
        except DataError:  # a corrupt cached copy (or a link, a FIFO): fetch it again
            _discard(path)
    return download(remote, path)


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except OSError as e:  # e.g. a folder where the cached file should be
        raise DataError(f"cached copy {path} is unusable and cannot be removed "
                        f"({e.strerror or e})") from None


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
    writable_folder(dest.parent, "cache folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as e:
        raise _unwritable(dest.parent, e) from None
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
