"""A reader that stops reading is cut after MEDIA_SEND_TIMEOUT_S; its connection is closed."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx

from media.db import open_database
from media.models import MediaKind, NewMedia, Owner, ProbeResult, Purpose
from media.repository import Repository
from media.signing import UrlSigner
from media.storage import open_storage
from server.keys import signing_keys
from tests.support.app import RunningService, embedded_service_at

SIZE = 48 * 1024 * 1024  # far more than the socket buffers of both ends hold
TIMEOUT_S = 1


async def _bytes(size: int) -> AsyncIterator[bytes]:
    block = os.urandom(1024 * 1024)
    for start in range(0, size, len(block)):
        yield block[: min(len(block), size - start)]


async def _stored_stream_url(service: RunningService) -> str:
    settings = service.settings
    database, storage = await open_database(settings), await open_storage(settings)
    try:
        repo = Repository(database)
        media_type = await repo.media_type("video/mp4")
        assert media_type is not None
        new = NewMedia(
            name="big.mp4",
            media_type=media_type,
            size_bytes=SIZE,
            original_file_name="big.mp4",
            media_date=None,
            storage_key=uuid.uuid4().hex,
            upload_id=uuid.uuid4(),
            upload_expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        media, _ = await repo.create_media(Owner("reader", "issuer"), new)
        info = await storage.write(
            media.storage_key, _bytes(SIZE), content_type="video/mp4", max_bytes=SIZE
        )
        probe = ProbeResult(mime_type="video/mp4", kind=MediaKind.VIDEO)
        done = await repo.mark_success(
            media.id,
            probe=probe,
            size_bytes=info.size,
            sha256="",
            etag=info.etag,
            storage_key=media.storage_key,
            thumbnail=None,
        )
    finally:
        await storage.close()
        await database.close()
    token, _ = UrlSigner(signing_keys(settings)).sign(
        Purpose.STREAM, media_id=done.id, subject="reader", generation=0, ttl_s=300
    )
    return f"{service.url}/media/{token}"


def _stall_then_drain(url: str, stall_s: float) -> tuple[int, bool]:
    """GET without reading for `stall_s`, then read what is left: (bytes, closed by server)."""
    parts = urlsplit(url)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((parts.hostname, parts.port))
        request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n"
        sock.sendall(request.encode())
        time.sleep(stall_s)
        sock.settimeout(5)
        received = 0
        try:
            while chunk := sock.recv(1024 * 1024):
                received += len(chunk)
        except TimeoutError:
            return received, False
        return received, True


def test_a_stalled_reader_is_cut(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_SEND_TIMEOUT_S=str(TIMEOUT_S)) as service:
        url = anyio.run(_stored_stream_url, service)
        received, closed = _stall_then_drain(url, TIMEOUT_S + 2)
        assert closed and received < SIZE
        # A reader that keeps reading gets everything.
        assert len(httpx.get(url, timeout=30).content) == SIZE
