"""The installed `media-service` console script against a running embedded service."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from media.ids import is_media_id
from server.lifecycle import DEV_ISSUER_URL
from tests.support import unavailable
from tests.support.app import RunningService
from tests.support.documents import ME
from tests.support.media_files import MediaFiles
from tests.support.processes import SCRIPT

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "serve",
    "worker",
    "migrate",
    "export-schema",
    "dev-token",
    "upload",
    "url",
    "sample-video",
)


def _env(service: RunningService) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env["MEDIA_DATA_DIR"] = str(service.settings.data_dir)
    env["MEDIA_PUBLIC_URL"] = service.url
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    done = subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_then_url_and_download(
    embedded_service: RunningService, media_files: MediaFiles
) -> None:
    env = _env(embedded_service)
    source = media_files.mp4_faststart
    printed = _run(env, "upload", str(source), "--name", "cli clip").stdout.splitlines()
    assert len(printed) == 2, printed
    media_id, stream_url = printed
    assert is_media_id(media_id)
    assert stream_url.startswith(f"{embedded_service.url}/media/")
    original = _sha256(source.read_bytes())
    # An MP4 that is already faststart is stored and served as uploaded.
    assert _sha256(httpx.get(stream_url, timeout=30).content) == original

    fresh = _run(env, "url", media_id).stdout.strip()
    assert fresh.startswith(f"{embedded_service.url}/media/") and "\n" not in fresh
    answer = httpx.get(fresh, headers={"Range": "bytes=0-99"}, timeout=30)
    assert answer.status_code == 206 and answer.content == source.read_bytes()[:100]
    assert answer.headers["content-disposition"].startswith("inline")

    download = _run(env, "url", media_id, "--download").stdout.strip()
    assert download != fresh
    got = httpx.get(download, timeout=30)
    assert got.status_code == 200
    assert got.headers["content-disposition"].startswith("attachment")
    assert _sha256(got.content) == original


def test_url_of_unknown_media_fails(embedded_service: RunningService) -> None:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    done = subprocess.run(
        [str(SCRIPT), "url", "999999"],
        env=_env(embedded_service),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "999999" in done.stderr


def _claims(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_dev_token_prints_one_working_jwt(embedded_service: RunningService) -> None:
    out = _run(_env(embedded_service), "dev-token", "--scope", "admin").stdout
    assert out.endswith("\n") and out.count("\n") == 1, out
    token = out.strip()
    assert token.count(".") == 2
    claims = _claims(token)
    assert claims["iss"] == DEV_ISSUER_URL  # the same whatever host and port serve it
    assert str(claims["scope"]).split() == ["admin"]
    me = embedded_service.graphql(ME, token=token)
    assert "errors" not in me, me
    assert me["data"]["me"]["scopes"] == ["admin"]


@pytest.mark.parametrize(
    "scopes", [["--scope", "user", "admin"], ["--scope", "user", "--scope", "admin"]]
)
def test_dev_token_takes_several_scopes(
    embedded_service: RunningService, scopes: list[str]
) -> None:
    token = _run(_env(embedded_service), "dev-token", *scopes).stdout.strip()
    assert str(_claims(token)["scope"]).split() == ["user", "admin"]


def test_export_schema_matches_committed_file(embedded_service: RunningService) -> None:
    out = _run(_env(embedded_service), "export-schema").stdout
    assert out == (ROOT / "schema.graphql").read_text()


def test_help_lists_every_command(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env["MEDIA_DATA_DIR"] = str(tmp_path)
    out = _run(env, "--help").stdout
    # The first word of each indented line under the COMMAND heading, not the prose above it.
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ")]
    assert set(COMMANDS) <= set(listed), out
