"""Per-request telemetry: request id, metrics and the server span. `Telemetry` brackets one
request; `TelemetryMiddleware` applies it to the app's routes as one pure ASGI middleware and
`StreamRequests` to the byte routes, which call it themselves (streaming/edge.py).

It runs after routing, so the route template (`scope["path_template"]`) is known from the start:
metric labels, span names and URL attributes use it and never the raw path, which carries the
signed token. Counts go to tallies (media.telemetry.tally) found by one dict lookup per label set.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from contextvars import Token
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from api.context import accept_request_id
from media.telemetry import request as request_facts
from media.telemetry.metrics import (
    BYTES_SERVED,
    FIRST_BYTE,
    HTTP_DURATION,
    HTTP_REQUESTS,
    RANGE_OUTCOMES,
    Children,
)
from media.telemetry.tally import CounterTally, HistogramTally, counter_tally, histogram_tally
from streaming.edge import Served

# (method, route template, status, body bytes sent, seconds): the request log line.
RequestLine = Callable[[str, str, int, int, float], None]

UNKNOWN_ROUTE = "other"
_PROPAGATION_HEADERS = (b"traceparent", b"tracestate", b"baggage")
_RANGE_OUTCOMES = {304: "not_modified", 412: "precondition_failed", 416: "unsatisfiable"}
# Request ids: a random prefix per process and a counter: unique without a uuid4 (a system call
# for os.urandom) per request.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """What the middleware records; `stream_routes` are the templates of signed byte routes.

    The route is the scope's `path_template`: the router's, or for the mounted byte routes the
    one they set before this runs (streaming/routes.py)."""

    metrics: bool
    tracer: Tracer | None
    stream_routes: Collection[str]


class _Exchange:
    """A request's send, noting what it carries in the request's record."""

    __slots__ = ("send", "served")

    def __init__(self, send: Send, served: Served) -> None:
        self.send = send
        self.served = served

    def __call__(self, message: Message) -> Awaitable[None]:
        # The server's own send is returned to be awaited: no coroutine of ours per message.
        if message["type"] == "http.response.body":
            self.served.body_sent(len(message.get("body", b"")))
        elif message["type"] == "http.response.start":
            # No byte route is behind the middleware (they note `multipart` themselves).
            self.served.status = message["status"]
        return self.send(message)


class Telemetry:
    """Request id for the logs, then metrics and a server span when they are on: `begin` as a
    request starts (in its task), `end` with its record once it is over."""

    def __init__(self, config: TelemetryConfig) -> None:
        self.config = config
        self._requests: Children[tuple[str, str, int], CounterTally] = Children(
            lambda key: counter_tally(HTTP_REQUESTS.labels(key[0], key[1], str(key[2])))
        )
        self._durations: Children[tuple[str, str], HistogramTally] = Children(
            lambda key: histogram_tally(HTTP_DURATION.labels(*key))
        )
        self._bytes: Children[str, CounterTally] = Children(
            lambda purpose: counter_tally(BYTES_SERVED.labels(purpose))
        )
        self._outcomes: Children[str, CounterTally] = Children(
            lambda outcome: counter_tally(RANGE_OUTCOMES.labels(outcome))
        )
        self._first_byte = histogram_tally(FIRST_BYTE)

    def begin(self, scope: Scope, route: str) -> _Begun:
        """Start a request of `route`: its facts (request id) and, when tracing, its span."""
        facts, facts_token = request_facts.begin(_request_id(scope))
        span = self._start_span(scope, route) if self.config.tracer is not None else None
        return _Begun(facts, facts_token, span)

    def end(self, begun: _Begun, served: Served) -> None:
        """The request is over: end its span, count it, forget its facts."""
        try:
            if begun.span is not None:
                self._end_span(begun.span, served.status)
            if self.config.metrics:
                self._record(served, begun.facts.purpose)
        finally:
            request_facts.end(begun.facts_token)

    def _record(self, served: Served, purpose: str | None) -> None:
        ended = time.perf_counter()
        started, route, method = served.started, served.route, served.method
        status = served.status or 500
        self._requests[(route, method, status)].add()
        self._durations[(route, method)].observe(ended - started)
        if route not in self.config.stream_routes:
            return
        self._outcomes[_range_outcome(method, status, served.multipart)].add()
        if status not in _OBJECT_STATUSES:
            return  # a refusal's or an error's body is no part of an object
        if purpose is not None and served.sent:
            self._bytes[purpose].add(served.sent)
        if served.first_byte:
            self._first_byte.observe(served.first_byte - started)

    def _start_span(self, scope: Scope, route: str) -> _ServerSpan:
        assert self.config.tracer is not None
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATION_HEADERS
        }
        parent = propagate.extract(carrier)  # W3C traceparent/tracestate by default
        method = scope["method"]  # type: ignore[typeddict-item]
        span = self.config.tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                # The template, never the path: the path of a signed URL is its token.
                "url.path": route,
                "url.scheme": scope.get("scheme", "http"),
                "network.protocol.version": scope.get("http_version", "1.1"),
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return _ServerSpan(span, token)

    @staticmethod
    def _end_span(server_span: _ServerSpan, status: int) -> None:
        span = server_span.span
        span.set_attribute("http.response.status_code", status or 500)
        if not status or status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(server_span.token)


class TelemetryMiddleware:
    """Telemetry (see Telemetry) for every request of the routes behind it."""

    def __init__(self, app: ASGIApp, config: TelemetryConfig) -> None:
        self.app = app
        self.telemetry = Telemetry(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        served = Served(scope["method"], scope.get("path_template") or UNKNOWN_ROUTE)
        begun = self.telemetry.begin(scope, served.route)
        try:
            await self.app(scope, receive, _Exchange(send, served))
        except Exception as exc:
            served.raised(exc)
            raise
        finally:
            self.telemetry.end(begun, served)


class StreamRequests:
    """The byte routes' observer (streaming.edge.RequestObserver): the request line, then
    telemetry when it is on; those routes take no middleware."""

    __slots__ = ("_log", "_telemetry")

    def __init__(self, log: RequestLine, telemetry: Telemetry | None) -> None:
        self._log = log
        self._telemetry = telemetry

    def begin(self, scope: Scope, route: str) -> _Begun | None:
        """Start the request's telemetry, if any."""
        return None if self._telemetry is None else self._telemetry.begin(scope, route)

    def end(self, begun: _Begun | None, served: Served) -> None:
        """Log the request (inside its telemetry context: the line carries its ids), then end
        its telemetry."""
        try:
            seconds = time.perf_counter() - served.started
            self._log(served.method, served.route, served.status or 500, served.sent, seconds)
        finally:
            if begun is not None and self._telemetry is not None:
                self._telemetry.end(begun, served)


def unrouted_requests(observer: StreamRequests) -> Callable[[Exception, Scope], Awaitable[None]]:
    """An `after_exception` hook of the app: the request line, metrics and span of a request the
    router refused (no route for its path: 404; none for its method: 405), which no route's
    middleware sees. Its route is "other", never the path."""

    async def after_exception(exc: Exception, scope: Scope) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("route_handler") is not None:
            return  # routed: the route's own middleware (or its edge) observes it
        served = Served(scope["method"], UNKNOWN_ROUTE)
        begun = observer.begin(scope, UNKNOWN_ROUTE)
        served.raised(exc)
        observer.end(begun, served)

    return after_exception


class _Begun:
    """What Telemetry.begin started for one request."""

    __slots__ = ("facts", "facts_token", "span")

    def __init__(
        self,
        facts: request_facts.RequestFacts,
        facts_token: Token[request_facts.RequestFacts | None],
        span: _ServerSpan | None,
    ) -> None:
        self.facts = facts
        self.facts_token = facts_token
        self.span = span


@dataclass(frozen=True, slots=True)
class _ServerSpan:
    span: trace.Span
    token: Token[otel_context.Context]


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is plain and short, else a new one; kept in the scope."""
    offered = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            offered = value.decode("latin-1")
            break
    request_id = accept_request_id(offered) or f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


# Answers whose body is (part of) the object: bytes served and time to first byte count these.
_OBJECT_STATUSES = frozenset({200, 206})


def _range_outcome(method: str, status: int, multipart: bool) -> str:
    if status == 200:
        return "head" if method == "HEAD" else "full"
    if status == 206:
        return "multi" if multipart else "single"
    if status == 403:
        return "refused"
    if status == 503:
        return "unavailable"
    return _RANGE_OUTCOMES.get(status, "other")
