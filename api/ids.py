"""Parsing the IDs clients send: media ids are decimal integers, upload ids are UUIDs."""

from __future__ import annotations

import uuid

from media.errors import InvalidInput

MAX_MEDIA_ID = 2**63 - 1  # the database column is a signed 64-bit integer


def parse_media_id(value: str) -> int | None:
    """The integer of a media id, or None when it cannot name any media."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_MEDIA_ID else None


def require_media_id(value: str, field: str = "id") -> int:
    """The integer of a media id; InvalidInput naming `field` otherwise."""
    number = parse_media_id(value)
    if number is None:
        raise InvalidInput("not a media id", field=field)
    return number


def require_upload_id(value: str, field: str = "uploadId") -> uuid.UUID:
    """The UUID of an upload id; InvalidInput naming `field` otherwise."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput("not an upload id", field=field) from None
