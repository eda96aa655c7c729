"""Seeding without the upload path: objects go in through storage + repository, as if processed."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from media.config import Settings
from media.db import migrate, open_database
from media.models import (
    OPEN_UPLOAD_STATES,
    MediaKind,
    NewMedia,
    Owner,
    ProbeResult,
    Purpose,
    Thumbnail,
    UploadState,
)
from media.repository import Repository
from media.signing import UrlSigner
from media.storage import Storage, open_storage
from media.storage.local import LocalStorage
from server.lifecycle import DEV_ISSUER_URL

BLOCK_BYTES = 1024 * 1024
URL_TTL_S = 3600
SUBJECT = "bench"
_PROBE = ProbeResult(
    mime_type="video/mp4", kind=MediaKind.VIDEO, width=1280, height=720, duration_seconds=60.0
)


@dataclass(frozen=True, slots=True)
class Seeded:
    """One seeded media: its id, object key, size and a signed stream path."""

    media_id: str
    storage_key: str
    size: int
    stream_path: str
    local_path: Path | None


def owner_for(settings: Settings) -> Owner:
    """The owner whose dev-issuer tokens see the seeded media."""
    return Owner(subject=SUBJECT, issuer=DEV_ISSUER_URL)


async def _pattern(size: int) -> AsyncIterator[bytes]:
    # Random once, repeated: real page-cache footprint without paying for 512 MiB of urandom.
    block = os.urandom(BLOCK_BYTES)
    sent = 0
    while sent < size:
        piece = block[: min(BLOCK_BYTES, size - sent)]
        sent += len(piece)
        yield piece


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (160, 90), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def _create(
    repo: Repository, storage: Storage, owner: Owner, name: str, size: int, thumb: bytes | None
) -> tuple[str, str, int]:
    media_type = await repo.media_type("video/mp4")
    assert media_type is not None, "video/mp4 must be an allowed type"
    now = datetime.now(UTC)
    new = NewMedia(
        name=name,
        media_type=media_type,
        size_bytes=size,
        original_file_name=name,
        media_date=None,
        storage_key=uuid.uuid4().hex,
        upload_id=uuid.uuid4(),
        upload_expires_at=now + timedelta(hours=1),
    )
    media, upload = await repo.create_media(owner, new)
    info = await storage.write(
        media.storage_key, _pattern(size), content_type="video/mp4", max_bytes=size
    )
    thumbnail = None
    if thumb is not None:
        key = uuid.uuid4().hex
        t_info = await storage.write(
            key, _once(thumb), content_type="image/jpeg", max_bytes=len(thumb)
        )
        thumbnail = Thumbnail(media.id, key, 160, 90, t_info.size, t_info.etag)
    done = await repo.mark_success(
        media.id,
        probe=_PROBE,
        size_bytes=info.size,
        sha256=info.sha256 or "",
        etag=info.etag,
        storage_key=media.storage_key,
        thumbnail=thumbnail,
    )
    await repo.transition_upload(upload.id, OPEN_UPLOAD_STATES, UploadState.DONE)
    return done.id, done.storage_key, done.url_generation


async def seed(settings: Settings, objects: dict[str, int], listing: int = 0) -> dict[str, Seeded]:
    """Migrate, then store `objects` (name -> size) and `listing` small media with thumbnails."""
    await migrate(settings)
    database = await open_database(settings)
    repo = Repository(database)
    storage = await open_storage(settings, repo)
    signer = UrlSigner(settings.signing_keys)
    owner = owner_for(settings)
    seeded: dict[str, Seeded] = {}
    try:
        for name, size in objects.items():
            media_id, key, generation = await _create(repo, storage, owner, name, size, None)
            token, _ = signer.sign(
                Purpose.STREAM,
                media_id=media_id,
                subject=owner.subject,
                generation=generation,
                ttl_s=URL_TTL_S,
            )
            path = storage.file_of(key) if isinstance(storage, LocalStorage) else None
            seeded[name] = Seeded(media_id, key, size, f"/media/{token}", path)
        thumb = _jpeg()
        for index in range(listing):
            await _create(repo, storage, owner, f"clip-{index:03d}.mp4", 4096, thumb)
    finally:
        await storage.close()
        await database.close()
    return seeded
