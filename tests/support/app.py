"""The whole app over real HTTP: embedded default and production shape, same interface."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from media.config import Settings, load_settings
from tests.support import free_port
from tests.support.server import serve_app

TEST_SIGNING_KEY = "test-signing-key-0123456789abcdef0123456789abcdef"


@dataclass
class RunningService:
    """A started app: its URL, settings and a way to mint bearer tokens for it."""

    url: str
    settings: Settings
    mint: Callable[[str, Sequence[str]], str]

    def token(self, subject: str = "alice", scopes: Sequence[str] = ("user",)) -> str:
        """A bearer token for this service's issuer."""
        return self.mint(subject, scopes)

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """POST one GraphQL request; returns the decoded response body."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": dict(variables or {})},
            headers=headers,
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        return body


def settings_for(data_dir: Path, port: int, **environ: str) -> Settings:
    """Settings as the environment would give them, with the public URL on `port`.

    No HLS ladder unless asked for (`MEDIA_HLS="true"`): it is the costliest step of processing,
    and only the tests about it need it."""
    env = {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MEDIA_HLS": "false",
    }
    env.update(environ)
    return load_settings(env)


@contextlib.contextmanager
def run_service(
    settings: Settings, mint: Callable[[str, Sequence[str]], str]
) -> Iterator[RunningService]:
    """Migrate, start the app under uvicorn, stop it at the end."""
    import anyio

    from media.db import migrate
    from server.app import create_app

    anyio.run(migrate, settings)
    port = int(str(settings.public_url).rsplit(":", 1)[1])
    with serve_app(create_app(settings), port=port) as url:
        yield RunningService(url=url, settings=settings, mint=mint)


@contextlib.contextmanager
def embedded_service_at(data_dir: Path, **environ: str) -> Iterator[RunningService]:
    """The embedded default: SQLite file, local folder, built-in dev issuer."""
    from server.lifecycle import dev_issuer

    port = free_port()
    settings = settings_for(data_dir, port, **environ)
    issuer = dev_issuer(settings, str(settings.public_url))

    def mint(subject: str, scopes: Sequence[str]) -> str:
        return issuer.mint(subject, scopes, audience=settings.oidc_audience)

    with run_service(settings, mint) as running:
        yield running


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[RunningService]:
    """A fresh embedded-default service for one test."""
    with embedded_service_at(tmp_path / "data") as running:
        yield running


def production_settings(
    data_dir: Path, postgres_url: str, s3_bucket: str, oidc_provider: Any
) -> tuple[Settings, Callable[[str, Sequence[str]], str]]:
    """Settings of the production shape on a free port, and how to mint its bearer tokens."""
    settings = settings_for(
        data_dir,
        free_port(),
        MEDIA_DATABASE_URL=postgres_url,
        MEDIA_STORAGE_URL=s3_bucket,
        MEDIA_OIDC_ISSUER=oidc_provider.issuer,
        MEDIA_OIDC_AUDIENCE=oidc_provider.audience,
        MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
    )

    def mint(subject: str, scopes: Sequence[str]) -> str:
        return str(oidc_provider.mint(subject, scopes))

    return settings, mint


@pytest.fixture
def production_service(
    tmp_path: Path, postgres_template: str, s3_bucket: str, oidc_provider: Any
) -> Iterator[RunningService]:
    """PostgreSQL + moto S3 server + the local OIDC provider, all over real connections.

    A database of its own: the app works the job queue, which must not hold other apps' jobs."""
    from tests.support.postgres import fresh_database

    with fresh_database(postgres_template) as database_url:
        settings, mint = production_settings(
            tmp_path / "data", database_url, s3_bucket, oidc_provider
        )
        with run_service(settings, mint) as running:
            yield running


@pytest.fixture(params=["embedded", "production"])
def any_service(request: pytest.FixtureRequest) -> RunningService:
    """The same test body against both shapes of the stack."""
    name = "embedded_service" if request.param == "embedded" else "production_service"
    service: RunningService = request.getfixturevalue(name)
    return service
