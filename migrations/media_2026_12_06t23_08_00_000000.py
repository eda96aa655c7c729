"""Media gain a public id column (filled and made unique by the next migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T23:08:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "media public id column"


async def forwards() -> MigrationManager:
    """A nullable column: SQLite cannot add a UNIQUE or NOT NULL column without a default."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    manager.add_column(
        table_class_name="MediaRow",
        tablename="media",
        column_name="public_id",
        db_column_name="public_id",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 22,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
