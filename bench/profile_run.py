"""`--profile`: the service under cProfile while range and full-GET loads run, then a summary."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from bench.procs import Processes
from bench.profiled import summary
from bench.scenarios import Plan
from bench.scenarios.fullget import fetch
from bench.scenarios.ranges import load_ranges
from bench.stack import start_service


def profile(plan: Plan, procs: Processes, tmp: Path) -> str:
    """Profile 64 KiB ranges at c=64, then full GETs; returns the pstats summaries."""
    out: list[str] = []
    for load in ("ranges", "fullget"):
        stats = tmp / f"{load}.pstats"
        service = start_service(
            procs, tmp / f"profile-{load}", {"big": plan.big_bytes}, profile_to=stats
        )
        seeded = service.seeded["big"]
        url = service.url + seeded.stream_path
        os.kill(service.proc.pid, signal.SIGUSR1)  # profile from here on, start-up excluded
        if load == "ranges":
            result = load_ranges(url, seeded.size, 64, plan, tmp)
            out.append(f"### 64 KiB ranges, c=64: {result.requests} requests")
        else:
            got = fetch(url, count=plan.full_gets, seconds=plan.load_seconds * 5)
            out.append(f"### full GETs: {got['requests']} x {seeded.size} bytes")
        procs.started.remove(service.proc)
        service.proc.stop()  # SIGTERM: uvicorn returns, the wrapper writes the stats
        out.append(summary(stats))
    return "\n".join(out)
