"""Scenario 6: encryption at rest against plaintext, same object size, same run.

64 KiB ranges at c=64 (server CPU per request) and full GETs (MB/s) of the service on local storage
with and without MEDIA_ENCRYPTION_KEYS."""

from __future__ import annotations

from bench.report import Row
from bench.scenarios import Outcome, Plan, fullget, ranges
from bench.stack import Stack

CONCURRENCY = 64
MAX_CPU_RATIO = 1.25
MIN_THROUGHPUT_RATIO = 0.8
ROUNDS = 3


def _best(
    kept: dict[str, float] | None, new: dict[str, float], metric: str, *, lower: bool
) -> dict[str, float]:
    if kept is None:
        return new
    better = new[metric] < kept[metric] if lower else new[metric] > kept[metric]
    return new if better else kept


def run(plan: Plan, stack: Stack) -> Outcome:
    """Ranges and full GETs of the plaintext and the encrypted service."""
    plain, sealed = stack.local(), stack.encrypted()
    targets = {
        "plaintext": (plain.proc, plain.url + plain.seeded["big"].stream_path),
        "encrypted": (sealed.proc, sealed.url + sealed.seeded["big"].stream_path),
    }
    size = plain.seeded["big"].size
    range_figures: dict[str, dict[str, float]] = {}
    full_figures: dict[str, dict[str, float]] = {}
    # Alternating rounds, best of each: load from other processes on this shared VM moves single
    # figures by tens of percent, and it hits whichever server happens to run at the time.
    for _ in range(ROUNDS):
        for name, (proc, url) in targets.items():
            figures = ranges.measure(proc, url, size, CONCURRENCY, plan, stack.tmp)
            range_figures[name] = _best(range_figures.get(name), figures, "cpu_us", lower=True)
        for name, (proc, url) in targets.items():
            figures = fullget.measure(proc, url, plan)
            full_figures[name] = _best(full_figures.get(name), figures, "mbps", lower=False)
    enc_cpu, plain_cpu = range_figures["encrypted"]["cpu_us"], range_figures["plaintext"]["cpu_us"]
    enc_rate, plain_rate = full_figures["encrypted"]["mbps"], full_figures["plaintext"]["mbps"]
    scenario = "6 encrypted at rest"
    outcome = Outcome()
    outcome.rows.append(
        Row(
            f"{scenario}, ranges 64KiB c={CONCURRENCY}",
            "server CPU per request",
            "us",
            enc_cpu,
            {"plaintext": plain_cpu},
            f"<= {MAX_CPU_RATIO}x plaintext",
            enc_cpu <= MAX_CPU_RATIO * plain_cpu,
        )
    )
    outcome.rows.append(
        Row(
            f"{scenario}, ranges 64KiB c={CONCURRENCY}",
            "throughput",
            "req/s",
            range_figures["encrypted"]["rate"],
            {"plaintext": range_figures["plaintext"]["rate"]},
        )
    )
    outcome.rows.append(
        Row(
            f"{scenario}, full GET {size // (1024 * 1024)} MiB",
            "throughput",
            "MB/s",
            enc_rate,
            {"plaintext": plain_rate},
            f">= {MIN_THROUGHPUT_RATIO}x plaintext",
            enc_rate >= MIN_THROUGHPUT_RATIO * plain_rate,
        )
    )
    outcome.rows.append(
        Row(
            f"{scenario}, full GET {size // (1024 * 1024)} MiB",
            "server CPU per GB",
            "s/GB",
            full_figures["encrypted"]["cpu_per_gb"],
            {"plaintext": full_figures["plaintext"]["cpu_per_gb"]},
        )
    )
    return outcome
