"""Litestar handlers for GET, HEAD and OPTIONS `/media/{token}`: signed-URL streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from litestar import Request, Response, get, head, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from media.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, Unavailable
from media.models import StreamTarget
from media.service import utc_now
from streaming import responses as answer
from streaming.preconditions import Validators, Verdict, evaluate, if_range_allows
from streaming.ranges import RangeOutcome, parse_range

MEDIA_PATH = "/media/{token:str}"
PREFLIGHT_MAX_AGE_S = 600
ALLOWED_METHODS = "GET, HEAD"
ALLOWED_REQUEST_HEADERS = (
    "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since"
)
_CONDITIONAL_HEADERS = ("if-match", "if-unmodified-since", "if-none-match", "if-modified-since")
# Every way a URL can be unusable looks alike to the caller (docs/security.md §1.13).
_REJECTED = (Forbidden, NotFound, Unauthenticated, InvalidInput, Conflict)


class StreamSource(Protocol):
    """What the streaming routes need from the core; the app puts one in `app.state.stream_source`.

    `open_stream` raises InvalidSignature, Forbidden or NotFound for any URL that must not be
    served (all answered with the same 403) and Unavailable when a dependency is down (503).
    `read_object` yields bounded chunks of `length` bytes from `start`; closing it stops the read.
    """

    async def open_stream(self, token: str) -> StreamTarget:
        """Verify a token and describe the object it grants."""
        ...

    def read_object(self, storage_key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream `length` bytes of an object from offset `start`."""
        ...


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Per-app settings of the streaming routes."""

    cors_origins: tuple[str, ...] = ("*",)
    clock: Callable[[], datetime] = utc_now

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """CORS headers for a request from `origin`; never credentials."""
        if "*" in self.cors_origins:
            return {"access-control-allow-origin": "*"}
        headers = {"vary": "Origin"}
        if origin is not None and origin in self.cors_origins:
            headers["access-control-allow-origin"] = origin
        return headers


def stream_route_handlers(
    cors_origins: tuple[str, ...] = ("*",), *, clock: Callable[[], datetime] = utc_now
) -> list[HTTPRouteHandler]:
    """GET, HEAD and OPTIONS handlers for `/media/{token}`, to pass to the Litestar app."""
    config = StreamConfig(cors_origins=tuple(cors_origins), clock=clock)
    opt = {"stream_config": config}
    # OPTIONS comes first: Litestar adds its own OPTIONS handler to a path registered without one.
    return [
        route(
            MEDIA_PATH,
            http_method=[HttpMethod.OPTIONS],
            opt=opt,
            name="media-options",
            include_in_schema=False,
        )(preflight_media),
        get(MEDIA_PATH, opt=opt, name="media-get", include_in_schema=False)(get_media),
        head(MEDIA_PATH, opt=opt, name="media-head", include_in_schema=False)(head_media),
    ]


async def get_media(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """Serve the bytes a signed URL grants, with ranges and conditionals."""
    return await _serve(request, token, is_head=False)


async def head_media(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[None]:
    """Answer with exactly the GET headers, without a body and without reading storage."""
    return cast("Response[None]", await _serve(request, token, is_head=True))


async def preflight_media(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
    """CORS preflight: GET and HEAD with range and conditional headers; the token is not read."""
    config = _config(request)
    headers = {
        **config.cors_headers(request.headers.get("origin")),
        "allow": "GET, HEAD, OPTIONS",
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_REQUEST_HEADERS,
        "access-control-max-age": str(PREFLIGHT_MAX_AGE_S),
    }
    return Response(b"", status_code=204, headers=headers)


def _config(request: Request[Any, Any, Any]) -> StreamConfig:
    return cast("StreamConfig", request.route_handler.opt["stream_config"])


def _common_headers(request: Request[Any, Any, Any], config: StreamConfig) -> dict[str, str]:
    cors = config.cors_headers(request.headers.get("origin"))
    return {
        **answer.SECURITY_HEADERS,
        **cors,
        "access-control-expose-headers": answer.EXPOSED_HEADERS,
    }


def _combined(request: Request[Any, Any, Any], name: str) -> str | None:
    """All field lines of a list header joined by commas (RFC 9110 §5.3)."""
    values = request.headers.getall(name, [])
    return ", ".join(values) if values else None


async def _serve(request: Request[Any, Any, Any], token: str, *, is_head: bool) -> Response[Any]:
    config = _config(request)
    common = _common_headers(request, config)
    source = cast("StreamSource", request.app.state.stream_source)
    try:
        target = await source.open_stream(token)
    except _REJECTED:
        return answer.forbidden(common)
    except Unavailable as exc:
        return answer.unavailable(common, exc.dependency)
    rep = answer.representation(target, common, config.clock())
    validators = Validators(etag=target.etag.strip('"'), last_modified=target.last_modified)
    conditions = {
        name: value for name in _CONDITIONAL_HEADERS if (value := _combined(request, name))
    }
    verdict = evaluate(request.method, conditions, validators)
    if verdict is Verdict.PRECONDITION_FAILED:
        return answer.precondition_failed(rep)
    if verdict is Verdict.NOT_MODIFIED:
        return answer.not_modified(rep)
    if is_head:
        # RFC 9110 §14.2: Range is defined for GET only, so HEAD describes the whole object.
        return answer.head_response(rep)
    range_header = request.headers.get("range")
    if not if_range_allows(request.headers.get("if-range"), validators):
        range_header = None  # §13.1.5: a stale validator turns a range request into a full GET
    try:
        return await _body_response(source, rep, target, range_header)
    except _REJECTED:
        # The object went away after the lookup (deleted meanwhile): the same 403 as any
        # unusable URL, never a 500 (docs/security.md §1.13).
        return answer.forbidden(common)
    except Unavailable as exc:
        return answer.unavailable(common, exc.dependency)


async def _body_response(
    source: StreamSource, rep: answer.Representation, target: StreamTarget, range_header: str | None
) -> Response[Any]:
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

    The common small range then goes out as one plain response: no streaming task group, no
    disconnect listener, at most one chunk (<= 1 MiB) in memory."""
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
