"""`media-service serve` as a person runs it: zero setup, then a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, unavailable
from tests.support.processes import SCRIPT, clean_env, serve_process


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_on_the_embedded_default_then_stop(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    env = clean_env(MEDIA_DATA_DIR=str(tmp_path / "fresh"))  # does not exist yet: serve creates it
    with serve_process(env, port, tmp_path / "out", stop=stop) as served:
        assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}
        assert (tmp_path / "fresh" / "media.sqlite3").is_file()
    # uvicorn re-raises the signal once shutdown completed, so a supervisor sees why it ended.
    # A process started in the background inherits SIGINT ignored: then the re-raise does nothing.
    assert served.process is not None
    ended = {-stop} if stop is signal.SIGTERM else {-stop, 0}
    assert served.process.returncode in ended, served.stderr
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in served.stderr
    assert "Application shutdown complete" in served.stderr


@pytest.mark.parametrize("command", [["serve", "--workers", "2"], ["worker"]])
def test_what_needs_postgresql_is_refused_on_the_embedded_default(
    tmp_path: Path, command: list[str]
) -> None:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    env = clean_env(MEDIA_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [str(SCRIPT), *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert "PostgreSQL" in done.stderr
