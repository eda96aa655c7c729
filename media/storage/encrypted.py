"""Encryption at rest as a layer over any Storage: every writer and reader goes through it.

Writes seal the stream chunk by chunk (media/storage/chunked.py) under a fresh data key whose
envelope is recorded before the first byte is stored; reads map a plaintext range to the chunks
that hold it, fetch only those (one ranged read), and authenticate each before yielding a byte.
Objects without an envelope were stored before encryption was turned on and pass through as they
are. Sizes, sha256 and ranges are the plaintext's; the etag is the stored object's (it changes
whenever the bytes do, so it stays a strong validator of the plaintext).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar, cast

import anyio
import anyio.to_thread

from media.errors import CorruptObject, MediaError, NotFound, Unavailable
from media.models import Envelope, ObjectInfo, PartInfo, PartSlot
from media.storage.base import Storage, check_key, check_range
from media.storage.chunked import (
    CHUNK,
    FORMAT,
    HEADER,
    KEY,
    SEALED,
    ChunkCipher,
    Opener,
    Sealer,
    Span,
    StreamOpener,
    ciphertext_size,
    new_header,
    part_layout,
    part_plaintext_size,
    plaintext_size,
    span,
)
from media.storage.keyring import EnvelopeStore, Keyring
from media.storage.local import LocalStorage
from media.storage.opening import FileOpener
from media.storage.sealing import PlainCount, sealed_object, sealed_part

logger = logging.getLogger("media.encryption")

CACHE_ENTRIES = 4096
# Long reads from the start are opened in a worker thread, BATCH_BYTES at rest per call, one
# call ahead of the sending (bench/README.md, "Encryption at rest").
LONG_READ_BYTES = 2 * 1024 * 1024
BATCH_BYTES = 1024 * 1024
# The plaintext pieces of a long read: at most 256 KiB whatever the stream chunk size. A stream
# holds the batch opened ahead and the pieces in flight; 1 MiB pieces took sixteen concurrent
# encrypted full GETs from 55 to 80 MiB over idle.
PIECE_BYTES = 256 * 1024
_PLAIN: Final = "plain"
_Entry = ChunkCipher | str
_Piece = TypeVar("_Piece", bytes, bytearray)


def context(storage_key: str) -> bytes:
    """What each object's keys are bound to: a ciphertext moved to another key never opens."""
    return b"media-service/object/v1|" + storage_key.encode()


class EncryptedStorage:
    """A Storage that stores chunked AEAD in `inner`, with envelopes kept in `envelopes`."""

    def __init__(
        self, inner: Storage, keyring: Keyring, envelopes: EnvelopeStore, *, chunk_bytes: int
    ) -> None:
        self._inner = inner
        self._keyring = keyring
        self._envelopes = envelopes
        self._chunk = chunk_bytes
        self._group = max(1, min(chunk_bytes, PIECE_BYTES) // CHUNK)  # chunks per long-read piece
        # Keys are written once and read many times: an object's cipher (or its being plaintext)
        # never changes, and re-wrapping keeps the data key, so entries stay valid until deleted.
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        # Scratch for the chunks a range wants only part of, shared by the reads (see Opener).
        self._work = bytearray(CHUNK)

    # --- reads ---------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        """The inner object's etag and time, with the plaintext size."""
        info = await self._inner.stat(key)
        entry = await self._entry(key)
        if isinstance(entry, str):
            self._remember(key, _PLAIN)
            return info
        plain = plaintext_size(info.size)
        if plain is None:
            raise _loud(CorruptObject("impossible size", dependency="storage", key=key))
        return replace(info, size=plain)

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Plaintext [start, start+length), authenticated chunk by chunk."""
        check_key(key)
        check_range(start, length)
        # Long reads yield bytearrays (StreamOpener): every reader of the port takes its pieces
        # as buffers (ASGI sends, file writes, hashing, joins), never as dict keys or str.
        return cast("AsyncIterator[bytes]", self._read(key, start, length))

    async def _read(self, key: str, start: int, length: int) -> AsyncIterator[bytes | bytearray]:
        entry = self._cache.get(key)
        if entry is None:
            entry = await self._entry(key)
        if isinstance(entry, str):
            async with _closing(self._inner.read(key, start, length)) as chunks:
                async for chunk in chunks:
                    self._remember(key, _PLAIN)  # only once the object is known to exist
                    yield chunk
            return
        if length == 0:
            await self._inner.stat(key)  # still NotFound for an absent object
            return
        where = span(start, length)
        if where.first == 0 and where.length > LONG_READ_BYTES:
            if isinstance(self._inner, LocalStorage):
                long = self._read_file(self._inner.file_of(key), key, entry, where, length)
            else:
                long = self._read_long(key, entry, where, length)
            async with _closing(long) as opened:
                async for buffer in opened:
                    yield buffer
            return
        opener = Opener(entry, where.first, where.skip, length, self._work)
        stored = self._inner.read(key, where.offset, where.length)
        try:
            async for piece in stored:
                plain = opener.feed(piece)
                if plain:
                    for out in self._bounded(plain):
                        yield out
            at_end = opener.received < where.length
            if at_end and opener.received == 0 and where.first > 0:
                # Nothing at all where the range starts: past the end, or cut there.
                await self._check_final(key, entry)
                return
            for out in self._bounded(opener.finish(at_end=at_end)):
                yield out
        except CorruptObject as exc:
            raise _loud(exc) from None
        finally:
            # The inner readers release their file or body without awaiting: no shield needed.
            aclose = getattr(stored, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _read_long(
        self, key: str, cipher: ChunkCipher, where: Span, length: int
    ) -> AsyncIterator[bytearray]:
        """A long read from the start (a full GET, a player's `bytes=0-`): the first piece is
        opened here (time to first byte), the rest in batches in a worker thread, each batch
        opened while the one before is sent: the decryption releases the GIL, so it runs beside
        the event loop's reading and sending. At most one batch is opened ahead of the sending."""
        opener = StreamOpener(cipher, where.skip, length, self._group)
        loop = asyncio.get_running_loop()
        stored = self._inner.read(key, where.offset, where.length)
        ahead: asyncio.Future[list[bytearray]] | None = None
        batch: list[bytes] = []
        size = 0
        try:
            async for piece in stored:
                if not opener.received:
                    for out in opener.open_pieces([piece]):
                        yield out
                    continue
                batch.append(piece)
                size += len(piece)
                if size < BATCH_BYTES:
                    continue
                done = [] if ahead is None else await asyncio.shield(ahead)
                # The loop's executor: a hop costs about 40 us of CPU against anyio's 95 here.
                ahead = loop.run_in_executor(None, opener.open_pieces, batch)
                batch, size = [], 0
                done.reverse()
                while done:
                    yield done.pop()  # and let go: the next batch may fill it again once sent
            if ahead is not None:
                done, ahead = await asyncio.shield(ahead), None
                done.reverse()
                while done:
                    yield done.pop()
            at_end = opener.received + size < where.length
            for out in await anyio.to_thread.run_sync(_open_last, opener, batch, at_end):
                yield out
        except CorruptObject as exc:
            raise _loud(exc) from None
        finally:
            if ahead is not None:
                # A batch may still be opened in the worker: wait for it (one batch at most), so
                # no thread works on for a closed read and a failure of it is not left unread.
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: a failed batch nobody waits for is moot
            aclose = getattr(stored, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _read_file(
        self, path: Path, key: str, cipher: ChunkCipher, where: Span, length: int
    ) -> AsyncIterator[bytearray]:
        """A long read from the start over a local folder: a thread of its own reads the stored
        bytes and opens them one batch ahead (media/storage/opening.py); the loop only sends.
        The first batch is one piece (time to first byte)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("no such object", key=key) from None
        except OSError as exc:
            raise Unavailable(
                "storage folder failed", dependency="storage", errno=exc.errno
            ) from exc
        opener = StreamOpener(cipher, where.skip, length, self._group)
        first = min(self._group * SEALED, where.length)
        end = where.offset + where.length
        reader = FileOpener(opener, fd, where.offset, end, first, BATCH_BYTES)
        try:
            async for buffer in reader.buffers():
                yield buffer
        except CorruptObject as exc:
            raise _loud(exc) from None
        finally:
            reader.stop()  # the thread ends after the batch at hand and closes the file

    def _bounded(self, plain: bytearray) -> list[bytes | bytearray]:
        """`plain` cut into pieces of at most chunk_bytes."""
        if len(plain) <= self._chunk:
            return [plain] if plain else []
        view = memoryview(plain)
        return [bytes(view[i : i + self._chunk]) for i in range(0, len(view), self._chunk)]

    async def _check_final(self, key: str, cipher: ChunkCipher) -> None:
        """Authenticate the end of an object a range found nothing of: past the end, or cut."""
        plain = plaintext_size((await self._inner.stat(key)).size)
        if plain is None:
            raise CorruptObject("object truncated", dependency="storage", key=key)
        index = plain // CHUNK
        async with _closing(self._inner.read(key, HEADER + index * SEALED, SEALED)) as stored:
            data = b"".join([piece async for piece in stored])
        cipher.open_chunk(index, data, final=True)

    # --- writes --------------------------------------------------------------------------------

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int
    ) -> ObjectInfo:
        """Record a new envelope, then store the sealed stream; nothing is left on failure."""
        check_key(key)
        cipher = await self._new_envelope(key)
        plain = PlainCount(max_bytes)
        try:
            info = await self._inner.write(
                key,
                sealed_object(cipher, chunks, plain),
                content_type=content_type,
                max_bytes=ciphertext_size(max_bytes),
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                self._cache.pop(key, None)
                await self._forget_envelope(key)
            raise
        return replace(info, size=plain.size, sha256=plain.sha256.hexdigest())

    # --- multipart uploads: parts are sealed at their place in the object ------------------------

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Record the object's envelope first: every part is sealed under its data key."""
        check_key(key)
        await self._new_envelope(key)
        try:
            return await self._inner.create_multipart(key, content_type=content_type)
        except BaseException:
            with anyio.CancelScope(shield=True):
                self._cache.pop(key, None)
                await self._forget_envelope(key)
            raise

    async def write_part(
        self, key: str, multipart_id: str, part: PartSlot, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """Seal the part's chunks at their index (its offset is a multiple of 16 KiB)."""
        cipher = await self._entry(key)
        if isinstance(cipher, str):
            raise _loud(
                CorruptObject("multipart upload without envelope", dependency="storage", key=key)
            )
        stored_at, stored_size, final = part_layout(
            part.number, part.offset, part.size, last=part.last
        )
        sealer = Sealer(cipher, part.offset // CHUNK, header=part.number == 1)
        stored = replace(part, offset=stored_at, size=stored_size)
        info = await self._inner.write_part(
            key, multipart_id, stored, sealed_part(sealer, chunks, final)
        )
        return replace(info, size=part_plaintext_size(part.number, info.size))

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """The inner parts, with their plaintext sizes."""
        parts = await self._inner.list_parts(key, multipart_id)
        return [replace(p, size=part_plaintext_size(p.number, p.size)) for p in parts]

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """Assemble the inner parts of the same numbers; the object's size is the plaintext's."""
        wanted = {part.number for part in parts}
        stored = [p for p in await self._inner.list_parts(key, multipart_id) if p.number in wanted]
        info = await self._inner.complete_multipart(key, multipart_id, stored)
        plain = plaintext_size(info.size)
        if plain is None:
            # The last part was not sent as the end of the object: no final chunk.
            raise _loud(
                CorruptObject("assembled object has no final chunk", dependency="storage", key=key)
            )
        return replace(info, size=plain, sha256=None)

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """Drop the upload, then its envelope."""
        await self._inner.abort_multipart(key, multipart_id)
        self._cache.pop(key, None)
        await self._envelopes.delete_envelope(key)

    async def delete(self, key: str) -> None:
        """Remove the object, then its envelope."""
        await self._inner.delete(key)
        self._cache.pop(key, None)
        await self._envelopes.delete_envelope(key)

    # --- pass-through --------------------------------------------------------------------------

    async def keys(self) -> list[str]:
        """Every object key of the inner store."""
        return await self._inner.keys()

    async def sweep_partial(self, older_than: datetime, keep: Collection[str] = ()) -> int:
        """The inner store's unfinished writes."""
        return await self._inner.sweep_partial(older_than, keep)

    async def ping(self) -> None:
        """The inner store answers."""
        await self._inner.ping()

    async def close(self) -> None:
        """Close the inner store."""
        await self._inner.close()

    # --- envelopes -----------------------------------------------------------------------------

    async def _new_envelope(self, key: str) -> ChunkCipher:
        data_key = os.urandom(KEY)
        header = new_header(data_key, context(key))
        key_id, wrapped = self._keyring.wrap(data_key, key)
        # Recorded before any byte is stored: an encrypted object never exists without it.
        await self._envelopes.put_envelope(Envelope(key, FORMAT, key_id, wrapped, header))
        cipher = ChunkCipher.open(data_key, header, context(key), key)
        self._remember(key, cipher)
        return cipher

    async def _forget_envelope(self, key: str) -> None:
        try:
            await self._envelopes.delete_envelope(key)
        except MediaError:
            logger.warning("could not remove the envelope of a failed write; it names no object")

    async def _entry(self, key: str) -> _Entry:
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            return entry
        envelope = await self._envelopes.get_envelope(key)
        if envelope is None:
            return _PLAIN  # remembered by the caller once the object is seen to exist
        if envelope.format != FORMAT:
            raise _loud(CorruptObject("unknown format", dependency="storage", key=key))
        data_key = self._keyring.unwrap(envelope)
        try:
            cipher = ChunkCipher.open(data_key, envelope.header, context(key), key)
        except CorruptObject as exc:
            raise _loud(exc) from None
        self._remember(key, cipher)
        return cipher

    def _remember(self, key: str, entry: _Entry) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[_Piece]) -> AsyncIterator[AsyncIterator[_Piece]]:
    """Close a read however the consumer stops, so the inner file or body is released."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


def _open_last(opener: StreamOpener, batch: list[bytes], at_end: bool) -> list[bytearray]:
    """The last batch of a long read and, when the object ended, its final chunk."""
    return opener.open_pieces(batch) + opener.finish(at_end=at_end)


def _loud(exc: CorruptObject) -> CorruptObject:
    """Log an authentication failure at ERROR with what failed: someone altered the store."""
    logger.error(
        "stored object failed authentication: %s (key %s, chunk %s)",
        exc.detail,
        exc.data.get("key"),
        exc.data.get("chunk", "-"),
    )
    return exc
