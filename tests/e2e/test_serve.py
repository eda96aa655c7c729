"""`media-service serve` as a person runs it: zero setup, then a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, unavailable

SCRIPT = Path(sys.executable).parent / "media-service"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_on_the_embedded_default_then_stop(tmp_path: Path, stop: signal.Signals) -> None:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env["MEDIA_DATA_DIR"] = str(tmp_path / "fresh")  # does not exist yet: serve creates it
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.1)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert (tmp_path / "fresh" / "media.sqlite3").is_file()
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the signal once shutdown completed, so a supervisor sees why it ended.
    assert process.returncode in (0, -stop), stderr
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in stderr
    assert "Application shutdown complete" in stderr
