"""The Storage port: what the service needs of an object store, and rules all backends share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from media.config import Settings
from media.errors import InvalidInput
from media.models import ObjectInfo

MIN_CHUNK_BYTES = 64 * 1024
# 64 KiB chunks cost 2-3x the CPU of 256 KiB (docs/stack-notes.md §7); above 1 MiB a slow
# client pins memory.
MAX_CHUNK_BYTES = 1024 * 1024
# Bytes moved per worker-thread hop when copying files: few hops, bounded memory.
FILE_BLOCK_BYTES = 1024 * 1024

# Keys are random UUIDs, as `uuid4().hex` or `str(uuid4())`: no separators, no dots, lowercase only,
# so a key can never name a path outside the store nor collide with a temp file.
_KEY = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_key(key: str) -> str:
    """Return `key` when it has the shape of a UUID string; raise InvalidInput otherwise."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise InvalidInput("storage key must be a lowercase UUID string", field="key")
    return key


def is_key(name: str) -> bool:
    """True when `name` has the shape of a storage key."""
    return _KEY.fullmatch(name) is not None


def check_range(start: int, length: int) -> None:
    """Raise InvalidInput unless `start` and `length` are non-negative."""
    if start < 0 or length < 0:
        raise InvalidInput("range start and length must be >= 0", start=start, length=length)


def chunk_bytes(settings: Settings) -> int:
    """The read chunk size: settings.stream_chunk_bytes clamped to 64 KiB..1 MiB."""
    return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, settings.stream_chunk_bytes))


async def file_chunks(path: Path, block: int = FILE_BLOCK_BYTES) -> AsyncIterator[bytes]:
    """Yield the bytes of a local file in blocks, each read in a worker thread."""
    handle = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        while data := await anyio.to_thread.run_sync(handle.read, block):
            yield data
    finally:
        # close() of a regular file does not block; running it inline survives cancellation.
        handle.close()


class Storage(Protocol):
    """An object store keyed by random UUID strings; every method may raise Unavailable."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size, strong etag (no quotes), tz-aware last_modified; NotFound when absent."""
        ...

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Yield bytes [start, start+length) in bounded chunks, fewer at the end of the object."""
        ...

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int
    ) -> ObjectInfo:
        """Store a stream atomically with its sha256; TooLarge past max_bytes, leaving nothing."""
        ...

    async def write_file(self, key: str, path: Path, *, content_type: str) -> ObjectInfo:
        """Store the contents of a local file atomically."""
        ...

    async def download(self, key: str, path: Path) -> None:
        """Copy an object to a local file; NotFound when absent."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file holding the object on a local backend, else None."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; absent objects are fine."""
        ...

    async def keys(self) -> list[str]:
        """Every object key in the store, sorted."""
        ...

    async def sweep_partial(self, older_than: datetime) -> int:
        """Remove unfinished writes begun before `older_than` (temp files, multipart uploads)."""
        ...

    async def ping(self) -> None:
        """Raise Unavailable(dependency='storage') unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


async def write_local_file(
    storage: Storage, key: str, path: Path, *, content_type: str
) -> ObjectInfo:
    """Store a local file through `storage.write`, its size as the byte limit."""
    check_key(key)
    limit = await anyio.to_thread.run_sync(lambda: path.stat().st_size)
    return await storage.write(key, file_chunks(path), content_type=content_type, max_bytes=limit)
