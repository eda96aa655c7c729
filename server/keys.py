"""The embedded default's signing key: random, created once in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from media.config import Settings


def signing_keys(settings: Settings) -> tuple[str, ...]:
    """MEDIA_SIGNING_KEYS, or on the embedded default a generated key kept in the data dir."""
    if settings.signing_keys:
        return settings.signing_keys
    return (_load_or_create(settings.dev_key_path),)


def _load_or_create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)  # 256 bits, SECURITY.md §1.16
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
