"""Processing of real generated files: probe, renditions, thumbnails and refusals."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops

from media.errors import InvalidInput, UnsupportedMediaType
from media.models import MediaKind
from media.processing import Processed, process
from media.processing.probe import moov_before_mdat, probe
from media.processing.thumbnail import render_thumbnail
from tests.support.media_files import (
    MediaFiles,
    make_audio_mp4,
    make_jpeg,
    make_mkv,
    make_png,
    make_truncated,
)


def decode_all(path: Path) -> tuple[int, float]:
    """Decode every video frame; return the count and the container duration in seconds."""
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        return frames, container.duration / av.time_base


def top_level(path: Path) -> list[bytes]:
    data = path.read_bytes()
    kinds, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        kinds.append(kind)
        offset += size
    return kinds


def assert_thumbnail(processed: Processed, size: tuple[int, int]) -> None:
    assert processed.thumbnail_path is not None
    assert processed.thumbnail_size == size
    with Image.open(processed.thumbnail_path) as thumb:
        thumb.load()
        assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", size)


def test_mp4_with_moov_at_the_end_gets_a_faststart_rendition(
    media_files: MediaFiles, tmp_path: Path
):
    assert top_level(media_files.mp4).index(b"mdat") < top_level(media_files.mp4).index(b"moov")
    original = media_files.mp4.read_bytes()
    processed = process(media_files.mp4, "video/mp4", tmp_path)
    assert media_files.mp4.read_bytes() == original  # never rewritten
    assert processed.sha256 == hashlib.sha256(original).hexdigest()
    result = processed.probe
    assert (result.mime_type, result.kind, result.width, result.height) == (
        "video/mp4",
        MediaKind.VIDEO,
        320,
        240,
    )
    assert result.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert (result.container, result.video_codec, result.audio_codec) == ("mp4", "h264", "aac")
    assert result.bit_rate and result.bit_rate > 0
    assert processed.rendition is not None
    assert (processed.rendition.media_type, processed.rendition.size) == ("video/mp4", (320, 240))
    fast = processed.rendition.path
    assert fast.parent == tmp_path
    kinds = top_level(fast)
    assert kinds.index(b"moov") < kinds.index(b"mdat")
    frames, duration = decode_all(fast)
    assert frames == decode_all(media_files.mp4)[0] == 48
    assert duration == pytest.approx(result.duration_seconds, abs=0.1)
    with av.open(str(fast)) as container:
        # Stream copy: the same codecs, no re-encode.
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
    assert_thumbnail(processed, (320, 240))


def test_mp4_already_faststart_is_its_own_rendition(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.mp4_faststart, "video/mp4", tmp_path)
    assert processed.rendition is None
    assert processed.probe.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert_thumbnail(processed, (320, 240))
    assert sorted(tmp_path.iterdir()) == [processed.thumbnail_path]


def test_webm_is_transcoded_to_h264(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.webm, "video/webm", tmp_path)
    result = processed.probe
    assert (result.mime_type, result.width, result.height) == ("video/webm", 320, 240)
    assert result.duration_seconds == pytest.approx(1.0, abs=0.1)
    assert (result.container, result.video_codec, result.audio_codec) == ("webm", "vp9", None)
    assert processed.rendition is not None
    with av.open(str(processed.rendition.path)) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264"]
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert decode_all(processed.rendition.path)[0] == 24
    assert_thumbnail(processed, (320, 240))


def test_matroska_with_b_frames_is_remuxed_whole(tmp_path: Path):
    source = make_mkv(tmp_path / "screen.mkv")
    with av.open(str(source)) as container:  # what makes the case: packets without a DTS
        assert any(p.dts is None and p.size for p in container.demux(video=0))
    processed = process(source, "video/x-matroska", tmp_path)
    result = processed.probe
    assert (result.container, result.video_codec, result.audio_codec) == ("matroska", "h264", "aac")
    assert processed.rendition is not None
    with av.open(str(processed.rendition.path)) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        packets = [p for p in container.demux(video=0) if p.size]
        assert packets[0].is_keyframe
        assert len(packets) == 48
    assert decode_all(processed.rendition.path)[0] == 48
    assert_thumbnail(processed, (320, 240))


def test_png(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.png, "image/png", tmp_path)
    result = processed.probe
    assert (result.mime_type, result.kind, result.width, result.height) == (
        "image/png",
        MediaKind.IMAGE,
        640,
        480,
    )
    assert result.duration_seconds is None and result.captured_at is None
    assert_thumbnail(processed, (320, 240))


@pytest.mark.parametrize("size", [(320, 240), (3000, 200)])  # thumbnail only; and a preview
def test_a_16_bit_grey_png_keeps_its_tones(tmp_path: Path, size: tuple[int, int]):
    width, height = size
    ramp = Image.new("I;16", size)
    ramp.putdata([x * 65535 // (width - 1) for _ in range(height) for x in range(width)])
    source = tmp_path / "ramp.png"
    ramp.save(source)
    processed = process(source, "image/png", tmp_path / "work")
    pictures = [processed.thumbnail_path]
    if processed.rendition is not None:
        assert processed.rendition.media_type == "image/jpeg"
        pictures.append(processed.rendition.path)
    assert len(pictures) == (2 if width > 2048 else 1)
    for picture in pictures:
        with Image.open(picture) as shown:
            grey = shown.convert("L")
            left, middle, right = (
                grey.getpixel((x, grey.height // 2)) for x in (0, grey.width // 2, grey.width - 1)
            )
        # Black to white across, as in the 16-bit original (not clipped to white).
        assert left < 10 and 110 < middle < 145 and right > 245, (picture, left, middle, right)


def test_a_16_bit_grey_png_with_a_transparent_grey_keeps_tones_and_transparency(
    tmp_path: Path,
):
    width, height = 3000, 200  # wider than a preview's 2048 px: a preview is made
    ramp = Image.new("I;16", (width, height))
    row = [0 if x < 300 else x * 65535 // (width - 1) for x in range(width)]
    ramp.putdata(row * height)
    source = tmp_path / "ramp.png"
    ramp.save(source, transparency=0)  # the darkest grey, the first 300 columns, is transparent
    processed = process(source, "image/png", tmp_path / "work")
    assert processed.rendition is not None
    assert processed.rendition.media_type == "image/webp"  # transparency kept
    with Image.open(processed.rendition.path) as shown:
        rgba = shown.convert("RGBA")
        middle = rgba.getpixel((rgba.width // 2, rgba.height // 2))
        assert 110 < middle[0] < 145 and middle[3] == 255, middle
        assert rgba.getpixel((50, rgba.height // 2))[3] == 0


def test_png_with_alpha_is_flattened_on_white(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.png_alpha, "image/png", tmp_path)
    assert_thumbnail(processed, (320, 240))
    assert processed.thumbnail_path is not None
    with Image.open(processed.thumbnail_path) as thumb:
        red, green, blue = thumb.getpixel((10, 120))  # type: ignore[misc]
        assert min(red, green, blue) > 240


def test_jpeg_exif_date_is_picked_up(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.jpeg, "image/jpeg", tmp_path)
    assert processed.probe.captured_at == datetime(2021, 6, 1, 12, 30, tzinfo=UTC)
    assert (processed.probe.width, processed.probe.height) == (640, 480)
    assert_thumbnail(processed, (320, 240))


def test_jpeg_exif_offset_is_applied(tmp_path: Path):
    photo = make_jpeg(tmp_path / "p.jpg", (64, 48), "2021:06:01 12:30:00", offset="+02:00")
    assert probe(photo, "image/jpeg").captured_at == datetime(2021, 6, 1, 10, 30, tzinfo=UTC)


def test_jpeg_orientation_is_applied(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.jpeg_rotated, "image/jpeg", tmp_path)
    assert (processed.probe.width, processed.probe.height) == (200, 400)
    assert_thumbnail(processed, (160, 320))


def test_small_image_is_never_upscaled(tmp_path: Path):
    small = make_png(tmp_path / "small.png", (100, 30))
    assert render_thumbnail(small, MediaKind.IMAGE, tmp_path / "t.jpg") == (100, 30)


def test_video_thumbnail_decodes_forward_to_ten_percent(media_files: MediaFiles, tmp_path: Path):
    # 2 s at 24 fps with a keyframe each second: 10 % is frame 5, after the keyframe at 0.
    at_ten = render_thumbnail(
        media_files.mp4, MediaKind.VIDEO, tmp_path / "ten.jpg", duration=2.0, max_side=160
    )
    first = render_thumbnail(media_files.mp4, MediaKind.VIDEO, tmp_path / "first.jpg", max_side=160)
    assert at_ten == first == (160, 120)
    with Image.open(tmp_path / "ten.jpg") as a, Image.open(tmp_path / "first.jpg") as b:
        assert ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is not None


def test_moov_before_mdat_handles_64_bit_box_sizes(tmp_path: Path):
    ftyp = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00"
    mdat64 = b"\x00\x00\x00\x01mdat" + (24).to_bytes(8, "big") + b"payload!"
    moov = b"\x00\x00\x00\x08moov"
    cases = {
        "moov-last.mp4": (ftyp + mdat64 + moov, False),
        "moov-first.mp4": (ftyp + moov + mdat64, True),
        "mdat-to-eof.mp4": (ftyp + moov + b"\x00\x00\x00\x00mdat" + b"x" * 40, True),
        "no-moov.mp4": (ftyp + mdat64, None),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert moov_before_mdat(path) is expected, name


def assert_refused(workdir: Path, path: Path, declared: str, reason: str) -> InvalidInput:
    # Something already in the workdir must survive; only what processing made is removed.
    workdir.mkdir(exist_ok=True)
    keep = workdir / "keep.txt"
    keep.write_text("mine")
    with pytest.raises(InvalidInput) as caught:
        process(path, declared, workdir)
    assert caught.value.data["reason"] == reason
    assert str(caught.value) == reason
    assert sorted(workdir.iterdir()) == [keep]
    return caught.value


@pytest.mark.parametrize(
    ("name", "declared", "reason"),
    [
        ("png", "video/mp4", "declared video/mp4 but the file is image/png"),
        ("mp4", "video/webm", "declared video/webm but the file is video/mp4"),
        ("jpeg", "image/png", "declared image/png but the file is image/jpeg"),
        ("garbage", "video/mp4", "file type not allowed"),
        ("garbage", "image/png", "file type not allowed"),
    ],
)
def test_type_refusals(media_files: MediaFiles, tmp_path: Path, name, declared, reason):
    error = assert_refused(tmp_path, getattr(media_files, name), declared, reason)
    assert isinstance(error, UnsupportedMediaType)


@pytest.mark.parametrize(
    ("name", "declared", "reason"),
    [
        ("truncated_mp4", "video/mp4", "truncated video"),
        ("truncated_png", "image/png", "truncated image"),
        ("png_bomb", "image/png", "image larger than 40 megapixels"),
    ],
)
def test_content_refusals(media_files: MediaFiles, tmp_path: Path, name, declared, reason):
    error = assert_refused(tmp_path, getattr(media_files, name), declared, reason)
    assert not isinstance(error, UnsupportedMediaType)


def test_audio_alone_is_refused_for_what_it_is(tmp_path: Path):
    source = make_audio_mp4(tmp_path / "memo.mp4")
    reason = "no video track (audio alone is not accepted)"
    assert not isinstance(
        assert_refused(tmp_path / "work", source, "video/mp4", reason), UnsupportedMediaType
    )


@pytest.mark.parametrize(
    ("name", "keep", "declared", "reason"),
    [
        # A cut faststart MP4 still has its moov; the box sizes show the missing tail.
        ("mp4_faststart", 0.9, "video/mp4", "truncated video"),
        # Only the EBML header and track list survive: no frame to decode.
        ("webm", 0.05, "video/webm", "not a decodable video"),
        ("jpeg", 0.7, "image/jpeg", "truncated image"),
    ],
)
def test_cut_short_refusals(media_files: MediaFiles, tmp_path: Path, name, keep, declared, reason):
    cut = make_truncated(getattr(media_files, name), tmp_path / f"cut-{name}", keep=keep)
    assert_refused(tmp_path / "work", cut, declared, reason)


def test_declared_type_parameters_and_case_are_ignored(media_files: MediaFiles, tmp_path: Path):
    processed = process(media_files.png, "Image/PNG; charset=binary", tmp_path)
    assert processed.probe.mime_type == "image/png"


def test_only_regular_files_are_opened(media_files: MediaFiles, tmp_path: Path):
    link = tmp_path / "link.mp4"
    link.symlink_to(media_files.mp4)
    for path in (link, tmp_path, tmp_path / "absent.mp4"):
        with pytest.raises(InvalidInput):
            probe(path, "video/mp4")
        with pytest.raises(InvalidInput):
            process(path, "video/mp4", tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_failure_after_the_rendition_removes_what_was_made(
    media_files: MediaFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Fault injection in the last step: the rendition made before it must not survive.
    seen: list[Path] = []

    def failing_thumbnail(src: Path, *args: object, **kwargs: object) -> tuple[int, int]:
        seen.append(src)
        raise InvalidInput("not a decodable video", reason="not a decodable video")

    monkeypatch.setattr("media.processing.render_thumbnail", failing_thumbnail)
    assert_refused(tmp_path, media_files.mp4, "video/mp4", "not a decodable video")
    assert len(seen) == 1 and seen[0].parent == tmp_path and seen[0].suffix == ".mp4"
