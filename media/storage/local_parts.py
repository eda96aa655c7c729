"""Multipart uploads in a local folder: positional writes into one temp file, plus a part index.

The data file `.tmp-<key>.mp` receives every part at its own offset, so parts may arrive in any
order and in parallel, and assembly is a rename. The index `.tmp-<key>.mp-parts` holds one fixed
record per part number (size and MD5), written only after the part's bytes reached the disk and
cleared before a part is written again: a record exists exactly for the parts fully received."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from media.errors import Conflict, NotFound
from media.models import PartInfo

TEMP_PREFIX = ".tmp-"
_DATA_SUFFIX = ".mp"
_INDEX_SUFFIX = ".mp-parts"
_RECORD = struct.Struct("<4sQ16s4x")  # magic, size, md5 digest: 32 bytes per part
_MAGIC = b"PART"
_EMPTY = bytes(_RECORD.size)


def data_path(final: Path) -> Path:
    """The temp file the parts of `final` are written into."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}{_DATA_SUFFIX}")


def index_path(final: Path) -> Path:
    """The part index beside the data file."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}{_INDEX_SUFFIX}")


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


def open_part(final: Path, number: int) -> tuple[int, int]:
    """Open data file and index for writing part `number`, clearing its record first."""
    try:
        data = os.open(data_path(final), os.O_WRONLY)
    except FileNotFoundError:
        raise NotFound("no such multipart upload", key=final.name) from None
    try:
        index = os.open(index_path(final), os.O_RDWR)
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


def finish_part(data: int, index: int, number: int, size: int, digest: hashlib._Hash) -> PartInfo:
    """Flush the part's bytes, then record it; closes both descriptors."""
    try:
        os.fdatasync(data)
        os.pwrite(index, _RECORD.pack(_MAGIC, size, digest.digest()), _record_offset(number))
        os.fdatasync(index)
    finally:
        close(data, index)
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


def assemble(final: Path, total: int) -> os.stat_result:
    """Cut the data file to `total` bytes, make it durable, rename it to `final`."""
    data = data_path(final)
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
    return final.stat()


def remove(final: Path) -> None:
    """Delete the data file and index of an upload; absent files are fine."""
    data_path(final).unlink(missing_ok=True)
    index_path(final).unlink(missing_ok=True)


def _record_offset(number: int) -> int:
    return (number - 1) * _RECORD.size
