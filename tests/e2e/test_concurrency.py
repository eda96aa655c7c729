"""Many readers streaming random ranges while uploads run, on both shapes; every byte checked."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.app import RunningService
from tests.support.documents import COMPLETE, CREATE, LIST
from tests.support.flow import upload_file
from tests.support.media_files import MediaFiles, make_jpeg, make_mp4, make_png
from tests.support.uploads import SETTLE_TIMEOUT_S, stored_objects, subject

READERS = 32
REQUESTS_PER_READER = 16
DEADLINE_S = 60


@dataclass(frozen=True, slots=True)
class Streamed:
    """A media under load: its stream URL and the bytes a full GET gave before the load."""

    url: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """A file uploaded during the load and the type it is declared as."""

    path: Path
    media_type: str
    stored_as_is: bool


@pytest.fixture
def streamed(
    any_service: RunningService, media_files: MediaFiles, tmp_path: Path
) -> list[Streamed]:
    """Three media of the service, uploaded before the load, with their served bytes."""
    token = any_service.token("reader-owner")
    sources = [
        (make_mp4(tmp_path / "long.mp4", seconds=3.0, size=(480, 360)), "video/mp4"),
        (media_files.webm, "video/webm"),
        (media_files.jpeg, "image/jpeg"),
    ]
    found = []
    for path, media_type in sources:
        media = upload_file(any_service, token, path, media_type)
        whole = httpx.get(media["streamUrl"]["url"], timeout=30)
        # The stream is the playback rendition (the MP4s' faststart copy, the WebM's transcode).
        assert whole.status_code == 200 and len(whole.content) == int(
            whole.headers["content-length"]
        )
        found.append(Streamed(media["streamUrl"]["url"], whole.content))
    return found


@pytest.fixture
def incoming(media_files: MediaFiles, tmp_path: Path) -> list[Incoming]:
    """Eight distinct files to upload while readers stream."""
    files = [Incoming(media_files.mp4, "video/mp4", False)]
    files.append(Incoming(make_mp4(tmp_path / "in.mp4", seconds=1.0), "video/mp4", False))
    for index in range(3):
        png = make_png(tmp_path / f"in{index}.png", (200 + 40 * index, 150))
        jpeg = make_jpeg(tmp_path / f"in{index}.jpg", (300, 200 + 30 * index))
        files += [Incoming(png, "image/png", True), Incoming(jpeg, "image/jpeg", True)]
    return files


def _range(rng: random.Random, size: int) -> tuple[str | None, int, int]:
    """A Range header value and the [start, end) it selects; None means the whole body."""
    roll = rng.random()
    if roll < 0.1:
        return None, 0, size
    if roll < 0.2:
        suffix = rng.randint(1, size)
        return f"bytes=-{suffix}", size - suffix, size
    start = rng.randrange(size)
    if roll < 0.3:
        return f"bytes={start}-", start, size
    end = min(size, start + rng.randint(1, 256 * 1024))
    return f"bytes={start}-{end - 1}", start, end


async def _reader(seed: int, media: list[Streamed], received: list[int]) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(REQUESTS_PER_READER):
            item = rng.choice(media)
            size = len(item.body)
            header, start, end = _range(rng, size)
            headers = {"Range": header} if header else {}
            answer = await client.get(item.url, headers=headers)
            if header is None:
                assert answer.status_code == 200, answer.status_code
            else:
                assert answer.status_code == 206, (header, answer.status_code)
                assert answer.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
            assert answer.content == item.body[start:end], (item.url[-12:], header)
            received.append(len(answer.content))


async def _graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _uploader(service: RunningService, token: str, item: Incoming, done: list[str]) -> None:
    data = await anyio.Path(item.path).read_bytes()
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        variables = {
            "input": {
                "fileName": item.path.name,
                "mediaType": item.media_type,
                "sizeBytes": len(data),
            }
        }
        ticket = (await _graphql(client, CREATE, variables, token))["createUpload"]
        headers = {entry["name"]: entry["value"] for entry in ticket["headers"]}
        put = await client.put(ticket["uploadUrl"], content=data, headers=headers)
        assert put.status_code == 202, (item.path.name, put.text)
        with anyio.fail_after(SETTLE_TIMEOUT_S):
            while True:  # the processing job runs after the 202
                media = (await _graphql(client, COMPLETE, {"id": ticket["uploadId"]}, token))[
                    "completeUpload"
                ]
                if media["status"] != "IN_PROGRESS":
                    break
                await anyio.sleep(0.05)
        assert media["status"] == "SUCCESS", media
        served = await client.get(media["streamUrl"]["url"])
        assert served.status_code == 200
        if item.stored_as_is:
            assert hashlib.sha256(served.content).digest() == hashlib.sha256(data).digest()
        done.append(media["id"])


async def test_range_readers_and_uploads_at_once(
    any_service: RunningService, streamed: list[Streamed], incoming: list[Incoming]
) -> None:
    uploader = any_service.token(subject())
    received: list[int] = []
    uploaded: list[str] = []
    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tasks:
            for seed in range(READERS):
                tasks.start_soon(_reader, seed, streamed, received)
            for item in incoming:
                tasks.start_soon(_uploader, any_service, uploader, item, uploaded)
    assert len(received) == READERS * REQUESTS_PER_READER
    assert sum(received) > 0
    assert len(uploaded) == len(incoming) == len(set(uploaded))
    async with httpx.AsyncClient(base_url=any_service.url, timeout=30) as client:
        edges = (await _graphql(client, LIST, {}, uploader))["medias"]["edges"]
    assert sorted(edge["node"]["id"] for edge in edges) == sorted(uploaded)
    assert {edge["node"]["status"] for edge in edges} == {"SUCCESS"}
    # An original and a thumbnail per media, a rendition per video (the streamed MP4 and WebM,
    # the uploaded MP4s with moov at the end), and nothing else: no temp or orphan objects.
    objects = await anyio.to_thread.run_sync(stored_objects, any_service.settings)
    renditions = 2 + sum(not item.stored_as_is for item in incoming)
    assert len(objects) == 2 * (len(streamed) + len(incoming)) + renditions, sorted(objects)
