"""Composite indexes for every lookup, and the seeded allow-list of media types."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-26T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes and media types"

# Plain SQL that SQLite and PostgreSQL both accept; IF NOT EXISTS keeps a re-run harmless.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS media_created_id ON media (created_at, id)",
    "CREATE INDEX IF NOT EXISTS binding_owner_created ON user_media_binding"
    " (owner_issuer, owner_subject, created_at, media)",
    "CREATE INDEX IF NOT EXISTS upload_state_expires ON upload_request (state, expires_at)",
    "CREATE INDEX IF NOT EXISTS upload_owner_state ON upload_request"
    " (owner_issuer, owner_subject, state)",
)

MEDIA_TYPES = (
    ("mp4", "video/mp4", "video"),
    ("webm", "video/webm", "video"),
    ("png", "image/png", "image"),
    ("jpeg", "image/jpeg", "image"),
    ("jpg", "image/jpeg", "image"),
)


async def create_indexes_and_seed() -> None:
    """Run inside the migration's transaction, on the engine being migrated."""
    engine = engine_finder()
    assert engine is not None
    for ddl in INDEXES:
        await engine.run_ddl(ddl)
    for extension, mime_type, kind in MEDIA_TYPES:
        await engine.run_querystring(
            QueryString(
                "INSERT INTO media_type (extension, mime_type, kind) VALUES ({}, {}, {})"
                " ON CONFLICT (extension) DO NOTHING",
                extension,
                mime_type,
                kind,
            )
        )


async def forwards() -> MigrationManager:
    """Indexes first, then the media_type rows."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    manager.add_raw(create_indexes_and_seed)
    return manager
