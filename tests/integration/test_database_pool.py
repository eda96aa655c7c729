"""A busy PostgreSQL pool: waiting for a connection is bounded by MEDIA_DATABASE_TIMEOUT_S."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import anyio
import pytest

from media.db import open_database
from media.errors import Unavailable
from media.ids import new_media_id
from media.jobs import QUEUE
from media.jobstore import count_queued
from media.repository import Repository
from tests.support.postgres import create_database, database_settings, drop_database

pytestmark = pytest.mark.postgres
BUDGET_S = 0.5


@pytest.mark.parametrize("call", ["read", "write", "queued"])
async def test_a_request_waiting_for_a_busy_pool_is_unavailable_within_the_budget(
    postgres_template: str, tmp_path: Path, call: str
) -> None:
    url = await create_database(postgres_template)
    settings = dataclasses.replace(
        database_settings(url, tmp_path), database_pool_size=1, database_timeout_s=BUDGET_S
    )
    database = await open_database(settings)
    repo = Repository(database)
    holding, release = anyio.Event(), anyio.Event()

    async def hold_the_only_connection() -> None:
        async with database.transaction():
            holding.set()
            await release.wait()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold_the_only_connection)
            await holding.wait()
            started = time.monotonic()
            with anyio.fail_after(10), pytest.raises(Unavailable) as caught:
                if call == "read":
                    await repo.get_media(new_media_id(), None)
                elif call == "queued":  # what /metrics asks: its families answer without it
                    await count_queued(database, QUEUE)
                else:
                    await repo.bump_generation(new_media_id())
            waited = time.monotonic() - started
            release.set()
        assert caught.value.dependency == "database"
        assert BUDGET_S * 0.8 <= waited < BUDGET_S * 4
        assert await repo.get_media(new_media_id(), None) is None  # the pool works again
    finally:
        release.set()
        await database.close()
        await drop_database(url)
