"""A real uvicorn server for Litestar apps, and a file-backed StreamSource with a real UrlSigner."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from litestar import Litestar

from media.errors import InvalidSignature, NotFound, Unavailable
from media.models import Purpose, StreamTarget
from media.signing import UrlSigner
from streaming.routes import stream_route_handlers
from tests.support.clock import ManualClock
from tests.support.server import serve_app

STREAM_KEYS = ("k1-" + "a" * 40, "k2-" + "b" * 40)
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LAST_MODIFIED = datetime(2025, 2, 1, 8, 30, 15, tzinfo=UTC)


def public_id(number: int) -> str:
    """The media id (media/ids.py spelling) tests name by a small number."""
    return f"{number:021d}A"


def etag_of(data: bytes) -> str:
    """The ETag FileStreamSource gives an object."""
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class StoredFile:
    """One object of the test catalog."""

    media_id: int
    path: Path
    content_type: str
    file_name: str
    etag: str
    generation: int = 0


@dataclass
class ReadLog:
    """What one read_object call did, for disconnect tests."""

    start: int
    length: int
    delivered: int = 0
    closed: threading.Event = field(default_factory=threading.Event)


class FileStreamSource:
    """StreamSource over files on disk, verifying tokens with a real UrlSigner."""

    purposes = (Purpose.STREAM, Purpose.DOWNLOAD, Purpose.THUMBNAIL)

    def __init__(self, signer: UrlSigner, root: Path, chunk_bytes: int = 64 * 1024) -> None:
        self.signer = signer
        self.root = root
        self.chunk_bytes = chunk_bytes
        self.files: dict[int, StoredFile] = {}
        self.reads: list[ReadLog] = []
        self.outage: str | None = None  # "database" fails open_stream, "storage" fails reads
        self.opened = 0
        # Read on the event loop, never yielding between chunks: what the local folder does for
        # pages in the page cache (RWF_NOWAIT), where reads are cheaper than a thread hop.
        self.on_loop = False

    def add(
        self,
        media_id: int,
        data: bytes,
        *,
        content_type: str = "video/mp4",
        file_name: str = "clip.mp4",
    ) -> StoredFile:
        """Store `data` as media `media_id`."""
        path = self.root / f"object-{media_id}"
        path.write_bytes(data)
        etag = etag_of(data)
        stored = StoredFile(media_id, path, content_type, file_name, etag)
        self.files[media_id] = stored
        return stored

    def token(self, media_id: int, purpose: Purpose = Purpose.STREAM, ttl_s: int = 300) -> str:
        """A token for the current generation of a media."""
        generation = self.files[media_id].generation if media_id in self.files else 0
        token, _ = self.signer.sign(
            purpose,
            media_id=public_id(media_id),
            subject="alice",
            generation=generation,
            ttl_s=ttl_s,
        )
        return token

    async def open_stream(self, token: str) -> StreamTarget:
        """Verify, look up, describe: the order of docs/architecture.md §4."""
        self.opened += 1
        claims = self.signer.verify(token, self.purposes)
        if self.outage == "database":
            raise Unavailable(dependency="database")
        stored = self.files.get(int(claims.media_id[:-1]))
        if stored is None:
            raise NotFound(media_id=claims.media_id)
        if stored.generation != claims.generation:
            raise InvalidSignature(reason="revoked")
        return StreamTarget(
            storage_key=str(stored.path),
            content_type=stored.content_type,
            size=stored.path.stat().st_size,
            etag=stored.etag,
            last_modified=LAST_MODIFIED,
            disposition="attachment" if claims.purpose is Purpose.DOWNLOAD else "inline",
            file_name=stored.file_name,
            expires_at=claims.expires_at,
        )

    async def read_object(self, storage_key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Bounded chunks from a file, read in a worker thread; logs closing."""
        log = ReadLog(start, length)
        self.reads.append(log)
        try:
            if self.outage == "storage":
                raise Unavailable(dependency="storage")
            # Shielded open and close: a cancelled scope must not lose the file handle.
            with anyio.CancelScope(shield=True):
                handle = await anyio.to_thread.run_sync(open, storage_key, "rb")
            try:
                await anyio.to_thread.run_sync(handle.seek, start)
                while log.delivered < length:
                    size = min(self.chunk_bytes, length - log.delivered)
                    if self.on_loop:
                        chunk = handle.read(size)
                    else:
                        chunk = await anyio.to_thread.run_sync(handle.read, size)
                    if not chunk:
                        break
                    log.delivered += len(chunk)
                    yield chunk
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(handle.close)
        finally:
            log.closed.set()


def serve(app: Litestar) -> AbstractContextManager[str]:
    """Run `app` under uvicorn on a free loopback port in a thread; yield its base URL."""
    return serve_app(app)


@dataclass(frozen=True)
class StreamsOnly:
    """What the /media route reads of the app's service."""

    streams: FileStreamSource


@dataclass
class StreamingHarness:
    """A running streaming app and the parts tests steer."""

    url: str
    clock: ManualClock
    signer: UrlSigner
    source: FileStreamSource

    def media_url(self, token: str) -> str:
        """Absolute URL of a token."""
        return f"{self.url}/media/{token}"


def streaming_app(
    source: FileStreamSource, clock: ManualClock, cors_origins: tuple[str, ...] = ("*",)
) -> Litestar:
    """A minimal Litestar app that mounts the streaming handlers over `source`."""
    app = Litestar(route_handlers=stream_route_handlers(cors_origins, clock=clock), debug=False)
    app.state.service = StreamsOnly(source)
    return app


@pytest.fixture(scope="module")
def streaming_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamingHarness]:
    """One uvicorn server per test module serving files through a real UrlSigner."""
    clock = ManualClock(START)
    signer = UrlSigner(STREAM_KEYS, clock=clock)
    source = FileStreamSource(signer, tmp_path_factory.mktemp("stream-objects"))
    with serve(streaming_app(source, clock)) as url:
        yield StreamingHarness(url, clock, signer, source)


@pytest.fixture
def streaming(streaming_harness: StreamingHarness) -> StreamingHarness:
    """The module's streaming server with clock, outages and read logs reset for this test."""
    streaming_harness.clock.now = START
    streaming_harness.source.outage = None
    streaming_harness.source.reads.clear()
    return streaming_harness
