"""Local files in and out of any Storage: what processing reads, and the files it writes back.

Not part of the port. Every backend stores and reads streams; these helpers turn a file into a
write and a read into a file, so each backend (and each layer over one: encryption, metrics) has
nothing file-shaped to implement. Many objects of one media (a rendition, a thumbnail, the
segments of a ladder) are many keys, each stored with `store_file` from the scratch folder it was
made in and deleted by key. A plain local folder is the one store whose objects already are files,
so `local_copy` hard-links those instead of moving any bytes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path

import anyio
import anyio.to_thread

from media.errors import CorruptObject
from media.models import ObjectInfo
from media.storage.base import FILE_BLOCK_BYTES, Storage, check_key
from media.storage.local import LocalStorage
from media.storage.observed import ObservedStorage


async def store_file(storage: Storage, key: str, path: Path, *, content_type: str) -> ObjectInfo:
    """Store a local file as object `key` through `storage.write`, its size as the byte limit."""
    check_key(key)
    limit = await anyio.to_thread.run_sync(lambda: path.stat().st_size)
    # Closed here however the write ends, so a failed write does not leave the file to the
    # event loop's generator finalizer.
    async with aclosing(_file_chunks(path)) as chunks:
        return await storage.write(key, chunks, content_type=content_type, max_bytes=limit)


async def local_copy(storage: Storage, key: str, target: Path, *, size: int | None = None) -> None:
    """Make `target` a local file holding the bytes of object `key`; NotFound when absent.

    A plain local folder links its file (no bytes move, whatever the size); any other store,
    the encryption layer over a local folder included, is read through the port. `size` is the
    size recorded when the object was stored: an object found shorter or longer is CorruptObject
    (a stat of an encrypted object cut at a chunk boundary reports the shorter size)."""
    check_key(key)
    folder = storage.inner if isinstance(storage, ObservedStorage) else storage
    if isinstance(folder, LocalStorage):
        await folder.link(key, target)
        found = await anyio.to_thread.run_sync(lambda: target.stat().st_size)
        if size is not None and found != size:
            await anyio.to_thread.run_sync(lambda: target.unlink(missing_ok=True))
            raise _other_size(key, size, found)
        return
    wanted = (await storage.stat(key)).size
    if size is not None and wanted != size:
        raise _other_size(key, size, wanted)
    chunks = storage.read(key, 0, wanted)
    handle = await anyio.to_thread.run_sync(target.open, "wb")
    try:
        batch: list[bytes] = []
        pending = copied = 0
        async for chunk in chunks:
            batch.append(chunk)
            pending += len(chunk)
            if pending >= FILE_BLOCK_BYTES:
                await anyio.to_thread.run_sync(handle.writelines, batch)
                copied += pending
                batch, pending = [], 0
        await anyio.to_thread.run_sync(handle.writelines, batch)
        if copied + pending != wanted:
            raise _other_size(key, wanted, copied + pending)
    except BaseException:
        handle.close()
        with anyio.CancelScope(shield=True):
            await _close(chunks)  # releases the file or response body a failed write left open
            await anyio.to_thread.run_sync(lambda: target.unlink(missing_ok=True))
        raise
    handle.close()


def _other_size(key: str, recorded: int, found: int) -> CorruptObject:
    return CorruptObject(
        "object size differs from the one recorded",
        dependency="storage",
        key=key,
        found=found,
        recorded=recorded,
    )


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _file_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    """The bytes of a local file in blocks, each read in a worker thread."""
    handle = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        while data := await anyio.to_thread.run_sync(handle.read, FILE_BLOCK_BYTES):
            yield data
    finally:
        # close() of a regular file does not block; running it inline survives cancellation.
        handle.close()
