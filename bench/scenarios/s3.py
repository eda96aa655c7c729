"""Scenario 3: full GET and time to first byte via the service vs boto3, on the same moto.

The second baseline is the relay floor (bench/relay_floor.py): a bare ASGI app under uvicorn
that relays the same object with nothing but the reads and sends any relay makes, so the table
tells the service's own cost apart from what relaying through an ASGI server costs at all.
"""

from __future__ import annotations

import json
from typing import Any

from bench.procs import python, run_json
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.scenarios.fullget import fetch
from bench.stack import BUCKET, Stack

TTFB_SLACK_MS = 10.0
TARGET_RATIO = 0.9


def direct(endpoint: str, key: str, plan: Plan) -> dict[str, Any]:
    """boto3 GetObject of the same object, in the bench client process."""
    argv = python(
        "-m",
        "bench.client",
        "s3get",
        "--endpoint",
        endpoint,
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--count",
        str(plan.s3_gets),
        "--seconds",
        str(plan.load_seconds * 10),
    )
    result: dict[str, Any] = json.loads(run_json(argv, timeout_s=plan.load_seconds * 10 + 60))
    return result


def run(plan: Plan, stack: Stack) -> Outcome:
    """Alternate service, relay floor and direct runs, so moto's state affects all alike."""
    service, endpoint = stack.s3()
    _relay, relay_url = stack.relay_floor()
    seeded = service.seeded["object"]
    url = service.url + seeded.stream_path
    for warm_up in (url, relay_url):  # boto3 clients, connection pools
        fetch(warm_up, count=1, seconds=30)
    direct(endpoint, seeded.storage_key, plan)
    via = fetch(url, count=plan.s3_gets, seconds=plan.load_seconds * 10)
    relayed = fetch(relay_url, count=plan.s3_gets, seconds=plan.load_seconds * 10)
    straight = direct(endpoint, seeded.storage_key, plan)
    scenario = f"3 S3 full GET {seeded.size // (1024 * 1024)} MiB"
    via_mbps = via["bytes"] / 1e6 / via["seconds"]
    direct_mbps = straight["bytes"] / 1e6 / straight["seconds"]
    relay_mbps = relayed["bytes"] / 1e6 / relayed["seconds"]
    outcome = Outcome()
    outcome.rows.append(
        Row(
            scenario,
            "TTFB median",
            "ms",
            via["ttfb_ms_median"],
            {"boto3": straight["ttfb_ms_median"], "relay floor": relayed["ttfb_ms_median"]},
            "<= direct + 10 ms",
            via["ttfb_ms_median"] <= straight["ttfb_ms_median"] + TTFB_SLACK_MS,
        )
    )
    outcome.rows.append(
        Row(
            scenario,
            "throughput",
            "MB/s",
            via_mbps,
            {"boto3": direct_mbps, "relay floor": relay_mbps},
            ">= 0.9x direct",
            via_mbps >= TARGET_RATIO * direct_mbps,
        )
    )
    outcome.notes.append(
        "moto builds the whole object in memory for every GET, ranged or not, so range rates"
        " against it are not meaningful; only full GETs and TTFB are compared"
    )
    return outcome
