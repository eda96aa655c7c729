"""Multipart uploads: part size, the storage's multipart id and the declared SHA-256."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T23:12:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "multipart uploads"


def _params(**extra: object) -> dict[str, object]:
    return {
        "default": None,
        "null": True,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **extra,
    }


async def forwards() -> MigrationManager:
    """Three nullable columns on upload_request (additive, both engines)."""
    manager = MigrationManager(migration_id=ID, app_name="media", description=DESCRIPTION)
    for name, column_class, extra in (
        ("part_size", BigInt, {}),
        ("multipart_id", Varchar, {"length": 1024}),
        ("sha256", Varchar, {"length": 64}),
    ):
        manager.add_column(
            table_class_name="UploadRequestRow",
            tablename="upload_request",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=_params(**extra),
            schema=None,
        )
    return manager
