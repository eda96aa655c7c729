"""A GetObject body read straight into reused buffers, in batches, one worker thread at a time.

botocore's `read(n)` goes through urllib3 and `http.client`, which allocate a zeroed bytearray per
call, copy it into `bytes`, and queue that in urllib3's buffer: two copies and an allocation per
piece on top of the socket read, about half of what reading from the store costs the relay
(bench/README.md). Here the socket's bytes land in a `Recycler` buffer once, through the
`readinto` of the `http.client` response under the body, the same object botocore itself reaches
into to set socket timeouts. Where a body has no such response, botocore's own `readinto` is used:
the same bytes and checks, one more copy.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import (
    BotoCoreError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from media.storage.buffers import Recycler

if TYPE_CHECKING:
    from botocore.response import StreamingBody


def wire_response(body: Any) -> http.client.HTTPResponse | None:
    """The `http.client` response under a botocore body read through urllib3, else None."""
    return _wire_of(getattr(body, "_raw_stream", None))


def _wire_of(raw: Any) -> http.client.HTTPResponse | None:
    response = getattr(raw, "_fp", None)
    return response if isinstance(response, http.client.HTTPResponse) else None


class BodyReader:
    """Reads up to `expected` bytes of a GetObject body into buffers.

    With `announced` (the answer's length is known from its Content-Length or Content-Range,
    capped at what was asked), fewer bytes before the store closes the body is
    IncompleteReadError, as botocore's own reads raise it; a body with neither ends where the
    store ends it. A socket timeout is ReadTimeoutError and any other socket failure
    ResponseStreamingError. After the last byte (and a chunked body's closing chunk) the
    connection goes back to the pool unless the store closes it; `close()` before that, or after
    `interrupt()`, drops the connection rather than draining it."""

    __slots__ = (
        "_announced",
        "_body",
        "_ended",
        "_endpoint",
        "_expected",
        "_raw",
        "_read",
        "_readinto",
        "_spoiled",
        "_wire",
    )

    def __init__(
        self, body: StreamingBody, expected: int, *, announced: bool = True, endpoint: str = ""
    ) -> None:
        self._body = body
        self._expected = expected
        self._announced = announced
        self._endpoint = endpoint
        self._read = 0
        self._ended = False
        self._spoiled = False
        self._raw: Any = getattr(
            body, "_raw_stream", None
        )  # urllib3's response, as botocore reads it
        self._wire = _wire_of(self._raw)
        # botocore's stubs type `readinto` for files; it takes any writable buffer.
        self._readinto = cast(
            "Callable[[memoryview], int]",
            self._wire.readinto if self._wire is not None else body.readinto,
        )

    @property
    def done(self) -> bool:
        """True once the body is read to its end."""
        return self._ended or self._read >= self._expected

    def batch(self, buffers: Recycler, budget: int) -> list[bytearray]:
        """Up to `budget` bytes as buffers of `buffers.size` bytes (the last may be shorter);
        empty at the end of the body."""
        blocks: list[bytearray] = []
        budget = 0 if self._ended else min(budget, self._expected - self._read)
        while budget > 0:
            size = min(buffers.size, budget)
            whole = size == buffers.size
            buffer = buffers.take() if whole else bytearray(size)
            got = self._fill(buffer)
            if got < size:
                # The end of a body sent without a length: a shorter piece, not reused.
                self._ended = True
                if got:
                    del buffer[got:]
                    blocks.append(buffer)
                break
            if whole:
                buffers.given(buffer)
            blocks.append(buffer)
            budget -= size
        if self._read == self._expected and self._announced:
            self._read_last_chunk()
        return blocks

    def _read_last_chunk(self) -> None:
        """Past the last announced byte of a chunked body, take its closing chunk (here, in the
        reading thread), so that the connection can be used again; anything more keeps it
        from the pool."""
        wire = self._wire
        if wire is None or not wire.chunked or wire.isclosed():
            return
        try:
            if wire.readinto(bytearray(1)):
                self._spoiled = True  # more than announced: not a connection to reuse
        except (OSError, http.client.HTTPException):
            self._spoiled = True

    def _fill(self, buffer: bytearray) -> int:
        got = 0
        try:
            with memoryview(buffer) as view:
                while got < len(view):
                    with view[got:] as rest:
                        count = self._readinto(rest)
                    if not count:
                        break
                    got += count
        except BotoCoreError:
            raise  # botocore's own readinto already said what failed (some are OSErrors too)
        except TimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=self._endpoint, error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ResponseStreamingError(error=exc) from exc
        self._read += got
        if got < len(buffer) and self._announced:
            raise IncompleteReadError(actual_bytes=self._read, expected_bytes=self._expected)
        return got

    def interrupt(self) -> None:
        """Wake a read that waits on the store, from another thread: it ends short at once.
        The connection is never given back to the pool after this."""
        self._spoiled = True
        shutdown = getattr(self._raw, "shutdown", None)
        if shutdown is not None:
            # Not possible once the body was read whole (nothing waits then) or closed.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                shutdown()

    def close(self) -> None:
        """Give the connection back when the body was read to its end (the length it announced,
        or the end of a chunked body) and the store keeps the connection open; else drop it."""
        wire = self._wire
        whole = self._ended or (self._announced and self._read == self._expected)
        if (
            wire is not None
            and whole
            and not self._spoiled
            and wire.isclosed()  # http.client read the body to its end, trailer included
            and not wire.will_close
        ):
            self._raw.release_conn()
        self._body.close()
