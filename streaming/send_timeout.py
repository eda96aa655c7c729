"""Cutting responses whose client stopped reading: a stalled reader would hold its connection
(and a storage read) forever. Each body message must be taken within the timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("media.request")


# A sweep looks at the responses under way this often per timeout: a stalled send is cut once
# it has waited between 1 and 1 + 1/SWEEPS_PER_TIMEOUT timeouts.
SWEEPS_PER_TIMEOUT = 4


class _Watch:
    """One response's body sends, noted so that a sweep can cut it when a send has waited
    `timeout_s`.

    A cancel scope per send (anyio.fail_after) cost ~6 us per body message, a tenth of a full
    GET's CPU at 256 KiB per message, an anyio cancel scope per response ~5 us per range, and a
    loop timer armed and disarmed per response ~4 us (bench/README.md). Here a send only notes
    when it started and ended, and one `_Sweeper` per app and event loop looks at every response
    under way a few times per timeout; it cancels the response's task (the server runs one task
    per request) only when the send under way is older than the timeout. The cancellation lands
    where that task waits: in the send itself, or, when a child task sends the body (a Litestar
    `Stream`), in the task's own await, whose task group then cancels the send. Once cut, a
    response's every later send fails at once, as in a cancelled scope."""

    __slots__ = ("_loop", "_send", "_since", "stalled", "task")

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("an ASGI app runs in a task")
        self.task = task
        self._loop = loop
        self._send = send
        self._since: float | None = None  # loop time when the body send under way started
        self.stalled = False

    def cut_if_older(self, deadline: float) -> None:
        """Cancel the response when its send under way started before `deadline`."""
        since = self._since
        if since is not None and since <= deadline and not self.stalled:
            self.stalled = True
            self.task.cancel()

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


class _Sweeper:
    """The responses under way on one event loop, looked at every `timeout_s / SWEEPS_PER_TIMEOUT`
    while there are any: one loop timer for all of them instead of one per response."""

    __slots__ = ("_handle", "_interval", "loop", "timeout_s", "watches")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self._interval = timeout_s / SWEEPS_PER_TIMEOUT
        self.watches: set[_Watch] = set()
        self._handle: asyncio.TimerHandle | None = None

    def watch(self, send: Send) -> _Watch:
        """A watch over the current task's response, looked at until `done`."""
        watch = _Watch(send, self.loop)
        self.watches.add(watch)
        if self._handle is None:
            self._handle = self.loop.call_later(self._interval, self._sweep)
        return watch

    def done(self, watch: _Watch) -> None:
        """The response is over."""
        self.watches.discard(watch)

    def _sweep(self) -> None:
        deadline = self.loop.time() - self.timeout_s
        for watch in list(self.watches):
            watch.cut_if_older(deadline)
        # Asleep while nothing is under way; the next response arms it again.
        self._handle = self.loop.call_later(self._interval, self._sweep) if self.watches else None


def bound_sends(app: ASGIApp, timeout_s: float) -> ASGIApp:
    """`app` with every body send bounded by `timeout_s`; past it (by at most a quarter of it)
    the response ends unfinished, which makes the server close the connection."""
    sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}

    def sweeper() -> _Sweeper:
        # The server runs the app on asyncio (uvicorn), one loop per process; an app served by
        # several loops in turn (tests) gets a sweeper on each.
        loop = asyncio.get_running_loop()
        found = sweepers.get(loop)
        if found is None:
            for stale in [old for old in sweepers if old.is_closed()]:
                del sweepers[stale]
            found = sweepers[loop] = _Sweeper(loop, timeout_s)
        return found

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        sweeps = sweeper()
        watch = sweeps.watch(send)
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
            sweeps.done(watch)
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
