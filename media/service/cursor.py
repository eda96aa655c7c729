"""Opaque listing cursors: base64 of the keyset position, checked on the way in."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from media.errors import InvalidInput
from media.ids import is_media_id
from media.models import Cursor

_PREFIX = "c2:"  # c2: the media is named by its public id


def encode_cursor(cursor: Cursor) -> str:
    """An opaque string for a keyset position."""
    raw = f"{_PREFIX}{cursor.created_at.isoformat()}|{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """The keyset position of an opaque cursor; InvalidInput when it is not one of ours."""
    try:
        padded = value + "=" * (-len(value) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        if not text.startswith(_PREFIX) or len(value) > 200:
            raise ValueError(text)
        stamp, _, ident = text[len(_PREFIX) :].rpartition("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError(stamp)
        if not is_media_id(ident):
            raise ValueError(ident)
        return Cursor(created_at=created_at, id=ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("invalid cursor", field="after") from None
