"""The (media, name) lookup of hls_file, unique: one object per name of a media's ladder.

Its own migration: a migration runs its raw SQL before it creates tables.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T02:06:08:000000"
VERSION = "1.38.0"
DESCRIPTION = "hls_file index"

# Plain SQL that SQLite and PostgreSQL both accept; IF NOT EXISTS keeps a re-run harmless.
INDEXES = ("CREATE UNIQUE INDEX IF NOT EXISTS hls_file_media_name ON hls_file (media, name)",)


async def create_indexes() -> None:
    """Run inside the migration's transaction, on the engine being migrated."""
    engine = engine_finder()
    assert engine is not None
    for ddl in INDEXES:
        await engine.run_ddl(ddl)


async def forwards() -> MigrationManager:
    """The index only."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    manager.add_raw(create_indexes)
    return manager
