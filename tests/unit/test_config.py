"""Settings: every variable's default, a good value and a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.config import SETTING_VARIABLES, Settings, load_settings, parse_storage_url
from media.errors import ConfigError

KEY = "k" * 40
PROD = {"MEDIA_SIGNING_KEYS": KEY, "MEDIA_OIDC_ISSUER": "https://id.example.com/realms/media"}


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path}/media.sqlite3"
    assert settings.storage_url == f"file://{tmp_path}/objects"
    assert settings.env == "development" and not settings.production
    assert settings.signing_keys == ()
    assert settings.uses_dev_issuer
    assert settings.oidc_audience == "media-service"
    assert settings.public_url is None
    assert (settings.url_ttl_s, settings.upload_ttl_s) == (300, 3600)
    assert settings.max_upload_bytes == 4 * 1024**3
    assert settings.cors_origins == ("*",)


def test_data_dir_default_is_relative_to_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).data_dir == tmp_path / ".media-data"


# variable, good raw value, expected field value (None: just accepted), bad raw value
CASES = [
    ("MEDIA_DATABASE_URL", "postgresql://u@db:5433/media", None, "mysql://x/y"),
    ("MEDIA_DATABASE_URL", "sqlite:////var/lib/m.sqlite3", None, "sqlite:///relative.db"),
    (
        "MEDIA_STORAGE_URL",
        "s3://bucket?endpoint_url=http://s3:9000&region=eu&addressing=path",
        None,
        "ftp://x",
    ),
    ("MEDIA_STORAGE_URL", "file:///srv/objects", None, "s3://bucket?bogus=1"),
    ("MEDIA_SIGNING_KEYS", f"{'a' * 32},{'b' * 32}", ("a" * 32, "b" * 32), "short"),
    ("MEDIA_OIDC_ISSUER", "https://id.example.com/", "https://id.example.com", "not a url"),
    ("MEDIA_OIDC_AUDIENCE", "api://media", "api://media", None),
    (
        "MEDIA_PUBLIC_URL",
        "https://media.example.com",
        "https://media.example.com",
        "media.example.com",
    ),
    ("MEDIA_URL_TTL_S", "600", 600, "86401"),
    ("MEDIA_UPLOAD_TTL_S", "1800", 1800, "3601"),
    ("MEDIA_MULTIPART_TTL_S", "172800", 172800, "59"),
    ("MEDIA_MAX_UPLOAD_BYTES", "1048576", 1048576, "-1"),
    (
        "MEDIA_CORS_ORIGINS",
        "https://a.example, https://b.example",
        ("https://a.example", "https://b.example"),
        "ftp://x",
    ),
    ("MEDIA_ENV", "development", "development", "staging"),
    ("MEDIA_LOG_LEVEL", "debug", "DEBUG", "loud"),
    ("MEDIA_GRAPHQL_MAX_DEPTH", "12", 12, "1"),
    ("MEDIA_GRAPHQL_MAX_ALIASES", "10", 10, "0"),
    ("MEDIA_GRAPHQL_MAX_TOKENS", "5000", 5000, "10"),
    ("MEDIA_GRAPHQL_MAX_NODES", "5000", 5000, "9"),
    ("MEDIA_GRAPHQL_MAX_BODY_BYTES", "2048", 2048, "12"),
    ("MEDIA_PROCESSING_WORKERS", "4", 4, "0"),
    ("MEDIA_PLAYBACK_MAX_HEIGHT", "720", 720, "100"),
    ("MEDIA_MAX_DURATION_S", "600", 600.0, "0"),
    ("MEDIA_MAX_PENDING_UPLOADS", "5", 5, "x"),
    ("MEDIA_REAPER_INTERVAL_S", "10", 10, "0"),
    ("MEDIA_UPLOAD_IDLE_TIMEOUT_S", "5", 5.0, "0"),
    ("MEDIA_COLLECTOR_INTERVAL_S", "0", 0, "-1"),
    ("MEDIA_UPLOAD_MAX_DURATION_S", "600", 600.0, "5"),
    ("MEDIA_MAX_CONCURRENCY", "200", 200, "0"),
    ("MEDIA_STREAM_CHUNK_BYTES", "1048576", 1048576, "2097152"),
    ("MEDIA_STREAM_CACHE_S", "0", 0.0, "61"),
    ("MEDIA_STORAGE_MAX_CONNECTIONS", "128", 128, "0"),
    ("MEDIA_STORAGE_TIMEOUT_S", "5", 5.0, "nan?"),
    ("MEDIA_DATABASE_POOL_SIZE", "20", 20, "0"),
    ("MEDIA_DATABASE_TIMEOUT_S", "3", 3.0, "-3"),
    ("MEDIA_TOKEN", "eyJ.a.b", "eyJ.a.b", None),
    ("MEDIA_SHARE_MAX_TTL_S", "86400", 86400, "59"),
    ("MEDIA_MAX_SHARE_LINKS", "5", 5, "0"),
    ("MEDIA_GRAPHIQL", "off", False, "maybe"),
    ("MEDIA_INTROSPECTION", "false", False, "2"),
    ("MEDIA_LOG_FORMAT", "JSON", "json", "xml"),
    ("MEDIA_METRICS", "false", False, "maybe"),
    ("MEDIA_METRICS_TOKEN", " s3cret-metrics ", "s3cret-metrics", None),
    ("PROMETHEUS_MULTIPROC_DIR", "/tmp", Path("/tmp"), "/nonexistent/prometheus"),
    ("OTEL_TRACES_EXPORTER", "console, otlp", ("console", "otlp"), "zipkin"),
    ("MEDIA_SEND_TIMEOUT_S", "30", 30.0, "0"),
    ("MEDIA_ENCRYPTION_KEYS", "k1:" + "A" * 43 + "=", None, "k1:c2hvcnQ="),
    ("MEDIA_IN_PROCESS_WORKER", "true", True, "maybe"),
    ("MEDIA_JOB_STALL_S", "10", 10.0, "1"),
    ("MEDIA_JOB_RETRY_S", "2", 2, "0"),
    ("MEDIA_PROCESSING_MEMORY_MB", "256", 256, "63"),
    ("MEDIA_HLS", "false", False, "maybe"),
    ("MEDIA_HLS_LADDER", "1080, 240,720,240", (240, 720, 1080), "360,100"),
]


@pytest.mark.parametrize("bad", [",", "360,x", "4321", "144,240,360,480,720,1080,1440"])
def test_hls_ladder_refusals(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_HLS_LADDER": bad})
    assert info.value.data["variable"] == "MEDIA_HLS_LADDER"


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ("development", {}, (True, True)),
        ("production", {}, (False, False)),
        ("production", {"MEDIA_GRAPHIQL": "true"}, (True, False)),
        ("production", {"MEDIA_INTROSPECTION": "on"}, (False, True)),
        ("development", {"MEDIA_GRAPHIQL": "0", "MEDIA_INTROSPECTION": "no"}, (False, False)),
    ],
)
def test_graphiql_and_introspection_follow_the_environment(
    tmp_path: Path, env: str, overrides: dict[str, str], expected: tuple[bool, bool]
) -> None:
    environ = {"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_ENV": env, **overrides}
    if env == "production":
        environ |= {"MEDIA_SIGNING_KEYS": "k" * 32, "MEDIA_OIDC_ISSUER": "https://id.example"}
    settings = load_settings(environ)
    assert (settings.graphiql, settings.introspection) == expected


def test_every_variable_has_a_case() -> None:
    covered = {case[0] for case in CASES} | {"MEDIA_DATA_DIR"}
    assert covered == set(SETTING_VARIABLES)


@pytest.mark.parametrize(("variable", "good", "expected", "bad"), CASES)
def test_variable(
    tmp_path: Path, variable: str, good: str, expected: object, bad: str | None
) -> None:
    base = {"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_ENV": "development"}
    settings = load_settings({**base, variable: good})
    if expected is not None:
        from media.config import _PARSERS

        assert getattr(settings, _PARSERS[variable][0]) == expected
    if bad is not None:
        with pytest.raises(ConfigError) as info:
            load_settings({**base, variable: bad})
        assert info.value.data["variable"] == variable


def test_non_embedded_storage_means_production(tmp_path: Path) -> None:
    env = {
        "MEDIA_DATA_DIR": str(tmp_path),
        "MEDIA_STORAGE_URL": "s3://b?endpoint_url=http://x:9000",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.data["variable"] == "MEDIA_SIGNING_KEYS"
    assert load_settings({**env, **PROD}).production


def test_production_refuses_dev_issuer_and_generated_key(tmp_path: Path) -> None:
    env = {"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_ENV": "production"}
    with pytest.raises(ConfigError, match="MEDIA_SIGNING_KEYS"):
        load_settings(env)
    with pytest.raises(ConfigError, match="MEDIA_OIDC_ISSUER"):
        load_settings({**env, "MEDIA_SIGNING_KEYS": KEY})
    assert load_settings({**env, **PROD}).production


@pytest.mark.parametrize(
    ("public_url", "accepted"),
    [
        ("https://media.example", True),
        ("http://localhost:8090", True),
        ("http://127.0.0.1:8090", True),
        ("http://[::1]:8090", True),
        ("http://media.example", False),
        ("http://10.0.0.5:8090", False),
        ("http://localhost.example", False),
    ],
)
def test_production_hands_out_urls_over_https_only(
    tmp_path: Path, public_url: str, accepted: bool
) -> None:
    env = {"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_ENV": "production", **PROD}
    env["MEDIA_PUBLIC_URL"] = public_url
    if accepted:
        assert load_settings(env).public_url == public_url
    else:
        with pytest.raises(ConfigError, match="HTTPS only") as info:
            load_settings(env)
        assert info.value.data["variable"] == "MEDIA_PUBLIC_URL"
    # Development may use any reachable address over plain HTTP.
    assert load_settings({**env, "MEDIA_ENV": "development"}).public_url == public_url


def test_repr_masks_signing_keys(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_SIGNING_KEYS": KEY})
    assert KEY not in repr(settings) and KEY not in str(settings)
    assert "signing_keys=***" in repr(settings)


def test_database_url_password_not_in_repr() -> None:
    settings = Settings(
        data_dir=Path("/x"), database_url="postgresql://u:hunter2@h/d", storage_url="file:///x"
    )
    assert "hunter2" not in repr(settings.database)


def test_storage_url_parts() -> None:
    parsed = parse_storage_url(
        "s3://media/originals?endpoint_url=http://127.0.0.1:9000&region=eu-1&addressing=path"
    )
    assert (
        parsed.bucket,
        parsed.prefix,
        parsed.endpoint_url,
        parsed.region,
        parsed.addressing_style,
    ) == (
        "media",
        "originals",
        "http://127.0.0.1:9000",
        "eu-1",
        "path",
    )


def test_observability_defaults(tmp_path: Path) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path)})
    assert settings.metrics_enabled and settings.metrics_token is None
    assert settings.log_format == "text" and settings.metrics_multiproc_dir is None
    # Unlike the OpenTelemetry default (otlp), tracing stays off until an exporter is named.
    assert settings.traces_exporters == () and not settings.tracing_enabled
    assert "metrics_token" in repr(load_settings({"MEDIA_METRICS_TOKEN": "x" * 20}))
    assert "x" * 20 not in repr(load_settings({"MEDIA_METRICS_TOKEN": "x" * 20}))


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({"OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, ("console",)),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("otlp",),
        ),
        # The protocol only matters when something is exported.
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ()),
    ],
)
def test_tracing_switches(
    tmp_path: Path, environ: dict[str, str], exporters: tuple[str, ...]
) -> None:
    settings = load_settings({"MEDIA_DATA_DIR": str(tmp_path), **environ})
    assert settings.traces_exporters == exporters


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
)
def test_grpc_is_refused_while_exporting(tmp_path: Path, variable: str) -> None:
    environ = {"MEDIA_DATA_DIR": str(tmp_path), "OTEL_TRACES_EXPORTER": "otlp", variable: "grpc"}
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    assert info.value.data["variable"] == variable


def test_separate_workers_need_postgresql(tmp_path: Path) -> None:
    env = {"MEDIA_DATA_DIR": str(tmp_path), "MEDIA_IN_PROCESS_WORKER": "false"}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.data["variable"] == "MEDIA_IN_PROCESS_WORKER"
    postgres = {**env, **PROD, "MEDIA_DATABASE_URL": "postgresql://u@db/media"}
    assert not load_settings(postgres).in_process_worker
