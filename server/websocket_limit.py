"""A bound on the WebSockets one process holds open, so they never take every connection slot.

uvicorn's `limit_concurrency` (MEDIA_MAX_CONCURRENCY) lets a WebSocket upgrade through without
counting it, yet counts the open socket against every later HTTP request: enough idle sockets,
which any user can open, and every request of anyone is answered 503. Sockets get at most half
of the slots; past that, a handshake is refused (the client sees HTTP 403 and retries later)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send


def websocket_limit(max_concurrency: int) -> type:
    """A middleware class for the Litestar app: at most half of `max_concurrency` sockets."""
    limit = max(1, max_concurrency // 2)
    held = [0]  # open sockets of this app

    class WebSocketLimit:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.WEBSOCKET:
                await self.app(scope, receive, send)
                return
            if held[0] >= limit:
                # Closing before accepting refuses the handshake (RFC 6455 §4.2.2: 403).
                await send({"type": "websocket.close", "code": 1013, "reason": ""})
                return
            held[0] += 1
            try:
                await self.app(scope, receive, send)
            finally:
                held[0] -= 1

    return WebSocketLimit
