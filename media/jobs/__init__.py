"""Durable processing jobs: procrastinate on PostgreSQL, an in-process runner on SQLite.

Both run the same job function, handed in by the composition root as a `JobHandler`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import UUID

from media.models import JobRequest

QUEUE = "media"
PROCESS_TASK = "media.process_upload"
JOB_ATTEMPTS = 3  # the first run and two retries; a worker lost mid-job uses one up too


class JobHandler(Protocol):
    """The job function: process one upload; raise to have it retried while attempts remain."""

    def __call__(self, upload_id: UUID, attempt: int) -> Awaitable[None]: ...


class JobQueue(Protocol):
    """What the use cases need of the queue."""

    def job_for(self, upload_id: UUID, media_id: str) -> JobRequest | None:
        """The job to defer inside the state change's transaction; None for an in-process queue."""
        ...

    def submitted(self, upload_id: UUID) -> None:
        """Called once the state change committed (the in-process queue starts it then)."""
        ...

    async def queued(self) -> int:
        """How many jobs wait to run (for metrics); cheap."""
        ...


def processing_job(upload_id: UUID, media_id: str) -> JobRequest:
    """The durable job that processes one stored upload; one at a time per media."""
    return JobRequest(
        queue=QUEUE,
        task=PROCESS_TASK,
        lock=f"media-{media_id}",
        args=(("upload_id", str(upload_id)),),
    )


def retry_wait_s(base_s: float, attempt: int) -> float:
    """Backoff before the retry that follows `attempt` (0-based): base, 2 x base, 4 x base..."""
    return float(base_s * 2**attempt)


Sleep = Callable[[float], Awaitable[None]]
