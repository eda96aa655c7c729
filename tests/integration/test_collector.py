"""The orphan collector removes only unnamed objects older than its grace, on both backends."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from media.config import Settings
from media.db import migrate
from media.models import Principal
from media.service import CreateUpload
from media.service.collector import Collector
from server.lifecycle import dev_issuer, open_dependencies
from tests.support.app import TEST_SIGNING_KEY, settings_for
from tests.support.media_files import make_mp4, make_png
from tests.support.s3 import s3_client

BASE = "http://127.0.0.1:9"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_collects_old_orphans_only(tmp_path: Path, storage_url: str) -> None:
    settings = settings_for(
        tmp_path / "data",
        9,
        MEDIA_STORAGE_URL=storage_url,
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
        MEDIA_ENV="development",
    )
    await migrate(settings)
    async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
        service, storage = deps.service, deps.storage
        owner = Principal("collector-user", "issuer", frozenset({"user"}))
        data = make_png(tmp_path / "kept.png").read_bytes()
        ticket = await service.uploads.create_upload(
            owner, CreateUpload("kept.png", "image/png", len(data))
        )
        token = ticket.url.url.rsplit("/", 1)[1]
        received = await service.uploads.receive(
            token, content_length=len(data), content_type="image/png", body=_once(data)
        )
        await service.processing.run_job(received.upload_id, 0)  # the job, run right here
        done = await service.library.get_media(owner, received.media.id)
        assert done is not None and done.thumbnail is not None
        named = {done.storage_key, done.thumbnail.storage_key}
        orphan = uuid.uuid4().hex
        await storage.write(orphan, _once(b"left behind"), content_type="image/png", max_bytes=64)
        assert set(await storage.keys()) == named | {orphan}

        assert await service.collector.collect() == 0  # young orphans may still get their row
        # (left after that pass: moto dates every multipart upload in 2010, so it is never young)
        _leave_partial_write(settings)

        later = datetime.now(UTC) + timedelta(hours=3)
        future = Collector(dataclasses.replace(service.parts, clock=lambda: later))
        assert future.grace >= timedelta(hours=1)
        assert await future.collect() == 2  # the orphan object and the unfinished write
        assert set(await storage.keys()) == named
        assert _partial_writes(settings) == 0
        assert await future.collect() == 0


def _leave_partial_write(settings: Settings) -> None:
    """What a crash mid-write leaves: a temp file, or an open multipart upload."""
    where = settings.storage
    if where.path is not None:
        folder = where.path / "ab" / "cd"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".tmp-crashed").write_bytes(b"half")
    else:
        client = s3_client(str(where.endpoint_url))
        client.create_multipart_upload(Bucket=where.bucket, Key=uuid.uuid4().hex)
    assert _partial_writes(settings) == 1


def _partial_writes(settings: Settings) -> int:
    where = settings.storage
    if where.path is not None:
        return len(list(where.path.rglob(".tmp-*")))
    uploads = s3_client(str(where.endpoint_url)).list_multipart_uploads(Bucket=where.bucket)
    return len(uploads.get("Uploads", []))


async def test_ladder_objects_are_named(tmp_path: Path, storage_url: str) -> None:
    """Every file of an HLS ladder is a stored object its row names: never collected."""
    settings = settings_for(
        tmp_path / "data",
        9,
        MEDIA_STORAGE_URL=storage_url,
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
        MEDIA_ENV="development",
        MEDIA_HLS="true",
    )
    await migrate(settings)
    async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
        service, storage = deps.service, deps.storage
        owner = Principal("collector-user", "issuer", frozenset({"user"}))
        data = make_mp4(tmp_path / "clip.mp4", seconds=2.0, faststart=True).read_bytes()
        ticket = await service.uploads.create_upload(
            owner, CreateUpload("clip.mp4", "video/mp4", len(data))
        )
        token = ticket.url.url.rsplit("/", 1)[1]
        received = await service.uploads.receive(
            token, content_length=len(data), content_type="video/mp4", body=_once(data)
        )
        await service.processing.run_job(received.upload_id, 0)
        done = await service.library.get_media(owner, received.media.id)
        assert done is not None and done.has_hls
        stored = set(await storage.keys())
        assert len(stored) == 2 + 4  # original, thumbnail; master, playlist, init, one segment
        later = datetime.now(UTC) + timedelta(hours=3)
        future = Collector(dataclasses.replace(service.parts, clock=lambda: later))
        assert await future.collect() == 0
        assert set(await storage.keys()) == stored
