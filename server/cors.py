"""CORS for /graphql and the upload routes: browser apps on other origins call them.

Credentials (cookies) are never allowed: the API authenticates by the Authorization header and
uploads by their signed URL, so a cross-origin page can only act with a token or URL it already
holds. The streaming routes answer their own CORS (streaming/routes.py); this middleware leaves
every other path alone."""

from __future__ import annotations

from dataclasses import dataclass

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

PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """What a preflight allows and what a response exposes, for one family of paths."""

    methods: str
    allowed_headers: str
    exposed_headers: str


GRAPHQL_PATH = "/graphql"
GRAPHQL = CorsPolicy(
    methods="GET, POST, OPTIONS",
    allowed_headers="Authorization, Content-Type, Accept, X-Request-Id",
    exposed_headers="X-Request-Id",
)
UPLOAD_PREFIX = "/upload/"
# The headers an upload ticket or part URL names; the part answer's ETag is readable by the page.
UPLOAD = CorsPolicy(
    methods="PUT, OPTIONS",
    allowed_headers="Content-Type, Content-Length",
    exposed_headers="ETag, Retry-After",
)


def policy_for(path: str) -> CorsPolicy | None:
    """The policy of a request path, or None for paths this middleware leaves alone."""
    if path.rstrip("/") == GRAPHQL_PATH:
        return GRAPHQL
    if path.startswith(UPLOAD_PREFIX):
        return UPLOAD
    return None


def cors(origins: tuple[str, ...]) -> type:
    """A middleware class for the Litestar app, bound to MEDIA_CORS_ORIGINS."""

    class Cors:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await self.app(scope, receive, send)
                return
            policy = policy_for(scope["path"])
            if policy is None:
                await self.app(scope, receive, send)
                return
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1")
            allowed = _allow_origin(origins, origin)
            if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
                await _preflight(send, allowed, policy)
                return

            async def with_cors(message: Message) -> None:
                if message["type"] == "http.response.start" and origin:
                    extra = [(b"vary", b"Origin")]
                    if allowed:
                        extra += [
                            (b"access-control-allow-origin", allowed.encode("latin-1")),
                            (b"access-control-expose-headers", policy.exposed_headers.encode()),
                        ]
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

            await self.app(scope, receive, with_cors)

    return Cors


def _allow_origin(origins: tuple[str, ...], origin: str) -> str:
    if not origin:
        return ""
    if "*" in origins:
        return "*"
    return origin if origin in origins else ""


async def _preflight(send: Send, allowed: str, policy: CorsPolicy) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"content-length", b"0")]
    if allowed:
        headers += [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-allow-methods", policy.methods.encode()),
            (b"access-control-allow-headers", policy.allowed_headers.encode()),
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
