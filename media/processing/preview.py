"""The preview of an image: what a browser shows when the original is not a small web image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from media.models import ProbeResult
from media.processing.probe import (
    NOT_DECODABLE_IMAGE,
    TOO_MANY_PIXELS,
    invalid,
    open_image,
)
from media.processing.sniff import GIF, JPEG, PNG, WEBP
from media.processing.thumbnail import eight_bit

MAX_SIDE = 2048
QUALITY = 85
# Every browser shows these; GIF too, and a GIF keeps its animation only when served as is.
BROWSER_IMAGES = frozenset({JPEG, PNG, WEBP, GIF})
PREVIEW_TYPES = {"JPEG": JPEG, "WEBP": WEBP}


def needs_preview(result: ProbeResult) -> bool:
    """False for a browser image no larger than MAX_SIDE that says nothing of where it was taken.

    A stream URL may be handed to others (share links) and must not carry the location.
    """
    assert result.width is not None and result.height is not None
    return (
        result.mime_type not in BROWSER_IMAGES
        or max(result.width, result.height) > MAX_SIDE
        or result.latitude is not None
    )


def make_preview(src: Path, mime_type: str, dst: Path) -> tuple[str, tuple[int, int]]:
    """Write the upright preview of src to dst: WebP when it has transparency, else JPEG.

    Returns the preview's media type and size. The first frame stands for an animation.
    """
    try:
        with open_image(src, mime_type) as img:
            # JPEG only: let libjpeg scale down by 1/2..1/8 while decoding.
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))
            upright = ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise invalid(TOO_MANY_PIXELS) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise invalid(NOT_DECODABLE_IMAGE) from exc
    shown = upright
    try:
        # 8 bits before the resampling, so a transparent grey becomes alpha that resamples.
        shown = eight_bit(upright)
        shown.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        alpha = shown.mode in ("RGBA", "LA", "PA") or "transparency" in shown.info
        if alpha:
            picture, kind = shown.convert("RGBA"), "WEBP"
        else:
            picture, kind = shown.convert("RGB"), "JPEG"
        # No EXIF: the orientation is applied and the location must not travel with the preview.
        picture.save(dst, format=kind, quality=QUALITY)
        return PREVIEW_TYPES[kind], picture.size
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    finally:
        shown.close()
        upright.close()
