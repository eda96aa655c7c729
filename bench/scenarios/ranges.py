"""Scenario 1: random 64 KiB ranges through signed URLs, against the pread floors and nginx."""

from __future__ import annotations

import dataclasses
import json
import resource
from pathlib import Path

from bench.procs import Proc, python, run_json
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack
from bench.wrk import LoadResult, run_wrk, write_scripts, wrk_binary

SPAN = 64 * 1024
CONCURRENCY = (1, 64)
# Against the bare-uvicorn pread floor of the same run: at least this share of its req/s, at
# most this multiple of its CPU per request.
TARGET_RATIO = 0.6
TARGET_CPU_RATIO = 2.0


def load_ranges(url: str, size: int, connections: int, plan: Plan, scripts: Path) -> LoadResult:
    """Random SPAN-byte ranges of a `size`-byte object, by wrk or the bench client."""
    if wrk_binary() is not None:
        ranges_lua, _ = write_scripts(scripts)
        return run_wrk(
            url,
            ranges_lua,
            connections=connections,
            limit=plan.range_limit,
            seconds=plan.load_seconds,
            script_args=(str(size), str(SPAN)),
        )
    out = run_json(
        python(
            "-m",
            "bench.client",
            "ranges",
            url,
            "--size",
            str(size),
            "--span",
            str(SPAN),
            "--concurrency",
            str(connections),
            "--count",
            str(plan.range_limit),
            "--seconds",
            str(plan.load_seconds),
        ),
        timeout_s=plan.load_seconds + 60,
    )
    data = json.loads(out)
    return LoadResult(
        data["requests"],
        data["duration_us"] / 1e6,
        0,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["errors"],
    )


def measure(proc: Proc, url: str, size: int, c: int, plan: Plan, scripts: Path) -> dict[str, float]:
    """req/s, p50/p99 ms and CPU µs per request of one server at concurrency `c`, and of the
    load generator (wrk or the bench client)."""
    warm_up = dataclasses.replace(plan, load_seconds=1.0, range_limit=200)
    load_ranges(url, size, c, warm_up, scripts)  # connections, lazy imports, caches
    before, load_before = proc.cpu_seconds(), _children_cpu_s()
    result = load_ranges(url, size, c, plan, scripts)
    cpu = proc.cpu_seconds() - before
    load_cpu = _children_cpu_s() - load_before  # the load process, reaped by now
    if result.errors or not result.requests:
        raise RuntimeError(f"{proc.name}: {result.errors} errors in {result.requests} requests")
    return {
        "rate": result.rate,
        "p50": result.p50_ms,
        "p99": result.p99_ms,
        "cpu_us": cpu / result.requests * 1e6,
        "load_cpu_us": load_cpu / result.requests * 1e6,
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(plan: Plan, stack: Stack) -> Outcome:
    """Measure the service, the floor and nginx at c=1 and c=64."""
    size = stack.local().seeded["big"].size
    servers = stack.big_object_servers()
    outcome = Outcome()
    if "nginx" not in servers:
        outcome.notes.append("nginx not installed: ranges and full GET have no nginx baseline")
    for c in CONCURRENCY:
        figures = {
            name: measure(proc, url, size, c, plan, stack.tmp)
            for name, (proc, url) in servers.items()
        }
        outcome.rows.extend(_rows(c, figures))
    return outcome


def _rows(c: int, figures: dict[str, dict[str, float]]) -> list[Row]:
    svc = figures["service"]
    others = {name: value for name, value in figures.items() if name != "service"}
    scenario = f"1 ranges 64KiB c={c}"
    rate_met = svc["rate"] >= TARGET_RATIO * others["floor"]["rate"] if c == 64 else None
    cpu_met = svc["cpu_us"] <= TARGET_CPU_RATIO * others["floor"]["cpu_us"] if c == 64 else None
    return [
        Row(
            scenario,
            "throughput",
            "req/s",
            svc["rate"],
            {n: v["rate"] for n, v in others.items()},
            f">= {TARGET_RATIO}x floor" if c == 64 else "",
            rate_met,
        ),
        Row(scenario, "latency p50", "ms", svc["p50"], {n: v["p50"] for n, v in others.items()}),
        Row(scenario, "latency p99", "ms", svc["p99"], {n: v["p99"] for n, v in others.items()}),
        Row(
            scenario,
            "server CPU per request",
            "us",
            svc["cpu_us"],
            {n: v["cpu_us"] for n, v in others.items()},
            f"<= {TARGET_CPU_RATIO:g}x floor" if c == 64 else "",
            cpu_met,
        ),
    ]
