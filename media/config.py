"""Settings: one frozen value built from the environment. The only reader of os.environ."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from media.errors import ConfigError

URL_TTL_CAP_S = 24 * 3600  # docs/security.md §1.4: read URLs never live longer than a day
UPLOAD_TTL_CAP_S = 3600  # docs/security.md §1.4: upload URLs never live longer than an hour
MULTIPART_TTL_CAP_S = 7 * 24 * 3600  # a multipart upload lives days; its part URLs stay short
MIN_SIGNING_KEY_LENGTH = 32
# What processing may take beyond an upload's maximum duration (see Settings.longest_upload).
PROCESSING_MARGIN = timedelta(minutes=10)
MAX_LADDER_RUNGS = 6  # each rung is one more encoder fed by the single decode


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A parsed MEDIA_DATABASE_URL."""

    engine: str  # "sqlite" | "postgres"
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    database: str = ""


@dataclass(frozen=True, slots=True)
class StorageUrl:
    """A parsed MEDIA_STORAGE_URL."""

    scheme: str  # "file" | "s3"
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"


@dataclass(frozen=True, slots=True)
class MasterKey:
    """One entry of MEDIA_ENCRYPTION_KEYS: an id stored beside each data key it wraps."""

    id: str
    secret: bytes = field(repr=False)


MASTER_KEY_BYTES = 32
_MASTER_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SECRETS = frozenset({"signing_keys", "client_token", "metrics_token", "encryption_keys"})
# OpenTelemetry span exporters this build ships (OTEL_TRACES_EXPORTER); "none" turns tracing off.
TRACE_EXPORTERS = ("console", "otlp")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service, validated. See README 'Settings'."""

    data_dir: Path
    database_url: str
    storage_url: str
    env: str = "development"
    signing_keys: tuple[str, ...] = field(default=(), repr=False)
    oidc_issuer: str | None = None
    oidc_audience: str = "media-service"
    public_url: str | None = None
    url_ttl_s: int = 300
    upload_ttl_s: int = 3600
    multipart_ttl_s: int = 24 * 3600
    max_upload_bytes: int = 4 * 1024**3
    cors_origins: tuple[str, ...] = ("*",)
    log_level: str = "INFO"
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    graphql_max_nodes: int = 2000
    graphql_max_body_bytes: int = 1024 * 1024
    processing_workers: int = 2
    playback_max_height: int = 1080
    max_duration_s: float = 3 * 3600.0
    max_pending_uploads: int = 20
    reaper_interval_s: int = 60
    collector_interval_s: int = 3600
    upload_idle_timeout_s: float = 30.0
    upload_max_duration_s: float = 1800.0
    max_concurrency: int = 1000
    stream_chunk_bytes: int = 1024 * 1024
    stream_cache_s: float = 2.0
    storage_max_connections: int = 64
    storage_timeout_s: float = 15.0
    database_pool_size: int = 10
    database_timeout_s: float = 10.0
    client_token: str | None = field(default=None, repr=False)
    share_max_ttl_s: int = 30 * 86_400
    max_share_links: int = 1000
    # Unset, load_settings turns both off in production.
    graphiql: bool = True
    introspection: bool = True
    log_format: str = "text"
    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    metrics_multiproc_dir: Path | None = None
    traces_exporters: tuple[str, ...] = ()
    send_timeout_s: float = 60.0
    encryption_keys: tuple[MasterKey, ...] = field(default=(), repr=False)
    in_process_worker: bool = True
    job_stall_s: float = 60.0
    job_retry_s: int = 10
    processing_memory_mb: int = 512
    hls_enabled: bool = True
    hls_ladder: tuple[int, ...] = (360, 720, 1080)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name in _SECRETS else repr(getattr(self, f.name))}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @property
    def production(self) -> bool:
        """True when development conveniences (dev issuer, generated keys) are refused."""
        return self.env == "production"

    @property
    def database(self) -> DatabaseUrl:
        """The parsed database URL."""
        return parse_database_url(self.database_url)

    @property
    def storage(self) -> StorageUrl:
        """The parsed storage URL."""
        return parse_storage_url(self.storage_url)

    @property
    def uses_dev_issuer(self) -> bool:
        """True when tokens come from the built-in development issuer."""
        return self.oidc_issuer is None

    @property
    def tracing_enabled(self) -> bool:
        """True when OTEL_TRACES_EXPORTER names an exporter (tracing is off otherwise)."""
        return bool(self.traces_exporters)

    @property
    def longest_upload(self) -> timedelta:
        """How long an upload may still be running once its URL expired: its body is cut after
        MEDIA_UPLOAD_MAX_DURATION_S, and its processing gets PROCESSING_MARGIN more."""
        return timedelta(seconds=self.upload_max_duration_s) + PROCESSING_MARGIN

    @property
    def dev_key_path(self) -> Path:
        """Where the embedded signing key lives when MEDIA_SIGNING_KEYS is unset."""
        return self.data_dir / "signing.key"


def parse_database_url(url: str) -> DatabaseUrl:
    """Parse `sqlite:////abs/path` or `postgresql://user[:pw]@host[:port]/db`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:////abs/path: three slashes of the URL, then the absolute path's own.
        if not parts.path.startswith("//") or parts.netloc:
            raise ConfigError(
                "expected sqlite:////absolute/path.sqlite3", variable="MEDIA_DATABASE_URL"
            )
        return DatabaseUrl(engine="sqlite", path=Path(parts.path[1:]))
    if parts.scheme in ("postgres", "postgresql"):
        database = parts.path.lstrip("/")
        if not parts.hostname or not database:
            raise ConfigError(
                "expected postgresql://user@host:port/db", variable="MEDIA_DATABASE_URL"
            )
        return DatabaseUrl(
            engine="postgres",
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password,
            database=database,
        )
    raise ConfigError("expected a sqlite:// or postgresql:// URL", variable="MEDIA_DATABASE_URL")


def parse_storage_url(url: str) -> StorageUrl:
    """Parse `file:///abs/path` or `s3://bucket[/prefix]?endpoint_url=..&region=..&addressing=path`."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path.startswith("/") or parts.netloc:
            raise ConfigError("expected file:///absolute/path", variable="MEDIA_STORAGE_URL")
        return StorageUrl(scheme="file", path=Path(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError("expected s3://bucket?endpoint_url=...", variable="MEDIA_STORAGE_URL")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint_url", "region", "addressing"}
        if unknown:
            raise ConfigError(
                f"unknown storage URL parameter(s) {sorted(unknown)}", variable="MEDIA_STORAGE_URL"
            )
        style = query.get("addressing", "auto")
        if style not in ("auto", "path", "virtual"):
            raise ConfigError(
                "addressing must be auto, path or virtual", variable="MEDIA_STORAGE_URL"
            )
        return StorageUrl(
            scheme="s3",
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=query.get("endpoint_url"),
            region=query.get("region"),
            addressing_style=style,
        )
    raise ConfigError("expected a file:// or s3:// URL", variable="MEDIA_STORAGE_URL")


N = TypeVar("N", int, float)


def _number(kind: Callable[[str], N], label: str, name: str, low: N, high: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"expected {label}, got {raw!r}", variable=name) from None
        if not low <= value <= high:  # also refuses nan
            raise ConfigError(f"expected {low}..{high}, got {value}", variable=name)
        return value

    return parse


def _int(name: str, low: int, high: int) -> Callable[[str], int]:
    return _number(int, "an integer", name, low, high)


def _float(name: str, low: float, high: float) -> Callable[[str], float]:
    return _number(float, "a number", name, low, high)


def _choice(name: str, *choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower() if name != "MEDIA_LOG_LEVEL" else raw.strip().upper()
        if value not in choices:
            raise ConfigError(f"expected one of {', '.join(choices)}, got {raw!r}", variable=name)
        return value

    return parse


def _http_url(name: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parts = urlsplit(raw.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(f"expected an http(s) URL without query, got {raw!r}", variable=name)
        return raw.strip().rstrip("/")

    return parse


def _keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise ConfigError("expected a comma list of keys", variable="MEDIA_SIGNING_KEYS")
    if any(len(key) < MIN_SIGNING_KEY_LENGTH for key in keys):
        raise ConfigError(
            f"each key needs at least {MIN_SIGNING_KEY_LENGTH} characters (256 bits of randomness)",
            variable="MEDIA_SIGNING_KEYS",
        )
    return keys


def _master_keys(raw: str) -> tuple[MasterKey, ...]:
    """`id:base64(32 bytes)` entries, oldest first; the last one encrypts, all decrypt."""
    name = "MEDIA_ENCRYPTION_KEYS"
    keys: list[MasterKey] = []
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        key_id, colon, encoded = entry.partition(":")
        if not colon or _MASTER_KEY_ID.fullmatch(key_id) is None:
            raise ConfigError("expected id:base64 entries, id of [A-Za-z0-9._-]", variable=name)
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"key {key_id!r} is not valid base64", variable=name) from None
        if len(secret) != MASTER_KEY_BYTES:
            raise ConfigError(f"key {key_id!r} must decode to 32 bytes", variable=name)
        if any(key.id == key_id for key in keys):
            raise ConfigError(f"key id {key_id!r} appears twice", variable=name)
        keys.append(MasterKey(key_id, secret))
    if not keys:
        raise ConfigError("expected a comma list of id:base64 keys", variable=name)
    return tuple(keys)


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ConfigError(
                f"expected * or http(s) origins, got {origin!r}", variable="MEDIA_CORS_ORIGINS"
            )
    return origins


def _database(raw: str) -> str:
    parse_database_url(raw)
    return raw


def _storage(raw: str) -> str:
    parse_storage_url(raw)
    return raw


def _text(raw: str) -> str:
    return raw.strip()


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _bool(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise ConfigError(f"expected true or false, got {raw!r}", variable=name)
        return value in _TRUE

    return parse


def _ladder(raw: str) -> tuple[int, ...]:
    """Comma list of rung heights (the short side, 144..4320), kept ascending and distinct."""
    name = "MEDIA_HLS_LADDER"
    parse = _int(name, 144, 4320)
    heights = sorted({parse(item) for item in raw.split(",") if item.strip()})
    if not heights:
        raise ConfigError("expected a comma list of heights", variable=name)
    if len(heights) > MAX_LADDER_RUNGS:
        raise ConfigError(f"at most {MAX_LADDER_RUNGS} rungs", variable=name)
    return tuple(heights)


def _exporters(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = set(names) - {*TRACE_EXPORTERS, "none"}
    if unknown:
        raise ConfigError(
            f"unknown exporter(s) {sorted(unknown)}; expected {', '.join(TRACE_EXPORTERS)} or none",
            variable="OTEL_TRACES_EXPORTER",
        )
    return () if "none" in names else names


def _otlp_protocol(name: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value != "http/protobuf":
            raise ConfigError(f"only http/protobuf is supported, got {raw!r}", variable=name)
        return value

    return parse


def _folder(raw: str) -> Path:
    return Path(raw.strip()).expanduser().resolve()


def _existing_folder(name: str) -> Callable[[str], Path]:
    def parse(raw: str) -> Path:
        path = _folder(raw)
        if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"expected an existing writable folder, got {raw!r}", variable=name)
        return path

    return parse


# variable -> (Settings field, parser); README 'Settings' documents each with its default.
_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MEDIA_DATABASE_URL": ("database_url", _database),
    "MEDIA_STORAGE_URL": ("storage_url", _storage),
    "MEDIA_SIGNING_KEYS": ("signing_keys", _keys),
    "MEDIA_OIDC_ISSUER": ("oidc_issuer", _http_url("MEDIA_OIDC_ISSUER")),
    "MEDIA_OIDC_AUDIENCE": ("oidc_audience", _text),
    "MEDIA_PUBLIC_URL": ("public_url", _http_url("MEDIA_PUBLIC_URL")),
    "MEDIA_URL_TTL_S": ("url_ttl_s", _int("MEDIA_URL_TTL_S", 1, URL_TTL_CAP_S)),
    "MEDIA_UPLOAD_TTL_S": ("upload_ttl_s", _int("MEDIA_UPLOAD_TTL_S", 1, UPLOAD_TTL_CAP_S)),
    "MEDIA_MULTIPART_TTL_S": (
        "multipart_ttl_s",
        _int("MEDIA_MULTIPART_TTL_S", 60, MULTIPART_TTL_CAP_S),
    ),
    "MEDIA_MAX_UPLOAD_BYTES": ("max_upload_bytes", _int("MEDIA_MAX_UPLOAD_BYTES", 1, 5 * 1024**4)),
    "MEDIA_CORS_ORIGINS": ("cors_origins", _origins),
    "MEDIA_ENV": ("env", _choice("MEDIA_ENV", "development", "production")),
    "MEDIA_LOG_LEVEL": (
        "log_level",
        _choice("MEDIA_LOG_LEVEL", "DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    "MEDIA_GRAPHQL_MAX_DEPTH": ("graphql_max_depth", _int("MEDIA_GRAPHQL_MAX_DEPTH", 2, 100)),
    "MEDIA_GRAPHQL_MAX_ALIASES": (
        "graphql_max_aliases",
        _int("MEDIA_GRAPHQL_MAX_ALIASES", 1, 1000),
    ),
    "MEDIA_GRAPHQL_MAX_TOKENS": (
        "graphql_max_tokens",
        _int("MEDIA_GRAPHQL_MAX_TOKENS", 50, 100_000),
    ),
    "MEDIA_GRAPHQL_MAX_NODES": (
        "graphql_max_nodes",
        _int("MEDIA_GRAPHQL_MAX_NODES", 10, 1_000_000),
    ),
    "MEDIA_GRAPHQL_MAX_BODY_BYTES": (
        "graphql_max_body_bytes",
        _int("MEDIA_GRAPHQL_MAX_BODY_BYTES", 1024, 64 * 1024**2),
    ),
    "MEDIA_PROCESSING_WORKERS": ("processing_workers", _int("MEDIA_PROCESSING_WORKERS", 1, 64)),
    "MEDIA_PLAYBACK_MAX_HEIGHT": (
        "playback_max_height",
        _int("MEDIA_PLAYBACK_MAX_HEIGHT", 144, 4320),
    ),
    "MEDIA_MAX_DURATION_S": ("max_duration_s", _float("MEDIA_MAX_DURATION_S", 1, 86_400)),
    "MEDIA_MAX_PENDING_UPLOADS": (
        "max_pending_uploads",
        _int("MEDIA_MAX_PENDING_UPLOADS", 1, 10_000),
    ),
    "MEDIA_REAPER_INTERVAL_S": ("reaper_interval_s", _int("MEDIA_REAPER_INTERVAL_S", 1, 86_400)),
    "MEDIA_COLLECTOR_INTERVAL_S": (
        "collector_interval_s",
        _int("MEDIA_COLLECTOR_INTERVAL_S", 0, 7 * 86_400),
    ),
    "MEDIA_UPLOAD_IDLE_TIMEOUT_S": (
        "upload_idle_timeout_s",
        _float("MEDIA_UPLOAD_IDLE_TIMEOUT_S", 1, 3600),
    ),
    "MEDIA_UPLOAD_MAX_DURATION_S": (
        "upload_max_duration_s",
        _float("MEDIA_UPLOAD_MAX_DURATION_S", 10, 86_400),
    ),
    "MEDIA_MAX_CONCURRENCY": ("max_concurrency", _int("MEDIA_MAX_CONCURRENCY", 1, 100_000)),
    "MEDIA_STREAM_CHUNK_BYTES": (
        "stream_chunk_bytes",
        _int("MEDIA_STREAM_CHUNK_BYTES", 64 * 1024, 1024**2),
    ),
    "MEDIA_STREAM_CACHE_S": ("stream_cache_s", _float("MEDIA_STREAM_CACHE_S", 0, 60)),
    "MEDIA_STORAGE_MAX_CONNECTIONS": (
        "storage_max_connections",
        _int("MEDIA_STORAGE_MAX_CONNECTIONS", 1, 1024),
    ),
    "MEDIA_STORAGE_TIMEOUT_S": ("storage_timeout_s", _float("MEDIA_STORAGE_TIMEOUT_S", 0.1, 300)),
    "MEDIA_DATABASE_POOL_SIZE": ("database_pool_size", _int("MEDIA_DATABASE_POOL_SIZE", 1, 200)),
    "MEDIA_DATABASE_TIMEOUT_S": (
        "database_timeout_s",
        _float("MEDIA_DATABASE_TIMEOUT_S", 0.1, 300),
    ),
    "MEDIA_TOKEN": ("client_token", _text),
    "MEDIA_SHARE_MAX_TTL_S": ("share_max_ttl_s", _int("MEDIA_SHARE_MAX_TTL_S", 60, 366 * 86_400)),
    "MEDIA_MAX_SHARE_LINKS": ("max_share_links", _int("MEDIA_MAX_SHARE_LINKS", 1, 1_000_000)),
    "MEDIA_GRAPHIQL": ("graphiql", _bool("MEDIA_GRAPHIQL")),
    "MEDIA_INTROSPECTION": ("introspection", _bool("MEDIA_INTROSPECTION")),
    "MEDIA_LOG_FORMAT": ("log_format", _choice("MEDIA_LOG_FORMAT", "text", "json")),
    "MEDIA_METRICS": ("metrics_enabled", _bool("MEDIA_METRICS")),
    "MEDIA_METRICS_TOKEN": ("metrics_token", _text),
    # Standard names read by their libraries too; parsed here so a bad value stops the start.
    "PROMETHEUS_MULTIPROC_DIR": (
        "metrics_multiproc_dir",
        _existing_folder("PROMETHEUS_MULTIPROC_DIR"),
    ),
    "OTEL_TRACES_EXPORTER": ("traces_exporters", _exporters),
    "MEDIA_SEND_TIMEOUT_S": ("send_timeout_s", _float("MEDIA_SEND_TIMEOUT_S", 1, 3600)),
    "MEDIA_ENCRYPTION_KEYS": ("encryption_keys", _master_keys),
    "MEDIA_IN_PROCESS_WORKER": ("in_process_worker", _bool("MEDIA_IN_PROCESS_WORKER")),
    "MEDIA_JOB_STALL_S": ("job_stall_s", _float("MEDIA_JOB_STALL_S", 3, 3600)),
    "MEDIA_JOB_RETRY_S": ("job_retry_s", _int("MEDIA_JOB_RETRY_S", 1, 3600)),
    "MEDIA_PROCESSING_MEMORY_MB": (
        "processing_memory_mb",
        _int("MEDIA_PROCESSING_MEMORY_MB", 64, 1024**2),
    ),
    "MEDIA_HLS": ("hls_enabled", _bool("MEDIA_HLS")),
    "MEDIA_HLS_LADDER": ("hls_ladder", _ladder),
}
# Checked only: the OTLP exporter reads them itself, and this build ships its HTTP flavour only.
_CHECKED_ONLY: dict[str, Callable[[str], object]] = {
    name: _otlp_protocol(name)
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
}

SETTING_VARIABLES = ("MEDIA_DATA_DIR", *_PARSERS)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping (os.environ by default); raise ConfigError."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env.get("MEDIA_DATA_DIR") or ".media-data").expanduser().resolve()
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'media.sqlite3'}",
        "storage_url": f"file://{data_dir / 'objects'}",
    }
    for variable, (name, parse) in _PARSERS.items():
        raw = env.get(variable)
        if raw is not None and raw.strip() != "":
            values[name] = parse(raw)
    for variable, check in _CHECKED_ONLY.items():
        if (raw := env.get(variable)) and raw.strip() and values.get("traces_exporters"):
            check(raw)
    if _bool("OTEL_SDK_DISABLED")(env.get("OTEL_SDK_DISABLED") or "false"):
        values["traces_exporters"] = ()  # the OpenTelemetry switch that turns every signal off
    if "env" not in values:
        embedded = values["database_url"].startswith("sqlite:") and values[
            "storage_url"
        ].startswith("file:")
        # docs/security.md §1.18: non-embedded database or storage means production unless said so.
        values["env"] = "development" if embedded else "production"
    # Exploration aids are for development; production answers only what clients need.
    for name in ("graphiql", "introspection"):
        values.setdefault(name, values["env"] != "production")
    settings = Settings(**values)
    _check_production(settings)
    if not settings.in_process_worker and settings.database.engine == "sqlite":
        # On SQLite the job queue lives inside the serving process: nothing else could run it.
        raise ConfigError(
            "false needs PostgreSQL (MEDIA_DATABASE_URL)", variable="MEDIA_IN_PROCESS_WORKER"
        )
    return settings


def _check_production(settings: Settings) -> None:
    if not settings.production:
        return
    if not settings.signing_keys:
        raise ConfigError(
            "production needs MEDIA_SIGNING_KEYS; the generated development key is refused",
            variable="MEDIA_SIGNING_KEYS",
        )
    if settings.uses_dev_issuer:
        raise ConfigError(
            "production needs MEDIA_OIDC_ISSUER; the development token issuer is refused",
            variable="MEDIA_OIDC_ISSUER",
        )
    public = urlsplit(settings.public_url or "")
    if public.scheme == "http" and not _loopback(public.hostname or ""):
        # docs/security.md §1.20: signed URLs are credentials; over plain HTTP anyone on the
        # path reads them (TLS may end at a proxy: the public URL is what clients reach).
        raise ConfigError(
            "production hands out signed URLs over HTTPS only: expected https://"
            f" (http:// only for a loopback host), got {settings.public_url!r}",
            variable="MEDIA_PUBLIC_URL",
        )


def _loopback(host: str) -> bool:
    """True for localhost and loopback addresses: reachable from this machine only."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
