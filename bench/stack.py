"""What a run starts: the service (local or S3 storage), the floors, nginx and moto's S3."""

from __future__ import annotations

import base64
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bench.nginx import nginx_binary, start_nginx
from bench.procs import Proc, Processes, free_port, python, wait_http
from bench.seed import Seeded, seed
from media.config import Settings, load_settings

BUCKET = "bench-media"
AWS_ENV = {
    # Dummy credentials for moto; never real ones, whatever the environment holds.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@dataclass
class Service:
    """A started media-service process, its settings and its seeded media."""

    proc: Proc
    url: str
    settings: Settings
    seeded: dict[str, Seeded]
    env: dict[str, str] = field(default_factory=dict)  # the MEDIA_* environment it runs with


def _clean_env() -> dict[str, str]:
    drop = ("MEDIA_", "AWS_", "OTEL_", "PROMETHEUS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | AWS_ENV


def start_service(
    procs: Processes,
    data_dir: Path,
    objects: dict[str, int],
    *,
    listing: int = 0,
    storage_url: str | None = None,
    profile_to: Path | None = None,
    extra_env: dict[str, str] | None = None,
    name: str | None = None,
) -> Service:
    """Seed through storage + repository, then run `media-service serve` as its own process."""
    port = free_port()
    media_env = {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MEDIA_SIGNING_KEYS": secrets.token_hex(32),
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_ENV": "development",
    }
    if storage_url:
        media_env["MEDIA_STORAGE_URL"] = storage_url
    media_env.update(extra_env or {})
    os.environ.update(AWS_ENV)  # the seeding boto3 client in this process talks to moto too
    settings = load_settings(media_env)
    seeded = anyio.run(seed, settings, objects, listing)
    serve = ["-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv = (
        python("-m", "bench.profiled", str(profile_to), *serve[2:])
        if profile_to
        else python(*serve)
    )
    name = name or (
        "service-profiled" if profile_to else ("service-s3" if storage_url else "service")
    )
    proc = procs.start(name, argv, _clean_env() | media_env)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/healthz")
    return Service(proc=proc, url=url, settings=settings, seeded=seeded, env=media_env)


def start_variant(
    procs: Processes, service: Service, name: str, overrides: dict[str, str]
) -> tuple[Proc, str]:
    """Another process serving the same data as `service`, with some settings changed."""
    port = free_port()
    env = service.env | {"MEDIA_PUBLIC_URL": f"http://127.0.0.1:{port}"} | overrides
    argv = python("-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port))
    proc = procs.start(name, argv, _clean_env() | env)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/healthz")
    return proc, url + service.seeded["big"].stream_path


def _start_uvicorn(
    procs: Processes, name: str, app: str, env: dict[str, str], path: str
) -> tuple[Proc, str]:
    """`uvicorn app` on a free loopback port with `env`, once it answers; (process, URL of path)."""
    port = free_port()
    argv = python(
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    )
    proc = procs.start(name, argv, _clean_env() | env)
    url = f"http://127.0.0.1:{port}{path}"
    wait_http(proc, url)
    return proc, url


def start_floor(procs: Processes, file: Path, *, framework: bool = False) -> tuple[Proc, str]:
    """The bare uvicorn + os.pread app serving `file`; with `framework`, as a Litestar route."""
    app = "bench.floor_litestar:app" if framework else "bench.floor:app"
    name = "litestar" if framework else "floor"
    return _start_uvicorn(procs, name, app, {"BENCH_FILE": str(file)}, "/media/object")


def start_relay_floor(procs: Processes, endpoint: str, key: str) -> tuple[Proc, str]:
    """The bare uvicorn + boto3 relay of the S3 object `key` on `endpoint` (bench.relay_floor)."""
    env = {"BENCH_S3_ENDPOINT": endpoint, "BENCH_S3_BUCKET": BUCKET, "BENCH_S3_KEY": key}
    return _start_uvicorn(procs, "relay-floor", "bench.relay_floor:app", env, "/object")


def granian_binary() -> str | None:
    """granian next to this Python, or None (it is a bench-only dependency)."""
    path = Path(sys.executable).with_name("granian")
    return str(path) if path.exists() else None


def start_granian_floor(procs: Processes, file: Path, *, pathsend: bool) -> tuple[Proc, str]:
    """bench.floor under granian (one worker, one runtime thread); with `pathsend`, full GETs
    are handed to granian as a file path (`http.response.pathsend`)."""
    binary = granian_binary()
    assert binary is not None
    port = free_port()
    argv = [
        binary,
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--runtime-threads",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
        "bench.floor:app",
    ]
    env = {"BENCH_FILE": str(file), "BENCH_PATHSEND": "1" if pathsend else "0"}
    name = "granian-pathsend" if pathsend else "granian"
    proc = procs.start(name, argv, _clean_env() | env)
    url = f"http://127.0.0.1:{port}/media/object"
    wait_http(proc, url)
    return proc, url


def start_moto(procs: Processes) -> tuple[Proc, str]:
    """moto's S3 server as its own process, with the bench bucket created."""
    import boto3

    port = free_port()
    proc = procs.start(
        "moto", python("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)), _clean_env()
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{endpoint}/moto-api/")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    return proc, endpoint


@dataclass
class Stack:
    """Lazily started parts of one run, all stopped by `procs.close()`."""

    procs: Processes
    tmp: Path
    big_bytes: int
    s3_bytes: int
    listing: int
    _local: Service | None = None
    _floor: tuple[Proc, str] | None = None
    _litestar: tuple[Proc, str] | None = None
    _granian: dict[bool, tuple[Proc, str]] = field(default_factory=dict)
    _nginx: tuple[Proc, str] | None = field(default=None)
    _nginx_tried: bool = False
    _s3: tuple[Service, str] | None = None
    _relay_floor: tuple[Proc, str] | None = None
    _encrypted: Service | None = None

    def local(self) -> Service:
        """The service on local storage, with the big object and the listing seeded."""
        if self._local is None:
            self._local = start_service(
                self.procs, self.tmp / "local", {"big": self.big_bytes}, listing=self.listing
            )
        return self._local

    def encrypted(self) -> Service:
        """The service on local storage with encryption at rest, the same big object seeded."""
        if self._encrypted is None:
            key = "bench:" + base64.b64encode(os.urandom(32)).decode()
            self._encrypted = start_service(
                self.procs,
                self.tmp / "encrypted",
                {"big": self.big_bytes},
                extra_env={"MEDIA_ENCRYPTION_KEYS": key},
                name="service-encrypted",
            )
        return self._encrypted

    def big_file(self) -> Path:
        """The file holding the big object."""
        path = self.local().seeded["big"].local_path
        assert path is not None
        return path

    def floor(self) -> tuple[Proc, str]:
        """The pread floor serving the big object's file."""
        if self._floor is None:
            self._floor = start_floor(self.procs, self.big_file())
        return self._floor

    def litestar(self) -> tuple[Proc, str]:
        """The pread floor as a bare Litestar `asgi` route: the framework's own floor."""
        if self._litestar is None:
            self._litestar = start_floor(self.procs, self.big_file(), framework=True)
        return self._litestar

    def granian(self, *, pathsend: bool) -> tuple[Proc, str] | None:
        """The pread floor under granian, or None when granian is not installed."""
        if granian_binary() is None:
            return None
        if pathsend not in self._granian:
            self._granian[pathsend] = start_granian_floor(
                self.procs, self.big_file(), pathsend=pathsend
            )
        return self._granian[pathsend]

    def nginx(self) -> tuple[Proc, str] | None:
        """nginx serving the big object's file, or None when nginx is not installed."""
        if not self._nginx_tried:
            self._nginx_tried = True
            if nginx_binary() is not None:
                self._nginx = start_nginx(
                    self.procs, self.tmp / "nginx", self.big_file(), free_port()
                )
        return self._nginx

    def big_object_servers(self) -> dict[str, tuple[Proc, str]]:
        """The service, the floors and nginx (when installed), each with its big-object URL."""
        service = self.local()
        servers = {
            "service": (service.proc, service.url + service.seeded["big"].stream_path),
            "floor": self.floor(),
            "litestar": self.litestar(),
        }
        nginx = self.nginx()
        if nginx is not None:
            servers["nginx"] = nginx
        return servers

    def s3(self) -> tuple[Service, str]:
        """moto's S3 and a service using it, with one object seeded; returns (service, endpoint)."""
        if self._s3 is None:
            _moto, endpoint = start_moto(self.procs)
            url = f"s3://{BUCKET}?endpoint_url={endpoint}&region=us-east-1&addressing=path"
            service = start_service(
                self.procs, self.tmp / "s3", {"object": self.s3_bytes}, storage_url=url
            )
            self._s3 = (service, endpoint)
        return self._s3

    def relay_floor(self) -> tuple[Proc, str]:
        """The bare relay of the S3 service's object from the same moto."""
        if self._relay_floor is None:
            service, endpoint = self.s3()
            self._relay_floor = start_relay_floor(
                self.procs, endpoint, service.seeded["object"].storage_key
            )
        return self._relay_floor
