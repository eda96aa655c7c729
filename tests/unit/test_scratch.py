"""Scratch folders of processing: a process's folder outlives it only until the next one opens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from media.service.scratch import LOCK, UNLOCKED_GRACE_S, open_scratch

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def _left_by_a_killed_process(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / LOCK).touch()  # nobody holds it: its process is gone
    (folder / "original").write_bytes(b"decrypted bytes")
    return folder


def test_folders_of_processes_that_are_gone_are_removed(tmp_path: Path) -> None:
    dead = _left_by_a_killed_process(tmp_path, "123-abc")
    old_layout = tmp_path / "0123456789abcdef"
    old_layout.mkdir()
    (old_layout / "original").write_bytes(b"decrypted bytes")
    aged = time.time() - UNLOCKED_GRACE_S - 5
    os.utime(old_layout, (aged, aged))
    fresh = tmp_path / "456-making"  # a process between making its folder and locking it
    fresh.mkdir()
    scratch = open_scratch(tmp_path)
    try:
        assert not dead.exists() and not old_layout.exists()
        assert fresh.exists()
        assert scratch.path.parent == tmp_path and scratch.path.is_dir()
    finally:
        scratch.close()
    assert not scratch.path.exists()


def test_a_living_process_keeps_its_folder(tmp_path: Path) -> None:
    live = tmp_path / "789-live"
    live.mkdir()
    (live / "original").write_bytes(b"in use")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(live / LOCK)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        first = open_scratch(tmp_path)
        second = open_scratch(tmp_path)  # another process of this host, as `serve --workers`
        try:
            assert (live / "original").exists()
            assert first.path.is_dir() and second.path.is_dir()
        finally:
            second.close()
            first.close()
    finally:
        holder.kill()
        holder.communicate(timeout=10)
    # Its process gone, the next one to open removes it.
    after = open_scratch(tmp_path)
    after.close()
    assert not live.exists()


STARTS = """
import sys, time
from pathlib import Path
from media.service.scratch import open_scratch
root, lost = Path(sys.argv[1]), 0
for _ in range(150):
    scratch = open_scratch(root)
    (scratch.path / "original").write_bytes(b"mine")
    time.sleep(0.001)
    lost += not (scratch.path / "original").exists()
    scratch.close()
print(lost)
"""


def test_processes_starting_at_once_keep_their_own_folders(tmp_path: Path) -> None:
    """`serve --workers N` starts its workers together: each one's sweep must see the others'
    folders locked from the moment they exist (none removed, no start failing on a lock)."""
    root = tmp_path / "work"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", STARTS, str(root)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outcomes = [start.communicate(timeout=120) for start in starts]
    assert [start.returncode for start in starts] == [0] * 6, outcomes
    assert [int(out) for out, _ in outcomes] == [0] * 6
