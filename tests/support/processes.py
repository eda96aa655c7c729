"""Real `media-service` processes: app servers and queue workers, their output kept in files."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, unavailable
from tests.support.app import TEST_SIGNING_KEY
from tests.support.postgres import fresh_database

SCRIPT = Path(sys.executable).parent / "media-service"
START_TIMEOUT_S = 120.0  # a cold start imports a lot, and test machines are busy
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


@dataclass
class Stack:
    """The settings every process of one production-shaped deployment shares."""

    env: dict[str, str]
    database_url: str
    provider: Any

    def token(self, subject: str, scopes: tuple[str, ...] = ("user",)) -> str:
        """A bearer token of the stack's OIDC provider."""
        return str(self.provider.mint(subject, scopes))

    def with_env(self, **extra: str) -> dict[str, str]:
        """The shared environment plus `extra`."""
        return {**self.env, **extra}


@pytest.fixture
def stack(
    postgres_template: str, s3_bucket: str, oidc_provider: Any, tmp_path: Path
) -> Iterator[Stack]:
    """A fresh database and bucket, the local OIDC provider: what app and workers point at."""
    env = clean_env()
    with fresh_database(postgres_template) as database_url:
        env.update(
            MEDIA_DATA_DIR=str(tmp_path / "data"),
            MEDIA_DATABASE_URL=database_url,
            MEDIA_STORAGE_URL=s3_bucket,
            MEDIA_OIDC_ISSUER=oidc_provider.issuer,
            MEDIA_OIDC_AUDIENCE=oidc_provider.audience,
            MEDIA_SIGNING_KEYS=TEST_SIGNING_KEY,
            MEDIA_LOG_LEVEL="WARNING",
            MEDIA_HLS="false",  # the ladder has tests of its own
        )
        yield Stack(env=env, database_url=database_url, provider=oidc_provider)


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without MEDIA_*, OTEL_* and PROMETHEUS_* variables, plus `settings`."""
    drop = ("MEDIA_", "OTEL_", "PROMETHEUS_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(drop)}
    return env | settings


@dataclass
class Proc:
    """One `media-service` process to start: `serve` (an app) or `worker`.

    Its output goes to `log` (a pipe nobody reads would stall a chatty server), its stderr to
    `errors` when given; it is stopped with `stop`."""

    command: str
    env: Mapping[str, str]
    log: Path
    url: str = ""
    process: subprocess.Popen[str] | None = None
    extra: tuple[str, ...] = ()
    errors: Path | None = None
    stop: signal.Signals = signal.SIGTERM

    @classmethod
    def app(cls, env: Mapping[str, str], log: Path, *extra: str) -> Proc:
        """`serve` on a free port, its public URL set to it."""
        url = f"http://127.0.0.1:{free_port()}"
        return cls("serve", {**env, "MEDIA_PUBLIC_URL": url}, log, url=url, extra=extra)

    @classmethod
    def worker(cls, env: Mapping[str, str], log: Path) -> Proc:
        """`worker --concurrency 1`."""
        return cls("worker", env, log)

    @property
    def stdout(self) -> str:
        """What it wrote to stdout (and to stderr, unless kept apart) so far."""
        return self.log.read_text()

    @property
    def stderr(self) -> str:
        """What it wrote to stderr, when kept apart."""
        return self.errors.read_text() if self.errors is not None else ""

    def start(self) -> None:
        """Spawn the process, its output into `log`."""
        if not SCRIPT.is_file():
            unavailable(f"console script not installed at {SCRIPT}")
        args = [str(SCRIPT), self.command]
        if self.command == "serve":
            args += ["--port", self.url.rsplit(":", 1)[1]]
        else:
            args += ["--concurrency", "1"]
        args += self.extra
        with contextlib.ExitStack() as files:
            out = files.enter_context(self.log.open("w"))
            err = (
                subprocess.STDOUT
                if self.errors is None
                else files.enter_context(self.errors.open("w"))
            )
            self.process = subprocess.Popen(
                args, env=dict(self.env), stdout=out, stderr=err, text=True
            )

    def ready(self) -> bool:
        """True once it serves (/readyz 200) or works (its start line); fails if it died."""
        assert self.process is not None
        assert self.process.poll() is None, self.stdout + self.stderr
        if self.command == "worker":
            return "worker:" in self.stdout
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        return False

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def started(*procs: Proc, timeout_s: float = START_TIMEOUT_S) -> Iterator[tuple[Proc, ...]]:
    """Start every process at once, wait until all are ready; stop all at the end."""
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + timeout_s
        waiting = list(procs)
        while waiting:
            waiting = [proc for proc in waiting if not proc.ready()]
            assert time.monotonic() < deadline, [proc.stdout + proc.stderr for proc in waiting]
            time.sleep(0.1)
        yield procs
    finally:
        alive = [p for p in procs if p.process is not None and p.process.poll() is None]
        for proc in alive:
            assert proc.process is not None
            proc.process.send_signal(proc.stop)
        for proc in alive:
            assert proc.process is not None
            try:
                proc.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait(timeout=10)


@contextlib.contextmanager
def serve_process(
    env: Mapping[str, str],
    port: int,
    output: Path,
    *,
    ready_s: float = 90,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[Proc]:
    """`serve` on `port` with exactly `env`, its stdout and stderr kept apart in `output`."""
    output.mkdir(parents=True, exist_ok=True)
    proc = Proc(
        "serve",
        env,
        output / f"serve-{port}.out",
        url=f"http://127.0.0.1:{port}",
        errors=output / f"serve-{port}.err",
        stop=stop,
    )
    with started(proc, timeout_s=ready_s):
        yield proc


class StallingRelay:
    """A TCP relay to a local server that can go silent (connections stay open, nothing passes)
    or refuse (connections are reset): a storage outage staged for one process only."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self.mode = "relay"  # "relay" | "silent" | "refuse"
        self._held: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                client.close()
                continue
            self._held.append(client)
            if self.mode == "silent":
                continue
            upstream = socket.create_connection(self._target)
            self._held.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if self.mode == "refuse":
                    for sock in (source, target):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                        sock.close()
                    return
                if self.mode == "silent":
                    return  # the bytes go nowhere and the connection stays open
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._server.close()
        for sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()
