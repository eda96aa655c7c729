"""Sealing streams for the encryption layer: whole objects (hashed and counted) and parts."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

import anyio.to_thread

from media.errors import TooLarge
from media.storage.base import FILE_BLOCK_BYTES
from media.storage.chunked import SEALED, ChunkCipher, Sealer


class PlainCount:
    """What a sealed write saw of its plaintext: size (limited to `limit`) and SHA-256."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        """Count a piece; TooLarge past the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge("object exceeds the byte limit", limit=self.limit)


async def sealed_object(
    cipher: ChunkCipher, chunks: AsyncIterable[bytes], plain: PlainCount
) -> AsyncIterator[bytes]:
    """The bytes at rest of a whole object: header, chunks, final chunk."""
    sealer = Sealer(cipher)
    pending: list[bytes] = []
    size = 0
    async for chunk in chunks:
        plain.add(chunk)
        pending.append(chunk)
        size += len(chunk)
        if size >= FILE_BLOCK_BYTES:
            # Hashing and sealing a MiB is blocking work: one worker-thread hop per MiB.
            sealed = await anyio.to_thread.run_sync(_seal_batch, sealer, plain, pending)
            pending, size = [], 0
            if sealed:  # an empty piece would read as the end of the body
                yield sealed
    sealed = await anyio.to_thread.run_sync(_seal_batch, sealer, plain, pending)
    yield sealed + sealer.finish()


async def sealed_part(
    sealer: Sealer, chunks: AsyncIterable[bytes], final: bool
) -> AsyncIterator[bytes]:
    """The bytes at rest of one part; with `final`, ending in the object's final chunk."""
    async for chunk in chunks:
        # Sealing is blocking work: pieces beyond a few chunks go to a worker thread.
        if len(chunk) > 4 * SEALED:
            sealed = await anyio.to_thread.run_sync(sealer.feed, chunk)
        else:
            sealed = sealer.feed(chunk)
        if sealed:  # an empty piece would read as the end of the body
            yield sealed
    rest = sealer.finish(final=final)
    if rest:
        yield rest


def _seal_batch(sealer: Sealer, plain: PlainCount, pieces: list[bytes]) -> bytes:
    out = []
    for piece in pieces:
        plain.sha256.update(piece)
        out.append(sealer.feed(piece))
    return b"".join(out)
