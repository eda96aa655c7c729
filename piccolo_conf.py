"""Piccolo CLI configuration: the engine named by MEDIA_DATABASE_URL and the media app."""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from media.config import load_settings
from media.db import build_engine

DB = build_engine(load_settings().database)

APP_REGISTRY = AppRegistry(apps=["media.piccolo_app"])
