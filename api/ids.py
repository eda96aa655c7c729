"""Parsing the IDs clients send: media ids and share link ids are opaque strings, upload ids are
UUIDs."""

from __future__ import annotations

import re
import uuid

from media.errors import InvalidInput
from media.ids import is_media_id

_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


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


def require_share_link_id(value: str, field: str = "id") -> str:
    """A share link id (opaque, URL-safe); InvalidInput naming `field` otherwise."""
    text = value.strip()
    if not _LINK_ID.fullmatch(text):
        raise InvalidInput("not a share link id", field=field)
    return text
