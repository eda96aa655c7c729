"""Conditional requests as tables, in the manner of Go's net/http fs_test.go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streaming.preconditions import (
    EntityTag,
    TagList,
    Validators,
    Verdict,
    evaluate,
    if_range_allows,
    parse_http_date,
    parse_tag_list,
    strong_match,
    weak_match,
)

LM = datetime(2025, 2, 1, 8, 30, 15, 400_000, tzinfo=UTC)  # sub-second part is ignored
V = Validators(etag="abc", last_modified=LM)
AT = "Sat, 01 Feb 2025 08:30:15 GMT"  # == Last-Modified at second precision
BEFORE = "Sat, 01 Feb 2025 08:30:14 GMT"
AFTER = "Sat, 01 Feb 2025 08:30:16 GMT"
GO, NM, PF = Verdict.PROCEED, Verdict.NOT_MODIFIED, Verdict.PRECONDITION_FAILED

EVALUATE_CASES: list[tuple[str, dict[str, str], Verdict]] = [
    ("GET", {}, GO),
    # If-Match: strong comparison, * matches
    ("GET", {"if-match": '"abc"'}, GO),
    ("GET", {"if-match": '"x", "abc"'}, GO),
    ("GET", {"if-match": "*"}, GO),
    ("GET", {"if-match": '"x"'}, PF),
    ("GET", {"if-match": 'W/"abc"'}, PF),  # weak tags never match strongly
    ("GET", {"if-match": "abc"}, PF),  # unquoted is malformed: no match
    ("GET", {"if-match": ""}, PF),
    ("HEAD", {"if-match": '"x"'}, PF),
    # If-Unmodified-Since, only without If-Match
    ("GET", {"if-unmodified-since": AT}, GO),
    ("GET", {"if-unmodified-since": AFTER}, GO),
    ("GET", {"if-unmodified-since": BEFORE}, PF),
    ("GET", {"if-unmodified-since": "yesterday"}, GO),  # invalid dates are ignored
    ("GET", {"if-match": '"abc"', "if-unmodified-since": BEFORE}, GO),
    ("GET", {"if-match": '"x"', "if-unmodified-since": AFTER}, PF),
    # If-None-Match: weak comparison, * matches, 304 for GET/HEAD
    ("GET", {"if-none-match": '"abc"'}, NM),
    ("HEAD", {"if-none-match": '"abc"'}, NM),
    ("GET", {"if-none-match": 'W/"abc"'}, NM),
    ("GET", {"if-none-match": '"x", W/"abc"'}, NM),
    ("GET", {"if-none-match": "*"}, NM),
    ("GET", {"if-none-match": '"x"'}, GO),
    ("GET", {"if-none-match": "garbage"}, GO),
    ("POST", {"if-none-match": '"abc"'}, PF),
    # If-Modified-Since, only without If-None-Match and only for GET/HEAD
    ("GET", {"if-modified-since": AT}, NM),
    ("GET", {"if-modified-since": AFTER}, NM),
    ("HEAD", {"if-modified-since": AT}, NM),
    ("GET", {"if-modified-since": BEFORE}, GO),
    ("GET", {"if-modified-since": "Sat, 01 Feb 2025 08:30:15 UTC"}, GO),  # not an HTTP-date
    ("GET", {"if-modified-since": f"{AT}, {AT}"}, GO),  # more than one member: ignored
    ("POST", {"if-modified-since": AT}, GO),
    ("GET", {"if-none-match": '"x"', "if-modified-since": AFTER}, GO),  # INM wins over IMS
    ("GET", {"if-none-match": '"abc"', "if-modified-since": BEFORE}, NM),
    # precedence: the 412 checks come before the 304 checks
    ("GET", {"if-match": '"x"', "if-none-match": '"abc"'}, PF),
    ("GET", {"if-unmodified-since": BEFORE, "if-none-match": '"abc"'}, PF),
    ("GET", {"if-unmodified-since": BEFORE, "if-modified-since": AT}, PF),
    ("GET", {"if-match": '"abc"', "if-none-match": '"abc"'}, NM),
    ("GET", {"if-match": "*", "if-modified-since": AT}, NM),
    # obsolete date forms are accepted (RFC 9110 §5.6.7)
    ("GET", {"if-modified-since": "Saturday, 01-Feb-25 08:30:15 GMT"}, NM),
    ("GET", {"if-modified-since": "Sat Feb  1 08:30:15 2025"}, NM),
    ("GET", {"if-modified-since": "Sat Feb  1 08:30:14 2025"}, GO),
]


@pytest.mark.parametrize(("method", "headers", "expected"), EVALUATE_CASES)
def test_evaluate(method: str, headers: dict[str, str], expected: Verdict) -> None:
    assert evaluate(method, headers, V) == expected


def test_naive_last_modified_is_utc() -> None:
    naive = Validators(etag="abc", last_modified=LM.replace(tzinfo=None))
    assert evaluate("GET", {"if-modified-since": AT}, naive) is NM


IF_RANGE_CASES: list[tuple[str | None, bool]] = [
    (None, True),
    ('"abc"', True),
    ('"x"', False),
    ('W/"abc"', False),  # If-Range needs a strong comparison
    ('"abc", "x"', False),
    ('"x", "abc"', False),
    ('"abc" junk', False),  # the field is one validator, nothing after it
    ('"abc",', False),
    (' "abc" ', True),  # optional whitespace around the value
    ('"abc"abc"', False),
    (AT, True),  # exact date equality
    (AT + " junk", False),
    (BEFORE, False),
    (AFTER, False),  # a later date is not equality
    ("Saturday, 01-Feb-25 08:30:15 GMT", True),
    ("not a date", False),
    ("", False),
    ("abc", False),
]


@pytest.mark.parametrize(("header", "expected"), IF_RANGE_CASES)
def test_if_range(header: str | None, expected: bool) -> None:
    assert if_range_allows(header, V) is expected


DATE_CASES: list[tuple[str | None, datetime | None]] = [
    ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sun Nov 16 08:49:37 1994", datetime(1994, 11, 16, 8, 49, 37, tzinfo=UTC)),
    ("  Sun, 06 Nov 1994 08:49:37 GMT ", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    (None, None),
    ("", None),
    ("Sun, 06 Nov 1994 08:49:37 UTC", None),
    ("Sun, 06 Nov 1994 08:49:37 +0000", None),
    ("sun, 06 nov 1994 08:49:37 GMT", None),  # HTTP-date is case-sensitive
    ("Sun, 6 Nov 1994 08:49:37 GMT", None),
    ("Sun, 31 Feb 1994 08:49:37 GMT", None),
    ("Sun, 06 Nov 1994 25:49:37 GMT", None),
    ("1994-11-06T08:49:37Z", None),
    ("784111777", None),
]


@pytest.mark.parametrize(("text", "expected"), DATE_CASES)
def test_parse_http_date(text: str | None, expected: datetime | None) -> None:
    assert parse_http_date(text) == expected


TAG_CASES: list[tuple[str, TagList]] = [
    ("*", TagList(any=True)),
    (" * ", TagList(any=True)),
    ('"a"', TagList(tags=(EntityTag("a"),))),
    ('W/"a"', TagList(tags=(EntityTag("a", weak=True),))),
    ('"a", W/"b" ,"c"', TagList(tags=(EntityTag("a"), EntityTag("b", True), EntityTag("c")))),
    ('"a,b"', TagList(tags=(EntityTag("a,b"),))),  # a comma is a legal etagc
    ('""', TagList(tags=(EntityTag(""),))),
    ('"a", junk, "c"', TagList(tags=(EntityTag("a"),))),  # parsing stops at junk
    ('"a b"', TagList()),  # a space is not an etagc
    ('"a', TagList()),
    ('w/"a"', TagList()),  # W/ is case-sensitive
    ("", TagList()),
]


@pytest.mark.parametrize(("text", "expected"), TAG_CASES)
def test_parse_tag_list(text: str, expected: TagList) -> None:
    assert parse_tag_list(text) == expected


@pytest.mark.parametrize(
    ("header", "strong", "weak"),
    [
        ('"abc"', True, True),
        ('W/"abc"', False, True),
        ('"ABC"', False, False),  # opaque tags compare octet by octet
        ("*", True, True),
        ('"x", "abc"', True, True),
        ('"x"', False, False),
    ],
)
def test_comparisons(header: str, strong: bool, weak: bool) -> None:
    assert strong_match(header, "abc") is strong
    assert weak_match(header, "abc") is weak
