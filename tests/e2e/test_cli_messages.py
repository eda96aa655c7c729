"""The console script's refusals: one line naming the setting, URL or file, and what to do."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.lifecycle import dev_issuer
from tests.support import free_port, unavailable
from tests.support.app import RunningService, embedded_service_at
from tests.support.media_files import MediaFiles
from tests.support.processes import SCRIPT


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with embedded_service_at(tmp_path_factory.mktemp("cli-messages")) as running:
        yield running


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.is_file():
        unavailable(f"console script not installed at {SCRIPT}")
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=90
    )


def env_for(service: RunningService, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env["MEDIA_DATA_DIR"] = str(service.settings.data_dir)
    env["MEDIA_PUBLIC_URL"] = service.url
    env.update(extra)
    return env


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# name -> (files -> args, extra environment, expected fragment of the one stderr line)
REFUSALS: dict[str, tuple[Callable[[Path, RunningService], list[str]], dict[str, str], str]] = {
    "empty file": (lambda d, s: ["upload", str(write(d / "e.mp4", b""))], {}, "is empty"),
    "bmp": (
        lambda d, s: ["upload", str(write(d / "a.bmp", b"BM" + b"\0" * 64))],
        {},
        "image/avif, image/gif, image/heic, image/heif, image/jpeg, image/png, image/webp, "
        "video/mp4, video/quicktime, video/webm, video/x-matroska",
    ),
    "no extension, not media": (
        lambda d, s: ["upload", str(write(d / "notes", b"hello"))],
        {},
        "not a media file the service accepts",
    ),
    "server not running": (
        lambda d, s: [
            "url",
            "AAAAAAAAAAAAAAAAAAAAAA",
            "--server",
            f"http://127.0.0.1:{free_port()}",
        ],
        {},
        "is `media-service serve` running there?",
    ),
    "server given as the endpoint": (
        lambda d, s: ["url", "AAAAAAAAAAAAAAAAAAAAAA", "--server", f"{s.url}/graphql"],
        {},
        "without /graphql",
    ),
    "another folder without a key": (
        lambda d, s: ["url", "AAAAAAAAAAAAAAAAAAAAAA"],
        {"MEDIA_DATA_DIR": "<fresh>"},
        "run this from the folder where `media-service serve` runs",
    ),
    "dev-token from another folder": (
        lambda d, s: ["dev-token"],
        {"MEDIA_DATA_DIR": "<fresh>"},
        "no development key at",
    ),
    "dev-token with ttl 0": (lambda d, s: ["dev-token", "--ttl", "0"], {}, "at least 1 second"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_one_line_and_say_what_to_do(
    service: RunningService, tmp_path: Path, case: str
) -> None:
    make_args, extra, expected = REFUSALS[case]
    fresh = tmp_path / "elsewhere"
    extra = {k: (str(fresh) if v == "<fresh>" else v) for k, v in extra.items()}
    done = run(env_for(service, **extra), *make_args(tmp_path, service))
    # A refused run exits 1; a command line argparse refuses, 2.
    assert done.returncode == (2 if case == "dev-token with ttl 0" else 1) and done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert not (fresh / "dev-oidc-key.pem").exists()  # a client never makes a key


def test_a_png_named_jpg_uploads_as_png(
    service: RunningService, tmp_path: Path, media_files: MediaFiles
) -> None:
    misnamed = write(tmp_path / "photo.jpg", media_files.png.read_bytes())
    done = run(env_for(service), "upload", str(misnamed))
    assert done.returncode == 0, done.stderr


def test_localhost_and_127_0_0_1_are_the_same_server(service: RunningService) -> None:
    localhost = service.url.replace("127.0.0.1", "localhost")
    token = run(env_for(service), "dev-token", "--server", localhost).stdout.strip()
    assert service.graphql("{ me { subject } }", token=token)["data"]["me"]["subject"]


def test_the_readme_first_upload_runs_as_written(service: RunningService, tmp_path: Path) -> None:
    made = run(env_for(service), "sample-video", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "clip.mp4").is_file()
    done = run(env_for(service), "upload", "clip.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    media_id, _ = done.stdout.split()
    again = run(env_for(service), "url", media_id)
    assert again.returncode == 0 and again.stdout.startswith(f"{service.url}/media/")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:{closed}/media", "cannot be reached"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_database_here", "does not exist"),
    ],
)
def test_serve_with_a_bad_database_says_so_in_one_line(
    tmp_path: Path, database: str, expected: str
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env |= {
        "MEDIA_DATA_DIR": str(tmp_path),
        "MEDIA_ENV": "development",
        "MEDIA_DATABASE_URL": database.format(closed=free_port()),
    }
    done = run(env, "serve", "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "MEDIA_DATABASE_URL" in done.stderr and expected in done.stderr
    assert "GraphiQL" not in done.stderr


def test_a_refused_token_prints_why(service: RunningService) -> None:
    settings = service.settings
    expired = dev_issuer(settings).mint(
        "cli-user", ["user"], audience=settings.oidc_audience, ttl_s=60, now=time.time() - 3600
    )
    done = run(env_for(service, MEDIA_TOKEN=expired), "url", "AAAAAAAAAAAAAAAAAAAAAA")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "media-service url: UNAUTHENTICATED (expired): "
        "Authentication required or the bearer token is not valid"
    ]
