"""Logs: a refused client is one INFO line, no traceback; redaction touches URLs, not file paths."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from server.request_log import redact_path
from tests.support.app import RunningService, embedded_service_at
from tests.support.documents import SUBJECT

TOKEN = "s.eyJ2IjoyLCJrIjoiYWJjZCJ9.aGVsbG8.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/media/{TOKEN}", "/media/{token}"),
        (f"/MEDIA/{TOKEN}", "/MEDIA/{token}"),
        (f"/upload/{TOKEN}", "/upload/{token}"),
        (f"/upload/parts/{TOKEN}", "/upload/parts/{token}"),
        (f"/upload/parts/{TOKEN}/x", "/upload/parts/{token}/x"),
        (f"/hls/{TOKEN}/master.m3u8", "/hls/{token}/master.m3u8"),
        (f"/HLS/{TOKEN}/720p/seg_00001.m4s", "/HLS/{token}/720p/seg_00001.m4s"),
        (f"/media/{TOKEN}/extra", "/media/{token}/extra"),
        (
            f"GET http://127.0.0.1:8090/media/{TOKEN}?x=1",
            "GET http://127.0.0.1:8090/media/{token}?x=1",
        ),
        (f"url='https://cdn.example/upload/{TOKEN}'", "url='https://cdn.example/upload/{token}'"),
        (f'"/media/{TOKEN}"', '"/media/{token}"'),
        # Source files in tracebacks are not URLs.
        ('File "/work/app/media/service/streams.py", line 3', None),
        ("media/service/x.py", None),
        ("/srv/app/media/repository.py", None),
        ("/work/wt/server/upload/handler.py", None),
        ("/metrics", None),
    ],
)
def test_redaction_touches_urls_not_file_paths(text: str, expected: str | None) -> None:
    assert redact_path(text) == (text if expected is None else expected)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with embedded_service_at(tmp_path_factory.mktemp("request-log")) as running:
        yield running


REFUSED_BEARERS = {
    "expired or garbage token": "Bearer a.b.c",
    "not a bearer scheme": "Basic YWxpY2U6c2VjcmV0",
    "bearer without a token": "Bearer",
}


@pytest.mark.parametrize("authorization", list(REFUSED_BEARERS.values()), ids=list(REFUSED_BEARERS))
def test_a_refused_bearer_token_is_one_info_line(
    service: RunningService, caplog: pytest.LogCaptureFixture, authorization: str
) -> None:
    caplog.set_level(logging.INFO)
    response = httpx.post(
        f"{service.url}/graphql",
        json={"query": SUBJECT},
        headers={"Authorization": authorization},
        timeout=30,
    )
    assert response.status_code == 401
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert [r.levelno for r in records] == [logging.INFO], [r.getMessage() for r in records]
    assert records[0].name == "media.request" and records[0].exc_info is None
    assert "Traceback" not in caplog.text
