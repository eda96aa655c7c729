"""The whole flow over real HTTP, same body on the embedded default and the production shape."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import av
import httpx
from PIL import Image

from tests.support.app import RunningService
from tests.support.documents import LIST
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4

URLS = """query($id: ID!) { media(id: $id) { id status sha256 playbackMediaType
  streamUrl { url expiresAt } downloadUrl { url } thumbnailUrl { url } } }"""


def test_upload_stream_revoke_delete(any_service: RunningService, tmp_path: Path) -> None:
    service = any_service
    token = service.token("flow-user")
    source = make_mp4(tmp_path / "clip.mp4", seconds=2.0, faststart=False)
    media = upload_file(service, token, source, "video/mp4")
    replay = httpx.put(
        media["uploadUrl"], content=source.read_bytes(), headers=media["uploadHeaders"]
    )
    assert replay.status_code == 409
    assert media["status"] == "SUCCESS" and media["kind"] == "VIDEO"
    assert (media["width"], media["height"]) == (320, 240)
    assert abs(media["durationSeconds"] - 2.0) < 0.2
    assert media["hasThumbnail"] is True

    listed = service.graphql(LIST, token=token)["data"]["medias"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [media["id"]]

    urls = service.graphql(URLS, {"id": media["id"]}, token=token)["data"]["media"]
    stream = urls["streamUrl"]["url"]
    whole = httpx.get(stream, timeout=30)
    assert whole.status_code == 200
    body = whole.content
    assert whole.headers["content-type"].startswith(urls["playbackMediaType"]) and body
    # The stream is a faststart rendition: moov before mdat, and the same duration.
    assert body.index(b"moov") < body.index(b"mdat")
    with av.open(io.BytesIO(body)) as container:
        assert abs(float(container.duration or 0) / 1e6 - 2.0) < 0.2

    # FFmpeg (through PyAV) plays the URL itself and seeks with range requests.
    with av.open(stream, timeout=30) as remote:
        remote.seek(int(1.0 * av.time_base))
        frame = next(remote.decode(video=0))
        assert frame.time is not None and 0.5 <= frame.time <= 1.5
        assert (frame.width, frame.height) == (320, 240)

    part = httpx.get(stream, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    assert part.content == body[100:200]
    suffix = httpx.get(stream, headers={"Range": "bytes=-10"}, timeout=30)
    assert suffix.content == body[-10:]
    head = httpx.head(stream, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(body))
    assert head.headers["etag"] == whole.headers["etag"]

    # The download is the original, byte for byte (its moov still at the end).
    download = httpx.get(urls["downloadUrl"]["url"], timeout=30)
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content == source.read_bytes() and len(download.content) == media["sizeBytes"]
    assert hashlib.sha256(download.content).hexdigest() == urls["sha256"]
    thumb = httpx.get(urls["thumbnailUrl"]["url"], timeout=30)
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert max(image.size) <= 320

    other = service.token("someone-else")
    assert service.graphql(URLS, {"id": media["id"]}, token=other)["data"]["media"] is None

    revoked = service.graphql(
        "mutation($id: ID!) { revokeMediaUrls(id: $id) { id } }", {"id": media["id"]}, token=token
    )
    assert "errors" not in revoked, revoked
    assert httpx.get(stream, timeout=30).status_code == 403
    fresh = service.graphql(URLS, {"id": media["id"]}, token=token)["data"]["media"]["streamUrl"][
        "url"
    ]
    assert httpx.get(fresh, headers={"Range": "bytes=0-0"}, timeout=30).status_code == 206

    deleted = service.graphql(
        "mutation($id: ID!) { deleteMedia(id: $id) }", {"id": media["id"]}, token=token
    )
    assert deleted["data"]["deleteMedia"] is True
    assert httpx.get(fresh, timeout=30).status_code == 403
    assert service.graphql(URLS, {"id": media["id"]}, token=token)["data"]["media"] is None
