"""The in-process queue of the embedded default: attempts, backoff, restart of unfinished jobs."""

from __future__ import annotations

import itertools
import uuid
from uuid import UUID

import anyio
import pytest

from media.jobs import JOB_ATTEMPTS, retry_wait_s
from media.jobs.local import LocalQueue

BASE_S = 0.05


class Flaky:
    """A job function that fails its first `failures` calls for every upload."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[UUID, int, float]] = []
        self.done = anyio.Event()

    async def __call__(self, upload_id: UUID, attempt: int) -> None:
        self.calls.append((upload_id, attempt, anyio.current_time()))
        if len([call for call in self.calls if call[0] == upload_id]) <= self.failures:
            if attempt + 1 >= JOB_ATTEMPTS:
                self.done.set()
            raise RuntimeError("storage away")
        self.done.set()


async def _run(
    queue: LocalQueue, job: Flaky, pending: tuple[UUID, ...] = (), linger_s: float = 0
) -> None:
    async def left_over() -> tuple[UUID, ...]:
        return pending

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(queue.work, job, 2, left_over)
            await job.done.wait()
            await anyio.sleep(linger_s)  # the queue keeps working meanwhile
            tasks.cancel_scope.cancel()
    queue.close()


@pytest.mark.parametrize("failures", [0, 1, 2])
async def test_retries_with_backoff_until_it_succeeds(failures: int) -> None:
    queue, job, upload = LocalQueue(BASE_S), Flaky(failures), uuid.uuid4()
    queue.submitted(upload)
    assert await queue.queued() == 1
    await _run(queue, job)
    assert [attempt for _, attempt, _ in job.calls] == list(range(failures + 1))
    times = [at for _, _, at in job.calls]
    for attempt, (before, after) in enumerate(itertools.pairwise(times)):
        assert after - before >= retry_wait_s(BASE_S, attempt)
    assert await queue.queued() == 0


async def test_stops_after_the_last_attempt() -> None:
    queue, job, upload = LocalQueue(BASE_S), Flaky(failures=10), uuid.uuid4()
    queue.submitted(upload)
    await _run(queue, job, linger_s=retry_wait_s(BASE_S, JOB_ATTEMPTS) * 2)  # no 4th run
    assert [attempt for _, attempt, _ in job.calls] == list(range(JOB_ATTEMPTS))


async def test_jobs_left_by_a_stopped_process_run_first() -> None:
    queue, job, left = LocalQueue(BASE_S), Flaky(failures=0), uuid.uuid4()
    await _run(queue, job, pending=(left,))
    assert job.calls[0][:2] == (left, 0)
