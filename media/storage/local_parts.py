"""Multipart uploads in a local folder: positional writes into one temp file, plus a part index.

The data file `.tmp-<key>.mp` receives every part at its own offset, so parts may arrive in any
order and in parallel, and assembly is a rename. The index `.tmp-<key>.mp-parts` holds one fixed
record per part number (size and MD5), written only after the part's bytes reached the disk and
cleared before a part is written again: a record exists exactly for the parts fully received.

One writer per part at a time, across the processes sharing the folder too (`serve --workers`):
a part's writer holds an flock on `.tmp-<key>.mp-<number>.lock` from before it clears the
record until the record is written. Two bodies of one part written at once by two processes
would otherwise interleave in the data file under the record of whichever finished last. Locks
are only ever tried (LOCK_NB): a writer waits for another one on the event loop, where its wait
can be cancelled, and completion refuses while a part still arrives."""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from media.errors import Conflict, NotFound
from media.models import PartInfo

TEMP_PREFIX = ".tmp-"
_DATA_SUFFIX = ".mp"
_INDEX_SUFFIX = ".mp-parts"
_LOCK_SUFFIX = ".lock"
_RECORD = struct.Struct("<4sQ16s4x")  # magic, size, md5 digest: 32 bytes per part
_MAGIC = b"PART"
_EMPTY = bytes(_RECORD.size)


def data_path(final: Path) -> Path:
    """The temp file the parts of `final` are written into."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}{_DATA_SUFFIX}")


def index_path(final: Path) -> Path:
    """The part index beside the data file."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}{_INDEX_SUFFIX}")


def lock_path(final: Path, number: int) -> Path:
    """The file whose flock a writer of part `number` holds."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}{_DATA_SUFFIX}-{number}{_LOCK_SUFFIX}")


def temp_key(name: str) -> str:
    """The storage key a temp file name belongs to ('' for temp files of plain writes)."""
    return name.removeprefix(TEMP_PREFIX).split(".", 1)[0]


def create(final: Path) -> None:
    """Create the empty data file and index; a second create for the same key is a Conflict."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for path in (data_path(final), index_path(final)):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise Conflict("multipart upload exists", key=final.name) from None


def try_lock_part(final: Path, number: int) -> int | None:
    """The descriptor holding part `number`'s lock, or None while another writer holds it."""
    if not data_path(final).exists():
        raise NotFound("no such multipart upload", key=final.name)
    return _try_lock(lock_path(final, number))


def _try_lock(path: Path) -> int | None:
    """A descriptor of `path` holding its exclusive flock, or None when it is held already."""
    lock = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    except BaseException:
        os.close(lock)
        raise
    return lock


def open_part(final: Path, number: int) -> tuple[int, int]:
    """Open data file and index for writing part `number` (its lock held) and clear its record;
    (data, index) descriptors, for `finish_part`."""
    try:
        data = os.open(data_path(final), os.O_WRONLY)
    except FileNotFoundError:
        raise NotFound("no such multipart upload", key=final.name) from None
    try:
        index = os.open(index_path(final), os.O_RDWR)
    except FileNotFoundError:
        os.close(data)
        raise NotFound("no such multipart upload", key=final.name) from None
    except BaseException:
        os.close(data)
        raise
    # A part being rewritten is not received until its new bytes are all on disk.
    os.pwrite(index, _EMPTY, _record_offset(number))
    return data, index


def write_blocks(fd: int, blocks: list[bytes], offset: int, digest: hashlib._Hash) -> int:
    """Write `blocks` at `offset`; returns the offset after them."""
    for block in blocks:
        digest.update(block)
        view = memoryview(block)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    return offset


def finish_part(
    data: int, index: int, lock: int, number: int, size: int, digest: hashlib._Hash
) -> PartInfo:
    """Flush the part's bytes, then record it; closes the descriptors (and so the lock).

    Conflict when the upload ended (aborted, expired, completed) while the part was received:
    its files were removed or renamed away under the open descriptors."""
    try:
        os.fdatasync(data)
        os.pwrite(index, _RECORD.pack(_MAGIC, size, digest.digest()), _record_offset(number))
        os.fdatasync(index)
        if os.fstat(index).st_nlink == 0:
            raise Conflict("the upload ended while this part was received", part=number)
    finally:
        close(data, index, lock)
    return PartInfo(number=number, size=size, etag=digest.hexdigest())


def close(*fds: int) -> None:
    """Close descriptors; closing never blocks, so it may run anywhere."""
    for fd in fds:
        os.close(fd)


def list_parts(final: Path) -> list[PartInfo]:
    """Every recorded part, by number; NotFound when the upload does not exist."""
    try:
        raw = index_path(final).read_bytes()
    except FileNotFoundError:
        raise NotFound("no such multipart upload", key=final.name) from None
    parts: list[PartInfo] = []
    for offset in range(0, len(raw) - _RECORD.size + 1, _RECORD.size):
        magic, size, md5 = _RECORD.unpack_from(raw, offset)
        if magic == _MAGIC:
            parts.append(PartInfo(number=offset // _RECORD.size + 1, size=size, etag=md5.hex()))
    return parts


def assemble(final: Path, total: int, numbers: Sequence[int]) -> os.stat_result:
    """Cut the data file to `total` bytes, make it durable, rename it to `final`.

    Holds the locks of parts `numbers` meanwhile, so a part that starts after finds the upload
    gone and no byte lands in the object once its size is cut and its hash may be taken; while
    one of them is still being written, Conflict (complete again once it is in)."""
    data = data_path(final)
    locks: list[int] = []
    try:
        for number in sorted(numbers):
            lock = _try_lock(lock_path(final, number))
            if lock is None:
                raise Conflict("a part is still arriving", part=number)
            locks.append(lock)
        try:
            fd = os.open(data, os.O_WRONLY)
        except FileNotFoundError:
            raise NotFound("no such multipart upload", key=final.name) from None
        try:
            os.ftruncate(fd, total)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(data, final)
        index_path(final).unlink(missing_ok=True)
        _remove_locks(final)
    finally:
        close(*locks)
    return final.stat()


def remove(final: Path) -> None:
    """Delete the data file, index and part locks of an upload; absent files are fine."""
    data_path(final).unlink(missing_ok=True)
    index_path(final).unlink(missing_ok=True)
    _remove_locks(final)


def _remove_locks(final: Path) -> None:
    for lock in final.parent.glob(f"{TEMP_PREFIX}{final.name}{_DATA_SUFFIX}-*{_LOCK_SUFFIX}"):
        lock.unlink(missing_ok=True)


def _record_offset(number: int) -> int:
    return (number - 1) * _RECORD.size
