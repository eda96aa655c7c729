"""What every byte route does around its answer, in its own code path: the request's record for
the log and metrics, and the stalled-reader cut.

The byte routes take no app middleware (SelfContainedRoute), so what middleware would do for
them is done here, once per request, in the route's own code path: no wrapper around the route;
the answer notes what it sent in the request's record, and the send timeout's watch is all that
stands between the answer's body messages and the server's send.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from litestar.types import HTTPScope, Send

from streaming.send_timeout import SendTimeout


class Served:
    """What one request of a byte route came to, filled in as it is answered.

    `status` is 0 until the response starts; `sent` counts the body bytes the server took (its
    send returned); `first_byte` is the `time.perf_counter()` at which it first took some (0.0:
    none)."""

    __slots__ = ("first_byte", "method", "multipart", "route", "sent", "started", "status")

    def __init__(self, method: str, route: str) -> None:
        self.method = method
        self.route = route
        self.started = time.perf_counter()
        self.status = 0
        self.sent = 0
        self.first_byte = 0.0
        self.multipart = False

    def raised(self, exc: Exception) -> None:
        """The request ended in `exc`: unless its answer had begun, the app's exception handlers
        answer it, with the exception's `status_code` (Litestar's 404 for a bad path) or 500."""
        if not self.status:
            self.status = int(getattr(exc, "status_code", 500))

    def body_sent(self, length: int) -> None:
        """The server took `length` body bytes (its send returned)."""
        if length:
            if not self.first_byte:
                self.first_byte = time.perf_counter()
            self.sent += length


class RequestObserver(Protocol):
    """The request log and metrics of the byte routes.

    `begin` runs as the request starts, in the request's task (a context it sets, such as the
    request id, lasts until `end`); `end` gets what `begin` returned, once the request is over
    however it ended."""

    def begin(self, scope: HTTPScope, route: str) -> Any:
        """Start observing a request of `route`."""
        ...

    def end(self, begun: Any, served: Served) -> None:
        """The request is over."""
        ...


# Answers a request: sends through the given `send`, filling in the record.
Answering = Callable[[Served, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RouteEdge:
    """The observer and send timeout shared by the byte routes of one app (either may be off)."""

    observer: RequestObserver | None = None
    send_timeout: SendTimeout | None = None

    async def run(self, scope: HTTPScope, route: str, send: Send, answering: Answering) -> None:
        """Answer one request of `route` with `answering`, observed and with bounded sends."""
        # Set first: the app's handler of unexpected errors reads it (the path holds the token).
        scope["path_template"] = route
        served = Served(scope["method"], route)
        observer = self.observer
        begun = observer.begin(scope, route) if observer is not None else None
        try:
            if self.send_timeout is None:
                await answering(served, send)
            else:
                with self.send_timeout.watching(send, route) as watch:
                    await answering(served, watch.send)
        except Exception as exc:
            served.raised(exc)
            raise
        finally:
            if observer is not None:
                observer.end(begun, served)
