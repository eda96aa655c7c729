"""Phone formats over real HTTP on both shapes: byte-exact originals, renditions, details."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.app import RunningService
from tests.support.phone_media import PhoneMedia
from tests.support.sharing import create_link, ok, shared
from tests.support.uploads import (
    media_state,
    put,
    readable_reason,
    settled_state,
    stored_objects,
    subject,
    ticket_for,
    upload_ok,
    visible,
)


@dataclass(frozen=True, slots=True)
class Phone:
    """One phone file and what its media must say."""

    attr: str
    media_type: str
    size: tuple[int, int]
    playback: str
    file_name: str  # the download's name: the upload's, with the type's extension
    camera: tuple[str, str] | None = None
    taken: str | None = None  # mediaDate from EXIF or QuickTime (none was declared)


PIXEL = ("Google", "Pixel 8")
TAKEN = "2023-07-14T16:05:09+00:00"  # EXIF 18:05:09 at +02:00
PHONES = [
    Phone(
        "mov",
        "video/quicktime",
        (64, 48),
        "video/mp4",
        "clip.mov",
        ("Apple", "iPhone 15 Pro"),
        "2022-03-04T05:06:07+00:00",
    ),
    Phone("hevc_mp4", "video/mp4", (64, 48), "video/mp4", "hevc.mp4"),
    Phone("av1_mp4", "video/mp4", (64, 48), "video/mp4", "av1.mp4"),
    Phone("mkv", "video/x-matroska", (64, 48), "video/mp4", "screen.mkv"),
    Phone("webm", "video/webm", (64, 48), "video/mp4", "clip.webm"),
    Phone("portrait_mp4", "video/mp4", (48, 64), "video/mp4", "portrait.mp4"),
    Phone("anamorphic_mp4", "video/mp4", (128, 48), "video/mp4", "anamorphic.mp4"),
    Phone(
        "jpeg",
        "image/jpeg",
        (48, 64),
        "image/jpeg",
        "photo.jpg",
        PIXEL,
        TAKEN,
    ),
    Phone(
        "heic",
        "image/heic",
        (64, 48),
        "image/jpeg",
        "photo.heic",
        PIXEL,
        TAKEN,
    ),
    Phone("avif", "image/avif", (64, 48), "image/jpeg", "photo.avif", PIXEL, TAKEN),
    Phone("webp", "image/webp", (64, 48), "image/jpeg", "photo.webp", PIXEL, TAKEN),
    Phone("gif", "image/gif", (64, 48), "image/gif", "anim.gif"),
]


@pytest.mark.parametrize("case", PHONES, ids=[case.attr for case in PHONES])
def test_phone_format_uploads_with_original_and_rendition(
    module_service: RunningService, phone_media: PhoneMedia, case: Phone
) -> None:
    service, token = module_service, module_service.token(subject())
    source: Path = getattr(phone_media, case.attr)
    original = source.read_bytes()
    media = visible(service, token, upload_ok(service, token, source, case.media_type)["id"])
    assert (media["status"], media["mediaType"]) == ("SUCCESS", case.media_type)
    assert (media["width"], media["height"]) == case.size
    assert media["sizeBytes"] == len(original)
    assert media["sha256"] == hashlib.sha256(original).hexdigest()
    assert media["playbackMediaType"] == case.playback
    assert media["thumbhash"] and media["processingStage"] is None
    assert (media["cameraMake"], media["cameraModel"]) == (case.camera or (None, None))
    assert media["mediaDate"] == case.taken

    download = httpx.get(media["downloadUrl"]["url"], timeout=30)
    assert download.status_code == 200 and download.content == original
    assert download.headers["content-type"].startswith(case.media_type)
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment") and f'filename="{case.file_name}"' in disposition

    stream_url = media["streamUrl"]["url"]
    stream = httpx.get(stream_url, timeout=30)
    assert stream.status_code == 200 and stream.headers["content-type"].startswith(case.playback)
    body, etag = stream.content, stream.headers["etag"]
    # Ranges and conditionals work on the rendition as on any stored object.
    part = httpx.get(stream_url, headers={"Range": "bytes=4-11"}, timeout=30)
    assert part.status_code == 206 and part.content == body[4:12]
    assert part.headers["content-range"] == f"bytes 4-11/{len(body)}"
    unchanged = httpx.get(stream_url, headers={"If-None-Match": etag}, timeout=30)
    assert unchanged.status_code == 304
    if case.playback.startswith("video/"):
        assert body.index(b"moov") < body.index(b"mdat")


LOCATED = """query($id: ID!) { media(id: $id) { id latitude longitude } }"""


def test_location_is_for_the_owner_and_admins(
    module_service: RunningService, phone_media: PhoneMedia
) -> None:
    service, owner = module_service, module_service.token(subject())
    done = upload_ok(service, owner, phone_media.mov, "video/quicktime")
    mine = service.graphql(LOCATED, {"id": done["id"]}, token=owner)["data"]["media"]
    assert (mine["latitude"], mine["longitude"]) == (48.8584, 2.2945)
    admin = module_service.token(subject(), scopes=("user", "admin"))
    seen = service.graphql(LOCATED, {"id": done["id"]}, token=admin)["data"]["media"]
    assert (seen["latitude"], seen["longitude"]) == (48.8584, 2.2945)
    stranger = module_service.token(subject())
    assert service.graphql(LOCATED, {"id": done["id"]}, token=stranger)["data"]["media"] is None


def test_a_hostile_file_fails_at_its_stage_and_leaves_no_object(
    module_service: RunningService, phone_media: PhoneMedia
) -> None:
    service, token = module_service, module_service.token(subject())
    before = stored_objects(service.settings)
    ticket = ticket_for(service, token, phone_media.many_frame_gif, "image/gif")
    answer = put(ticket, phone_media.many_frame_gif.read_bytes())
    assert answer.status_code == 202, answer.text
    media = settled_state(service, token, ticket["mediaId"])
    assert media["status"] == "FAILED" and media["processingStage"] == "PROBE"
    assert "1000 frames" in readable_reason(media["failureReason"])
    assert media["sha256"] is None and media["streamUrl"] is None
    assert stored_objects(service.settings) == before
    assert media_state(service, token, ticket["mediaId"]) == media


def test_a_shared_photo_is_its_preview_without_location(
    module_service: RunningService, phone_media: PhoneMedia
) -> None:
    service, token = module_service, module_service.token(subject())
    done = upload_ok(service, token, phone_media.heic, "image/heic")
    link = create_link(service, token, [done["id"]])
    (seen,) = ok(shared(service, link["token"]))["sharedMedia"]["medias"]
    assert (seen["mediaType"], seen["playbackMediaType"]) == ("image/heic", "image/jpeg")
    assert seen["thumbhash"] and (seen["width"], seen["height"]) == (64, 48)
    preview = httpx.get(seen["streamUrl"]["url"], timeout=30)
    assert preview.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(preview.content)) as picture:
        assert not picture.getexif()  # the location stays with the original
