"""Migrations: idempotent on both engines, in step with media/tables.py, usable from the CLI."""

from __future__ import annotations

import importlib
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest
from piccolo.apps.migrations.commands.new import AutoMigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from media.db import migrate
from media.ids import is_media_id
from media.piccolo_app import APP_CONFIG
from tests.support.postgres import create_database, database_settings, drop_database

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "media",
    "media_type",
    "user_media_binding",
    "media_metadata",
    "thumbnail",
    "upload_request",
    "share_link",
    "share_link_media",
    "object_envelope",
    "rendition",
    "hls_file",
}
CHILDREN = {
    "user_media_binding",
    "media_metadata",
    "thumbnail",
    "upload_request",
    "share_link_media",
    "rendition",
    "hls_file",
}
INDEXES = {
    "media_created_id",
    "binding_owner_created",
    "upload_state_expires",
    "upload_owner_state",
    "media_public_id",
    "share_link_owner_created",
    "share_link_media_link_media",
    "hls_file_media_name",
}


def _migration_ids() -> list[str]:
    """The id of every migration file, read from the files: a new one needs no edit here."""
    found = []
    for path in (ROOT / "migrations").glob("media_*.py"):
        match = re.search(r'^ID = "(.+)"$', path.read_text(), re.MULTILINE)
        assert match is not None, path
        found.append(match[1])
    return sorted(found)


MIGRATION_IDS = _migration_ids()


class Inspector:
    """Plain catalog queries against a freshly migrated database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite:")

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite:
            with sqlite3.connect(self.url.removeprefix("sqlite://")) as connection:
                return list(connection.execute(sql).fetchall())
        connection = await asyncpg.connect(self.url, timeout=3)
        try:
            return [tuple(record) for record in await connection.fetch(sql)]
        finally:
            await connection.close()

    async def execute(self, sql: str) -> None:
        if self.sqlite:
            with sqlite3.connect(self.url.removeprefix("sqlite://")) as connection:
                connection.execute(sql)
            return
        connection = await asyncpg.connect(self.url, timeout=3)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def tables(self) -> set[str]:
        if self.sqlite:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return {row[0] for row in await self.rows(sql)}

    async def indexes(self) -> set[str]:
        if self.sqlite:
            sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        return {row[0] for row in await self.rows(sql)}

    async def cascading_children(self) -> set[str]:
        if self.sqlite:
            found = set()
            for table in CHILDREN:
                for row in await self.rows(f"PRAGMA foreign_key_list({table})"):
                    if row[2] == "media" and row[6] == "CASCADE":
                        found.add(table)
            return found
        sql = (
            "SELECT tc.table_name FROM information_schema.referential_constraints rc"
            " JOIN information_schema.table_constraints tc"
            " ON tc.constraint_name = rc.constraint_name WHERE rc.delete_rule = 'CASCADE'"
        )
        return {row[0] for row in await self.rows(sql)}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists but was never migrated (SQLite: not even the file or folder)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new' / 'dir' / 'media.sqlite3'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) when PostgreSQL is down
    url = anyio.run(create_database, None)
    yield url
    anyio.run(drop_database, url)


async def test_migrate_twice_is_idempotent(empty_url: str, tmp_path: Path) -> None:
    settings = database_settings(empty_url, tmp_path)
    await migrate(settings)
    await migrate(settings)
    inspector = Inspector(empty_url)
    assert await inspector.tables() >= TABLES
    assert await inspector.indexes() >= INDEXES
    children = await inspector.cascading_children()
    # On PostgreSQL `migrate` also installs the job queue's own tables (docs/jobs.md).
    assert {name for name in children if not name.startswith("procrastinate_")} == CHILDREN
    if not inspector.sqlite:
        assert {"procrastinate_jobs", "procrastinate_workers"} <= set(await inspector.tables())
    ran = await inspector.rows("SELECT name FROM migration WHERE app_name = 'media'")
    assert sorted(row[0] for row in ran) == MIGRATION_IDS
    assert len(await inspector.rows("SELECT extension FROM media_type")) == 12


async def test_sqlite_file_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "media.sqlite3"
    await migrate(database_settings(f"sqlite:///{path}", tmp_path))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_migrations_match_the_tables() -> None:
    statements = await AutoMigrationManager().get_alter_statements(app_config=APP_CONFIG)
    assert [s for group in statements for s in group.statements] == []


def _piccolo_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "PICCOLO_"))}
    env.update(
        MEDIA_DATA_DIR=str(tmp_path),
        MEDIA_DATABASE_URL=database_url,
        MEDIA_ENV="development",
        PYTHONPATH=str(ROOT),
    )
    return env


async def test_piccolo_cli_and_migrate_agree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    piccolo = Path(sys.executable).with_name("piccolo")
    result = await anyio.run_process(
        [str(piccolo), "migrations", "forwards", "media"],
        cwd=ROOT,
        env=_piccolo_env(tmp_path, url),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    await migrate(database_settings(url, tmp_path))
    ran = await Inspector(url).rows("SELECT name FROM migration")
    assert sorted(row[0] for row in ran) == MIGRATION_IDS


def test_piccolo_conf_follows_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [k for k in os.environ if k.startswith("MEDIA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MEDIA_DATA_DIR", str(tmp_path))
    # Import afresh, and leave no engine of this test behind for later tests.
    monkeypatch.setitem(sys.modules, "piccolo_conf", None)  # type: ignore[arg-type]
    del sys.modules["piccolo_conf"]
    conf = importlib.import_module("piccolo_conf")
    conf = importlib.reload(conf)
    assert isinstance(conf.DB, SQLiteEngine)
    assert conf.DB.path == str(tmp_path / "media.sqlite3")
    assert conf.APP_REGISTRY.apps == ["media.piccolo_app"]
    monkeypatch.setenv("MEDIA_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/somewhere")
    monkeypatch.setenv("MEDIA_ENV", "development")
    conf = importlib.reload(conf)
    assert isinstance(conf.DB, PostgresEngine)
    assert (conf.DB.config["host"], conf.DB.config["database"]) == ("127.0.0.1", "somewhere")


PUBLIC_ID_MIGRATIONS = ("2026-12-06T23:08:00:000000", "2026-12-06T23:08:01:000000")


async def test_public_ids_are_backfilled_for_existing_media(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import db

    settings = database_settings(empty_url, tmp_path)
    everything = db._migration_modules

    def before_public_ids() -> dict[str, Any]:
        return {k: v for k, v in everything().items() if k < PUBLIC_ID_MIGRATIONS[0]}

    monkeypatch.setattr(db, "_migration_modules", before_public_ids)
    await migrate(settings)
    inspector = Inspector(empty_url)
    for number in range(3):
        stamp = "2026-01-01 00:00:00+00:00"
        await inspector.execute(
            "INSERT INTO media (name, name_folded, media_type, kind, status, storage_key,"
            " url_generation, has_thumbnail, created_at, updated_at) VALUES"
            f" ('m{number}', 'm{number}', 'video/mp4', 'video', 'success', 'key{number}', 0,"
            f" false, '{stamp}', '{stamp}')"
        )
    monkeypatch.setattr(db, "_migration_modules", everything)
    await migrate(settings)
    ids = [row[0] for row in await inspector.rows("SELECT public_id FROM media ORDER BY id")]
    assert len(set(ids)) == 3 and all(is_media_id(value) for value in ids)
    assert "media_public_id" in await inspector.indexes()
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await inspector.execute(
            f"UPDATE media SET public_id = '{ids[0]}' WHERE public_id = '{ids[1]}'"
        )
