"""Building the answers of the streaming endpoint: 200, 206, multipart, 304, 403, 412, 416, 503.

Answers are plain values with ASGI header lists (byte pairs), not framework response objects: the
route sends them itself (streaming/routes.py), and every header that does not change between
requests is encoded once (per process, per origin or per object), never per request.
"""

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

from media.errors import Unavailable
from media.models import StreamTarget
from streaming.ranges import ByteRange, unsatisfied_content_range

Reader = Callable[[str, int, int], AsyncIterator[bytes]]
Headers = list[tuple[bytes, bytes]]
HeaderPairs = tuple[tuple[bytes, bytes], ...]

# Bodies of error answers: fixed, short, the same whatever check failed (docs/security.md §1.13).
FORBIDDEN_BODY = b'{"error":"forbidden"}'
PRECONDITION_FAILED_BODY = b'{"error":"precondition_failed"}'
RANGE_NOT_SATISFIABLE_BODY = b'{"error":"range_not_satisfiable"}'
METHOD_NOT_ALLOWED_BODY = b'{"error":"method_not_allowed"}'
NOT_FOUND_BODY = b'{"error":"not_found"}'
EXPOSED_HEADERS = "Content-Range, Accept-Ranges, Content-Length, ETag, Content-Disposition"
SECURITY_HEADERS: HeaderPairs = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"sandbox"),
    (b"referrer-policy", b"no-referrer"),  # docs/security.md §1.20: the URL is a credential
)
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_ACCEPT_RANGES = (b"accept-ranges", b"bytes")
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


def cache_control(expires_at: datetime, now: datetime) -> bytes:
    """`private, max-age` no longer than the URL lives (docs/security.md §1.20)."""
    remaining = max(0, math.floor((expires_at - now).total_seconds()))
    return b"private, max-age=%d" % remaining


@functools.lru_cache(maxsize=4096)
def _object_headers(
    etag: str, last_modified: datetime, content_type: str, disposition: str, file_name: str
) -> tuple[HeaderPairs, HeaderPairs]:
    """(validators, entity headers) of one object, encoded once while it is being played."""
    validators = (
        (b"etag", quoted_etag(etag).encode("latin-1")),
        (b"last-modified", http_date(last_modified).encode("latin-1")),
    )
    entity = (
        (b"content-type", content_type.encode("latin-1")),
        (
            b"content-disposition",
            content_disposition(disposition, file_name).encode("latin-1"),
        ),
    )
    return validators, entity


@dataclass(slots=True)
class Answer:
    """One response: status, headers, a first body part and, when more follows, the rest.

    `rest` and `source` are set together: `source` is the storage read inside `rest`, closed by
    whoever sends the answer however the send ends (docs/security.md INV-4)."""

    status: int
    headers: Headers
    body: bytes = b""
    rest: AsyncIterator[bytes] | None = None
    source: AsyncIterator[bytes] | None = None
    multipart: bool = False  # a multipart/byteranges body

    def take_body(self) -> bytes:
        """The first body part, handed over once: the answer keeps no reference to it, so a
        long read may fill its buffer again once it is sent (media/storage/buffers.py)."""
        body, self.body = self.body, b""
        return body


@dataclass(frozen=True, slots=True)
class Representation:
    """The headers every answer about one object shares, computed once per request."""

    target: StreamTarget
    common: HeaderPairs  # security + CORS headers, on every answer
    validators: HeaderPairs  # ETag, Last-Modified, Cache-Control (+ Vary) for 200/206/304
    entity: HeaderPairs  # Content-Type, Content-Disposition

    def entity_headers(self, length: int) -> Headers:
        """Headers of a 200 (or 206 for `length` bytes), shared by GET and HEAD."""
        return [
            *self.common,
            *self.validators,
            _ACCEPT_RANGES,
            (b"content-length", b"%d" % length),
            *self.entity,
        ]


def representation(target: StreamTarget, common: HeaderPairs, now: datetime) -> Representation:
    """Collect the headers of one object for answers to one request."""
    validators, entity = _object_headers(
        target.etag, target.last_modified, target.content_type, target.disposition, target.file_name
    )
    caching = (b"cache-control", cache_control(target.expires_at, now))
    return Representation(
        target=target, common=common, validators=(*validators, caching), entity=entity
    )


def not_modified(rep: Representation) -> Answer:
    """304: validators and caching headers, no body (RFC 9110 §15.4.5)."""
    return Answer(304, [*rep.common, *rep.validators])


def precondition_failed(rep: Representation) -> Answer:
    """412 with a short fixed body."""
    return _short(412, PRECONDITION_FAILED_BODY, [*rep.common, _NO_STORE])


def range_not_satisfiable(rep: Representation) -> Answer:
    """416 with `Content-Range: bytes */size` (RFC 9110 §15.5.17)."""
    content_range = unsatisfied_content_range(rep.target.size).encode("ascii")
    headers = [*rep.common, *rep.validators, (b"content-range", content_range), _ACCEPT_RANGES]
    return _short(416, RANGE_NOT_SATISFIABLE_BODY, headers)


def forbidden(common: HeaderPairs) -> Answer:
    """The one 403 of every rejected URL: fixed body, never the reason."""
    return _short(403, FORBIDDEN_BODY, [*common, _NO_STORE])


def not_found(common: HeaderPairs) -> Answer:
    """404: a name under a valid token that names nothing (or a path no token route has)."""
    return _short(404, NOT_FOUND_BODY, [*common, _NO_STORE])


def unavailable(common: HeaderPairs, exc: Unavailable) -> Answer:
    """503 with Retry-After and a machine-readable code (docs/security.md INV-5)."""
    code = exc.dependency if exc.dependency in ("storage", "database") else "service"
    body = f'{{"error":"{code}_unavailable"}}'.encode()
    headers = [*common, _NO_STORE, (b"retry-after", b"%d" % exc.retry_after_s)]
    return _short(503, body, headers)


def method_not_allowed(common: HeaderPairs, allow: bytes) -> Answer:
    """405 naming the methods the route answers."""
    return _short(405, METHOD_NOT_ALLOWED_BODY, [*common, _NO_STORE, (b"allow", allow)])


def _short(status: int, body: bytes, headers: Headers) -> Answer:
    headers += [(b"content-length", b"%d" % len(body)), _JSON]
    return Answer(status, headers, body)


def head_response(rep: Representation) -> Answer:
    """HEAD: exactly the headers of the GET for the whole object, no body, no storage read."""
    return Answer(200, rep.entity_headers(rep.target.size))


def whole_response(rep: Representation, first: bytes, rest: AsyncIterator[bytes] | None) -> Answer:
    """200 with the whole object; `first` is the chunk already read to surface storage errors.

    `rest` is None when `first` already holds every byte of the answer."""
    headers = rep.entity_headers(rep.target.size)
    if rest is None:
        return Answer(200, headers, first)
    return Answer(200, headers, first, rest, rest)


def single_range_response(
    rep: Representation, byte_range: ByteRange, first: bytes, rest: AsyncIterator[bytes] | None
) -> Answer:
    """206 with one range (RFC 9110 §15.3.7.1); `rest` None when `first` is the whole range."""
    headers = rep.entity_headers(byte_range.length)
    headers.append((b"content-range", byte_range.content_range(rep.target.size).encode("ascii")))
    if rest is None:
        return Answer(206, headers, first)
    return Answer(206, headers, first, rest, rest)


def multipart_response(
    rep: Representation,
    ranges: Sequence[ByteRange],
    read: Reader,
    first: bytes,
    rest: AsyncIterator[bytes],
) -> Answer:
    """206 multipart/byteranges with an exact Content-Length (RFC 9110 §14.6)."""
    boundary = secrets.token_hex(16)
    heads = [_part_head(boundary, rep, r, index == 0) for index, r in enumerate(ranges)]
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(len(h) for h in heads) + sum(r.length for r in ranges) + len(tail)
    headers = rep.entity_headers(length)
    content_type = f"multipart/byteranges; boundary={boundary}".encode("ascii")
    headers = [
        (name, content_type if name == b"content-type" else value) for name, value in headers
    ]
    body = _multipart_body(rep.target.storage_key, ranges, heads, tail, read, first, rest)
    return Answer(206, headers, b"", body, rest, multipart=True)


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


async def close_readers(*iterators: AsyncIterator[bytes]) -> None:
    """Close async generators in order; closing a finished one does nothing."""
    for iterator in iterators:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
