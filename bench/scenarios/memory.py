"""Scenario 4: server RSS over idle for one big stream, a slow reader and 16 concurrent GETs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.procs import Proc, rss_sampler
from bench.report import Row
from bench.scenarios import MIB, Outcome, Plan
from bench.scenarios.fullget import fetch
from bench.stack import Stack

SLOW_RATE = 25e6  # bytes/s
CONCURRENT = 16
ONE_STREAM_LIMIT_MIB = 8.0
CONCURRENT_LIMIT_MIB = 64.0
SETTLE_S = 1.0


def _peak_over_idle(proc: Proc, idle_kib: int, load: Callable[[], Any]) -> float:
    """Peak RSS (VmHWM and sampled VmRSS) above `idle_kib` while `load` runs, in MiB."""
    proc.reset_peak()
    with rss_sampler(proc) as samples:
        load()
    peak = max([proc.memory_kib()["VmHWM"], *samples])
    return (peak - idle_kib) / 1024


def run(plan: Plan, stack: Stack) -> Outcome:
    """Measure the three loads on the local-storage service, then RSS back at idle."""
    service = stack.local()
    proc, big = service.proc, service.seeded["big"]
    url = service.url + big.stream_path
    fetch(url, count=1, seconds=10, max_bytes=16 * MIB)  # warm-up: first-request allocations
    idle = proc.memory_kib()["VmRSS"]
    size_mib = big.size // MIB
    one = _peak_over_idle(proc, idle, lambda: fetch(url, count=1, seconds=60))
    slow = _peak_over_idle(
        proc, idle, lambda: fetch(url, count=1, seconds=plan.slow_seconds, rate=SLOW_RATE)
    )
    many = _peak_over_idle(
        proc,
        idle,
        lambda: fetch(
            url, count=CONCURRENT, concurrency=CONCURRENT, seconds=plan.concurrent_seconds
        ),
    )
    time.sleep(SETTLE_S)  # let the server finish closing the aborted streams
    after = (proc.memory_kib()["VmRSS"] - idle) / 1024
    scenario = "4 memory over idle"
    return Outcome(
        rows=[
            Row(
                scenario,
                f"one {size_mib} MiB stream",
                "MiB",
                one,
                {},
                "<= 8 MiB",
                one <= ONE_STREAM_LIMIT_MIB,
            ),
            Row(
                scenario,
                f"slow reader 25 MB/s for {plan.slow_seconds:g} s",
                "MiB",
                slow,
                {},
                "<= 8 MiB",
                slow <= ONE_STREAM_LIMIT_MIB,
            ),
            Row(
                scenario,
                f"{CONCURRENT} concurrent full GETs",
                "MiB",
                many,
                {},
                "<= 64 MiB",
                many <= CONCURRENT_LIMIT_MIB,
            ),
            Row(scenario, "RSS after, back at idle", "MiB", after),
        ],
        notes=[f"idle RSS of the service: {idle / 1024:.1f} MiB"],
    )
