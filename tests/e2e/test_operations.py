"""Operations over real HTTP: health, readiness through outages, and logs that hold no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port
from tests.support.app import TEST_SIGNING_KEY, RunningService, run_service, settings_for
from tests.support.documents import LIST
from tests.support.flow import upload_file
from tests.support.media_files import make_png
from tests.support.postgres import TcpProxy


def test_health_and_readiness(embedded_service: RunningService) -> None:
    assert httpx.get(f"{embedded_service.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{embedded_service.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}


def test_storage_outage_fails_readiness_then_recovers(embedded_service: RunningService) -> None:
    objects = embedded_service.settings.storage.path
    assert objects is not None
    moved = objects.with_name("objects-away")
    objects.rename(moved)
    try:
        ready = httpx.get(f"{embedded_service.url}/readyz")
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "5"
        assert ready.json()["storage"] == "unavailable"
        assert ready.json()["database"] == "ok"
        assert httpx.get(f"{embedded_service.url}/healthz").status_code == 200
    finally:
        moved.rename(objects)
    assert httpx.get(f"{embedded_service.url}/readyz").status_code == 200


class ThreadedProxy:
    """TcpProxy on its own event loop thread, so synchronous tests can cut and restore it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.proxy = TcpProxy()
        self._call(self.proxy.start())

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def cut(self) -> None:
        self._call(self.proxy.cut())

    def restore(self) -> None:
        self._call(self.proxy.start())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@contextlib.contextmanager
def proxied_service(
    tmp_path: Path, postgres_url: str, s3_bucket: str, oidc_provider: Any
) -> Iterator[tuple[RunningService, ThreadedProxy]]:
    proxy = ThreadedProxy()
    settings = settings_for(
        tmp_path / "data",
        free_port(),
        MEDIA_DATABASE_URL=proxy.proxy.url_for(postgres_url),
        MEDIA_STORAGE_URL=s3_bucket,
        MEDIA_OIDC_ISSUER=oidc_provider.issuer,
        MEDIA_OIDC_AUDIENCE=oidc_provider.audience,
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
        MEDIA_DATABASE_TIMEOUT_S="3",
    )
    try:
        with run_service(settings, lambda s, sc: str(oidc_provider.mint(s, sc))) as running:
            yield running, proxy
    finally:
        proxy.close()


@pytest.mark.postgres
def test_database_outage_is_a_fast_503_and_recovers(
    tmp_path: Path, postgres_url: str, s3_bucket: str, oidc_provider: Any
) -> None:
    with proxied_service(tmp_path, postgres_url, s3_bucket, oidc_provider) as (service, proxy):
        token = service.token("outage-user")
        assert "errors" not in service.graphql(LIST, token=token)
        proxy.cut()
        ready = httpx.get(f"{service.url}/readyz", timeout=15)
        assert ready.status_code == 503
        assert ready.json()["database"] == "unavailable"
        assert ready.json()["storage"] == "ok"
        answer = service.graphql(LIST, token=token)
        assert answer["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert ready.elapsed.total_seconds() < 10
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        proxy.restore()
        assert httpx.get(f"{service.url}/readyz", timeout=15).status_code == 200
        assert "errors" not in service.graphql(LIST, token=token)


def test_logs_hold_no_tokens_or_signed_urls(
    embedded_service: RunningService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = embedded_service.token("log-user")
    media = upload_file(embedded_service, token, make_png(tmp_path / "p.png"), "image/png")
    stream = media["streamUrl"]["url"]
    assert httpx.get(stream, headers={"Range": "bytes=0-9"}).status_code == 206
    assert httpx.get(stream + "x").status_code == 403
    # Routing failures: Litestar itself would log these with the raw path.
    assert httpx.post(stream).status_code == 405
    assert httpx.get(stream + "/extra").status_code == 404
    assert httpx.get(stream.replace("/media/", "/MEDIA/")).status_code == 404
    assert httpx.get(media["uploadUrl"]).status_code == 405
    secrets = {
        token,
        stream.rsplit("/", 1)[1],
        media["uploadUrl"].rsplit("/", 1)[1],
        media["uploadUrl"],
        stream,
    }
    # The test's own HTTP client (httpx, httpcore) logs its URLs; everything else is the server.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(record.getMessage() for record in server_records)
    text += "\n" + "\n".join(str(record.args) for record in server_records)
    assert '"route":"/media/{token}"' in text
    assert '"route":"/upload/{token}"' in text
    for secret in secrets:
        assert secret not in text
    for fragment in (token[:40], stream.rsplit("/", 1)[1][:40]):
        assert fragment not in text


def test_an_object_gone_from_storage_is_the_same_403(
    embedded_service: RunningService, tmp_path: Path
) -> None:
    # Another process deleted the media after this one cached its row: never a 500.
    token = embedded_service.token("vanished-user")
    media = upload_file(embedded_service, token, make_png(tmp_path / "v.png"), "image/png")
    stream = media["streamUrl"]["url"]
    assert httpx.get(stream, headers={"Range": "bytes=0-0"}).status_code == 206
    objects = embedded_service.settings.storage.path
    assert objects is not None
    for path in objects.rglob("*"):
        if path.is_file():
            path.unlink()
    for headers in ({"Range": "bytes=0-0"}, {}, {"Range": "bytes=0-0,2-3"}):
        answer = httpx.get(stream, headers=headers)
        assert answer.status_code == 403, (headers, answer.status_code)
        assert answer.json() == {"error": "forbidden"}
