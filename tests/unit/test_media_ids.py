"""Public media ids: random, URL-safe, one spelling; cursors and parsing built on them."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime

import pytest

from api.ids import parse_media_id, require_media_id
from media.errors import InvalidInput
from media.ids import MEDIA_ID_LENGTH, is_media_id, new_media_id
from media.models import Cursor
from media.service.cursor import decode_cursor, encode_cursor

VALID = "k3Jq9ZxYw2Lm4Np6Rt8VbA"


def test_new_ids_are_random_url_safe_and_128_bits() -> None:
    ids = [new_media_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert len(value) == MEDIA_ID_LENGTH and is_media_id(value)
        assert not value.startswith("-")  # never mistaken for a command-line option
        assert len(base64.urlsafe_b64decode(value + "==")) == 16
    # Not a counter: consecutive ids share no common prefix beyond chance.
    assert sum(a[:4] == b[:4] for a, b in itertools.pairwise(ids)) < 5


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (VALID, True),
        ("AAAAAAAAAAAAAAAAAAAAAA", True),
        ("9", False),  # the old decimal ids name nothing now
        ("12345678901234567890", False),
        (VALID[:-1], False),
        (VALID + "A", False),
        (VALID[:-1] + "B", False),  # spare low bits set: a second spelling of some id
        (VALID[:-2] + "+A", False),  # standard base64, not URL-safe
        (VALID[:-2] + "=A", False),
        ("k3Jq9ZxYw2Lm4Np6Rt8Vb\u0410", False),  # Cyrillic A
        ("", False),
        (None, False),
        (12, False),
    ],
)
def test_is_media_id(value: object, valid: bool) -> None:
    assert is_media_id(value) is valid


def test_edges_parse_media_ids_as_opaque_strings() -> None:
    assert parse_media_id(f"  {VALID} ") == VALID
    assert parse_media_id("42") is None
    assert require_media_id(VALID) == VALID
    with pytest.raises(InvalidInput) as caught:
        require_media_id("42", field="mediaIds")
    assert caught.value.data["field"] == "mediaIds"


def test_cursor_round_trip_names_the_public_id() -> None:
    cursor = Cursor(created_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), id=VALID)
    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "c1:2026-01-02T03:04:05+00:00|9",  # the integer cursors of before
        "c2:2026-01-02T03:04:05+00:00|9",
        f"c2:2026-01-02T03:04:05|{VALID}",  # no timezone
        f"c2:not-a-date|{VALID}",
    ],
)
def test_cursors_that_are_not_ours_are_bad_input(text: str) -> None:
    value = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        decode_cursor(value)
