"""Client input the use cases check, each rule once, before any read or write.

Errors name the field as the core does (`file_name`, `date_from`); `{field}` in a message stands
for that name as the edge spells it (api/errors.py for GraphQL).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from media.errors import InvalidInput
from media.models import NAME_LENGTH

# Bidirectional overrides make "evil\u202egpj.exe" look like "evilexe.jpg".
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
MAX_PAGE_SIZE = 100


def file_name(value: str) -> str:
    """The name without surrounding blanks: 1 to NAME_LENGTH characters, no control character."""
    name = value.strip()
    if not name or len(name) > NAME_LENGTH:
        raise InvalidInput(f"{{field}} needs 1 to {NAME_LENGTH} characters", field="file_name")
    if any(unicodedata.category(c) in _CONTROL_CATEGORIES or c in _BIDI_CONTROLS for c in name):
        raise InvalidInput("{field} contains control characters", field="file_name")
    return name


def instant(value: datetime, field: str) -> datetime:
    """`value` in UTC; InvalidInput naming `field` when it has no timezone or leaves the
    calendar in UTC (9999-12-31T23:59:59-14:00 is in year 10000 there)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("dates need a timezone", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("date out of range in UTC", field=field) from None


def expires_in(value: int | None) -> None:
    """A URL lifetime the caller asked for: at least one second (None: the default)."""
    if value is not None and value < 1:
        raise InvalidInput("{field} must be at least 1 second", field="expires_in")


def page_size(first: int) -> None:
    """A listing's page size: 0 to MAX_PAGE_SIZE items."""
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput(f"{{field}} must be between 0 and {MAX_PAGE_SIZE}", field="first")
