"""Public media ids: 128 random bits spelled in base64url, so they reveal no count or order."""

from __future__ import annotations

import re
import secrets

MEDIA_ID_LENGTH = 22  # base64url of 16 bytes, without padding
# 21 characters carry 126 bits; the last carries the final 2 bits and 4 zero bits, so it is one
# of A, Q, g, w: every id has exactly one spelling.
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")


def new_media_id() -> str:
    """A fresh random media id that never starts with '-' (it would read as a CLI option)."""
    while True:
        value = secrets.token_urlsafe(16)
        if not value.startswith("-"):
            return value


def is_media_id(value: object) -> bool:
    """True when `value` is spelled like a media id (it may still name nothing)."""
    return isinstance(value, str) and _MEDIA_ID.fullmatch(value) is not None
