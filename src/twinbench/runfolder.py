"""A run's folder: who holds it (its lock file names the run), and holding it while a run
writes there, so that another run's folder is never overwritten silently and one run is
never resumed twice at once."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from twinbench.errors import TwinbenchError

LOCK_FILE = ".twinbench.lock"  # in a run's folder: held while the run runs, names the run
RUN_FILES = ("results.json", "verify.json", "export.json")


def folder_owner(out_dir: Path) -> str | None:
    """The id of the run a folder holds (its lock file names it; older runs are known by
    their results files), or None for a folder that holds no run."""
    lock = out_dir / LOCK_FILE
    if lock.exists() and lock.read_text().strip():
        return lock.read_text().strip()
    for name in RUN_FILES:
        if (out_dir / name).exists():
            try:
                return str(json.loads((out_dir / name).read_text())["run_id"])
            except (OSError, ValueError, KeyError, TypeError):
                return f"unknown (an unreadable {name})"
    return None


def check_folder(out_dir: Path, run_id: str, force: bool = False,
                 override: str | None = "--force") -> None:
    """Refuse a folder that holds another run, unless `force`; the message names the
    option that overrides it, where the command has one."""
    owner = folder_owner(out_dir)
    if owner not in (None, run_id) and not force:
        how = f", or {override} to write over it" if override else ""
        raise TwinbenchError(f"{out_dir} holds run {owner}: give another folder{how}")


@contextmanager
def run_folder(out_dir: Path, run_id: str, force: bool = False,
               override: str | None = "--force") -> Iterator[None]:
    """Hold a run's folder while the run writes into it. A folder that holds another run
    is refused unless `force` (it would be overwritten silently); a folder whose lock is
    held (the same run resumed twice at once) is refused always: two drivers would run
    the same cells in the same cell folders."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        f = open(out_dir / LOCK_FILE, "a+", encoding="utf-8")
    except OSError as e:
        raise TwinbenchError(f"--out {out_dir}: cannot write there ({e})") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held by a running twinbench
            f.seek(0)
            raise TwinbenchError(f"{out_dir}: run {f.read().strip() or '?'} is running "
                                 f"there now (lock {out_dir / LOCK_FILE} is held); wait "
                                 f"for it to finish or stop it") from None
        check_folder(out_dir, run_id, force, override)
        f.seek(0)
        f.truncate()
        f.write(run_id)  # append mode: at 0, after the truncate
        f.flush()
        yield  # the lock goes with the file's close
