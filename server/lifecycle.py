"""Opening and closing the dependencies of one app process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from media.auth.dev_issuer import DevIssuer
from media.auth.oidc import TokenVerifier
from media.clock import utc_now
from media.config import Settings
from media.db import Database, open_database
from media.jobs.local import LocalQueue
from media.jobs.postgres import PostgresQueue
from media.repository import Repository
from media.service import Events, MediaService, Parts
from media.service.scratch import open_scratch
from media.signing import UrlSigner
from media.storage import Storage, open_storage
from media.storage.observed import ObservedStorage
from server.dev_oidc import in_process_http
from server.keys import signing_keys

DEV_ISSUER_PATH = "/dev-oidc"
# The development issuer's identity (`iss`, part of who owns a media): the same whatever host or
# port the server is reached on, so tokens and media survive `--port` and localhost/127.0.0.1.
# Its documents are served under /dev-oidc of whichever address the server has.
DEV_ISSUER_URL = "https://media-service.invalid" + DEV_ISSUER_PATH


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What one running app holds open."""

    database: Database
    storage: Storage
    verifier: TokenVerifier
    service: MediaService
    queue: LocalQueue | PostgresQueue


def dev_issuer(settings: Settings, base_url: str | None = None) -> DevIssuer:
    """The embedded development issuer, its key kept (created if needed) in the data directory.

    `base_url` does not matter any more: the identity is DEV_ISSUER_URL wherever it is served."""
    return DevIssuer.load_or_create(dev_key_path(settings), DEV_ISSUER_URL)


def existing_dev_issuer(settings: Settings) -> DevIssuer:
    """The development issuer of the data directory; ConfigError when it holds no key yet
    (a client must never make a key the server does not know)."""
    return DevIssuer.load(dev_key_path(settings), DEV_ISSUER_URL)


def dev_key_path(settings: Settings) -> Path:
    """Where the development issuer's private key lives."""
    return settings.data_dir / "dev-oidc-key.pem"


def make_verifier(
    settings: Settings, issuer: DevIssuer | None, stack: contextlib.AsyncExitStack
) -> TokenVerifier:
    """A verifier for the configured issuer; the embedded one is reached in-process."""
    if issuer is None:
        assert settings.oidc_issuer is not None
        verifier = TokenVerifier(settings.oidc_issuer, settings.oidc_audience)
    else:
        http = in_process_http(issuer)
        stack.push_async_callback(http.aclose)
        verifier = TokenVerifier(issuer.issuer_url, settings.oidc_audience, http=http)
    stack.push_async_callback(verifier.close)
    return verifier


def observed_storage(storage: Storage, settings: Settings) -> Storage:
    """The storage, recording metrics and spans when either is on."""
    if not (settings.metrics_enabled or settings.tracing_enabled):
        return storage
    return ObservedStorage(storage, "s3" if settings.storage.scheme == "s3" else "local")


@contextlib.asynccontextmanager
async def open_dependencies(
    settings: Settings,
    base_url: str,
    issuer: DevIssuer | None,
    clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[Dependencies]:
    """Open database, storage and verifier; close them in reverse order. `clock` is the wall
    clock of the use cases, signed URLs and stored times (tests set it)."""
    async with contextlib.AsyncExitStack() as stack:
        database = await open_database(settings)
        stack.push_async_callback(database.close)
        events = Events()
        repository = Repository(database, clock=clock, events=events.deliver)
        storage = observed_storage(await open_storage(settings, repository), settings)
        stack.push_async_callback(storage.close)
        verifier = make_verifier(settings, issuer, stack)
        scratch = open_scratch(settings.data_dir / "work")
        stack.callback(scratch.close)
        parts = Parts(
            settings=settings,
            repository=repository,
            storage=storage,
            signer=UrlSigner(signing_keys(settings), clock=clock),
            verifier=verifier,
            public_url=base_url,
            scratch=scratch.path,
            clock=clock,
        )
        queue = make_queue(settings, database)
        stack.callback(queue.close)
        yield Dependencies(database, storage, verifier, MediaService(parts, queue, events), queue)


def make_queue(settings: Settings, database: Database) -> LocalQueue | PostgresQueue:
    """procrastinate on PostgreSQL; on SQLite, jobs run inside the serving process."""
    if settings.database.engine == "sqlite":
        return LocalQueue(settings.job_retry_s)
    return PostgresQueue(settings, database)


async def work_jobs(deps: Dependencies, concurrency: int) -> None:
    """Run processing jobs in this process until cancelled."""
    processing = deps.service.processing
    if isinstance(deps.queue, LocalQueue):
        await deps.queue.work(processing.run_job, concurrency, processing.pending)
    else:
        await deps.queue.work(processing.run_job, concurrency)
