"""Scenario 6: processing seconds per second of 1080p video, and the peak RSS of the process.

Each measurement runs in a fresh child process, as a worker would: `media.processing.process` on
a 1080p H.264/AAC MP4 with its moov at the end (a stream copy to a faststart MP4) and on a 1080p
HEVC MP4 (a libx264 transcode). The same-run baseline is decoding every frame of the same file
with PyAV in a fresh child too: the least any transcode must do, and what a copy avoids.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

from bench.procs import child_json
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack

SIZE = (1920, 1080)
FPS = 30
PATTERNS = 12  # distinct pictures cycled through, so the encoder sees motion
CHILD_TIMEOUT_S = 600.0
# Run by the child: the job, then its own wall time, CPU time and peak RSS (VmHWM).
CHILD = """
import json, resource, sys, time
from pathlib import Path
import av
from media.processing import process
kind, path, declared, work = sys.argv[1:5]
start = time.monotonic()  # after the imports: what a running worker pays per job
if kind == "process":
    process(Path(path), declared, Path(work))
else:
    with av.open(path) as container:
        for _ in container.decode(video=0):
            pass
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM: the peak of this process image (ru_maxrss would include the forking parent's).
peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
print(json.dumps({"wall": time.monotonic() - start, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_mib": peak / 1024}))
"""


def _pictures() -> list[av.VideoFrame]:
    frames = []
    for index in range(PATTERNS):
        picture = Image.linear_gradient("L").resize(SIZE).convert("RGB")
        draw = ImageDraw.Draw(picture)
        left = index * SIZE[0] // PATTERNS
        draw.rectangle((left, 300, left + 240, 780), fill=(230, 180, 20))
        draw.ellipse((100 + index * 20, 80, 400 + index * 20, 380), fill=(20, 90, 200))
        frames.append(av.VideoFrame.from_image(picture))  # type: ignore[no-untyped-call]
    return frames


def make_clip(path: Path, codec: str, seconds: float) -> Path:
    """A 1080p clip with AAC audio; the muxer leaves moov at the end (as phones upload)."""
    pictures = _pictures()
    with av.open(str(path), mode="w", format="mp4") as out:
        video: Any = out.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.options = {"preset": "ultrafast"}
        if codec == "libx265":
            video.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        audio: Any = out.add_stream("aac", rate=48_000)  # every stream before the first packet
        audio.layout = "stereo"
        for index in range(round(seconds * FPS)):
            frame = pictures[index % PATTERNS]
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _silence(out, audio, seconds)
    return path


def _silence(out: Any, audio: Any, seconds: float) -> None:
    # Audio after video is fine: the muxer interleaves by timestamp at write.
    for start in range(0, int(seconds * 48_000), 1024):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


def _child(kind: str, path: Path, work: Path) -> dict[str, float]:
    return child_json(CHILD, kind, str(path), "video/mp4", str(work), timeout_s=CHILD_TIMEOUT_S)


def run(plan: Plan, stack: Stack) -> Outcome:
    """Make both clips, then time processing and the decode baseline of each in children."""
    seconds = 2.0 if plan.quick else 6.0
    folder = stack.tmp / "processing"
    folder.mkdir(exist_ok=True)
    rows: list[Row] = []
    for label, codec in (("H.264 remux", "libx264"), ("HEVC transcode", "libx265")):
        clip = make_clip(folder / f"{codec}.mp4", codec, seconds)
        job = _child("process", clip, folder / f"work-{codec}")
        floor = _child("decode", clip, folder / f"work-{codec}")
        scenario = f"6 processing 1080p {label}"
        rows += [
            Row(
                scenario,
                "wall seconds per video second",
                "s/s",
                job["wall"] / seconds,
                {"decode": floor["wall"] / seconds},
            ),
            Row(
                scenario,
                "CPU seconds per video second",
                "s/s",
                job["cpu"] / seconds,
                {"decode": floor["cpu"] / seconds},
            ),
            Row(
                scenario,
                "peak RSS of the process",
                "MiB",
                job["rss_mib"],
                {"decode": floor["rss_mib"]},
            ),
        ]
    notes = [
        f"processing: {seconds:g} s clips, {SIZE[0]}x{SIZE[1]} at {FPS} fps with AAC, each run in "
        "a fresh process; libx264 CRF 23 preset veryfast for the transcode"
    ]
    return Outcome(rows=rows, notes=notes)
