"""Building the answers of the streaming endpoint: 200, 206, multipart, 304, 403, 412, 416, 503."""

from __future__ import annotations

import functools
import math
import secrets
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

import anyio
from litestar import Response
from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from media.models import StreamTarget
from streaming.ranges import ByteRange, unsatisfied_content_range

Reader = Callable[[str, int, int], AsyncIterator[bytes]]

# Bodies of error answers: fixed, short, the same whatever check failed (docs/security.md §1.13).
FORBIDDEN_BODY = b'{"error":"forbidden"}'
PRECONDITION_FAILED_BODY = b'{"error":"precondition_failed"}'
RANGE_NOT_SATISFIABLE_BODY = b'{"error":"range_not_satisfiable"}'
RETRY_AFTER_S = 5
EXPOSED_HEADERS = "Content-Range, Accept-Ranges, Content-Length, ETag, Content-Disposition"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox",
    "referrer-policy": "no-referrer",  # docs/security.md §1.20: the URL is a credential
}
# RFC 5987 attr-char without ALPHA / DIGIT, which quote() always keeps.
_ATTR_CHAR_EXTRA = "!#$&+-.^_`|~"


# Pure and asked for the same few objects over and over by a playing video: memoized.
@functools.lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """IMF-fixdate of an instant (RFC 9110 §5.6.7); naive values are taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return format_datetime(aware.astimezone(UTC), usegmt=True)


def quoted_etag(etag: str) -> str:
    """The strong entity-tag of an unquoted storage ETag."""
    return f'"{etag.strip(chr(34))}"'


@functools.lru_cache(maxsize=4096)
def content_disposition(disposition: str, file_name: str) -> str:
    """`inline`/`attachment` with an ASCII fallback and an RFC 5987 UTF-8 file name (RFC 6266)."""
    kind = "attachment" if disposition == "attachment" else "inline"
    fallback = _ascii_file_name(file_name)
    encoded = quote(file_name, safe=_ATTR_CHAR_EXTRA, encoding="utf-8")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _ascii_file_name(file_name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", file_name)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    # quoted-string must not carry quotes, backslashes or controls; slashes would name a path.
    cleaned = "".join(
        "_" if ch in '"\\/' or not " " <= ch <= "~" else ch for ch in ascii_only
    ).strip()
    return cleaned or "download"


def cache_control(expires_at: datetime, now: datetime) -> str:
    """`private, max-age` no longer than the URL lives (docs/security.md §1.20)."""
    remaining = max(0, math.floor((expires_at - now).total_seconds()))
    return f"private, max-age={remaining}"


@dataclass(frozen=True, slots=True)
class Representation:
    """The headers every answer about one object shares, computed once per request."""

    target: StreamTarget
    common: dict[str, str]  # security + CORS headers, on every answer
    validators: dict[str, str]  # ETag, Last-Modified, Cache-Control (+ Vary) for 200/206/304

    def headers(self, **extra: str) -> dict[str, str]:
        """Common and validator headers plus `extra` (names in lower case)."""
        return {**self.common, **self.validators, **extra}

    def entity_headers(self) -> dict[str, str]:
        """Headers of a 200 for the whole object, shared by GET and HEAD."""
        return self.headers(
            **{
                "accept-ranges": "bytes",
                "content-length": str(self.target.size),
                "content-type": self.target.content_type,
                "content-disposition": content_disposition(
                    self.target.disposition, self.target.file_name
                ),
            }
        )


def representation(target: StreamTarget, common: dict[str, str], now: datetime) -> Representation:
    """Collect the headers of one object for answers to one request."""
    validators = {
        "etag": quoted_etag(target.etag),
        "last-modified": http_date(target.last_modified),
        "cache-control": cache_control(target.expires_at, now),
    }
    return Representation(target=target, common=common, validators=validators)


def not_modified(rep: Representation) -> Response[bytes]:
    """304: validators and caching headers, no body (RFC 9110 §15.4.5)."""
    return Response(b"", status_code=304, headers=rep.headers())


def precondition_failed(rep: Representation) -> Response[bytes]:
    """412 with a short fixed body."""
    headers = {**rep.common, "cache-control": "no-store"}
    return _short(412, PRECONDITION_FAILED_BODY, headers)


def range_not_satisfiable(rep: Representation) -> Response[bytes]:
    """416 with `Content-Range: bytes */size` (RFC 9110 §15.5.17)."""
    headers = rep.headers(
        **{"content-range": unsatisfied_content_range(rep.target.size), "accept-ranges": "bytes"}
    )
    return _short(416, RANGE_NOT_SATISFIABLE_BODY, headers)


def forbidden(common: dict[str, str]) -> Response[bytes]:
    """The one 403 of every rejected URL: fixed body, never the reason."""
    return _short(403, FORBIDDEN_BODY, {**common, "cache-control": "no-store"})


def unavailable(common: dict[str, str], dependency: str) -> Response[bytes]:
    """503 with Retry-After and a machine-readable code (docs/security.md INV-5)."""
    code = dependency if dependency in ("storage", "database") else "service"
    body = f'{{"error":"{code}_unavailable"}}'.encode()
    headers = {**common, "cache-control": "no-store", "retry-after": str(RETRY_AFTER_S)}
    return _short(503, body, headers)


def _short(status: int, body: bytes, headers: dict[str, str]) -> Response[bytes]:
    headers = {**headers, "content-length": str(len(body))}
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def head_response(rep: Representation) -> Response[bytes]:
    """HEAD: exactly the headers of the GET for the whole object, no body, no storage read."""
    headers = rep.entity_headers()
    return Response(b"", status_code=200, headers=headers, media_type=headers["content-type"])


def whole_response(
    rep: Representation, first: bytes, rest: AsyncIterator[bytes] | None
) -> Response[bytes] | Stream:
    """200 with the whole object; `first` is the chunk already read to surface storage errors.

    `rest` is None when `first` already holds every byte of the answer."""
    headers = rep.entity_headers()
    if rest is None:
        return Response(first, status_code=200, headers=headers, media_type=headers["content-type"])
    return _stream(200, headers, _chain(first, rest), rest)


def single_range_response(
    rep: Representation, byte_range: ByteRange, first: bytes, rest: AsyncIterator[bytes] | None
) -> Response[bytes] | Stream:
    """206 with one range (RFC 9110 §15.3.7.1); `rest` None when `first` is the whole range."""
    headers = rep.entity_headers()
    headers["content-length"] = str(byte_range.length)
    headers["content-range"] = byte_range.content_range(rep.target.size)
    if rest is None:
        return Response(first, status_code=206, headers=headers, media_type=headers["content-type"])
    return _stream(206, headers, _chain(first, rest), rest)


def multipart_response(
    rep: Representation,
    ranges: Sequence[ByteRange],
    read: Reader,
    first: bytes,
    rest: AsyncIterator[bytes],
) -> Stream:
    """206 multipart/byteranges with an exact Content-Length (RFC 9110 §14.6)."""
    boundary = secrets.token_hex(16)
    heads = [_part_head(boundary, rep, r, index == 0) for index, r in enumerate(ranges)]
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(len(h) for h in heads) + sum(r.length for r in ranges) + len(tail)
    headers = rep.entity_headers()
    headers["content-length"] = str(length)
    headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
    body = _multipart_body(rep.target.storage_key, ranges, heads, tail, read, first, rest)
    return _stream(206, headers, body, rest)


def _part_head(boundary: str, rep: Representation, byte_range: ByteRange, first: bool) -> bytes:
    # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, not the data.
    lead = "" if first else "\r\n"
    return (
        f"{lead}--{boundary}\r\n"
        f"Content-Type: {rep.target.content_type}\r\n"
        f"Content-Range: {byte_range.content_range(rep.target.size)}\r\n\r\n"
    ).encode("latin-1")


async def _multipart_body(
    key: str,
    ranges: Sequence[ByteRange],
    heads: Sequence[bytes],
    tail: bytes,
    read: Reader,
    first: bytes,
    rest: AsyncIterator[bytes],
) -> AsyncIterator[bytes]:
    yield heads[0]
    async with aclosing(_chain(first, rest)) as part:
        async for chunk in part:
            yield chunk
    for head, byte_range in zip(heads[1:], ranges[1:], strict=True):
        yield head
        # aclosing: an `async for` left at a yield does not close the part it was reading.
        async with aclosing(_chain(b"", read(key, byte_range.start, byte_range.length))) as part:
            async for chunk in part:
                yield chunk
    yield tail


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Yield `first`, then `rest`; closes `rest` however the consumer stops (security.md INV-4)."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        # Shielded: inside a cancelled scope every await of the reader's cleanup would be
        # cancelled too, leaving its file or storage body open.
        with anyio.CancelScope(shield=True):
            await close_readers(rest)


def _stream(
    status: int, headers: dict[str, str], body: AsyncIterator[bytes], source: AsyncIterator[bytes]
) -> Stream:
    # Litestar cancels the send loop on disconnect and leaves the body suspended at a yield (or
    # never started); closing both after the response returns ends the storage read at once.
    return Stream(
        body,
        status_code=status,
        headers=headers,
        media_type=headers["content-type"],
        background=BackgroundTask(close_readers, body, source),
    )


async def close_readers(*iterators: AsyncIterator[bytes]) -> None:
    """Close async generators in order; closing a finished one does nothing."""
    for iterator in iterators:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
