"""Storage in a local folder: atomic writes by rename, ranged reads by pread on one descriptor."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import anyio
import anyio.to_thread

from media.config import Settings
from media.errors import InvalidInput, NotFound, TooLarge, Unavailable
from media.models import ObjectInfo, PartInfo, PartSlot
from media.storage import local_parts
from media.storage.base import (
    FILE_BLOCK_BYTES,
    check_key,
    check_range,
    chunk_bytes,
    is_key,
)
from media.storage.buffers import Recycler

_TEMP_PREFIX = local_parts.TEMP_PREFIX
PART_LOCK_POLL_S = 0.05
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14+
_T = TypeVar("_T")


class LocalStorage:
    """Objects as files under `root`, fanned out as `ab/cd/<key>` to keep folders small."""

    def __init__(self, root: Path, *, chunk_bytes: int, max_threads: int) -> None:
        self._root = root
        self._root_text = os.fspath(root)
        self._chunk = chunk_bytes
        # Several chunks per thread hop: the hop, not pread, dominates the cost of small chunks.
        self._batch = max(1, FILE_BLOCK_BYTES // chunk_bytes)
        self._limiter = anyio.CapacityLimiter(max_threads)
        # One writer per part at a time in this process: a part sent twice at once is written
        # whole by each in turn, never interleaved (local_parts locks it across processes).
        self._part_locks: weakref.WeakValueDictionary[tuple[str, int], anyio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def file_of(self, key: str) -> Path:
        """The file that holds (or would hold) an object: this backend's own, not the port's."""
        return self._path(key)

    async def stat(self, key: str) -> ObjectInfo:
        """Size, etag and mtime of an object; NotFound when absent."""
        path = self._path(key)
        return await self._run(_stat_file, path, key)

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Yield bytes [start, start+length), several chunks read per thread hop."""
        path = self._file(key)
        check_range(start, length)
        # The pieces are bytearrays (on the loop and in a thread alike): every reader of the port
        # takes its pieces as buffers (ASGI sends, file writes, hashing, joins), as with
        # encryption.
        return cast("AsyncIterator[bytes]", self._read(path, key, start, start + length))

    async def _read(
        self, path: str, key: str, position: int, end: int
    ) -> AsyncIterator[bytes | bytearray]:
        buffers = Recycler(self._chunk)
        fd, blocks = await self._first_blocks(path, key, position, end, buffers)
        try:
            while True:
                for block in blocks:
                    yield block
                    position += len(block)
                if position >= end or not blocks:
                    return  # done, or end of file before the end of the range
                # Let go of the batch handed out, so that its buffers can be filled again.
                del block
                blocks.clear()
                blocks = self._cached_blocks(fd, position, end, buffers)
                if not blocks:
                    blocks = await self._run(
                        _pread_batch, fd, position, end, self._chunk, self._batch
                    )
        finally:
            # Closing a descriptor does not block; doing it inline survives cancellation.
            os.close(fd)

    async def _first_blocks(
        self, path: str, key: str, position: int, end: int, buffers: Recycler
    ) -> tuple[int, list[bytes | bytearray]]:
        if _NOWAIT is None:
            # Opening and the first batch share one thread hop.
            return await self._run(
                _open_and_read, path, key, position, end, self._chunk, self._batch
            )
        try:
            fd = _open_for_read(path, key)
        except OSError as exc:
            raise Unavailable(
                "storage folder failed", dependency="storage", errno=exc.errno
            ) from exc
        try:
            blocks = self._cached_blocks(fd, position, end, buffers)
            if blocks:
                return fd, blocks
            return fd, await self._run(_pread_batch, fd, position, end, self._chunk, self._batch)
        except BaseException:
            os.close(fd)
            raise

    def _cached_blocks(
        self, fd: int, position: int, end: int, buffers: Recycler
    ) -> list[bytes | bytearray]:
        """Up to one batch of chunks read on the loop, as long as each is in the page cache.

        RWF_NOWAIT fails instead of waiting for the disk, so the loop never blocks; a thread hop
        per batch is what a cached read saves (on a busy machine each hop waits for both
        threads to be scheduled). Empty when the next chunk is not cached: the caller hops.
        The chunks are the buffers read into, no copy: whole chunks come from `buffers`."""
        blocks: list[bytes | bytearray] = []
        if _NOWAIT is None:
            return blocks
        while len(blocks) < self._batch and position < end:
            length = min(self._chunk, end - position)
            whole = length == buffers.size
            buffer = buffers.take() if whole else bytearray(length)
            if whole:
                buffers.given(buffer)  # handed out below, or free again at once when not
            if not _read_cached(fd, position, buffer, _NOWAIT):
                break
            blocks.append(buffer)
            position += length
        return blocks

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int
    ) -> ObjectInfo:
        """Stream into a temp file beside the target, fsync, rename; nothing is left on failure."""
        final = self._path(key)
        temp = await self._run(_TempFile.create, final)
        hasher = hashlib.sha256()
        size = 0
        try:
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge("object exceeds the byte limit", limit=max_bytes)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= FILE_BLOCK_BYTES:
                    await self._run(temp.append, pending, hasher)
                    pending, pending_size = [], 0
            await self._run(temp.append, pending, hasher)
            stat = await self._run(temp.commit, final)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._run(temp.discard)
            raise
        info = _object_info(stat, content_type)
        return ObjectInfo(
            size=info.size,
            etag=info.etag,
            last_modified=info.last_modified,
            content_type=content_type,
            sha256=hasher.hexdigest(),
        )

    async def link(self, key: str, target: Path) -> None:
        """Make `target` a hard link to the object's file (a copy across filesystems); NotFound
        when absent. Not part of the port: only a plain local folder holds objects as files."""
        source = self._path(key)
        await self._run(_link_or_copy, source, target, key)

    async def delete(self, key: str) -> None:
        """Remove an object; absent is fine."""
        path = self._path(key)
        await self._run(lambda: path.unlink(missing_ok=True))

    async def sweep_partial(self, older_than: datetime, keep: Collection[str] = ()) -> int:
        """Delete temp files of crashed writes and abandoned multipart uploads (docs/security.md
        INV-3)."""
        return await self._run(
            _sweep_temp_files, self._root, older_than.timestamp(), frozenset(keep)
        )

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Create the temp file the parts go into; its id is the key itself."""
        await self._run(local_parts.create, self._path(key))
        return key

    async def write_part(
        self, key: str, multipart_id: str, part: PartSlot, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """Positional writes at the part's offset, then fdatasync, then the part's record."""
        final, end = self._path(key), part.offset + part.size
        lock = self._part_locks.setdefault((key, part.number), anyio.Lock())
        async with lock:
            held = await self._lock_part(final, part.number)
            try:
                data, index = await self._run(local_parts.open_part, final, part.number)
            except BaseException:
                local_parts.close(held)
                raise
            try:
                digest = hashlib.md5(usedforsecurity=False)
                if await self._write_at(data, chunks, part.offset, end, digest) != end:
                    raise InvalidInput("the part body ended before its size", field="body")
            except BaseException:
                local_parts.close(data, index, held)
                raise
            return await self._run(
                local_parts.finish_part, data, index, held, part.number, part.size, digest
            )

    async def _lock_part(self, final: Path, number: int) -> int:
        """Part `number`'s lock, waiting (cancellably, on the loop) while a writer of another
        process holds it: a held lock lasts as long as that writer's client sends."""
        while True:
            # On the loop, not in a thread: a try never waits, and a lock taken by a thread the
            # caller stopped waiting for (cancelled) would be held, unknown, until the process
            # ends.
            try:
                held = local_parts.try_lock_part(final, number)
            except OSError as exc:
                raise Unavailable(
                    "storage folder failed", dependency="storage", errno=exc.errno
                ) from exc
            if held is not None:
                return held
            await anyio.sleep(PART_LOCK_POLL_S)

    async def _write_at(
        self, fd: int, chunks: AsyncIterable[bytes], position: int, end: int, digest: Any
    ) -> int:
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in chunks:
            if position + pending_size + len(chunk) > end:
                raise TooLarge("part exceeds its size", limit=end - position)
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= FILE_BLOCK_BYTES:
                position = await self._run(local_parts.write_blocks, fd, pending, position, digest)
                pending, pending_size = [], 0
        return await self._run(local_parts.write_blocks, fd, pending, position, digest)

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """The parts recorded in the index."""
        return await self._run(local_parts.list_parts, self._path(key))

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """Cut the temp file to the parts' total, then rename it into place."""
        final = self._path(key)
        total, numbers = sum(part.size for part in parts), [part.number for part in parts]
        stat = await self._run(local_parts.assemble, final, total, numbers)
        await self._run(_fsync_dir, final.parent)
        return _object_info(stat)

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """Delete the temp file and the index."""
        await self._run(local_parts.remove, self._path(key))

    async def keys(self) -> list[str]:
        """Every object key under the root, sorted (temp files excluded)."""
        return await self._run(_walk_keys, self._root)

    async def ping(self) -> None:
        """Raise Unavailable unless the root is a writable folder."""
        ready = await self._run(lambda: self._root.is_dir() and os.access(self._root, os.W_OK))
        if not ready:
            raise Unavailable("storage folder missing or read-only", dependency="storage")

    async def close(self) -> None:
        """Nothing to release: every descriptor is closed by the call that opened it."""

    def _file(self, key: str) -> str:
        # The read path's form of _path: string joins cost a tenth of pathlib's per request.
        check_key(key)
        return f"{self._root_text}/{key[:2]}/{key[2:4]}/{key}"

    def _path(self, key: str) -> Path:
        check_key(key)
        return self._root / key[:2] / key[2:4] / key

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except OSError as exc:
            raise Unavailable(
                "storage folder failed", dependency="storage", errno=exc.errno
            ) from exc


async def open_local(settings: Settings) -> LocalStorage:
    """Create the storage folder when needed and return the backend."""
    root = settings.storage.path
    assert root is not None  # parse_storage_url guarantees a path for file://
    try:
        await anyio.to_thread.run_sync(lambda: root.mkdir(parents=True, exist_ok=True))
    except OSError as exc:
        raise Unavailable("cannot create storage folder", dependency="storage") from exc
    return LocalStorage(
        root, chunk_bytes=chunk_bytes(settings), max_threads=settings.storage_max_connections
    )


class _TempFile:
    """A temp file in the target's folder, so the final rename never crosses filesystems."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.handle: BinaryIO | None = handle

    @classmethod
    def create(cls, final: Path) -> _TempFile:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=final.parent, prefix=_TEMP_PREFIX)
        return cls(Path(name), os.fdopen(fd, "wb"))

    def append(self, blocks: list[bytes], hasher: hashlib._Hash) -> None:
        assert self.handle is not None
        for block in blocks:
            hasher.update(block)
            self.handle.write(block)

    def commit(self, final: Path) -> os.stat_result:
        assert self.handle is not None
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self.handle = None
        os.replace(self.path, final)
        _fsync_dir(final.parent)
        return final.stat()

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        self.path.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry itself reaches the disk.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _etag(stat: os.stat_result) -> str:
    # Every write makes a new inode via os.replace, so (inode, mtime_ns, size) changes whenever the
    # bytes can have changed; it costs one stat, no sidecar, no rehash of large files. Hashed so
    # the tag shows no filesystem details. A copied data folder only gets new tags (cache misses).
    raw = f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _object_info(stat: os.stat_result, content_type: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        size=stat.st_size,
        etag=_etag(stat),
        last_modified=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=UTC),
        content_type=content_type,
    )


def _stat_file(path: Path, key: str) -> ObjectInfo:
    # The content type lives in the database; the folder stores bytes only.
    try:
        return _object_info(path.stat())
    except FileNotFoundError:
        raise NotFound("no such object", key=key) from None


def _open_for_read(path: str | Path, key: str) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound("no such object", key=key) from None


def _read_cached(fd: int, position: int, buffer: bytearray, flags: int) -> bool:
    """Fill `buffer` from `position` when all of it is in the page cache; False when it is not
    (the caller reads in a thread)."""
    try:
        return os.preadv(fd, [buffer], position, flags) == len(buffer)
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: the filesystem cannot say
        return False


def _open_and_read(
    path: str, key: str, position: int, end: int, chunk: int, batch: int
) -> tuple[int, list[bytes | bytearray]]:
    fd = _open_for_read(path, key)
    try:
        return fd, _pread_batch(fd, position, end, chunk, batch)
    except BaseException:
        os.close(fd)
        raise


def _pread_batch(
    fd: int, position: int, end: int, chunk: int, batch: int
) -> list[bytes | bytearray]:
    """Up to `batch` chunks from `position`, read in a worker thread: bytearrays like the chunks
    read on the loop, so every piece of a local read is of one type."""
    blocks: list[bytes | bytearray] = []
    while len(blocks) < batch and position < end:
        block = bytearray(min(chunk, end - position))
        count = os.preadv(fd, [block], position)
        if not count:
            break
        if count < len(block):
            del block[count:]
        blocks.append(block)
        position += count
    return blocks


def _link_or_copy(source: Path, target: Path, key: str) -> None:
    try:
        try:
            # Objects are never rewritten in place (writes rename a new file over the old), so a
            # link keeps exactly these bytes, even after the object is deleted.
            os.link(source, target)
        except FileNotFoundError:
            raise
        except OSError:  # another filesystem, or links refused: a copy, in the kernel
            shutil.copyfile(source, target)
    except FileNotFoundError:
        raise NotFound("no such object", key=key) from None


def _sweep_temp_files(root: Path, cutoff: float, keep: frozenset[str]) -> int:
    removed = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(_TEMP_PREFIX) or local_parts.temp_key(name) in keep:
                continue
            path = Path(folder, name)
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def _walk_keys(root: Path) -> list[str]:
    found: list[str] = []
    for _folder, _dirs, files in os.walk(root):
        found.extend(name for name in files if is_key(name))
    return sorted(found)
