"""BodyReader over a botocore body without urllib3 under it: botocore's own readinto, same rules."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
import urllib3.exceptions
from botocore.exceptions import IncompleteReadError, ReadTimeoutError
from botocore.response import StreamingBody

from media.storage.buffers import Recycler
from media.storage.s3_body import BodyReader, wire_response

CHUNK = 64 * 1024
DATA = random.Random(3).randbytes(3 * CHUNK + 17)


def reader(data: bytes, announced: int | None) -> BodyReader:
    body = StreamingBody(io.BytesIO(data), announced if announced is not None else len(data))
    length = len(DATA) if announced is None else announced
    return BodyReader(body, length, announced=announced is not None)


def read_all(body: BodyReader, budget: int = 2 * CHUNK) -> bytes:
    buffers = Recycler(CHUNK)
    got = b""
    while batch := body.batch(buffers, budget):
        got += b"".join(batch)
    return got


def test_without_urllib3_the_bytes_come_through_botocore() -> None:
    assert wire_response(StreamingBody(io.BytesIO(DATA), len(DATA))) is None
    body = reader(DATA, len(DATA))
    assert read_all(body) == DATA
    assert body.done


def test_a_short_announced_body_is_refused() -> None:
    body = reader(DATA[:-5], len(DATA))
    with pytest.raises(IncompleteReadError):
        read_all(body)


def test_a_body_without_a_length_ends_where_it_ends() -> None:
    body = reader(DATA[: CHUNK + 3], None)
    assert read_all(body) == DATA[: CHUNK + 3]
    assert body.done


def test_reading_stops_at_what_was_asked() -> None:
    body = BodyReader(StreamingBody(io.BytesIO(DATA), len(DATA)), CHUNK + 1)
    assert read_all(body) == DATA[: CHUNK + 1]


class _TimingOut(io.RawIOBase):
    """A raw stream whose reads time out, as urllib3 reports a socket timeout."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise urllib3.exceptions.ReadTimeoutError(None, "/bucket/key", "read timed out")


def test_botocores_own_errors_keep_their_names() -> None:
    body = BodyReader(StreamingBody(_TimingOut(), len(DATA)), len(DATA))
    with pytest.raises(ReadTimeoutError):
        read_all(body)
