"""A Storage that records every call: `media_storage_operations_total`, durations and spans."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import TypeVar

from opentelemetry.trace import Span

from media.errors import NotFound, TooLarge, Unavailable
from media.models import ObjectInfo, PartInfo, PartSlot
from media.storage.base import Storage
from media.telemetry import tracing
from media.telemetry.metrics import STORAGE_CALLS, STORAGE_DURATION, Children
from media.telemetry.tally import CounterTally, counter_tally, histogram_tally

T = TypeVar("T")
OPERATIONS = (
    "stat",
    "read",
    "write",
    "delete",
    "keys",
    "sweep",
    "create_multipart",
    "write_part",
    "list_parts",
    "complete_multipart",
    "abort_multipart",
    "ping",
)


def outcome_of(exc: BaseException | None) -> str:
    """A bounded label for how a call ended."""
    if exc is None:
        return "ok"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, TooLarge):
        return "too_large"
    if isinstance(exc, Unavailable):
        return "unavailable"
    if not isinstance(exc, Exception):
        return "cancelled"
    return "error"


class ObservedStorage:
    """Wraps a backend; the metric children of each operation are bound once, here."""

    def __init__(self, inner: Storage, backend: str) -> None:
        self.inner = inner  # the same objects, byte for byte
        self._backend = backend
        self._calls: Children[tuple[str, str], CounterTally] = Children(
            lambda key: counter_tally(STORAGE_CALLS.labels(backend, *key))
        )
        self._durations = {
            op: histogram_tally(STORAGE_DURATION.labels(backend, op)) for op in OPERATIONS
        }
        self._attributes = {
            op: {"media.storage.backend": backend, "media.storage.operation": op}
            for op in OPERATIONS
        }

    async def _observe(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            with tracing.span(f"storage {op}", self._attributes[op]):
                result = await call()
        except BaseException as exc:
            self._count(op, exc)
            raise
        finally:
            self._durations[op].observe(time.perf_counter() - started)
        self._calls[(op, "ok")].add()
        return result

    def _count(self, op: str, exc: BaseException | None) -> None:
        self._calls[(op, outcome_of(exc))].add()

    async def stat(self, key: str) -> ObjectInfo:
        """See Storage.stat."""
        return await self._observe("stat", lambda: self.inner.stat(key))

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """See Storage.read; the duration is the time to the first chunk."""
        chunks = self.inner.read(key, start, length)
        # Not a current span: the body is consumed over many awaits, maybe in another task.
        current = tracing.start_span("storage read", self._attributes["read"])
        return _ObservedRead(self, chunks, current)

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int
    ) -> ObjectInfo:
        """See Storage.write."""
        return await self._observe(
            "write",
            lambda: self.inner.write(key, chunks, content_type=content_type, max_bytes=max_bytes),
        )

    async def delete(self, key: str) -> None:
        """See Storage.delete."""
        await self._observe("delete", lambda: self.inner.delete(key))

    async def keys(self) -> list[str]:
        """See Storage.keys."""
        return await self._observe("keys", self.inner.keys)

    async def sweep_partial(self, older_than: datetime, keep: Collection[str] = ()) -> int:
        """See Storage.sweep_partial."""
        return await self._observe("sweep", lambda: self.inner.sweep_partial(older_than, keep))

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """See Storage.create_multipart."""
        return await self._observe(
            "create_multipart", lambda: self.inner.create_multipart(key, content_type=content_type)
        )

    async def write_part(
        self, key: str, multipart_id: str, part: PartSlot, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """See Storage.write_part."""
        return await self._observe(
            "write_part", lambda: self.inner.write_part(key, multipart_id, part, chunks)
        )

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """See Storage.list_parts."""
        return await self._observe("list_parts", lambda: self.inner.list_parts(key, multipart_id))

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """See Storage.complete_multipart."""
        return await self._observe(
            "complete_multipart", lambda: self.inner.complete_multipart(key, multipart_id, parts)
        )

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """See Storage.abort_multipart."""
        await self._observe(
            "abort_multipart", lambda: self.inner.abort_multipart(key, multipart_id)
        )

    async def ping(self) -> None:
        """See Storage.ping."""
        await self._observe("ping", self.inner.ping)

    async def close(self) -> None:
        """See Storage.close."""
        await self.inner.close()


class _ObservedRead:
    """The chunks of one read, timed to the first chunk and counted once when done.

    A plain async iterator rather than an async generator: no generator frame per chunk and no
    event-loop bookkeeping of a generator per request (this is the byte path)."""

    __slots__ = ("_chunks", "_done", "_first", "_span", "_started", "_storage")

    def __init__(
        self, storage: ObservedStorage, chunks: AsyncIterator[bytes], span: Span | None
    ) -> None:
        self._storage = storage
        self._chunks = chunks
        self._span = span
        self._started = time.perf_counter()
        self._first = True
        self._done = False

    def __aiter__(self) -> _ObservedRead:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._finish(None)
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        if self._first:
            self._first = False
            self._storage._durations["read"].observe(time.perf_counter() - self._started)
        return chunk

    async def aclose(self) -> None:
        """Stop reading (a reader that stops early is not a storage failure)."""
        self._finish(None)
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    def _finish(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        if self._first and exc is None:
            self._storage._durations["read"].observe(time.perf_counter() - self._started)
        self._storage._count("read", exc)
        if self._span is not None:
            if exc is not None:
                tracing.mark_failed(self._span, exc)
            self._span.end()
