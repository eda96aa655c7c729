"""Share-link tests: the app with a settable clock, and the GraphQL calls of the link flow."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from media.config import Settings
from tests.support import free_port
from tests.support.app import RunningService, settings_for
from tests.support.server import serve_app

CREATE_LINK = """mutation($input: CreateShareLinkInput!) { createShareLink(input: $input) {
  id token url title expiresAt allowDownload hasPassword viewCount medias { id name } } }"""
SHARED = """query($token: String!, $password: String) {
  sharedMedia(token: $token, password: $password) { title expiresAt allowDownload
    medias { id kind mediaType playbackMediaType thumbhash width height durationSeconds hasThumbnail
      streamUrl { url expiresAt } thumbnailUrl { url expiresAt }
      downloadUrl { url expiresAt } } } }"""
LINKS = """query($first: Int, $after: String) { shareLinks(first: $first, after: $after) {
  edges { cursor node { id token title viewCount hasPassword expiresAt medias { id } } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
REVOKE_LINK = "mutation($id: ID!) { revokeShareLink(id: $id) }"


class ManualClock:
    """A wall clock the test moves forward; starts at the real time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


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
