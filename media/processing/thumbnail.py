"""JPEG thumbnails of images (EXIF orientation applied) and videos (an upright frame near 10 %)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageChops

from media.models import MediaKind
from media.processing.budget import DECODE_BUDGET, pixel_bytes
from media.processing.probe import (
    AV_OPTIONS,
    DEMUXERS,
    NOT_DECODABLE_IMAGE,
    NOT_DECODABLE_VIDEO,
    PILLOW_FORMATS,
    TOO_MANY_PIXELS,
    check_size,
    invalid,
    is_hdr,
    local_file,
)
from media.processing.rendition import filter_graph
from media.processing.sniff import SNIFF_BYTES, sniff
from media.telemetry.stages import stage

JPEG_QUALITY = 85
FRAME_AT = 0.10
# Decoding forward from a keyframe stops here; a longer GOP just yields the last frame seen.
MAX_FRAMES_AFTER_SEEK = 600
_BACKGROUND = (255, 255, 255)


@stage("thumbnail")
def render_thumbnail(
    src: Path,
    kind: MediaKind,
    dst: Path,
    *,
    max_side: int = 320,
    duration: float | None = None,
) -> tuple[int, int]:
    """Write a JPEG of src to dst, long side at most max_side, never upscaled; return its size."""
    if kind is MediaKind.VIDEO:
        picture = _video_picture(src, duration)
    else:
        picture = _image_picture(src, max_side)
    try:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        picture.save(dst, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return picture.size
    except OSError:
        dst.unlink(missing_ok=True)
        raise
    finally:
        picture.close()


def _image_picture(src: Path, max_side: int) -> Image.Image:
    """The image decoded small, turned upright and flattened to RGB.

    Only the decode itself is full size (PNG has no reduced decode; JPEG decodes at 1/2..1/8):
    it is shrunk at once, and orientation and colour are applied to the small copy."""
    name = local_file(src)
    try:
        with Image.open(name, formats=sorted(set(PILLOW_FORMATS.values()))) as img:
            check_size(img.size)  # before decoding; see probe_image
            # JPEG only: let libjpeg scale down by 1/2..1/8 while decoding.
            img.draft("RGB", (max_side, max_side))
            with DECODE_BUDGET.reserve(_decode_cost(img)):
                try:
                    small = _shrunk(img, max_side)
                    # After the decode: a PNG's getexif() decodes the image to find eXIf.
                    orientation = img.getexif().get(_ORIENTATION)
                finally:
                    img.close()  # the pixels go before the budget is released and trimmed
        return _rgb(_upright(small, orientation))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise invalid(TOO_MANY_PIXELS) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise invalid(NOT_DECODABLE_IMAGE) from exc


_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
BAND_BYTES = 4 * 1024 * 1024
# Modes Pillow resamples with LANCZOS as they are; others are converted first.
_RESAMPLED = frozenset({"L", "LA", "RGB", "RGBA", "RGBa", "La"})


# 16- and 32-bit greyscale (16-bit PNG): Pillow's conversion to L or RGB clips above 255.
_WIDE_GREY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def eight_bit(img: Image.Image) -> Image.Image:
    """`img` itself, or a wide greyscale picture scaled down to 8-bit (not clipped white): "L",
    or "LA" when one grey value is transparent (a PNG's tRNS), its alpha from the wide values."""
    if img.mode not in _WIDE_GREY:
        return img
    wide = img if img.mode == "I" else img.convert("I")
    grey = wide.point(lambda value: value / 256).convert("L")
    clear = img.info.get("transparency")
    if not isinstance(clear, int):
        return grey
    # Opaque wherever the wide value differs from the transparent one, on either side (a
    # conversion to "L" clips below 0 and above 255).
    above = wide.point(lambda value: value - clear).convert("L")
    below = wide.point(lambda value: -value + clear).convert("L")
    grey.putalpha(ImageChops.lighter(above, below).point(lambda apart: 255 if apart else 0))
    return grey


def _convert_to(mode: str) -> str | None:
    """The mode to resample in, or None when the decoded mode will do."""
    if mode in _RESAMPLED:
        return None
    if mode == "1" or mode in _WIDE_GREY:
        return "L"
    return "RGBA" if mode in ("P", "PA") else "RGB"


def _decode_cost(img: Image.Image) -> int:
    """Bytes of pixels held at once: the decode, plus one band of work."""
    return pixel_bytes(img.size, img.mode) + 2 * BAND_BYTES


def _shrunk(img: Image.Image, max_side: int) -> Image.Image:
    """A copy at most max_side on its long side, in a mode LANCZOS works on.

    The decoded image is the only full-size buffer: conversion and the integer reduce run band
    by band (Pillow's own resize of RGBA, or a conversion, would copy it whole first)."""
    img.load()
    width, height = img.size
    factor = max(1, max(width, height) // (2 * max_side))
    mode = _convert_to(img.mode) or img.mode
    small = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = max(factor, BAND_BYTES // (4 * width) // factor * factor)
    for top in range(0, height, rows):
        band = eight_bit(img.crop((0, top, width, min(height, top + rows))))
        if band.mode != mode:
            band = band.convert(mode)
        small.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return small


def _upright(img: Image.Image, orientation: object) -> Image.Image:
    method = _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None
    return img if method is None else img.transpose(method)


def _rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composed over white (JPEG has no alpha)."""
    if img.mode in ("RGBA", "LA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def _video_picture(src: Path, duration: float | None) -> Image.Image:
    """A frame at 10 % of the duration, else the first frame."""
    name = local_file(src)
    with open(name, "rb") as handle:
        demuxer = DEMUXERS.get(sniff(handle.read(SNIFF_BYTES)) or "")
    if demuxer is None:
        raise invalid(NOT_DECODABLE_VIDEO)
    try:
        with av.open(name, format=demuxer, options=AV_OPTIONS) as container:
            if not container.streams.video:
                raise invalid(NOT_DECODABLE_VIDEO)
            video = container.streams.video[0]
            frame = None
            if duration and duration > 0:
                frame = _frame_near(container, video, duration * FRAME_AT)
            if frame is None:
                container.seek(0)
                frame = next(iter(container.decode(video)), None)
            if frame is None:
                raise invalid(NOT_DECODABLE_VIDEO)
            # A stream copy keeps the display matrix; the thumbnail shows the picture upright.
            turn = frame.rotation or 0
            if is_hdr(video):  # mapped to SDR like the rendition, not shown dim and washed out
                graph = filter_graph(video, 0, (frame.width, frame.height))
                graph.push(frame)
                frame = graph.pull()
            return _rgb(frame.to_image()).rotate(turn, expand=True)
    except av.FFmpegError as exc:
        raise invalid(NOT_DECODABLE_VIDEO) from exc


def _frame_near(container: Any, video: Any, seconds: float) -> Any:
    """The first frame at or after seconds, decoding forward from the keyframe before it."""
    try:
        container.seek(int(seconds * av.time_base), backward=True, any_frame=False)
    except av.FFmpegError:
        return None
    last = None
    for count, frame in enumerate(container.decode(video)):
        last = frame
        if frame.time is not None and frame.time >= seconds:
            return frame
        if count >= MAX_FRAMES_AFTER_SEEK:
            break
    return last
