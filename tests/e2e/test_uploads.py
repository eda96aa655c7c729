"""Uploads over real HTTP on both shapes: kinds, refusals, crashes, completion, deletion."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.app import RunningService
from tests.support.documents import DELETE, LIST
from tests.support.media_files import JPEG_EXIF_DATETIME, MediaFiles
from tests.support.uploads import (
    complete,
    completed,
    expired_copy,
    interrupted_put,
    media_state,
    put,
    readable_reason,
    settled_state,
    stored_objects,
    subject,
    tampered,
    ticket_for,
    token_of,
    upload_ok,
    visible,
)

THUMBNAIL_SIDE = 320


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Kind:
    """One media kind that must succeed, and what its media must say."""

    attr: str
    media_type: str
    kind: str
    size: tuple[int, int]
    seconds: float | None = None
    media_date: datetime | None = None  # none was declared: only EXIF can give one
    playback_type: str | None = None  # what the stream serves, when not the original


# The EXIF DateTimeOriginal has no offset, so it is read as UTC.
EXIF_DATE = datetime.strptime(JPEG_EXIF_DATETIME, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
KINDS = [
    Kind("webm", "video/webm", "VIDEO", (320, 240), seconds=1.0, playback_type="video/mp4"),
    Kind("png", "image/png", "IMAGE", (640, 480)),
    Kind("png_alpha", "image/png", "IMAGE", (640, 480)),
    Kind("jpeg", "image/jpeg", "IMAGE", (640, 480), media_date=EXIF_DATE),
]


@pytest.mark.parametrize("case", KINDS, ids=[case.attr for case in KINDS])
def test_each_kind_succeeds_with_metadata_and_thumbnail(
    module_service: RunningService, media_files: MediaFiles, case: Kind
) -> None:
    service, token = module_service, module_service.token(subject())
    source: Path = getattr(media_files, case.attr)
    media = visible(service, token, upload_ok(service, token, source, case.media_type)["id"])
    assert (media["status"], media["kind"]) == ("SUCCESS", case.kind)
    assert media["mediaType"] == case.media_type
    assert (media["width"], media["height"]) == case.size
    date = media["mediaDate"] and datetime.fromisoformat(media["mediaDate"])
    assert date == case.media_date
    assert media["sizeBytes"] == source.stat().st_size
    if case.seconds is None:
        assert media["durationSeconds"] is None
    else:
        assert abs(media["durationSeconds"] - case.seconds) < 0.2
    # Every original is stored as uploaded: the download is the very same bytes.
    download = httpx.get(media["downloadUrl"]["url"], timeout=30)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith(case.media_type)
    assert _sha256(download.content) == _sha256(source.read_bytes()) == media["sha256"]
    # Small PNG and JPEG are shown as they are; WebM plays from an H.264 MP4 rendition.
    stream = httpx.get(media["streamUrl"]["url"], timeout=30)
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith(case.playback_type or case.media_type)
    assert media["playbackMediaType"] == (case.playback_type or case.media_type)
    if case.playback_type is None:
        assert stream.content == download.content
    assert media["hasThumbnail"] is True
    thumb = httpx.get(media["thumbnailUrl"]["url"], timeout=30)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        image.load()
        assert image.format == "JPEG"
        width, height = image.size
    assert max(width, height) <= THUMBNAIL_SIDE
    assert abs(width / height - case.size[0] / case.size[1]) < 0.05


def test_declared_media_date_wins_over_exif(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    declared = datetime(2019, 2, 3, 4, 5, 6, tzinfo=UTC)
    ticket = ticket_for(
        service, token, media_files.jpeg, "image/jpeg", media_date=declared.isoformat()
    )
    assert put(ticket, media_files.jpeg.read_bytes()).status_code == 202
    found = settled_state(service, token, ticket["mediaId"])
    assert found["status"] == "SUCCESS"
    assert datetime.fromisoformat(found["mediaDate"]) == declared


@dataclass(frozen=True, slots=True)
class Failing:
    """A body that is stored, then refused by content checks: 202, then FAILED."""

    name: str
    attr: str
    declared: str
    reason_words: tuple[str, ...]


FAILING = [
    Failing("mp4-declared-png", "mp4", "image/png", ("image/png", "video/mp4")),
    Failing("truncated-mp4", "truncated_mp4", "video/mp4", ()),
    Failing("truncated-png", "truncated_png", "image/png", ()),
    Failing("garbage-as-png", "garbage", "image/png", ()),
    Failing("garbage-as-mp4", "garbage", "video/mp4", ()),
    Failing("png-bomb", "png_bomb", "image/png", ("pixel",)),
]


@pytest.mark.parametrize("case", FAILING, ids=[case.name for case in FAILING])
def test_bad_content_fails_the_media_and_leaves_no_object(
    module_service: RunningService, media_files: MediaFiles, case: Failing
) -> None:
    service, token = module_service, module_service.token(subject())
    source: Path = getattr(media_files, case.attr)
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, source, case.declared)
    answer = put(ticket, source.read_bytes())
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "uploadId": ticket["uploadId"],
        "mediaId": ticket["mediaId"],
        "status": "IN_PROGRESS",
    }
    media = settled_state(service, token, ticket["mediaId"])
    assert media["status"] == "FAILED"
    reason = readable_reason(media["failureReason"]).lower()
    for word in case.reason_words:
        assert word in reason, reason
    assert media["streamUrl"] is None and media["thumbnailUrl"] is None
    assert stored_objects(service.settings) == before
    assert complete(service, token, ticket["uploadId"])["status"] == "FAILED"


def _chunks(data: bytes) -> Iterator[bytes]:
    yield data[: len(data) // 2]
    yield data[len(data) // 2 :]


@dataclass(frozen=True, slots=True)
class Refused:
    """A PUT refused on its headers before any byte is written."""

    name: str
    status: int
    content_type: str | None = None  # None: the ticket's
    extra_bytes: int = 0  # negative: a shorter body and Content-Length
    chunked: bool = False


REFUSED = [
    Refused("content-type-mismatch", 415, content_type="image/jpeg"),
    Refused("content-type-missing", 415, content_type=""),
    Refused("content-length-over", 413, extra_bytes=10),
    Refused("content-length-under", 400, extra_bytes=-10),
    Refused("no-content-length", 411, chunked=True),
]


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_bad_headers_are_refused_before_any_write(
    module_service: RunningService, media_files: MediaFiles, case: Refused
) -> None:
    service, token = module_service, module_service.token(subject())
    data = media_files.png.read_bytes()
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.png, "image/png")
    headers = {"Content-Type": ticket["headers"]["Content-Type"]}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    extra = case.extra_bytes
    body: Any = data + b"\0" * extra if extra >= 0 else data[:extra]
    if case.chunked:
        body = _chunks(data)  # httpx sends an iterator chunked, without Content-Length
    answer = put(ticket, body, headers)
    assert answer.status_code == case.status, answer.text
    media = visible(service, token, ticket["mediaId"])
    assert media["status"] != "SUCCESS"
    assert media["streamUrl"] is None
    assert stored_objects(service.settings) == before


def test_unusable_upload_urls_are_403_and_write_nothing(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    done = upload_ok(service, token, media_files.png, "image/png")
    stream_url = visible(service, token, done["id"])["streamUrl"]["url"]
    data = media_files.png.read_bytes()
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.png, "image/png")
    base = service.url
    attempts = {
        "expired": expired_copy(service.settings, ticket["uploadUrl"]),
        "tampered": tampered(ticket["uploadUrl"]),
        "stream-token": f"{base}/upload/{token_of(stream_url)}",
        "garbage": f"{base}/upload/u.not-a-token",
    }
    for name, url in attempts.items():
        answer = httpx.put(url, content=data, headers=ticket["headers"], timeout=30)
        assert answer.status_code == 403, (name, answer.status_code, answer.text)
    # The upload token is no read credential either.
    assert httpx.get(f"{base}/media/{token_of(ticket['uploadUrl'])}").status_code == 403
    assert stored_objects(service.settings) == before
    media = visible(service, token, ticket["mediaId"])
    assert media["status"] == "IN_PROGRESS"
    # None of the refused attempts used the ticket up.
    assert put(ticket, data).status_code == 202


def test_replayed_put_after_success_is_409(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    done = upload_ok(service, token, media_files.jpeg, "image/jpeg")
    before = stored_objects(service.settings)
    replay = put(done, media_files.jpeg.read_bytes())
    assert replay.status_code == 409, replay.text
    assert stored_objects(service.settings) == before
    assert visible(service, token, done["id"])["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("media_type", "size"),
    [
        ("image/svg+xml", 100),
        ("text/html", 100),
        ("application/octet-stream", 100),
        ("image/png", 0),
        ("image/png", -1),
        ("image/png", 1.5),
        ("video/mp4", 4 * 1024**3 + 1),
    ],
)
def test_create_upload_refuses_bad_input(
    module_service: RunningService, media_type: str, size: float
) -> None:
    service, token = module_service, module_service.token(subject())
    assert service.settings.max_upload_bytes == 4 * 1024**3
    variables = {"input": {"fileName": "x", "mediaType": media_type, "sizeBytes": size}}
    answer = service.graphql(
        "mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadId } }",
        variables,
        token=token,
    )
    assert answer.get("data") is None, answer
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["BAD_USER_INPUT"]
    assert service.graphql(LIST, token=token)["data"]["medias"]["edges"] == []


def test_interrupted_put_fails_and_leaves_nothing(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    data = media_files.mp4.read_bytes()
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.mp4, "video/mp4")
    interrupted_put(ticket, data, sent=len(data) // 2)
    media = settled_state(service, token, ticket["mediaId"])
    assert media["status"] == "FAILED"
    readable_reason(media["failureReason"])
    assert media["streamUrl"] is None
    assert stored_objects(service.settings) == before
    assert complete(service, token, ticket["uploadId"])["status"] == "FAILED"
    assert put(ticket, data).status_code == 409
    assert stored_objects(service.settings) == before


def _expired_by_reaper(service: RunningService, token: str, ticket: dict[str, Any]) -> None:
    # No clock reaches the server over HTTP: the one-second upload TTL has to pass for real.
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while (media := complete(service, token, ticket["uploadId"]))["status"] == "IN_PROGRESS":
        assert datetime.now(UTC) < deadline, media
        time.sleep(0.1)
    assert media["status"] == "FAILED", media
    assert media["failureReason"] == "upload expired"


def test_completing_an_expired_upload_fails_it(
    short_ttl_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = short_ttl_service, short_ttl_service.token(subject())
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.png, "image/png")
    _expired_by_reaper(service, token, ticket)
    media = visible(service, token, ticket["mediaId"])
    assert media["status"] == "FAILED"
    assert media["failureReason"] == "upload expired" and media["streamUrl"] is None
    assert stored_objects(service.settings) == before


def test_put_to_an_expired_upload_is_403(
    short_ttl_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = short_ttl_service, short_ttl_service.token(subject())
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.png, "image/png")
    _expired_by_reaper(service, token, ticket)
    # The URL was never used: it expired, which is a 403 like every unusable URL, not a 409.
    answer = put(ticket, media_files.png.read_bytes())
    assert answer.status_code == 403, answer.text
    assert stored_objects(service.settings) == before


def test_complete_upload_is_idempotent(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, media_files.mp4, "video/mp4")
    assert put(ticket, media_files.mp4.read_bytes()).status_code == 202
    first = completed(service, token, ticket["uploadId"])
    after_put = stored_objects(service.settings)
    # The original as uploaded (moov at the end), its faststart rendition and its thumbnail.
    assert len(after_put - before) == 3 and before <= after_put
    second = complete(service, token, ticket["uploadId"])
    assert first == second and first["status"] == "SUCCESS"
    assert first["id"] == ticket["mediaId"]
    assert stored_objects(service.settings) == after_put
    edges = service.graphql(LIST, token=token)["data"]["medias"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == [first["id"]]


def test_delete_media_removes_its_objects_and_is_idempotent(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    kept = upload_ok(service, token, media_files.png, "image/png")
    before = stored_objects(service.settings)
    doomed = upload_ok(service, token, media_files.webm, "video/webm")
    urls = visible(service, token, doomed["id"])
    with_doomed = stored_objects(service.settings)
    assert len(with_doomed - before) == 3  # original, rendition and thumbnail
    answer = service.graphql(DELETE, {"id": doomed["id"]}, token=token)
    assert answer == {"data": {"deleteMedia": True}}
    assert stored_objects(service.settings) == before
    for field in ("streamUrl", "thumbnailUrl"):
        assert httpx.get(urls[field]["url"], timeout=30).status_code == 403
    again = service.graphql(DELETE, {"id": doomed["id"]}, token=token)
    assert again == {"data": {"deleteMedia": False}}
    assert stored_objects(service.settings) == before
    assert media_state(service, token, doomed["id"]) is None
    assert media_state(service, token, kept["id"]) is not None
