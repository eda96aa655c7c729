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
    when it started and ended, and one `_Sweeper` per SendTimeout (one per app) and event loop
    looks at every response under way a few times per timeout; it cancels the response's task
    (the server runs one task per request) only when the send under way is older than the
    timeout. The cancellation lands where that task waits: in the send itself, or, when a child
    task sends the body (a Litestar `Stream`), in the task's own await, whose task group then
    cancels the send. Once cut, a response's every later send fails at once, as in a cancelled
    scope."""

    __slots__ = ("_loop", "_route", "_send", "_since", "_sweeper", "stalled", "task")

    def __init__(self, sweeper: _Sweeper, send: Send, route: str) -> None:
        task = asyncio.current_task(sweeper.loop)
        if task is None:
            raise RuntimeError("an ASGI app runs in a task")
        self.task = task
        self._sweeper = sweeper
        self._loop = sweeper.loop
        self._send = send
        self._route = route
        self._since: float | None = None  # loop time when the body send under way started
        self.stalled = False

    def __enter__(self) -> _Watch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        """Spend our own cancellation (True: swallow it); let any other one go on."""
        self._sweeper.done(self)
        if not self.stalled:
            return False
        logger.info(
            "client took no bytes for %s s on %s; connection closed",
            self._sweeper.timeout_s,
            self._route,
        )
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            # Swallowed only when no other cancellation (the server shutting down) is pending.
            return self.task.uncancel() == 0
        # The app caught the cut and ended the response itself, or turned it into another error.
        self.task.uncancel()
        return False

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

    def watch(self, send: Send, route: str) -> _Watch:
        """A watch over the current task's response, looked at until it exits."""
        watch = _Watch(self, send, route)
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


class SendTimeout:
    """Body sends bounded by `timeout_s`: past it (by at most a quarter of it) the response ends
    unfinished, which makes the server close the connection.

    `with timeout.watching(send, route) as watch:` runs a response whose sends go through
    `watch.send`; the block ends quietly when the response was cut, and logs it."""

    __slots__ = ("_sweepers", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}

    def watching(self, send: Send, route: str) -> _Watch:
        """A watch over the current task's response (`route` names it in the log)."""
        # The server runs the app on asyncio (uvicorn), one loop per process; an app served by
        # several loops in turn (tests) gets a sweeper on each.
        loop = asyncio.get_running_loop()
        sweeper = self._sweepers.get(loop)
        if sweeper is None:
            for stale in [old for old in self._sweepers if old.is_closed()]:
                del self._sweepers[stale]
            sweeper = self._sweepers[loop] = _Sweeper(loop, self.timeout_s)
        return sweeper.watch(send, route)


def bound_sends(app: ASGIApp, timeout: SendTimeout | float) -> ASGIApp:
    """`app` with every body send bounded by `timeout` (see SendTimeout; a number makes one)."""
    bound = timeout if isinstance(timeout, SendTimeout) else SendTimeout(timeout)

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        with bound.watching(send, scope.get("path_template") or "-") as watch:
            await app(scope, receive, watch.send)

    return bounded


def send_timeout(timeout: SendTimeout) -> type:
    """A Litestar middleware class applying bound_sends to every HTTP route behind it; the app's
    routes (Litestar builds the middleware once per route) share `timeout` and its sweeps."""

    class SendTimeoutMiddleware:
        """Pure ASGI: bounds each body send."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = bound_sends(app, timeout)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

    return SendTimeoutMiddleware
