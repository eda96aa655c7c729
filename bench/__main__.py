"""`python -m bench [--quick] [--scenario NAME] [--profile]`: figures with same-run baselines."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench.procs import Processes
from bench.report import Row, render
from bench.scenarios import (
    Outcome,
    Plan,
    decode,
    encryption,
    fullget,
    graphql,
    hls,
    inproc,
    jobs,
    memory,
    processing,
    ranges,
    s3,
    telemetry,
    upload,
    workers,
)
from bench.stack import Stack

SCENARIOS: dict[str, Callable[[Plan, Stack], Outcome]] = {
    "inproc": inproc.run,
    "ranges": ranges.run,
    "fullget": fullget.run,
    "s3": s3.run,
    "memory": memory.run,
    "graphql": graphql.run,
    "telemetry": telemetry.run,
    "encryption": encryption.run,
    "jobs": jobs.run,
    "upload": upload.run,
    "decode": decode.run,
    "processing": processing.run,
    "workers": workers.run,
    "hls": hls.run,
}
LISTING = 100


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the byte path with cProfile instead"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_scenarios(plan: Plan, stack: Stack, names: list[str]) -> tuple[list[Row], list[str], bool]:
    """Run each scenario; a failing one is reported and the rest still run."""
    rows: list[Row] = []
    notes: list[str] = []
    ok = True
    for name in names:
        started = time.monotonic()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        try:
            outcome = SCENARIOS[name](plan, stack)
        except Exception as exc:  # one broken scenario must not hide the others' figures
            traceback.print_exc()
            notes.append(f"{name}: FAILED: {exc}")
            ok = False
            continue
        rows.extend(outcome.rows)
        notes.extend(outcome.notes)
        print(f"   {name} took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, notes, ok


def main() -> int:
    """Start what is needed, run, print the table, and clean up whatever happens."""
    args = _parser().parse_args()
    plan = Plan.make(args.quick)
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="media-bench-"))
    (tmp / "logs").mkdir()
    procs = Processes(tmp / "logs")
    stack = Stack(procs, tmp, plan.big_bytes, plan.s3_bytes, LISTING if not plan.quick else 20)
    started = time.monotonic()
    try:
        if args.profile:
            from bench.profile_run import profile

            print(profile(plan, procs, tmp))
            return 0
        rows, notes, ok = run_scenarios(plan, stack, args.scenario or list(SCENARIOS))
        kind = "quick" if plan.quick else "full"
        print(f"\nmedia-service bench ({kind} run, {time.monotonic() - started:.0f} s)\n")
        print(render(rows, notes))
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        procs.close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
