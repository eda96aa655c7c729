"""The generated development signing key: created once, reused, private, never empty."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from media.config import load_settings
from media.errors import ConfigError
from server.keys import signing_keys


def test_created_once_and_reused(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path / "data")})
    first = signing_keys(settings)
    assert len(first) == 1 and len(first[0]) == 64
    assert signing_keys(settings) == first
    assert stat.S_IMODE(settings.dev_key_path.stat().st_mode) == 0o600
    assert [p.name for p in settings.dev_key_path.parent.iterdir()] == ["signing.key"]


def test_configured_keys_win(tmp_path: Path) -> None:
    key = "k" * 40
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_SIGNING_KEYS": key})
    assert signing_keys(settings) == (key,)
    assert not settings.dev_key_path.exists()


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path)})
    settings.dev_key_path.write_text("")
    with pytest.raises(ConfigError):
        signing_keys(settings)
