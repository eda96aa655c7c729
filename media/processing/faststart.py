"""MP4 faststart: the moov box in front of mdat, so players start before the whole file arrives."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import av

from media.processing.probe import AV_OPTIONS, invalid, local_file, top_level_boxes
from media.telemetry.stages import stage

REMUX_FAILED = "video could not be prepared for streaming"


def moov_before_mdat(path: Path) -> bool | None:
    """True when moov precedes mdat, False when it follows, None when either is missing."""
    seen_mdat = False
    for kind, _, _ in top_level_boxes(path):
        if kind == b"moov":
            return not seen_mdat
        if kind == b"mdat":
            seen_mdat = True
    return None


def needs_faststart(path: Path) -> bool:
    """True when the file's moov box comes after its mdat box."""
    return moov_before_mdat(path) is False


@stage("faststart")
def make_faststart(src: Path, dst: Path) -> None:
    """Remux src into dst with moov first, copying streams without re-encoding."""
    source = local_file(src)
    try:
        _remux(source, str(dst.absolute()))
    except av.FFmpegError as exc:
        dst.unlink(missing_ok=True)
        raise invalid(REMUX_FAILED) from exc
    if moov_before_mdat(dst) is not True:
        dst.unlink(missing_ok=True)
        raise invalid(REMUX_FAILED)


def _remux(source: str, target: str) -> None:
    """Copy the audio and video packets of source into a faststart MP4 at target."""
    with contextlib.ExitStack() as stack:
        src: Any = stack.enter_context(av.open(source, format="mp4", options=AV_OPTIONS))
        dst: Any = stack.enter_context(
            av.open(
                target,
                mode="w",
                format="mp4",
                options={**AV_OPTIONS, "movflags": "+faststart"},
            )
        )
        # Data and subtitle tracks (timecode, chapters) are dropped: the mp4 muxer refuses many.
        inputs = [*src.streams.video, *src.streams.audio]
        outputs = {stream.index: dst.add_stream_from_template(stream) for stream in inputs}
        for packet in src.demux(inputs):
            if packet.dts is None:  # demux flush packets carry no data
                continue
            packet.stream = outputs[packet.stream.index]
            dst.mux(packet)
