"""What create_app adds for observability: the telemetry middleware, /metrics, the tracer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware

from media.config import Settings
from media.telemetry.tally import flush_all
from server.observability.http import Telemetry, TelemetryConfig, TelemetryMiddleware
from server.observability.metrics_route import metrics_handler
from server.observability.tracing import flush_tracing, start_tracing
from streaming.hls import HLS_ROUTE
from streaming.routes import MEDIA_ROUTE

# Route templates of the signed byte routes, whose answers are counted by range outcome.
STREAM_ROUTES = frozenset({MEDIA_ROUTE, HLS_ROUTE})
# How often recorded tallies reach the metrics without a scrape of this process (other processes'
# scrapes read the shared folder under PROMETHEUS_MULTIPROC_DIR).
FLUSH_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Observability:
    """Middleware (outermost first) and route handlers for one app."""

    middleware: list[DefineMiddleware] = field(default_factory=list)
    handlers: list[HTTPRouteHandler] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    lifespan: list[Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]] = field(
        default_factory=list
    )
    # For the byte routes, which take no app middleware: the same telemetry, called by them.
    stream_telemetry: Telemetry | None = None


def observability(settings: Settings) -> Observability:
    """Nothing when metrics, tracing and JSON logs are all off: the byte path pays nothing."""
    tracer = start_tracing(settings)
    wanted = settings.metrics_enabled or tracer is not None or settings.log_format == "json"
    if not wanted:
        return Observability()
    config = TelemetryConfig(
        metrics=settings.metrics_enabled, tracer=tracer, stream_routes=STREAM_ROUTES
    )
    handlers = [metrics_handler(settings)] if settings.metrics_enabled else []
    shutdown: list[Callable[[], Awaitable[None]]] = [_flush] if tracer is not None else []
    lifespan: list[Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]] = (
        [_flushing_metrics] if settings.metrics_enabled else []
    )
    middleware = [DefineMiddleware(TelemetryMiddleware, config=config)]
    return Observability(middleware, handlers, shutdown, lifespan, Telemetry(config))


@contextlib.asynccontextmanager
async def _flushing_metrics(app: Litestar) -> AsyncIterator[None]:
    """Tallies reach the metrics every FLUSH_INTERVAL_S and when the app stops."""

    async def flush_periodically() -> None:
        while True:
            await anyio.sleep(FLUSH_INTERVAL_S)
            flush_all()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(flush_periodically)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()
            flush_all()


async def _flush() -> None:
    # The batch span processor drops what it still holds at exit; exporting may block on I/O.
    await anyio.to_thread.run_sync(flush_tracing)
