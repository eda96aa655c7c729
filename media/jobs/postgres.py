"""The durable queue on PostgreSQL: procrastinate workers, retries with backoff, stalled jobs.

Jobs are inserted by `media.jobstore.defer` inside the app's own transactions; this module runs
them. Any number of processes on any machines may work the queue (FOR UPDATE SKIP LOCKED); a job
whose worker stops sending heartbeats is put back by whichever process notices first.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio

from media import jobstore
from media.config import Settings
from media.db import Database
from media.jobs import JOB_ATTEMPTS, PROCESS_TASK, QUEUE, JobHandler, processing_job, retry_wait_s
from media.models import JobRequest

if TYPE_CHECKING:
    from procrastinate import App

logger = logging.getLogger("media.jobs")

MAX_POLL_S = 5.0  # procrastinate's default: retries are picked up no later than this
SHUTDOWN_GRACE_S = 30.0  # then running jobs are aborted and retried by another worker
RESTART_PAUSE_MAX_S = 30.0


def conninfo(settings: Settings) -> str:
    """The libpq connection string of MEDIA_DATABASE_URL."""
    from psycopg.conninfo import make_conninfo

    url = settings.database
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "dbname": url.database,
        "application_name": "media-service-jobs",
        "connect_timeout": max(1, int(min(5.0, settings.database_timeout_s))),
    }
    if url.password is not None:
        params["password"] = url.password
    return make_conninfo("", **params)


class PostgresQueue:
    """The durable queue: defers in the caller's transaction, works jobs with procrastinate."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._database = database

    def close(self) -> None:
        """Nothing held between jobs: `work` opens and closes its own connections."""

    def job_for(self, upload_id: UUID, media_id: str) -> JobRequest | None:
        """The job row to insert with the state change."""
        return processing_job(upload_id, media_id)

    def submitted(self, upload_id: UUID) -> None:
        """Nothing to do: the insert notified the workers on commit."""

    async def queued(self) -> int:
        """Jobs waiting to run, retries included."""
        return await jobstore.count_queued(self._database, QUEUE)

    def _app(self, handler: JobHandler, concurrency: int) -> App:
        # Imported here: the embedded default (SQLite) never loads procrastinate and psycopg.
        from procrastinate import App, JobContext, PsycopgConnector
        from procrastinate.jobs import Job
        from procrastinate.retry import BaseRetryStrategy, RetryDecision

        class Backoff(BaseRetryStrategy):
            """Retry after base, 2 x base... until JOB_ATTEMPTS runs were made."""

            def get_retry_decision(
                self, *, exception: BaseException, job: Job
            ) -> RetryDecision | None:
                """None once the attempts are used up."""
                if job.attempts + 1 >= JOB_ATTEMPTS:
                    return None
                wait_ms = int(retry_wait_s(base_s, job.attempts) * 1000)
                return RetryDecision(retry_in={"milliseconds": wait_ms})

        base_s = self._settings.job_retry_s
        connector = PsycopgConnector(
            conninfo=conninfo(self._settings), min_size=1, max_size=concurrency + 2
        )
        app = App(connector=connector)

        @app.task(
            name=PROCESS_TASK,
            queue=QUEUE,
            pass_context=True,
            retry=Backoff(),
        )
        async def process_upload(context: JobContext, upload_id: str) -> None:
            await handler(UUID(upload_id), context.job.attempts)

        return app

    async def work(self, handler: JobHandler, concurrency: int) -> None:
        """Work the queue until cancelled; after a database outage, start again with backoff."""
        pause = 1.0
        while True:
            started = anyio.current_time()
            try:
                await self._work_once(handler, concurrency)
                logger.warning("job worker stopped; starting again")
            except Exception as exc:
                logger.warning("job worker failed (%s); starting again", type(exc).__name__)
            if anyio.current_time() - started > RESTART_PAUSE_MAX_S:
                pause = 1.0  # it ran well for a while: this is a new outage
            await anyio.sleep(pause)
            pause = min(pause * 2, RESTART_PAUSE_MAX_S)

    async def _work_once(self, handler: JobHandler, concurrency: int) -> None:
        from procrastinate.worker import Worker

        stall_s = self._settings.job_stall_s
        app = self._app(handler, concurrency)
        worker = Worker(
            app=app,
            queues=[QUEUE],
            name="media",
            concurrency=concurrency,
            install_signal_handlers=False,  # the process (uvicorn or the CLI) owns signals
            fetch_job_polling_interval=min(MAX_POLL_S, float(self._settings.job_retry_s)),
            # A worker silent for half the stall time is dead: its job runs again well within
            # MEDIA_JOB_STALL_S, and three heartbeats in a row must be missed for that.
            update_heartbeat_interval=stall_s / 6,
            stalled_worker_timeout=stall_s / 2,
            shutdown_graceful_timeout=SHUTDOWN_GRACE_S,
            delete_jobs="successful",
        )
        async with app.open_async(), anyio.create_task_group() as tasks:
            tasks.start_soon(self._recover, stall_s)
            # Its own task: a cancelled caller stops the worker gracefully (running jobs get
            # SHUTDOWN_GRACE_S to finish) instead of cutting it at its next await.
            running = asyncio.get_running_loop().create_task(worker.run())  # type: ignore[no-untyped-call]
            try:
                await asyncio.shield(running)
            finally:
                worker.stop()  # type: ignore[no-untyped-call]
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([running])
                tasks.cancel_scope.cancel()

    async def _recover(self, stall_s: float) -> None:
        while True:
            await anyio.sleep(stall_s / 6)
            try:
                retried = await jobstore.retry_stalled(self._database, QUEUE, stall_s / 2)
            except Exception:  # the database may be away for a while; the next round retries
                logger.warning("stalled-job recovery skipped a round", exc_info=True)
                continue
            if retried:
                logger.warning("retrying %d job(s) of stopped workers: %s", len(retried), retried)
