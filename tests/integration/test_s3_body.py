"""Reading GetObject bodies: connections reused after whole reads, short bodies refused, stalled
stores let go of promptly, chunked bodies read, ignored ranges refused.

moto always sends whole, prompt, length-announced bodies for the range asked, so these run
against a small S3 endpoint on loopback that answers HeadBucket and ranged GetObject over real
HTTP/1.1 keep-alive connections, and can be told to misbehave in each of those ways."""

from __future__ import annotations

import asyncio
import gc
import random
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from media.config import Settings
from media.errors import Unavailable
from media.storage import Storage, open_storage

CHUNK = 64 * 1024
OBJECT = random.Random(7).randbytes(24 * CHUNK + 11)  # more than a first chunk and a batch


class _Store(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    short = False  # send half of each body, then close the connection
    stall_after: int | None = None  # send this many bytes, then wait for `release`
    chunked = False  # Transfer-Encoding: chunked, no Content-Length
    ignore_range = False  # 200 with the whole object, as a store without range support
    answer_short_range = False  # 206 with half the range asked (Content-Range says so)
    release = threading.Event()
    closed_by_client = threading.Event()  # a stalled answer's client closed the connection

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client dropping a connection mid-body is what several tests do."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 endpoints answer
    server: _Store

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what matters off the server's counters."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        store = self.server
        if store.ignore_range:
            body = OBJECT
            self.send_response(200)
        else:
            first, _, last = self.headers["Range"].removeprefix("bytes=").partition("-")
            last = str(min(int(last), len(OBJECT) - 1))  # cut at the object's end, as S3 does
            if store.answer_short_range:
                last = str((int(first) + int(last)) // 2)
            body = OBJECT[int(first) : int(last) + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(OBJECT)}")
        if store.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.end_headers()
        sent = body[: len(body) // 2] if store.short else body
        if store.stall_after is not None:
            sent = body[: store.stall_after]
        if store.chunked:
            for offset in range(0, len(sent), 50_000):
                piece = sent[offset : offset + 50_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if sent is body:
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(sent)
        self.wfile.flush()
        if store.stall_after is not None:
            self._hold(store)
        if sent is not body:
            self.close_connection = True

    def _hold(self, store: _Store) -> None:
        """Keep the rest of the body back until released, noting a client that closes first."""
        deadline = time.monotonic() + 30
        while not store.release.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.02)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                store.closed_by_client.set()
                return


@pytest.fixture
def store() -> Iterator[_Store]:
    server = _Store(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    server.closed_by_client = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


async def open_on(store: _Store, tmp_path: Path, timeout_s: float = 10) -> Storage:
    endpoint = f"http://127.0.0.1:{store.server_address[1]}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'media.sqlite3'}",
        storage_url=f"s3://bucket?endpoint_url={endpoint}&region=us-east-1&addressing=path",
        stream_chunk_bytes=CHUNK,
        storage_timeout_s=timeout_s,
    )
    return await open_storage(settings)


@pytest.fixture
async def storage(
    store: _Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Storage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    opened = await open_on(store, tmp_path)
    yield opened
    await opened.close()


async def read_all(storage: Storage, start: int, length: int) -> bytes:
    return b"".join([bytes(piece) async for piece in storage.read("a" * 32, start, length)])


async def test_whole_reads_give_the_connection_back(store: _Store, storage: Storage) -> None:
    for start, length in ((0, len(OBJECT)), (3, 2 * CHUNK + 5), (CHUNK, 100)):
        assert await read_all(storage, start, length) == OBJECT[start : start + length]
    # HeadBucket at opening, then every GetObject, on the one connection.
    assert store.connections == 1


async def test_an_abandoned_read_drops_its_connection(store: _Store, storage: Storage) -> None:
    reader = storage.read("a" * 32, 0, len(OBJECT))
    assert bytes(await reader.__anext__()) == OBJECT[:CHUNK]
    await reader.aclose()  # type: ignore[attr-defined]
    # Not drained: the half-read connection is closed, the next read opens its own.
    assert await read_all(storage, 0, 10) == OBJECT[:10]
    assert store.connections == 2


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("length", [len(OBJECT), CHUNK // 2])
async def test_a_short_body_is_unavailable(
    store: _Store, storage: Storage, length: int, chunked: bool
) -> None:
    store.short = True
    store.chunked = chunked
    with pytest.raises(Unavailable) as caught:
        await read_all(storage, 0, length)
    assert caught.value.dependency == "storage"


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, len(OBJECT)), (3, 2 * CHUNK + 5), (CHUNK, 100), (len(OBJECT) - 50, 200)],
)
async def test_a_chunked_body_is_read_to_its_end(
    store: _Store, storage: Storage, start: int, length: int
) -> None:
    store.chunked = True  # no Content-Length: the body ends where the store ends it
    for _ in range(2):
        assert await read_all(storage, start, length) == OBJECT[start : start + length]
    # Read to its last chunk, each body gave its connection back for the next request.
    assert store.connections == 1


async def test_a_store_that_ignores_range_is_refused_or_cut(
    store: _Store, storage: Storage
) -> None:
    store.ignore_range = True  # 200 and the whole object, whatever the range
    assert await read_all(storage, 0, 100) == OBJECT[:100]
    with pytest.raises(Unavailable) as caught:
        await read_all(storage, 10, 100)
    assert caught.value.dependency == "storage"


class LoopLag:
    """The longest the event loop went without running a 10 ms ticker, while it ran."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.worst = max(self.worst, now - last - 0.01)
            last = now


async def test_closing_a_read_on_a_stalled_store_is_prompt(store: _Store, storage: Storage) -> None:
    # The first chunk arrives, then the store holds the rest: the read-ahead thread waits in it.
    store.stall_after = CHUNK + 100
    lag = LoopLag()
    ticker = asyncio.ensure_future(lag.tick())
    try:
        reader = storage.read("a" * 32, 0, len(OBJECT))
        assert bytes(await reader.__anext__()) == OBJECT[:CHUNK]
        await asyncio.sleep(0.2)  # the read-ahead is now waiting on the store
        started = time.monotonic()
        await reader.aclose()  # type: ignore[attr-defined]
        closing = time.monotonic() - started
    finally:
        ticker.cancel()
    # Well inside the 10 s read timeout: the waiting thread was woken, and the loop never
    # blocked on the body while it did.
    assert closing < 2
    assert lag.worst < 0.5
    assert storage._limiter.borrowed_tokens == 0  # type: ignore[attr-defined]


async def test_a_cancelled_read_lets_its_thread_finish_first(
    store: _Store, storage: Storage
) -> None:
    store.stall_after = CHUNK + 100
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in storage.read("a" * 32, 0, len(OBJECT)):
            first.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(first.wait(), timeout=10)
    await asyncio.sleep(0.2)  # waiting for the read-ahead, which waits on the store
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2
    # The thread that read for it is done: no pool slot is still held for it.
    assert storage._limiter.borrowed_tokens == 0  # type: ignore[attr-defined]


async def test_a_store_that_stops_sending_times_out_as_such(
    store: _Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store.stall_after = CHUNK + 100
    storage = await open_on(store, tmp_path, timeout_s=1)
    try:
        with pytest.raises(Unavailable) as caught:
            await read_all(storage, 0, len(OBJECT))
    finally:
        await storage.close()
    assert caught.value.data["error"] == "ReadTimeoutError"


async def test_a_read_cancelled_twice_still_closes_its_body(
    store: _Store, storage: Storage
) -> None:
    # A second cancellation (a send timeout, then a server shutting down) lands while the read
    # waits for its thread: the body is still closed once the thread is done with it, and the
    # thread's failure is retrieved.
    store.stall_after = CHUNK + 100
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in storage.read("a" * 32, 0, len(OBJECT)):
            first.set()

    try:
        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(first.wait(), timeout=10)
        await asyncio.sleep(0.2)  # waiting for the read-ahead, which waits on the store
        task.cancel()
        await asyncio.sleep(0)  # the read, cancelled, now waits for its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        closed = await asyncio.to_thread(store.closed_by_client.wait, 5)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert closed
    assert unhandled == []
    assert storage._limiter.borrowed_tokens == 0  # type: ignore[attr-defined]


async def test_an_answer_shorter_than_asked_inside_the_object_is_refused(
    store: _Store, storage: Storage
) -> None:
    store.answer_short_range = True  # 206 for the first half of the range asked, of a longer object
    with pytest.raises(Unavailable):
        await read_all(storage, 0, 1000)
