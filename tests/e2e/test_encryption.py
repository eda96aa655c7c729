"""Encryption at rest through the whole app: ranges as before, nothing readable at rest, tampering,
and key rotation with the `rewrap-keys` command."""

from __future__ import annotations

import base64
import logging
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from media.storage.chunked import CHUNK, HEADER, SEALED
from tests.support.app import RunningService, embedded_service_at
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4
from tests.support.processes import SCRIPT

ROOT = Path(__file__).resolve().parents[2]


def master_key(key_id: str) -> str:
    """One MEDIA_ENCRYPTION_KEYS entry with a fresh random key."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def encrypted_service(tmp_path: Path) -> Iterator[RunningService]:
    """The embedded default with encryption at rest on."""
    with embedded_service_at(tmp_path / "data", MEDIA_ENCRYPTION_KEYS=master_key("k1")) as svc:
        yield svc


def stored_files(service: RunningService) -> dict[str, Path]:
    """Every object file of the service's storage folder, by key."""
    root = service.settings.data_dir / "objects"
    return {path.name: path for path in root.rglob("*") if path.is_file()}


def admin(service: RunningService) -> str:
    """An admin token: the issuer URL (and so the owner) changes with each restart's port."""
    return service.token("operator", ("admin",))


def rewrap(data_dir: Path, keys: str) -> subprocess.CompletedProcess[str]:
    """Run `media-service rewrap-keys` as an operator would."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIA_")}
    env |= {"MEDIA_DATA_DIR": str(data_dir), "MEDIA_ENCRYPTION_KEYS": keys}
    return subprocess.run(
        [str(SCRIPT), "rewrap-keys"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_ranges_and_validators_are_the_plaintexts(
    encrypted_service: RunningService, tmp_path: Path
) -> None:
    source = make_mp4(tmp_path / "clip.mp4", seconds=2.0, size=(320, 240), faststart=True)
    data = source.read_bytes()
    media = upload_file(encrypted_service, encrypted_service.token(), source, "video/mp4")
    url = media["streamUrl"]["url"]
    assert media["sizeBytes"] == len(data)
    whole = httpx.get(url, timeout=30)
    assert (whole.status_code, whole.content) == (200, data)
    assert whole.headers["content-length"] == str(len(data))
    etag = whole.headers["etag"]
    size = len(data)
    cases = [
        ("bytes=0-1", 0, 2),
        (f"bytes={CHUNK - 1}-{CHUNK}", CHUNK - 1, 2),
        (f"bytes={size - 100}-", size - 100, 100),
        ("bytes=-10", size - 10, 10),
        (f"bytes=1000-{size + 50}", 1000, size - 1000),
    ]
    for header, start, length in cases:
        part = httpx.get(url, headers={"Range": header}, timeout=30)
        assert part.status_code == 206, header
        assert part.content == data[start : start + length], header
        assert part.headers["content-range"] == f"bytes {start}-{start + length - 1}/{size}"
        assert part.headers["etag"] == etag
    beyond = httpx.get(url, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert (beyond.status_code, beyond.headers["content-range"]) == (416, f"bytes */{size}")
    same = httpx.get(url, headers={"Range": "bytes=5-9", "If-Range": etag}, timeout=30)
    assert (same.status_code, same.content) == (206, data[5:10])
    head = httpx.head(url, timeout=30)
    assert (head.headers["etag"], head.headers["content-length"]) == (etag, str(size))
    # Nothing of the file is readable at rest: not its MP4 box names, not a window of its bytes.
    window = data[len(data) // 2 : len(data) // 2 + 64]
    files = stored_files(encrypted_service)
    assert len(files) == 2  # the video and its thumbnail
    for path in files.values():
        at_rest = path.read_bytes()
        assert b"ftyp" not in at_rest and b"moov" not in at_rest and window not in at_rest
        assert b"JFIF" not in at_rest


# The second case reads past 2 MiB from the start: the long read, opened in a worker thread.
@pytest.mark.parametrize(("side", "bad_chunk"), [(400, 12), (1000, 150)])
def test_tampered_bytes_stop_the_stream_never_wrong_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, side: int, bad_chunk: int
) -> None:
    source = tmp_path / "noise.png"
    Image.frombytes("RGB", (side, side), random.Random(4).randbytes(side * side * 3)).save(source)
    data = source.read_bytes()
    assert len(data) > (bad_chunk + 2) * CHUNK
    environ = {"MEDIA_ENCRYPTION_KEYS": master_key("k1"), "MEDIA_STREAM_CHUNK_BYTES": "65536"}
    caplog.set_level(logging.INFO)
    with embedded_service_at(tmp_path / "data", **environ) as service:
        media = upload_file(service, service.token(), source, "image/png")
        url = media["streamUrl"]["url"]
        image = max(stored_files(service).values(), key=lambda p: p.stat().st_size)
        stored = bytearray(image.read_bytes())
        stored[HEADER + bad_chunk * SEALED + 100] ^= 0x01
        image.write_bytes(bytes(stored))
        # The chunks before it are intact and still served.
        intact = f"bytes=0-{bad_chunk * CHUNK - 1}"
        ok = httpx.get(url, headers={"Range": intact}, timeout=30)
        assert (ok.status_code, ok.content) == (206, data[: bad_chunk * CHUNK])
        # A range that starts in the altered chunk fails before any header: a clean 503.
        start = bad_chunk * CHUNK + 10
        bad = httpx.get(url, headers={"Range": f"bytes={start}-{start + 10}"}, timeout=30)
        assert bad.status_code == 503
        # A whole GET has sent headers and good bytes when it reaches the altered chunk: the
        # connection is closed short of Content-Length; nothing past the good part arrives.
        received = b""
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("GET", url, timeout=30) as response,
        ):
            assert response.status_code == 200
            for piece in response.iter_raw():
                received += piece
        assert 0 < len(received) <= bad_chunk * CHUNK
        assert received == data[: len(received)]
    logged = [record.getMessage() for record in caplog.records]
    assert any("stream stopped after" in line for line in logged), logged
    assert any("failed authentication" in line for line in logged), logged
    assert not any('"status":500' in line for line in logged), logged


def test_rotation_with_rewrap_then_the_old_key_removed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old, new = master_key("k1"), master_key("k2")
    source = make_mp4(tmp_path / "clip.mp4", seconds=1.0, size=(160, 120), faststart=True)
    with embedded_service_at(data_dir, MEDIA_ENCRYPTION_KEYS=old) as service:
        media = upload_file(service, service.token(), source, "video/mp4")
        media_id = media["id"]
    with embedded_service_at(data_dir, MEDIA_ENCRYPTION_KEYS=f"{old},{new}") as service:
        # Rewrapping while this process serves: it keeps serving throughout.
        done = rewrap(data_dir, f"{old},{new}")
        assert done.returncode == 0, done.stderr
        assert "rewrapped 2 data key(s)" in done.stdout
        again = rewrap(data_dir, f"{old},{new}")
        assert "rewrapped 0 data key(s)" in again.stdout
        query = "query($id: ID!) { media(id: $id) { streamUrl { url } } }"
        found = service.graphql(query, {"id": media_id}, token=admin(service))
        url = found["data"]["media"]["streamUrl"]["url"]
        assert httpx.get(url, timeout=30).content == source.read_bytes()
    with embedded_service_at(data_dir, MEDIA_ENCRYPTION_KEYS=new) as service:
        found = service.graphql(query, {"id": media_id}, token=admin(service))
        url = found["data"]["media"]["streamUrl"]["url"]
        assert httpx.get(url, timeout=30).content == source.read_bytes()


def test_multipart_upload_is_sealed_part_by_part(tmp_path: Path) -> None:
    from tests.support.multipart import (
        MiB,
        create_multipart,
        make_noise_png,
        part_of,
        put_part,
        settled,
        sha256_hex,
        sign,
    )

    part = 5 * MiB
    data = make_noise_png(tmp_path / "big.png", size=(2000, 1800)).read_bytes()
    assert len(data) > 2 * part
    with embedded_service_at(tmp_path / "data", MEDIA_ENCRYPTION_KEYS=master_key("k1")) as svc:
        token = svc.token()
        upload = create_multipart(svc, token, data, sha256=sha256_hex(data))
        count = upload["partCount"]
        urls = sign(svc, token, upload["uploadId"], list(range(1, count + 1)))
        for number in reversed(range(1, count + 1)):  # out of order, the last one first
            sent = put_part(urls[number], part_of(data, part, number))
            assert sent.status_code == 200, sent.text
            assert sent.json()["sizeBytes"] == len(part_of(data, part, number))
        media = settled(svc, token, upload["uploadId"])
        assert (media["status"], media["sizeBytes"]) == ("SUCCESS", len(data))
        url = media["streamUrl"]["url"]
        assert sha256_hex(httpx.get(url, timeout=60).content) == sha256_hex(data)
        span = f"bytes={part - 100}-{part + 99}"  # across the first part boundary
        across = httpx.get(url, headers={"Range": span}, timeout=30)
        assert (across.status_code, across.content) == (206, data[part - 100 : part + 100])
        window = data[part + 1000 : part + 1064]
        for path in stored_files(svc).values():
            assert window not in path.read_bytes() and b"IHDR" not in path.read_bytes()
