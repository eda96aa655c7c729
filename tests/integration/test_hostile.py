"""Hostile requests that once slipped through: each case is a row, each row must be refused."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from media.auth.dev_issuer import DevIssuer
from server.lifecycle import dev_issuer
from tests.support.app import RunningService, embedded_service_at
from tests.support.documents import CREATE, SUBJECT

LIST = "query($f: MediaFilter, $a: String) { medias(filter: $f, after: $a) { edges { cursor } } }"
LATEST = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC
EARLIEST = "0001-01-01T00:00:00+14:00"  # year 0 in UTC


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with embedded_service_at(tmp_path_factory.mktemp("hostile")) as running:
        yield running


def post(
    service: RunningService, body: dict[str, Any], headers: list[tuple[str, str]]
) -> httpx.Response:
    return httpx.post(f"{service.url}/graphql", json=body, headers=headers, timeout=30)


# -- several or empty Authorization field lines ---------------------------------------------------

AUTHORIZATION_CASES = {
    "alice then bob": lambda s: [s.token("alice"), s.token("bob")],
    "empty then bearer": lambda s: ["", s.token("alice")],
    "bearer then empty": lambda s: [s.token("alice"), ""],
    "the same bearer twice": lambda s: [s.token("alice")] * 2,
    "one empty line": lambda s: [""],
}


@pytest.mark.parametrize("case", list(AUTHORIZATION_CASES))
def test_several_or_empty_authorization_headers_are_refused(
    service: RunningService, case: str
) -> None:
    values = AUTHORIZATION_CASES[case](service)
    headers = [("Authorization", v if not v.startswith("ey") else f"Bearer {v}") for v in values]
    response = post(service, {"query": SUBJECT}, headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "malformed"}


# -- 401 says why (RFC 6750 §3) -------------------------------------------------------------------


def _tokens(service: RunningService, tmp_path: Path) -> dict[str, str]:
    settings = service.settings
    own = dev_issuer(settings, str(settings.public_url))
    audience = settings.oidc_audience
    stranger = DevIssuer.load_or_create(tmp_path / "other.pem", own.issuer_url)
    elsewhere = DevIssuer.load_or_create(settings.data_dir / "dev-oidc-key.pem", "http://x.test")
    return {
        "expired": own.mint("alice", ["user"], audience=audience, ttl_s=60, now=time.time() - 600),
        "unknown_key": stranger.mint("alice", ["user"], audience=audience),
        "wrong_issuer": elsewhere.mint("alice", ["user"], audience=audience),
        "wrong_audience": own.mint("alice", ["user"], audience="another-api"),
        "malformed": "not.a-jwt",
    }


@pytest.mark.parametrize(
    "reason", ["expired", "unknown_key", "wrong_issuer", "wrong_audience", "malformed"]
)
def test_refused_tokens_say_why(service: RunningService, tmp_path: Path, reason: str) -> None:
    token = _tokens(service, tmp_path)[reason]
    response = post(service, {"query": SUBJECT}, [("Authorization", f"Bearer {token}")])
    assert response.status_code == 401
    description = reason.replace("_", " ")
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    assert response.json()["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": reason,
    }
    assert token not in response.text


def test_a_missing_token_says_so_in_the_field_error(service: RunningService) -> None:
    body = post(service, {"query": CREATE, "variables": {"input": _upload()}}, []).json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "missing"}


# -- instants at the edges of the calendar --------------------------------------------------------


def _upload(media_date: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"fileName": "a.mp4", "mediaType": "video/mp4", "sizeBytes": 10}
    if media_date is not None:
        spec["mediaDate"] = media_date
    return spec


def _cursor(stamp: str) -> str:
    text = f"c2:{stamp}|AAAAAAAAAAAAAAAAAAAAAA"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CALENDAR_CASES = [
    (LIST, {"f": {"mediaDateTo": LATEST}}, "mediaDateTo"),
    (LIST, {"f": {"mediaDateFrom": EARLIEST}}, "mediaDateFrom"),
    (LIST, {"f": {"mediaDateFrom": EARLIEST, "mediaDateTo": LATEST}}, "mediaDateFrom"),
    (LIST, {"a": _cursor("9999-12-31T23:59:59-14:00")}, "after"),
    (LIST, {"a": _cursor("0001-01-01T00:00:00+14:00")}, "after"),
    (CREATE, {"input": _upload(LATEST)}, "mediaDate"),
    (CREATE, {"input": _upload(EARLIEST)}, "mediaDate"),
]


@pytest.mark.parametrize(("query", "variables", "field"), CALENDAR_CASES)
def test_dates_outside_the_utc_calendar_are_bad_input(
    service: RunningService, query: str, variables: dict[str, Any], field: str
) -> None:
    token = service.token("calendar")
    body = service.graphql(query, variables, token=token)
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


@pytest.mark.parametrize(
    "variables",
    [
        {"f": {"mediaDateFrom": "0001-01-01T00:00:00Z", "mediaDateTo": "9999-12-31T23:59:59Z"}},
        {"f": {"mediaDateFrom": "0001-01-01T00:00:00-14:00"}},
        {"f": {"mediaDateTo": "9999-12-31T23:59:59+14:00"}},
    ],
)
def test_the_edges_inside_the_calendar_still_work(
    service: RunningService, variables: dict[str, Any]
) -> None:
    body = service.graphql(LIST, variables, token=service.token("calendar"))
    assert "errors" not in body, body
