"""A long encrypted read of a local file, opened by a thread of its own one batch ahead.

The thread reads the stored bytes (os.preadv into one reused buffer) and opens them with a
StreamOpener, batch after batch, publishing each batch's plaintext buffers whole; the event loop
only takes them and sends. The thread starts the next batch as soon as fewer than a batch of
buffers wait to be sent, without waiting for the loop to ask: a hand-off through the loop per
batch (a wake-up each way) cost as much time as the decryption itself on a busy machine. So at
most one batch waits while the next is opened, and both threads work at once (the AES work and
the file read release the GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import AsyncIterator

from media.errors import Unavailable
from media.storage.chunked import StreamOpener


class FileOpener:
    """Plaintext buffers of stored bytes [start, end) of an open file, opened in a thread.

    The thread owns the descriptor and closes it when it ends: after the last batch, on an
    error, or once `stop` is called (it finishes the batch at hand first, at most one)."""

    def __init__(
        self, opener: StreamOpener, fd: int, start: int, end: int, first: int, batch: int
    ) -> None:
        self._opener = opener
        self._fd = fd
        self._position = start
        self._end = end
        self._first = first  # stored bytes of the first batch (time to first byte)
        self._batch = batch
        self._lock = threading.Condition()
        self._ready: deque[bytearray] = deque()  # opened, not yet taken by the loop
        self._ahead = 1  # the most buffers a batch has filled so far
        self._stop = False
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="media-file-opener", daemon=True)
        self._thread.start()

    async def buffers(self) -> AsyncIterator[bytearray]:
        """The buffers in order; the thread's error, if any, once those before it are out."""
        while True:
            with self._lock:
                if self._ready:
                    buffer = self._ready.popleft()
                    self._lock.notify()
                elif self._done:
                    if self._error is not None:
                        raise self._error
                    return
                else:
                    buffer = None
                    waiter = self._waiter = self._loop.create_future()
            if buffer is None:
                await waiter
                continue
            yield buffer
            del buffer  # sent: StreamOpener may fill it again

    def stop(self) -> None:
        """Ask the thread to end (it closes the file); no more buffers will be taken."""
        with self._lock:
            self._stop = True
            self._ready.clear()
            self._lock.notify()

    def _run(self) -> None:
        stored = memoryview(bytearray(max(self._first, self._batch)))
        size = self._first
        try:
            at_end = False
            while self._position < self._end:
                with self._lock:
                    while len(self._ready) >= self._ahead and not self._stop:
                        self._lock.wait()
                    if self._stop:
                        return
                size = min(size, self._end - self._position)
                got = _read_into(self._fd, self._position, stored[:size])
                self._position += got
                opened = self._opener.open_pieces([stored[:got]])
                self._ahead = max(self._ahead, len(opened))
                self._publish(opened)
                if got < size:
                    at_end = True  # the file ended first: its final chunk is checked below
                    break
                size = self._batch
            self._publish(self._opener.finish(at_end=at_end))
        except OSError as exc:
            self._error = Unavailable(
                "storage folder failed", dependency="storage", errno=exc.errno
            )
        except BaseException as exc:  # CorruptObject above all: raised where the loop reads
            self._error = exc
        finally:
            os.close(self._fd)
            with self._lock:
                self._done = True
            self._wake()

    def _publish(self, opened: list[bytearray]) -> None:
        with self._lock:
            if self._stop:
                return
            self._ready.extend(opened)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            # RuntimeError: the loop closed (shutdown), so nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_set, waiter)


def _set(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _read_into(fd: int, position: int, stored: memoryview) -> int:
    """Fill `stored` from `position`, or up to the end of the file; the bytes read."""
    got = 0
    while got < len(stored):
        count = os.preadv(fd, [stored[got:]], position + got)
        if not count:
            break
        got += count
    return got
