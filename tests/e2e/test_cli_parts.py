"""`media-service upload` in parts: parallel parts, a resume after an interruption."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.test_cli import SCRIPT, _env
from tests.support import unavailable
from tests.support.app import RunningService
from tests.support.documents import UPLOAD
from tests.support.media_files import make_png
from tests.support.multipart import MiB, ok, sha256_hex

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


def _upload(service: RunningService, *args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    return subprocess.run(
        [str(SCRIPT), "upload", *args],
        env=_env(service),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upload_in_parallel_parts(embedded_service: RunningService, tmp_path: Path) -> None:
    source = _padded_png(tmp_path / "big.png", 13)  # 3 parts of 5 MiB
    done = _upload(embedded_service, str(source), "--part-size", "5M")
    assert done.returncode == 0, done.stderr
    _media_id, stream_url = done.stdout.splitlines()
    assert done.stderr.startswith("upload id: ")
    assert sha256_hex(httpx.get(stream_url, timeout=60).content) == sha256_hex(source.read_bytes())


def test_an_interrupted_upload_resumes_with_the_missing_parts(
    embedded_service: RunningService, tmp_path: Path
) -> None:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    # 25 parts of 5 MiB: the interrupt lands while most of them are still to send.
    source = _padded_png(tmp_path / "huge.png", 125)
    command = [str(SCRIPT), "upload", str(source), "--part-size", "5M"]
    process = subprocess.Popen(
        command, env=_env(embedded_service), cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("upload id: "), first
        upload_id = first.split(": ", 1)[1].strip()
        token = embedded_service.token("dev-user")
        deadline = time.monotonic() + WAIT_S
        while not _received(embedded_service, token, upload_id):
            assert time.monotonic() < deadline, "no part arrived"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=WAIT_S) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert f"resume with: media-service upload {source} --resume {upload_id}" in rest, rest
    before = _received(embedded_service, token, upload_id)
    assert 0 < len(before) < 25, before

    done = _upload(embedded_service, str(source), "--resume", upload_id)
    assert done.returncode == 0, done.stderr
    _media_id, stream_url = done.stdout.splitlines()
    assert sha256_hex(httpx.get(stream_url, timeout=60).content) == sha256_hex(source.read_bytes())


def _received(service: RunningService, token: str, upload_id: str) -> list[int]:
    found = ok(service.graphql(UPLOAD, {"id": upload_id}, token=token), "upload")
    return [part["partNumber"] for part in found["receivedParts"]]


def _padded_png(path: Path, mib: int) -> Path:
    """A small valid PNG followed by zeros up to `mib` MiB: many parts, quick to process."""
    make_png(path)
    with path.open("ab") as handle:
        handle.truncate(mib * MiB)
    return path
