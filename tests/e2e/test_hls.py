"""The HLS ladder through the whole app, on the embedded default and on PostgreSQL + S3: stored
with the media, removed with it, and removed whole when storing it fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from media.errors import Unavailable
from media.storage.files import store_file
from tests.support.app import RunningService
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4
from tests.support.uploads import (
    put,
    service_of_shape,
    settled_state,
    stored_objects,
    subject,
    ticket_for,
)

# Two small rungs over a 12 s clip: three 4 s segments each, cheap to encode.
LADDER_ENV = {"MEDIA_HLS": "true", "MEDIA_HLS_LADDER": "144,240", "MEDIA_JOB_RETRY_S": "1"}
# master + 2 rungs x (playlist + init + 3 segments)
LADDER_FILES = 1 + 2 * (2 + 3)
SETTLE_S = 60.0
DELETE = "mutation($id: ID!) { deleteMedia(id: $id) }"


@pytest.fixture(scope="module", params=["embedded", "production"])
def hls_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """A service per shape with the ladder on."""
    data_dir = tmp_path_factory.mktemp("svc-hls")
    with service_of_shape(request.param, request, data_dir, **LADDER_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hls-clip")
    return make_mp4(folder / "clip.mp4", seconds=12.0, fps=5, size=(320, 240), faststart=True)


def test_the_ladder_is_stored_with_the_media_and_deleted_with_it(
    hls_service: RunningService, clip: Path
) -> None:
    service, token = hls_service, hls_service.token(subject())
    before = stored_objects(service.settings)
    media = upload_file(service, token, clip, "video/mp4", settle_timeout_s=SETTLE_S)
    added = stored_objects(service.settings) - before
    # The original is its own rendition (a faststart H.264 MP4); a thumbnail and the ladder.
    assert len(added) == 2 + LADDER_FILES
    deleted = service.graphql(DELETE, {"id": media["id"]}, token=token)
    assert deleted == {"data": {"deleteMedia": True}}
    assert stored_objects(service.settings) == before


def test_a_ladder_that_cannot_be_stored_fails_the_media_and_leaves_nothing(
    hls_service: RunningService, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, token = hls_service, hls_service.token(subject())
    refused: list[str] = []

    async def failing(storage: Any, key: str, path: Path, *, content_type: str) -> Any:
        # The store goes away in the middle of the ladder, after others of its files landed.
        if path.name == "seg_00003.m4s" and path.parent.name == "240p":
            refused.append(key)
            raise Unavailable("storage", dependency="storage")
        return await store_file(storage, key, path, content_type=content_type)

    monkeypatch.setattr("media.service.ingest.store_file", failing)
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, clip, "video/mp4")
    assert put(ticket, clip.read_bytes()).status_code == 202
    media = _settled(service, token, ticket["mediaId"])
    assert media["status"] == "FAILED", media
    assert len(refused) == 3  # every attempt reached the ladder, and each was cleaned up
    assert stored_objects(service.settings) == before


def _settled(service: RunningService, token: str, media_id: str) -> dict[str, Any]:
    """settled_state with room for three attempts and their retry waits."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        try:
            return settled_state(service, token, media_id)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
