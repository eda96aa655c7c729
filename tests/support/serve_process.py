"""`media-service serve` as its own process, its stdout and stderr kept for the test to read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import unavailable

SCRIPT = Path(sys.executable).parent / "media-service"


@dataclass
class ServedProcess:
    """A running server; `stdout`/`stderr` are filled in when it has stopped."""

    url: str
    process: subprocess.Popen[str]
    stdout: str = field(default="")
    stderr: str = field(default="")


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without MEDIA_*, OTEL_* and PROMETHEUS_* variables, plus `settings`."""
    drop = ("MEDIA_", "OTEL_", "PROMETHEUS_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(drop)}
    return env | settings


@contextlib.contextmanager
def serve_process(
    env: Mapping[str, str],
    port: int,
    output: Path,
    *,
    ready_s: float = 90,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[ServedProcess]:
    """Start serve on `port`, wait until /readyz answers 200, stop it with `stop` at the end.

    Output goes to files in `output` (a pipe nobody reads would stall a chatty server)."""
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    output.mkdir(parents=True, exist_ok=True)
    out_path, err_path = output / f"serve-{port}.out", output / f"serve-{port}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", str(port)],
            env=dict(env),
            stdout=out,
            stderr=err,
            text=True,
        )
    served = ServedProcess(url=f"http://127.0.0.1:{port}", process=process)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            try:
                if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.1)
        yield served
        process.send_signal(stop)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        served.stdout, served.stderr = out_path.read_text(), err_path.read_text()
