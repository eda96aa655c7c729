"""The upload client, run as its own process: `python -m bench.uploader MODE ...`, JSON on stdout.

Modes: `service` (the multipart flow: createMultipartUpload, signUploadParts, parallel part PUTs,
completeUpload), `boto3` (boto3's own multipart upload straight to the S3 server, same part size
and parallelism), `file` (the same bytes written straight to a local file and fsynced). Every
request has a timeout and the whole run a deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

BLOCK = 1024 * 1024
CREATE = """mutation($input: CreateUploadInput!, $partSize: Float) {
  createMultipartUpload(input: $input, partSize: $partSize) { uploadId partCount } }"""
SIGN = """mutation($id: ID!, $numbers: [Int!]!) {
  signUploadParts(uploadId: $id, partNumbers: $numbers) { partNumber url } }"""
COMPLETE = """mutation($id: ID!) { completeUpload(uploadId: $id) { status failureReason } }"""


def _graphql(http: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = http.post("/graphql", json={"query": query, "variables": variables}).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


def _blocks(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        while length > 0:
            block = handle.read(min(BLOCK, length))
            if not block:
                return
            length -= len(block)
            yield block


def via_service(args: argparse.Namespace) -> dict[str, Any]:
    """The multipart flow against the service; times the parts and the completion apart."""
    size = args.file.stat().st_size
    headers = {"Authorization": f"Bearer {args.token}"}
    timeout = httpx.Timeout(60, read=args.seconds)
    with httpx.Client(base_url=args.server, headers=headers, timeout=timeout) as http:
        fields = {"fileName": "bench.png", "mediaType": "image/png", "sizeBytes": size}
        created = _graphql(http, CREATE, {"input": fields, "partSize": args.part_size})
        upload = created["createMultipartUpload"]
        numbers = list(range(1, upload["partCount"] + 1))
        started = time.monotonic()
        with httpx.Client(timeout=timeout) as parts, ThreadPoolExecutor(args.parallel) as pool:
            for first in range(0, len(numbers), 100):
                batch = numbers[first : first + 100]
                signed = _graphql(http, SIGN, {"id": upload["uploadId"], "numbers": batch})
                urls = {item["partNumber"]: item["url"] for item in signed["signUploadParts"]}

                def send(number: int, urls: dict[int, str] = urls) -> int:
                    offset = (number - 1) * args.part_size
                    length = min(args.part_size, size - offset)
                    answer = parts.put(
                        urls[number],
                        content=_blocks(args.file, offset, length),
                        headers={"Content-Length": str(length)},
                    )
                    return answer.status_code

                statuses = list(pool.map(send, batch))
                if any(status != 200 for status in statuses):
                    raise RuntimeError(f"part answers {sorted(set(statuses))}")
        sent = time.monotonic()
        deadline = sent + args.seconds
        # Processing is a queued job: completeUpload answers IN_PROGRESS until it ended.
        while (done := _graphql(http, COMPLETE, {"id": upload["uploadId"]})["completeUpload"])[
            "status"
        ] == "IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the server's job; each poll is one cheap query
        finished = time.monotonic()
    return {
        "bytes": size,
        "seconds": sent - started,
        "complete_seconds": finished - sent,
        "status": done["status"],
        "failure": done["failureReason"],
    }


def via_boto3(args: argparse.Namespace) -> dict[str, Any]:
    """boto3's managed multipart upload with the same part size and parallelism."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    # `--like-service`: the service's own client settings (no SigV4 hash of the body before
    # sending it, checksums only where required); otherwise boto3's defaults.
    settings = (
        Config(
            s3={"payload_signing_enabled": False},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if args.like_service
        else None
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=args.endpoint, region_name="us-east-1", config=settings
    )
    config = TransferConfig(
        multipart_threshold=args.part_size,
        multipart_chunksize=args.part_size,
        max_concurrency=args.parallel,
    )
    started = time.monotonic()
    client.upload_file(str(args.file), args.bucket, "boto3-direct", Config=config)
    seconds = time.monotonic() - started
    client.delete_object(Bucket=args.bucket, Key="boto3-direct")
    return {"bytes": args.file.stat().st_size, "seconds": seconds}


def via_file(args: argparse.Namespace) -> dict[str, Any]:
    """The same bytes copied straight into a file beside the service's objects, then fsynced."""
    size = args.file.stat().st_size
    started = time.monotonic()
    with args.target.open("wb") as out:
        for block in _blocks(args.file, 0, size):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.monotonic() - started
    args.target.unlink()
    return {"bytes": size, "seconds": seconds}


def main() -> int:
    """Parse, run one mode, print its JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.uploader")
    parser.add_argument("mode", choices=["service", "boto3", "file"])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--part-size", type=int, default=16 * BLOCK)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--server")
    parser.add_argument("--token")
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket")
    parser.add_argument("--target", type=Path)
    parser.add_argument("--like-service", action="store_true")
    args = parser.parse_args()
    modes = {"service": via_service, "boto3": via_boto3, "file": via_file}
    json.dump(modes[args.mode](args), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
