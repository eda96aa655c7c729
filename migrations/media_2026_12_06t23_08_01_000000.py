"""Every media gets a random public id, and public ids become unique."""

import secrets

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-06T23:08:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "backfill media public ids, unique index"

BATCH = 500


def _new_public_id() -> str:
    # Frozen copy of media.ids.new_media_id: a migration must not change when the code does.
    while True:
        value = secrets.token_urlsafe(16)
        if not value.startswith("-"):
            return value


async def backfill_and_index() -> None:
    """Give rows created before public ids one each, then forbid duplicates."""
    engine = engine_finder()
    assert engine is not None
    while True:
        rows = await engine.run_querystring(
            QueryString("SELECT id FROM media WHERE public_id IS NULL LIMIT {}", BATCH)
        )
        if not rows:
            break
        for row in rows:
            await engine.run_querystring(
                QueryString(
                    "UPDATE media SET public_id = {} WHERE id = {}", _new_public_id(), row["id"]
                )
            )
    await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS media_public_id ON media (public_id)")


async def forwards() -> MigrationManager:
    """Runs after the column exists (previous migration)."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    manager.add_raw(backfill_and_index)
    return manager
