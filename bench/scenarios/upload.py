"""Scenario 6: a multipart upload (16 MiB parts, 4 in parallel) through the service, on local
storage and on moto, against writing the same bytes straight (a file, or boto3 to moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from bench.procs import python, run_json
from bench.report import Row
from bench.scenarios import MIB, Outcome, Plan
from bench.scenarios.memory import _peak_over_idle
from bench.stack import BUCKET, Service, Stack
from server.lifecycle import dev_issuer

PART = 16 * MIB
PARALLEL = 4
TARGET_RATIO = 0.5
RSS_LIMIT_MIB = 64.0


def upload_file(folder: Path, size: int) -> Path:
    """A small valid PNG padded with zeros to `size` bytes: any size, quick to process."""
    path = folder / f"upload-{size // MIB}m.png"
    Image.new("RGB", (64, 48), (20, 120, 200)).save(path, format="PNG")
    with path.open("ab") as handle:
        handle.truncate(size)
    return path


def _uploader(mode: str, file: Path, plan: Plan, *extra: str) -> dict[str, Any]:
    argv = python(
        "-m",
        "bench.uploader",
        mode,
        "--file",
        str(file),
        "--part-size",
        str(PART),
        "--parallel",
        str(PARALLEL),
        "--seconds",
        str(plan.upload_seconds),
        *extra,
    )
    result: dict[str, Any] = json.loads(run_json(argv, timeout_s=plan.upload_seconds))
    return result


def _through_service(service: Service, file: Path, plan: Plan) -> tuple[dict[str, Any], float]:
    """Upload `file` in parts; the result and the service's peak RSS over idle (MiB)."""
    token = dev_issuer(service.settings, service.url).mint(
        "bench-uploader", ["user"], audience=service.settings.oidc_audience
    )
    idle = service.proc.memory_kib()["VmRSS"]
    result: dict[str, Any] = {}

    def load() -> None:
        result.update(_uploader("service", file, plan, "--server", service.url, "--token", token))

    peak = _peak_over_idle(service.proc, idle, load)
    if result["status"] != "SUCCESS":
        raise RuntimeError(f"upload ended {result['status']}: {result['failure']}")
    return result, peak


def _rows(label: str, via: dict[str, Any], base: str, straight: dict[str, Any]) -> list[Row]:
    size_mib = via["bytes"] // MIB
    scenario = f"6 upload {size_mib} MiB, {label}"
    mbps = via["bytes"] / 1e6 / via["seconds"]
    base_mbps = straight["bytes"] / 1e6 / straight["seconds"]
    return [
        Row(
            scenario,
            f"parts {PART // MIB} MiB x{PARALLEL}",
            "MB/s",
            mbps,
            {base: base_mbps},
            f">= {TARGET_RATIO}x {base}",
            mbps >= TARGET_RATIO * base_mbps,
        ),
        Row(scenario, "completeUpload (assemble, hash, process)", "s", via["complete_seconds"]),
    ]


def run(plan: Plan, stack: Stack) -> Outcome:
    """Local storage first (with a quarter-size run for the RSS comparison), then moto."""
    outcome = Outcome()
    folder = stack.tmp / "uploads"
    folder.mkdir(exist_ok=True)
    file = upload_file(folder, plan.upload_bytes)
    small = upload_file(folder, plan.upload_bytes // 4)

    local = stack.local()
    target = local.settings.data_dir / "straight-write.bin"
    _through_service(local, small, plan)  # warm-up, and the quarter-size peak
    small_via, small_peak = _through_service(local, small, plan)
    via, peak = _through_service(local, file, plan)
    straight = _uploader("file", file, plan, "--target", str(target))
    outcome.rows += _rows("local", via, "file write", straight)
    outcome.rows.append(_rss_row("local", peak, small_via["bytes"], small_peak))

    service, endpoint = stack.s3()
    s3_args = ("--endpoint", endpoint, "--bucket", BUCKET)
    straight = _uploader("boto3", file, plan, *s3_args)
    alike = _uploader("boto3", file, plan, *s3_args, "--like-service")
    via, peak = _through_service(service, file, plan)
    rows = _rows("moto", via, "boto3", straight)
    rows[0].baselines["boto3 like service"] = alike["bytes"] / 1e6 / alike["seconds"]
    outcome.rows += rows
    outcome.rows.append(_rss_row("moto", peak))
    outcome.notes.append(
        "upload: parts MB/s counts the part PUTs only; completeUpload re-reads the assembled "
        "object once for its SHA-256, and on S3 processing downloads it again. boto3 (its "
        "defaults) hashes every part for SigV4 over http and adds CRC32 checksums; 'boto3 like "
        "service' uses the service's client settings (neither)"
    )
    return outcome


def _rss_row(label: str, peak: float, small_bytes: int = 0, small_peak: float = 0.0) -> Row:
    baselines = {f"{small_bytes // MIB} MiB upload": small_peak} if small_bytes else {}
    return Row(
        f"6 upload, {label}",
        "service peak RSS over idle",
        "MiB",
        peak,
        baselines,
        f"<= {RSS_LIMIT_MIB:g} MiB",
        peak <= RSS_LIMIT_MIB,
    )
