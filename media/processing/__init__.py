"""Media processing: sniff the type, probe, make the playback rendition, render a thumbnail.

Everything here is synchronous local-file work; callers run it in a worker thread. The original
is only ever read: what browsers get is written beside it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from media.errors import UnsupportedMediaType
from media.models import MediaKind, ProbeResult, ProcessingStage
from media.processing.budget import DECODE_BUDGET
from media.processing.ladder import LadderFile, make_ladder, plan_rungs
from media.processing.preview import make_preview, needs_preview
from media.processing.probe import DEFAULT_MAX_DURATION_S, local_file, probe
from media.processing.rendition import (
    DEFAULT_MAX_HEIGHT,
    MP4_TYPE,
    make_video_rendition,
    plan,
)
from media.processing.sniff import SAME_CONTENT, SNIFF_BYTES, sniff
from media.processing.thumbhash import thumbhash_of
from media.processing.thumbnail import render_thumbnail
from media.telemetry.stages import stage

__all__ = ["DECODE_BUDGET", "LadderFile", "Limits", "Processed", "process"]

TYPE_NOT_ALLOWED = "file type not allowed"
_HASH_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds and targets of processing that settings may change."""

    playback_max_height: int = DEFAULT_MAX_HEIGHT
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    # Rung heights of the HLS ladder (docs/hls.md); empty: no ladder.
    hls_ladder: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RenditionFile:
    """A rendition written into the workdir: its path, type and pixel size."""

    path: Path
    media_type: str
    size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of processing one upload; paths point into the given workdir."""

    probe: ProbeResult
    sha256: str
    rendition: RenditionFile | None
    thumbnail_path: Path | None
    thumbnail_size: tuple[int, int] | None
    thumbhash: str | None
    ladder: tuple[LadderFile, ...] = ()


def process(
    path: Path,
    declared_type: str,
    workdir: Path,
    *,
    limits: Limits = Limits(),
    on_stage: Callable[[ProcessingStage], None] = lambda _: None,
) -> Processed:
    """Check, probe, render: the original at path is read only; on failure workdir gains nothing.

    on_stage is called as each stage starts (probe, rendition, thumbnail, hls).
    """
    on_stage(ProcessingStage.PROBE)
    mime_type = detect(path, declared_type)
    result = probe(path, mime_type, max_duration_s=limits.max_duration_s)
    digest = sha256_of(path)
    workdir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    thumbnail_path = workdir / f"{token}.thumbnail.jpg"
    rendition = None
    try:
        on_stage(ProcessingStage.RENDITION)
        rendition = _rendition(path, result, workdir / f"{token}.rendition", limits)
        on_stage(ProcessingStage.THUMBNAIL)
        shown = rendition.path if rendition is not None else path
        size = render_thumbnail(
            shown, result.kind, thumbnail_path, duration=result.duration_seconds
        )
        with Image.open(thumbnail_path, formats=["JPEG"]) as thumb:
            placeholder = thumbhash_of(thumb)
        ladder: tuple[LadderFile, ...] = ()
        if result.kind is MediaKind.VIDEO and limits.hls_ladder:
            on_stage(ProcessingStage.HLS)
            rungs = plan_rungs(result, limits.hls_ladder)
            ladder = make_ladder(path, result, rungs, workdir / f"{token}.hls")
    except BaseException:
        if rendition is not None:
            rendition.path.unlink(missing_ok=True)
        thumbnail_path.unlink(missing_ok=True)
        raise
    return Processed(
        probe=result,
        sha256=digest,
        rendition=rendition,
        thumbnail_path=thumbnail_path,
        thumbnail_size=size,
        thumbhash=placeholder,
        ladder=ladder,
    )


@stage("rendition")
def _rendition(path: Path, result: ProbeResult, stem: Path, limits: Limits) -> RenditionFile | None:
    """The playback rendition of a video or the preview of an image, or None when not needed."""
    if result.kind is MediaKind.VIDEO:
        todo = plan(result, limits.playback_max_height)
        if todo is None:
            return None
        target = stem.with_suffix(".mp4")
        make_video_rendition(path, result, todo, target)
        return RenditionFile(target, MP4_TYPE, todo.size)
    if not needs_preview(result):
        return None
    target = stem.with_suffix(".preview")
    media_type, size = make_preview(path, result.mime_type, target)
    return RenditionFile(target, media_type, size)


@stage("sniff")
def detect(path: Path, declared_type: str) -> str:
    """The sniffed type of path; UnsupportedMediaType when unknown or not the declared one."""
    with open(local_file(path), "rb") as handle:
        sniffed = sniff(handle.read(SNIFF_BYTES))
    declared = declared_type.split(";", 1)[0].strip().lower()
    if sniffed is None:
        raise UnsupportedMediaType(TYPE_NOT_ALLOWED, reason=TYPE_NOT_ALLOWED, declared=declared)
    if sniffed != declared and declared not in SAME_CONTENT.get(sniffed, ()):
        reason = f"declared {declared} but the file is {sniffed}"
        raise UnsupportedMediaType(reason, reason=reason, declared=declared, detected=sniffed)
    return sniffed


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a local file, read in bounded blocks."""
    digest = hashlib.sha256()
    with open(local_file(path), "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
