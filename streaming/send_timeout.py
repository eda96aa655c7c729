"""Cutting responses whose client stopped reading: a stalled reader would hold its connection
(and a storage read) forever. Each body message must be taken within the timeout."""

from __future__ import annotations

import logging

import anyio
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("media.request")


class _Stalled(Exception):
    """The client accepted no bytes within the send timeout."""


def bound_sends(app: ASGIApp, timeout_s: float) -> ASGIApp:
    """`app` with every body send bounded by `timeout_s`; past it the response ends unfinished,
    which makes the server close the connection."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        stalled = False

        async def bounded_send(message: Message) -> None:
            nonlocal stalled
            if message["type"] != "http.response.body":
                await send(message)
                return
            try:
                # The server's send waits here while the socket buffer is full.
                with anyio.fail_after(timeout_s):
                    await send(message)
            except TimeoutError:
                stalled = True
                raise _Stalled from None

        try:
            await app(scope, receive, bounded_send)
        except Exception:
            # It comes back wrapped (task groups, Litestar's "after response started").
            if not stalled:
                raise
            route = scope.get("path_template") or "-"
            logger.info("client took no bytes for %s s on %s; connection closed", timeout_s, route)

    return bounded


def send_timeout(timeout_s: float) -> type:
    """A Litestar middleware class applying bound_sends to every HTTP route behind it."""

    class SendTimeoutMiddleware:
        """Pure ASGI: bounds each body send."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = bound_sends(app, timeout_s)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

    return SendTimeoutMiddleware
