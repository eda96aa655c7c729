"""Database fixtures: a scratch PostgreSQL database, fresh migrated databases on both engines."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest

from media.config import Settings
from media.db import Database, migrate, open_database
from media.repository import Repository
from tests.support import free_port, unavailable

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
ADMIN_DSN = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"


def database_settings(database_url: str, data_dir: Path) -> Settings:
    """Development Settings pointing at `database_url`, with a local storage folder."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        storage_url=f"file://{data_dir / 'objects'}",
        database_timeout_s=5.0,
    )


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(template: str | None = None) -> str:
    """Create a uniquely named database (optionally from a template); return its URL."""
    name = f"media_test_{uuid.uuid4().hex[:16]}"
    suffix = f' TEMPLATE "{template}"' if template else ""
    await _admin(f'CREATE DATABASE "{name}"{suffix}')
    return f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


async def drop_database(url: str) -> None:
    """Drop the database of `url`, cutting any connection still open."""
    name = url.rsplit("/", 1)[1]
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _reachable() -> bool:
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A uniquely named, empty PostgreSQL database for the session; dropped at the end."""
    # Sync fixtures with their own short loops: admin connections are not bound to the test loop.
    if not anyio.run(_reachable):
        unavailable(f"PostgreSQL not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    url = anyio.run(create_database, None)
    yield url
    anyio.run(drop_database, url)


@contextlib.contextmanager
def fresh_database(template: str) -> Iterator[str]:
    """A migrated database of its own (copied from `template`), dropped at the end.

    Every app process runs queue workers: apps sharing a database would work each other's jobs
    against the wrong storage, so each test service gets its own database."""
    url = anyio.run(create_database, template)
    try:
        yield url
    finally:
        anyio.run(drop_database, url)


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a migrated PostgreSQL database to copy with create_database(template)."""
    url = anyio.run(create_database, None)
    anyio.run(migrate, database_settings(url, tmp_path_factory.mktemp("pg-template")))
    yield url.rsplit("/", 1)[1]
    anyio.run(drop_database, url)


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    anyio.run(migrate, database_settings(postgres_url, tmp_path_factory.mktemp("pg-migrated")))
    return postgres_url


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "media.sqlite3"
    anyio.run(migrate, database_settings(f"sqlite:///{path}", path.parent))
    return path


async def _empty(url: str) -> None:
    # Everything but the seeded media_type rows; the children go with media (ON DELETE CASCADE).
    connection = await asyncpg.connect(url, timeout=3)
    try:
        await connection.execute("SET lock_timeout = '5s'")
        await connection.execute("TRUNCATE media, object_envelope CASCADE")
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database with no media for one test: a fresh SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_migrated_sqlite")
        path = tmp_path / "db" / "media.sqlite3"
        path.parent.mkdir()
        # A copy of a migrated file is far cheaper than migrating again; no -wal is left behind.
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_migrated_postgres")
    anyio.run(_empty, url)
    return url


@pytest.fixture
async def database(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An open Database on `database_url`, closed after the test."""
    db = await open_database(database_settings(database_url, tmp_path))
    yield db
    await db.close()


@pytest.fixture
def repository(database: Database) -> Repository:
    """A Repository on the fresh `database`."""
    return Repository(database)


class TcpProxy:
    """A loopback TCP relay to PostgreSQL that a test can cut and restore, to stage an outage."""

    def __init__(self, target_port: int = POSTGRES_PORT) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url_for(self, database_url: str) -> str:
        """The same database, reached through the relay."""
        return database_url.replace(f":{POSTGRES_PORT}/", f":{self.port}/", 1)

    async def start(self) -> None:
        """Listen (again) on the same port."""
        self._server = await asyncio.start_server(self._relay, POSTGRES_HOST, self.port)

    async def cut(self) -> None:
        """Stop listening and reset every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(POSTGRES_HOST, self._target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        async with anyio.create_task_group() as group:
            group.start_soon(_pipe, reader, up_writer)
            group.start_soon(_pipe, up_reader, writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
