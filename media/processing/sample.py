"""A small sample clip for trying the service: H.264 in a faststart MP4, made with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

SIZE = (640, 360)
FPS = 24


def _picture(index: int) -> Image.Image:
    """A moving bar over a colour that changes each second, so seeking shows a difference."""
    second = index // FPS
    hue = (40 * second) % 256
    img = Image.new("RGB", SIZE, (hue, 90, 255 - hue))
    draw = ImageDraw.Draw(img)
    x = (index * 8) % SIZE[0]
    draw.rectangle((x, 0, x + 40, SIZE[1]), fill=(255, 255, 255))
    draw.text((20, 20), f"media-service sample {second:02d}s", fill=(0, 0, 0))
    return img


def write_sample_video(path: Path, seconds: int = 4) -> Path:
    """Write a `seconds`-long 640x360 H.264 MP4 (moov first) to `path`."""
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "g": str(FPS)}
        for index in range(seconds * FPS):
            frame = av.VideoFrame.from_image(_picture(index))  # type: ignore[no-untyped-call]
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path
