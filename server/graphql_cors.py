"""CORS for /graphql: browser apps on other origins call the API with a bearer token.

Credentials (cookies) are never allowed: the API authenticates by the Authorization header only,
so a cross-origin page can only act with a token it already holds. The streaming routes answer
their own CORS (streaming/routes.py); this middleware leaves every other path alone."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

GRAPHQL_PATH = "/graphql"
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, X-Request-Id"
EXPOSED_HEADERS = "X-Request-Id"
PREFLIGHT_MAX_AGE_S = 600


def graphql_cors(origins: tuple[str, ...]) -> type:
    """A middleware class for the Litestar app, bound to MEDIA_CORS_ORIGINS."""

    class GraphQLCors:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"].rstrip("/") != GRAPHQL_PATH:
                await self.app(scope, receive, send)
                return
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1")
            allowed = _allow_origin(origins, origin)
            if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
                await _preflight(send, allowed)
                return

            async def with_cors(message: Message) -> None:
                if message["type"] == "http.response.start" and origin:
                    extra = [(b"vary", b"Origin")]
                    if allowed:
                        extra += [
                            (b"access-control-allow-origin", allowed.encode("latin-1")),
                            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                        ]
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

            await self.app(scope, receive, with_cors)

    return GraphQLCors


def _allow_origin(origins: tuple[str, ...], origin: str) -> str:
    if not origin:
        return ""
    if "*" in origins:
        return "*"
    return origin if origin in origins else ""


async def _preflight(send: Send, allowed: str) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"content-length", b"0")]
    if allowed:
        headers += [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 204,
        "headers": headers,
    }
    await send(start)
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(body)
