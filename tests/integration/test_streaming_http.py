"""The streaming endpoint over real HTTP: uvicorn, Litestar, a real UrlSigner, files on disk."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar, get

from media.models import Purpose
from streaming.edge import Served
from streaming.routes import stream_route_handlers
from tests.support.streaming_source import (
    LAST_MODIFIED,
    StreamingHarness,
    StreamsOnly,
    etag_of,
    public_id,
    serve,
    streaming_app,
)

SIZE = 10_000
DATA = os.urandom(SIZE)
ETAG = etag_of(DATA)
LM_TEXT = "Sat, 01 Feb 2025 08:30:15 GMT"
assert LAST_MODIFIED.second == 15


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture
def media(streaming: StreamingHarness) -> str:
    """URL of a 10 000-byte video named with non-ASCII characters."""
    stored = streaming.source.add(1, DATA, file_name='Été à Zürich "final".mp4')
    assert stored.etag == ETAG
    return streaming.media_url(streaming.source.token(1))


def without_date(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k not in ("date", "server")]


def test_whole_object_and_its_headers(client: httpx.Client, media: str) -> None:
    response = client.get(media)
    assert response.status_code == 200
    assert response.content == DATA
    headers = response.headers
    assert headers["etag"] == f'"{ETAG}"'
    assert headers["last-modified"] == LM_TEXT
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(SIZE)
    assert headers["content-type"] == "video/mp4"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "sandbox"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "private, max-age=300"
    assert headers["content-disposition"] == (
        'inline; filename="Ete a Zurich _final_.mp4"; '
        "filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20Z%C3%BCrich%20%22final%22.mp4"
    )
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-expose-headers"] == (
        "Content-Range, Accept-Ranges, Content-Length, ETag, Content-Disposition"
    )
    assert len(headers.get_list("date")) == 1
    assert "transfer-encoding" not in headers
    assert "access-control-allow-credentials" not in headers


def test_download_url_is_an_attachment(client: httpx.Client, streaming: StreamingHarness) -> None:
    streaming.source.add(2, b"abc", content_type="image/png", file_name="a.png")
    url = streaming.media_url(streaming.source.token(2, Purpose.DOWNLOAD))
    response = client.get(url)
    assert response.headers["content-disposition"].startswith('attachment; filename="a.png"')
    assert response.headers["content-type"] == "image/png"


def test_cache_lifetime_follows_the_url(
    client: httpx.Client, streaming: StreamingHarness, media: str
) -> None:
    streaming.clock.advance(100)
    assert client.get(media).headers["cache-control"] == "private, max-age=200"
    streaming.clock.advance(215)  # past exp, inside the leeway: served, never cached
    assert client.get(media).headers["cache-control"] == "private, max-age=0"
    streaming.clock.advance(16)
    assert client.get(media).status_code == 403


RANGE_CASES: list[tuple[str, int, bytes | None, str | None]] = [
    ("bytes=0-99", 206, DATA[:100], "bytes 0-99/10000"),
    ("bytes=9000-", 206, DATA[9000:], "bytes 9000-9999/10000"),
    ("bytes=-500", 206, DATA[-500:], "bytes 9500-9999/10000"),
    ("bytes=-20000", 206, DATA, "bytes 0-9999/10000"),
    ("bytes=9990-20000", 206, DATA[9990:], "bytes 9990-9999/10000"),
    ("bytes=5-5", 206, DATA[5:6], "bytes 5-5/10000"),
    ("BYTES=0-9", 206, DATA[:10], "bytes 0-9/10000"),
    ("bytes=0-9,5-19", 206, DATA[:20], "bytes 0-19/10000"),
    ("bytes=10000-,0-9", 206, DATA[:10], "bytes 0-9/10000"),
    ("bytes=9-0", 200, DATA, None),
    ("bytes=abc", 200, DATA, None),
    ("items=0-9", 200, DATA, None),
    ("bytes=0-,0-", 200, DATA, None),
    ("bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(17)), 200, DATA, None),
    ("bytes=10000-", 416, None, "bytes */10000"),
    ("bytes=-0", 416, None, "bytes */10000"),
    ("bytes=20000-30000,10000-", 416, None, "bytes */10000"),
]


@pytest.mark.parametrize(("header", "status", "body", "content_range"), RANGE_CASES)
def test_range_forms(
    client: httpx.Client,
    media: str,
    header: str,
    status: int,
    body: bytes | None,
    content_range: str | None,
) -> None:
    response = client.get(media, headers={"Range": header})
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    assert response.headers["content-length"] == str(len(response.content))
    if body is not None:
        assert response.content == body
        assert response.headers["content-type"] == "video/mp4"
        assert response.headers["etag"] == f'"{ETAG}"'
    else:
        assert response.content == b'{"error":"range_not_satisfiable"}'


def parse_multipart(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """Parse multipart/byteranges strictly, reading each part by its Content-Range length."""
    match = re.fullmatch(
        r"multipart/byteranges; boundary=([0-9a-f]{32})", response.headers["content-type"]
    )
    assert match is not None
    delimiter = b"--" + match[1].encode()
    body, parts, position = response.content, [], 0
    assert body.startswith(delimiter + b"\r\n")
    position = len(delimiter) + 2
    while True:
        head_end = body.index(b"\r\n\r\n", position)
        lines = body[position:head_end].decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
        first, last = map(
            int, re.fullmatch(r"bytes (\d+)-(\d+)/\d+", headers["content-range"]).groups()
        )
        data_start = head_end + 4
        data = body[data_start : data_start + last - first + 1]
        parts.append((headers, data))
        position = data_start + len(data)
        assert body[position : position + 2 + len(delimiter)] == b"\r\n" + delimiter
        position += 2 + len(delimiter)
        if body[position:] == b"--\r\n":
            return parts
        assert body[position : position + 2] == b"\r\n"
        position += 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9,100-199", [(0, 9), (100, 199)]),
        ("bytes=9000-,-10,0-0", [(9000, 9999), (0, 0)]),  # -10 merges into 9000-
        ("bytes=500-599,0-9,2000-2099", [(500, 599), (0, 9), (2000, 2099)]),
        (
            "bytes=" + ",".join(f"{i * 100}-{i * 100 + 49}" for i in range(16)),
            [(i * 100, i * 100 + 49) for i in range(16)],
        ),
    ],
)
def test_multipart_byteranges(
    client: httpx.Client, media: str, header: str, expected: list[tuple[int, int]]
) -> None:
    response = client.get(media, headers={"Range": header})
    assert response.status_code == 206
    assert int(response.headers["content-length"]) == len(response.content)
    assert "content-range" not in response.headers
    parts = parse_multipart(response)
    assert [(h["content-range"], h["content-type"]) for h, _ in parts] == [
        (f"bytes {a}-{b}/{SIZE}", "video/mp4") for a, b in expected
    ]
    assert [data for _, data in parts] == [DATA[a : b + 1] for a, b in expected]


def test_multipart_boundary_is_random(client: httpx.Client, media: str) -> None:
    first = client.get(media, headers={"Range": "bytes=0-0,5-5"}).headers["content-type"]
    second = client.get(media, headers={"Range": "bytes=0-0,5-5"}).headers["content-type"]
    assert first != second


CONDITIONAL_CASES: list[tuple[dict[str, str], int]] = [
    ({"If-None-Match": '"{etag}"'}, 304),
    ({"If-None-Match": 'W/"{etag}"'}, 304),
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": '"other"'}, 200),
    ({"If-Modified-Since": LM_TEXT}, 304),
    ({"If-Modified-Since": "Sat, 01 Feb 2025 08:30:14 GMT"}, 200),
    ({"If-Modified-Since": "garbage"}, 200),
    ({"If-None-Match": '"other"', "If-Modified-Since": LM_TEXT}, 200),
    ({"If-Match": '"{etag}"'}, 200),
    ({"If-Match": "*"}, 200),
    ({"If-Match": '"other"'}, 412),
    ({"If-Match": 'W/"{etag}"'}, 412),
    ({"If-Unmodified-Since": LM_TEXT}, 200),
    ({"If-Unmodified-Since": "Sat, 01 Feb 2025 08:30:14 GMT"}, 412),
    ({"If-Unmodified-Since": "garbage"}, 200),
    ({"If-Match": '"{etag}"', "If-Unmodified-Since": "Sat, 01 Feb 2025 08:30:14 GMT"}, 200),
    ({"If-Match": '"other"', "If-None-Match": '"{etag}"'}, 412),
    ({"If-Unmodified-Since": "Sat, 01 Feb 2025 08:30:14 GMT", "If-None-Match": "*"}, 412),
    ({"If-Match": '"{etag}"', "If-None-Match": '"{etag}"'}, 304),
    ({"If-None-Match": '"{etag}"', "Range": "bytes=0-9"}, 304),
    ({"If-Match": '"other"', "Range": "bytes=0-9"}, 412),
    ({"If-Match": '"{etag}"', "Range": "bytes=0-9"}, 206),
    ({"If-None-Match": '"other"', "Range": "bytes=99999-"}, 416),
]


@pytest.mark.parametrize(("headers", "status"), CONDITIONAL_CASES)
def test_conditionals(
    client: httpx.Client, media: str, headers: dict[str, str], status: int
) -> None:
    sent = {name: value.replace("{etag}", ETAG) for name, value in headers.items()}
    response = client.get(media, headers=sent)
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
        assert response.headers["etag"] == f'"{ETAG}"'
        assert response.headers["last-modified"] == LM_TEXT
        assert response.headers["cache-control"] == "private, max-age=300"
        assert "content-range" not in response.headers
    if status == 412:
        assert response.content == b'{"error":"precondition_failed"}'
        assert "etag" not in response.headers


def test_conditional_list_headers_are_combined(client: httpx.Client, media: str) -> None:
    headers = [("If-None-Match", '"a"'), ("If-None-Match", f'"{ETAG}"')]
    assert client.get(media, headers=headers).status_code == 304


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ('"{etag}"', 206),
        ('"stale"', 200),
        ('W/"{etag}"', 200),
        (LM_TEXT, 206),
        ("Sat, 01 Feb 2025 08:30:16 GMT", 200),
        ("garbage", 200),
    ],
)
def test_if_range(client: httpx.Client, media: str, if_range: str, status: int) -> None:
    headers = {"Range": "bytes=10-19", "If-Range": if_range.replace("{etag}", ETAG)}
    response = client.get(media, headers=headers)
    assert response.status_code == status
    assert response.content == (DATA[10:20] if status == 206 else DATA)


@pytest.mark.parametrize(
    "headers",
    [
        # §5.3: several lines make one comma list, which neither field allows: a plain GET.
        [("Range", "bytes=0-9"), ("Range", "bytes=20-29")],
        [("Range", "bytes=10-19"), ("If-Range", '"{etag}"'), ("If-Range", '"stale"')],
        [("Range", "bytes=10-19"), ("If-Range", '"stale"'), ("If-Range", '"{etag}"')],
    ],
)
def test_several_lines_of_range_or_if_range_are_ignored(
    client: httpx.Client, media: str, headers: list[tuple[str, str]]
) -> None:
    sent = [(name, value.replace("{etag}", ETAG)) for name, value in headers]
    response = client.get(media, headers=sent)
    assert (response.status_code, response.content) == (200, DATA)
    assert "content-range" not in response.headers


def test_if_range_without_range_is_a_plain_get(client: httpx.Client, media: str) -> None:
    response = client.get(media, headers={"If-Range": '"stale"'})
    assert (response.status_code, response.content) == (200, DATA)


def test_head_has_the_get_headers_and_reads_nothing(
    client: httpx.Client, streaming: StreamingHarness, media: str
) -> None:
    get = client.get(media)
    streaming.source.reads.clear()
    head = client.head(media)
    assert head.status_code == 200
    assert head.content == b""
    assert without_date(head) == without_date(get)
    ranged = client.head(media, headers={"Range": "bytes=0-9"})
    assert without_date(ranged) == without_date(get)  # RFC 9110 §14.2: Range is for GET
    conditional = client.head(media, headers={"If-None-Match": f'"{ETAG}"'})
    assert conditional.status_code == 304
    assert streaming.source.reads == []


def test_preflight(client: httpx.Client, media: str) -> None:
    response = client.options(
        media,
        headers={
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range, if-none-match",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert allowed == {
        "range",
        "if-range",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
    }
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers


def test_preflight_does_not_need_a_valid_token(
    client: httpx.Client, streaming: StreamingHarness
) -> None:
    opened = streaming.source.opened
    response = client.options(streaming.media_url("nonsense"))
    assert response.status_code == 204
    assert streaming.source.opened == opened  # OPTIONS never looks at the token


def test_cors_origin_list(client: httpx.Client, streaming: StreamingHarness, media: str) -> None:
    app = streaming_app(
        streaming.source, streaming.clock, ("https://a.example", "https://b.example")
    )
    with serve(app) as base:
        url = media.replace(streaming.url, base)
        allowed = client.get(url, headers={"Origin": "https://b.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://b.example"
        assert allowed.headers["vary"] == "Origin"
        other = client.get(url, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert other.headers["vary"] == "Origin"
        cached = client.get(url, headers={"Origin": "https://a.example", "If-None-Match": "*"})
        assert cached.status_code == 304
        assert cached.headers["vary"] == "Origin"
        preflight = client.options(url, headers={"Origin": "https://a.example"})
        assert preflight.headers["access-control-allow-origin"] == "https://a.example"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(client: httpx.Client, media: str, method: str) -> None:
    response = client.request(method, media)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


def rejected_tokens(streaming: StreamingHarness) -> dict[str, str]:
    source = streaming.source
    source.add(3, b"revoked soon")
    good = source.token(1)
    revoked = source.token(3)
    source.files[3].generation += 1
    _, body = good.split(".", 1)
    upload, _ = streaming.signer.sign(
        Purpose.UPLOAD,
        media_id=public_id(1),
        subject="alice",
        generation=0,
        ttl_s=60,
        upload_id=uuid4(),
        max_bytes=10,
        content_type="video/mp4",
    )
    return {
        "garbage": "not-a-token",
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "prefix swapped": "d." + body,
        "alternative spelling": good + "=",
        "wrong purpose": upload,
        "revoked": revoked,
        "unknown media": source.token(999),
        "over long": good + "A" * 2000,
    }


def test_every_rejected_url_gets_the_same_403(
    client: httpx.Client, streaming: StreamingHarness, media: str
) -> None:
    answers = {
        name: client.get(streaming.media_url(token))
        for name, token in rejected_tokens(streaming).items()
    }
    streaming.clock.advance(300 + 31)
    answers["expired"] = client.get(media)
    reference = answers["expired"]
    assert reference.status_code == 403
    assert reference.content == b'{"error":"forbidden"}'
    for name, response in answers.items():
        assert (response.status_code, response.content) == (403, reference.content), name
        assert without_date(response) == without_date(reference), name
    assert streaming.source.reads == []


def test_head_rejection_matches_get(client: httpx.Client, streaming: StreamingHarness) -> None:
    url = streaming.media_url("not-a-token")
    head, get = client.head(url), client.get(url)
    assert head.status_code == get.status_code == 403
    assert without_date(head) == without_date(get)


@pytest.mark.parametrize(
    ("outage", "code"), [("database", "database_unavailable"), ("storage", "storage_unavailable")]
)
def test_outage_is_a_clean_503(
    client: httpx.Client, streaming: StreamingHarness, media: str, outage: str, code: str
) -> None:
    streaming.source.outage = outage
    for headers in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=0-9,20-29"}):
        response = client.get(media, headers=headers)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {"error": code}
    assert all(log.closed.is_set() for log in streaming.source.reads)


ZERO_CASES: list[tuple[dict[str, str], int, str | None]] = [
    ({}, 200, None),
    ({"Range": "bytes=0-"}, 416, "bytes */0"),
    ({"Range": "bytes=0-0"}, 416, "bytes */0"),
    ({"Range": "bytes=-0"}, 416, "bytes */0"),
    ({"Range": "bytes=-5"}, 200, None),  # satisfiable but empty: Range ignored, see ranges.py
    ({"Range": "bytes=junk"}, 200, None),
]


@pytest.mark.parametrize(("headers", "status", "content_range"), ZERO_CASES)
def test_zero_length_object(
    client: httpx.Client,
    streaming: StreamingHarness,
    headers: dict[str, str],
    status: int,
    content_range: str | None,
) -> None:
    streaming.source.add(4, b"", content_type="image/png", file_name="empty.png")
    url = streaming.media_url(streaming.source.token(4))
    response = client.get(url, headers=headers)
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    if status == 200:
        assert response.content == b""
        assert response.headers["content-length"] == "0"
        assert response.headers["accept-ranges"] == "bytes"
    head = client.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, "0")


def test_big_object_streams_in_bounded_chunks(
    client: httpx.Client, streaming: StreamingHarness
) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)
    streaming.source.add(5, big)
    with client.stream("GET", streaming.media_url(streaming.source.token(5))) as response:
        sizes = [len(chunk) for chunk in response.iter_raw()]
    assert sum(sizes) == len(big)
    assert max(sizes) <= 256 * 1024
    (log,) = streaming.source.reads
    assert log.closed.wait(timeout=5)
    assert log.delivered == len(big)


@pytest.mark.parametrize("on_loop", [False, True])
@pytest.mark.parametrize("range_header", [None, "bytes=100-", "bytes=0-99,1000-"])
def test_disconnect_closes_the_storage_iterator(
    streaming: StreamingHarness, range_header: str | None, on_loop: bool
) -> None:
    """Also when reads never yield to the event loop (cached pages are read on it): the server
    drops the sends of a gone client silently, so only a watcher notices."""
    size = 32 * 1024 * 1024
    streaming.source.on_loop = on_loop
    streaming.source.add(6, os.urandom(size))
    url = streaming.media_url(streaming.source.token(6))
    headers = {"Range": range_header} if range_header else {}
    with httpx.Client(timeout=10) as fresh, fresh.stream("GET", url, headers=headers) as response:
        assert response.status_code == (206 if range_header else 200)
        next(response.iter_raw(64 * 1024))
    streaming.source.on_loop = False
    log = streaming.source.reads[-1]
    assert log.closed.wait(timeout=5), "the storage iterator was not closed"
    assert log.delivered < log.length
    assert all(read.closed.wait(timeout=5) for read in streaming.source.reads)


def test_a_slow_client_that_leaves_stops_a_read_that_never_yields(
    streaming: StreamingHarness,
) -> None:
    """A client reading slowly, then gone, while the reads never yield to the event loop (the
    local folder reads cached pages on it) and the server drops the sends of a gone client."""
    size = 48 * 1024 * 1024
    streaming.source.add(7, os.urandom(size))
    streaming.source.on_loop, streaming.source.chunk_bytes = True, 1024 * 1024
    try:
        parts = urlsplit(streaming.media_url(streaming.source.token(7)))
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as client:
            client.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = 0
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # about 100 kB/s, as `curl --limit-rate`
                received += len(client.recv(10_000))
                time.sleep(0.1)
        log = streaming.source.reads[-1]
        assert log.closed.wait(timeout=5), "the storage iterator was not closed"
        assert log.delivered < size // 2, (log.delivered, received)
    finally:
        streaming.source.on_loop, streaming.source.chunk_bytes = False, 64 * 1024


def test_the_route_logs_itself_and_no_app_middleware_runs(
    client: httpx.Client, streaming: StreamingHarness, media: str
) -> None:
    seen_by_middleware: list[str] = []
    observed: list[tuple[str, str, int, int]] = []

    class Recording:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen_by_middleware.append(scope["path"])
            await self.app(scope, receive, send)

    @get("/other", sync_to_thread=False)
    def other() -> str:
        return "ok"

    class Observer:
        def begin(self, scope: Any, route: str) -> str:
            return f"{scope['method']} {route}"

        def end(self, begun: str, served: Served) -> None:
            assert begun == f"{served.method} {served.route}"
            # Bytes were taken exactly when a first byte time was noted, and after the start.
            assert (served.first_byte > served.started) == (served.sent > 0)
            observed.append((served.method, served.route, served.status, served.sent))

    handlers = stream_route_handlers(clock=streaming.clock, observer=Observer())
    app = Litestar(route_handlers=[*handlers, other], middleware=[Recording], debug=False)
    app.state.service = StreamsOnly(streaming.source)
    with serve(app) as base:
        url = media.replace(streaming.url, base)
        assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
        assert client.head(url).status_code == 200
        assert client.get(base + "/media/nonsense").status_code == 403
        assert client.get(url + "/extra").status_code == 404
        assert client.get(base + "/other").status_code == 200
    route = "/media/{token}"
    # The bad path is Litestar's 404, answered outside the route and still observed.
    assert observed == [
        ("GET", route, 206, 10),
        ("HEAD", route, 200, 0),
        ("GET", route, 403, 21),
        ("GET", route, 404, 0),
    ]
    assert seen_by_middleware == ["/other"]
