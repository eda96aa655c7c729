"""Lookup indexes of the share-link tables (after the tables: raw steps run first)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T23:06:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "share link indexes"

# Plain SQL that SQLite and PostgreSQL both accept; IF NOT EXISTS keeps a re-run harmless.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS share_link_owner_created ON share_link"
    " (owner_issuer, owner_subject, created_at, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS share_link_media_link_media"
    " ON share_link_media (link, media)",
)


async def create_indexes() -> None:
    """Run inside the migration's transaction, on the engine being migrated."""
    engine = engine_finder()
    assert engine is not None
    for ddl in INDEXES:
        await engine.run_ddl(ddl)


async def forwards() -> MigrationManager:
    """The indexes."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    manager.add_raw(create_indexes)
    return manager
