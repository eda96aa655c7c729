"""`/media/{token}` (GET, HEAD, OPTIONS): signed-URL streaming as a raw ASGI route of the app.

The route is a Litestar `asgi` handler that takes no part in Litestar's request machinery: no
Request or Response objects, no parameter parsing, and no app-level middleware (see
`SelfContainedRoute`). What that machinery did for this route is done here, in one code path:
CORS (StreamConfig), the request log and metrics and the stalled-reader cut (edge.py), 405 for
other methods, and error mapping. The RFC 9110 decisions stay in ranges.py and preconditions.py;
answers are built in responses.py and sent by send_answer.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import HTTPScope, Receive, Scope, Send

from media.clock import utc_now
from media.errors import MediaError, Unavailable
from media.models import StreamTarget
from streaming import responses as answer
from streaming.edge import RequestObserver, RouteEdge, Served
from streaming.preconditions import Validators, Verdict, evaluate, if_range_allows
from streaming.ranges import RangeOutcome, parse_range
from streaming.send_answer import send_answer
from streaming.send_timeout import SendTimeout

# A mount, not `/media/{token:str}`: Litestar 2.25 fails (KeyError) on `asgi` routes with path
# parameters for HTTP requests. The mount gets the rest of the path and checks it itself.
MEDIA_MOUNT = "/media"
MEDIA_ROUTE = "/media/{token}"
PREFLIGHT_MAX_AGE_S = 600
ALLOWED_METHODS = "GET, HEAD"
ALLOW = b"GET, HEAD, OPTIONS"
ALLOWED_REQUEST_HEADERS = (
    "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since"
)
# The request headers this route reads; several lines of one are combined per RFC 9110 §5.3.
_SINGLE_HEADERS = frozenset({b"range", b"if-range", b"origin"})
_LIST_HEADERS = frozenset(
    {b"if-match", b"if-unmodified-since", b"if-none-match", b"if-modified-since"}
)

# What a request asks for: the target of its token (None: nothing of that name, a 404).
Opener = Callable[["StreamSource"], Awaitable[StreamTarget | None]]


class StreamSource(Protocol):
    """What /media and /hls need from the core: `streams` of the app's `app.state.service`.

    `open_stream` raises InvalidSignature, Forbidden or NotFound for any URL that must not be
    served (all answered with the same 403) and Unavailable when a dependency is down (503).
    `read_object` yields bounded chunks of `length` bytes from `start`; closing it stops the read.
    """

    async def open_stream(self, token: str) -> StreamTarget:
        """Verify a token and describe the object it grants."""
        ...

    async def open_hls(self, token: str, name: str) -> StreamTarget | None:
        """Verify an HLS token and describe the ladder file `name`; None when the ladder has
        no file of exactly that name (404), the same refusals as open_stream otherwise."""
        ...

    def read_object(self, storage_key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream `length` bytes of an object from offset `start`."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class StreamConfig:
    """Per-app settings of the streaming routes, with their header bytes encoded once."""

    cors_origins: tuple[str, ...] = ("*",)
    clock: Callable[[], datetime] = utc_now
    _by_origin: dict[bytes | None, answer.HeaderPairs] = field(default_factory=dict, repr=False)

    def common_headers(self, origin: bytes | None) -> answer.HeaderPairs:
        """Security and CORS headers of every answer to a request from `origin`."""
        # The table holds "no origin" and the configured origins only: as small as the settings.
        key = (
            origin
            if origin is not None and self.allows(origin) and "*" not in self.cors_origins
            else None
        )
        cached = self._by_origin.get(key)
        if cached is None:
            cached = (
                *answer.SECURITY_HEADERS,
                *self.cors_headers(key),
                (b"access-control-expose-headers", answer.EXPOSED_HEADERS.encode()),
            )
            self._by_origin[key] = cached
        return cached

    def allows(self, origin: bytes) -> bool:
        """True when pages of `origin` may read the answers."""
        return "*" in self.cors_origins or origin.decode("latin-1") in self.cors_origins

    def cors_headers(self, origin: bytes | None) -> answer.HeaderPairs:
        """CORS headers for a request from `origin`; never credentials."""
        if "*" in self.cors_origins:
            return ((b"access-control-allow-origin", b"*"),)
        if origin is not None and self.allows(origin):
            return ((b"vary", b"Origin"), (b"access-control-allow-origin", origin))
        return ((b"vary", b"Origin"),)


class SelfContainedRoute(ASGIRouteHandler):
    """An `asgi` route handler outside the app's middleware stack.

    Litestar wraps each route in the app-level middleware when the app is built; a route that
    logs, answers CORS and maps its errors itself declares none, so a request reaches its code
    with nothing but the router in front (the exception handler around the whole app stays)."""

    def resolve_middleware(self) -> list[Any]:
        """No middleware of any layer: the route does that work in its own code path."""
        return []


def stream_route_handlers(
    cors_origins: tuple[str, ...] = ("*",),
    *,
    clock: Callable[[], datetime] = utc_now,
    observer: RequestObserver | None = None,
    send_timeout: SendTimeout | None = None,
) -> list[ASGIRouteHandler]:
    """The `/media/{token}` and `/hls/{token}/{name}` routes, to pass to the Litestar app (which
    holds `service`).

    `observer` gets every request (the request log and metrics: the routes take no app
    middleware); `send_timeout` cuts responses whose client stopped reading."""
    from streaming.hls import HLS_MOUNT, hls_endpoint

    config = StreamConfig(cors_origins=tuple(cors_origins), clock=clock)
    edge = RouteEdge(observer, send_timeout)

    async def media_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            raise NotFoundException()
        http = scope  # narrowed by the check above

        async def answering(served: Served, send: Send) -> None:
            token = _token(http["path"])
            await dispatch(
                config, http, lambda source: source.open_stream(token), receive, send, served
            )

        await edge.run(http, MEDIA_ROUTE, send, answering)

    routes = (
        (MEDIA_MOUNT, "media", media_endpoint),
        (HLS_MOUNT, "hls", hls_endpoint(config, edge)),
    )
    handlers: list[ASGIRouteHandler] = []
    for mount, name, endpoint in routes:
        handler = SelfContainedRoute(mount, name=name, is_mount=True, copy_scope=False)
        handlers.append(handler(endpoint))
    return handlers


async def dispatch(
    config: StreamConfig,
    scope: HTTPScope,
    opener: Opener,
    receive: Receive,
    send: Send,
    served: Served,
) -> None:
    """Read the request headers once and answer, noting what was sent in `served`."""
    single: dict[bytes, bytes] = {}
    lists: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        if name in _SINGLE_HEADERS:
            # §5.3: several lines of a field are one comma list; none of these fields is a
            # list, so that value is invalid (Range and If-Range alike: a plain 200).
            seen = single.get(name)
            single[name] = value if seen is None else b"%s, %s" % (seen, value)
        elif name in _LIST_HEADERS:
            lists.setdefault(name, []).append(value)
    common = config.common_headers(single.get(b"origin"))
    method = scope["method"]
    if method == "GET" or method == "HEAD":
        result = await _serve(config, scope, opener, method, single, lists, common)
    elif method == "OPTIONS":
        result = _preflight(config, single.get(b"origin"))
    else:
        result = answer.method_not_allowed(common, ALLOW)
    await send_answer(result, send, receive, served, head=method == "HEAD")


def _token(rest: str) -> str:
    """The token of a mounted path (`/TOKEN/` for `/media/TOKEN`); 404 unless exactly one segment.

    Litestar's own 404 answers, like for any unknown path of the app."""
    token = rest[1:-1] if rest.startswith("/") and rest.endswith("/") else ""
    if not token or "/" in token:
        raise NotFoundException()
    return token


def _preflight(config: StreamConfig, origin: bytes | None) -> answer.Answer:
    """CORS preflight: GET and HEAD with range and conditional headers; the token is not read."""
    headers = [
        *config.cors_headers(origin),
        (b"allow", ALLOW),
        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
        (b"access-control-allow-headers", ALLOWED_REQUEST_HEADERS.encode()),
        (b"access-control-max-age", b"%d" % PREFLIGHT_MAX_AGE_S),
    ]
    return answer.Answer(204, headers)


async def _serve(
    config: StreamConfig,
    scope: HTTPScope,
    opener: Opener,
    method: str,
    single: dict[bytes, bytes],
    lists: dict[bytes, list[bytes]],
    common: answer.HeaderPairs,
) -> answer.Answer:
    # Read like every handler's `service` dependency (server/app.py), without Litestar's
    # per-request dependency resolution, which this raw route skips.
    source: StreamSource = scope["app"].state.service.streams
    try:
        target = await opener(source)
    except MediaError as exc:
        return _refusal(exc, common)
    if target is None:
        return answer.not_found(common)
    rep = answer.representation(target, common, config.clock())
    validators = Validators(etag=target.etag.strip('"'), last_modified=target.last_modified)
    if lists:
        conditions = {
            name.decode("latin-1"): b", ".join(values).decode("latin-1")
            for name, values in lists.items()
        }
        verdict = evaluate(method, conditions, validators)
        if verdict is Verdict.PRECONDITION_FAILED:
            return answer.precondition_failed(rep)
        if verdict is Verdict.NOT_MODIFIED:
            return answer.not_modified(rep)
    if method == "HEAD":
        # RFC 9110 §14.2: Range is defined for GET only, so HEAD describes the whole object.
        return answer.head_response(rep)
    range_header = _text(single.get(b"range"))
    if range_header is not None and not if_range_allows(_text(single.get(b"if-range")), validators):
        range_header = None  # §13.1.5: a stale validator turns a range request into a full GET
    try:
        return await _body_answer(source, rep, target, range_header)
    except MediaError as exc:
        # The object went away after the lookup (deleted meanwhile): the same 403 as any
        # unusable URL, never a 500 (docs/security.md §1.13).
        return _refusal(exc, common)


def _refusal(exc: MediaError, common: answer.HeaderPairs) -> answer.Answer:
    """503 when a dependency is down; otherwise every way a URL can be unusable looks alike to
    the caller: one 403 (docs/security.md §1.13). Bugs propagate (500)."""
    if isinstance(exc, Unavailable):
        return answer.unavailable(common, exc)
    if not exc.expected:
        raise exc
    return answer.forbidden(common)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _body_answer(
    source: StreamSource, rep: answer.Representation, target: StreamTarget, range_header: str | None
) -> answer.Answer:
    plan = parse_range(range_header, target.size)
    if plan.outcome is RangeOutcome.UNSATISFIABLE:
        return answer.range_not_satisfiable(rep)
    if plan.outcome is RangeOutcome.WHOLE:
        first, rest = await _open(source, target.storage_key, 0, target.size)
        return answer.whole_response(rep, first, await _unless_complete(first, rest, target.size))
    head_range = plan.ranges[0]
    first, rest = await _open(source, target.storage_key, head_range.start, head_range.length)
    if len(plan.ranges) == 1:
        remaining = await _unless_complete(first, rest, head_range.length)
        return answer.single_range_response(rep, head_range, first, remaining)
    return answer.multipart_response(rep, plan.ranges, source.read_object, first, rest)


async def _unless_complete(
    first: bytes, rest: AsyncIterator[bytes], length: int
) -> AsyncIterator[bytes] | None:
    """None (and the read closed) when `first` already holds the whole answer.

    The common small range then goes out as one body message: no disconnect watcher and at
    most one chunk (<= 1 MiB) in memory."""
    if len(first) < length:
        return rest
    await answer.close_readers(rest)
    return None


async def _open(
    source: StreamSource, key: str, start: int, length: int
) -> tuple[bytes, AsyncIterator[bytes]]:
    """Start a read and take its first chunk, so a storage outage still gets a clean 503."""
    if length == 0:
        return b"", _nothing()
    chunks = source.read_object(key, start, length)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return b"", chunks
    except BaseException:
        await answer.close_readers(chunks)
        raise
    return first, chunks


async def _nothing() -> AsyncIterator[bytes]:
    """An empty body."""
    return
    yield  # pragma: no cover - makes this an async generator
