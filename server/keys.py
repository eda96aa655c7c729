"""The embedded default's signing key: random, created once in the data directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from media.config import MIN_SIGNING_KEY_LENGTH, Settings
from media.errors import ConfigError


def signing_keys(settings: Settings) -> tuple[str, ...]:
    """MEDIA_SIGNING_KEYS, or on the embedded default a generated key kept in the data dir."""
    if settings.signing_keys:
        return settings.signing_keys
    return (_load_or_create(settings.dev_key_path),)


def _load_or_create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create(path)
    key = path.read_text().strip()
    if len(key) < MIN_SIGNING_KEY_LENGTH:
        raise ConfigError(
            f"{path} holds no usable key; delete it to make a new one",
            variable="MEDIA_SIGNING_KEYS",
        )
    return key


def _create(path: Path) -> None:
    # Written whole to a temp file, then linked into place: a second process starting at the
    # same moment sees either no file or the complete key, never an empty one.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))  # 256 bits, docs/security.md §1.16
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won; its key is the one
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
