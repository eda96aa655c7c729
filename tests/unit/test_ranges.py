"""parse_range as a table, in the manner of Go's net/http range_test.go."""

from __future__ import annotations

import pytest

from streaming.ranges import (
    MAX_RANGES,
    ByteRange,
    RangeOutcome,
    RangeRequest,
    parse_range,
    unsatisfied_content_range,
)

WHOLE = RangeRequest(RangeOutcome.WHOLE)
UNSAT = RangeRequest(RangeOutcome.UNSATISFIABLE)


def partial(*pairs: tuple[int, int]) -> RangeRequest:
    return RangeRequest(RangeOutcome.PARTIAL, tuple(ByteRange(a, b) for a, b in pairs))


CASES: list[tuple[str | None, int, RangeRequest]] = [
    # no header, ignored headers: the whole object with 200
    (None, 10, WHOLE),
    ("", 10, WHOLE),
    ("foo", 10, WHOLE),
    ("bytes", 10, WHOLE),
    ("bytes=", 10, WHOLE),
    ("bytes=,", 10, WHOLE),
    ("items=0-5", 10, WHOLE),
    ("bytes 0-5", 10, WHOLE),
    ("bytes=5", 10, WHOLE),
    ("bytes=-", 10, WHOLE),
    ("bytes=a-5", 10, WHOLE),
    ("bytes=0-a", 10, WHOLE),
    ("bytes=+1-5", 10, WHOLE),
    ("bytes=1-+5", 10, WHOLE),
    ("bytes=0x1-5", 10, WHOLE),
    ("bytes=1_0-20", 100, WHOLE),
    ("bytes=--5", 10, WHOLE),
    ("bytes=1 -5", 10, WHOLE),
    ("bytes=5-4", 10, WHOLE),  # last-pos before first-pos: invalid spec
    ("bytes=0-1,5-4", 10, WHOLE),  # one invalid spec spoils the set
    ("bytes=0-1,junk", 10, WHOLE),
    ("bytes=\u0661-2", 10, WHOLE),  # non-ASCII digits are not DIGIT
    ("bytes = 0-1", 10, WHOLE),
    # single ranges
    ("bytes=0-4", 10, partial((0, 4))),
    ("bytes=2-", 10, partial((2, 9))),
    ("bytes=0-", 10, partial((0, 9))),
    ("bytes=9-", 10, partial((9, 9))),
    ("bytes=5-5", 10, partial((5, 5))),
    ("bytes=-2", 10, partial((8, 9))),
    ("bytes=-10", 10, partial((0, 9))),
    ("bytes=-20", 10, partial((0, 9))),  # suffix longer than the object: all of it
    ("bytes=0-20", 10, partial((0, 9))),  # last-pos clamped to size - 1
    ("bytes=0-9", 10, partial((0, 9))),
    ("BYTES=0-4", 10, partial((0, 4))),  # the unit is case-insensitive
    # the one `bytes=first-last` form players send, decided by its own short path
    ("bytes=00-01", 10, partial((0, 1))),
    ("bytes=9-9", 10, partial((9, 9))),
    ("bytes=9-99999999999999999999", 10, partial((9, 9))),
    ("bytes=10-10", 10, UNSAT),
    ("bytes=10-5", 10, WHOLE),
    ("bytes=0-0", 0, UNSAT),
    ("bytes=0-4 ", 10, partial((0, 4))),  # trailing OWS: the general parser
    ("Bytes=0-4", 10, partial((0, 4))),
    ("bytes=00-04", 10, partial((0, 4))),
    ("bytes=0-99999999999999999999999", 10, partial((0, 9))),
    ("  bytes=0-4  ", 10, partial((0, 4))),
    # several ranges
    ("bytes=0-1,5-6", 10, partial((0, 1), (5, 6))),
    ("bytes=5-6,0-1", 10, partial((5, 6), (0, 1))),  # requested order is kept
    ("bytes=0-1, 5-6", 10, partial((0, 1), (5, 6))),
    ("bytes=0-1 ,\t5-6", 10, partial((0, 1), (5, 6))),
    ("bytes=0-1,,5-6,", 10, partial((0, 1), (5, 6))),  # empty list elements are allowed
    ("bytes=0-1,-2", 10, partial((0, 1), (8, 9))),
    # coalescing overlapping and adjacent ranges
    ("bytes=0-2,1-3", 10, partial((0, 3))),
    ("bytes=0-2,3-4", 10, partial((0, 4))),
    ("bytes=3-4,0-2", 10, partial((0, 4))),
    ("bytes=0-1,3-4,2-2", 10, partial((0, 4))),
    ("bytes=6-7,0-1,1-2", 10, partial((6, 7), (0, 2))),
    ("bytes=0-0,2-2,4-4", 10, partial((0, 0), (2, 2), (4, 4))),
    ("bytes=8-,-3", 10, partial((7, 9))),
    # amplification: requested bytes add up to more than the object
    ("bytes=0-,0-", 10, WHOLE),
    ("bytes=0-9,0-9", 10, WHOLE),
    ("bytes=0-5,2-7", 10, WHOLE),
    ("bytes=-6,0-5", 10, WHOLE),
    ("bytes=0-4,0-4", 10, partial((0, 4))),  # 10 bytes asked of 10: not more, merged
    # unsatisfiable ranges are dropped; none left is 416
    ("bytes=10-", 10, UNSAT),
    ("bytes=10-20", 10, UNSAT),
    ("bytes=100-200", 10, UNSAT),
    ("bytes=-0", 10, UNSAT),
    ("bytes=10-,20-30", 10, UNSAT),
    ("bytes=0-1,10-", 10, partial((0, 1))),
    ("bytes=10-,-0,3-3", 10, partial((3, 3))),
    # zero-length objects (RFC 9110 §14.1.1, §14.1.2, §14.2)
    (None, 0, WHOLE),
    ("bytes=0-", 0, UNSAT),
    ("bytes=0-0", 0, UNSAT),
    ("bytes=0-10", 0, UNSAT),
    ("bytes=-0", 0, UNSAT),
    ("bytes=-1", 0, WHOLE),
    ("bytes=0-5,-3", 0, WHOLE),
    ("bytes=junk", 0, WHOLE),
    # one-byte object
    ("bytes=0-0", 1, partial((0, 0))),
    ("bytes=-1", 1, partial((0, 0))),
    ("bytes=1-", 1, UNSAT),
]


@pytest.mark.parametrize(("header", "size", "expected"), CASES)
def test_parse_range(header: str | None, size: int, expected: RangeRequest) -> None:
    assert parse_range(header, size) == expected


def test_sixteen_ranges_are_served_and_seventeen_ignored() -> None:
    specs = [f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1)]
    sixteen = parse_range("bytes=" + ",".join(specs[:MAX_RANGES]), 1000)
    assert sixteen.outcome is RangeOutcome.PARTIAL and len(sixteen.ranges) == MAX_RANGES
    assert parse_range("bytes=" + ",".join(specs), 1000) == WHOLE


def test_the_range_count_is_taken_before_coalescing() -> None:
    assert parse_range("bytes=" + ",".join(["0-0"] * (MAX_RANGES + 1)), 1000) == WHOLE


def test_header_over_one_kib_is_ignored() -> None:
    padded = "bytes=0-1" + " " * (1024 - len("bytes=0-1"))
    assert parse_range(padded, 10) == partial((0, 1))
    assert parse_range(padded + " ", 10) == WHOLE


@pytest.mark.parametrize(
    ("byte_range", "size", "content_range", "length"),
    [
        (ByteRange(0, 0), 1, "bytes 0-0/1", 1),
        (ByteRange(5, 9), 10, "bytes 5-9/10", 5),
        (ByteRange(0, 9), 10, "bytes 0-9/10", 10),
    ],
)
def test_content_range(byte_range: ByteRange, size: int, content_range: str, length: int) -> None:
    assert byte_range.content_range(size) == content_range
    assert byte_range.length == length


def test_unsatisfied_content_range() -> None:
    assert unsatisfied_content_range(0) == "bytes */0"
    assert unsatisfied_content_range(1234) == "bytes */1234"
