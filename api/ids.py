"""Parsing the IDs clients send: media ids are opaque strings, upload ids are UUIDs."""

from __future__ import annotations

import uuid

from media.errors import InvalidInput
from media.ids import is_media_id


def parse_media_id(value: str) -> str | None:
    """The media id as sent, or None when it cannot name any media (never parse it further)."""
    text = value.strip()
    return text if is_media_id(text) else None


def require_media_id(value: str, field: str = "id") -> str:
    """The media id as sent; InvalidInput naming `field` when it cannot name any media."""
    media_id = parse_media_id(value)
    if media_id is None:
        raise InvalidInput("not a media id", field=field)
    return media_id


def require_upload_id(value: str, field: str = "uploadId") -> uuid.UUID:
    """The UUID of an upload id; InvalidInput naming `field` otherwise."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput("not an upload id", field=field) from None
