"""The HLS ladder through the whole app, on the embedded default and on PostgreSQL + S3: stored
with the media, removed with it, removed whole when storing it fails, and served under its token:
every URI of every playlist resolves, nothing else does, and revocation or deletion stops it all."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import m3u8  # type: ignore[import-untyped]
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


HLS_URLS = """query($id: ID!) { media(id: $id) {
  durationSeconds hlsUrl { url expiresAt } short: hlsUrl(expiresIn: 60) { url expiresAt }
  long: hlsUrl(expiresIn: 1000000) { url expiresAt } streamUrl { url expiresAt }
  downloadUrl { url expiresAt } } }"""
REVOKE = "mutation($id: ID!) { revokeMediaUrls(id: $id) { id } }"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


@pytest.fixture(scope="module")
def ladder(hls_service: RunningService, clip: Path) -> dict[str, Any]:
    """One media with a ladder, its owner's token and its URLs (tests must not revoke it)."""
    token = hls_service.token(subject())
    media = upload_file(hls_service, token, clip, "video/mp4", settle_timeout_s=SETTLE_S)
    urls = hls_service.graphql(HLS_URLS, {"id": media["id"]}, token=token)["data"]["media"]
    return {"token": token, "id": media["id"], **urls}


def _walk(master_url: str) -> dict[str, httpx.Response]:
    """Every file the master playlist leads to, fetched from another origin: name -> answer."""
    headers = {"Origin": "http://127.0.0.1:1"}
    fetched: dict[str, httpx.Response] = {}
    base = master_url.rsplit("/", 1)[0] + "/"

    def get(url: str) -> httpx.Response:
        answer = httpx.get(url, headers=headers, timeout=30)
        assert answer.status_code == 200, (url, answer.status_code, answer.text)
        assert answer.headers["access-control-allow-origin"] in ("*", headers["Origin"])
        assert answer.headers["cache-control"].startswith("private, max-age=")
        fetched[url.removeprefix(base)] = answer
        return answer

    master = m3u8.loads(get(master_url).text, uri=master_url)
    assert master.is_variant
    for playlist in master.playlists:
        variant = m3u8.loads(get(playlist.absolute_uri).text, uri=playlist.absolute_uri)
        for init in variant.segment_map:
            get(init.absolute_uri)
        for segment in variant.segments:
            get(segment.absolute_uri)
    return fetched


def test_every_uri_of_every_playlist_resolves_under_the_token(
    hls_service: RunningService, ladder: dict[str, Any]
) -> None:
    master_url = ladder["hlsUrl"]["url"]
    assert master_url.startswith(f"{hls_service.url}/hls/h.") and master_url.endswith(
        "/master.m3u8"
    )
    fetched = _walk(master_url)
    assert len(fetched) == LADDER_FILES
    for name, answer in fetched.items():
        kind = PLAYLIST_TYPE if name.endswith(".m3u8") else "video/mp4"
        assert answer.headers["content-type"] == kind
        assert answer.headers["accept-ranges"] == "bytes"
    assert fetched["master.m3u8"].text.startswith("#EXTM3U")
    assert fetched["240p/init.mp4"].content[4:8] == b"ftyp"


def test_segments_answer_ranges_conditionals_and_head(ladder: dict[str, Any]) -> None:
    url = ladder["hlsUrl"]["url"].replace("master.m3u8", "144p/seg_00002.m4s")
    whole = httpx.get(url, timeout=30)
    assert whole.status_code == 200 and len(whole.content) > 100
    part = httpx.get(url, headers={"Range": "bytes=10-99"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(whole.content)}"
    etag = whole.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    head = httpx.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(whole.content))
    preflight = httpx.options(
        url,
        headers={"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert preflight.status_code == 204


def _raw_status(url: str, path: str) -> int:
    """The status of a GET for `path` exactly as written: no client normalises it first."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_names_the_ladder_wrote_are_served(ladder: dict[str, Any]) -> None:
    master_url = ladder["hlsUrl"]["url"]
    prefix = urlsplit(master_url).path.rsplit("/", 1)[0]  # /hls/TOKEN
    assert _raw_status(master_url, f"{prefix}/240p/index.m3u8") == 200
    for name in (
        "240p/seg_00009.m4s",  # not written
        "240p/index.m3u8.tmp",
        "index.m3u8",
        "240p",
        "",
        "240p/../master.m3u8",
        "../master.m3u8",
        "./master.m3u8",
        "240p/./index.m3u8",
        "240p%2Findex.m3u8",  # the router would hand this over as 240p/index.m3u8
        "240p%2findex.m3u8",
        "%2e%2e/master.m3u8",
        "master%2Em3u8",
        "240p//index.m3u8",
        "240p/index.m3u8/",
        "MASTER.M3U8",
    ):
        assert _raw_status(master_url, f"{prefix}/{name}") == 404, name
    assert _raw_status(master_url, f"{prefix}%2F240p%2Findex.m3u8") == 404


def test_a_tampered_or_misused_token_is_refused(
    hls_service: RunningService, ladder: dict[str, Any]
) -> None:
    master_url = ladder["hlsUrl"]["url"]
    token = urlsplit(master_url).path.split("/")[2]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert httpx.get(master_url.replace(token, flipped), timeout=30).status_code == 403
    # An HLS token opens nothing under /media, a stream token nothing under /hls.
    assert httpx.get(f"{hls_service.url}/media/{token}", timeout=30).status_code == 403
    stream_token = urlsplit(ladder["streamUrl"]["url"]).path.split("/")[2]
    assert httpx.get(master_url.replace(token, stream_token), timeout=30).status_code == 403


def test_playback_urls_live_as_long_as_the_video_plus_a_margin(ladder: dict[str, Any]) -> None:
    def lifetime(url: dict[str, Any]) -> float:
        expires = datetime.fromisoformat(url["expiresAt"])
        return (expires - datetime.now(UTC)).total_seconds()

    # 12 s of video + 600 s beats MEDIA_URL_TTL_S (300 s); asked-for lifetimes win, up to 24 h.
    assert lifetime(ladder["hlsUrl"]) == pytest.approx(12 + 600, abs=10)
    assert lifetime(ladder["streamUrl"]) == pytest.approx(12 + 600, abs=10)
    assert lifetime(ladder["downloadUrl"]) == pytest.approx(300, abs=10)  # not a playback
    assert lifetime(ladder["short"]) == pytest.approx(60, abs=10)
    assert lifetime(ladder["long"]) == pytest.approx(86400, abs=10)
    assert httpx.get(ladder["short"]["url"], timeout=30).status_code == 200


def test_revoking_or_deleting_the_media_stops_every_file(
    hls_service: RunningService, clip: Path
) -> None:
    token = hls_service.token(subject())
    for ends in (REVOKE, DELETE):
        media = upload_file(hls_service, token, clip, "video/mp4", settle_timeout_s=SETTLE_S)
        urls = hls_service.graphql(HLS_URLS, {"id": media["id"]}, token=token)["data"]["media"]
        names = list(_walk(urls["hlsUrl"]["url"]))
        answer = hls_service.graphql(ends, {"id": media["id"]}, token=token)
        assert "errors" not in answer, answer
        base = urls["hlsUrl"]["url"].rsplit("/", 1)[0]
        for name in names:
            assert httpx.get(f"{base}/{name}", timeout=30).status_code == 403, (ends, name)


def test_share_links_hand_out_hls_urls(hls_service: RunningService, clip: Path) -> None:
    from tests.support.documents import REVOKE_LINK
    from tests.support.sharing import create_link, ok

    token = hls_service.token(subject())
    media = upload_file(hls_service, token, clip, "video/mp4", settle_timeout_s=SETTLE_S)
    link = create_link(hls_service, token, [media["id"]])
    query = """query($token: String!) { sharedMedia(token: $token) {
      medias { durationSeconds hlsUrl { url expiresAt } } } }"""
    shared = ok(hls_service.graphql(query, {"token": link["token"]}))["sharedMedia"]
    url = shared["medias"][0]["hlsUrl"]["url"]
    assert len(_walk(url)) == LADDER_FILES
    page = httpx.get(link["url"], timeout=30)
    assert page.status_code == 200
    assert 'type="application/vnd.apple.mpegurl"' in page.text and "/hls/h." in page.text
    ok(hls_service.graphql(REVOKE_LINK, {"id": link["id"]}, token=token))
    assert httpx.get(url, timeout=30).status_code == 403


def test_images_have_no_hls_url(hls_service: RunningService, tmp_path: Path) -> None:
    from tests.support.media_files import make_png

    token = hls_service.token(subject())
    media = upload_file(hls_service, token, make_png(tmp_path / "pic.png"), "image/png")
    urls = hls_service.graphql(HLS_URLS, {"id": media["id"]}, token=token)["data"]["media"]
    assert urls["hlsUrl"] is None and urls["streamUrl"] is not None


def test_every_ladder_file_is_encrypted_at_rest(tmp_path: Path, clip: Path) -> None:
    from tests.e2e.test_encryption import master_key, stored_files
    from tests.support.app import embedded_service_at

    environ = {**LADDER_ENV, "MEDIA_ENCRYPTION_KEYS": master_key("k1")}
    with embedded_service_at(tmp_path / "data", **environ) as service:
        token = service.token(subject())
        media = upload_file(service, token, clip, "video/mp4", settle_timeout_s=SETTLE_S)
        urls = service.graphql(HLS_URLS, {"id": media["id"]}, token=token)["data"]["media"]
        fetched = _walk(urls["hlsUrl"]["url"])  # the plaintexts, decrypted on the way out
        at_rest = [path.read_bytes() for path in stored_files(service).values()]
    assert len(at_rest) == 2 + LADDER_FILES
    for name, answer in fetched.items():
        plain = answer.content
        window = plain[len(plain) // 2 : len(plain) // 2 + 32]
        assert len(window) == 32, name
        for stored in at_rest:
            assert plain[:16] not in stored and window not in stored, name
    for stored in at_rest:
        assert b"#EXTM3U" not in stored and b"moof" not in stored and b"ftyp" not in stored
