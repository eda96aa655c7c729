"""Scenario 7: peak RSS while decoding a PNG just under the 40-megapixel cap, against the old
pipeline measured in the same run (each in its own fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack

SIZE = (8000, 4999)  # 39.99 megapixels: just under media.processing.probe.MAX_PIXELS
CONCURRENT = 4
TIMEOUT_S = 300.0
ONE_LIMIT_MIB = 200.0  # the RGBA decode itself is 153 MiB
BUDGET_MIB = 512.0  # MEDIA_PROCESSING_MEMORY_MB default
AFTER_LIMIT_MIB = 32.0


def _png(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "under-the-cap.png"
    Image.new("RGBA", SIZE, (0, 0, 0, 0)).save(path, format="PNG", optimize=True)
    return path


def _measure(pipeline: str, png: Path, count: int) -> dict[str, float]:
    """Peak and after, in MiB over the fresh process's idle RSS."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.decode", pipeline, str(png), str(count)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    idle = figures["idle_kib"]
    return {
        "peak": (figures["peak_kib"] - idle) / 1024,
        "after": (figures["after_kib"] - idle) / 1024,
    }


def run(plan: Plan, stack: Stack) -> Outcome:
    """One decode and four at once, for the service's pipeline and the old one."""
    png = _png(stack.tmp / "decode")
    scenario = "7 image decode"
    rows: list[Row] = []
    for count in (1, CONCURRENT):
        service = _measure("service", png, count)
        base = _measure("baseline", png, count)
        label = "one decode" if count == 1 else f"{count} at once"
        limit = ONE_LIMIT_MIB if count == 1 else BUDGET_MIB
        rows.append(
            Row(
                scenario,
                f"peak RSS over idle, {label} [{png.stat().st_size // 1024} KB PNG]",
                "MiB",
                service["peak"],
                {"old pipeline": base["peak"]},
                f"<= {limit:g} MiB",
                service["peak"] <= limit,
            )
        )
        rows.append(
            Row(
                scenario,
                f"RSS held after, {label}",
                "MiB",
                service["after"],
                {"old pipeline": base["after"]},
                f"<= {AFTER_LIMIT_MIB:g} MiB",
                service["after"] <= AFTER_LIMIT_MIB,
            )
        )
    notes = [
        f"decode: {SIZE[0]}x{SIZE[1]} RGBA PNG; probe + thumbnail per decode; the service's "
        f"budget (MEDIA_PROCESSING_MEMORY_MB) is its default {BUDGET_MIB:g} MiB"
    ]
    return Outcome(rows=rows, notes=notes)
