"""The Storage port: what the service needs of an object store, and rules all backends share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Protocol

import anyio.from_thread

from media.config import Settings
from media.errors import InvalidInput
from media.models import ObjectInfo, PartInfo, PartSlot

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


class Storage(Protocol):
    """An object store keyed by random UUID strings; every method may raise Unavailable.

    Only what every backend means, so a layer over one (encryption, metrics) has each method to
    forward or transform and nothing to fake: objects are byte streams, written once and read by
    range. Local files go in and out through media/storage/files.py, not through the port."""

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

    async def delete(self, key: str) -> None:
        """Remove an object; absent objects are fine."""
        ...

    async def keys(self) -> list[str]:
        """Every object key in the store, sorted."""
        ...

    async def sweep_partial(self, older_than: datetime, keep: Collection[str] = ()) -> int:
        """Remove unfinished writes begun before `older_than`, except the uploads of `keep`."""
        ...

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Begin a multipart upload that will become object `key`; returns its id."""
        ...

    async def write_part(
        self, key: str, multipart_id: str, part: PartSlot, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """Stream exactly `part.size` bytes as the part, replacing any earlier one; InvalidInput
        when the stream ends short, NotFound when the upload is gone. The slot's `last` says the
        part ends the object (the encryption layer seals its final chunk there)."""
        ...

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """The parts fully received, by number; NotFound when the upload is gone."""
        ...

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """Assemble `parts` (from list_parts, in order) into object `key`."""
        ...

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """Drop a multipart upload and its parts; an absent one is fine."""
        ...

    async def ping(self) -> None:
        """Raise Unavailable(dependency='storage') unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


class BlockingReader:
    """A file-like view of an async byte stream, for a blocking client in a worker thread.

    Each `read` that needs more bytes pulls the next chunk on the event loop, so at most one
    chunk is held and a part is never buffered whole. The stream's own error (a stall, a
    client gone) is kept in `error`, since the blocking client may wrap or hide it."""

    def __init__(self, chunks: AsyncIterable[bytes], expected: int) -> None:
        self._chunks = aiter(chunks)
        self._expected = expected
        self._buffer = memoryview(b"")
        self.error: BaseException | None = None
        self.count = 0

    def readable(self) -> bool:
        """Always True."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (a negative size: the next chunk); b'' at the end of the stream.

        Never more than one chunk at a time, even for a negative size: a caller wanting all of
        a part would hold it whole, which this reader exists to avoid."""
        if size < 0:
            size = self._expected - self.count + len(self._buffer)
        if not self._buffer and self.count < self._expected:
            self._buffer = memoryview(self._pull())
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(data)

    def _pull(self) -> bytes:
        try:
            chunk = anyio.from_thread.run(_next_chunk, self._chunks)
        except BaseException as exc:
            self.error = exc
            raise
        if chunk is None:
            # Ending early would leave the store waiting for the announced length.
            self.error = InvalidInput("the part body ended before its size", field="body")
            raise self.error
        self.count += len(chunk)
        return chunk
