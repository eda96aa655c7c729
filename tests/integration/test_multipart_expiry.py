"""An open multipart upload survives the collector, and the reaper aborts it once expired."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media.db import migrate
from media.errors import NotFound
from media.models import MediaStatus, Principal
from media.service import CreateUpload, MediaService
from media.service.collector import Collector
from media.service.multipart import plan_part_size
from server.lifecycle import dev_issuer, open_dependencies
from tests.integration.test_collector import _partial_writes
from tests.support.app import TEST_SIGNING_KEY, settings_for

BASE = "http://127.0.0.1:9"
MiB = 1024 * 1024


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_reaper_aborts_an_expired_multipart_upload(tmp_path: Path, storage_url: str) -> None:
    settings = settings_for(
        tmp_path / "data",
        9,
        MEDIA_STORAGE_URL=storage_url,
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
        MEDIA_ENV="development",
        MEDIA_MULTIPART_TTL_S="14400",
    )
    await migrate(settings)
    async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
        service, storage = deps.service, deps.storage
        owner = Principal("reaper-user", "issuer", frozenset({"user"}))
        size = 5 * MiB + 100
        created = await service.multipart.create(
            owner, CreateUpload("big.png", "image/png", size), 5 * MiB
        )
        upload, key = created.upload, created.media.storage_key
        assert upload.multipart_id is not None
        part = (await service.multipart.sign_parts(owner, upload.id, [2]))[0]
        token = part.url.url.rsplit("/", 1)[1]
        sent = await service.multipart.receive_part(
            token, content_length=100, body=_once(b"x" * 100)
        )
        assert (sent.number, sent.size) == (2, 100)
        assert _partial_writes(settings) >= 1

        # Hours later, past the collector's grace but within the upload's lifetime of 4 hours:
        # the collector and the reaper leave the open upload alone.
        soon = datetime.now(UTC) + timedelta(hours=3)
        collector = Collector(dataclasses.replace(service.parts, clock=lambda: soon))
        assert soon - collector.grace > datetime.now(UTC)
        assert await collector.collect() == 0
        assert (
            await MediaService(
                dataclasses.replace(service.parts, clock=lambda: soon), deps.queue
            ).uploads.reap()
            == 0
        )
        assert [p.number for p in await storage.list_parts(key, upload.multipart_id)] == [2]

        later = datetime.now(UTC) + timedelta(hours=5)
        future = MediaService(dataclasses.replace(service.parts, clock=lambda: later), deps.queue)
        assert await future.uploads.reap() == 1
        media = await service.library.get_media(owner, created.media.id)
        assert media is not None and media.status is MediaStatus.FAILED
        assert media.failure_reason == "upload expired"
        with pytest.raises(NotFound):
            await storage.list_parts(key, upload.multipart_id)
        assert _partial_writes(settings) == 0
        assert await storage.keys() == []
        assert await service.multipart.describe(owner, upload.id) is not None
        assert await future.uploads.reap() == 0


@pytest.mark.parametrize(
    ("size", "requested", "expected"),
    [
        (1, None, 8 * MiB),
        (10**9, None, 8 * MiB),
        (80 * 1024 * MiB, None, 9 * MiB),  # 80 GiB / 10000 = 8.2 MiB, rounded up to 9 MiB
        (100 * MiB, 5 * MiB, 5 * MiB),
        (10_000 * 5 * MiB, 5 * MiB, 5 * MiB),  # exactly 10000 parts
    ],
)
def test_part_size_plan(size: int, requested: int | None, expected: int) -> None:
    planned = plan_part_size(size, requested)
    assert planned == expected
    assert -(-size // planned) <= 10_000
