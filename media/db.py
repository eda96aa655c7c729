"""Engines from Settings, tables bound per engine, write transactions, errors and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import io
import logging
import pkgutil
import sqlite3
import types
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import anyio
import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import Finder, MigrationModule
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType

import migrations
from media import tables
from media.config import DatabaseUrl, Settings
from media.errors import Conflict, MediaError, Unavailable
from media.piccolo_app import APP_NAME
from media.telemetry import tracing

log = logging.getLogger(__name__)

# docs/stack-notes.md §10: the 5 s default loses under concurrent writers.
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0  # docs/security.md §2.4: DB connect budget
PING_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0

P = ParamSpec("P")
T = TypeVar("T")


class _SQLiteWrite(SQLiteTransaction):
    """BEGIN IMMEDIATE that closes its connection when BEGIN itself fails."""

    async def begin(self) -> None:
        try:
            await super().begin()  # type: ignore[no-untyped-call]
        except BaseException:
            # docs/stack-notes.md §10: else the aiosqlite thread leaks and the process never exits.
            await self.connection.close()
            raise


class _PostgresWrite(PostgresTransaction):
    """A transaction that waits a bounded time for a connection and gives it back when BEGIN
    fails."""

    async def get_connection(self) -> Any:
        """A pooled connection within the engine's budget (asyncpg would wait forever)."""
        pool = self.engine.pool
        if pool is None:
            return await self.engine.get_new_connection()
        budget = getattr(self.engine, "budget_s", None)
        return await pool.acquire(timeout=budget)

    async def begin(self) -> None:
        try:
            await super().begin()  # type: ignore[no-untyped-call]
        except BaseException:
            if self.engine.pool is not None:
                await self.engine.pool.release(self.connection)
            else:
                await self.connection.close()
            raise


class _PostgresEngine(PostgresEngine):
    """PostgresEngine without the blocking version probe in its constructor; ping() checks.

    Statements outside a transaction get one time budget for waiting on the pool and running:
    asyncpg's pool waits forever, so a busy pool queued requests in waves of the query timeout.
    """

    budget_s: float = 10.0

    async def check_version(self) -> None:
        """Skipped: Piccolo would connect synchronously and warn when the server is down."""

    async def _run_in_pool(self, query: str, args: Sequence[Any] | None = None) -> Any:
        if not self.pool:
            raise ValueError("A pool isn't currently running.")
        with anyio.fail_after(self.budget_s):  # TimeoutError: Unavailable at the repository
            async with self.pool.acquire() as connection:
                return await connection.fetch(query, *(args or ()))


def build_engine(url: DatabaseUrl, *, timeout_s: float = 10.0) -> Engine[Any]:
    """A Piccolo engine for a parsed database URL (no connection is made)."""
    if url.engine == "sqlite":
        assert url.path is not None
        return SQLiteEngine(path=str(url.path), timeout=SQLITE_BUSY_TIMEOUT_S)
    config: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "database": url.database,
        "timeout": min(CONNECT_TIMEOUT_S, timeout_s),
        "command_timeout": timeout_s,
        "server_settings": {"application_name": "media-service"},
    }
    if url.password is not None:
        config["password"] = url.password
    engine = _PostgresEngine(config=config)
    engine.budget_s = timeout_s
    return engine


def _bind(table: type[T], engine: Engine[Any]) -> type[T]:
    """A subclass of `table` that runs on `engine`, so several databases can live in one process."""
    meta = table._meta  # type: ignore[attr-defined]
    kwargs = {"tablename": meta.tablename, "db": engine}
    return types.new_class(table.__name__, (table,), kwargs)


@dataclass(frozen=True, slots=True)
class BoundTables:
    """The app's tables, bound to one engine."""

    media_type: type[tables.MediaTypeRow]
    media: type[tables.MediaRow]
    binding: type[tables.UserMediaBindingRow]
    metadata: type[tables.MediaMetadataRow]
    thumbnail: type[tables.ThumbnailRow]
    upload: type[tables.UploadRequestRow]
    share_link: type[tables.ShareLinkRow]
    share_media: type[tables.ShareLinkMediaRow]
    envelope: type[tables.ObjectEnvelopeRow]
    rendition: type[tables.RenditionRow]
    hls_file: type[tables.HlsFileRow]

    @classmethod
    def on(cls, engine: Engine[Any]) -> BoundTables:
        """Bind every table of the app to `engine`."""
        return cls(
            media_type=_bind(tables.MediaTypeRow, engine),
            media=_bind(tables.MediaRow, engine),
            binding=_bind(tables.UserMediaBindingRow, engine),
            metadata=_bind(tables.MediaMetadataRow, engine),
            thumbnail=_bind(tables.ThumbnailRow, engine),
            upload=_bind(tables.UploadRequestRow, engine),
            share_link=_bind(tables.ShareLinkRow, engine),
            share_media=_bind(tables.ShareLinkMediaRow, engine),
            envelope=_bind(tables.ObjectEnvelopeRow, engine),
            rendition=_bind(tables.RenditionRow, engine),
            hls_file=_bind(tables.HlsFileRow, engine),
        )


_SQLITE_OUTAGES = ("locked", "busy", "unable to open", "disk i/o", "readonly", "no such table")
_PG_OUTAGES = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.UndefinedTableError,
)


def translate_error(exc: BaseException) -> MediaError | None:
    """The MediaError for a driver error, or None when it is a programming error."""
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, (OSError, TimeoutError, *_PG_OUTAGES)):
        return Unavailable(type(exc).__name__, dependency="database")
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and "clos" in str(exc):
        return Unavailable(type(exc).__name__, dependency="database")
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if any(word in message for word in _SQLITE_OUTAGES):
            return Unavailable(type(exc).__name__, dependency="database")
    if isinstance(
        exc, sqlite3.IntegrityError | asyncpg.exceptions.IntegrityConstraintViolationError
    ):
        return Conflict(type(exc).__name__, constraint=getattr(exc, "constraint_name", None))
    return None


def guarded(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn driver errors of `method` into MediaErrors (Unavailable, Conflict): the one place."""

    # One span per call of a database operation; its name is the operation, never the SQL.
    span_name = f"db {method.__name__}"
    attributes = {"db.operation.name": method.__name__}

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with tracing.span(span_name, attributes):
            try:
                return await method(*args, **kwargs)
            except MediaError:
                raise
            except Exception as exc:
                translated = translate_error(exc)
                if translated is None:
                    raise
                raise translated from exc

    return wrapper


class Database:
    """One open database: its engine, bound tables and write transactions."""

    def __init__(self, engine: Engine[Any], *, timeout_s: float = 10.0) -> None:
        self.engine = engine
        self.tables = BoundTables.on(engine)
        self.timeout_s = timeout_s

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A write transaction: BEGIN IMMEDIATE on SQLite (stack-notes §10), BEGIN on PostgreSQL."""
        tx: SQLiteTransaction | PostgresTransaction
        if isinstance(self.engine, SQLiteEngine):
            tx = _SQLiteWrite(engine=self.engine, transaction_type=TransactionType.immediate)
        else:
            assert isinstance(self.engine, PostgresEngine)
            tx = _PostgresWrite(engine=self.engine)
        async with tx:
            yield

    @guarded
    async def ping(self) -> None:
        """Run `SELECT 1`; raise Unavailable(dependency="database") within a few seconds."""
        try:
            with anyio.fail_after(min(PING_TIMEOUT_S, self.timeout_s)):
                await self.tables.media_type.raw("SELECT 1")
        except TimeoutError as exc:
            raise Unavailable("timeout", dependency="database") from exc

    async def close(self) -> None:
        """Close the connection pool (PostgreSQL); SQLite holds no open connection."""
        pool = getattr(self.engine, "pool", None)
        if pool is None:
            return
        try:
            with anyio.fail_after(CLOSE_TIMEOUT_S):
                await pool.close()
        except TimeoutError:
            pool.terminate()
        self.engine.pool = None  # type: ignore[attr-defined]


async def _build(settings: Settings) -> Engine[Any]:
    url = settings.database
    if url.path is not None:
        await anyio.Path(url.path.parent).mkdir(parents=True, exist_ok=True)
    # Piccolo's Engine constructor runs coroutines through asyncio.run; keep that off the loop.
    return await anyio.to_thread.run_sync(
        functools.partial(build_engine, url, timeout_s=settings.database_timeout_s)
    )


@guarded
async def open_database(settings: Settings) -> Database:
    """Build the engine: WAL + busy timeout on SQLite, a started pool on PostgreSQL."""
    engine = await _build(settings)
    if isinstance(engine, SQLiteEngine):
        await engine.run_ddl("PRAGMA journal_mode=WAL")
    else:
        assert isinstance(engine, PostgresEngine)
        # docs/stack-notes.md §11: asyncpg's min_size defaults to 10.
        await engine.start_connection_pool(min_size=1, max_size=settings.database_pool_size)
    return Database(engine, timeout_s=settings.database_timeout_s)


# Piccolo's migration runner (MigrationManager.run) and the tables a migration declares find their
# engine through engine_finder(), i.e. the process-wide piccolo_conf, with no parameter to pass one.
# migrate() must use the engine of its Settings (a process may open several databases), so while
# a task migrates Finder.get_engine answers with that task's engine; otherwise (the Piccolo CLI)
# it defers to piccolo_conf. Patched once, scoped by a ContextVar.
_MIGRATING: ContextVar[Engine[Any] | None] = ContextVar("media_migrating_engine", default=None)
# Piccolo prints each migration to stdout, which carries the JSON log and the CLI's own output: the
# prints are swallowed (the log names each migration). redirect_stdout swaps sys.stdout for the
# whole process, so migrations in one event loop take turns (an asyncio lock belongs to one loop,
# and tests migrate from many).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _install_engine_override() -> None:
    original = Finder.get_engine
    if getattr(original, "media_override", False):
        return

    def get_engine(self: Finder, module_name: str | None = None) -> Engine[Any] | None:
        engine = _MIGRATING.get()
        return engine if engine is not None else original(self, module_name)

    get_engine.media_override = True  # type: ignore[attr-defined]
    setattr(Finder, "get_engine", get_engine)  # noqa: B010


def _migration_modules() -> dict[str, MigrationModule]:
    """The media app's migrations by id, imported as modules of the `migrations` package."""
    found: dict[str, MigrationModule] = {}
    for info in pkgutil.iter_modules(migrations.__path__):
        module: Any = importlib.import_module(f"{migrations.__name__}.{info.name}")
        if getattr(module, "ID", None):
            found[module.ID] = module
    return found


@guarded
async def migrate(settings: Settings) -> None:
    """Apply every pending migration in id order (idempotent), creating the SQLite file if needed.

    The same steps as `piccolo migrations forwards media`: the `migration` table records each
    one, so either can follow the other."""
    engine = await _build(settings)
    if isinstance(engine, SQLiteEngine):
        await engine.run_ddl("PRAGMA journal_mode=WAL")
    _install_engine_override()
    history = _bind(Migration, engine)
    lock = _LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if not await history.table_exists():
            await history.create_table()
        ran = set(await history.get_migrations_which_ran(app_name=APP_NAME))
        modules = _migration_modules()
        for migration_id in sorted(modules.keys() - ran):
            token = _MIGRATING.set(engine)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    manager = await modules[migration_id].forwards()
                    await manager.run()
            finally:
                _MIGRATING.reset(token)
            await history.insert(history(name=migration_id, app_name=APP_NAME))
            log.info("migration %s applied", migration_id)
    if isinstance(engine, PostgresEngine):
        from media import jobstore  # imports this module: the queue's schema needs our engine

        if await jobstore.apply_schema(engine):
            log.info("migrations: job queue schema installed")
