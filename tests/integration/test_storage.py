"""Storage contract, run against a local folder and against moto's S3 server over HTTP."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from media.config import Settings
from media.errors import ConfigError, CorruptObject, InvalidInput, NotFound, TooLarge, Unavailable
from media.storage import Storage, open_storage
from media.storage.files import local_copy, store_file
from media.storage.local import LocalStorage
from media.storage.s3 import S3_READ_BYTES
from media.storage.s3_body import wire_response
from tests.support import free_port
from tests.support.s3 import s3_client

CHUNK = 64 * 1024
MiB = 1024 * 1024
PART = 8 * MiB


def settings_for(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings naming one storage URL, everything else default."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'media.sqlite3'}",
        "storage_url": url,
        "stream_chunk_bytes": CHUNK,
    }
    values.update(overrides)
    return Settings(**values)


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic test bytes."""
    return random.Random(seed).randbytes(size)


async def pieces(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    """Yield `data` in pieces of `size` bytes, like a request body."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    """Every chunk of a read."""
    return [chunk async for chunk in chunks]


def read(path: Path) -> bytes:
    """The bytes of a local file."""
    return path.read_bytes()


def same_file(one: Path, other: Path) -> bool:
    """True when both paths name one file (a hard link)."""
    return os.path.samefile(one, other)


def new_key() -> str:
    """A fresh storage key."""
    return uuid.uuid4().hex


def multipart_uploads(url: str) -> list[Any]:
    """Multipart uploads still open in the bucket of an s3:// URL."""
    bucket, _, query = url.removeprefix("s3://").partition("?")
    endpoint = dict(item.split("=", 1) for item in query.split("&"))["endpoint_url"]
    listing = s3_client(endpoint).list_multipart_uploads(Bucket=bucket.split("/")[0])
    return list(listing.get("Uploads", []))


async def assert_empty(storage: Storage, url: str) -> None:
    """Nothing left behind: no key, no temp file, no open multipart upload."""
    assert await storage.keys() == []
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
        assert [files for _, _, files in os.walk(root) if files] == []
    else:
        assert multipart_uploads(url) == []


@pytest.fixture
async def storage(storage_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open storage of each backend."""
    opened = await open_storage(settings_for(storage_url, tmp_path))
    yield opened
    await opened.close()


@pytest.fixture
async def s3_storage(s3_bucket: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open S3 storage on a fresh bucket."""
    opened = await open_storage(settings_for(s3_bucket, tmp_path))
    yield opened
    await opened.close()


@pytest.fixture
async def local_storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    """An open local storage."""
    opened = await open_storage(settings_for(f"file://{tmp_path / 'objects'}", tmp_path))
    assert isinstance(opened, LocalStorage)
    yield opened
    await opened.close()


# --- the contract, both backends ------------------------------------------------------------


async def test_write_stat_read_round_trip(storage: Storage, storage_url: str) -> None:
    data = payload(300_001)
    key = new_key()
    written = await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    assert written.size == len(data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.content_type == "video/mp4"
    info = await storage.stat(key)
    assert (info.size, info.etag, info.last_modified) == (
        written.size,
        written.etag,
        written.last_modified,
    )
    assert info.etag and '"' not in info.etag and not info.etag.startswith("W/")
    assert info.last_modified.tzinfo is not None
    assert abs(time.time() - info.last_modified.timestamp()) < 120
    # The folder stores bytes only (the type lives in the database); S3 keeps it with the object.
    assert info.content_type == (None if storage_url.startswith("file://") else "video/mp4")
    chunks = await collect(storage.read(key, 0, len(data)))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= CHUNK
    assert await storage.keys() == [key]


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 1, slice(0, 1)),  # first byte
        (999, 1, slice(999, 1000)),  # last byte
        (0, 1000, slice(0, 1000)),  # whole object
        (500, 1, slice(500, 501)),  # one byte inside
        (1, 998, slice(1, 999)),  # all but the edges
        (990, 100, slice(990, 1000)),  # past the end: clipped
        (1000, 5, slice(0, 0)),  # starting at the end: nothing
        (10, 0, slice(0, 0)),  # zero length: nothing
    ],
)
async def test_ranges_at_the_edges(
    storage: Storage, start: int, length: int, expected: slice
) -> None:
    data = payload(1000, seed=start)
    key = new_key()
    await storage.write(key, pieces(data), content_type="image/png", max_bytes=1000)
    assert b"".join(await collect(storage.read(key, start, length))) == data[expected]


async def test_ranges_across_chunks_and_parts(storage: Storage) -> None:
    data = payload(2 * PART + 12_345, seed=7)
    key = new_key()
    written = await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=10**9)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert (await storage.stat(key)).size == len(data)
    for start, length in [
        (PART - 3, 7),
        (CHUNK - 1, CHUNK + 2),
        (len(data) - CHUNK * 2, CHUNK * 2),
    ]:
        got = b"".join(await collect(storage.read(key, start, length)))
        assert got == data[start : start + length]


async def test_both_uuid_spellings_are_keys(storage: Storage) -> None:
    for key in (uuid.uuid4().hex, str(uuid.uuid4())):
        await storage.write(key, pieces(b"abc"), content_type="image/png", max_bytes=3)
        assert b"".join(await collect(storage.read(key, 0, 3))) == b"abc"


BAD_KEYS = [
    "",
    "../" + uuid.uuid4().hex,
    uuid.uuid4().hex + "/x",
    "a/b",
    "..",
    uuid.uuid4().hex.upper(),
    uuid.uuid4().hex[:-1],
    uuid.uuid4().hex + "0",
    "/etc/passwd",
    "." + uuid.uuid4().hex[1:],
    uuid.uuid4().hex[:31] + "\x00",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_are_validated(
    storage: Storage, storage_url: str, key: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput):
        await storage.write(key, pieces(b"x"), content_type="image/png", max_bytes=10)
    with pytest.raises(InvalidInput):
        await storage.stat(key)
    with pytest.raises(InvalidInput):
        storage.read(key, 0, 1)
    with pytest.raises(InvalidInput):
        await storage.delete(key)
    with pytest.raises(InvalidInput):
        await local_copy(storage, key, tmp_path / "out.bin")
    await assert_empty(storage, storage_url)


async def test_negative_ranges_are_refused(storage: Storage) -> None:
    for start, length in [(-1, 1), (0, -1)]:
        with pytest.raises(InvalidInput):
            storage.read(new_key(), start, length)


async def test_missing_key_is_not_found(storage: Storage, tmp_path: Path) -> None:
    key = new_key()
    with pytest.raises(NotFound):
        await storage.stat(key)
    with pytest.raises(NotFound):
        await collect(storage.read(key, 0, 10))
    with pytest.raises(NotFound):
        await collect(storage.read(key, 0, 0))
    with pytest.raises(NotFound):
        await local_copy(storage, key, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    await storage.delete(key)  # idempotent


async def test_delete_removes_and_is_idempotent(storage: Storage) -> None:
    keys = sorted(new_key() for _ in range(3))
    for key in keys:
        await storage.write(key, pieces(b"data"), content_type="image/png", max_bytes=4)
    assert await storage.keys() == keys
    await storage.delete(keys[1])
    await storage.delete(keys[1])
    assert await storage.keys() == [keys[0], keys[2]]
    with pytest.raises(NotFound):
        await storage.stat(keys[1])


@pytest.mark.parametrize(
    ("size", "limit"),
    [(100_001, 100_000), (PART + 2 * CHUNK, PART + CHUNK)],  # in the first part; after one part
    ids=["single", "multipart"],
)
async def test_write_over_max_bytes_leaves_nothing(
    storage: Storage, storage_url: str, size: int, limit: int
) -> None:
    data = payload(size)
    with pytest.raises(TooLarge) as caught:
        await storage.write(
            new_key(), pieces(data, CHUNK), content_type="video/mp4", max_bytes=limit
        )
    assert caught.value.data["limit"] == limit
    await assert_empty(storage, storage_url)


@pytest.mark.parametrize("fail_after", [0, 50_000, PART + CHUNK])
async def test_failing_source_leaves_nothing(
    storage: Storage, storage_url: str, fail_after: int
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        sent = 0
        while sent < fail_after:
            yield payload(CHUNK, seed=sent)
            sent += CHUNK
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await storage.write(new_key(), broken(), content_type="video/mp4", max_bytes=10**9)
    await assert_empty(storage, storage_url)


async def test_partial_object_is_never_visible(storage: Storage, storage_url: str) -> None:
    key = new_key()
    halfway, release = anyio.Event(), anyio.Event()
    data = payload(PART + 3 * CHUNK)

    async def slow() -> AsyncIterator[bytes]:
        async for piece in pieces(data[: PART + CHUNK], CHUNK):
            yield piece
        halfway.set()
        await release.wait()
        async for piece in pieces(data[PART + CHUNK :], CHUNK):
            yield piece

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: storage.write(key, slow(), content_type="video/mp4", max_bytes=10**9)
        )
        await halfway.wait()
        with pytest.raises(NotFound):
            await storage.stat(key)
        with pytest.raises(NotFound):
            await collect(storage.read(key, 0, 1))
        assert await storage.keys() == []
        release.set()
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data


async def test_concurrent_reads(storage: Storage) -> None:
    data = payload(3 * MiB + 17, seed=3)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    rng = random.Random(5)
    ranges = [(rng.randrange(len(data)), rng.randrange(1, MiB)) for _ in range(24)]
    results: dict[int, bytes] = {}

    async def fetch(index: int, start: int, length: int) -> None:
        results[index] = b"".join(await collect(storage.read(key, start, length)))

    async with anyio.create_task_group() as group:
        for index, (start, length) in enumerate(ranges):
            group.start_soon(fetch, index, start, length)
    for index, (start, length) in enumerate(ranges):
        assert results[index] == data[start : start + length]


async def test_a_copy_of_an_object_of_another_size_than_recorded_is_refused(
    storage: Storage, tmp_path: Path
) -> None:
    key = new_key()
    await storage.write(key, pieces(b"x" * 1000), content_type="image/png", max_bytes=1000)
    target = tmp_path / "copy.bin"
    for recorded in (1200, 999):
        with pytest.raises(CorruptObject):
            await local_copy(storage, key, target, size=recorded)
        assert not target.exists()
    await local_copy(storage, key, target, size=1000)
    assert target.read_bytes() == b"x" * 1000


async def test_store_file_and_local_copy(
    storage: Storage, storage_url: str, tmp_path: Path
) -> None:
    data = payload(2 * MiB + 5, seed=11)
    source = tmp_path / "thumb.jpg"
    source.write_bytes(data)
    key = new_key()
    written = await store_file(storage, key, source, content_type="image/jpeg")
    assert (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    target = tmp_path / "copy.bin"
    await local_copy(storage, key, target)
    assert target.read_bytes() == data
    if isinstance(storage, LocalStorage):  # the plain folder's fast path: a link, no bytes moved
        assert same_file(target, storage.file_of(key))
    await storage.delete(key)
    assert target.read_bytes() == data  # the copy outlives the object


def other_filesystem(than: Path) -> Path:
    """A folder on another filesystem than `than` (tmpfs), or skip."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == than.stat().st_dev:
        pytest.skip("needs a second filesystem")
    return shm


async def test_local_copy_across_filesystems(local_storage: LocalStorage, tmp_path: Path) -> None:
    data, key = payload(MiB + 3, seed=12), new_key()
    await local_storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    with tempfile.TemporaryDirectory(dir=other_filesystem(tmp_path)) as scratch:
        target = Path(scratch) / "original"
        await local_copy(local_storage, key, target)  # no link across filesystems: a copy
        assert read(target) == data
        assert not same_file(target, local_storage.file_of(key))


async def test_ping_answers(storage: Storage) -> None:
    await storage.ping()


# --- stopping a read early -------------------------------------------------------------------


def open_paths() -> list[str]:
    """What this process's file descriptors point at."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return found


async def test_local_early_close_releases_the_file(local_storage: LocalStorage) -> None:
    data = payload(4 * MiB)
    key = new_key()
    await local_storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    path = str(local_storage.file_of(key))
    reader = local_storage.read(key, 0, len(data))
    first = await reader.__anext__()
    assert first == data[:CHUNK]
    assert path in open_paths()
    await reader.aclose()  # type: ignore[attr-defined]
    assert path not in open_paths()


async def test_long_read_never_refills_a_piece_still_held(storage: Storage) -> None:
    # Pieces are reused buffers (read on the loop, or for S3 in a worker thread while the loop
    # sends the batch before): one still held (a queued socket write, a view, a list) must keep
    # its bytes while the read goes on.
    data = payload(6 * MiB + 3, seed=5)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    held: list[bytes] = []
    views: list[memoryview] = []
    got = b""
    position = 0
    async for piece in storage.read(key, 0, len(data)):
        if position < MiB:
            held.append(piece)
        elif position < 2 * MiB:
            views.append(memoryview(piece))
        got += piece
        position += len(piece)
    assert got == data
    assert b"".join(held) == data[: len(b"".join(held))]
    assert b"".join(views) == data[MiB : MiB + sum(len(view) for view in views)]


@pytest.mark.parametrize(("start", "length"), [(0, 3 * MiB + 5), (MiB - 7, CHUNK), (10, 100)])
async def test_local_read_of_bytes_out_of_the_page_cache(
    local_storage: LocalStorage, start: int, length: int
) -> None:
    # Reads on the loop only take cached bytes; evicted ones come through a worker thread.
    data = payload(3 * MiB + 5)
    key = new_key()
    await local_storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    fd = os.open(str(local_storage.file_of(key)), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages (fsynced) are dropped
    finally:
        os.close(fd)
    got = await collect(local_storage.read(key, start, length))
    assert b"".join(got) == data[start : start + length]
    assert max(len(chunk) for chunk in got) <= CHUNK


class RecordingBody:
    """Wraps a botocore body to record its close and the reads of the HTTP response under it,
    which the storage reads into its buffers directly (media/storage/s3_body.py)."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self._raw_stream = body._raw_stream  # what the storage reaches for, as for the real body
        self.reads = 0
        self.closed = False
        wire = wire_response(body)
        assert wire is not None, "the body's bytes would not land in the storage's buffers"
        readinto = wire.readinto

        def recorded(buffer: memoryview) -> int:
            assert not self.closed, "read after close"
            self.reads += 1
            return readinto(buffer)

        wire.readinto = recorded  # type: ignore[method-assign]

    def readinto(self, buffer: memoryview) -> int:
        raise AssertionError("read through botocore's copy, not into the storage's buffers")

    def close(self) -> None:
        self.closed = True
        self.body.close()


def record_gets(storage: Storage) -> tuple[list[RecordingBody], list[str | None]]:
    """Wrap every GetObject body of an S3 storage; also note each Range header sent."""
    bodies: list[RecordingBody] = []
    ranges: list[str | None] = []
    events = storage._client.meta.events  # type: ignore[attr-defined]

    def after_get(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Body"] = RecordingBody(parsed["Body"])
        bodies.append(parsed["Body"])

    def before_send(request: Any, **_: Any) -> None:
        if request.method == "GET":
            ranges.append(request.headers.get("Range", b"").decode() or None)

    events.register("after-call.s3.GetObject", after_get)
    events.register("before-send.s3.GetObject", before_send)
    return bodies, ranges


async def test_s3_early_close_closes_the_body(s3_storage: Storage) -> None:
    data = payload(2 * MiB)
    key = new_key()
    await s3_storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    bodies, ranges = record_gets(s3_storage)
    reader = s3_storage.read(key, 0, len(data))
    assert await reader.__anext__() == data[:CHUNK]
    assert [body.closed for body in bodies] == [False]
    await reader.aclose()  # type: ignore[attr-defined]
    # The first hop reads one chunk and the read-ahead at most S3_READ_BYTES more (one batch
    # ahead); nothing more is read after the close.
    (body,) = bodies
    assert body.closed
    assert 1 <= body.reads <= 1 + S3_READ_BYTES // CHUNK
    assert ranges == [f"bytes=0-{len(data) - 1}"]


async def test_s3_range_is_asked_of_the_store(s3_storage: Storage) -> None:
    data = payload(MiB)
    key = new_key()
    await s3_storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    bodies, ranges = record_gets(s3_storage)
    got = b"".join(await collect(s3_storage.read(key, 1000, 3 * CHUNK)))
    assert got == data[1000 : 1000 + 3 * CHUNK]
    assert ranges == [f"bytes=1000-{1000 + 3 * CHUNK - 1}"]
    assert [(body.closed, body.reads) for body in bodies] == [(True, 3)]


# --- memory stays flat whatever the size ---------------------------------------------------


async def test_local_64_mib_object_in_constant_memory(local_storage: LocalStorage) -> None:
    size = 64 * MiB
    expected = hashlib.sha256()

    async def generated() -> AsyncIterator[bytes]:
        rng = random.Random(64)
        for _ in range(size // MiB):
            block = rng.randbytes(MiB)
            expected.update(block)
            yield block

    key = new_key()
    tracemalloc.start()
    try:
        written = await local_storage.write(
            key, generated(), content_type="video/mp4", max_bytes=size
        )
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        seen = hashlib.sha256()
        async for chunk in local_storage.read(key, 0, size):
            seen.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written.sha256 == seen.hexdigest() == expected.hexdigest()
    assert write_peak < 8 * MiB, write_peak
    assert read_peak < 8 * MiB, read_peak


# --- opening, configuration and outages ------------------------------------------------------


async def test_open_local_creates_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "objects"
    opened = await open_storage(settings_for(f"file://{root}", tmp_path))
    assert root.is_dir()
    await opened.ping()
    await opened.close()


async def test_missing_bucket_is_a_config_error(s3_server: str, tmp_path: Path) -> None:
    url = f"s3://no-such-bucket-{new_key()[:12]}?endpoint_url={s3_server}&region=us-east-1"
    with pytest.raises(ConfigError) as caught:
        await open_storage(settings_for(url + "&addressing=path", tmp_path))
    assert caught.value.data["variable"] == "MEDIA_STORAGE_URL"
    assert "does not exist" in str(caught.value)


async def test_unreachable_store_is_unavailable_quickly(s3_server: str, tmp_path: Path) -> None:
    url = f"s3://bucket?endpoint_url=http://127.0.0.1:{free_port()}&region=us-east-1"
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await open_storage(settings_for(url, tmp_path))
    assert caught.value.dependency == "storage"
    assert time.monotonic() - started < 10


@pytest.fixture
def own_s3_server(s3_server: str) -> Iterator[Any]:
    """A second moto server that a test may stop; yields the server (endpoint in `.endpoint`)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    server.endpoint = f"http://127.0.0.1:{port}"
    yield server
    if server._server_ready_event.is_set():
        server.stop()


async def test_store_going_down_is_unavailable(own_s3_server: Any, tmp_path: Path) -> None:
    endpoint = own_s3_server.endpoint
    s3_client(endpoint).create_bucket(Bucket="going-down")
    url = f"s3://going-down?endpoint_url={endpoint}&region=us-east-1&addressing=path"
    opened = await open_storage(settings_for(url, tmp_path))
    key = new_key()
    await opened.write(key, pieces(b"bytes"), content_type="image/png", max_bytes=5)
    own_s3_server.stop()
    calls = [
        lambda: opened.stat(key),
        lambda: opened.ping(),
        lambda: collect(opened.read(key, 0, 5)),
        lambda: opened.write(new_key(), pieces(b"x"), content_type="image/png", max_bytes=1),
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(Unavailable) as caught:
                await call()
            assert caught.value.dependency == "storage"
            assert time.monotonic() - started < 10
    finally:
        await opened.close()


async def test_s3_prefix_scopes_the_keys(s3_bucket: str, tmp_path: Path) -> None:
    bucket_part, _, query = s3_bucket.partition("?")
    prefixed = await open_storage(settings_for(f"{bucket_part}/media/v1?{query}", tmp_path))
    plain = await open_storage(settings_for(s3_bucket, tmp_path))
    try:
        key = new_key()
        await prefixed.write(key, pieces(b"abc"), content_type="image/png", max_bytes=3)
        assert await prefixed.keys() == [key]
        assert await plain.keys() == []  # the prefixed object is not a key at the bucket root
    finally:
        await prefixed.close()
        await plain.close()


async def test_s3_exact_part_goes_in_one_put(s3_storage: Storage) -> None:
    calls: list[str] = []
    events = s3_storage._client.meta.events  # type: ignore[attr-defined]
    events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    for size in (PART, PART + 1):
        data = payload(size)
        written = await s3_storage.write(
            new_key(), pieces(data, MiB), content_type="video/mp4", max_bytes=size
        )
        assert written.sha256 == hashlib.sha256(data).hexdigest()
    writes = [name for name in calls if name not in ("HeadObject",)]
    assert writes == [
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
