"""Failing a media while storage is down: the cleanup stops at the outage, not one timeout per key.

A ladder leaves hundreds of objects behind a failed attempt; deleting each against a silent
store would hold the job for a storage timeout apiece. What is not deleted is an orphan the
collector removes later (docs/security.md INV-3).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from media.db import migrate
from media.models import MediaStatus, Principal
from media.service import CreateUpload
from server.lifecycle import dev_issuer, open_dependencies
from tests.support.app import TEST_SIGNING_KEY, settings_for
from tests.support.processes import StallingRelay

BASE = "http://127.0.0.1:9"
TIMEOUT_S = 0.5
LEFT_BEHIND = 40  # keys of a failed attempt: one timeout each would take 20 s


async def test_cleanup_stops_at_the_first_outage(tmp_path: Path, s3_bucket: str) -> None:
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
            service = deps.service
            owner = Principal("outage-user", "issuer", frozenset({"user"}))
            ticket = await service.uploads.create_upload(
                owner, CreateUpload("clip.mp4", "video/mp4", 1000)
            )
            media = await service.library.get_media(owner, ticket.media.id)
            assert media is not None
            relay.mode = "silent"  # the store takes connections and answers nothing
            keys = [media.storage_key] + [uuid.uuid4().hex for _ in range(LEFT_BEHIND)]
            started = time.monotonic()
            failed = await service.processing._ingest.fail(media, None, "processing failed", keys)
            elapsed = time.monotonic() - started
    finally:
        relay.close()
    assert failed.status is MediaStatus.FAILED
    assert elapsed < 10 * TIMEOUT_S, elapsed
