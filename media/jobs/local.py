"""The embedded default's queue: jobs run as tasks of the serving process (SQLite has no queue).

Durability comes from the upload rows: an upload left PROCESSING by a stopped process is the job,
and `work` starts those again before taking new ones.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from media.jobs import JOB_ATTEMPTS, JobHandler, retry_wait_s
from media.models import JobRequest

logger = logging.getLogger("media.jobs")

Pending = Callable[[], Awaitable[Iterable[UUID]]]


class LocalQueue:
    """An in-memory queue with the same attempts and backoff as the durable one."""

    def __init__(self, retry_s: float) -> None:
        self._retry_s = retry_s
        self._send, self._receive = anyio.create_memory_object_stream[tuple[UUID, int]](math.inf)
        self._waiting = 0

    def job_for(self, upload_id: UUID, media_id: str) -> JobRequest | None:
        """Nothing to store: the upload row in PROCESSING is the job."""
        return None

    def submitted(self, upload_id: UUID) -> None:
        """Queue the job for this process's workers."""
        self._put(upload_id, 0)

    async def queued(self) -> int:
        """Jobs waiting for a free worker or a retry."""
        return self._waiting

    def close(self) -> None:
        """Drop jobs not started yet (their uploads stay PROCESSING for the next start)."""
        self._send.close()
        self._receive.close()

    def _put(self, upload_id: UUID, attempt: int) -> None:
        self._send.send_nowait((upload_id, attempt))
        self._waiting += 1

    async def work(self, handler: JobHandler, concurrency: int, pending: Pending) -> None:
        """Run jobs until cancelled, starting with those a previous process left unfinished."""
        for upload_id in await pending():
            self._put(upload_id, 0)
        async with anyio.create_task_group() as tasks:
            for _ in range(concurrency):
                tasks.start_soon(self._consume, handler, self._receive.clone(), tasks)

    async def _consume(
        self,
        handler: JobHandler,
        receive: MemoryObjectReceiveStream[tuple[UUID, int]],
        tasks: TaskGroup,
    ) -> None:
        async with receive:
            async for upload_id, attempt in receive:
                await self._run(handler, tasks, upload_id, attempt)

    async def _run(
        self, handler: JobHandler, tasks: TaskGroup, upload_id: UUID, attempt: int
    ) -> None:
        self._waiting -= 1
        try:
            await handler(upload_id, attempt)
        except Exception:
            if attempt + 1 >= JOB_ATTEMPTS:
                logger.exception("job for upload %s failed on its last attempt", upload_id)
                return
            wait = retry_wait_s(self._retry_s, attempt)
            logger.warning("job for upload %s failed; retry in %.1f s", upload_id, wait)
            tasks.start_soon(self._later, upload_id, attempt + 1, wait)

    async def _later(self, upload_id: UUID, attempt: int, wait: float) -> None:
        await anyio.sleep(wait)
        with contextlib.suppress(anyio.ClosedResourceError):
            self._put(upload_id, attempt)
