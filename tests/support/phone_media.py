"""Tiny files as phones write them (PyAV, Pillow, pillow-heif), and hostile ones made by hand.

Every picture is 64x48 and every clip a fraction of a second, so a transcode takes milliseconds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pillow_heif
import pytest
from PIL import Image

from tests.support.media_files import _encode_audio, _picture

SIZE = (64, 48)
FPS = 24
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
TAKEN = "2023:07:14 18:05:09"
TAKEN_OFFSET = "+02:00"  # so 16:05:09 UTC
QUICKTIME_TAGS = {
    "creation_time": "2022-03-04T05:06:07.000000Z",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15 Pro",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
}


def make_clip(
    path: Path,
    *,
    container: str = "mp4",
    codec: str = "libx264",
    audio: str | None = "aac",
    size: tuple[int, int] = SIZE,
    frames: int = 8,
    pix_fmt: str = "yuv420p",
    sample_aspect: Fraction | None = None,
    tags: Mapping[str, str] | None = None,
    faststart: bool = False,
) -> Path:
    """A short clip of the fixed pattern with an optional tone; tags become container metadata."""
    flags = [
        name for name, wanted in (("use_metadata_tags", tags), ("faststart", faststart)) if wanted
    ]
    muxer_options = {"movflags": "+".join(flags)} if flags and container in ("mov", "mp4") else {}
    with av.open(str(path), mode="w", format=container, options=muxer_options) as out:
        out.metadata.update(dict(tags or {}))
        video = out.add_stream(codec, rate=FPS)
        video.width, video.height = size
        video.pix_fmt = pix_fmt
        if sample_aspect is not None:
            video.codec_context.sample_aspect_ratio = sample_aspect
        if codec == "libx265":
            video.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        elif codec == "libx264":
            video.options = {"preset": "ultrafast", "threads": "1"}
        elif codec == "libsvtav1":
            video.options = {"preset": "12"}
        else:
            video.options = {"deadline": "realtime", "cpu-used": "8", "threads": "1"}
        sound = out.add_stream(audio, rate=48_000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_image(_picture(index, size))  # type: ignore[no-untyped-call]
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _encode_audio(out, sound, frames / FPS)
    return path


# HLG's signal for SDR reference white (75 %, BT.2408) in 10-bit limited range: 64 + 0.75 * 876.
HLG_WHITE_Y = 721


def make_hlg_clip(
    path: Path, *, ten_bit: bool = True, frames: int = 8, size: tuple[int, int] = SIZE
) -> Path:
    """HLG in QuickTime, every picture reference white (BT.2020 primaries and matrix, ARIB
    STD-B67 transfer, tagged in the stream and the codec): HEVC 10-bit as an iPhone records
    video, or H.264 8-bit as some cameras do (a codec browsers play, so only HDR asks for work)."""
    width, height = size
    pix_fmt = "yuv420p10le" if ten_bit else "yuv420p"
    # 75 % of the limited range above black, and neutral chroma, at each bit depth.
    values, sample = ((HLG_WHITE_Y, 512, 512), "<H") if ten_bit else ((180, 128, 128), "<B")
    params = "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"
    with av.open(str(path), mode="w", format="mov") as out:
        video = out.add_stream("libx265" if ten_bit else "libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        context = video.codec_context
        context.color_primaries, context.color_trc, context.colorspace = 9, 18, 9
        context.color_range = 1  # limited ("tv")
        video.options = (
            {"preset": "ultrafast", "x265-params": f"log-level=none:{params}:range=limited"}
            if ten_bit
            else {"preset": "ultrafast", "threads": "1", "x264-params": params}
        )
        width_bytes = struct.calcsize(sample)
        for index in range(frames):
            frame = av.VideoFrame(width, height, pix_fmt)
            for plane, value in zip(frame.planes, values, strict=True):
                plane.update(struct.pack(sample, value) * (plane.buffer_size // width_bytes))
            frame.color_primaries, frame.color_trc, frame.colorspace = 9, 18, 9
            frame.color_range = 1
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def rotate_mp4(path: Path, degrees: int) -> Path:
    """Write a display matrix turning the first track by degrees clockwise (ISO 14496-12 tkhd)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") + 4
    assert data[at] == 0, "version 0 tkhd expected"
    matrix = at + 4 + 4 + 4 + 4 + 4 + 4 + 8 + 2 + 2 + 2 + 2
    one, w = 0x10000, 0x40000000
    values = {
        90: (0, one, 0, -one, 0, 0, 0, 0, w),
        180: (-one, 0, 0, 0, -one, 0, 0, 0, w),
        270: (0, -one, 0, one, 0, 0, 0, 0, w),
    }[degrees]
    struct.pack_into(">9i", data, matrix, *values)
    path.write_bytes(bytes(data))
    return path


def _exif(*, orientation: int | None = None, located: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Google"
    exif[0x0110] = "Pixel 8"
    exif[306] = TAKEN
    exif.get_ifd(EXIF_IFD)[36867] = TAKEN
    exif.get_ifd(EXIF_IFD)[36881] = TAKEN_OFFSET
    if orientation is not None:
        exif[0x0112] = orientation
    if located:
        gps = exif.get_ifd(GPS_IFD)
        gps[1], gps[2] = "N", (48.0, 51.0, 30.24)  # 48.8584 N
        gps[3], gps[4] = "E", (2.0, 17.0, 40.2)  # 2.2945 E
    return exif


def make_photo(
    path: Path, format: str, *, size: tuple[int, int] = SIZE, orientation: int | None = None
) -> Path:
    """A still in JPEG, HEIF (HEVC), AVIF or WebP, with camera, date and location in EXIF."""
    pillow_heif.register_heif_opener()  # HEIF writing comes from pillow-heif
    exif = _exif(orientation=orientation).tobytes()
    _picture(0, size).save(path, format=format, quality=80, exif=exif)
    return path


def make_gif(path: Path, *, frames: int = 4, size: tuple[int, int] = SIZE) -> Path:
    """An animated GIF of the moving bar."""
    pictures = [_picture(index, size).convert("P") for index in range(frames)]
    pictures[0].save(path, format="GIF", save_all=True, append_images=pictures[1:], duration=80)
    return path


def make_many_frame_gif(path: Path, frames: int = 10_000) -> Path:
    """A 1x1 GIF of `frames` frames, written block by block (GIF89a): a few hundred KiB."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    control = b"\x21\xf9\x04\x04\x01\x00\x00\x00"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    path.write_bytes(head + loop + (control + image) * frames + b"\x3b")
    return path


def _ebml(element_id: int, payload: bytes) -> bytes:
    """One EBML element (RFC 8794): id, an 8-byte size, payload."""
    raw_id = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return raw_id + (0x01 << 56 | len(payload)).to_bytes(8, "big") + payload


def _uint(element_id: int, value: int) -> bytes:
    return _ebml(element_id, value.to_bytes(8, "big"))


def make_hostile_mkv(
    path: Path, *, tracks: int = 1, size: tuple[int, int] = SIZE, seconds: float = 0.04
) -> Path:
    """A Matroska file declaring what it likes: track count, frame size, duration.

    Raw (V_UNCOMPRESSED) tracks carry their size only in the header, so the demuxer believes it.
    """
    header = _ebml(0x1A45DFA3, _uint(0x4286, 1) + _ebml(0x4282, b"matroska") + _uint(0x4287, 4))
    info = _ebml(
        0x1549A966,
        _uint(0x2AD7B1, 1_000_000) + _ebml(0x4489, struct.pack(">d", seconds * 1000)),
    )
    width, height = size
    entries = b"".join(
        _ebml(
            0xAE,
            _uint(0xD7, number)
            + _uint(0x73C5, number)
            + _uint(0x83, 1)
            + _ebml(0x86, b"V_UNCOMPRESSED")
            + _ebml(0xE0, _uint(0xB0, width) + _uint(0xBA, height) + _ebml(0x2EB524, b"Y800")),
        )
        for number in range(1, tracks + 1)
    )
    # Track 1, timecode 0, keyframe, one grey frame (a few bytes when the size is a lie).
    block = b"\x81\x00\x00\x80" + bytes(min(width * height, 64 * 48))
    cluster = _ebml(0x1F43B675, _uint(0xE7, 0) + _ebml(0xA3, block))
    segment = _ebml(0x18538067, info + _ebml(0x1654AE6B, entries) + cluster)
    path.write_bytes(header + segment)
    return path


@dataclass(frozen=True, slots=True)
class PhoneMedia:
    """One generated file per format phones write, plus hostile files."""

    mov: Path  # H.264/AAC QuickTime with Apple make, model, creation time and location
    hevc_mp4: Path  # HEVC/AAC MP4, moov at the end
    av1_mp4: Path  # AV1/AAC MP4
    mkv: Path  # H.264/Opus Matroska (a screen recording)
    webm: Path  # VP9/Opus
    portrait_mp4: Path  # stored 64x48, display matrix turning it to 48x64
    anamorphic_mp4: Path  # 64x48 with 2:1 pixels: shown 128x48
    jpeg: Path  # EXIF orientation 6 (shown 48x64), camera, date with offset, GPS
    heic: Path  # HEVC still with the same EXIF minus orientation
    avif: Path
    webp: Path
    gif: Path  # 4 frames
    many_frame_gif: Path  # 10,000 frames
    raw_mkv: Path  # a valid 64x48 raw frame in a hand-written Matroska file
    huge_mkv: Path  # declares 100,000 x 100,000
    large_mkv: Path  # declares 16,000 x 16,000 (FFmpeg accepts it, the service must not)
    many_stream_mkv: Path  # 1,000 tracks
    day_long_mkv: Path  # a header saying 24 hours
    truncated_heic: Path


def generate_phone_media(directory: Path) -> PhoneMedia:
    """Write every file into directory."""
    heic = make_photo(directory / "photo.heic", "HEIF")
    return PhoneMedia(
        mov=make_clip(directory / "clip.mov", container="mov", tags=QUICKTIME_TAGS),
        hevc_mp4=make_clip(directory / "hevc.mp4", codec="libx265"),
        av1_mp4=make_clip(directory / "av1.mp4", codec="libsvtav1"),
        mkv=make_clip(directory / "screen.mkv", container="matroska", audio="libopus"),
        webm=make_clip(
            directory / "clip.webm", container="webm", codec="libvpx-vp9", audio="libopus"
        ),
        portrait_mp4=rotate_mp4(make_clip(directory / "portrait.mp4", audio=None), 90),
        anamorphic_mp4=make_clip(
            directory / "anamorphic.mp4", audio=None, sample_aspect=Fraction(2, 1)
        ),
        jpeg=make_photo(directory / "photo.jpg", "JPEG", orientation=6),
        heic=heic,
        avif=make_photo(directory / "photo.avif", "AVIF"),
        webp=make_photo(directory / "photo.webp", "WEBP"),
        gif=make_gif(directory / "anim.gif"),
        many_frame_gif=make_many_frame_gif(directory / "many.gif"),
        raw_mkv=make_hostile_mkv(directory / "raw.mkv"),
        huge_mkv=make_hostile_mkv(directory / "huge.mkv", size=(100_000, 100_000)),
        large_mkv=make_hostile_mkv(directory / "large.mkv", size=(16_000, 16_000)),
        many_stream_mkv=make_hostile_mkv(directory / "streams.mkv", tracks=1_000),
        day_long_mkv=make_hostile_mkv(directory / "day.mkv", seconds=24 * 3600),
        truncated_heic=_cut(heic, directory / "cut.heic"),
    )


def _cut(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])
    return dst


@pytest.fixture(scope="session")
def phone_media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneMedia]:
    """The generated phone files, made once per session; treat them as read-only."""
    yield generate_phone_media(tmp_path_factory.mktemp("phone"))
