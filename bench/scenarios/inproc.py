"""Scenario 0: CPU of one 64 KiB range in-process, the service's ASGI app against the two floors.

No server, no sockets, no load generator: each app is called directly with a prepared scope and a
`send` that drops the body, in the bench process, and timed with `time.process_time` (best of
three rounds). On a machine shared with other work this moves far less than the figures under
uvicorn, so it is the one to compare between runs; it leaves out uvicorn's own cost (about 50 us
per request here), which the range scenario includes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack

Message = MutableMapping[str, Any]
App = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Any], Awaitable[None]]
SPAN = 64 * 1024
ROUNDS = 3


def run(plan: Plan, stack: Stack) -> Outcome:
    """Time the floor, the Litestar floor and the service app on the same file."""
    service = stack.local()
    big = service.seeded["big"]
    assert big.local_path is not None
    os.environ["BENCH_FILE"] = str(big.local_path)  # read by bench.floor at import
    from bench.floor import app as floor_app
    from bench.floor_litestar import app as litestar_app
    from server.app import create_app

    app = create_app(service.settings)
    logging.getLogger("media.request").setLevel(logging.WARNING)
    calls = 500 if plan.quick else 3000
    figures = asyncio.run(
        _measure(
            app,
            {"floor": (floor_app, "/object"), "litestar": (litestar_app, "/media/object")},
            big.stream_path,
            big.size,
            calls,
        )
    )
    svc = figures.pop("service")
    return Outcome(
        rows=[Row("0 in-process 64KiB range", "CPU per request", "us", svc, figures)],
        notes=["0: the ASGI apps called directly (no uvicorn, no sockets): see bench/README.md"],
    )


async def _measure(
    app: Any, floors: dict[str, tuple[Any, str]], path: str, size: int, calls: int
) -> dict[str, float]:
    async with lifespan(app):
        apps = {**floors, "service": (app, path)}
        best = {name: float("inf") for name in apps}
        for _ in range(ROUNDS):  # interleaved, so a burst of other load hits all alike
            for name, (target, target_path) in apps.items():
                best[name] = min(best[name], await _cpu_us(target, target_path, size, calls))
        return best


async def _cpu_us(app: Any, path: str, size: int, calls: int) -> float:
    per_call, statuses = await cpu_us(
        app, lambda rng: _scope(path, rng, size), calls, warm_up=min(200, calls)
    )
    if statuses != {206}:
        raise RuntimeError(f"{path.split('/')[1]}: answered {sorted(statuses)}, not 206")
    return per_call


async def cpu_us(
    app: Any, make: Callable[[random.Random], dict[str, Any]], calls: int, *, warm_up: int
) -> tuple[float, set[int]]:
    """CPU microseconds per call of `app` on the scopes `make` draws (seeded by `calls`), after
    `warm_up` calls (caches, lazy imports); with every status it answered."""
    rng = random.Random(calls)
    statuses: set[int] = set()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    for _ in range(warm_up):
        await app(make(rng), receive, send)
    started = time.process_time()
    for _ in range(calls):
        await app(make(rng), receive, send)
    return (time.process_time() - started) / calls * 1e6, statuses


def _scope(path: str, rng: random.Random, size: int) -> dict[str, Any]:
    start = rng.randrange(0, size - SPAN)
    return request_scope(path, [(b"range", f"bytes={start}-{start + SPAN - 1}".encode())])


def request_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of a GET for `path` with `headers` (and Host), as uvicorn would pass it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the app's startup and, at the end, its shutdown (as a server would)."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    started = await asyncio.wait_for(outbox.get(), timeout=60)
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"service start-up failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(outbox.get(), timeout=60)
        await asyncio.wait_for(task, timeout=60)
