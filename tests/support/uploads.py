"""Upload helpers for end-to-end tests: tickets, raw PUTs, media state and storage listings."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from media.config import Settings
from media.models import Purpose
from media.signing import UrlSigner
from server.keys import signing_keys
from tests.support import free_port
from tests.support.app import (
    TEST_SIGNING_KEY,
    RunningService,
    embedded_service_at,
    run_service,
    settings_for,
)
from tests.support.documents import COMPLETE_STATE, CREATE, MEDIA
from tests.support.postgres import fresh_database
from tests.support.s3 import s3_client

SETTLE_TIMEOUT_S = 15.0
STORAGE_KEY = re.compile(r"[0-9a-f]{32}")


def subject() -> str:
    """A fresh user name, so tests sharing a database never see each other's media."""
    return f"user-{uuid.uuid4().hex[:12]}"


def create_ticket(
    service: RunningService,
    token: str,
    *,
    size: int,
    media_type: str,
    name: str = "file",
    media_date: str | None = None,
) -> dict[str, Any]:
    """createUpload; returns the ticket with `headers` as a dict and `mediaId`."""
    variables: dict[str, Any] = {
        "input": {"fileName": name, "mediaType": media_type, "sizeBytes": size}
    }
    if media_date is not None:
        variables["input"]["mediaDate"] = media_date
    answer = service.graphql(CREATE, variables, token=token)
    assert "errors" not in answer, answer
    ticket: dict[str, Any] = answer["data"]["createUpload"]
    ticket["headers"] = {item["name"]: item["value"] for item in ticket["headers"]}
    ticket["mediaId"] = ticket["media"]["id"]
    return ticket


def ticket_for(
    service: RunningService, token: str, path: Path, media_type: str, **extra: Any
) -> dict[str, Any]:
    """A ticket sized for the file at `path`."""
    return create_ticket(
        service, token, size=path.stat().st_size, media_type=media_type, name=path.name, **extra
    )


def put(
    ticket: Mapping[str, Any], content: Any, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """PUT `content` to the ticket's URL with the ticket's headers, or with `headers` instead."""
    chosen = dict(ticket["headers"] if headers is None else headers)
    return httpx.put(ticket["uploadUrl"], content=content, headers=chosen, timeout=60)


def media_state(service: RunningService, token: str, media_id: str) -> dict[str, Any] | None:
    """The media as `media(id)` returns it to `token`'s user (None when not visible)."""
    answer = service.graphql(MEDIA, {"id": media_id}, token=token)
    assert "errors" not in answer, answer
    found: dict[str, Any] | None = answer["data"]["media"]
    return found


def complete(service: RunningService, token: str, upload_id: str) -> dict[str, Any]:
    """completeUpload; returns the media it answers."""
    answer = service.graphql(COMPLETE_STATE, {"id": upload_id}, token=token)
    assert "errors" not in answer, answer
    media: dict[str, Any] = answer["data"]["completeUpload"]
    return media


def upload_ok(service: RunningService, token: str, path: Path, media_type: str) -> dict[str, Any]:
    """Ticket, PUT and completeUpload of one file that must succeed; the ticket and the media."""
    ticket = ticket_for(service, token, path, media_type)
    answer = put(ticket, path.read_bytes())
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "IN_PROGRESS", answer.text
    done = completed(service, token, ticket["uploadId"])
    assert done["status"] == "SUCCESS", done
    return {**ticket, **done}


def completed(service: RunningService, token: str, upload_id: str) -> dict[str, Any]:
    """completeUpload, repeated until the media's processing job ended (SETTLE_TIMEOUT_S)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while (media := complete(service, token, upload_id))["status"] == "IN_PROGRESS":
        assert time.monotonic() < deadline, f"upload {upload_id} still IN_PROGRESS"
        time.sleep(0.05)  # the job runs in the server; each poll is one cheap query
    return media


def visible(service: RunningService, token: str, media_id: str) -> dict[str, Any]:
    """`media(id)` for a media that must be visible to `token`'s user."""
    media = media_state(service, token, media_id)
    assert media is not None, f"media {media_id} not visible"
    return media


def readable_reason(reason: object) -> str:
    """The failure reason, asserted to be short prose without traces or storage keys."""
    assert isinstance(reason, str) and reason.strip(), reason
    assert len(reason) < 200 and "Traceback" not in reason, reason
    assert STORAGE_KEY.search(reason) is None, reason
    return reason


def token_of(url: str) -> str:
    """The signed token, the last path segment of a signed URL."""
    return url.rsplit("/", 1)[1]


def expired_copy(settings: Settings, upload_url: str) -> str:
    """The same upload claims, signed with the service's key, expired well beyond any leeway."""
    token = token_of(upload_url)
    keys = signing_keys(settings)
    claims = UrlSigner(keys).verify(token, {Purpose.UPLOAD})
    assert claims.upload_id is not None and claims.max_bytes is not None
    assert claims.content_type is not None
    past = datetime.now(UTC) - timedelta(minutes=5)
    expired, expires_at = UrlSigner(keys, clock=lambda: past).sign(
        Purpose.UPLOAD,
        media_id=claims.media_id,
        subject=claims.subject,
        generation=claims.generation,
        ttl_s=60,
        upload_id=claims.upload_id,
        max_bytes=claims.max_bytes,
        content_type=claims.content_type,
    )
    assert expires_at < datetime.now(UTC) - timedelta(minutes=1)
    return upload_url.replace(token, expired)


def tampered(url: str) -> str:
    """The URL with one character of its token's signature changed."""
    token = token_of(url)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    return url.replace(token, flipped)


def settled_state(service: RunningService, token: str, media_id: str) -> dict[str, Any]:
    """Poll `media(id)` until it leaves IN_PROGRESS; fails after SETTLE_TIMEOUT_S."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        media = media_state(service, token, media_id)
        assert media is not None, f"media {media_id} vanished"
        if media["status"] != "IN_PROGRESS":
            return media
        assert time.monotonic() < deadline, f"media {media_id} still IN_PROGRESS"
        # Waits for an event in the server (a job, disconnect handling), not for a time to pass.
        time.sleep(0.05)


def stored_objects(settings: Settings) -> set[str]:
    """Every object in the service's storage, temp files and open multipart uploads included."""
    storage = settings.storage
    if storage.scheme == "file":
        assert storage.path is not None
        return {
            os.path.relpath(os.path.join(folder, name), storage.path)
            for folder, _dirs, files in os.walk(storage.path)
            for name in files
        }
    assert storage.endpoint_url is not None
    client = s3_client(storage.endpoint_url)
    found: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket):
        found.update(item["Key"] for item in page.get("Contents", []))
    pending = client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
    found.update(f"multipart:{item['Key']}" for item in pending)
    return found


def interrupted_put(ticket: Mapping[str, Any], data: bytes, *, sent: int) -> None:
    """Send the PUT's headers and only `sent` bytes of `data` over a raw socket, then hang up."""
    url = urlsplit(ticket["uploadUrl"])
    lines = [f"PUT {url.path} HTTP/1.1", f"Host: {url.netloc}"]
    lines += [f"{name}: {value}" for name, value in ticket["headers"].items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    assert f"Content-Length: {len(data)}".encode() in head
    with socket.create_connection(
        (url.hostname or "127.0.0.1", url.port or 80), timeout=10
    ) as sock:
        sock.sendall(head + data[:sent])


@contextlib.contextmanager
def service_of_shape(
    shape: str, request: pytest.FixtureRequest, data_dir: Path, **environ: str
) -> Iterator[RunningService]:
    """An embedded or production-shaped service (fresh bucket and database) with `environ`."""
    if shape == "embedded":
        with embedded_service_at(data_dir, **environ) as running:
            yield running
        return
    template: str = request.getfixturevalue("postgres_template")
    endpoint: str = request.getfixturevalue("s3_server")
    provider: Any = request.getfixturevalue("oidc_provider")
    bucket = f"media-e2e-{uuid.uuid4().hex[:20]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    with fresh_database(template) as database_url:
        settings = settings_for(
            data_dir,
            free_port(),
            MEDIA_DATABASE_URL=database_url,
            MEDIA_STORAGE_URL=f"s3://{bucket}?endpoint_url={endpoint}&region=us-east-1&addressing=path",
            MEDIA_OIDC_ISSUER=provider.issuer,
            MEDIA_OIDC_AUDIENCE=provider.audience,
            MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
            **environ,
        )

        def mint(subject: str, scopes: Any) -> str:
            return str(provider.mint(subject, scopes))

        with run_service(settings, mint) as running:
            yield running


@pytest.fixture(scope="module", params=["embedded", "production"])
def module_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """One service per shape shared by a test module (tests use fresh subjects)."""
    with service_of_shape(request.param, request, tmp_path_factory.mktemp("svc")) as running:
        yield running


@pytest.fixture(scope="module", params=["embedded", "production"])
def short_ttl_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """One service per shape whose upload URLs live one second (MEDIA_UPLOAD_TTL_S=1)."""
    data_dir = tmp_path_factory.mktemp("svc-ttl")
    with service_of_shape(request.param, request, data_dir, MEDIA_UPLOAD_TTL_S="1") as running:
        yield running
