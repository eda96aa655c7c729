"""`media-service worker`: processing jobs without HTTP, on any machine with the same settings."""

from __future__ import annotations

import logging
import signal
import sys

import anyio

from media.config import Settings
from server.lifecycle import dev_issuer, open_dependencies, work_jobs
from server.request_log import configure_logging

logger = logging.getLogger("media.worker")


ALIVE_FILE = "worker.alive"
ALIVE_EVERY_S = 10.0


async def _alive(path: anyio.Path) -> None:
    """Touch `path` while the event loop turns: what a container healthcheck can look at."""
    while True:
        await path.touch()
        await anyio.sleep(ALIVE_EVERY_S)


async def _work(settings: Settings, concurrency: int) -> None:
    base_url = (settings.public_url or "http://127.0.0.1:8090").rstrip("/")
    issuer = dev_issuer(settings, base_url) if settings.uses_dev_issuer else None
    async with open_dependencies(settings, base_url, issuer) as deps:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(work_jobs, deps, concurrency)
                await anyio.Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
                tasks.start_soon(_alive, anyio.Path(settings.data_dir / ALIVE_FILE))
                print(f"worker: {concurrency} job(s) at once", file=sys.stderr, flush=True)
                async for received in signals:
                    # Running jobs get a grace period, then go back to the queue.
                    logger.info("worker stopping on %s", signal.Signals(received).name)
                    tasks.cancel_scope.cancel()
                    break


def run_worker(settings: Settings, concurrency: int) -> int:
    """Run jobs until SIGTERM or SIGINT; 0 on a clean stop."""
    configure_logging(settings.log_level, settings.log_format)
    anyio.run(_work, settings, concurrency)
    return 0
