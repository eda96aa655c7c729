"""Conditional requests of RFC 9110 §13: entity-tags, HTTP-dates and the §13.2.2 order.

If-Range with a date is honoured only on exact equality with Last-Modified (second precision).
RFC 9110 §13.1.5 asks for a "strong" Last-Modified, i.e. one at least a second older than the
Date of the response; storage timestamps of finished uploads are always in the past, and exact
equality is the simpler rule the RFC also allows a server to apply.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# §5.6.7: recipients accept IMF-fixdate and the two obsolete forms, all case-sensitive.
_IMF_FIXDATE = re.compile(rf"{_DAY}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"{_LONG_DAY}, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} ([ 0-9][0-9]) {_TIME} ([0-9]{{4}})")
_OWS = " \t"


class Verdict(enum.Enum):
    """The result of evaluating the preconditions of one request."""

    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"  # 304
    PRECONDITION_FAILED = "precondition_failed"  # 412


@dataclass(frozen=True, slots=True)
class Validators:
    """The validators of the selected representation: unquoted strong ETag and Last-Modified."""

    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class EntityTag:
    """One entity-tag of a header list (§8.8.3)."""

    opaque: str
    weak: bool = False


@dataclass(frozen=True, slots=True)
class TagList:
    """A parsed If-Match / If-None-Match value: `*`, or a list of entity-tags."""

    any: bool = False
    tags: tuple[EntityTag, ...] = ()


def parse_http_date(value: str | None) -> datetime | None:
    """Parse an HTTP-date (§5.6.7) into aware UTC; None when absent or invalid."""
    if value is None:
        return None
    text = value.strip(_OWS)
    try:
        if match := _IMF_FIXDATE.fullmatch(text):
            day, month, year, hour, minute, second = match.groups()
            return _utc(int(year), month, day, hour, minute, second)
        if match := _RFC850.fullmatch(text):
            day, month, yy, hour, minute, second = match.groups()
            return _utc(_rfc850_year(int(yy)), month, day, hour, minute, second)
        if match := _ASCTIME.fullmatch(text):
            month, day, hour, minute, second, year = match.groups()
            return _utc(int(year), month, day.strip(), hour, minute, second)
    except ValueError:
        return None  # e.g. 31 Feb or second 61: not a valid date, so the header is ignored
    return None


def _utc(year: int, month: str, day: str, hour: str, minute: str, second: str) -> datetime:
    return datetime(year, _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC)


def _rfc850_year(two_digits: int) -> int:
    # §5.6.7: a two-digit year more than 50 years ahead means the most recent past such year.
    this_year = datetime.now(UTC).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def parse_tag_list(value: str) -> TagList:
    """Parse `*` or a comma list of entity-tags; parsing stops at the first malformed element."""
    text = value.strip(_OWS)
    if text == "*":
        return TagList(any=True)
    tags: list[EntityTag] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in ", \t":
            position += 1
            continue
        weak = text.startswith("W/", position)
        start = position + 2 if weak else position
        end = text.find('"', start + 1) if text.startswith('"', start) else -1
        if end < 0 or not _is_etagc(text[start + 1 : end]):
            break  # like Go's scanETag: a malformed element ends the list
        tags.append(EntityTag(text[start + 1 : end], weak))
        position = end + 1
    return TagList(tags=tuple(tags))


def _is_etagc(opaque: str) -> bool:
    # §8.8.3: etagc = %x21 / %x23-7E / obs-text
    return all(ch == "!" or "#" <= ch <= "~" or "\x80" <= ch <= "\xff" for ch in opaque)


def strong_match(header: str, etag: str) -> bool:
    """§13.1.1 If-Match: strong comparison, `*` matches any current representation."""
    tags = parse_tag_list(header)
    return tags.any or any(not tag.weak and tag.opaque == etag for tag in tags.tags)


def weak_match(header: str, etag: str) -> bool:
    """§13.1.2 If-None-Match: weak comparison, `*` matches any current representation."""
    tags = parse_tag_list(header)
    return tags.any or any(tag.opaque == etag for tag in tags.tags)


def _seconds(moment: datetime) -> datetime:
    """Whole-second UTC time: HTTP-dates carry no fractions (§5.6.7)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


def evaluate(method: str, headers: Mapping[str, str], validators: Validators) -> Verdict:
    """Apply If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since in §13.2.2 order.

    `headers` maps lower-case field names to their combined values.
    """
    last_modified = _seconds(validators.last_modified)
    if_match = headers.get("if-match")
    unmodified_since = parse_http_date(headers.get("if-unmodified-since"))
    if if_match is not None:
        if not strong_match(if_match, validators.etag):
            return Verdict.PRECONDITION_FAILED
    elif unmodified_since is not None and last_modified > unmodified_since:
        return Verdict.PRECONDITION_FAILED
    safe = method.upper() in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    modified_since = parse_http_date(headers.get("if-modified-since")) if safe else None
    if if_none_match is not None:
        if weak_match(if_none_match, validators.etag):
            return Verdict.NOT_MODIFIED if safe else Verdict.PRECONDITION_FAILED
    elif modified_since is not None and last_modified <= modified_since:
        return Verdict.NOT_MODIFIED
    return Verdict.PROCEED


def if_range_allows(header: str | None, validators: Validators) -> bool:
    """§13.1.5: True when Range may be honoured (no If-Range, or its validator still matches)."""
    if header is None:
        return True
    text = header.strip(_OWS)
    if text.startswith(('"', "W/")):
        # Exactly one strong entity-tag, nothing before or after it (the field is not a list):
        # a weak tag never matches, as If-Range needs a strong comparison.
        return text == f'"{validators.etag}"'
    date = parse_http_date(text)
    return date is not None and date == _seconds(validators.last_modified)
