"""Recycler: a buffer is filled again only once nothing but the recycler refers to it."""

from __future__ import annotations

import pytest

from media.storage import buffers
from media.storage.buffers import Recycler

pytestmark = pytest.mark.skipif(not buffers.REUSE, reason="no reference counts to go by")


def test_a_buffer_let_go_is_taken_again() -> None:
    recycler = Recycler(8)
    first = recycler.take()
    recycler.given(first)
    marker = id(first)
    del first
    again = recycler.take()
    assert id(again) == marker and len(again) == 8


@pytest.mark.parametrize(
    "hold",
    [
        lambda buffer: buffer,  # the consumer's own reference
        lambda buffer: memoryview(buffer),  # a view, as a socket's write queue keeps
        lambda buffer: [buffer],  # a list of pieces, as a batch written later
    ],
)
def test_a_buffer_still_held_is_never_taken(hold: object) -> None:
    recycler = Recycler(8)
    buffer = recycler.take()
    buffer[:] = b"original"
    recycler.given(buffer)
    holder = hold(buffer)  # type: ignore[operator]
    del buffer
    other = recycler.take()
    other[:] = b"12345678"
    kept = holder[0] if isinstance(holder, list) else holder
    assert bytes(kept) == b"original"
