"""Deterministic small media files (PyAV, Pillow) and the session fixtures that hold one of each."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageDraw

AUDIO_RATE = 44_100
AUDIO_FRAME = 1024
EXIF_IFD = 0x8769


def _picture(index: int, size: tuple[int, int]) -> Image.Image:
    """Frame `index` of a fixed pattern: a gradient with a bar that moves one step per frame."""
    width, height = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    left = (index * 8) % max(width - width // 8, 1)
    draw.rectangle((left, height // 4, left + width // 8, height * 3 // 4), fill=(230, 180, 20))
    draw.ellipse((width // 16, height // 16, width // 4, height // 4), fill=(20, 90, 200))
    return img


def _tone(start: int, samples: int) -> bytes:
    """Little-endian float samples of a quiet 440 Hz sine, from sample `start`."""
    return b"".join(
        struct.pack("<f", 0.2 * math.sin(2 * math.pi * 440 * (start + k) / AUDIO_RATE))
        for k in range(samples)
    )


def _encode_video(
    container: av.container.OutputContainer,
    stream: av.VideoStream,
    count: int,
    fps: int,
    size: tuple[int, int],
) -> None:
    for index in range(count):
        frame = av.VideoFrame.from_image(_picture(index, size))  # type: ignore[no-untyped-call]
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _encode_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    total = int(seconds * AUDIO_RATE)
    for start in range(0, total, AUDIO_FRAME):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(_tone(start, AUDIO_FRAME))
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_mp4(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 24,
    size: tuple[int, int] = (320, 240),
    faststart: bool = False,
    audio: bool = True,
) -> Path:
    """H.264 yuv420p (+ AAC) MP4; PyAV's muxer puts moov at the end unless faststart=True."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        # One keyframe a second, so a thumbnail seek must decode forward from it.
        video.options = {"preset": "ultrafast", "g": str(fps), "threads": "1"}
        sound = container.add_stream("aac", rate=AUDIO_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        _encode_video(container, video, round(seconds * fps), fps, size)
        if sound is not None:
            _encode_audio(container, sound, seconds)
    return path


def make_audio_mp4(path: Path, *, seconds: float = 1.0) -> Path:
    """An MP4 holding AAC audio alone (what a voice memo app writes)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        _encode_audio(container, sound, seconds)
    return path


def make_mkv(path: Path, *, seconds: float = 2.0, fps: int = 24) -> Path:
    """H.264 with B-frames + AAC in Matroska, as screen recorders write it: the demuxer gives
    the first packets of the video no DTS (Matroska stores presentation times only)."""
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = 320, 240
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "bf": "2", "g": str(fps), "threads": "1"}
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        _encode_video(container, video, round(seconds * fps), fps, (320, 240))
        _encode_audio(container, sound, seconds)
    return path


def make_webm(
    path: Path, seconds: float = 1.0, size: tuple[int, int] = (320, 240), *, fps: int = 24
) -> Path:
    """VP9 WebM without audio (PyAV's bundled FFmpeg has libvpx-vp9)."""
    with av.open(str(path), mode="w", format="webm") as container:
        video = container.add_stream("libvpx-vp9", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8", "g": str(fps), "threads": "1"}
        _encode_video(container, video, round(seconds * fps), fps, size)
    return path


def make_png(path: Path, size: tuple[int, int] = (640, 480), *, alpha: bool = False) -> Path:
    """A PNG of the fixed pattern; with alpha, an RGBA one with a transparent half."""
    img = _picture(0, size)
    if alpha:
        img = img.convert("RGBA")
        img.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    img.save(path, format="PNG")
    return path


def make_jpeg(
    path: Path,
    size: tuple[int, int] = (640, 480),
    exif_datetime: str | None = None,
    *,
    orientation: int | None = None,
    offset: str | None = None,
) -> Path:
    """A JPEG with optional EXIF DateTimeOriginal ('YYYY:MM:DD HH:MM:SS'), offset, orientation."""
    exif = Image.Exif()
    if exif_datetime is not None:
        exif.get_ifd(EXIF_IFD)[36867] = exif_datetime
        exif[306] = exif_datetime
    if offset is not None:
        exif.get_ifd(EXIF_IFD)[36881] = offset
    if orientation is not None:
        exif[0x0112] = orientation
    _picture(0, size).save(path, format="JPEG", quality=85, exif=exif.tobytes())
    return path


def make_png_bomb(path: Path, size: tuple[int, int] = (7100, 7100)) -> Path:
    """A 50-megapixel single-colour PNG, a few kilobytes on disk."""
    Image.new("1", size, 0).save(path, format="PNG", optimize=True)
    return path


def make_truncated(src: Path, dst: Path, *, keep: float = 0.5) -> Path:
    """A copy of src cut to the first `keep` fraction of its bytes."""
    data = src.read_bytes()
    dst.write_bytes(data[: max(1, int(len(data) * keep))])
    return dst


def make_garbage(path: Path, size: int = 8192) -> Path:
    """Fixed pseudo-random bytes that match no media signature."""
    state = 0x2545F491
    out = bytearray()
    for _ in range(size):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((state >> 16) & 0xFF)
    out[0:4] = b"junk"
    path.write_bytes(bytes(out))
    return path


@dataclass(frozen=True, slots=True)
class MediaFiles:
    """One generated file of each kind, all in one session directory."""

    directory: Path
    mp4: Path  # 2 s, 320x240, H.264 + AAC, moov at the end
    mp4_faststart: Path  # same content, moov first
    webm: Path  # 1 s, 320x240, VP9
    png: Path  # 640x480
    png_alpha: Path  # 640x480 RGBA
    jpeg: Path  # 640x480, DateTimeOriginal 2021:06:01 12:30:00 (no offset: UTC)
    jpeg_rotated: Path  # stored 400x200, orientation 6 (shown 200x400)
    png_bomb: Path  # 7100x7100
    truncated_mp4: Path
    truncated_png: Path
    garbage: Path


JPEG_EXIF_DATETIME = "2021:06:01 12:30:00"


def generate_media_files(directory: Path) -> MediaFiles:
    """Write one file of each kind into directory."""
    mp4 = make_mp4(directory / "moov-at-end.mp4")
    png = make_png(directory / "image.png")
    return MediaFiles(
        directory=directory,
        mp4=mp4,
        mp4_faststart=make_mp4(directory / "faststart.mp4", faststart=True),
        webm=make_webm(directory / "video.webm"),
        png=png,
        png_alpha=make_png(directory / "alpha.png", alpha=True),
        jpeg=make_jpeg(directory / "photo.jpg", exif_datetime=JPEG_EXIF_DATETIME),
        jpeg_rotated=make_jpeg(directory / "rotated.jpg", (400, 200), orientation=6),
        png_bomb=make_png_bomb(directory / "bomb.png"),
        truncated_mp4=make_truncated(mp4, directory / "truncated.mp4", keep=0.5),
        truncated_png=make_truncated(png, directory / "truncated.png", keep=0.6),
        garbage=make_garbage(directory / "garbage.bin"),
    )


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaFiles]:
    """One of each generated media file, made once per session; treat them as read-only."""
    yield generate_media_files(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def media_dir(media_files: MediaFiles) -> Path:
    """The session directory holding the files of `media_files`."""
    return media_files.directory
