"""Share-link tests: the app with a settable clock, and the GraphQL calls of the link flow."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from media.config import Settings
from tests.support import free_port
from tests.support.app import RunningService, settings_for
from tests.support.clock import ManualClock
from tests.support.documents import CREATE_LINK, SHARED
from tests.support.server import serve_app


@contextlib.contextmanager
def run_clocked(
    settings: Settings, mint: Callable[[str, Sequence[str]], str], clock: ManualClock
) -> Iterator[RunningService]:
    """Migrate, then serve the app with `clock` as its wall clock."""
    import anyio

    from media.db import migrate
    from server.app import create_app

    anyio.run(migrate, settings)
    port = int(str(settings.public_url).rsplit(":", 1)[1])
    with serve_app(create_app(settings, clock=clock), port=port) as url:
        yield RunningService(url=url, settings=settings, mint=mint)


@contextlib.contextmanager
def clocked_embedded(
    data_dir: Path, clock: ManualClock, *, port: int | None = None, **environ: str
) -> Iterator[RunningService]:
    """The embedded default with a settable clock."""
    from server.lifecycle import dev_issuer

    settings = settings_for(data_dir, port or free_port(), **environ)
    issuer = dev_issuer(settings, str(settings.public_url))

    def mint(subject: str, scopes: Sequence[str]) -> str:
        return issuer.mint(subject, scopes, audience=settings.oidc_audience)

    with run_clocked(settings, mint, clock) as running:
        yield running


def ok(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def create_link(
    service: RunningService, token: str, media_ids: Sequence[str], **fields: Any
) -> dict[str, Any]:
    """createShareLink with `expiresIn` one hour unless given; the new link."""
    link_input = {"mediaIds": list(media_ids), "expiresIn": 3600, **fields}
    body = service.graphql(CREATE_LINK, {"input": link_input}, token=token)
    link: dict[str, Any] = ok(body)["createShareLink"]
    return link


def shared(service: RunningService, token: str, password: str | None = None) -> Any:
    """sharedMedia without a bearer token; the whole response body."""
    return service.graphql(SHARED, {"token": token, "password": password})
