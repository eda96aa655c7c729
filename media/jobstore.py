"""The job queue's tables as seen from Piccolo's asyncpg engine: schema, defer, count, recovery.

procrastinate owns these tables and talks psycopg; this module is the one place that reaches them
through the app's own connections, so a job is enqueued in the same transaction as the state change
that makes it due (docs/jobs.md). The SQL functions named here are procrastinate's versioned ones
(`..._v1`), which is why the dependency is pinned to one minor version and tested against it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine

from media.db import Database, guarded
from media.models import JobRequest

# Any fixed number: only the schema installers of this app take this advisory lock.
_SCHEMA_LOCK = 0x6D656469615F6A62
_RECOVERY_LOCK = _SCHEMA_LOCK + 1

_DEFER = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW({}, {}, 0, {}, NULL, {}::jsonb,"
    " NULL::timestamptz)]::procrastinate_job_to_defer_v1[])"
)
# Jobs still 'doing' whose worker stopped sending heartbeats (or was pruned as stalled).
_STALLED = """
SELECT job.id FROM procrastinate_jobs job
  LEFT JOIN procrastinate_workers worker ON worker.id = job.worker_id
 WHERE job.status = 'doing' AND job.queue_name = {}
   AND (worker.id IS NULL OR worker.last_heartbeat < now() - make_interval(secs => {}))
"""


def _schema_sql() -> str:
    # Read without importing procrastinate (psycopg and all): `migrate` needs only this file.
    spec = importlib.util.find_spec("procrastinate")
    assert spec is not None and spec.submodule_search_locations is not None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "sql" / "schema.sql").read_text(encoding="utf-8")


async def apply_schema(engine: Engine[Any]) -> bool:
    """Install procrastinate's schema once (PostgreSQL); True when this call installed it."""
    connection = await engine.get_new_connection()  # type: ignore[attr-defined]
    try:
        # Several processes may migrate at once; the lock makes the check-then-create atomic.
        await connection.execute(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})")
        try:
            present = await connection.fetchval("SELECT to_regclass('procrastinate_jobs')")
            if present is not None:
                return False
            async with connection.transaction():
                await connection.execute(_schema_sql())
            return True
        finally:
            await connection.execute(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")
    finally:
        await connection.close()


async def defer(database: Database, job: JobRequest) -> None:
    """Insert one job; inside a transaction it becomes visible (and NOTIFYs workers) on commit."""
    args = json.dumps(dict(job.args), separators=(",", ":"))
    await database.tables.media_type.raw(_DEFER, job.queue, job.task, job.lock, args)


@guarded
async def count_queued(database: Database, queue: str) -> int:
    """Jobs waiting to run (due or scheduled for a retry): one index scan, cheap enough to poll."""
    rows = await database.tables.media_type.raw(
        "SELECT count(*) AS n FROM procrastinate_jobs WHERE queue_name = {} AND status = 'todo'",
        queue,
    )
    return int(rows[0]["n"])


async def retry_stalled(database: Database, queue: str, stall_s: float) -> list[int]:
    """Put jobs of dead workers back to 'todo'; one process at a time, so none runs twice."""
    table = database.tables.media_type
    async with database.transaction():
        locked = await table.raw("SELECT pg_try_advisory_xact_lock({}) AS ok", _RECOVERY_LOCK)
        if not locked[0]["ok"]:
            return []  # another process is recovering right now
        rows = await table.raw(_STALLED, queue, float(stall_s))
        ids = [int(row["id"]) for row in rows]
        for job_id in ids:
            # attempts + 1: the job function fails the media once every attempt is used up.
            await table.raw(
                "SELECT procrastinate_retry_job_v2({}, now(), NULL, NULL, NULL)", job_id
            )
    return ids
