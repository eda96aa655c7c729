"""Dimensions, duration, codecs and capture details of a local media file (PyAV and Pillow).

Every decoder is bounded before it decodes: pixels and sides, frames, streams and duration.
"""

from __future__ import annotations

import dataclasses
import stat
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pillow_heif
from PIL import Image

from media.errors import InvalidInput
from media.models import MediaKind, ProbeResult
from media.processing.budget import DECODE_BUDGET, pixel_bytes
from media.processing.exif import exif_capture, quicktime_capture
from media.processing.sniff import (
    AVIF,
    GIF,
    HEIC,
    HEIF,
    JPEG,
    MATROSKA,
    MP4,
    PNG,
    QUICKTIME,
    WEBM,
    WEBP,
)
from media.telemetry.stages import stage

MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384
# Animated GIF/WebP: more frames than this is a denial of service, not a picture.
MAX_IMAGE_FRAMES = 1_000
# Phones write a video, an audio and a few metadata tracks; thousands of streams only cost memory.
MAX_STREAMS = 16
DEFAULT_MAX_DURATION_S = 3 * 3600

# Process-wide on purpose: every Pillow decode in the service gets the same bound
# (docs/security.md §2.4).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# HEIC/HEIF through libheif; its own security limits stay on (they bound memory per image).
pillow_heif.register_heif_opener()

# Forcing the demuxer keeps FFmpeg from probing playlist or concat formats that would open other
# files or URLs; the whitelist refuses every protocol but local files.
DEMUXERS = {MP4: "mp4", QUICKTIME: "mov", WEBM: "webm", MATROSKA: "matroska"}
AV_OPTIONS = {"protocol_whitelist": "file"}
PILLOW_FORMATS = {
    PNG: "PNG",
    JPEG: "JPEG",
    WEBP: "WEBP",
    GIF: "GIF",
    HEIC: "HEIF",
    HEIF: "HEIF",
    AVIF: "AVIF",
}

# EXIF orientations 5..8 turn the picture a quarter, so the displayed width is the stored height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})

NOT_DECODABLE_VIDEO = "not a decodable video"
NO_VIDEO_TRACK = "no video track (audio alone is not accepted)"
NOT_DECODABLE_IMAGE = "not a decodable image"
TRUNCATED_IMAGE = "truncated image"
TRUNCATED_VIDEO = "truncated video"
TOO_MANY_PIXELS = "image larger than 40 megapixels"
TOO_WIDE = f"image wider or taller than {MAX_SIDE} pixels"
TOO_MANY_FRAMES = f"animation of more than {MAX_IMAGE_FRAMES} frames"
TOO_MANY_STREAMS = f"video with more than {MAX_STREAMS} streams"
VIDEO_TOO_LARGE = f"video frame larger than 40 megapixels or {MAX_SIDE} pixels a side"


def invalid(reason: str, **data: object) -> InvalidInput:
    """An InvalidInput whose message and `data['reason']` are the same user-readable text."""
    return InvalidInput(reason, reason=reason, **data)


def local_file(path: Path) -> str:
    """The absolute path of an existing regular file, the only thing handed to FFmpeg or Pillow."""
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        raise invalid("file not found") from exc
    if not stat.S_ISREG(mode):
        raise invalid("not a regular file")
    # Absolute, so FFmpeg can never read a leading "name:" as a protocol.
    return str(path.absolute())


def top_level_boxes(path: Path) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, offset, size) of each top-level ISO BMFF box (ISO/IEC 14496-12 §4.2)."""
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        offset = 0
        while offset + 8 <= end:
            handle.seek(offset)
            size, kind = struct.unpack(">I4s", handle.read(8))
            if size == 1:  # 64-bit largesize follows the type
                raw = handle.read(8)
                if len(raw) < 8:
                    return
                size = struct.unpack(">Q", raw)[0]
            elif size == 0:  # the box runs to the end of the file
                size = end - offset
            if size < 8:
                return  # malformed: stop rather than loop
            yield kind, offset, size
            offset += size


def boxes_fill_file(path: Path) -> bool:
    """True when the top-level boxes end exactly at the end of the file (nothing cut off)."""
    end = path.stat().st_size
    covered = 0
    for _, offset, size in top_level_boxes(path):
        covered = offset + size
    return covered == end


def moov_before_mdat(path: Path) -> bool | None:
    """True when moov precedes mdat, False when it follows, None when either is missing."""
    seen_mdat = False
    for kind, _, _ in top_level_boxes(path):
        if kind == b"moov":
            return not seen_mdat
        if kind == b"mdat":
            seen_mdat = True
    return None


@stage("probe")
def probe(
    path: Path, mime_type: str, *, max_duration_s: float = DEFAULT_MAX_DURATION_S
) -> ProbeResult:
    """Probe a local file already sniffed as mime_type; raise InvalidInput with a reason."""
    if mime_type in DEMUXERS:
        return probe_video(path, mime_type, max_duration_s=max_duration_s)
    if mime_type in PILLOW_FORMATS:
        return probe_image(path, mime_type)
    raise invalid("file type not allowed", mime_type=mime_type)


# PQ (SMPTE ST 2084) and HLG (ARIB STD-B67): the HDR transfers phones and cameras record in.
_HDR_TRANSFERS = frozenset({16, 18})


def is_hdr(stream: Any) -> bool:
    """True when a video stream's pictures are HDR (PQ or HLG), as an iPhone records them."""
    return stream.codec_context.color_trc in _HDR_TRANSFERS


def probe_video(
    path: Path, mime_type: str, *, max_duration_s: float = DEFAULT_MAX_DURATION_S
) -> ProbeResult:
    """Probe a video with PyAV, decoding one frame to prove it plays."""
    name = local_file(path)
    iso = mime_type in (MP4, QUICKTIME)
    # A cut faststart MP4 still decodes its first frame; its box sizes give it away.
    if iso and not boxes_fill_file(path):
        raise invalid(TRUNCATED_VIDEO)
    try:
        with av.open(name, format=DEMUXERS[mime_type], options=AV_OPTIONS) as container:
            result = _video_result(container, mime_type, max_duration_s)
    except av.FFmpegError as exc:
        raise invalid(NOT_DECODABLE_VIDEO) from exc
    if iso:
        return dataclasses.replace(result, faststart=moov_before_mdat(path) is True)
    return result


def _video_result(container: Any, mime_type: str, max_duration_s: float) -> ProbeResult:
    """Check the bounds on what the demuxer declares, then decode the first video frame."""
    if len(container.streams) > MAX_STREAMS:
        raise invalid(TOO_MANY_STREAMS, streams=len(container.streams))
    if not container.streams.video:
        raise invalid(NO_VIDEO_TRACK)
    duration = _duration(container, container.streams.video[0])
    if duration is not None and duration > max_duration_s:
        reason = f"video longer than {max_duration_s:g} seconds"
        raise invalid(reason, duration=duration)
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    width, height = video.codec_context.width, video.codec_context.height
    if not width or not height:
        raise invalid(NOT_DECODABLE_VIDEO)
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        # A 16k x 16k frame would cost hundreds of MB to decode.
        raise invalid(VIDEO_TOO_LARGE, width=width, height=height)
    frame = next(iter(container.decode(video)), None)
    if frame is None:
        raise invalid(NOT_DECODABLE_VIDEO)
    rotation = _quarter_turns(frame.rotation)
    sample_aspect = _sample_aspect(video)
    shown_width = max(1, round(width * sample_aspect))
    if rotation % 180:
        shown_width, height = height, shown_width
    capture = quicktime_capture(dict(container.metadata))
    return ProbeResult(
        mime_type=mime_type,
        kind=MediaKind.VIDEO,
        width=shown_width,
        height=height,
        duration_seconds=duration,
        captured_at=capture.taken_at,
        container=DEMUXERS[mime_type],
        # The codec's own name ("av1"), not the decoder's ("libdav1d").
        video_codec=video.codec_context.codec.canonical_name,
        audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
        bit_rate=container.bit_rate or None,
        camera_make=capture.camera_make,
        camera_model=capture.camera_model,
        latitude=capture.latitude,
        longitude=capture.longitude,
        rotation=rotation,
        hdr=is_hdr(video),
        sample_aspect=(sample_aspect.numerator, sample_aspect.denominator),
        pixel_format=frame.format.name,
    )


def _quarter_turns(rotation: float | None) -> int:
    """A display matrix rotation rounded to a multiple of 90 degrees in [0, 360)."""
    return round((rotation or 0) / 90) * 90 % 360


def _sample_aspect(video: Any) -> Fraction:
    """The pixel aspect ratio; 1 when unknown or absurd (more than 4:1 either way)."""
    ratio = video.sample_aspect_ratio or video.codec_context.sample_aspect_ratio
    if not ratio or not Fraction(1, 4) <= Fraction(ratio) <= 4:
        return Fraction(1)
    return Fraction(ratio)


def _duration(container: Any, video: Any) -> float | None:
    """Container duration first: WebM streams carry none (docs/stack-notes.md §16)."""
    if container.duration:
        return float(container.duration / av.time_base)
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    return None


def open_image(path: Path, mime_type: str) -> Image.Image:
    """Open (not decode) an image as its sniffed format, its size and frames within bounds."""
    img = Image.open(local_file(path), formats=[PILLOW_FORMATS[mime_type]])
    try:
        check_size(img.size)  # before decoding; a warnings filter would be process-wide state
        if getattr(img, "n_frames", 1) > MAX_IMAGE_FRAMES:
            raise invalid(TOO_MANY_FRAMES)
    except BaseException:
        img.close()
        raise
    return img


def probe_image(path: Path, mime_type: str) -> ProbeResult:
    """Probe an image with Pillow: bounded pixels and frames, full decode, EXIF details."""
    # A HEIF cut inside an item the picture does not need (its Exif) still decodes whole; its
    # box sizes give it away, as for MP4 (and the date, camera and place would be lost).
    if mime_type in (HEIC, HEIF, AVIF) and not boxes_fill_file(path):
        raise invalid(TRUNCATED_IMAGE)
    try:
        with open_image(path, mime_type) as img:
            img.verify()
        with open_image(path, mime_type) as img:
            width, height = img.size
            img.draft(img.mode, (width // 8, height // 8))  # JPEG only; size is now the scaled one
            with DECODE_BUDGET.reserve(pixel_bytes(img.size, img.mode)):
                try:
                    img.load()
                    exif = img.getexif()
                finally:
                    img.close()  # the pixels go before the budget is released and trimmed
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise invalid(TOO_MANY_PIXELS) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        truncated = "truncat" in str(exc).lower()
        raise invalid(TRUNCATED_IMAGE if truncated else NOT_DECODABLE_IMAGE) from exc
    if exif.get(0x0112) in _QUARTER_TURNS:
        width, height = height, width
    capture = exif_capture(exif)
    return ProbeResult(
        mime_type=mime_type,
        kind=MediaKind.IMAGE,
        width=width,
        height=height,
        captured_at=capture.taken_at,
        container=PILLOW_FORMATS[mime_type].lower(),
        camera_make=capture.camera_make,
        camera_model=capture.camera_model,
        latitude=capture.latitude,
        longitude=capture.longitude,
    )


def check_size(size: tuple[int, int]) -> None:
    """Refuse images over the pixel or side bounds before decoding (thread-safe, unlike filters)."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise invalid(TOO_MANY_PIXELS, width=width, height=height)
    if width > MAX_SIDE or height > MAX_SIDE:
        raise invalid(TOO_WIDE, width=width, height=height)
    if width < 1 or height < 1:
        raise invalid(NOT_DECODABLE_IMAGE)
