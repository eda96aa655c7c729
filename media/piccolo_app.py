"""The Piccolo app of media-service: its tables and migrations folder."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

import migrations
from media.tables import TABLES

APP_NAME = "media"

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(Path(migrations.__file__).parent),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
