"""Dimensions, duration, codecs and capture date of a local media file (PyAV and Pillow)."""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import av
from PIL import Image

from media.errors import InvalidInput
from media.models import MediaKind, ProbeResult
from media.processing.budget import DECODE_BUDGET, pixel_bytes
from media.processing.sniff import JPEG, MP4, PNG, WEBM
from media.telemetry.stages import stage

MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384

# Process-wide on purpose: every Pillow decode in the service gets the same bound
# (docs/security.md §2.4).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Forcing the demuxer keeps FFmpeg from probing playlist or concat formats that would open other
# files or URLs; the whitelist refuses every protocol but local files.
DEMUXERS = {MP4: "mp4", WEBM: "webm"}
AV_OPTIONS = {"protocol_whitelist": "file"}
PILLOW_FORMATS = {PNG: "PNG", JPEG: "JPEG"}

_EXIF_IFD = 0x8769
_DATE_TIME = 306
_DATE_TIME_ORIGINAL = 36867
_OFFSET_TIME = 36880
_OFFSET_TIME_ORIGINAL = 36881
# EXIF orientations 5..8 turn the picture a quarter, so the displayed width is the stored height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})

NOT_DECODABLE_VIDEO = "not a decodable video"
NOT_DECODABLE_IMAGE = "not a decodable image"
TRUNCATED_IMAGE = "truncated image"
TRUNCATED_VIDEO = "truncated video"
TOO_MANY_PIXELS = "image larger than 40 megapixels"
TOO_WIDE = f"image wider or taller than {MAX_SIDE} pixels"


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


@stage("probe")
def probe(path: Path, mime_type: str) -> ProbeResult:
    """Probe a local file already sniffed as mime_type; raise InvalidInput with a reason."""
    if mime_type in DEMUXERS:
        return probe_video(path, mime_type)
    if mime_type in PILLOW_FORMATS:
        return probe_image(path, mime_type)
    raise invalid("file type not allowed", mime_type=mime_type)


def probe_video(path: Path, mime_type: str) -> ProbeResult:
    """Probe a video with PyAV, decoding one frame to prove it plays."""
    name = local_file(path)
    # A cut faststart MP4 still decodes its first frame; its box sizes give it away.
    if mime_type == MP4 and not boxes_fill_file(path):
        raise invalid(TRUNCATED_VIDEO)
    try:
        with av.open(name, format=DEMUXERS[mime_type], options=AV_OPTIONS) as container:
            return _video_result(container, mime_type)
    except av.FFmpegError as exc:
        raise invalid(NOT_DECODABLE_VIDEO) from exc


def _video_result(container: Any, mime_type: str) -> ProbeResult:
    """Read what the demuxer knows and decode the first video frame."""
    if not container.streams.video:
        raise invalid(NOT_DECODABLE_VIDEO)
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    width, height = video.codec_context.width, video.codec_context.height
    if not width or not height:
        raise invalid(NOT_DECODABLE_VIDEO)
    check_size((width, height))  # a 16k x 16k frame would cost hundreds of MB to decode
    if next(iter(container.decode(video)), None) is None:
        raise invalid(NOT_DECODABLE_VIDEO)
    return ProbeResult(
        mime_type=mime_type,
        kind=MediaKind.VIDEO,
        width=width,
        height=height,
        duration_seconds=_duration(container, video),
        container=DEMUXERS[mime_type],
        video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio is not None else None,
        bit_rate=container.bit_rate or None,
    )


def _duration(container: Any, video: Any) -> float | None:
    """Container duration first: WebM streams carry none (docs/stack-notes.md §16)."""
    if container.duration:
        return float(container.duration / av.time_base)
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    return None


def probe_image(path: Path, mime_type: str) -> ProbeResult:
    """Probe an image with Pillow: bounded pixels, every byte decoded (JPEG at 1/8 scale, which
    still reads every block), EXIF capture date."""
    name = local_file(path)
    formats = [PILLOW_FORMATS[mime_type]]
    # check_size bounds pixels before any decoding; a warnings filter would be process-wide state,
    # not safe across processing threads, and Pillow's own bomb error stays the backstop.
    try:
        with Image.open(name, formats=formats) as img:
            check_size(img.size)
            img.verify()
        with Image.open(name, formats=formats) as img:
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
    return ProbeResult(
        mime_type=mime_type,
        kind=MediaKind.IMAGE,
        width=width,
        height=height,
        captured_at=captured_at(exif),
        container=PILLOW_FORMATS[mime_type].lower(),
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


def captured_at(exif: Image.Exif) -> datetime | None:
    """EXIF DateTimeOriginal, else DateTime, as UTC; dates without an offset are taken as UTC."""
    sub = exif.get_ifd(_EXIF_IFD)
    for value, offset in (
        (sub.get(_DATE_TIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL)),
        (exif.get(_DATE_TIME), sub.get(_OFFSET_TIME)),
    ):
        parsed = parse_exif_datetime(value, offset)
        if parsed is not None:
            return parsed
    return None


def parse_exif_datetime(value: object, offset: object = None) -> datetime | None:
    """Parse 'YYYY:MM:DD HH:MM:SS' (EXIF 2.3 §4.6.5) with an optional '+HH:MM' offset."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        return moment.replace(tzinfo=_offset(offset)).astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +14:00 is before the calendar in UTC
        return None


def _offset(raw: object) -> timezone:
    """An EXIF OffsetTime value ('+09:00') as a timezone; UTC when absent or malformed."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        return UTC
    text = raw.strip("\x00 ")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return UTC
    try:
        delta = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    except ValueError:
        return UTC
    return timezone(-delta if text[0] == "-" else delta)
