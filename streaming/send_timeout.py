"""Cutting responses whose client stopped reading: a stalled reader would hold its connection
(and a storage read) forever. Each body message must be taken within the timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("media.request")


class _Watch:
    """One timer per response that cuts it when a body send has waited `timeout_s`.

    A cancel scope per send (anyio.fail_after) cost ~6 us per body message, a tenth of a full
    GET's CPU at 256 KiB per message, and an anyio cancel scope per response ~5 us per range
    (bench/README.md). Here a send only notes when it started and ended; the timer, armed once
    per response, wakes at most once per `timeout_s` and cancels the response's task (the
    server runs one task per request) only when the send under way is older than that. The
    cancellation lands where that task waits: in the send itself, or, when a child task sends
    the body (a Litestar `Stream`), in the task's own await, whose task group then cancels the
    send. Once cut, a response's every later send fails at once, as in a cancelled scope."""

    __slots__ = ("_handle", "_loop", "_send", "_since", "stalled", "task", "timeout_s")

    def __init__(self, send: Send, timeout_s: float) -> None:
        # The server runs the app on asyncio (uvicorn), whose loop timers are the cheapest.
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("an ASGI app runs in a task")
        self.task = task
        self._send = send
        self._since: float | None = None  # loop time when the body send under way started
        self.timeout_s = timeout_s
        self.stalled = False
        self._handle = self._loop.call_later(timeout_s, self._check)

    def _check(self) -> None:
        since, now = self._since, self._loop.time()
        if since is not None and now - since >= self.timeout_s:
            self.stalled = True
            self.task.cancel()
            return
        self._handle = self._loop.call_at(
            (now if since is None else since) + self.timeout_s, self._check
        )

    def send(self, message: Message) -> Awaitable[None]:
        """The server's send, timed when it carries body bytes."""
        if self.stalled:
            # Cut already: an app that caught the cancellation does not send on unbounded.
            raise asyncio.CancelledError("send timeout")
        if message["type"] != "http.response.body":
            return self._send(message)
        return self._timed(message)

    async def _timed(self, message: Message) -> None:
        self._since = self._loop.time()
        try:
            # The server's send waits here while the socket buffer is full.
            await self._send(message)
        finally:
            self._since = None

    def stop(self) -> None:
        """Disarm the timer (the response is over)."""
        self._handle.cancel()


def bound_sends(app: ASGIApp, timeout_s: float) -> ASGIApp:
    """`app` with every body send bounded by `timeout_s`; past it the response ends unfinished,
    which makes the server close the connection."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        watch = _Watch(send, timeout_s)
        try:
            await app(scope, receive, watch.send)
        except asyncio.CancelledError:
            # Ours is spent here; any other cancellation (the server shutting down) goes on.
            if not watch.stalled or watch.task.uncancel() > 0:
                raise
        except BaseException:
            if watch.stalled:
                watch.task.uncancel()  # the app turned the cut into another error
            raise
        else:
            if watch.stalled:
                watch.task.uncancel()  # the app caught it and ended the response itself
        finally:
            watch.stop()
        if watch.stalled:
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
