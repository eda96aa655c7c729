"""The relay floor: a bare ASGI app relaying one S3 object from BENCH_S3_ENDPOINT to the client.

Run as `python -m uvicorn bench.relay_floor:app`; any path serves the object BENCH_S3_KEY of
BENCH_S3_BUCKET whole. It checks nothing and looks nothing up: one GetObject in a worker thread,
then the body read by `readinto` of the `http.client` response under botocore's body, 1 MiB per
worker-thread hop with the next batch read while this one is sent, 256 KiB per send. So its
throughput is what any Python relay under uvicorn gets from the same store, the S3 scenario's
second baseline beside boto3 reading the store directly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import boto3

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHUNK_BYTES = 256 * 1024
BATCH_BYTES = 1024 * 1024
_BUCKET = os.environ.get("BENCH_S3_BUCKET", "")
_KEY = os.environ.get("BENCH_S3_KEY", "")
_CLIENT = boto3.session.Session().client(
    "s3", endpoint_url=os.environ.get("BENCH_S3_ENDPOINT"), region_name="us-east-1"
)


def _get() -> tuple[Any, int]:
    response = _CLIENT.get_object(Bucket=_BUCKET, Key=_KEY)
    return response["Body"], response["ContentLength"]


def _batch(wire: Any, left: int, limit: int) -> list[bytearray]:
    """Up to `limit` bytes of the body, in pieces of CHUNK_BYTES."""
    blocks: list[bytearray] = []
    taken = 0
    while taken < limit and left > 0:
        block = bytearray(min(CHUNK_BYTES, left, limit - taken))
        count = wire.readinto(block)
        if not count:
            break
        del block[count:]
        blocks.append(block)
        taken += count
        left -= count
    return blocks


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Relay the object: 200 with its length, then its bytes, one batch read ahead."""
    if scope["type"] != "http":
        return
    body, size = await asyncio.to_thread(_get)
    wire = body._raw_stream._fp  # the http.client response under urllib3's and botocore's
    try:
        headers = [(b"content-type", b"video/mp4"), (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = size
        blocks = await asyncio.to_thread(_batch, wire, left, CHUNK_BYTES)  # first byte soon
        while blocks:
            left -= sum(len(block) for block in blocks)
            ahead = asyncio.ensure_future(asyncio.to_thread(_batch, wire, left, BATCH_BYTES))
            for block in blocks:
                await send({"type": "http.response.body", "body": block, "more_body": True})
            blocks = await ahead
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        body.close()
