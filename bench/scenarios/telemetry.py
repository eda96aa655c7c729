"""Scenario 6: what metrics and tracing cost on the range path (64 KiB ranges, c=64).

Three copies of the service serve the same seeded object, one per configuration: metrics off
(the baseline: no telemetry middleware, no storage wrapper, no /metrics), metrics on (the
default), and metrics plus tracing (console exporter into the process log, every span sampled).
The configurations are measured in turns, several rounds, and the median of each is reported, so
drift of this shared machine hits all three alike.
"""

from __future__ import annotations

import statistics

from bench.report import Row
from bench.scenarios import MIB, Outcome, Plan
from bench.scenarios.ranges import measure
from bench.stack import Service, Stack, start_service

CONCURRENCY = 64
ROUNDS = 3
TARGET_RATIO = 1.10  # metrics on may cost at most 10% more CPU per request than off
CONFIGS = {
    "metrics off": {"MEDIA_METRICS": "false"},
    "metrics on": {},
    "metrics+tracing": {"OTEL_TRACES_EXPORTER": "console"},
}


def run(plan: Plan, stack: Stack) -> Outcome:
    """Median CPU per request and rate of each configuration, same run, interleaved."""
    size = min(plan.big_bytes, 64 * MIB)
    services = {
        label: start_service(
            stack.procs,
            stack.tmp / f"telemetry-{index}",
            {"big": size},
            extra_env=env,
            name=f"service-telemetry-{index}",
        )
        for index, (label, env) in enumerate(CONFIGS.items())
    }
    figures: dict[str, list[dict[str, float]]] = {label: [] for label in services}
    for _ in range(1 if plan.quick else ROUNDS):
        for label, service in services.items():
            figures[label].append(_measure(service, size, plan, stack))
    medians = {
        label: {key: statistics.median(f[key] for f in runs) for key in runs[0]}
        for label, runs in figures.items()
    }
    return Outcome(rows=_rows(medians), notes=_notes(figures))


def _measure(service: Service, size: int, plan: Plan, stack: Stack) -> dict[str, float]:
    url = service.url + service.seeded["big"].stream_path
    return measure(service.proc, url, size, CONCURRENCY, plan, stack.tmp)


def _rows(medians: dict[str, dict[str, float]]) -> list[Row]:
    off, on, traced = (medians[label] for label in CONFIGS)
    scenario = f"6 telemetry ranges c={CONCURRENCY}"
    return [
        Row(
            scenario,
            "CPU/request, metrics on",
            "us",
            on["cpu_us"],
            {"metrics off": off["cpu_us"]},
            f"<= {TARGET_RATIO:.2f}x off",
            on["cpu_us"] <= TARGET_RATIO * off["cpu_us"],
        ),
        Row(scenario, "throughput, metrics on", "req/s", on["rate"], {"metrics off": off["rate"]}),
        Row(
            scenario,
            "CPU/request, metrics+tracing",
            "us",
            traced["cpu_us"],
            {"metrics off": off["cpu_us"]},
        ),
        Row(
            scenario,
            "throughput, metrics+tracing",
            "req/s",
            traced["rate"],
            {"metrics off": off["rate"]},
        ),
    ]


def _notes(figures: dict[str, list[dict[str, float]]]) -> list[str]:
    spread = "; ".join(
        f"{label} " + "/".join(f"{f['cpu_us']:.0f}" for f in runs)
        for label, runs in figures.items()
    )
    return [
        f"telemetry: CPU us/request per round: {spread}",
        "telemetry: tracing exports every span (console exporter into the process log, "
        "default sampler), the costliest setting",
    ]
