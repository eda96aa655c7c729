"""The load client, run as its own process: `python -m bench.client MODE ...`, JSON on stdout.

Modes: `get` (full GETs, optionally concurrent and rate limited), `s3get` (boto3 straight to the
S3 server), `ranges` (random-range keep-alive load, used when wrk is not installed). Every loop is
bounded by a request count and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

BUFFER_BYTES = 1024 * 1024


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


class _Pacer:
    """Keeps a reader at `rate` bytes/s or below (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._start = time.monotonic()

    def after(self, total: int) -> None:
        if self._rate > 0:
            ahead = total / self._rate - (time.monotonic() - self._start)
            if ahead > 0:
                time.sleep(ahead)  # the client is rate limited on purpose


def _one_get(url: str, deadline: float, rate: float, max_bytes: int) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", "loopback only"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    buffer = memoryview(bytearray(BUFFER_BYTES))
    started = time.monotonic()
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        total, ttfb, pacer = 0, None, _Pacer(rate)
        while total < max_bytes and time.monotonic() < deadline:
            got = response.readinto(buffer)
            if not got:
                break
            if ttfb is None:
                ttfb = time.monotonic() - started
            total += got
            pacer.after(total)
        return {
            "status": response.status,
            "bytes": total,
            "ttfb": ttfb or 0.0,
            "seconds": time.monotonic() - started,
        }
    finally:
        conn.close()


def run_get(args: argparse.Namespace) -> dict[str, Any]:
    """`count` full GETs over `concurrency` threads, each stopping at the deadline."""
    deadline = time.monotonic() + args.seconds
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    remaining = [args.count]

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            outcome = _one_get(args.url, deadline, args.rate, args.max_bytes)
            with lock:
                results.append(outcome)

    return _timed(worker, args.concurrency, results)


def _timed(
    worker: Callable[[], None], concurrency: int, results: list[dict[str, Any]]
) -> dict[str, Any]:
    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    ttfbs = [r["ttfb"] * 1000 for r in results]
    return {
        "requests": len(results),
        "bytes": sum(r["bytes"] for r in results),
        "seconds": seconds,
        "ttfb_ms_median": statistics.median(ttfbs) if ttfbs else 0.0,
        "statuses": sorted({r["status"] for r in results}),
    }


def run_s3get(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential boto3 GetObject calls, body read in 1 MiB chunks."""
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    deadline = time.monotonic() + args.seconds
    results: list[dict[str, Any]] = []

    def worker() -> None:
        for _ in range(args.count):
            if time.monotonic() >= deadline:
                return
            started = time.monotonic()
            body = client.get_object(Bucket=args.bucket, Key=args.key)["Body"]
            total, ttfb = 0, None
            while chunk := body.read(BUFFER_BYTES):
                ttfb = ttfb if ttfb is not None else time.monotonic() - started
                total += len(chunk)
            body.close()
            results.append({"status": 200, "bytes": total, "ttfb": ttfb or 0.0})

    return _timed(worker, 1, results)


async def _range_connection(
    url: str, size: int, span: int, deadline: float, budget: list[int], latencies: list[float]
) -> None:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", "loopback only"
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            start = random.randrange(0, size - span)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Range: bytes={start}-{start + span - 1}\r\n\r\n".encode()
            )
            sent = time.monotonic()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.monotonic() - sent)
    finally:
        writer.close()


async def _ranges(args: argparse.Namespace) -> dict[str, Any]:
    deadline = time.monotonic() + args.seconds
    budget = [args.count]
    latencies: list[float] = []
    started = time.monotonic()
    await asyncio.gather(
        *(
            _range_connection(args.url, args.size, args.span, deadline, budget, latencies)
            for _ in range(args.concurrency)
        )
    )
    seconds = time.monotonic() - started
    return {
        "requests": len(latencies),
        "duration_us": int(seconds * 1e6),
        "bytes": 0,
        "p50_us": int(_percentile(latencies, 50) * 1e6),
        "p99_us": int(_percentile(latencies, 99) * 1e6),
        "errors": 0,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    modes = parser.add_subparsers(dest="mode", required=True)
    get = modes.add_parser("get")
    get.add_argument("url")
    get.add_argument("--count", type=int, default=1)
    get.add_argument("--concurrency", type=int, default=1)
    get.add_argument("--seconds", type=float, default=30)
    get.add_argument("--rate", type=float, default=0, help="bytes/s per reader, 0 = unlimited")
    get.add_argument("--max-bytes", type=int, default=1 << 62)
    s3 = modes.add_parser("s3get")
    s3.add_argument("--endpoint", required=True)
    s3.add_argument("--bucket", required=True)
    s3.add_argument("--key", required=True)
    s3.add_argument("--count", type=int, default=1)
    s3.add_argument("--seconds", type=float, default=30)
    ranges = modes.add_parser("ranges")
    ranges.add_argument("url")
    ranges.add_argument("--size", type=int, required=True)
    ranges.add_argument("--span", type=int, default=65536)
    ranges.add_argument("--concurrency", type=int, default=1)
    ranges.add_argument("--count", type=int, default=1000)
    ranges.add_argument("--seconds", type=float, default=10)
    return parser


def main() -> None:
    """Run one mode and print its JSON result."""
    args = _parser().parse_args()
    if args.mode == "get":
        result = run_get(args)
    elif args.mode == "s3get":
        result = run_s3get(args)
    else:
        result = asyncio.run(_ranges(args))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
