"""Media processing: sniff the type, probe, make MP4 faststart, render a thumbnail.

Everything here is synchronous local-file work; callers run it in a worker thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from media.errors import UnsupportedMediaType
from media.models import ProbeResult
from media.processing.budget import DECODE_BUDGET
from media.processing.faststart import make_faststart, needs_faststart
from media.processing.probe import local_file, probe
from media.processing.sniff import ALLOWED_TYPES, MP4, SNIFF_BYTES, sniff
from media.processing.thumbnail import render_thumbnail
from media.telemetry.stages import stage

__all__ = [
    "ALLOWED_TYPES",
    "DECODE_BUDGET",
    "SNIFF_BYTES",
    "Processed",
    "make_faststart",
    "needs_faststart",
    "probe",
    "process",
    "render_thumbnail",
    "sniff",
]

TYPE_NOT_ALLOWED = "file type not allowed"


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of processing one upload; paths point into the given workdir."""

    probe: ProbeResult
    faststart_path: Path | None
    thumbnail_path: Path | None
    thumbnail_size: tuple[int, int] | None


def process(path: Path, declared_type: str, workdir: Path) -> Processed:
    """Check, probe and prepare a local upload; on failure leave nothing new in workdir."""
    mime_type = detect(path, declared_type)
    result = probe(path, mime_type)
    workdir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    faststart_path = workdir / f"{token}.faststart.mp4"
    thumbnail_path = workdir / f"{token}.thumbnail.jpg"
    try:
        playable = path
        made_faststart = mime_type == MP4 and needs_faststart(path)
        if made_faststart:
            make_faststart(path, faststart_path)
            playable = faststart_path
        size = render_thumbnail(
            playable, result.kind, thumbnail_path, duration=result.duration_seconds
        )
    except BaseException:
        faststart_path.unlink(missing_ok=True)
        thumbnail_path.unlink(missing_ok=True)
        raise
    return Processed(
        probe=result,
        faststart_path=faststart_path if made_faststart else None,
        thumbnail_path=thumbnail_path,
        thumbnail_size=size,
    )


@stage("sniff")
def detect(path: Path, declared_type: str) -> str:
    """The sniffed type of path; UnsupportedMediaType when unknown or not the declared one."""
    with open(local_file(path), "rb") as handle:
        sniffed = sniff(handle.read(SNIFF_BYTES))
    declared = declared_type.split(";", 1)[0].strip().lower()
    if sniffed is None:
        raise UnsupportedMediaType(TYPE_NOT_ALLOWED, reason=TYPE_NOT_ALLOWED, declared=declared)
    if sniffed != declared:
        reason = f"declared {declared} but the file is {sniffed}"
        raise UnsupportedMediaType(reason, reason=reason, declared=declared, detected=sniffed)
    return sniffed
