"""GET /metrics: Prometheus text format, merged over every worker process when there are several.

With `PROMETHEUS_MULTIPROC_DIR` set, each process writes its values to files there and the scrape
(answered by whichever process gets it) merges them. With MEDIA_METRICS_TOKEN set, the route asks
for it as a bearer token, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import anyio.to_thread
from litestar import Request, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.response import Response
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from media.config import Settings
from media.errors import MediaError
from media.jobs import QUEUE
from media.service import MediaService
from media.telemetry.metrics import JOBS_QUEUED
from media.telemetry.tally import flush_all

METRICS_PATH = "/metrics"


def exposition_registry(settings: Settings) -> CollectorRegistry:
    """The registry a scrape reads: this process's, or the merge of every process's files."""
    if settings.metrics_multiproc_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.metrics_multiproc_dir))  # type: ignore[no-untyped-call]
    return registry


def metrics_handler(settings: Settings) -> HTTPRouteHandler:
    """The /metrics route for `settings` (its registry and its optional bearer token)."""
    registry = exposition_registry(settings)
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    @get(METRICS_PATH, include_in_schema=False)
    async def metrics(
        request: Request[object, object, State], service: MediaService
    ) -> Response[bytes]:
        """The current values of every metric."""
        if expected is not None:
            offered = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(offered, expected):
                return Response(
                    b'{"error":"unauthorized"}',
                    status_code=401,
                    media_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        flush_all()  # on the loop, where the tallies are recorded
        # Merging the files of many processes reads the disk: off the event loop.
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        body += await _jobs_exposition(service)
        # As a header: as a media type, Litestar would add a second charset to this text/plain.
        headers = {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
        return Response(body, headers=headers)

    return metrics


class _Gauge:
    """A collector of one value read just before the scrape."""

    def __init__(self, family: GaugeMetricFamily) -> None:
        self.family = family

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The one family."""
        yield self.family


async def _jobs_exposition(service: MediaService) -> bytes:
    """`media_jobs_queued{queue}`: jobs waiting to run, asked of the queue (empty when it fails)."""
    try:
        queued = await service.processing.queue.queued()
    except MediaError:
        return b""  # the database is down: /readyz says so; the other metrics still answer
    family = GaugeMetricFamily(JOBS_QUEUED, "Processing jobs waiting to run", labels=["queue"])
    family.add_metric([QUEUE], queued)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Gauge(family))
    return generate_latest(registry)
