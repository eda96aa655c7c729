"""Piccolo migrations of the media app: additive only, valid on SQLite and PostgreSQL.

History imports nothing of the live code: what the migrations need is defined in them, or here
when the live tables need the very same class (Piccolo compares a column's class with the one the
migrations recorded, so a copy would read as a change). Change nothing here: a new column type is
a new class and a new migration.
"""

from piccolo.columns import BigSerial


class Identity(BigSerial):
    """A 64-bit primary key that is never handed out twice, even after deletes."""

    @property
    def ddl(self) -> str:
        """The column definition; SQLite needs AUTOINCREMENT to stop reusing deleted ids."""
        name = self._meta.db_column_name
        # A reused id would let a still-valid signed URL of a deleted media reach a new one.
        if self._meta.engine_type == "sqlite":
            return f'"{name}" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL'
        return f'"{name}" BIGSERIAL PRIMARY KEY NOT NULL'
