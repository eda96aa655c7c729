"""Deleting many objects while storage is down stops at the outage, not one timeout per key.

A video's ladder is hundreds of objects: a failed attempt leaves them behind, and deleting the
media names them all. Deleting each against a silent store would hold the job, or the
`deleteMedia` call, for a storage timeout (and its retries) apiece. What is not deleted is an
orphan the collector removes later (docs/security.md INV-3).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from media.db import migrate
from media.errors import Unavailable
from media.models import HlsFile, MediaKind, MediaStatus, Principal, ProbeResult, UploadState
from media.service import CreateUpload, MediaService
from server.lifecycle import dev_issuer, open_dependencies
from tests.support.app import TEST_SIGNING_KEY, settings_for
from tests.support.media_files import make_png
from tests.support.processes import StallingRelay

BASE = "http://127.0.0.1:9"
TIMEOUT_S = 0.5
LEFT_BEHIND = 40  # keys of a failed attempt: one timeout each would take 20 s
LADDER_FILES = 100
# One key's delete against a silent store: three attempts and the pauses between them
# (media/service/library.py); 100 keys 8 at a time would be 13 of these.
DELETE_WAVE_S = 3 * TIMEOUT_S + 0.2 + 0.4
OWNER = Principal("outage-user", "issuer", frozenset({"user"}))


@asynccontextmanager
async def _relayed(
    tmp_path: Path, s3_bucket: str
) -> AsyncIterator[tuple[MediaService, StallingRelay]]:
    """A service whose storage (a moto bucket) is reached through a relay that can go silent."""
    endpoint = s3_bucket.split("endpoint_url=")[1].split("&")[0]
    relay = StallingRelay(int(endpoint.rsplit(":", 1)[1]))
    relayed = s3_bucket.replace(endpoint, f"http://127.0.0.1:{relay.port}")
    settings = settings_for(
        tmp_path / "data",
        9,
        MEDIA_STORAGE_URL=relayed,
        MEDIA_STORAGE_TIMEOUT_S=str(TIMEOUT_S),
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
        MEDIA_ENV="development",
    )
    await migrate(settings)
    try:
        async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
            yield deps.service, relay
    finally:
        relay.close()


async def test_cleanup_stops_at_the_first_outage(tmp_path: Path, s3_bucket: str) -> None:
    async with _relayed(tmp_path, s3_bucket) as (service, relay):
        ticket = await service.uploads.create_upload(
            OWNER, CreateUpload("clip.mp4", "video/mp4", 1000)
        )
        media = ticket.media
        relay.mode = "silent"  # the store takes connections and answers nothing
        keys = [media.storage_key] + [uuid.uuid4().hex for _ in range(LEFT_BEHIND)]
        started = time.monotonic()
        failed = await service.processing._ingest.fail(media, None, "processing failed", keys)
        elapsed = time.monotonic() - started
    assert failed.status is MediaStatus.FAILED
    assert elapsed < 10 * TIMEOUT_S, elapsed


async def test_a_put_during_a_storage_outage_can_be_sent_again(
    tmp_path: Path, s3_bucket: str
) -> None:
    data = make_png(tmp_path / "photo.png").read_bytes()

    async def body() -> AsyncIterator[bytes]:
        yield data

    async with _relayed(tmp_path, s3_bucket) as (service, relay):
        ticket = await service.uploads.create_upload(
            OWNER, CreateUpload("photo.png", "image/png", len(data))
        )
        token = ticket.url.url.rsplit("/", 1)[1]

        def put() -> Any:
            return service.uploads.receive(
                token, content_length=len(data), content_type="image/png", body=body()
            )

        relay.mode = "refuse"
        with pytest.raises(Unavailable):  # 503 with Retry-After at the edge
            await put()
        upload = await service.parts.repository.get_upload(ticket.upload_id)
        assert upload is not None and upload.state is UploadState.PENDING
        media = await service.library.get_media(OWNER, ticket.media.id)
        assert media is not None and media.status is MediaStatus.IN_PROGRESS
        relay.mode = "relay"
        outcome = await put()  # the same ticket, once the store is back
        assert outcome.upload_id == ticket.upload_id


async def test_deleting_a_ladder_gives_up_at_an_outage(tmp_path: Path, s3_bucket: str) -> None:
    async with _relayed(tmp_path, s3_bucket) as (service, relay):
        repo = service.parts.repository
        ticket = await service.uploads.create_upload(
            OWNER, CreateUpload("clip.mp4", "video/mp4", 1000)
        )
        media = ticket.media
        for before, after in (
            (UploadState.PENDING, UploadState.RECEIVING),
            (UploadState.RECEIVING, UploadState.PROCESSING),
        ):
            assert await repo.transition_upload(ticket.upload_id, {before}, after)
        ladder = tuple(
            HlsFile(f"360p/seg_{n:05d}.m4s", uuid.uuid4().hex, "video/mp4", 1, f'"{n}"')
            for n in range(1, LADDER_FILES + 1)
        )
        probe = ProbeResult(
            mime_type="video/mp4",
            kind=MediaKind.VIDEO,
            width=640,
            height=360,
            duration_seconds=400.0,
        )
        await repo.mark_success(
            media.id,
            probe=probe,
            size_bytes=1000,
            sha256="0" * 64,
            etag='"e"',
            storage_key=media.storage_key,
            thumbnail=None,
            hls=ladder,
        )
        relay.mode = "silent"
        started = time.monotonic()
        assert await service.library.delete_media(OWNER, media.id)
        elapsed = time.monotonic() - started
        assert await service.library.get_media(OWNER, media.id) is None  # the rows are gone
    assert elapsed < 4 * DELETE_WAVE_S, elapsed  # the keys under way, not one wave per 8 keys
