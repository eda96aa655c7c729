"""CORS on /graphql: other origins may call the API with a bearer token, never with credentials."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.app import RunningService, embedded_service_at

ORIGIN = "http://app.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_preflight_and_answers_allow_any_origin_by_default(
    embedded_service: RunningService,
) -> None:
    url = f"{embedded_service.url}/graphql"
    preflight = httpx.options(url, headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "access-control-allow-credentials" not in preflight.headers

    token = embedded_service.token("cors-user")
    answer = httpx.post(
        url,
        json={"query": "{ me { subject } }"},
        headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"},
    )
    assert answer.json() == {"data": {"me": {"subject": "cors-user"}}}
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    # Without an Origin nothing changes; the streaming routes keep their own CORS.
    assert (
        "access-control-allow-origin"
        not in httpx.post(url, json={"query": "{ __typename }"}).headers
    )


def test_a_listed_origin_is_echoed_and_others_get_nothing(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_CORS_ORIGINS=ORIGIN) as service:
        url = f"{service.url}/graphql"
        preflight = httpx.options(url, headers=PREFLIGHT)
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["vary"] == "Origin"
        stranger = httpx.options(url, headers={**PREFLIGHT, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        answer = httpx.post(
            url, json={"query": "{ __typename }"}, headers={"Origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in answer.headers
