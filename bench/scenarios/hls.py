"""Scenario 9: the HLS ladder of a 1080p video: what it costs to make, store and serve.

- Processing: the 3-rung ladder (360p, 720p, 1080p from one decode) of a 1080p H.264/AAC clip in
  a fresh child process, as a worker would make it, against decoding every frame of the same
  file (the least any ladder must do), per second of video.
- Storage: the bytes of every ladder file against the source's.
- Serving: CPU per request of the `/hls` route (a whole media segment, and a 64 KiB range of
  one) against 64 KiB ranges of `/media` in the same app, called in-process as in scenario 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from bench.procs import child_json
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.scenarios.inproc import cpu_us, lifespan, request_scope
from bench.scenarios.processing import SIZE, make_clip
from bench.stack import Stack
from media.config import Settings, load_settings
from media.db import migrate, open_database
from media.models import (
    OPEN_UPLOAD_STATES,
    HlsFile,
    NewMedia,
    Owner,
    ProbeResult,
    Purpose,
    UploadState,
)
from media.processing.probe import probe
from media.repository import Repository
from media.signing import UrlSigner
from media.storage import open_storage
from media.storage.files import store_file

LADDER = (360, 720, 1080)
SPAN = 64 * 1024
ROUNDS = 3
CHILD_TIMEOUT_S = 900.0
# Run by the child: the ladder (or the decode), then wall time, CPU time, peak RSS, bytes made.
CHILD = """
import json, resource, sys, time
from pathlib import Path
import av
from media.processing.ladder import make_ladder, plan_rungs
from media.processing.probe import probe
kind, path, work = sys.argv[1:4]
start = time.monotonic()  # after the imports: what a running worker pays per job
made = 0
if kind == "ladder":
    result = probe(Path(path), "video/mp4")
    rungs = plan_rungs(result, (360, 720, 1080))
    assert len(rungs) == 3, rungs
    files = make_ladder(Path(path), result, rungs, Path(work))
    made = sum(file.path.stat().st_size for file in files)
    listing = [[f.name, str(f.path), f.content_type] for f in files]
else:
    listing = []
    with av.open(path) as container:
        for _ in container.decode(video=0):
            pass
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
print(json.dumps({"wall": time.monotonic() - start, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_mib": peak / 1024, "bytes": made, "files": listing}))
"""


def _child(kind: str, path: Path, work: Path) -> dict[str, Any]:
    return child_json(CHILD, kind, str(path), str(work), timeout_s=CHILD_TIMEOUT_S)


def run(plan: Plan, stack: Stack) -> Outcome:
    """Make the clip and its ladder in a child, then serve both from an in-process app."""
    seconds = 10.0 if plan.quick else 12.0  # under 10 s a video gets one rung
    folder = stack.tmp / "hls"
    folder.mkdir(exist_ok=True)
    clip = make_clip(folder / "clip.mp4", "libx264", seconds)
    ladder = _child("ladder", clip, folder / "ladder")
    floor = _child("decode", clip, folder / "decode")
    scenario = "9 hls ladder 1080p (3 rungs)"
    rows = [
        Row(
            scenario,
            "wall seconds per video second",
            "s/s",
            ladder["wall"] / seconds,
            {"decode": floor["wall"] / seconds},
        ),
        Row(
            scenario,
            "CPU seconds per video second",
            "s/s",
            ladder["cpu"] / seconds,
            {"decode": floor["cpu"] / seconds},
        ),
        Row(
            scenario,
            "peak RSS of the process",
            "MiB",
            ladder["rss_mib"],
            {"decode": floor["rss_mib"]},
        ),
        Row(
            scenario,
            "stored bytes",
            "MiB",
            ladder["bytes"] / 2**20,
            {"source": clip.stat().st_size / 2**20},
        ),
    ]
    calls = 300 if plan.quick else 2000
    served, segment_bytes = _serving(folder / "serve", clip, ladder["files"], calls)
    ranges = {"media 64KiB range": served["media 64KiB range"]}
    scenario = "9 hls serving in-process"
    rows += [
        Row(scenario, "CPU per whole 1080p segment", "us", served["hls segment"], ranges),
        Row(scenario, "CPU per 64KiB range of a segment", "us", served["hls 64KiB range"], ranges),
    ]
    notes = [
        f"hls: a {seconds:g} s {SIZE[0]}x{SIZE[1]} clip at 30 fps with AAC; ladder 360p/720p/1080p,"
        " libx264 CRF 23 veryfast capped, in a fresh process; serving called in-process"
        f" (no uvicorn), best of three rounds; the 1080p segment served is {segment_bytes:,} bytes"
    ]
    return Outcome(rows=rows, notes=notes)


def _serving(
    folder: Path, clip: Path, files: list[list[str]], calls: int
) -> tuple[dict[str, float], int]:
    """CPU per request (/hls segments and ranges, /media ranges: one app, one process), and the
    size of the segment served."""
    settings = load_settings(
        {
            "MEDIA_DATA_DIR": str(folder),
            "MEDIA_SIGNING_KEYS": secrets.token_hex(32),
            "MEDIA_LOG_LEVEL": "WARNING",
            "MEDIA_ENV": "development",
            "MEDIA_HLS": "false",
        }
    )
    probed = probe(clip, "video/mp4")
    clip_size = clip.stat().st_size
    hls_path, media_path, segment, segment_size = anyio.run(
        _seed, settings, clip, (clip_size, probed), files
    )
    from server.app import create_app

    app = create_app(settings)
    logging.getLogger("media.request").setLevel(logging.WARNING)
    requests: dict[str, Callable[[random.Random], dict[str, Any]]] = {
        "hls segment": lambda rng: request_scope(f"{hls_path}/{segment}", []),
        "hls 64KiB range": lambda rng: request_scope(
            f"{hls_path}/{segment}", [_range(rng, segment_size)]
        ),
        "media 64KiB range": lambda rng: request_scope(media_path, [_range(rng, clip_size)]),
    }
    return asyncio.run(_measure(app, requests, calls)), segment_size


def _range(rng: random.Random, size: int) -> tuple[bytes, bytes]:
    start = rng.randrange(0, max(1, size - SPAN))
    return b"range", f"bytes={start}-{start + SPAN - 1}".encode()


async def _measure(
    app: Any, requests: dict[str, Callable[[random.Random], dict[str, Any]]], calls: int
) -> dict[str, float]:
    async with lifespan(app):
        best = {name: float("inf") for name in requests}
        for _ in range(ROUNDS):  # interleaved, so a burst of other load hits all alike
            for name, make in requests.items():
                best[name] = min(best[name], await _cpu_us(app, make, calls))
        return best


async def _cpu_us(app: Any, make: Callable[[random.Random], dict[str, Any]], calls: int) -> float:
    per_call, statuses = await cpu_us(app, make, calls, warm_up=min(100, calls))
    if not statuses <= {200, 206}:
        raise RuntimeError(f"answered {sorted(statuses)}")
    return per_call


async def _seed(
    settings: Settings, clip: Path, facts: tuple[int, ProbeResult], files: list[list[str]]
) -> tuple[str, str, str, int]:
    """The clip as a processed media with its ladder stored; (hls path, media path, a 1080p
    segment's name, its size)."""
    await migrate(settings)
    database = await open_database(settings)
    repo = Repository(database)
    storage = await open_storage(settings, repo)
    try:
        media_type = await repo.media_type("video/mp4")
        assert media_type is not None
        now = datetime.now(UTC)
        new = NewMedia(
            name="clip.mp4",
            media_type=media_type,
            size_bytes=facts[0],
            original_file_name="clip.mp4",
            media_date=None,
            storage_key=uuid.uuid4().hex,
            upload_id=uuid.uuid4(),
            upload_expires_at=now + timedelta(hours=1),
        )
        owner = Owner(subject="bench", issuer="bench")
        media, upload = await repo.create_media(owner, new)
        info = await store_file(storage, media.storage_key, clip, content_type="video/mp4")
        stored = []
        for name, path, content_type in files:
            key = uuid.uuid4().hex
            done = await store_file(storage, key, Path(path), content_type=content_type)
            stored.append(HlsFile(name, key, content_type, done.size, done.etag))
        media = await repo.mark_success(
            media.id,
            probe=facts[1],
            size_bytes=info.size,
            sha256=info.sha256 or "",
            etag=info.etag,
            storage_key=media.storage_key,
            thumbnail=None,
            hls=tuple(stored),
        )
        await repo.transition_upload(upload.id, OPEN_UPLOAD_STATES, UploadState.DONE)
        signer = UrlSigner(settings.signing_keys)
        tokens = {
            purpose: signer.sign(
                purpose,
                media_id=media.id,
                subject=owner.subject,
                generation=media.url_generation,
                ttl_s=3600,
            )[0]
            for purpose in (Purpose.HLS, Purpose.STREAM)
        }
        segment = next(f for f in stored if f.name == "1080p/seg_00002.m4s")
        return (
            f"/hls/{tokens[Purpose.HLS]}",
            f"/media/{tokens[Purpose.STREAM]}",
            segment.name,
            segment.size_bytes,
        )
    finally:
        await storage.close()
        await database.close()
