"""Scenario 2: full GETs of the big object: MB/s and server CPU per GB, against floor and nginx."""

from __future__ import annotations

import json
from typing import Any

from bench.procs import Proc, python, run_json
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack, start_variant

TARGET_CPU_RATIO = 1.1  # x the pread floor's CPU per GB


def fetch(
    url: str,
    *,
    count: int,
    seconds: float,
    concurrency: int = 1,
    rate: float = 0,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Run the bench client's full-GET mode in its own process; returns its JSON result."""
    argv = python(
        "-m",
        "bench.client",
        "get",
        url,
        "--count",
        str(count),
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        "--rate",
        str(rate),
    )
    if max_bytes is not None:
        argv += ["--max-bytes", str(max_bytes)]
    result: dict[str, Any] = json.loads(run_json(argv, timeout_s=seconds + 60))
    if not result["requests"] or any(status >= 300 for status in result["statuses"]):
        raise RuntimeError(f"full GET of {url.split('/media/')[0]} failed: {result}")
    return result


def measure(proc: Proc, url: str, plan: Plan) -> dict[str, float]:
    """MB/s and CPU seconds per GB of one server."""
    fetch(url, count=1, seconds=10, max_bytes=8 * 1024 * 1024)  # warm-up
    before = proc.cpu_seconds()
    result = fetch(url, count=plan.full_gets, seconds=plan.load_seconds * 5)
    cpu = proc.cpu_seconds() - before
    gigabytes = result["bytes"] / 1e9
    return {"mbps": result["bytes"] / 1e6 / result["seconds"], "cpu_per_gb": cpu / gigabytes}


def run(plan: Plan, stack: Stack) -> Outcome:
    """Measure full GETs of the service, the floors and nginx."""
    service = stack.local()
    servers = stack.big_object_servers()
    # The same service with the old 256 KiB chunks: four sends (and reads) per MiB instead of one.
    servers["service-256KiB"] = start_variant(
        stack.procs, service, "service-256KiB", {"MEDIA_STREAM_CHUNK_BYTES": str(256 * 1024)}
    )
    for pathsend in (False, True):
        granian = stack.granian(pathsend=pathsend)
        if granian is not None:
            servers["granian-pathsend" if pathsend else "granian"] = granian
    figures = {name: measure(proc, url, plan) for name, (proc, url) in servers.items()}
    svc = figures.pop("service")
    size_mib = service.seeded["big"].size // (1024 * 1024)
    scenario = f"2 full GET {size_mib} MiB"
    met = svc["cpu_per_gb"] <= TARGET_CPU_RATIO * figures["floor"]["cpu_per_gb"]
    outcome = Outcome()
    outcome.rows.append(
        Row(scenario, "throughput", "MB/s", svc["mbps"], {n: v["mbps"] for n, v in figures.items()})
    )
    outcome.rows.append(
        Row(
            scenario,
            "server CPU per GB",
            "s/GB",
            svc["cpu_per_gb"],
            {n: v["cpu_per_gb"] for n, v in figures.items()},
            f"<= {TARGET_CPU_RATIO}x floor",
            met,
        )
    )
    outcome.notes.append(
        "nginx serves full GETs with sendfile(2): the bytes never enter user space"
    )
    outcome.notes.append(
        "granian: the pread floor under granian; granian-pathsend: the same app handing full"
        " GETs to granian with http.response.pathsend (what the service's pathsend path would get)"
    )
    return outcome
