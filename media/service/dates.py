"""Instants from clients: aware, and representable once converted to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from media.errors import InvalidInput


def input_instant(value: datetime, field: str) -> datetime:
    """`value` in UTC; InvalidInput naming `field` when it has no timezone or leaves the
    calendar in UTC (9999-12-31T23:59:59-14:00 is in year 10000 there)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("dates need a timezone", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("date out of range in UTC", field=field) from None
