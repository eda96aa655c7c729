"""CORS on the upload routes: a page on another origin may PUT bytes, never with credentials."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.app import RunningService, embedded_service_at
from tests.support.media_files import MediaFiles
from tests.support.uploads import put, subject, tampered, ticket_for

ORIGIN = "http://app.example"


def _preflight(url: str, origin: str = ORIGIN) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_preflight_and_answers_of_an_upload_carry_cors(
    embedded_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = embedded_service, embedded_service.token(subject())
    ticket = ticket_for(service, token, media_files.png, "image/png")
    preflight = _preflight(ticket["uploadUrl"])
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers

    refused = put({**ticket, "uploadUrl": tampered(ticket["uploadUrl"])}, b"x", {"Origin": ORIGIN})
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "*"

    answer = put(ticket, media_files.png.read_bytes(), {**ticket["headers"], "Origin": ORIGIN})
    assert answer.status_code == 202, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "etag" in answer.headers["access-control-expose-headers"].lower()
    assert "etag" in answer.headers
    assert "access-control-allow-credentials" not in answer.headers
    # Without an Origin header the answer carries no CORS fields at all.
    again = put(ticket, media_files.png.read_bytes())
    assert again.status_code == 409 and "access-control-allow-origin" not in again.headers


def test_only_listed_origins_are_allowed_to_upload(tmp_path: Path, media_files: MediaFiles) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_CORS_ORIGINS=ORIGIN) as service:
        ticket = ticket_for(service, service.token(subject()), media_files.png, "image/png")
        allowed = _preflight(ticket["uploadUrl"])
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert allowed.headers["vary"] == "Origin"
        stranger = _preflight(ticket["uploadUrl"], "http://evil.example")
        assert stranger.status_code == 204
        assert "access-control-allow-origin" not in stranger.headers
        answer = put(
            ticket,
            media_files.png.read_bytes(),
            {**ticket["headers"], "Origin": "http://evil.example"},
        )
        # CORS only decides what a page may read; the signed URL alone authorises the upload.
        assert answer.status_code == 202
        assert "access-control-allow-origin" not in answer.headers
