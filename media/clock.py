"""The wall clock, injected everywhere time matters so tests can set it, and stored instants
read back as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """The value as aware UTC; naive values are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def aware(value: datetime) -> datetime:
    """Like utc() for a value that is never None."""
    result = utc(value)
    assert result is not None
    return result
