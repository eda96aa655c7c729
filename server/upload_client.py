"""The multipart side of `media-service upload`: parts in parallel, retries, resume."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MiB  # files above this go in parts
PARALLEL_PARTS = 4
SIGN_BATCH = 100  # the server signs at most 100 parts per call
RETRY_WAITS_S = (0.0, 1.0, 3.0, 5.0)  # before each attempt of one part
READ_BYTES = 256 * 1024

CREATE = """mutation($input: CreateUploadInput!, $partSize: Float) {
  createMultipartUpload(input: $input, partSize: $partSize) { uploadId partCount sizeBytes } }"""
SIGN = """mutation($id: ID!, $numbers: [Int!]!) {
  signUploadParts(uploadId: $id, partNumbers: $numbers) { partNumber url sizeBytes } }"""
STATE = """query($id: ID!) { upload(uploadId: $id) {
  uploadId partSize partCount sizeBytes receivedParts { partNumber } } }"""

GraphQL = Callable[[str, dict[str, Any]], dict[str, Any]]


class PartsFailed(Exception):
    """Some parts could not be sent; the upload stays open for a resume."""


def parse_size(text: str) -> int:
    """Bytes from '16777216', '16M', '16MiB' or '1G'."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1024, "M": MiB, "G": 1024 * MiB}.get(value[-1:], 1)
    number = value[:-1] if scale != 1 else value
    if not number.isdigit():
        raise ValueError(f"not a size: {text!r}")
    return int(number) * scale


def create(graphql: GraphQL, fields: dict[str, Any], part_size: int | None) -> dict[str, Any]:
    """createMultipartUpload; the upload's id and part count."""
    created: dict[str, Any] = graphql(CREATE, {"input": fields, "partSize": part_size})[
        "createMultipartUpload"
    ]
    return created


def missing_parts(graphql: GraphQL, upload_id: str, size: int) -> tuple[int, list[int]]:
    """The part size and the part numbers the server has not received yet."""
    state = graphql(STATE, {"id": upload_id})["upload"]
    if state is None:
        raise PartsFailed(f"upload {upload_id} is unknown, finished or not a multipart upload")
    if int(state["sizeBytes"]) != size:
        raise PartsFailed(f"upload {upload_id} expects {int(state['sizeBytes'])} bytes, not {size}")
    have = {part["partNumber"] for part in state["receivedParts"]}
    return int(state["partSize"]), [n for n in range(1, state["partCount"] + 1) if n not in have]


class PartSender:
    """Sends parts of one file, PARALLEL_PARTS at a time, each retried on failure."""

    def __init__(self, graphql: GraphQL, upload_id: str, path: Path, part_size: int) -> None:
        self._graphql = graphql
        self._upload_id = upload_id
        self._path = path
        self._part_size = part_size
        self._size = path.stat().st_size
        self._lock = threading.Lock()
        self._sent = 0
        self._bar = sys.stderr.isatty()
        self._stop = threading.Event()

    def send(self, numbers: list[int], already: int) -> None:
        """Send every part of `numbers`; PartsFailed naming those that failed."""
        self._sent = already
        failed: list[int] = []
        timeout = httpx.Timeout(30, read=600)
        with httpx.Client(timeout=timeout) as http, ThreadPoolExecutor(PARALLEL_PARTS) as pool:
            try:
                for start in range(0, len(numbers), SIGN_BATCH):
                    batch = numbers[start : start + SIGN_BATCH]
                    urls = self._sign(batch)
                    sent = pool.map(self._send_part, repeat(http), batch, [urls[n] for n in batch])
                    failed += [number for number, ok in zip(batch, sent, strict=True) if not ok]
            except BaseException:
                self._stop.set()  # parts on the wire stop reading; queued ones give up at once
                raise
        if self._bar:
            print(file=sys.stderr)
        if failed:
            raise PartsFailed(f"{len(failed)} part(s) failed, first {failed[0]}")

    def _sign(self, numbers: list[int]) -> dict[int, str]:
        urls = self._graphql(SIGN, {"id": self._upload_id, "numbers": numbers})
        return {item["partNumber"]: item["url"] for item in urls["signUploadParts"]}

    def _send_part(self, http: httpx.Client, number: int, url: str) -> bool:
        for wait in RETRY_WAITS_S:
            if self._stop.wait(wait):
                return False
            offset = (number - 1) * self._part_size
            length = min(self._part_size, self._size - offset)
            counted = [0]
            try:
                answer = http.put(
                    url,
                    content=self._read(offset, length, counted),
                    headers={"Content-Length": str(length)},
                )
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return True
            self._progress(-counted[0])
            if answer is not None and answer.status_code == 403:
                url = self._sign([number])[number]  # the short-lived URL ran out: a fresh one
            elif answer is not None and answer.status_code in (400, 409, 411, 413):
                return False  # retrying cannot help
        return False

    def _read(self, offset: int, length: int, counted: list[int]) -> Iterator[bytes]:
        with self._path.open("rb") as handle:
            handle.seek(offset)
            left = length
            while left > 0 and not self._stop.is_set():
                block = handle.read(min(READ_BYTES, left))
                if not block:
                    return
                left -= len(block)
                counted[0] += len(block)
                self._progress(len(block))
                yield block

    def _progress(self, delta: int) -> None:
        with self._lock:
            self._sent += delta
            if self._bar and delta:
                done = int(40 * self._sent / max(self._size, 1))
                percent = self._sent * 100 // max(self._size, 1)
                print(f"\r[{'#' * done}{'.' * (40 - done)}] {percent:3d}%", end="", file=sys.stderr)


def received_bytes(size: int, part_size: int, missing: list[int]) -> int:
    """Bytes already on the server when `missing` parts are still to send."""
    lost = sum(min(part_size, size - (n - 1) * part_size) for n in missing)
    return size - lost


def resume_hint(path: Path, upload_id: str) -> str:
    """What to print when an upload stops before completion."""
    return f"upload id: {upload_id}\nresume with: media-service upload {path} --resume {upload_id}"
