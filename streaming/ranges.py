"""The Range header of RFC 9110 §14: parse, check satisfiability, coalesce.

Choices this server makes where RFC 9110 lets it choose (§14.2 "MAY ignore"):
- a header longer than 1 KiB, a unit other than `bytes`, any syntax error, or more than
  MAX_RANGES range-specs is ignored: the answer is the whole object with 200;
- overlapping and adjacent ranges are merged (§14.2 allows coalescing), keeping the order of
  first appearance (§14.6 asks for the requested order);
- when the requested ranges add up to more bytes than the object has, the request is an
  amplification attempt or a confused client, and is answered 200 with the whole object
  (the same rule as Go's net/http);
- on a zero-length object an int-range (`a-b`, `a-`) or `-0` is unsatisfiable (416 `bytes */0`);
  a suffix-range `-n` with n > 0 is satisfiable by §14.1.2 but selects no byte, which no
  Content-Range can express, so the Range header is ignored and the answer is 200 with
  Content-Length 0 (§14.2 permits ignoring Range for a representation with no content).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_RANGE_HEADER_LENGTH = 1024
MAX_RANGES = 16
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
# What players send nearly every time: one `bytes=first-last`, decided without the general parser.
_ONE_INT_RANGE = re.compile(r"bytes=([0-9]+)-([0-9]+)")
_OWS = " \t"


class RangeOutcome(enum.Enum):
    """What to answer: the whole object, some ranges of it, or 416."""

    WHOLE = "whole"
    PARTIAL = "partial"
    UNSATISFIABLE = "unsatisfiable"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive byte positions `start..end` of one object."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The Content-Range value for this range of an object of `size` bytes (§14.4)."""
        return f"bytes {self.start}-{self.end}/{size}"


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """The decision for one Range header against one object size."""

    outcome: RangeOutcome
    ranges: tuple[ByteRange, ...] = ()


WHOLE = RangeRequest(RangeOutcome.WHOLE)
UNSATISFIABLE = RangeRequest(RangeOutcome.UNSATISFIABLE)


@dataclass(frozen=True, slots=True)
class _Spec:
    """One syntactically valid range-spec: an int-range or a suffix-range."""

    first: int | None
    last: int | None


def parse_range(header: str | None, size: int) -> RangeRequest:
    """Decide how to answer a GET with this Range header for an object of `size` bytes."""
    if header is None or len(header) > MAX_RANGE_HEADER_LENGTH:
        return WHOLE
    if (one := _ONE_INT_RANGE.fullmatch(header)) is not None:
        first, last = int(one[1]), int(one[2])
        if first <= last and first < size:
            # The general path's answer for this form: one satisfiable range needs no coalescing
            # and can never add up to more than the object.
            return RangeRequest(RangeOutcome.PARTIAL, (ByteRange(first, min(last, size - 1)),))
    specs = _parse_specs(header)
    if specs is None or len(specs) > MAX_RANGES:
        return WHOLE
    ranges = [r for r in (_resolve(spec, size) for spec in specs) if r is not None]
    if not ranges:
        if size == 0 and any(s.first is None and s.last for s in specs):
            return WHOLE  # §14.1.2: a non-zero suffix on an empty object; see the module note
        return UNSATISFIABLE
    if sum(r.length for r in ranges) > size:
        return WHOLE
    return RangeRequest(RangeOutcome.PARTIAL, _coalesce(ranges))


def unsatisfied_content_range(size: int) -> str:
    """The Content-Range value of a 416 answer (§15.5.17)."""
    return f"bytes */{size}"


def _parse_specs(header: str) -> list[_Spec] | None:
    """The range-specs of a `bytes=` ranges-specifier, or None when it must be ignored."""
    unit, sep, range_set = header.strip(_OWS).partition("=")
    # §14.1: range units are case-insensitive; anything but bytes is unknown here.
    if not sep or unit.lower() != "bytes":
        return None
    specs: list[_Spec] = []
    # §5.6.1: list elements may be empty and are surrounded by optional whitespace.
    for element in range_set.split(","):
        item = element.strip(_OWS)
        if not item:
            continue
        spec = _parse_spec(item)
        if spec is None:
            return None
        specs.append(spec)
        if len(specs) > MAX_RANGES:
            return specs
    return specs or None


def _parse_spec(item: str) -> _Spec | None:
    if match := _INT_RANGE.fullmatch(item):
        first = int(match[1])
        last = int(match[2]) if match[2] else None
        if last is not None and last < first:
            return None  # §14.1.1: last-pos before first-pos makes the spec invalid
        return _Spec(first, last)
    if match := _SUFFIX_RANGE.fullmatch(item):
        return _Spec(None, int(match[1]))
    return None


def _resolve(spec: _Spec, size: int) -> ByteRange | None:
    """The satisfiable byte range of one spec, or None (§14.1.1)."""
    if spec.first is None:
        suffix = spec.last or 0
        if suffix == 0 or size == 0:
            return None
        # §14.1.3: a suffix longer than the object selects all of it.
        return ByteRange(max(0, size - suffix), size - 1)
    if spec.first >= size:
        return None
    last = size - 1 if spec.last is None else min(spec.last, size - 1)
    return ByteRange(spec.first, last)


def _coalesce(ranges: list[ByteRange]) -> tuple[ByteRange, ...]:
    """Merge overlapping or adjacent ranges; groups keep the order of their first request."""
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i].start, ranges[i].end))
    groups: list[tuple[int, ByteRange]] = []  # (first requested index, merged range)
    for index in order:
        current = ranges[index]
        if groups and current.start <= groups[-1][1].end + 1:
            first_index, merged = groups[-1]
            end = max(merged.end, current.end)
            groups[-1] = (min(first_index, index), ByteRange(merged.start, end))
        else:
            groups.append((index, current))
    return tuple(merged for _, merged in sorted(groups, key=lambda group: group[0]))
