"""The queue's tables through the app's own connections: transactional enqueue, schema, recovery,
and the embedded default restarting a job its previous process left unfinished."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from media import jobstore
from media.db import Database, migrate, open_database
from media.jobs import QUEUE, processing_job
from media.models import Principal, UploadState
from media.service import CreateUpload
from server.lifecycle import dev_issuer, open_dependencies
from tests.support.app import TEST_SIGNING_KEY, embedded_service_at, settings_for
from tests.support.media_files import MediaFiles
from tests.support.postgres import create_database, database_settings, drop_database
from tests.support.uploads import settled_state, subject

BASE = "http://127.0.0.1:9"


@pytest.fixture
async def postgres(postgres_template: str, tmp_path: Path) -> AsyncIterator[Database]:
    url = await create_database(postgres_template)
    database = await open_database(database_settings(url, tmp_path))
    yield database
    await database.close()
    await drop_database(url)


@pytest.mark.postgres
async def test_a_job_exists_exactly_when_its_transaction_committed(postgres: Database) -> None:
    job = processing_job(uuid.uuid4(), 1)
    with pytest.raises(RuntimeError):
        async with postgres.transaction():
            await jobstore.defer(postgres, job)
            assert await jobstore.count_queued(postgres, QUEUE) == 1  # seen inside only
            raise RuntimeError("the state change failed")
    assert await jobstore.count_queued(postgres, QUEUE) == 0
    async with postgres.transaction():
        await jobstore.defer(postgres, job)
    assert await jobstore.count_queued(postgres, QUEUE) == 1
    rows = await postgres.tables.media_type.raw(
        "SELECT task_name, lock, args::text AS args, status::text AS status FROM procrastinate_jobs"
    )
    assert rows[0]["task_name"] == job.task and rows[0]["lock"] == job.lock
    assert rows[0]["status"] == "todo" and str(dict(job.args)["upload_id"]) in rows[0]["args"]


@pytest.mark.postgres
async def test_schema_is_installed_once(postgres: Database) -> None:
    assert await jobstore.apply_schema(postgres.engine) is False  # the template has it
    assert await jobstore.count_queued(postgres, QUEUE) == 0


@pytest.mark.postgres
async def test_only_jobs_of_silent_workers_are_retried(postgres: Database) -> None:
    table = postgres.tables.media_type
    alive = (await table.raw("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id"))[0]
    silent = (
        await table.raw(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour')"
            " RETURNING id"
        )
    )[0]
    for worker in (alive, silent):
        async with postgres.transaction():
            await jobstore.defer(postgres, processing_job(uuid.uuid4(), worker["id"]))
        await table.raw(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = {} WHERE lock = {}",
            worker["id"],
            f"media-{worker['id']}",
        )
    retried = await jobstore.retry_stalled(postgres, QUEUE, 30)
    assert len(retried) == 1
    rows = await table.raw(
        "SELECT status::text AS status, attempts FROM procrastinate_jobs WHERE id = {}", retried[0]
    )
    assert (rows[0]["status"], rows[0]["attempts"]) == ("todo", 1)
    assert await jobstore.retry_stalled(postgres, QUEUE, 30) == []  # nothing twice


def test_embedded_job_left_processing_runs_at_the_next_start(
    tmp_path: Path, media_files: MediaFiles
) -> None:
    data_dir = tmp_path / "data"
    data = media_files.png.read_bytes()
    owner = subject()

    async def upload_then_stop() -> tuple[str, uuid.UUID]:
        settings = settings_for(data_dir, 9, MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY)
        await migrate(settings)
        async with open_dependencies(settings, BASE, dev_issuer(settings, BASE)) as deps:
            principal = Principal(owner, dev_issuer(settings, BASE).issuer_url, frozenset({"user"}))
            ticket = await deps.service.uploads.create_upload(
                principal, CreateUpload("left.png", "image/png", len(data))
            )

            async def body() -> AsyncIterator[bytes]:
                yield data

            received = await deps.service.uploads.receive(
                ticket.url.url.rsplit("/", 1)[1],
                content_length=len(data),
                content_type="image/png",
                body=body(),
            )
            upload = await deps.service.parts.repository.get_upload(received.upload_id)
            assert upload is not None and upload.state is UploadState.PROCESSING
        # The process ends here with its job queued in memory only.
        return str(received.media.id), received.upload_id

    media_id, _ = anyio.run(upload_then_stop)
    with embedded_service_at(data_dir, MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY) as service:
        # The dev issuer's URL follows the port, so the first owner is another issuer's: an
        # admin sees it.
        media = settled_state(service, service.token("ops", ("admin",)), media_id)
    assert media["status"] == "SUCCESS", media
