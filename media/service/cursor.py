"""Opaque listing cursors: base64 of the keyset position, checked on the way in."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from media.errors import InvalidInput
from media.ids import is_media_id
from media.models import Cursor, ShareCursor

_PREFIX = "c2:"  # c2: the media is named by its public id
_LINK_PREFIX = "l1:"
MAX_CURSOR_LENGTH = 200


def _encode(prefix: str, created_at: datetime, ident: str) -> str:
    raw = f"{prefix}{created_at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(prefix: str, value: str) -> tuple[datetime, str]:
    """(created_at, id) of a cursor of this prefix; ValueError when it is not one."""
    padded = value + "=" * (-len(value) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith(prefix) or len(value) > MAX_CURSOR_LENGTH:
        raise ValueError(text)
    stamp, _, ident = text[len(prefix) :].rpartition("|")
    created_at = datetime.fromisoformat(stamp)
    if created_at.tzinfo is None or not ident:
        raise ValueError(stamp)
    return created_at.astimezone(UTC), ident  # OverflowError at the calendar's edges


def encode_cursor(cursor: Cursor) -> str:
    """An opaque string for a keyset position."""
    return _encode(_PREFIX, cursor.created_at, cursor.id)


def decode_cursor(value: str) -> Cursor:
    """The keyset position of an opaque cursor; InvalidInput when it is not one of ours."""
    try:
        created_at, ident = _decode(_PREFIX, value)
        if not is_media_id(ident):
            raise ValueError(ident)
        return Cursor(created_at=created_at, id=ident)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("invalid cursor", field="after") from None


def encode_share_cursor(cursor: ShareCursor) -> str:
    """An opaque string for a position in the listing of share links."""
    return _encode(_LINK_PREFIX, cursor.created_at, cursor.id)


def decode_share_cursor(value: str) -> ShareCursor:
    """The position of an opaque share-link cursor; InvalidInput when it is not one of ours."""
    try:
        created_at, ident = _decode(_LINK_PREFIX, value)
        return ShareCursor(created_at=created_at, id=ident)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("invalid cursor", field="after") from None
