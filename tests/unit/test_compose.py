"""The production stack, checked by parsing (no Docker engine here): compose, image, realm, init."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from media.config import SETTING_VARIABLES, load_settings
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_IN_PRODUCTION = (
    "MEDIA_DATABASE_URL",
    "MEDIA_STORAGE_URL",
    "MEDIA_SIGNING_KEYS",
    "MEDIA_OIDC_ISSUER",
    "MEDIA_OIDC_AUDIENCE",
    "MEDIA_PUBLIC_URL",
    "MEDIA_ENV",
)
ONE_SHOT = {"migrate", "create-bucket"}
OPTIONAL = {"prometheus"}  # only with `--profile observability`
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$")
REQUIRED_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
ENV_EXAMPLE_NAME = re.compile(r"^([A-Z0-9_]+)=", re.MULTILINE)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is unset or empty: compose refuses to start."""


def _closing_brace(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):  # an escaped dollar opens nothing
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unclosed ${{ in {text!r}")


def _expand(body: str, env: Mapping[str, str]) -> str:
    match = NAME.match(body)
    if not match:
        raise ValueError(f"bad expression ${{{body}}}")
    name, rest, value = match.group(), body[match.end() :], env.get(match.group())
    if not rest:
        if value is None:  # compose would warn and substitute "": never rely on that
            raise MissingVariable(name)
        return value
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            operand = rest[len(op) :]
            present = value is not None and (value != "" or not op.startswith(":"))
            if op.endswith("-"):
                return value if present and value is not None else interpolate(operand, env)
            if op.endswith("?"):
                if present and value is not None:
                    return value
                raise MissingVariable(name, interpolate(operand, env))
            return interpolate(operand, env) if present else ""
    raise ValueError(f"unsupported expression ${{{body}}}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose-file interpolation (docs: compose-file/interpolation), nesting included."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif match := NAME.match(text, i + 1):
            out.append(_expand(match.group(), env))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-$$B", "a-$B"),
        ("${UNSET:-x${A}y}", "xay"),
        ("${EMPTY:-d}|${EMPTY-d}", "d|"),
        ("${A:+alt}|${UNSET:+alt}", "alt|"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("a $ b", "a $ b"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${UNSET}", "${EMPTY:?why}", "${UNSET?why}", "x${UNSET:-${NO}}"])
def test_interpolation_refuses_missing_variables(text: str) -> None:
    with pytest.raises(MissingVariable):
        interpolate(text, {"EMPTY": ""})


def _resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _resolve(value, env) for key, value in node.items()}
    return node


def _env_example() -> list[str]:
    return ENV_EXAMPLE_NAME.findall((ROOT / "deploy" / "env.example").read_text())


TEST_ENV = {name: f"test-{name.lower()}-{'7' * 40}" for name in _env_example()}


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    """docker-compose.yml as written (merge keys resolved, variables not)."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError as exc:
        unavailable(f"PyYAML is not installed: {exc}")
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml interpolated with the test .env."""
    resolved: dict[str, Any] = _resolve(raw_compose, TEST_ENV)
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    """The interpolated services by name."""
    return dict(compose["services"])


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    """The Keycloak realm the stack imports."""
    loaded: dict[str, Any] = json.loads((ROOT / "deploy/keycloak/media-realm.json").read_text())
    return loaded


def _dockerfile_final_stage() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    parsed = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    steps = [(step[0].upper(), step[1] if len(step) > 1 else "") for step in parsed]
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    long_running = set(services) - ONE_SHOT
    assert {"app", "postgres", "seaweedfs", "keycloak"} <= long_running
    for name in long_running:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
        assert services[name].get("restart") == "unless-stopped", name


def test_one_shot_jobs_never_restart(services: dict[str, Any]) -> None:
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
        assert "healthcheck" not in services[name], name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["image"] == services["app"]["image"]


def test_healthchecks_need_no_curl(services: dict[str, Any]) -> None:
    app_check = " ".join(services["app"]["healthcheck"]["test"])
    assert "python" in app_check and "urllib" in app_check and "/readyz" in app_check
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name, service in services.items():
        assert "curl" not in json.dumps(service.get("healthcheck", {})), name


def test_app_sets_every_variable_production_requires(services: dict[str, Any]) -> None:
    environment = services["app"]["environment"]
    assert set(REQUIRED_IN_PRODUCTION) <= set(environment)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(environment)
    unknown = {name for name in environment if name.startswith("MEDIA_")} - set(SETTING_VARIABLES)
    assert not unknown, f"not settings of media.config: {unknown}"


@pytest.mark.parametrize("service", ["app", "migrate"])
def test_media_settings_are_accepted_by_load_settings(
    services: dict[str, Any], service: str
) -> None:
    environment = services[service]["environment"]
    media = {name: value for name, value in environment.items() if name.startswith("MEDIA_")}
    settings = load_settings(media)
    assert settings.production and not settings.uses_dev_issuer
    assert settings.signing_keys == (TEST_ENV["MEDIA_SIGNING_KEYS"],)
    assert settings.database.engine == "postgres" and settings.database.host == "postgres"
    assert settings.database.password == TEST_ENV["MEDIA_DB_PASSWORD"]
    storage = settings.storage
    assert (storage.scheme, storage.endpoint_url) == ("s3", "http://seaweedfs:8333")
    assert storage.addressing_style == "path" and storage.region == environment["AWS_REGION"]
    assert settings.oidc_audience == "media-service"


@pytest.mark.parametrize("secret", sorted(TEST_ENV))
def test_compose_refuses_to_start_without_each_secret(
    raw_compose: dict[str, Any], secret: str
) -> None:
    without = {name: value for name, value in TEST_ENV.items() if name != secret}
    with pytest.raises(MissingVariable) as caught:
        _resolve(raw_compose, {**without, secret: ""})
    assert caught.value.args[0] == secret


def test_env_example_lists_exactly_the_required_variables() -> None:
    required = set(REQUIRED_REFERENCE.findall((ROOT / "docker-compose.yml").read_text()))
    listed = _env_example()
    assert sorted(listed) == sorted(set(listed)) and set(listed) == required
    assert "MEDIA_SIGNING_KEYS" in required
    assert "secrets.token_hex(32)" in (ROOT / "deploy" / "env.example").read_text()


def test_no_secret_literal_is_committed(raw_compose: dict[str, Any], realm: dict[str, Any]) -> None:
    for name, service in raw_compose["services"].items():
        environment = service.get("environment", {})
        for variable, value in environment.items():
            if SECRET_NAME.search(variable):
                assert REQUIRED_REFERENCE.fullmatch(str(value)), f"{name}.{variable}"
    text = (ROOT / "docker-compose.yml").read_text()
    for password in re.findall(r"://[^/\s:@]+:([^@\s]+)@", text):
        assert password.startswith("${"), password
    for node in _walk(realm):
        for key in ("value", "secret", "password"):
            if isinstance(node.get(key), str):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", node[key]), node
    for op, argument in _dockerfile_final_stage():
        if op in ("ENV", "ARG"):
            assert not SECRET_NAME.search(argument.split("=", 1)[0]), argument


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_app_waits_for_migrations_and_healthy_services(services: dict[str, Any]) -> None:
    depends = services["app"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in set(services) - {"app", "worker"} - OPTIONAL:  # jobs queue until a worker runs
        expected = "service_completed_successfully" if name in ONE_SHOT else "service_healthy"
        assert depends[name]["condition"] == expected, name
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} -> {target}"


def test_a_worker_service_runs_the_jobs_and_the_app_does_not(services: dict[str, Any]) -> None:
    app, worker = services["app"], services["worker"]
    assert worker["command"] == ["worker"] and worker["image"] == app["image"]
    assert "ports" not in worker
    app_settings = load_settings(
        {k: v for k, v in app["environment"].items() if k.startswith("MEDIA_")}
    )
    worker_settings = load_settings(
        {k: v for k, v in worker["environment"].items() if k.startswith("MEDIA_")}
    )
    assert not app_settings.in_process_worker and worker_settings.in_process_worker
    # Same database, storage and keys: a job enqueued by the app is done by the worker.
    same = dataclasses.replace(worker_settings, in_process_worker=False)
    assert same == app_settings
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_only_the_app_the_oidc_login_and_prometheus_publish_ports(services: dict[str, Any]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"app", "keycloak", "prometheus"}
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert [port.rsplit(":", 1)[1] for port in services["app"]["ports"]] == ["8090"]
    assert services["app"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8090"]


def test_image_runs_as_non_root_and_serves_on_8090() -> None:
    stage = _dockerfile_final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [argument for op, argument in stage if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(argument for op, argument in stage if op == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs)
    entry = [json.loads(argument) for op, argument in stage if op in ("ENTRYPOINT", "CMD")]
    assert entry == [["media-service"], ["serve", "--host", "0.0.0.0", "--port", "8090"]]


def test_build_context_keeps_local_state_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    # Either an allow-list (exclude everything first) or explicit exclusions.
    assert patterns[0] == "*" or {".env", ".media-data", ".venv", ".git"} <= set(patterns)
    assert not {"!.env", "!.media-data", "!.venv", "!.git", "!tests/"} & set(patterns)


def test_bind_mounts_exist_and_initdb_script_is_executable(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
    for script in (ROOT / "deploy/postgres/initdb.d").glob("*.sh"):
        assert os.access(script, os.X_OK), script


def test_oidc_issuer_and_audience_match_the_realm(
    services: dict[str, Any], realm: dict[str, Any]
) -> None:
    keycloak = services["keycloak"]["environment"]
    app = services["app"]["environment"]
    assert f"{keycloak['KC_HOSTNAME']}/realms/{realm['realm']}" == app["MEDIA_OIDC_ISSUER"]
    clients = {client["clientId"]: client for client in realm["clients"]}
    assert app["MEDIA_OIDC_AUDIENCE"] in clients
    mappers = [m for node in _walk(realm) for m in node.get("protocolMappers", [])]
    audiences = [m["config"] for m in mappers if m["protocolMapper"] == "oidc-audience-mapper"]
    assert [config["included.client.audience"] for config in audiences] == ["media-service"]
    # Declaring clientScopes drops Keycloak's built-in `basic` scope, which writes `sub`.
    assert any(m["protocolMapper"] == "oidc-sub-mapper" for m in mappers)
    assert keycloak["MEDIA_TEST_USER_PASSWORD"] == TEST_ENV["MEDIA_TEST_USER_PASSWORD"]


def test_realm_puts_user_and_admin_into_the_scope_claim(realm: dict[str, Any]) -> None:
    scopes = {scope["name"]: scope for scope in realm["clientScopes"]}
    for name in ("user", "admin"):
        assert scopes[name]["attributes"]["include.in.token.scope"] == "true"
    gated = {m["clientScope"]: m["roles"] for m in realm["scopeMappings"]}
    assert gated == {"user": ["media-user"], "admin": ["media-admin"]}
    client = next(c for c in realm["clients"] if c["clientId"] == "media-client")
    assert {"basic", "media-service-audience", "user"} <= set(client["defaultClientScopes"])
    assert client["optionalClientScopes"] == ["admin"] and client["publicClient"]
    (user,) = realm["users"]
    assert {"media-user", "media-admin"} <= set(user["realmRoles"])
    assert [credential["temporary"] for credential in user["credentials"]] == [False]


def test_prometheus_is_optional_and_scrapes_the_app_with_the_metrics_token(
    services: dict[str, Any], raw_compose: dict[str, Any]
) -> None:
    yaml = importlib.import_module("yaml")
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["observability"]
    assert all("profiles" not in services[name] for name in set(services) - OPTIONAL)
    assert prometheus["depends_on"] == {"app": {"condition": "service_healthy"}}
    token = TEST_ENV["MEDIA_METRICS_TOKEN"]
    assert prometheus["environment"]["MEDIA_METRICS_TOKEN"] == token
    assert services["app"]["environment"]["MEDIA_METRICS_TOKEN"] == token
    # The entrypoint writes the token file the scrape config reads, then runs Prometheus.
    script = prometheus["entrypoint"][-1]
    assert '"$MEDIA_METRICS_TOKEN" > /prometheus/metrics-token' in script
    assert "exec /bin/prometheus --config.file=/etc/prometheus/prometheus.yml" in script
    assert "$$MEDIA_METRICS_TOKEN" in raw_compose["services"]["prometheus"]["entrypoint"][-1]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    config = yaml.safe_load((ROOT / mounted["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["app:8090"]}]
    port = services["app"]["command"][services["app"]["command"].index("--port") + 1]
    assert job["static_configs"][0]["targets"][0].endswith(f":{port}")
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/prometheus/metrics-token",
    }
    assert mounted["/prometheus"] == "prometheus" and "prometheus" in raw_compose["volumes"]
