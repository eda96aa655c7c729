"""create_app(settings): the one Litestar app and the lifetime of its dependencies."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import anyio
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Response
from litestar.template.config import TemplateConfig

from api import graphql_controller
from media.clock import utc_now
from media.config import Settings
from media.errors import MediaError, Unavailable
from media.listener import Listener
from media.service import MediaService
from pages import TEMPLATE_DIRECTORY, share_page_handlers
from server.cors import cors
from server.dev_oidc import dev_oidc_handlers
from server.lifecycle import dev_issuer, open_dependencies, work_jobs
from server.observability.http import StreamRequests, unrouted_requests
from server.observability.wiring import observability
from server.request_log import CLIENT_ERRORS, RequestLogMiddleware, log_request, log_unhandled
from server.websocket_limit import websocket_limit
from streaming import stream_route_handlers
from streaming.send_timeout import SendTimeout, send_timeout
from streaming.upload import part_handler, upload_handler

logger = logging.getLogger("media.server")


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


def provide_service(state: State) -> MediaService:
    """The service the lifespan opened: the `service` parameter of every handler (the raw
    /media and /hls routes read the same `app.state.service`, streaming/routes.py)."""
    service: MediaService = state.service
    return service


@get("/readyz", include_in_schema=False)
async def readyz(service: MediaService) -> Response[dict[str, object]]:
    """Database and storage reachable: 200, else 503 naming the failing part."""
    report = await service.readiness()
    ready = all(value == "ok" for value in report.values())
    status = 200 if ready else 503
    headers = {} if ready else {"Retry-After": str(Unavailable.retry_after_s)}
    return Response(
        {"status": "ok" if ready else "unavailable", **report}, status_code=status, headers=headers
    )


def create_app(
    settings: Settings,
    *,
    public_url: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Litestar:
    """The whole service for one settings value; dependencies open on startup, close on shutdown.

    `clock` is the wall clock of the use cases (tests inject one to move time)."""
    base_url = (settings.public_url or public_url or "http://127.0.0.1:8090").rstrip("/")
    issuer = dev_issuer(settings, base_url) if settings.uses_dev_issuer else None
    observed = observability(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_dependencies(settings, base_url, issuer, clock) as deps:
            app.state.service = deps.service
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_reaper, deps.service, settings.reaper_interval_s)
                if settings.in_process_worker:
                    tasks.start_soon(work_jobs, deps, settings.processing_workers)
                if settings.database.engine == "postgres":
                    # Other processes' status changes, revocations and deletions (SQLite: there
                    # is only this process, whose writes reach its event hub directly).
                    events = deps.service.events
                    tasks.start_soon(Listener(settings, events.deliver, events.reset).run)
                if settings.collector_interval_s:
                    tasks.start_soon(_collector, deps.service, settings.collector_interval_s)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()

    # One for the app: its routes and the byte routes share the sweeps of their responses.
    sends = SendTimeout(settings.send_timeout_s)
    # The request line and telemetry of the byte routes, and of requests the router refuses.
    requests = StreamRequests(log_request, observed.stream_telemetry)
    handlers: list[object] = [
        healthz,
        readyz,
        graphql_controller(settings),
        *stream_route_handlers(
            settings.cors_origins,
            # No app middleware reaches these routes: they log, count and cut stalled readers
            # in their own code path.
            observer=requests,
            send_timeout=sends,
        ),
        *share_page_handlers(),
        upload_handler(settings),
        part_handler(settings),
        *observed.handlers,
    ]
    if issuer is not None:
        handlers.extend(dev_oidc_handlers(issuer))
    return Litestar(
        route_handlers=handlers,  # type: ignore[arg-type]
        dependencies={"service": Provide(provide_service, sync_to_thread=False)},
        # Jinja2 with autoescaping on, for the share page (pages/templates).
        template_config=TemplateConfig(directory=TEMPLATE_DIRECTORY, engine=JinjaTemplateEngine),
        lifespan=[lifespan, *observed.lifespan],
        after_exception=[unrouted_requests(requests)],
        on_shutdown=observed.on_shutdown,
        middleware=[
            websocket_limit(settings.max_concurrency),
            *observed.middleware,
            RequestLogMiddleware,
            send_timeout(sends),
            cors(settings.cors_origins),
        ],
        openapi_config=None,
        # The root logger is ours (server.request_log.configure_logging); Litestar keeps its own
        # logger for unhandled exceptions only, never for 4xx, and never with a raw token path.
        logging_config=LoggingConfig(
            configure_root_logger=False,
            log_exceptions="always",
            disable_stack_trace=set(CLIENT_ERRORS),
            exception_logging_handler=log_unhandled,
        ),
        debug=False,
    )


def app_from_environment() -> Litestar:
    """The app of one `serve --workers N` process, built from the environment like the parent."""
    from media.config import load_settings
    from server.request_log import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


async def _collector(service: MediaService, interval_s: int) -> None:
    while True:
        await anyio.sleep(interval_s)  # not at start-up: each starting process would list the store
        try:
            await service.collector.collect()
        except MediaError as exc:
            logger.warning("collector skipped a round: %s", exc.code)
        except Exception:  # a bug here must not stop the app; the next round tries again
            logger.exception("collector round failed")


async def _reaper(service: MediaService, interval_s: int) -> None:
    while True:
        try:
            reaped = await service.uploads.reap()
            if reaped:
                logger.info("reaper expired %d upload(s)", reaped)
        except MediaError as exc:
            logger.warning("reaper skipped a round: %s", exc.code)
        except Exception:  # a bug here must not stop the app; the next round tries again
            logger.exception("reaper round failed")
        await anyio.sleep(interval_s)
