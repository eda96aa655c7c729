"""The `media-service` command: serve, worker, migrate, rewrap-keys, dev-token, upload, url..."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio

from media.config import Settings, load_settings
from media.errors import ConfigError, MediaError
from server.upload_client import parse_size

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


class _Parser(argparse.ArgumentParser):
    """Refusals of the command line in one line (no usage dump): `--help` shows the usage."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: message` and exit 2."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="media-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="migrate the embedded default if needed, then serve")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--workers", type=int, default=1, help="app processes on the one port (PostgreSQL)"
    )
    worker = commands.add_parser("worker", help="run processing jobs only (PostgreSQL)")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="jobs at once (MEDIA_PROCESSING_WORKERS)"
    )
    commands.add_parser("migrate", help="apply database migrations forward (idempotent)")
    rewrap = commands.add_parser(
        "rewrap-keys",
        help="re-wrap every data key under the newest MEDIA_ENCRYPTION_KEYS entry (resumable)",
    )
    rewrap.add_argument("--batch", type=int, default=200, help="rows read per query")
    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    token = commands.add_parser("dev-token", help="print a bearer JWT from the embedded issuer")
    token.add_argument("--subject", default="dev-user")
    token.add_argument(
        "--scope",
        action="extend",
        nargs="+",
        choices=["user", "admin", "anonymous"],
        help="one or more scopes; repeatable (--scope user admin, or --scope user --scope admin)",
    )
    token.add_argument("--ttl", type=_seconds, default=3600, help="lifetime in seconds (>= 1)")
    token.add_argument("--server", help="the server's public URL (default MEDIA_PUBLIC_URL)")
    upload = commands.add_parser("upload", help="upload a file through the GraphQL flow")
    upload.add_argument("file", type=Path)
    upload.add_argument("--name")
    upload.add_argument("--server")
    upload.add_argument(
        "--part-size",
        type=parse_size,
        help="send in parts of this size (e.g. 16M; at least 5M); files over 64 MiB always go "
        "in parts, 4 at a time",
    )
    upload.add_argument("--resume", metavar="UPLOAD_ID", help="finish an interrupted upload")
    url = commands.add_parser("url", help="print a fresh stream URL for a media id")
    url.add_argument("media_id")
    url.add_argument("--download", action="store_true", help="a download URL instead")
    url.add_argument("--server")
    sample = commands.add_parser("sample-video", help="write a small test clip to upload")
    sample.add_argument("--output", type=Path, default=Path("clip.mp4"))
    sample.add_argument("--seconds", type=_seconds, default=4)
    return parser


def _seconds(raw: str) -> int:
    """A whole number of seconds, at least 1 (argparse prints the refusal on one line)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        return _run(args, settings)
    except ConfigError as exc:
        variable = exc.data.get("variable", "setting")
        print(f"media-service: {variable}: {exc.detail}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers)
    if args.command == "worker":
        return _worker(settings, args.concurrency or settings.processing_workers)
    if args.command == "migrate":
        from media.db import migrate

        anyio.run(migrate, settings)
        print("migrations applied", file=sys.stderr)
        return 0
    if args.command == "rewrap-keys":
        return anyio.run(_rewrap_keys, settings, max(1, args.batch))
    if args.command == "export-schema":
        from api.schema import schema_sdl

        sdl = schema_sdl()
        if args.output:
            args.output.write_text(sdl)
        else:
            sys.stdout.write(sdl)
        return 0
    if args.command == "dev-token":
        return _dev_token(settings, args)
    if args.command == "sample-video":
        from media.processing.sample import write_sample_video

        print(write_sample_video(args.output, args.seconds))
        return 0
    from server.client import run_client

    return run_client(settings, args)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    import uvicorn

    from media.db import migrate
    from server.app import create_app
    from server.request_log import configure_logging

    if workers < 1:
        print("media-service: serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and settings.database.engine == "sqlite":
        # Jobs and events cross processes only through PostgreSQL.
        print("media-service: serve: --workers needs PostgreSQL", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if settings.database.engine == "sqlite":
            anyio.run(migrate, settings)
        anyio.run(_database_answers, settings)
    except (MediaError, OSError) as exc:
        print(f"media-service serve: MEDIA_DATABASE_URL: {_database_problem(exc)}", file=sys.stderr)
        return 2
    public = f"http://{host}:{port}"
    if settings.graphiql:
        print(f"GraphiQL: {(settings.public_url or public)}/graphql", file=sys.stderr, flush=True)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # it would print signed URLs; RequestLogMiddleware logs instead
        "log_config": None,
        "timeout_graceful_shutdown": 30,
        # docs/security.md INV-8: past this many connections and requests uvicorn answers 503
        # instead of queueing.
        "limit_concurrency": settings.max_concurrency,
        "proxy_headers": True,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, public_url=public), **options)
        return 0
    # uvicorn's supervisor starts each worker in a fresh process that builds its own app (its own
    # pools, event listener and in-process job worker) from the same environment.
    os.environ.setdefault("MEDIA_PUBLIC_URL", settings.public_url or public)
    if settings.metrics_enabled:
        # One /metrics for all of them: each writes its values into a folder the scrape merges.
        from server.observability.multiprocess import prepare_multiprocess_metrics

        prepare_multiprocess_metrics(settings, os.environ)
    uvicorn.run("server.app:app_from_environment", factory=True, workers=workers, **options)
    return 0


async def _rewrap_keys(settings: Settings, batch: int) -> int:
    from media.db import migrate, open_database
    from media.repository import Repository
    from media.storage.keyring import Keyring, check_master_keys, rewrap_all

    if not settings.encryption_keys:
        raise ConfigError("rewrap-keys needs the master keys", variable="MEDIA_ENCRYPTION_KEYS")
    keyring = Keyring(settings.encryption_keys)
    if settings.database.engine == "sqlite":
        await migrate(settings)
    database = await open_database(settings)
    try:
        repository = Repository(database)
        await check_master_keys(keyring, repository)
        report = await rewrap_all(repository, keyring, batch)
        left = sorted(await repository.master_key_ids() - {keyring.newest})
    finally:
        await database.close()
    print(f"rewrapped {report.rewrapped} data key(s) under master key {keyring.newest!r}")
    if report.unreadable:
        print(f"master key(s) {list(report.unreadable)} are named but not configured: add them")
    if report.damaged:
        print(
            f"{len(report.damaged)} data key(s) fail authentication (damaged envelope rows),"
            f" left as they are: {', '.join(report.damaged[:10])}",
            file=sys.stderr,
        )
    if left:
        print(f"data keys still under {left}: run rewrap-keys again", file=sys.stderr)
        return 1
    print("every data key is under the newest master key: older keys may be removed")
    return 0


def _worker(settings: Settings, concurrency: int) -> int:
    from server.worker import run_worker

    if settings.database.engine == "sqlite":
        print(
            "media-service: worker: needs PostgreSQL; on SQLite `serve` runs the jobs",
            file=sys.stderr,
        )
        return 2
    if concurrency < 1:
        print("media-service: worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    return run_worker(settings, concurrency)


async def _database_answers(settings: Settings) -> None:
    from media.db import open_database

    database = await open_database(settings)
    try:
        await database.ping()
    finally:
        await database.close()


def _database_problem(exc: BaseException) -> str:
    """One line: what is wrong with the database and what to do."""
    cause = f"{exc.__cause__ or exc}" or type(exc).__name__
    if "does not exist" in cause:
        return f"the database does not exist ({cause}); create it, or fix the URL"
    return f"the database cannot be reached ({cause}); start it, or fix the URL"


def _dev_token(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from server.client import ClientError, dev_issuer_for

    if not settings.uses_dev_issuer:
        print("media-service: dev-token: MEDIA_OIDC_ISSUER names a real issuer", file=sys.stderr)
        return 2
    try:
        if args.server:
            with httpx.Client(base_url=args.server.rstrip("/"), timeout=10) as http:
                issuer = dev_issuer_for(settings, http)
        else:
            issuer = dev_issuer_for(settings, None)
    except httpx.ConnectError:
        print(f"media-service dev-token: cannot reach {args.server}", file=sys.stderr)
        return 1
    except (ClientError, httpx.HTTPError) as exc:
        print(f"media-service dev-token: {exc}", file=sys.stderr)
        return 1
    scopes = args.scope or ["user"]
    print(issuer.mint(args.subject, scopes, audience=settings.oidc_audience, ttl_s=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
