"""Two runs of one processing job: the second never undoes what the first one finished.

A job is run again when its worker looks stopped (a stall, a database outage longer than the
stall time) even if that worker is alive and finishes too. The run that comes second finds the
media no longer in progress: it drops its own objects and leaves the media, and the original it
names, as the first run left them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from media.db import migrate
from media.models import MediaStatus, Principal, UploadState
from media.service import CreateUpload, MediaService
from server.lifecycle import dev_issuer, open_dependencies
from tests.support.app import TEST_SIGNING_KEY, settings_for
from tests.support.media_files import make_png
from tests.support.uploads import stored_objects

BASE = "http://127.0.0.1:9"
OWNER = Principal("race-user", "issuer", frozenset({"user"}))


@asynccontextmanager
async def _service(tmp_path: Path, **environ: str) -> AsyncIterator[MediaService]:
    settings = settings_for(tmp_path / "data", 9, MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY, **environ)
    await migrate(settings)
    async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
        yield deps.service


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_second_run_of_a_finished_job_keeps_the_original(tmp_path: Path) -> None:
    # Wider than a preview's 2048 px: each run also writes a preview and a thumbnail.
    data = make_png(tmp_path / "wide.png", size=(2100, 300)).read_bytes()
    async with _service(tmp_path) as service:
        settings = service.parts.settings
        repo, storage = service.parts.repository, service.parts.storage
        ticket = await service.uploads.create_upload(
            OWNER, CreateUpload("wide.png", "image/png", len(data))
        )
        media = ticket.media  # the copy both runs start from: IN_PROGRESS
        info = await storage.write(
            media.storage_key, _one_chunk(data), content_type="image/png", max_bytes=len(data)
        )
        for before, after in (
            (UploadState.PENDING, UploadState.RECEIVING),
            (UploadState.RECEIVING, UploadState.PROCESSING),
        ):
            assert await repo.transition_upload(ticket.upload_id, {before}, after)
        upload = await repo.get_upload(ticket.upload_id)
        assert upload is not None
        ingest = service.processing._ingest

        first = await ingest.run(media, upload, info)
        assert first.status is MediaStatus.SUCCESS and first.rendition is not None
        kept = stored_objects(settings)
        assert len(kept) == 3  # the original, its preview, its thumbnail

        second = await ingest.run(media, upload, info)
        assert second.status is MediaStatus.SUCCESS
        assert second.rendition == first.rendition
        assert stored_objects(settings) == kept  # the second run's objects went, nothing else
        original = b"".join([bytes(c) async for c in storage.read(media.storage_key, 0, len(data))])
        assert original == data
