"""Multipart upload helpers for tests: the GraphQL calls, part PUTs and a large test image."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.support.app import RunningService
from tests.support.documents import COMPLETE, CREATE_MULTIPART, SIGN_PARTS, UPLOAD

MiB = 1024 * 1024
SETTLE_S = 30.0


def make_noise_png(path: Path, size: tuple[int, int] = (2400, 1800), seed: int = 1) -> Path:
    """A PNG of random pixels: incompressible, so about 3 bytes per pixel on disk."""
    width, height = size
    pixels = random.Random(seed).randbytes(width * height * 3)
    Image.frombytes("RGB", size, pixels).save(path, format="PNG", compress_level=1)
    return path


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def ok(answer: dict[str, Any], field: str) -> Any:
    """The data field of a GraphQL answer that must have no errors."""
    assert "errors" not in answer, answer
    return answer["data"][field]


def create_multipart(
    service: RunningService,
    token: str,
    data: bytes,
    *,
    media_type: str = "image/png",
    part_size: int | None = 5 * MiB,
    sha256: str | None = None,
    name: str = "big.png",
    declared: int | None = None,
) -> dict[str, Any]:
    """createMultipartUpload for `data` (or `declared` bytes); returns the MultipartUpload."""
    size = len(data) if declared is None else declared
    fields: dict[str, Any] = {"fileName": name, "mediaType": media_type, "sizeBytes": size}
    if sha256 is not None:
        fields["sha256"] = sha256
    answer = service.graphql(
        CREATE_MULTIPART, {"input": fields, "partSize": part_size}, token=token
    )
    return ok(answer, "createMultipartUpload")


def sign(service: RunningService, token: str, upload_id: str, numbers: list[int]) -> dict[int, Any]:
    """signUploadParts; the part URLs by number."""
    answer = service.graphql(SIGN_PARTS, {"id": upload_id, "numbers": numbers}, token=token)
    return {item["partNumber"]: item for item in ok(answer, "signUploadParts")}


def part_of(data: bytes, part_size: int, number: int) -> bytes:
    """The bytes of part `number` (1-based)."""
    return data[(number - 1) * part_size : number * part_size]


def put_part(part: dict[str, Any], content: bytes, **headers: str) -> httpx.Response:
    """PUT `content` to a part URL."""
    return httpx.put(part["url"], content=content, headers=headers, timeout=60)


def received(service: RunningService, token: str, upload_id: str) -> list[int]:
    """The part numbers `upload(uploadId)` lists as received."""
    found = ok(service.graphql(UPLOAD, {"id": upload_id}, token=token), "upload")
    return [part["partNumber"] for part in found["receivedParts"]]


def complete(service: RunningService, token: str, upload_id: str) -> dict[str, Any]:
    """completeUpload; the raw GraphQL answer."""
    return service.graphql(COMPLETE, {"id": upload_id}, token=token)


def settled(service: RunningService, token: str, upload_id: str) -> dict[str, Any]:
    """completeUpload, repeated until the media's processing job ended; the media."""
    deadline = time.monotonic() + SETTLE_S
    while (media := ok(complete(service, token, upload_id), "completeUpload"))[
        "status"
    ] == "IN_PROGRESS":
        assert time.monotonic() < deadline, media
        time.sleep(0.05)  # the job runs in the server; each poll is one cheap query
    return media
