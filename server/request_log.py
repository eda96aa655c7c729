"""One structured log line per request, without tokens, signed URLs or credentials."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.types.protocols import Logger

from media.errors import MediaError
from server.observability.logs import log_formatter

logger = logging.getLogger("media.request")

# Path segments that are capabilities (signed tokens: /media, /hls, /upload, /upload/parts, /s)
# never reach a log line, whatever the case of the route prefix. Only URL paths count: the path
# must start the text, follow a host ("//host:port") or a space, quote or bracket, so a source
# file such as ".../media/service/x.py" in a traceback stays as it is.
_SECRET_PATH = re.compile(
    r"(^|[\s'\"(\[=]|//[^/\s'\"]+)/(media|hls|upload/parts|upload|s)/[^/\s'\"?#]+", re.IGNORECASE
)
# Client errors are the client's business: Litestar would log each one with its raw path.
CLIENT_ERRORS = frozenset(range(400, 500))


def redact_path(path: str) -> str:
    """The path (or any text) with every signed-URL token in a URL replaced by a placeholder."""
    return _SECRET_PATH.sub(lambda match: f"{match.group(1)}/{match.group(2)}/{{token}}", path)


def log_unhandled(log: Logger, scope: Scope, traceback: list[str]) -> None:
    """Litestar's hook for exceptions: a traceback only for real bugs, never a token.

    Litestar calls it for every exception a handler raised, including the MediaErrors the edges
    answer on purpose (an expired bearer token is a 401, not a bug); its `disable_stack_trace`
    matches exact classes and status codes only, so the decision is made here."""
    route = scope.get("path_template") or redact_path(scope.get("path", ""))
    exc = sys.exc_info()[1]
    if isinstance(exc, MediaError) and exc.expected:
        # The request line (RequestLogMiddleware) already records the status: no second line.
        logger.debug("%s %s refused: %s", scope.get("method"), route, exc.code)
        return
    log.error(
        "unhandled exception on %s %s\n%s",
        scope.get("method"),
        route,
        redact_path("".join(traceback)),
    )


class RequestLogMiddleware:
    """Pure ASGI middleware: method, route template, status, bytes, duration. No query strings."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._log(scope, state, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], seconds: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        route = scope.get("path_template") or redact_path(scope.get("path", ""))
        log_request(
            str(scope.get("method")), route, state["status"] or 500, state["bytes"], seconds
        )


def log_request(method: str, route: str, status: int, sent: int, seconds: float) -> None:
    """The one request line; routes that log themselves (streaming/routes.py) call it directly.

    `route` is a route template or an already redacted path, never a raw token path."""
    if not logger.isEnabledFor(logging.INFO):
        return
    line = {
        "method": method,
        "route": route,
        "status": status,
        "bytes": sent,
        "ms": round(seconds * 1000, 2),
    }
    # `media_request` lets a JSON log format put the fields at the top level.
    logger.info(
        "request %s", json.dumps(line, separators=(",", ":")), extra={"media_request": line}
    )


def configure_logging(level: str, log_format: str = "text") -> None:
    """One-line logs (text or JSON) on stderr; uvicorn's access log (full URLs) stays off."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("uvicorn.access").disabled = True
    # At DEBUG aiosqlite logs every statement with its parameters: share tokens among them.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLevelName(level)))
