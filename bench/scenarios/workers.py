"""Scenario 8: `serve --workers 2` against `serve --workers 1`, 64 KiB ranges at c=64.

Both serve the same PostgreSQL database and local folder (seeded once, as in every scenario),
on their own ports, one after the other and twice each (interleaved, best round kept), since
`--workers N` needs PostgreSQL. CPU counts every process of a server (uvicorn's supervisor and
its forked workers). The load generator runs on the same cores: on a 2-core machine a second
worker competes with it, so the ratio says what one more core buys when wrk takes its share.
"""

from __future__ import annotations

import os
import secrets
import uuid

import anyio
import asyncpg

from bench.procs import Proc, free_port, python, wait_http
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.scenarios.jobs import _admin
from bench.scenarios.ranges import measure
from bench.seed import seed
from bench.stack import AWS_ENV, Stack, _clean_env
from media.config import load_settings

TARGET_RATIO = 1.6
ROUNDS = 2


def run(plan: Plan, stack: Stack) -> Outcome:
    """One and two app processes on the same data; req/s and CPU per request of each."""
    try:
        anyio.run(_admin, "SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        return Outcome(notes=[f"PostgreSQL not reachable ({exc}): workers scenario skipped"])
    name = f"media_bench_{uuid.uuid4().hex[:12]}"
    env = {
        "MEDIA_DATA_DIR": str(stack.tmp / "workers"),
        "MEDIA_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
        "MEDIA_SIGNING_KEYS": secrets.token_hex(32),
        "MEDIA_ENV": "development",
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_IN_PROCESS_WORKER": "false",
        "MEDIA_PUBLIC_URL": "http://127.0.0.1:1",  # tokens do not name the host
    }
    anyio.run(_admin, f'CREATE DATABASE "{name}"')
    try:
        os.environ.update(AWS_ENV)
        seeded = anyio.run(seed, load_settings(env), {"big": plan.big_bytes}, 0)["big"]
        best: dict[int, dict[str, float]] = {}
        for _ in range(ROUNDS):
            for workers in (1, 2):
                proc, url = _serve(stack, env, workers)
                try:
                    figures = measure(
                        proc, url + seeded.stream_path, seeded.size, 64, plan, stack.tmp
                    )
                finally:
                    proc.stop()
                kept = best.get(workers)
                if kept is None or figures["rate"] > kept["rate"]:
                    best[workers] = figures
    finally:
        anyio.run(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    one, two = best[1], best[2]
    label = "8 serve --workers, ranges 64KiB c=64"
    cores = len(os.sched_getaffinity(0))  # the cores this run may use
    # Every request costs the service and the load generator CPU on the same cores: however
    # many workers, the rate cannot pass cores / (service + load CPU per request).
    ceiling = cores / ((two["cpu_us"] + two["load_cpu_us"]) / 1e6)
    return Outcome(
        rows=[
            Row(
                label,
                "throughput, 2 workers",
                "req/s",
                two["rate"],
                {"1 worker": one["rate"]},
                f">= {TARGET_RATIO}x 1 worker",
                two["rate"] >= TARGET_RATIO * one["rate"],
            ),
            Row(
                label,
                "CPU per request, 2 workers",
                "us",
                two["cpu_us"],
                {"1 worker": one["cpu_us"]},
            ),
            Row(
                label,
                "load generator CPU per request, 2 workers",
                "us",
                two["load_cpu_us"],
                {"1 worker": one["load_cpu_us"]},
            ),
        ],
        notes=[
            f"workers: PostgreSQL, best of {ROUNDS} interleaved rounds; wrk on the same cores",
            f"workers: on {cores} cores shared with the load generator, the CPU per request of "
            f"both caps 2 workers at {ceiling:,.0f} req/s, {ceiling / one['rate']:.2f}x the "
            "1-worker rate",
        ],
    )


def _serve(stack: Stack, env: dict[str, str], workers: int) -> tuple[Proc, str]:
    port = free_port()
    argv = python(
        "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    )  # fmt: skip
    proc = stack.procs.start(f"service-workers-{workers}", argv, _clean_env() | env)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/readyz", timeout_s=120)
    return proc, url
