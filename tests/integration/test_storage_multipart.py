"""Storage contract for multipart uploads, against a local folder and moto's S3 server."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from media.errors import Conflict, InvalidInput, NotFound
from media.models import PartInfo, PartSlot
from media.storage import Storage, local_parts, open_storage
from media.storage.local import LocalStorage
from tests.integration.test_storage import (
    MiB,
    assert_empty,
    collect,
    multipart_uploads,
    new_key,
    payload,
    pieces,
    settings_for,
)

PART = 5 * MiB


@pytest.fixture
async def storage(storage_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open storage of each backend."""
    opened = await open_storage(settings_for(storage_url, tmp_path))
    yield opened
    await opened.close()


@pytest.fixture
async def local_storage(tmp_path: Path) -> AsyncIterator[Storage]:
    """An open local storage."""
    opened = await open_storage(settings_for(f"file://{tmp_path / 'objects'}", tmp_path))
    yield opened
    await opened.close()


def split(data: bytes, size: int = PART) -> list[bytes]:
    """The parts of `data`: `size` bytes each, the last one the remainder."""
    return [data[offset : offset + size] for offset in range(0, len(data), size)]


class HalfSent:
    """A part body that sends its first half, then waits for `go_on` before the rest."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.half_sent, self.go_on = anyio.Event(), anyio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, paused half way."""
        yield self.body[: len(self.body) // 2]
        self.half_sent.set()
        await self.go_on.wait()
        yield self.body[len(self.body) // 2 :]


async def send(
    store: Storage, key: str, upload: str, number: int, data: bytes, size: int = PART
) -> PartInfo:
    """Write part `number` (1-based) of `size`-byte parts."""
    return await store.write_part(
        key, upload, PartSlot(number, (number - 1) * size, len(data)), pieces(data)
    )


async def test_parts_out_of_order_assemble_in_order(storage: Storage, storage_url: str) -> None:
    data = payload(2 * PART + 1234, seed=3)
    parts = split(data)
    key = new_key()
    upload = await storage.create_multipart(key, content_type="video/mp4")
    assert await storage.list_parts(key, upload) == []
    for number in (3, 1, 2):
        sent = await send(storage, key, upload, number, parts[number - 1])
        assert (sent.number, sent.size) == (number, len(parts[number - 1]))
        assert sent.etag and '"' not in sent.etag
    listed = await storage.list_parts(key, upload)
    assert [(part.number, part.size) for part in listed] == [(1, PART), (2, PART), (3, 1234)]
    assert await storage.keys() == []  # nothing visible before completion
    info = await storage.complete_multipart(key, upload, listed)
    assert info.size == len(data)
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data
    assert await storage.keys() == [key]
    if storage_url.startswith("s3://"):
        assert multipart_uploads(storage_url) == []
    await storage.delete(key)
    await assert_empty(storage, storage_url)


async def test_a_part_sent_again_replaces_the_first(storage: Storage) -> None:
    data = payload(PART + 10, seed=4)
    first, last = split(data)
    key = new_key()
    upload = await storage.create_multipart(key, content_type="video/mp4")
    wrong = await send(storage, key, upload, 1, payload(PART, seed=99))
    await send(storage, key, upload, 2, last)
    right = await send(storage, key, upload, 1, first)
    assert right.etag != wrong.etag
    listed = await storage.list_parts(key, upload)
    assert [part.etag for part in listed] == [right.etag, listed[1].etag]
    await storage.complete_multipart(key, upload, listed)
    got = b"".join(await collect(storage.read(key, 0, len(data))))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    await storage.delete(key)


async def test_one_part_from_two_processes_is_written_whole_by_each_in_turn(
    local_storage: Storage, tmp_path: Path
) -> None:
    """Two stores on one folder stand for two processes (`serve --workers 2`): the second
    writer of a part waits for the first, so the part holds one body, the one listed."""
    other = await open_storage(settings_for(f"file://{tmp_path / 'objects'}", tmp_path))
    key = new_key()
    upload = await local_storage.create_multipart(key, content_type="video/mp4")
    first, second = HalfSent(payload(PART, seed=1)), payload(PART, seed=2)
    slot = PartSlot(1, 0, PART)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(local_storage.write_part, key, upload, slot, first.chunks())
            await first.half_sent.wait()
            tasks.start_soon(other.write_part, key, upload, slot, pieces(second))
            await anyio.sleep(0.3)  # the second writer is at the part's lock by now
            first.go_on.set()
        listed = await local_storage.list_parts(key, upload)
        assert [part.etag for part in listed] == [hashlib.md5(second).hexdigest()]
        await local_storage.complete_multipart(key, upload, listed)
        assert b"".join(await collect(local_storage.read(key, 0, PART))) == second
    finally:
        await other.close()


async def test_a_part_held_by_another_process_is_waited_for_cancellably(
    local_storage: Storage, tmp_path: Path
) -> None:
    """While another process writes a part (its lock held), a second writer waits on the event
    loop: cancelled meanwhile, it ends at once and leaves the part as the other recorded it;
    and a completion then is a conflict, not a wait as long as that client sends."""
    key = new_key()
    upload = await local_storage.create_multipart(key, content_type="video/mp4")
    body = payload(PART, seed=7)
    recorded = await send(local_storage, key, upload, 1, body)
    assert isinstance(local_storage, LocalStorage)
    final = local_storage.file_of(key)
    other = os.open(local_parts.lock_path(final, 1), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer of part 1
    try:
        started = time.monotonic()
        with anyio.move_on_after(0.3):
            await send(local_storage, key, upload, 1, payload(PART, seed=8))
        assert time.monotonic() - started < 2
        assert await local_storage.list_parts(key, upload) == [recorded]
        with pytest.raises(Conflict):
            await local_storage.complete_multipart(key, upload, [recorded])
    finally:
        os.close(other)
    await local_storage.complete_multipart(key, upload, [recorded])
    assert b"".join(await collect(local_storage.read(key, 0, PART))) == body


async def test_a_part_received_while_its_upload_is_aborted_is_refused(
    local_storage: Storage,
) -> None:
    key = new_key()
    upload = await local_storage.create_multipart(key, content_type="video/mp4")
    body = HalfSent(payload(PART, seed=3))

    async def write() -> None:
        with pytest.raises(Conflict):
            await local_storage.write_part(key, upload, PartSlot(1, 0, PART), body.chunks())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write)
        await body.half_sent.wait()
        await local_storage.abort_multipart(key, upload)
        body.go_on.set()
    with pytest.raises(NotFound):
        await local_storage.list_parts(key, upload)


async def test_a_part_sent_again_after_the_listing_makes_completion_a_conflict(
    s3_bucket: str, tmp_path: Path
) -> None:
    """The listing a completion names is stale once a part is sent again: S3 refuses it
    (InvalidPart), and that is the caller's conflict, not a storage outage. (A local folder
    completes what its parts hold now: no listing goes stale.)"""
    storage = await open_storage(settings_for(s3_bucket, tmp_path))
    try:
        data = payload(PART + 10, seed=5)
        first, last = split(data)
        key = new_key()
        upload = await storage.create_multipart(key, content_type="video/mp4")
        await send(storage, key, upload, 1, first)
        await send(storage, key, upload, 2, last)
        stale = await storage.list_parts(key, upload)
        await send(storage, key, upload, 1, payload(PART, seed=6))
        with pytest.raises(Conflict):
            await storage.complete_multipart(key, upload, stale)
        await storage.abort_multipart(key, upload)
    finally:
        await storage.close()


async def test_a_short_part_is_refused_and_not_listed(storage: Storage) -> None:
    key = new_key()
    upload = await storage.create_multipart(key, content_type="video/mp4")
    with pytest.raises(InvalidInput):
        await storage.write_part(key, upload, PartSlot(1, 0, PART), pieces(payload(1000)))
    assert await storage.list_parts(key, upload) == []
    await storage.abort_multipart(key, upload)


async def test_abort_leaves_nothing(storage: Storage, storage_url: str) -> None:
    key = new_key()
    upload = await storage.create_multipart(key, content_type="image/png")
    await send(storage, key, upload, 1, payload(PART))
    await storage.abort_multipart(key, upload)
    await storage.abort_multipart(key, upload)  # twice is fine
    with pytest.raises(NotFound):
        await storage.list_parts(key, upload)
    await assert_empty(storage, storage_url)


async def test_sweep_keeps_live_multipart_uploads_and_removes_abandoned_ones(
    storage: Storage, storage_url: str
) -> None:
    live, abandoned = new_key(), new_key()
    live_upload = await storage.create_multipart(live, content_type="video/mp4")
    dead_upload = await storage.create_multipart(abandoned, content_type="video/mp4")
    await send(storage, live, live_upload, 1, payload(100))
    await send(storage, abandoned, dead_upload, 1, payload(100))
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert await storage.sweep_partial(future, keep={live}) >= 1
    with pytest.raises(NotFound):
        await storage.list_parts(abandoned, dead_upload)
    assert [part.number for part in await storage.list_parts(live, live_upload)] == [1]
    await storage.sweep_partial(future)
    await assert_empty(storage, storage_url)


async def test_a_local_part_is_written_in_bounded_memory(local_storage: Storage) -> None:
    size = 32 * MiB

    async def generated() -> AsyncIterator[bytes]:
        block = payload(64 * 1024, seed=8)
        for _ in range(size // len(block)):
            yield block

    key = new_key()
    upload = await local_storage.create_multipart(key, content_type="video/mp4")
    tracemalloc.start()
    try:
        await local_storage.write_part(key, upload, PartSlot(2, size, size), generated())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak
    assert [(part.number, part.size) for part in await local_storage.list_parts(key, upload)] == [
        (2, size)
    ]
    await local_storage.abort_multipart(key, upload)
