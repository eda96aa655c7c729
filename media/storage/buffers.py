"""Buffers a long read hands out and takes back once nothing refers to them any more.

A long read yields a buffer per piece; allocating (and zeroing) a fresh bytearray per piece, then
copying it into `bytes`, cost as much CPU as the socket write itself (bench/README.md). A buffer
handed out is filled again only once its CPython reference count shows that its consumer, a
socket's write queue and any memoryview have let go of it: a piece already handed out never
changes under its holder. Where reference counts cannot say that (an interpreter without
`sys.getrefcount`, or CPython without the GIL), every piece is a new buffer.
"""

from __future__ import annotations

import sys

_UNSHARED = 2  # sys.getrefcount of a list item nothing else refers to (the list, the argument)
_REMEMBERED = 16  # buffers handed out that a read keeps track of, to take back once let go
REUSE = hasattr(sys, "getrefcount") and getattr(sys, "_is_gil_enabled", lambda: True)()


class Recycler:
    """Buffers of `size` bytes for one read, reused once let go. Not thread-safe: one read
    uses it, one call at a time (on the loop or in a worker thread, never both at once)."""

    __slots__ = ("_given", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._given: list[bytearray] = []  # handed out, oldest first

    def take(self) -> bytearray:
        """A buffer handed out before that nothing else refers to any more, else a new one."""
        given = self._given
        for n in range(len(given)):
            # Anything more than the list's reference and getrefcount's argument is a holder
            # (the consumer, a queued socket write, a memoryview): the buffer stays theirs.
            if sys.getrefcount(given[n]) == _UNSHARED:
                return given.pop(n)
        if len(given) > _REMEMBERED:
            del given[0]  # held elsewhere for long: theirs to keep
        return bytearray(self.size)

    def given(self, buffer: bytearray) -> None:
        """`buffer` (of `size` bytes) is handed out: take it back once it is let go."""
        if REUSE:
            self._given.append(buffer)
