"""Reading GetObject bodies: connections reused after whole reads, short bodies refused.

moto always sends whole bodies, so these run against a small S3 endpoint on loopback that
answers HeadBucket and ranged GetObject over real HTTP/1.1 keep-alive connections, and can be
told to send fewer bytes than its Content-Length before closing."""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from media.config import Settings
from media.errors import Unavailable
from media.storage import Storage, open_storage

CHUNK = 64 * 1024
OBJECT = random.Random(7).randbytes(5 * CHUNK + 11)


class _Store(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    short = False  # send half of each body, then close the connection


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
        first, _, last = self.headers["Range"].removeprefix("bytes=").partition("-")
        body = OBJECT[int(first) : int(last) + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(OBJECT)}")
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.end_headers()
        if self.server.short:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)


@pytest.fixture
def store() -> Iterator[_Store]:
    server = _Store(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
async def storage(
    store: _Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Storage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = f"http://127.0.0.1:{store.server_address[1]}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'media.sqlite3'}",
        storage_url=f"s3://bucket?endpoint_url={endpoint}&region=us-east-1&addressing=path",
        stream_chunk_bytes=CHUNK,
        storage_timeout_s=10,
    )
    opened = await open_storage(settings)
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


@pytest.mark.parametrize("length", [len(OBJECT), CHUNK // 2])
async def test_a_short_body_is_unavailable(store: _Store, storage: Storage, length: int) -> None:
    store.short = True
    with pytest.raises(Unavailable) as caught:
        await read_all(storage, 0, length)
    assert caught.value.dependency == "storage"
