"""Processing's scratch folders: one per process under `data_dir/work`, removed with the process.

Processing copies each original into a scratch folder (decrypted, when encryption at rest is on)
and makes renditions, thumbnails and ladders there; a job removes its own files however it ends.
A process killed in the middle of a job (SIGKILL, out of memory, a power cut) cannot, and those
files are plaintext. So each process works under `work/<name>/` and holds an exclusive flock on
`work/<name>/.lock` for as long as it lives; the kernel releases it when the process ends. A
process opening its folder removes every other one whose lock nobody holds. Processes sharing a
data folder on one host (`serve --workers`, a `worker` beside `serve`) keep each other's folders.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("media.ingest")

LOCK = ".lock"
# A folder is made under a name starting with this and renamed once its lock is held, so every
# folder a sweep sees by its final name is locked for as long as its process lives.
_MAKING = ".making-"
# A folder being made, or one without a lock file (the layout before locks: one folder per job),
# is taken for abandoned only once this old.
UNLOCKED_GRACE_S = 60.0


class ScratchFolder:
    """This process's scratch folder, locked until `close` (or the process's end)."""

    def __init__(self, path: Path, lock: int) -> None:
        self.path = path
        self._lock = lock

    def close(self) -> None:
        """Remove the folder and let go of its lock."""
        if self._lock < 0:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)
        self._lock = -1


def open_scratch(root: Path) -> ScratchFolder:
    """A new locked folder under `root`, after removing the folders of processes that are gone."""
    root.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(prefix=f"{_MAKING}{os.getpid()}-", dir=root))
    lock = os.open(making / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # nobody else knows this folder yet: never waits
        path = root / making.name.removeprefix(_MAKING)
        making.rename(path)
    except BaseException:
        os.close(lock)
        shutil.rmtree(making, ignore_errors=True)
        raise
    removed = 0
    for child in root.iterdir():
        if child != path and not child.is_symlink() and child.is_dir() and _abandoned(child):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("removed %d scratch folder(s) of processes that are gone", removed)
    return ScratchFolder(path, lock)


def _abandoned(folder: Path) -> bool:
    if folder.name.startswith(_MAKING):
        return _older_than_grace(folder)  # being made, unless its process died doing so
    try:
        lock = os.open(folder / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return _older_than_grace(folder)
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its process lives (or the folder cannot say: keep it)
    finally:
        os.close(lock)  # and with it the lock just taken, if it was
    return True


def _older_than_grace(folder: Path) -> bool:
    try:
        return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
    except OSError:
        return False
